"""The template version workflow: draft → approved (by a second admin) → active → retired.

A draft is the only version that changes; editing an approved, active or retired version makes a
new draft from it. Approval needs another admin user than the draft's author and editors, holding
`onboarding.approve_nudge_templates` on the template's workspace (django-guardian; superusers hold
it, but still cannot approve their own work), and every pre-approval check passing
(nudges.content.checks). Activation makes the version the one sent for its variant and retires
the variant's previous active version in the same transaction. Each step writes an audit row and
stores the checks it ran in `TemplateVersion.check_results`.
"""

import logging
import re

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from guardrails.models import Channel
from nudges.content import checks as template_checks
from nudges.models import NudgeTemplate, TemplateVersion, Trigger
from tenancy.audit import audit_changes, audit_record, audit_snapshot
from tenancy.models import AuditLog

logger = logging.getLogger(__name__)

Status = TemplateVersion.Status
APPROVE_PERMISSION = "onboarding.approve_nudge_templates"
EDITABLE_FIELDS = ("variant", "subject", "body", "cta_text", "cta_url")
VARIANT = re.compile(r"[A-Za-z0-9_-]{1,20}")
# The audit actions that make someone an author of a version's words.
AUTHORING_ACTIONS = ("nudge_template.draft_create", "nudge_template.draft_update")


class TemplateError(Exception):
    """A workflow step that cannot be taken; the message says why."""


class ApprovalRefused(TemplateError):
    def __init__(self, version: TemplateVersion, reasons: list[str]):
        self.version = version
        self.reasons = reasons
        super().__init__(f"{_label(version)} cannot be approved: " + "; ".join(reasons))


class ActivationRefused(TemplateError):
    def __init__(self, version: TemplateVersion, reasons: list[str]):
        self.version = version
        self.reasons = reasons
        super().__init__(f"{_label(version)} cannot be activated: " + "; ".join(reasons))


def _label(version: TemplateVersion) -> str:
    return f"{version.template.name} v{version.number}"


def _audit(*, action: str, version: TemplateVersion, actor, before=None, after=None) -> None:
    shown_before, shown_after = audit_changes(before, after)
    audit_record(
        workspace=version.template.workspace,
        action=action,
        actor=actor,
        obj=version,
        before=shown_before,
        after=shown_after,
    )
    logger.info(
        "nudges.template_version",
        extra={
            "action": action,
            "workspace_id": version.template.workspace_id,
            "template_id": version.template_id,
            "template_version_id": version.pk,
            "status": version.status,
            "actor_id": getattr(actor, "pk", None),
        },
    )


def _locked(version: TemplateVersion) -> TemplateVersion:
    """The version's row, locked until the transaction ends (not its template's or workspace's)."""
    return (
        TemplateVersion.objects.select_for_update(no_key=True, of=("self",))
        .select_related("template__workspace")
        .get(pk=version.pk)
    )


def _checked(version: TemplateVersion) -> list[template_checks.CheckResult]:
    results = template_checks.version_checks(version=version)
    version.check_results = [result.as_dict() for result in results]
    return results


def starter_texts(*, template: NudgeTemplate) -> dict[str, str]:
    """The first draft of a new template. The pipeline adds the compliance text itself (the
    email footer with the postal address and unsubscribe link, the SMS opt-out text)."""
    return {
        "variant": "A",
        "subject": "" if template.channel == Channel.SMS else "Next: {{ step_title }}",
        "body": "Hi {{ first_name }}, you are {{ percent_complete }}% through {{ path_name }}. "
        "Next: {{ step_title }}.",
        "cta_text": "Continue",
        "cta_url": "{{ step_link }}",
    }


@transaction.atomic
def nudge_template_create(
    *, trigger: Trigger, name: str, channel: str, persona: str = "", locale: str = "", actor=None
) -> NudgeTemplate:
    """A template of the trigger's workspace, with its first draft (v1)."""
    template = NudgeTemplate.objects.create(
        workspace_id=trigger.workspace_id,
        trigger=trigger,
        name=name,
        channel=channel,
        persona=persona,
        locale=locale,
    )
    audit_record(
        workspace=template.workspace,
        action="nudge_template.create",
        actor=actor,
        obj=template,
        after=audit_snapshot(template),
    )
    template_version_create_draft(template=template, actor=actor)
    return template


@transaction.atomic
def template_version_create_draft(
    *,
    template: NudgeTemplate,
    actor=None,
    source: TemplateVersion | None = None,
    values: dict[str, str] | None = None,
) -> TemplateVersion:
    """A new draft, numbered after the template's last version. It starts from `values`, else a
    copy of `source`, else of the latest version, else the channel's starter texts."""
    locked = NudgeTemplate.objects.select_for_update(no_key=True).get(pk=template.pk)
    if source is not None and source.template_id != locked.pk:
        raise TemplateError(f"v{source.number} is a version of another template")
    latest = source or locked.versions.order_by("-number").first()
    if values is None:
        values = (
            {field: getattr(latest, field) for field in EDITABLE_FIELDS}
            if latest is not None
            else starter_texts(template=locked)
        )
    _validate(values)
    number = (locked.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    author = actor if getattr(actor, "pk", None) else None
    draft = TemplateVersion(template=locked, number=number, status=Status.DRAFT, created_by=author, **values)
    _checked(draft)
    draft.save(force_insert=True)
    after = {"number": number, "variant": draft.variant, "from_version": latest.number if latest else None}
    _audit(action="nudge_template.draft_create", version=draft, actor=actor, after=after)
    return draft


def _validate(values: dict[str, str]) -> None:
    if not VARIANT.fullmatch(values.get("variant") or ""):
        raise TemplateError("a variant is 1 to 20 letters, digits, - or _ (e.g. A, B, short-copy)")


@transaction.atomic
def template_version_update(
    *,
    version: TemplateVersion,
    actor=None,
    variant: str,
    subject: str,
    body: str,
    cta_text: str,
    cta_url: str,
) -> TemplateVersion:
    """Edit a draft in place and return it. An approved, active or retired version never
    changes: the edit becomes a new draft, which is returned."""
    values = {"variant": variant, "subject": subject, "body": body, "cta_text": cta_text, "cta_url": cta_url}
    _validate(values)
    locked = _locked(version)
    if locked.status != Status.DRAFT:
        return template_version_create_draft(
            template=locked.template, actor=actor, source=locked, values=values
        )
    before = audit_snapshot(locked)
    for field, value in values.items():
        setattr(locked, field, value)
    _checked(locked)
    locked.save(update_fields=[*EDITABLE_FIELDS, "check_results"])
    _audit(
        action="nudge_template.draft_update",
        version=locked,
        actor=actor,
        before=before,
        after=audit_snapshot(locked),
    )
    return locked


def approval_refusals(*, version: TemplateVersion, actor) -> list[str]:
    """Why `actor` may not approve the version ([] when they may): the four-eyes rule and the
    workspace's approve permission. The checks are not run here."""
    if actor is None or not getattr(actor, "pk", None) or not actor.is_active or not actor.is_staff:
        return ["approval needs an active admin user"]
    reasons = []
    authored = version.created_by_id == actor.pk or (
        AuditLog.objects.filter(
            object_type=TemplateVersion._meta.label,
            object_id=str(version.pk),
            action__in=AUTHORING_ACTIONS,
            actor=actor,
        ).exists()
    )
    if authored:
        reasons.append("you wrote or edited this draft: another admin user must approve it")
    workspace = version.template.workspace
    if not actor.is_superuser and not actor.has_perm(APPROVE_PERMISSION, workspace):
        reasons.append(f"you do not hold the permission to approve nudge templates of {workspace.name}")
    return reasons


def template_version_approve(*, version: TemplateVersion, actor) -> TemplateVersion:
    """Approve a draft. Raises ApprovalRefused with every reason (who approves, failed checks);
    a refusal for failed checks still stores them in check_results."""
    with transaction.atomic():
        locked = _locked(version)
        if locked.status != Status.DRAFT:
            raise ApprovalRefused(locked, [f"it is {locked.status}: only drafts are approved"])
        refusals = approval_refusals(version=locked, actor=actor)
        if refusals:
            raise ApprovalRefused(locked, refusals)
        failed = template_checks.failures(_checked(locked))
        before = audit_snapshot(locked)
        if failed:
            locked.save(update_fields=["check_results"])
            _audit(
                action="nudge_template.approve_refused",
                version=locked,
                actor=actor,
                after={"failed_checks": [result.code for result in failed]},
            )
        else:
            locked.status, locked.approved_by, locked.approved_at = Status.APPROVED, actor, timezone.now()
            locked.save(update_fields=["status", "approved_by", "approved_at", "check_results"])
            _audit(
                action="nudge_template.approve",
                version=locked,
                actor=actor,
                before=before,
                after=audit_snapshot(locked),
            )
    if failed:
        raise ApprovalRefused(locked, [f"{result.code}: {result.message}" for result in failed])
    return locked


def template_version_activate(*, version: TemplateVersion, actor=None) -> TemplateVersion:
    """Make an approved version the one sent for its variant; the variant's active version (if
    any) is retired in the same transaction. The checks run again (the workspace's rules may have
    changed since approval): a failure refuses, with the results stored."""
    with transaction.atomic():
        # One activation per template at a time: the one-active-per-variant constraint holds.
        NudgeTemplate.objects.select_for_update(no_key=True).get(pk=version.template_id)
        locked = _locked(version)
        if locked.status != Status.APPROVED:
            hint = " (approve it first)" if locked.status == Status.DRAFT else ""
            raise ActivationRefused(
                locked, [f"it is {locked.status}: only approved versions are activated{hint}"]
            )
        failed = template_checks.failures(_checked(locked))
        if failed:
            locked.save(update_fields=["check_results"])
        else:
            now = timezone.now()
            previous = (
                TemplateVersion.objects.select_for_update(no_key=True, of=("self",))
                .filter(template_id=locked.template_id, variant=locked.variant, status=Status.ACTIVE)
                .first()
            )
            if previous is not None:
                previous.template = locked.template
                _retire(previous, actor=actor, now=now, replaced_by=locked)
            before = audit_snapshot(locked)
            locked.status, locked.activated_at = Status.ACTIVE, now
            locked.save(update_fields=["status", "activated_at", "check_results"])
            after = {**audit_snapshot(locked), "replaces": previous.number if previous else None}
            _audit(action="nudge_template.activate", version=locked, actor=actor, before=before, after=after)
    if failed:
        raise ActivationRefused(locked, [f"{result.code}: {result.message}" for result in failed])
    return locked


def _retire(version: TemplateVersion, *, actor, now, replaced_by: TemplateVersion | None = None) -> None:
    before = audit_snapshot(version)
    version.status, version.retired_at = Status.RETIRED, now
    version.save(update_fields=["status", "retired_at"])
    after = audit_snapshot(version)
    if replaced_by is not None:
        after["replaced_by"] = replaced_by.number
    _audit(action="nudge_template.retire", version=version, actor=actor, before=before, after=after)


@transaction.atomic
def template_version_retire(*, version: TemplateVersion, actor=None) -> TemplateVersion:
    """Stop using a version: an active one is no longer sent, a draft or approved one is set aside."""
    locked = _locked(version)
    if locked.status == Status.RETIRED:
        raise TemplateError(f"{_label(locked)} is already retired")
    _retire(locked, actor=actor, now=timezone.now())
    return locked
