"""The planner's path classifier decider (paths.deciders, order 20: after path experiments).

For each new user, among the eligible paths (paths.planner.eligible_versions):

1. a running model experiment covering the user serves its arm's policy (rules or a version);
   sticky, the Assignment is written with the enrollment;
2. else, with probability ML_EXPLORATION_SHARE, a uniform draw among the eligible paths (policy
   "explore"): a random draw, not a hash, so the logged propensity is what inverse-propensity
   weighting assumes;
3. else the active model's best path (policy "model"), within ML_LATENCY_BUDGET_MS;
4. else the rules' choice, returned with source "rules" so that it is logged too.

A model that fails, is over its budget or gets no features leaves the rules' choice, the reason
says why. Every decision is logged as a PathChoice (what training and the offline policy estimate
read), with the shadow versions' choices beside it. With no model, no shadow, no model experiment
and no exploration the decider declines at prepare, from lookups kept 5 s (ml/serving/loaded.py):
no query. The budget covers the model's part (encoding, one predict call, the explanation); the
batch's features are read once, at its first decision.
"""

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from time import perf_counter

from django.conf import settings
from django.utils import timezone

from experiments import deciding
from experiments.models import Experiment
from ml.features import store
from ml.models import ModelName, ModelVersion, PathChoice
from ml.serving import arms, explain, loaded, policy
from paths import deciders, planner
from paths.models import PathVersion
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

SOURCE = "model"
ORDER = 20  # after the path experiments (10), before the rules
MODEL_NAME = ModelName.PATH_CLASSIFIER.value


@dataclass(slots=True)
class Prepared:
    """What a batch reads once: the serving versions, the model experiments, and (at the first
    decision, which has its person in hand: a single identify reads no EndUser back) the features."""

    workspace_id: int
    end_user_ids: list[int]
    now: datetime
    share: float
    budget_ms: float
    active: loaded.Loaded | None
    shadows: list[loaded.Loaded]
    experiments: list[Experiment]
    arm_policies: dict[int, object] = field(default_factory=dict)
    stored: dict = field(default_factory=dict)
    features: store.FeatureRead | None = None
    feature_error: str = ""
    features_read: bool = False


@dataclass(frozen=True, slots=True)
class Person:
    """One decision's inputs: the eligible paths, the rules' choice, the features (None with the
    problem that kept them away) and where they came from."""

    eligible: list[PathVersion]
    rules: planner.PathDecision
    features: dict | None
    feature_problem: str
    feature_source: str
    feature_text: str


@dataclass(frozen=True, slots=True)
class Acting:
    """The deciding policy's own answer (before exploration)."""

    path_version: PathVersion
    policy: str
    source: str
    reason: str
    scored: policy.Scored | None = None
    model_version: ModelVersion | None = None


@dataclass(frozen=True, slots=True)
class Served:
    """What the user gets: the path, the logged policy, the planner's source, why, the propensity."""

    path_version: PathVersion
    policy: str
    source: str
    reason: str
    propensity: float


@dataclass(frozen=True, slots=True)
class Draft:
    """The PathChoice fields of one decision and the experiment assignment to write with it."""

    values: dict
    assignment: deciding.AssignmentDraft | None = None


class PathModelDecider:
    source = SOURCE

    def __init__(self) -> None:
        self.random = random.Random()

    def seed(self, value: int) -> None:
        """Make the exploration draws repeatable (tests, simulations)."""
        self.random.seed(value)

    def prepare(self, *, workspace_id: int, end_user_ids: Sequence[int]) -> Prepared | None:
        active = loaded.active(workspace_id, MODEL_NAME)
        shadows = loaded.in_status(workspace_id, MODEL_NAME, ModelVersion.Status.SHADOW)
        experiments = arms.running(workspace_id=workspace_id)
        share = min(max(float(settings.ML_EXPLORATION_SHARE), 0.0), 1.0)
        if active is None and not shadows and not experiments and share <= 0:
            return None  # nothing to serve or log: the rules decide, at no cost
        prepared = Prepared(
            workspace_id,
            list(end_user_ids),
            timezone.now(),
            share,
            float(settings.ML_LATENCY_BUDGET_MS),
            active,
            shadows,
            experiments,
        )
        if experiments:
            prepared.arm_policies = arms.policies(workspace_id=workspace_id, experiments=experiments)
            prepared.stored = arms.stored(
                workspace_id=workspace_id, experiments=experiments, end_user_ids=end_user_ids
            )
        return prepared

    def _read_features(self, prepared: Prepared, end_user: EndUser) -> None:
        """The batch's features in one read, at its first decision."""
        prepared.features_read = True
        others = [pk for pk in prepared.end_user_ids if pk != end_user.pk]
        end_users = [end_user]
        if others:
            end_users += list(EndUser.objects.filter(workspace_id=prepared.workspace_id, pk__in=others))
        try:
            prepared.features = store.features_for(
                workspace_id=prepared.workspace_id, end_users=end_users, now=prepared.now
            )
        except Exception as error:  # the store's own fallbacks failed too: the rules decide
            logger.exception("ml.features.read_failed", extra={"workspace_id": prepared.workspace_id})
            prepared.feature_error = f"feature store failed ({type(error).__name__}: {error})"

    def decide(
        self, *, end_user: EndUser, published: list[PathVersion], prepared: Prepared | None
    ) -> deciders.Choice | None:
        if prepared is None:
            return None
        started = perf_counter()
        eligible = planner.eligible_versions(end_user=end_user, published=published)
        rules = planner.choose_by_rules(end_user=end_user, published=published)
        if not eligible or rules.path_version is None:
            return None  # nothing to choose among: the rules and the default say why
        person = self._person(prepared, end_user, eligible, rules)
        arm = arms.arm_for(experiments=prepared.experiments, stored_arms=prepared.stored, end_user=end_user)
        if arm is not None:
            acting = self._arm(arm, prepared, person)
            # The arm's policy is deterministic; the randomisation is the arm's, in the Assignment.
            served = Served(
                acting.path_version, PathChoice.Policy.EXPERIMENT, "experiment", acting.reason, 1.0
            )
        else:
            acting = self._acting(prepared.active, prepared, person)
            served = self._explored(acting, prepared, eligible)
        values = {
            "decided_at": prepared.now,
            "policy": served.policy,
            "path_key": served.path_version.path.key,
            "rules_path_key": rules.path_version.path.key,
            "eligible": [version.path.key for version in eligible],
            "propensity": round(served.propensity, 6),
            "model_version": acting.model_version,
            "scores": acting.scored.scores if acting.scored else {},
            "explanation": acting.scored.explanation if acting.scored and acting.policy == "model" else [],
            "features": person.features or {},
            "feature_source": person.feature_source,
            "shadow": self._shadows(prepared, person, acting.path_version.path.key),
            "reason": served.reason,
            "latency_ms": round((perf_counter() - started) * 1000, 3),
        }
        assignment = (
            deciding.AssignmentDraft(arm.experiment.pk, arm.variant.pk, arm.hash_value)
            if arm is not None and arm.assign
            else None
        )
        return deciders.Choice(served.path_version, served.reason, Draft(values, assignment), served.source)

    def _person(
        self, prepared: Prepared, end_user: EndUser, eligible: list[PathVersion], rules: planner.PathDecision
    ) -> Person:
        if not prepared.features_read:
            self._read_features(prepared, end_user)
        read = prepared.features
        if read is None:
            problem = prepared.feature_error or "no features read"
            return Person(eligible, rules, None, problem, "", "")
        source = read.sources.get(end_user.pk, read.source)
        text = (
            f"features from the cache, up to {read.age_seconds:.0f} s old (Redis unavailable)"
            if source == "cache"
            else f"features from {source}"
        )
        row = read.rows.get(end_user.pk)
        return Person(
            eligible, rules, row, "" if row is not None else "no features for this user", source, text
        )

    def _acting(self, model: loaded.Loaded | None, prepared: Prepared, person: Person) -> Acting:
        """The model's choice within its budget, else the rules' choice with why."""
        rules = person.rules
        if model is None:
            return Acting(rules.path_version, PathChoice.Policy.RULES, rules.source, rules.reason)
        label = str(model.model_version)
        if person.feature_problem:
            reason = f"model {label} not asked: {person.feature_problem}; {rules.reason}"
            return Acting(rules.path_version, "rules", rules.source, reason, None, model.model_version)
        try:
            scored = policy.score(model, person.features, person.eligible, explained=True)
        except Exception as error:
            logger.exception("ml.inference_failed", extra={"model": model.model_version.label})
            reason = f"model {label} failed ({type(error).__name__}: {error}); {rules.reason}"
            return Acting(rules.path_version, "rules", rules.source, reason, None, model.model_version)
        if scored.elapsed_ms > prepared.budget_ms:
            reason = (
                f"model {label} over its {prepared.budget_ms:g} ms budget ({scored.elapsed_ms:.1f} ms); "
                f"{rules.reason}"
            )
            return Acting(rules.path_version, "rules", rules.source, reason, scored, model.model_version)
        chosen = person.eligible[scored.best]
        reason = explain.model_reason(
            label=label,
            chosen_probability=scored.probabilities[scored.best],
            rules_name=rules.path_version.path.name,
            rules_probability=scored.probability_of(rules.path_version.path.key),
            same_as_rules=chosen.pk == rules.path_version.pk,
            explanation=scored.explanation,
            features=person.feature_text,
        )
        return Acting(chosen, PathChoice.Policy.MODEL, SOURCE, reason, scored, model.model_version)

    def _arm(self, arm: arms.Arm, prepared: Prepared, person: Person) -> Acting:
        """The arm's policy: the rules, or its version (which falls back to the rules as the
        active model does); the reason names the experiment and the arm first."""
        arm_policy, rules = prepared.arm_policies.get(arm.variant.pk), person.rules
        if arm_policy == arms.RULES:
            acting = Acting(rules.path_version, PathChoice.Policy.RULES, rules.source, rules.reason)
        elif arm_policy is None:
            reason = f"{arm.variant.model_version} cannot be served (unknown or refused); {rules.reason}"
            acting = Acting(rules.path_version, PathChoice.Policy.RULES, rules.source, reason)
        else:
            acting = self._acting(arm_policy, prepared, person)
        reason = f"{arms.arm_reason(arm)}: {acting.reason}"
        return Acting(
            acting.path_version, acting.policy, acting.source, reason, acting.scored, acting.model_version
        )

    def _explored(self, acting: Acting, prepared: Prepared, eligible: list[PathVersion]) -> Served:
        """A uniform draw with probability `share` when there are two paths or more, else the
        acting policy's choice; either with the logging policy's propensity."""
        count = len(eligible)
        own_key = acting.path_version.path.key
        if count >= 2 and prepared.share > 0 and self.random.random() < prepared.share:
            drawn = eligible[self.random.randrange(count)]
            own = drawn.pk == acting.path_version.pk
            propensity = policy.propensity(share=prepared.share, eligible_count=count, chosen_is_own=own)
            reason = (
                f"exploration: drawn uniformly among {count} eligible paths "
                f"({prepared.share:.0%} of choices), propensity {propensity:.3f}; "
                f"the {acting.policy} policy chose '{own_key}'"
            )
            return Served(drawn, PathChoice.Policy.EXPLORE, "explore", reason, propensity)
        propensity = policy.propensity(share=prepared.share, eligible_count=count, chosen_is_own=True)
        return Served(acting.path_version, acting.policy, acting.source, acting.reason, propensity)

    def _shadows(self, prepared: Prepared, person: Person, acting_key: str) -> list[dict]:
        """What each shadow version would have chosen on the same rows, and whether it agrees with
        the acting policy; never acts, never fails the decision."""
        if not prepared.shadows or person.features is None:
            return []
        found = []
        for shadow in prepared.shadows:
            version = shadow.model_version
            try:
                scored = policy.score(shadow, person.features, person.eligible, explained=False)
            except Exception as error:
                logger.warning("ml.shadow_failed", extra={"model": version.label, "error": str(error)})
                found.append({"version": version.version, "error": f"{type(error).__name__}: {error}"})
                continue
            found.append(
                {
                    "version": version.version,
                    "model_version_id": version.pk,
                    "path_key": scored.path_key,
                    "probability": round(scored.probabilities[scored.best], 4),
                    "agrees": scored.path_key == acting_key,
                }
            )
        return found

    def record(self, *, chosen: list[tuple[object, Draft]]) -> None:
        """One INSERT of PathChoice rows and one of the model experiments' assignments, in the
        enrollment's transaction (an assignment already stored wins)."""
        PathChoice.objects.bulk_create(
            [
                PathChoice(
                    workspace_id=enrollment.workspace_id,
                    end_user_id=enrollment.end_user_id,
                    enrollment_id=enrollment.pk,
                    **draft.values,
                )
                for enrollment, draft in chosen
            ]
        )
        drafts = [(enrollment, draft.assignment) for enrollment, draft in chosen if draft.assignment]
        if drafts:
            deciding.assignments_record(chosen=drafts)


DECIDER = PathModelDecider()
