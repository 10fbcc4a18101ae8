"""A person with something in every table that can hold data about them, built the way a client
would (Segment calls, the progress API) plus the guardrails rows; for the export and erasure tests.

Every value that identifies the person is distinctive, so a scan of the whole database for it
finds only what is really theirs.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from guardrails.models import LLMCall, PolicyDecision, Preference
from guardrails.policy import services as policy_services
from onboarding.models import Enrollment, EnrollmentSignal
from paths import services as path_services
from tenancy.audit import audit_record
from tenancy.models import EndUser, Workspace
from tests.conftest import basic_auth

STEPS = [
    {
        "key": "create-project",
        "title": "Create a project",
        "completion": "event",
        "event_name": "Project Created",
        "conditions": [{"property": "plan", "operator": "eq", "value": "pro"}],
    },
    {
        "key": "profile",
        "title": "Tell us about you",
        "completion": "form",
        "questions": [
            {"key": "role", "label": "Role", "type": "choice", "required": True, "choices": ["admin", "dev"]},
            {"key": "team_size", "label": "Team size", "type": "number", "required": True},
            {"key": "about", "label": "About you", "type": "text", "required": False},
        ],
    },
]


@dataclass(frozen=True)
class Person:
    user_id: str
    anonymous_id: str
    email: str
    phone: str
    name: str
    canary: str

    @property
    def needles(self) -> tuple[str, ...]:
        first, last = self.name.split()
        return (self.user_id, self.anonymous_id, self.email, self.phone, self.name, first, last, self.canary)


ZELDA = Person(
    user_id="zq-user-7731",
    anonymous_id="anon-zq-5512",
    email="zelda.quillfeather@example.org",
    phone="+14155550123",
    name="Zelda Quillfeather",
    canary="canary-mauve-platypus",
)
OTTO = Person(
    user_id="ob-user-4410",
    anonymous_id="anon-ob-9001",
    email="otto.brightwater@example.net",
    phone="+447700900123",
    name="Otto Brightwater",
    canary="canary-teal-axolotl",
)


def published_path(workspace: Workspace):
    path = path_services.path_create(workspace=workspace, key="main", name="Main path", is_default=True)
    draft = path.versions.get()
    path_services.path_version_replace_steps(path_version=draft, steps=STEPS)
    return path_services.path_version_publish(path_version=draft)


def _post(path: str, body: dict, key: str, method: str = "post"):
    client = APIClient()
    response = getattr(client, method)(path, body, format="json", HTTP_AUTHORIZATION=basic_auth(key))
    assert response.status_code == 200, response.content
    return response


def build(person: Person, *, workspace: Workspace, write_key: str, secret_key: str) -> EndUser:
    """Events (anonymous, identify, track), a completed enrollment with answers, consent,
    preferences, a policy decision, an LLM call, audit rows and admin history about them."""
    _post(
        "/v1/page",
        {"anonymousId": person.anonymous_id, "name": "Pricing", "properties": {"referrer": person.canary}},
        write_key,
    )
    _post(
        "/v1/identify",
        {
            "userId": person.user_id,
            "anonymousId": person.anonymous_id,
            "traits": {
                "email": person.email,
                "phone": person.phone,
                "name": person.name,
                "persona": "admin",
                "favourite_snack": person.canary,
            },
        },
        write_key,
    )
    _post(
        "/v1/track",
        {
            "userId": person.user_id,
            "event": "Project Created",
            "properties": {"plan": "pro", "note": person.canary},
            "context": {"traits": {"favourite_snack": person.canary}},
        },
        write_key,
    )
    onboarding = f"/api/v1/users/{person.user_id}/onboarding"
    _post(
        f"{onboarding}/answers",
        {
            "step": "profile",
            "answers": {"role": "admin", "team_size": 5, "about": f"{person.name}, {person.phone}"},
        },
        secret_key,
    )
    end_user = EndUser.objects.get(workspace=workspace, external_id=person.user_id)
    enrollment = Enrollment.objects.get(end_user=end_user)
    assert enrollment.status == Enrollment.Status.COMPLETED
    EnrollmentSignal.objects.create(
        enrollment=enrollment,
        kind=EnrollmentSignal.Kind.NEEDS_REVIEW,
        step_key="create-project",
        reason=f"property 'note' is {person.canary!r}, not a number",
    )
    for granted in (True, False):
        policy_services.consent_record(
            end_user=end_user, channel="email", purpose="marketing", granted=granted, source="api"
        )
    Preference.objects.create(
        workspace=workspace, end_user=end_user, snooze_until=timezone.now() + timedelta(days=1)
    )
    PolicyDecision.objects.create(
        workspace=workspace,
        end_user=end_user,
        action=PolicyDecision.Action.NUDGE_SEND,
        channel="email",
        allowed=False,
        reasons=[{"code": "consent", "message": "no consent for email/marketing"}],
    )
    LLMCall.objects.create(
        workspace=workspace,
        end_user=end_user,
        model="gpt-test",
        redacted_input={"traits": {"favourite_snack": person.canary}, "name": "[NAME]"},
        output={"text": f"Hi {person.name.split()[0]}!"},
        prompt_tokens=120,
        completion_tokens=30,
        cost_usd="0.000450",
        outcome=LLMCall.Outcome.OK,
    )
    audit_record(
        workspace=workspace,
        action="admin.change",
        actor_label="ops",
        obj=end_user,
        before={"traits": {}},
        after={"traits": {"favourite_snack": person.canary}},
    )
    admin = get_user_model().objects.create(username=f"ops-{uuid.uuid4().hex[:8]}")  # no password to hash
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(EndUser),
        object_id=str(end_user.pk),
        object_repr=str(end_user),
        action_flag=CHANGE,
        change_message="[]",
    )
    return end_user
