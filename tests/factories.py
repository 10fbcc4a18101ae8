import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from onboarding.models import Event
from tenancy import services
from tenancy.models import EndUser, Workspace


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda number: f"Workspace {number}")
    slug = factory.Sequence(lambda number: f"workspace-{number}")


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndUser

    workspace = factory.SubFactory(WorkspaceFactory)
    external_id = factory.Sequence(lambda number: f"user-{number}")


# --- PII canaries (issue 4): contact values planted in test data that no log line may contain;
# tests/conftest.py checks every log line written during the suite for them.

CANARY_EMAIL = "canary.pii.7f3a@example.com"
CANARY_PHONE = "+14155550173"
CANARY_FIRST_NAME = "Zephyrine"
CANARY_LAST_NAME = "Quillfeather"
CANARY_NAME = f"{CANARY_FIRST_NAME} {CANARY_LAST_NAME}"
CANARY_STREET = "17 Wrenfield Canary Lane"
CANARY_TRAITS = {
    "email": CANARY_EMAIL,
    "phone": CANARY_PHONE,
    "firstName": CANARY_FIRST_NAME,
    "lastName": CANARY_LAST_NAME,
    "name": CANARY_NAME,
    "address": {"street": CANARY_STREET, "city": "Canaryville"},
}
# Matched case-insensitively; the phone's digits also in any formatting.
PII_CANARIES = (CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME, CANARY_STREET)
PII_CANARY_DIGITS = CANARY_PHONE.removeprefix("+1")


class ContactFactory(factory.django.DjangoModelFactory):
    """Contact data made of the canaries."""

    class Meta:
        model = "onboarding.Contact"

    end_user = factory.SubFactory(EndUserFactory)
    email = CANARY_EMAIL
    phone = CANARY_PHONE
    first_name = CANARY_FIRST_NAME
    last_name = CANARY_LAST_NAME
    name = CANARY_NAME
    address = factory.LazyFunction(lambda: dict(CANARY_TRAITS["address"]))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    workspace = factory.SelfAttribute("end_user.workspace")
    end_user = factory.SubFactory(EndUserFactory)
    type = Event.Type.TRACK
    name = "Project Created"
    message_id = factory.Sequence(lambda number: f"message-{number}")
    user_id = factory.SelfAttribute("end_user.external_id")
    timestamp = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)


class AdminUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"admin{number}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = True

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or "correct horse battery staple")
        if create:
            user.save(update_fields=["password"])


# --- Published versions and enrollments (issue 3, progress engine) ---------------------------


class PathFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "paths.Path"

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda number: f"path-{number}")
    name = factory.LazyAttribute(lambda path: path.key.replace("-", " ").title())


class PathVersionFactory(factory.django.DjangoModelFactory):
    """A draft, as the model makes it; see PublishedPathVersionFactory."""

    class Meta:
        model = "paths.PathVersion"

    path = factory.SubFactory(PathFactory)
    number = factory.Sequence(lambda number: number + 1)
    status = "draft"


class StepFactory(factory.django.DjangoModelFactory):
    """An event step: `event_name` once, no conditions."""

    class Meta:
        model = "paths.Step"

    path_version = factory.SubFactory(PathVersionFactory)
    key = factory.Sequence(lambda number: f"step-{number}")
    title = factory.LazyAttribute(lambda step: step.key.replace("-", " ").capitalize())
    order = factory.Sequence(lambda number: number)
    completion = "event"
    event_name = "Project Created"


class PublishedPathVersionFactory(PathVersionFactory):
    """What enrollments run on."""

    status = "published"
    published_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def workspace_paths_published(version, create, extracted, **kwargs):
        if create:
            services.workspace_paths_published(workspace=version.path.workspace, at=version.published_at)


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "onboarding.Enrollment"

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    path_version = factory.SubFactory(
        PublishedPathVersionFactory, path__workspace=factory.SelfAttribute("...end_user.workspace")
    )
    enrolled_at = factory.LazyFunction(timezone.now)
    step_entered_at = factory.SelfAttribute("enrolled_at")
