"""Per template and variant: sends, open, click and conversion rates, from the nudges sent.

Counted by nudges.selectors.nudge_outcome_counts, the one rule the analytics API, metrics and
dashboards use too: sent once it reached its provider (sent_at set, whatever happened next: a
bounce still counts); opened by an open pixel, the in-app inbox, or a click (a click implies an
open, so the open rate is never below the click rate); clicked and converted by their own
timestamps. Rates are shares of the nudges sent (None before any send).
The bandit's own counters (TemplateVersion.sends and rewards, a reward being the first click or
conversion of a nudge) are shown beside them.
"""

from dataclasses import dataclass

from nudges import selectors
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


def version_stats(*, workspace: Workspace, template: NudgeTemplate) -> list[VersionStats]:
    """Each version of the template with its counts, by variant then newest first. Counted by
    nudges.selectors.nudge_outcome_counts, the rule the analytics API and dashboards use."""
    counts = {
        row.group["version"]: row
        for row in selectors.nudge_outcome_counts(
            workspace=workspace, template_id=template.pk, group_by=("version",)
        )
    }
    versions = TemplateVersion.objects.filter(template=template, template__workspace=workspace).order_by(
        "variant", "-number"
    )
    none = selectors.NudgeOutcomeCounts(group={})
    return [
        VersionStats(
            sent=counts.get(version.pk, none).sent,
            opened=counts.get(version.pk, none).opened,
            clicked=counts.get(version.pk, none).clicked,
            converted=counts.get(version.pk, none).converted,
            version_id=version.pk,
            number=version.number,
            variant=version.variant,
            status=version.status,
            bandit_sends=version.sends,
            bandit_rewards=version.rewards,
        )
        for version in versions
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
