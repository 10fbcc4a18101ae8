"""Admin filters of the event table (typed input, tenancy.admin_filters.InputFilter, not a scan)
and of the enrollments list (path, version, step, stuck)."""

from django.contrib import admin
from django.db.models import Q

from onboarding.models import Enrollment
from paths.models import Path, PathVersion, Step
from tenancy import selectors
from tenancy.admin_filters import InputFilter
from tenancy.models import EndUser


class EventNameFilter(InputFilter):
    title = "event name"
    parameter_name = "name"
    field_lookup = "name"


class EventUserFilter(InputFilter):
    title = "user (userId or anonymousId)"
    parameter_name = "user"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        # The person behind the id too: their events sent under their other ids (before an
        # identify, or from another device) belong to them.
        people = EndUser.objects.filter(Q(external_id=value) | Q(anonymous_identities__anonymous_id=value))
        return queryset.filter(Q(user_id=value) | Q(anonymous_id=value) | Q(end_user__in=people))


# --- The enrollments list: path, then version, then step, each bounded by the one before ---------

# A filter lists at most this many choices: enough for any real workspace, never a whole table.
MOST_CHOICES = 200


def _chosen_id(request, parameter_name: str) -> int | None:
    value = request.GET.get(parameter_name, "")
    return int(value) if value.isdigit() else None


class EnrollmentPathFilter(admin.SimpleListFilter):
    title = "path"
    parameter_name = "path"

    def lookups(self, request, model_admin):
        paths = (
            Path.objects.filter(workspace__in=selectors.workspaces_for_admin(user=request.user))
            .select_related("workspace")
            .order_by("workspace__name", "name", "pk")[:MOST_CHOICES]
        )
        several = len({path.workspace_id for path in paths}) > 1
        return [
            (str(path.pk), f"{path.workspace.name}: {path.name}" if several else path.name) for path in paths
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(path_version__path_id=self.value())
        return queryset


class EnrollmentPathVersionFilter(admin.SimpleListFilter):
    """The versions of the chosen path (of every visible path when none is chosen)."""

    title = "version"
    parameter_name = "path_version"

    def lookups(self, request, model_admin):
        versions = PathVersion.objects.filter(
            path__workspace__in=selectors.workspaces_for_admin(user=request.user)
        ).select_related("path")
        path_id = _chosen_id(request, EnrollmentPathFilter.parameter_name)
        if path_id is not None:
            versions = versions.filter(path_id=path_id)
        versions = versions.order_by("path__name", "path_id", "-number")[:MOST_CHOICES]
        return [(str(version.pk), f"{version.path.name} v{version.number}") for version in versions]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(path_version_id=self.value())
        return queryset


class EnrollmentStepFilter(admin.SimpleListFilter):
    """The current step, among the steps of the chosen version (or of the chosen path's versions,
    newest first): step keys mean something only within a path, so none is offered before."""

    title = "current step"
    parameter_name = "step"

    def lookups(self, request, model_admin):
        steps = Step.objects.filter(
            path_version__path__workspace__in=selectors.workspaces_for_admin(user=request.user)
        )
        version_id = _chosen_id(request, EnrollmentPathVersionFilter.parameter_name)
        path_id = _chosen_id(request, EnrollmentPathFilter.parameter_name)
        if version_id is not None:
            steps = steps.filter(path_version_id=version_id)
        elif path_id is not None:
            steps = steps.filter(path_version__path_id=path_id)
        else:
            steps = steps.none()
        choices: dict[str, str] = {}
        ordered = steps.order_by("-path_version__number", "order", "pk").values_list("key", "title")
        for position, (key, title) in enumerate(ordered[:MOST_CHOICES], start=1):
            choices.setdefault(key, f"{position}. {title}" if version_id is not None else title)
        chosen = self.value()
        if chosen and chosen not in choices:
            choices[chosen] = chosen  # typed or linked without its path: still shown, so it can be cleared
        return list(choices.items())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(current_step_key=self.value())
        return queryset


class EnrollmentStuckFilter(admin.SimpleListFilter):
    """Stuck as the stuck list counts it: active, with an open stuck signal on the current step."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return (("yes", "yes"), ("no", "no"))

    def queryset(self, request, queryset):
        stuck = Q(status=Enrollment.Status.ACTIVE, stuck_at__isnull=False)
        if self.value() == "yes":
            return queryset.filter(stuck)
        if self.value() == "no":
            return queryset.exclude(stuck)
        return queryset
