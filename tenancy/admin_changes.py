"""Every change made through the admin becomes an audit row with before/after field values.

The admin site (config/admin_site.py) mixes `AuditedAdminMixin` into every ModelAdmin it
registers, Django's own (users, groups, OTP devices) included, so no admin module has to
remember it. Covered: add, change (also inline rows and list_editable), delete (one or
"delete selected"), changelist actions, and POSTs to an admin's own object views (buttons such as
publish / archive / clone, object permissions), and the change form's own buttons that act once
the form is saved (`change_form_buttons`, e.g. "publish").

What is recorded is what happened, not what was asked: an admin that refuses an action on an
object says so with `tenancy.audit.refusal_note`, and the row is "<action>_refused" with the
reason, its object unchanged.
"""

from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.urls import URLPattern
from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

from tenancy.audit import audit_changes, audit_record, audit_snapshot, refusal_of
from tenancy.models import Workspace

_STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")


def _object_permissions(obj) -> list[str]:
    """Who was granted what on this object (django-guardian), as "user:name:codename"."""
    granted = [
        f"user:{user.get_username()}:{codename}"
        for user, codenames in get_users_with_perms(obj, attach_perms=True, with_superusers=False).items()
        for codename in codenames
    ]
    granted += [
        f"group:{group.name}:{codename}"
        for group, codenames in get_groups_with_perms(obj, attach_perms=True).items()
        for codename in codenames
    ]
    return sorted(granted)


class AuditedAdminMixin:
    """Before-values are read when the admin loads the object for a POST (or from the database
    just before saving); after-values once everything, inlines included, is saved."""

    def _audit_snapshot(self, obj):
        snapshot = audit_snapshot(obj)
        if getattr(self, "obj_perms_manage_template", None) is not None:  # a guardian admin
            snapshot["object_permissions"] = _object_permissions(obj)
        return snapshot

    def _audit_befores(self, request) -> dict:
        if not hasattr(request, "_audit_befores"):
            request._audit_befores = {}
        return request._audit_befores

    def _audit_workspace(self, obj) -> Workspace | None:
        if isinstance(obj, Workspace):
            return obj
        if hasattr(self, "_workspace_of"):  # the workspace-scoped admins know the path to it
            try:
                workspace = self._workspace_of(obj)
            except AttributeError:
                workspace = None
            if isinstance(workspace, Workspace):
                return workspace
        workspace = getattr(obj, "workspace", None)
        return workspace if isinstance(workspace, Workspace) else None

    def _audit(self, request, action, obj, before, after, workspace=None, reason=""):
        request._audit_written = True
        shown_before, shown_after = audit_changes(before, after)
        audit_record(
            workspace=workspace if workspace is not None else self._audit_workspace(obj),
            action=action,
            actor=request.user,
            obj=obj,
            before=shown_before,
            after=shown_after,
            reason=reason,
        )

    def _audit_outcome(self, request, action, obj, before):
        """The action with the object's before/after values, or "<action>_refused" with the
        reason when the admin refused it."""
        reason = refusal_of(request, obj)
        if reason is not None:
            self._audit(request, f"{action}_refused", obj, None, None, reason=reason)
            return
        after = self._reloaded(obj)
        self._audit(request, action, after, before, self._audit_snapshot(after))

    def _reloaded(self, obj):
        return type(obj)._base_manager.filter(pk=obj.pk).first() or obj

    # --- Add, change, delete ------------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            self._audit_befores(request)[obj.pk] = self._audit_snapshot(obj)
        return obj

    def save_model(self, request, obj, form, change):
        befores = self._audit_befores(request)
        if change and obj.pk not in befores:  # list_editable rows are not loaded by get_object
            stored = type(obj)._base_manager.filter(pk=obj.pk).first()
            if stored is not None:
                befores[obj.pk] = self._audit_snapshot(stored)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        inline_befores = {}
        for formset in formsets:
            ids = [each.instance.pk for each in formset.initial_forms if each.instance.pk is not None]
            stored = formset.model._base_manager.filter(pk__in=ids)
            inline_befores[formset] = {row.pk: audit_snapshot(row) for row in stored}
        super().save_related(request, form, formsets, change)
        workspace = self._audit_workspace(form.instance)
        for formset, befores in inline_befores.items():
            for row in getattr(formset, "new_objects", ()):
                self._audit(request, "admin.add", row, None, audit_snapshot(row), workspace)
            for row, _ in getattr(formset, "changed_objects", ()):
                after = audit_snapshot(self._reloaded(row))
                self._audit(request, "admin.change", row, befores.get(row.pk), after, workspace)
            for row in getattr(formset, "deleted_objects", ()):
                self._audit(request, "admin.delete", row, befores.get(row.pk), None, workspace)

    def log_addition(self, request, obj, message):
        self._audit(request, "admin.add", obj, None, self._audit_snapshot(self._reloaded(obj)))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        before = self._audit_befores(request).get(obj.pk)
        after = self._audit_snapshot(self._reloaded(obj))
        if before is None:  # nothing read before the change: show what it is now
            self._audit(request, "admin.change", obj, None, after)
        else:
            self._audit(request, "admin.change", obj, before, after)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, "admin.delete", obj, self._audit_snapshot(obj), None)
        return super().log_deletions(request, queryset)

    # --- Changelist actions and the admin's own object views ---------------------------------

    def response_action(self, request, queryset):
        try:
            index = int(request.POST.get("index", 0))
            name = request.POST.getlist("action")[index]
        except (ValueError, IndexError):
            name = ""
        # "delete selected" is recorded by log_deletions, once confirmed.
        if name == "delete_selected" or name not in self.get_actions(request):
            return super().response_action(request, queryset)
        targets = queryset
        if request.POST.get("select_across") != "1":
            targets = queryset.filter(pk__in=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
        befores = {obj.pk: (obj, self._audit_snapshot(obj)) for obj in targets}
        response = super().response_action(request, queryset)
        afters = self.model._base_manager.in_bulk(list(befores))
        for pk, (obj, before) in befores.items():
            if afters.get(pk) is None:  # the action deleted it
                self._audit(request, f"admin.action.{name}", obj, before, None)
            else:
                self._audit_outcome(request, f"admin.action.{name}", obj, before)
        return response

    # --- Buttons of the change form that act after saving it ("Publish" on a draft) -------------

    def _change_form_button(self, request) -> str | None:
        if request.method != "POST":
            return None
        return next(
            (name for name in getattr(self, "change_form_buttons", ()) if f"_{name}" in request.POST), None
        )

    def response_change(self, request, obj):
        button = self._change_form_button(request)
        if button is None:
            return super().response_change(request, obj)
        before = self._audit_snapshot(self._reloaded(obj))  # saved, not yet acted on
        response = super().response_change(request, obj)
        self._audit_outcome(request, f"admin.{button}", obj, before)
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        button = self._change_form_button(request)
        if button is not None and obj is not None:  # a POST shown again: the form was refused
            reason = refusal_of(request, obj) or "the form has errors; nothing was saved"
            self._audit(request, f"admin.{button}_refused", obj, None, None, reason=reason)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}_"
        standard = {prefix + view for view in _STANDARD_VIEWS}
        urls = []
        for pattern in super().get_urls():
            converters = getattr(pattern.pattern, "converters", {})
            if (
                isinstance(pattern, URLPattern)
                and pattern.name
                and pattern.name not in standard
                and ({"object_id", "object_pk"} & set(converters))
            ):
                name = pattern.name.removeprefix(prefix)
                pattern = URLPattern(
                    pattern.pattern,
                    self._audited_view(pattern.callback, name),
                    pattern.default_args,
                    pattern.name,
                )
            urls.append(pattern)
        return urls

    def _audited_view(self, view, name):
        def audited(request, *args, **kwargs):
            if request.method != "POST":
                return view(request, *args, **kwargs)
            object_id = kwargs.get("object_id") or kwargs.get("object_pk")
            obj = self.model._base_manager.filter(pk=unquote(object_id)).first() if object_id else None
            before = self._audit_snapshot(obj) if obj is not None else None
            response = view(request, *args, **kwargs)
            # Views that save through save_model / log_change (a user's password) are recorded
            # there; a POST the admin site turned away (not signed in, no OTP) changed nothing.
            if (
                obj is not None
                and response.status_code < 400
                and self.admin_site.has_permission(request)
                and not getattr(request, "_audit_written", False)
            ):
                self._audit_outcome(request, f"admin.{name}", obj, before)
            return response

        audited.__name__ = getattr(view, "__name__", name)
        audited.__wrapped__ = view
        return audited


def audited(admin_class: type) -> type:
    """The admin class with audit recording mixed in (once)."""
    if issubclass(admin_class, AuditedAdminMixin):
        return admin_class
    return type(
        admin_class.__name__, (AuditedAdminMixin, admin_class), {"__module__": admin_class.__module__}
    )
