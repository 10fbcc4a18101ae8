"""Path services: drafts, publishing, immutability, clone-to-draft, diffs; and the selectors."""

from datetime import timedelta

import pytest
from django.utils import timezone

from onboarding.models import Enrollment
from paths import selectors, services
from paths.models import Path, PathVersion, Step
from paths.steps import step_as_dict
from tests.factories import AdminUserFactory, EndUserFactory, EventFactory
from tests.paths.conftest import STEPS, build_path

pytestmark = pytest.mark.django_db


def step_keys(version: PathVersion) -> list[str]:
    return list(version.steps.order_by("order").values_list("key", flat=True))


def snapshot(version: PathVersion) -> list[dict]:
    return [step_as_dict(step) for step in version.steps.order_by("order")]


# --- Paths ----------------------------------------------------------------------------------


def test_a_new_path_starts_with_an_empty_draft(acme):
    path = services.path_create(
        workspace=acme,
        key="admins",
        name="For admins",
        audience={"persona": ["admin"], "company_size": ["50-200"]},
        priority=10,
    )

    assert (path.audience_personas, path.audience_company_sizes, path.audience_use_cases) == (
        ["admin"],
        ["50-200"],
        [],
    )
    assert [(version.number, version.status, version.steps.count()) for version in path.versions.all()] == [
        (1, "draft", 0)
    ]


def test_a_new_default_path_takes_over_from_the_old_default(acme, globex):
    first = services.path_create(workspace=acme, key="first", name="First", is_default=True)
    other_tenant_default = services.path_create(workspace=globex, key="first", name="First", is_default=True)

    second = services.path_create(workspace=acme, key="second", name="Second", is_default=True)
    services.path_update(path=first, is_default=True)

    assert list(Path.objects.filter(is_default=True).order_by("pk")) == [first, other_tenant_default]
    second.refresh_from_db()
    assert second.is_default is False


def test_a_duplicate_path_key_is_refused(acme):
    services.path_create(workspace=acme, key="main", name="Main")

    with pytest.raises(services.PathError, match="a path with key 'main' already exists in Acme"):
        services.path_create(workspace=acme, key="main", name="Other")

    assert Path.objects.count() == 1


# --- Publishing -----------------------------------------------------------------------------


def test_publishing_sets_who_and_when_and_archives_the_previous_version(acme):
    alice = AdminUserFactory(username="alice")
    path = build_path(acme)
    first = path.versions.get(number=1)
    draft = services.path_version_create_draft(source=first)

    before = timezone.now()
    services.path_version_publish(path_version=draft, published_by=alice)

    first.refresh_from_db()
    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == ("published", alice)
    assert draft.published_at >= before
    assert first.status == "archived"
    assert first.archived_at == draft.published_at


def test_the_first_publish_turns_on_progress_for_the_workspace_s_events(acme):
    """Ingestion skips progress evaluation for a workspace that never published a path."""
    from onboarding.ingestion import services as ingestion_services
    from tenancy.models import Workspace

    def identify(user_id: str) -> None:
        ingestion_services.events_ingest(
            workspace=Workspace.objects.get(pk=acme.pk),  # as each request reads it
            raw_events=[{"type": "identify", "userId": user_id, "traits": {"persona": "admin"}}],
            received_at=timezone.now(),
        )

    identify("before")
    assert Workspace.objects.get(pk=acme.pk).paths_published_at is None
    build_path(acme, key="main", name="Main")
    assert Workspace.objects.get(pk=acme.pk).paths_published_at is not None
    identify("after")

    enrolled = set(Enrollment.objects.filter(workspace=acme).values_list("end_user__external_id", flat=True))
    assert enrolled == {"after"}


def test_publishing_refuses_an_invalid_draft_and_lists_every_problem(acme):
    path = services.path_create(workspace=acme, key="main", name="Main")
    draft = path.versions.get()
    services.step_create(path_version=draft, key="connect", title="Connect", completion="event")
    services.step_create(path_version=draft, key="about", title="About you", completion="form")

    with pytest.raises(services.VersionInvalid) as raised:
        services.path_version_publish(path_version=draft)

    assert raised.value.errors == [
        "step 'connect': an event step needs an event name",
        "step 'about': a form step needs at least one question",
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.published_at) == ("draft", None)


def test_an_empty_draft_cannot_be_published(acme):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()

    with pytest.raises(services.VersionInvalid) as raised:
        services.path_version_publish(path_version=draft)

    assert raised.value.errors == ["a version needs at least one step to be published"]


def test_only_drafts_are_published(acme):
    path = build_path(acme)
    published = path.versions.get()

    with pytest.raises(services.VersionNotEditable, match="v1 is published"):
        services.path_version_publish(path_version=published)


def test_step_rules_are_validated_when_written(acme):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()

    with pytest.raises(services.VersionInvalid) as raised:
        services.step_create(
            path_version=draft,
            key="connect",
            title="Connect",
            event_name="Integration Added",
            conditions=[
                {"property": "plan", "operator": "equals", "value": "pro"},
                {"property": "seats", "operator": "gt", "value": "many"},
            ],
            questions=[{"key": "role", "label": "Role", "type": "choice", "required": True}],
        )

    assert raised.value.errors == [
        "step 'connect': condition 1: unknown operator 'equals' (one of eq, neq, in, not_in, exists, "
        "not_exists, gt, gte, lt, lte, contains)",
        "step 'connect': condition 2: 'gt' needs a number",
        "step 'connect': question 'role': a choice question needs choices",
    ]
    assert not Step.objects.exists()


def test_a_duplicate_step_key_is_refused(acme):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()
    services.step_create(path_version=draft, key="connect", title="Connect", event_name="A")

    with pytest.raises(services.VersionInvalid, match="step 'connect': duplicate key"):
        services.step_create(path_version=draft, key="connect", title="Again", event_name="B")

    assert step_keys(draft) == ["connect"]


# --- Immutability ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["published", "archived"])
def test_steps_of_published_and_archived_versions_never_change(acme, status):
    path = build_path(acme)
    version = path.versions.get()
    if status == "archived":
        services.path_version_archive(path_version=version)
    before = snapshot(version)
    step = version.steps.get(key="connect")

    attempts = [
        lambda: services.step_create(path_version=version, key="new", title="New", event_name="X"),
        lambda: services.step_update(step=step, title="Changed"),
        lambda: services.step_delete(step=step),
        lambda: services.steps_reorder(path_version=version, keys=["invite", "connect", "welcome"]),
        lambda: services.path_version_update(path_version=version, changelog="sneaky"),
        lambda: services.path_version_replace_steps(path_version=version, steps=[]),
    ]
    for attempt in attempts:
        with pytest.raises(services.VersionNotEditable) as raised:
            attempt()
        assert str(raised.value) == (
            f"Getting started v1 is {status}: published and archived versions never change. "
            "Clone it to a new draft to make changes."
        )

    version.refresh_from_db()
    assert snapshot(version) == before
    assert (version.status, version.changelog) == (status, "")


def test_draft_steps_are_created_updated_reordered_and_deleted(acme):
    draft = build_path(acme, publish=False).versions.get()

    services.step_update(step=draft.steps.get(key="connect"), title="Connect GitHub", count=3)
    services.steps_reorder(path_version=draft, keys=["invite", "welcome", "connect"])
    services.step_delete(step=draft.steps.get(key="welcome"))

    assert step_keys(draft) == ["invite", "connect"]
    connect = draft.steps.get(key="connect")
    assert (connect.title, connect.count, connect.event_name) == ("Connect GitHub", 3, "Integration Added")


# --- Clone to draft, archive ----------------------------------------------------------------


def test_clone_to_draft_copies_every_step_and_numbers_after_the_highest(acme):
    alice = AdminUserFactory(username="alice")
    path = build_path(acme)
    first = path.versions.get()
    second = services.path_version_create_draft(source=first)
    services.path_version_publish(path_version=second)

    third = services.path_version_create_draft(source=first, created_by=alice)

    assert (third.number, third.status, third.created_by, third.changelog) == (
        3,
        "draft",
        alice,
        "Cloned from v1.",
    )
    assert snapshot(third) == snapshot(first)
    assert snapshot(third)[1]["conditions"] == STEPS[1]["conditions"]
    assert snapshot(third)[2]["window"] == "P7D"
    assert set(third.steps.values_list("pk", flat=True)).isdisjoint(first.steps.values_list("pk", flat=True))


def test_a_second_draft_is_refused(acme):
    path = build_path(acme)
    services.path_version_create_draft(source=path.versions.get())

    with pytest.raises(services.PathError, match=r"Getting started already has a draft \(v2\)"):
        services.path_version_create_draft(source=path.versions.get(number=1))

    assert path.versions.count() == 2


def test_archiving_a_published_version_and_discarding_a_draft(acme):
    path = build_path(acme)
    published = path.versions.get()
    draft = services.path_version_create_draft(source=published)

    services.path_version_archive(path_version=published)
    services.path_version_archive(path_version=draft)

    assert list(path.versions.order_by("number").values_list("status", flat=True)) == ["archived", "archived"]
    with pytest.raises(services.PathError, match="v1 is already archived"):
        services.path_version_archive(path_version=published)


# --- Diff -----------------------------------------------------------------------------------


def test_the_diff_names_each_change_in_words(acme):
    path = build_path(acme)
    old = path.versions.get()
    new = services.path_version_create_draft(source=old)
    services.step_update(
        step=new.steps.get(key="connect"),
        event_name="Integration Connected",
        conditions=[{"property": "provider", "operator": "eq", "value": "github"}],
        expected_duration=timedelta(hours=3),
    )
    services.step_update(
        step=new.steps.get(key="welcome"),
        questions=[
            {
                "key": "role",
                "label": "Your role",
                "type": "choice",
                "required": True,
                "choices": ["admin", "developer", "designer"],
            },
            {"key": "goal", "label": "Your goal", "type": "text", "required": False},
        ],
    )
    services.step_delete(step=new.steps.get(key="invite"))
    services.step_create(
        path_version=new, key="first-project", title="Create a project", event_name="Project Created"
    )
    services.steps_reorder(path_version=new, keys=["connect", "welcome", "first-project"])

    changes = services.path_version_diff(old=old, new=new)

    assert changes == [
        "step 'connect': expected_duration 2 hours → 3 hours",
        "step 'connect': event_name 'Integration Added' → 'Integration Connected'",
        'step \'connect\': conditions provider is one of ["github", "gitlab"] → provider = "github"',
        "step 'welcome': question 'goal' added",
        "step 'welcome': question 'team_size' removed",
        "step 'welcome': question 'role' choices "
        '["admin", "developer"] → ["admin", "developer", "designer"]',
        "step 'first-project' added",
        "step 'invite' removed",
        "step order changed: welcome, connect → connect, welcome",
    ]
    assert services.path_version_diff(old=old, new=old) == []


# --- Selectors ------------------------------------------------------------------------------


def enroll(end_user, version, status="active"):
    now = timezone.now()
    return Enrollment.objects.create(
        workspace=end_user.workspace,
        end_user=end_user,
        path_version=version,
        status=status,
        enrolled_at=now,
        step_entered_at=now,
    )


def test_enrolled_counts_per_version_and_status(acme, globex):
    path = build_path(acme)
    first = path.versions.get()
    second = services.path_version_create_draft(source=first)
    services.path_version_publish(path_version=second)
    for status in ("active", "active", "completed", "abandoned"):
        enroll(EndUserFactory(workspace=acme), first, status)
    enroll(EndUserFactory(workspace=acme), second)
    other = build_path(globex).versions.get()
    enroll(EndUserFactory(workspace=globex), other)

    counts = selectors.version_enrollment_counts(workspace=acme)
    annotated = selectors.with_enrollment_counts(PathVersion.objects.filter(path=path)).order_by("number")

    assert counts == {first.pk: {"active": 2, "completed": 1, "abandoned": 1}, second.pk: {"active": 1}}
    assert selectors.version_enrollment_counts(workspace=acme, path=path) == counts
    assert [
        (
            version.enrolled_total,
            version.enrolled_active,
            version.enrolled_completed,
            version.enrolled_abandoned,
        )
        for version in annotated
    ] == [(4, 2, 1, 1), (1, 1, 0, 0)]


def test_known_event_names_are_the_workspaces_recent_track_events(acme, globex):
    ada = EndUserFactory(workspace=acme)
    EventFactory(end_user=ada, name="Project Created")
    EventFactory(end_user=ada, name="Project Created")
    EventFactory(end_user=ada, name="Integration Added")
    EventFactory(end_user=ada, name="Dashboard", type="page")
    EventFactory(end_user=ada, name="Ancient Event", timestamp=timezone.now() - timedelta(days=120))
    EventFactory(end_user=EndUserFactory(workspace=globex), name="Globex Only")

    assert selectors.known_event_names(workspace=acme) == {"Project Created", "Integration Added"}
    EventFactory(end_user=ada, name="Brand New")
    assert "Brand New" not in selectors.known_event_names(workspace=acme)  # cached for a while
