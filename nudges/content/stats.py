"""Per template and variant: sends, open, click and conversion rates, from the nudges sent.

A nudge counts as sent once it reached its provider (sent_at set, whatever happened next: a
bounce still counts). Opened: an open pixel (email) or the in-app inbox said it was seen, or it
was clicked: a click implies an open (mail clients that block images never load the pixel), as
email tools count it, so the open rate is never below the click rate. Clicked and converted:
their own timestamps. Rates are shares of the nudges sent (None before any send).
The bandit's own counters (TemplateVersion.sends and rewards, a reward being the first click or
conversion of a nudge) are shown beside them.
"""

from dataclasses import dataclass

from django.db.models import Count, Q

from nudges.models import NudgeTemplate, TemplateVersion
from tenancy.models import Workspace


@dataclass(frozen=True)
class Rates:
    sent: int
    opened: int
    clicked: int
    converted: int

    @staticmethod
    def _share(count: int, total: int) -> float | None:
        return count / total if total else None

    @property
    def open_rate(self) -> float | None:
        return self._share(self.opened, self.sent)

    @property
    def click_rate(self) -> float | None:
        return self._share(self.clicked, self.sent)

    @property
    def conversion_rate(self) -> float | None:
        return self._share(self.converted, self.sent)


@dataclass(frozen=True)
class VersionStats(Rates):
    version_id: int
    number: int
    variant: str
    status: str
    bandit_sends: int
    bandit_rewards: int


@dataclass(frozen=True)
class VariantStats(Rates):
    variant: str
    versions: tuple[VersionStats, ...]
    bandit_sends: int
    bandit_rewards: int


_SENT = Q(nudges__sent_at__isnull=False)


def version_stats(*, workspace: Workspace, template: NudgeTemplate) -> list[VersionStats]:
    """Each version of the template with its counts, by variant then newest first."""
    rows = (
        TemplateVersion.objects.filter(template=template, template__workspace=workspace)
        .annotate(
            sent_count=Count("nudges", filter=_SENT),
            opened_count=Count(
                "nudges",
                filter=_SENT
                & (
                    Q(nudges__opened_at__isnull=False)
                    | Q(nudges__seen_at__isnull=False)
                    | Q(nudges__clicked_at__isnull=False)
                ),
            ),
            clicked_count=Count("nudges", filter=_SENT & Q(nudges__clicked_at__isnull=False)),
            converted_count=Count("nudges", filter=_SENT & Q(nudges__converted_at__isnull=False)),
        )
        .order_by("variant", "-number")
    )
    return [
        VersionStats(
            sent=row.sent_count,
            opened=row.opened_count,
            clicked=row.clicked_count,
            converted=row.converted_count,
            version_id=row.pk,
            number=row.number,
            variant=row.variant,
            status=row.status,
            bandit_sends=row.sends,
            bandit_rewards=row.rewards,
        )
        for row in rows
    ]


def variant_stats(*, workspace: Workspace, template: NudgeTemplate) -> list[VariantStats]:
    """The template's variants, each with its versions' counts summed."""
    by_variant: dict[str, list[VersionStats]] = {}
    for row in version_stats(workspace=workspace, template=template):
        by_variant.setdefault(row.variant, []).append(row)
    return [
        VariantStats(
            variant=variant,
            versions=tuple(rows),
            sent=sum(row.sent for row in rows),
            opened=sum(row.opened for row in rows),
            clicked=sum(row.clicked for row in rows),
            converted=sum(row.converted for row in rows),
            bandit_sends=sum(row.bandit_sends for row in rows),
            bandit_rewards=sum(row.bandit_rewards for row in rows),
        )
        for variant, rows in by_variant.items()
    ]
