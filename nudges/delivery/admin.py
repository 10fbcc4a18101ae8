"""The nudge log (read-only), the dead-letter list (the failed nudges) with its retry action, and
the in-doubt list (nudges whose worker died mid-send) with "mark as delivered" and "send again".

Each nudge's page shows what was sent, its status trail (NudgeEvent rows, as the pipeline,
providers' webhooks, clicks and the inbox reported them) and its decision trace. The list links to
the queue view (django-rq in this admin), where jobs whose worker died show as AbandonedJobError
in the failed jobs and can be requeued: a nudge job run twice sends nothing twice.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path as url_path
from django.urls import reverse
from django.utils.http import urlencode
from rangefilter.filters import DateTimeRangeFilterBuilder

from nudges import services
from nudges.delivery import attempts
from nudges.models import Nudge, Trigger
from nudges.timeline import trace_lines
from tenancy.admin_bases import ReadOnlyScopedAdmin
from tenancy.admin_filters import InputFilter, WorkspaceFilter

Status = Nudge.Status
# Keys a provider's webhook may put in an event's detail that would be contact data.
CONTACT_DETAIL_KEYS = frozenset(
    {"email", "phone", "to", "from", "address", "ip", "ip_address", "useragent", "user_agent", "name"}
)
DEAD_LETTERS = {"status__exact": Status.FAILED}
IN_DOUBT = {"status__exact": Status.IN_DOUBT}


class NudgeUserFilter(InputFilter):
    title = "user id"
    parameter_name = "user"
    field_lookup = "end_user__external_id"


class NudgeTriggerFilter(admin.SimpleListFilter):
    """The triggers of the workspaces this admin user may see (never other tenants')."""

    title = "trigger"
    parameter_name = "trigger"

    def lookups(self, request, model_admin):
        triggers = Trigger.objects.filter(workspace__in=model_admin._workspaces(request)).select_related(
            "workspace"
        )
        return [(str(trigger.pk), f"{trigger.name} ({trigger.workspace.name})") for trigger in triggers]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(trigger_id=self.value())
        return queryset


def _shown_detail(detail) -> str:
    if not isinstance(detail, dict):
        return ""
    return ", ".join(
        f"{key}: {'[redacted]' if str(key).lower() in CONTACT_DETAIL_KEYS else value}"
        for key, value in detail.items()
    )


@admin.register(Nudge)
class NudgeAdmin(ReadOnlyScopedAdmin):
    change_list_template = "admin/nudges/nudge/change_list.html"
    list_display = (
        "created_at",
        "end_user",
        "trigger",
        "channel",
        "status",
        "template_version",
        "personalised",
    )
    list_filter = (
        NudgeUserFilter,
        NudgeTriggerFilter,
        "channel",
        "status",
        ("created_at", DateTimeRangeFilterBuilder(title="created")),
        WorkspaceFilter,
    )
    list_select_related = ("end_user", "trigger", "template_version__template")
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    ordering = ("-created_at", "-pk")
    actions = ["retry", "mark_delivered", "send_again"]
    fields = (
        "workspace",
        "end_user",
        "trigger",
        "occasion",
        "status",
        "channel",
        "provider",
        "template_version",
        "target_step_key",
        "content",
        "personalised",
        "llm_call",
        "status_trail",
        "decision_trace",
        "attempts",
        "last_error",
        "idempotency_key",
        "attempt_key",
        "provider_message_id",
        "created_at",
        "send_after",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "converted_at",
        "failed_at",
    )
    readonly_fields = fields

    @admin.display(description="content sent")
    def content(self, obj):
        return render_to_string("admin/nudges/nudge/content.html", {"nudge": obj})

    @admin.display(description="status trail")
    def status_trail(self, obj):
        rows = [(event, _shown_detail(event.detail)) for event in obj.events.all()]
        return render_to_string("admin/nudges/nudge/trail.html", {"rows": rows})

    @admin.display(description="decision trace")
    def decision_trace(self, obj):
        return render_to_string("admin/nudges/nudge/trace.html", {"lines": trace_lines(obj)})

    # The dead-letter list is this log filtered to the failed nudges, with the retry action.

    def has_retry_permission(self, request):
        return self._allowed(request, None, "change")

    @admin.action(description="Retry selected failed nudges (dead letters)", permissions=["retry"])
    def retry(self, request, queryset):
        retried, skipped = 0, 0
        for nudge in queryset.select_related("workspace"):
            if not self._allowed(request, nudge, "change"):
                self.message_user(request, f"You may not retry nudges of {nudge.workspace}.", messages.ERROR)
                continue
            if services.nudge_retry(nudge=nudge, actor=request.user):
                retried += 1
            else:
                skipped += 1
        message = f"Queued {retried} nudge(s) again."
        if skipped:
            message += f" {skipped} skipped: only failed nudges are retried."
        self.message_user(request, message, messages.SUCCESS if retried else messages.WARNING)

    def _in_doubt_action(self, request, queryset, act, done: str) -> None:
        """Run `act` on each in-doubt nudge of the selection the admin may change; say how many."""
        counts = {"done": 0, "skipped": 0}
        for nudge in queryset.select_related(
            "workspace", "trigger__workspace", "end_user", "template_version"
        ):
            if not self._allowed(request, nudge, "change"):
                self.message_user(request, f"You may not change nudges of {nudge.workspace}.", messages.ERROR)
                continue
            counts["done" if act(nudge) else "skipped"] += 1
        message = f"{done}: {counts['done']} nudge(s)."
        if counts["skipped"]:
            message += f" {counts['skipped']} skipped: only nudges in doubt are."
        self.message_user(request, message, messages.SUCCESS if counts["done"] else messages.WARNING)

    @admin.action(description="Mark selected in-doubt nudges as delivered", permissions=["retry"])
    def mark_delivered(self, request, queryset):
        self._in_doubt_action(
            request,
            queryset,
            lambda nudge: attempts.nudge_mark_delivered(nudge=nudge, actor=request.user),
            "Marked as delivered",
        )

    @admin.action(description="Send selected in-doubt nudges again", permissions=["retry"])
    def send_again(self, request, queryset):
        def act(nudge):
            outcome = attempts.nudge_send_again(nudge=nudge, actor=request.user)
            if outcome is not None and outcome.status != Status.SENT:
                self.message_user(
                    request, f"Nudge {nudge.pk} not sent again: {outcome.detail}", messages.ERROR
                )
            return outcome is not None and outcome.status == Status.SENT

        self._in_doubt_action(request, queryset, act, "Sent again")

    def get_urls(self):
        return [
            url_path(
                "dead-letters/",
                self.admin_site.admin_view(self.dead_letters_view),
                name="nudges_nudge_dead_letters",
            ),
            *super().get_urls(),
        ]

    def dead_letters_view(self, request):
        url = reverse("admin:nudges_nudge_changelist")
        return HttpResponseRedirect(f"{url}?{urlencode(DEAD_LETTERS)}")

    def changelist_view(self, request, extra_context=None):
        dead_letters = request.GET.get("status__exact") == Status.FAILED
        extra_context = {
            **(extra_context or {}),
            # A link, not a count: counting a status across a large log would scan it on every page.
            "dead_letters_url": reverse("admin:nudges_nudge_dead_letters"),
            "in_doubt_url": f"{reverse('admin:nudges_nudge_changelist')}?{urlencode(IN_DOUBT)}",
            "jobs_url": reverse("admin:django_rq_dashboard_changelist"),
        }
        if dead_letters:
            extra_context["title"] = "Dead letters: failed nudges (select them and retry)"
        if request.GET.get("status__exact") == Status.IN_DOUBT:
            extra_context["title"] = "In doubt: the worker died mid-send (mark as delivered, or send again)"
        return super().changelist_view(request, extra_context)
