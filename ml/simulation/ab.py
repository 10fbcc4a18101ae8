"""A simulated A/B of a path policy against the rules, outcomes drawn from the ground truth.

Fresh simulated people (not written; their own `seed`, ids prefixed "ab") alternate between the
arms: even ones are served by the rules (paths.planner.choose_by_rules over the workspace's
published simulation paths), odd ones by `choose_model(end_user, features, eligible_versions)`
(an unsaved EndUser with the person's traits and sign-up time, their features at the decision as
the writer logs them). Each activates when their activation draw falls below the ground truth's
probability on the path they were given (world.true_activation_probability). The difference of
the activation rates (model minus rules) and its 95% interval come from experiments.stats
(Welch's test on two proportions, absolute difference).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from experiments.stats.effects import proportion
from experiments.stats.frequentist import welch_t_test
from ml.features import compute
from ml.simulation import world
from ml.simulation.journey import DECISION_DELAY, opening
from ml.simulation.writer import end_user_of
from paths import planner
from paths.models import PathVersion
from tenancy.models import EndUser, Workspace

Policy = Callable[[EndUser, dict, list[PathVersion]], PathVersion | None]
AB_START = datetime(2030, 1, 1, tzinfo=UTC)  # any moment: the truth does not depend on the date


@dataclass(frozen=True, slots=True)
class ABResult:
    people_rules: int
    people_model: int
    activated_rules: int
    activated_model: int
    rate_rules: float
    rate_model: float
    difference: float  # rate_model - rate_rules
    ci: tuple[float, float]  # 95%, of the difference
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        return self.ci[0] > 0 or self.ci[1] < 0


def rules_policy(end_user: EndUser, features: dict, eligible: list[PathVersion]) -> PathVersion | None:
    """The rules as a policy (the eligible versions hold every path the rules may choose)."""
    return planner.choose_by_rules(end_user=end_user, published=eligible).path_version


def _published(workspace: Workspace) -> list[PathVersion]:
    published = [
        version
        for version in planner.published_versions(workspace_id=workspace.pk)
        if version.path.key in world.PATH_STEPS
    ]
    if not published:
        raise ValueError(
            "The workspace has no published simulation path: run ml.simulation.writer.simulate first."
        )
    return published


def _served(person: world.Person, end_user: EndUser, policy: Policy, published, seed: int) -> bool:
    """Whether the person activates on the path `policy` gives them."""
    _, activation_draw, _, before = opening(person, seed=seed)
    decided_at = person.signed_up_at + DECISION_DELAY
    profile = compute.Profile(
        persona=end_user.persona,
        signup_source=end_user.signup_source,
        company_size=end_user.company_size,
        use_case=end_user.use_case,
        signed_up_at=person.signed_up_at,
    )
    behaviour = compute.behaviour_of([moment for moment, _ in before], now=decided_at)
    features = compute.features_of(profile, behaviour, decided_at)
    eligible = planner.eligible_versions(end_user=end_user, published=published)
    chosen = policy(end_user, features, eligible) or rules_policy(end_user, features, eligible)
    probability = world.true_activation_probability(person.traits, chosen.path.key, person.engagement)
    return activation_draw < probability


def simulated_ab(
    *, workspace: Workspace, choose_model: Policy, people: int, seed: int, control: Policy = rules_policy
) -> ABResult:
    """The model's policy (odd people) against `control` (even people, the rules by default)."""
    published = _published(workspace)
    counts = {0: [0, 0], 1: [0, 0]}  # arm -> [people, activated]
    for index in range(people):
        person = world.draw_person(seed=seed, index=index, start=AB_START, days=1, prefix="ab")
        arm = index % 2
        policy = choose_model if arm else control
        activated = _served(person, end_user_of(workspace, person), policy, published, seed)
        counts[arm][0] += 1
        counts[arm][1] += activated
    (n_rules, a_rules), (n_model, a_model) = counts[0], counts[1]
    result = welch_t_test(proportion(n_rules, a_rules), proportion(n_model, a_model), difference="absolute")
    return ABResult(
        people_rules=n_rules,
        people_model=n_model,
        activated_rules=a_rules,
        activated_model=a_model,
        rate_rules=a_rules / n_rules,
        rate_model=a_model / n_model,
        difference=result.expected,
        ci=result.ci,
        p_value=result.p_value,
    )


def rules_only(*, workspace: Workspace, people: int, seed: int) -> ABResult:
    """The sanity check: the rules against the rules (an A/A), whose interval should hold zero."""
    return simulated_ab(workspace=workspace, choose_model=rules_policy, people=people, seed=seed)
