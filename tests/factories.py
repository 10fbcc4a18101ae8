import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from onboarding.models import EndUser, Event, Workspace


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
