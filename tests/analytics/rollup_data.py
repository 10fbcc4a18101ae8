"""A small onboarding history with known numbers, shared by the rollup, funnel and metrics tests.

Path "setup" v1 has steps s1, s2 (optional), s3. Seven enrollments over two UTC days; every
time is given in seconds after enrolment, so the expected counts and durations below can be
checked by hand against the definitions (docs/analytics.md).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from onboarding.models import Enrollment, StepCompletion
from tests.factories import EndUserFactory, PathFactory, PublishedPathVersionFactory, StepFactory

DAY_1, DAY_2 = date(2026, 1, 5), date(2026, 1, 6)
NOW = datetime(2026, 3, 1, tzinfo=UTC)  # every window of the data has closed


@dataclass(frozen=True)
class Spec:
    name: str
    day: date
    persona: str
    completions: tuple[tuple[str, str, int], ...] = ()  # (step, method, seconds after enrolment)
    reverted: tuple[str, ...] = ()
    completed_after_seconds: int | None = None


SPECS = (
    Spec("e1", DAY_1, "dev", (("s1", "api", 100), ("s2", "api", 1100), ("s3", "api", 4700)), (), 4700),
    Spec("e2", DAY_1, "dev", (("s1", "api", 200), ("s2", "skip", 300))),
    Spec("e3", DAY_1, "pm", (("s1", "event", 50),)),
    Spec("e4", DAY_1, "pm"),
    Spec("e5", DAY_1, "dev", (("s1", "api", 100), ("s2", "api", 200)), ("s2",)),
    Spec("e6", DAY_2, "", (("s1", "api", 1000), ("s2", "api", 2000), ("s3", "api", 3000)), (), 20 * 86400),
    Spec("e7", DAY_2, "pm", (("s2", "api", 500),)),
)


def build_history(workspace):
    """The path version and {spec name: enrollment} of SPECS in `workspace`."""
    path = PathFactory(workspace=workspace, key="setup", name="Setup")
    version = PublishedPathVersionFactory(path=path, number=1)
    for order, key in enumerate(("s1", "s2", "s3")):
        StepFactory(path_version=version, key=key, title=f"Step {key}", order=order, optional=key == "s2")
    enrollments = {spec.name: enroll(workspace, version, spec) for spec in SPECS}
    return version, enrollments


def enroll(workspace, version, spec: Spec) -> Enrollment:
    enrolled_at = datetime.combine(spec.day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    end_user = EndUserFactory(workspace=workspace, persona=spec.persona)
    completed_at = (
        enrolled_at + timedelta(seconds=spec.completed_after_seconds)
        if spec.completed_after_seconds is not None
        else None
    )
    enrollment = Enrollment.objects.create(
        workspace=workspace,
        end_user=end_user,
        path_version=version,
        status=Enrollment.Status.COMPLETED if completed_at else Enrollment.Status.ABANDONED,
        enrolled_at=enrolled_at,
        step_entered_at=enrolled_at,
        completed_at=completed_at,
    )
    for step_key, method, seconds in spec.completions:
        complete(enrollment, step_key, method, seconds, reverted=step_key in spec.reverted)
    return enrollment


def complete(
    enrollment: Enrollment, step_key: str, method: str, seconds: int, *, reverted: bool = False
) -> None:
    """A step completion `seconds` after enrolment, saved as the progress engine saves it: the
    enrollment is saved too (its updated_at moves)."""
    at = enrollment.enrolled_at + timedelta(seconds=seconds)
    StepCompletion.objects.create(
        enrollment=enrollment,
        step_key=step_key,
        method=method,
        completed_at=at,
        reverted_at=at + timedelta(seconds=1) if reverted else None,
    )
    enrollment.save()
