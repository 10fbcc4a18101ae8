"""Reads of nudges. Public endpoints (tracking) find a nudge by its signed id only.

`nudge_outcome_counts` is the one counting rule for what became of nudges: the template admin's
rates (nudges.content.stats), the analytics API, the metrics and the dashboards all count
through it, so they never disagree.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from nudges.models import ChannelProvider, Nudge
from tenancy.models import EndUser, Workspace

Status = Nudge.Status


def nudge_get_by_pk(*, nudge_id: int) -> Nudge | None:
    """For signed links, whose token names the nudge: the signature is the authorisation."""
    return Nudge.objects.filter(pk=nudge_id).first()


def nudges_for_end_user(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Nudge]:
    return Nudge.objects.filter(workspace=workspace, end_user=end_user).order_by("-created_at", "-pk")


# --- Outcomes: the counting rule -------------------------------------------------------------------

# Sent: it reached its provider (sent_at set), whatever happened next: a bounce still counts.
SENT = Q(sent_at__isnull=False)
# Delivered: a delivery report said so (delivered_at set): SendGrid's and Twilio's webhooks, the
# in-app inbox on send, or a person settling an in-doubt nudge in the admin.
DELIVERED = SENT & Q(delivered_at__isnull=False)
# Who reports deliveries at all. Push (the push service's acceptance is not a delivery), Intercom,
# and email through SMTP, Mailgun or SES have no delivery report here: their sends without one
# are counted as `delivery_unknown`, never as delivered, nor as not delivered.
DELIVERY_REPORTED = Q(channel="in_app") | Q(
    provider__provider__in=[ChannelProvider.Provider.SENDGRID, ChannelProvider.Provider.TWILIO]
)
DELIVERY_UNKNOWN = SENT & Q(delivered_at__isnull=True) & ~DELIVERY_REPORTED
# Opened: an open pixel, a WhatsApp read receipt or the in-app inbox (seen_at, recorded with
# opened_at or clicked_at by every write), or a click: a click implies an open (mail clients that
# block images never load the pixel), so the open rate is never below the click rate.
OPENED = SENT & (Q(opened_at__isnull=False) | Q(clicked_at__isnull=False) | Q(seen_at__isnull=False))
CLICKED = SENT & Q(clicked_at__isnull=False)
CONVERTED = SENT & Q(converted_at__isnull=False)


def nudges_converted(*, workspace_id: int) -> QuerySet[Nudge]:
    """The workspace's nudges that converted, by the counting rule (CONVERTED above): for a
    higher layer's join (an experiment's arms) to count conversions as the dashboards do."""
    return Nudge.objects.filter(CONVERTED, workspace_id=workspace_id)


OUTCOMES: dict[str, Q | None] = {
    "created": None,
    "sent": SENT,
    "delivered": DELIVERED,
    "delivery_unknown": DELIVERY_UNKNOWN,
    "opened": OPENED,
    "clicked": CLICKED,
    "converted": CONVERTED,
    "failed": Q(status=Status.FAILED),  # every attempt failed: a dead letter
    "bounced": Q(status=Status.BOUNCED),
    "suppressed": Q(status=Status.SUPPRESSED),  # a policy or pipeline rule decided not to send
}

# Group keys: the columns grouped on (the first is the key, the second its label).
GROUPS: dict[str, tuple[str, ...]] = {
    "channel": ("channel",),
    "template": ("template_version__template_id", "template_version__template__name"),
    "variant": ("template_version__variant",),
    "version": ("template_version_id",),
    "trigger": ("trigger_id", "trigger__name"),
    "created_day": ("created_day",),  # UTC day of created_at
    "sent_day": ("sent_day",),  # UTC day of sent_at
}
_DAYS = {"created_day": TruncDate("created_at", tzinfo=UTC), "sent_day": TruncDate("sent_at", tzinfo=UTC)}

# Segment filters: argument -> lookup. Path ones go through the nudge's enrollment (none: no match).
FILTERS = {
    "channel": "channel",
    "template_id": "template_version__template_id",
    "variant": "template_version__variant",
    "version_id": "template_version_id",
    "trigger_id": "trigger_id",
    "path_key": "enrollment__path_version__path__key",
    "path_version": "enrollment__path_version__number",
    "persona": "end_user__persona",
    "signup_source": "end_user__signup_source",
    "company_size": "end_user__company_size",
    "use_case": "end_user__use_case",
}


@dataclass(frozen=True)
class NudgeOutcomeCounts:
    """Counts of one group (`group`: its key values and labels, empty for the whole set)."""

    group: dict[str, Any]
    created: int = 0
    sent: int = 0
    delivered: int = 0
    delivery_unknown: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _in_days(column: str, first: date | None, last: date | None) -> Q:
    """[first, last] as UTC days, `last` inclusive; bounds an index on the column serves."""
    condition = Q()
    if first is not None:
        condition &= Q(**{f"{column}__gte": day_start(first)})
    if last is not None:
        condition &= Q(**{f"{column}__lt": day_start(last + timedelta(days=1))})
    return condition


def _group_label(key: str, fields: tuple[str, ...], row: dict[str, Any]) -> dict[str, Any]:
    values = {key: row[fields[0]]}
    if len(fields) > 1:
        values[f"{key}_name"] = row[fields[1]]
    return values


def nudge_outcome_counts(
    *,
    workspace: Workspace,
    created_from: date | None = None,
    created_to: date | None = None,
    sent_from: date | None = None,
    sent_to: date | None = None,
    group_by: tuple[str, ...] = (),
    **filters: Any,
) -> list[NudgeOutcomeCounts]:
    """What became of the workspace's nudges created and/or sent within the given UTC days
    (bounds inclusive, None: open), one row per group of `group_by` (keys of GROUPS), in one
    GROUP BY query. `filters`: keys of FILTERS, equality (None: not filtered). Every count but
    `created`, `failed` and `suppressed` is among the nudges sent."""
    unknown = (set(group_by) - GROUPS.keys()) | (set(filters) - FILTERS.keys())
    if unknown:
        raise ValueError(f"unknown group or filter: {', '.join(sorted(unknown))}")
    nudges = Nudge.objects.filter(
        Q(workspace=workspace)
        & _in_days("created_at", created_from, created_to)
        & _in_days("sent_at", sent_from, sent_to),
        **{FILTERS[name]: value for name, value in filters.items() if value is not None},
    )
    counts = {
        name: Count("pk", filter=condition) if condition is not None else Count("pk")
        for name, condition in OUTCOMES.items()
    }
    if not group_by:
        return [NudgeOutcomeCounts(group={}, **nudges.aggregate(**counts))]
    days = {name: expression for name, expression in _DAYS.items() if name in group_by}
    columns = [column for key in group_by for column in GROUPS[key]]
    rows = nudges.annotate(**days).values(*columns).annotate(**counts).order_by(*columns)
    return [
        NudgeOutcomeCounts(
            group={
                name: value for key in group_by for name, value in _group_label(key, GROUPS[key], row).items()
            },
            **{name: row[name] for name in OUTCOMES},
        )
        for row in rows
    ]


def nudge_status_counts(
    *,
    workspace: Workspace,
    created_from: date | None = None,
    created_to: date | None = None,
    statuses: tuple[str, ...] | None = None,
) -> dict[str, int]:
    """How many of the workspace's nudges (created within the UTC days given, bounds inclusive,
    None: open) are in each Nudge.Status now, every status present (0 when none). One GROUP BY
    that the (workspace, status, created_at) index serves; `failed` is the dead-letter list.
    `statuses` counts those only, by range scans of that index: for the rare ones (failed,
    in_doubt) it never counts the whole table."""
    wanted = Q(workspace=workspace) & _in_days("created_at", created_from, created_to)
    if statuses is not None:
        wanted &= Q(status__in=statuses)
    rows = Nudge.objects.filter(wanted).values("status").annotate(nudges=Count("pk")).order_by("status")
    counts = dict.fromkeys(statuses if statuses is not None else Status.values, 0)
    counts.update({row["status"]: row["nudges"] for row in rows})
    return counts
