"""export_paths / import_paths: files for git, round trips, idempotent imports, clear errors."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from paths import services
from paths.models import Path, PathVersion, Step
from tests.paths.conftest import build_path

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def export(workspace, tmp_path, name="paths.json") -> dict:
    target = tmp_path / name
    run("export_paths", "--workspace", workspace.slug, "--out", str(target))
    return json.loads(target.read_text())


def write(tmp_path, document, name="in.json") -> str:
    target = tmp_path / name
    target.write_text(json.dumps(document))
    return str(target)


def state(workspace) -> list[tuple]:
    """Everything an import could change, ids included."""
    return [
        (
            version.pk,
            version.path.key,
            version.number,
            version.status,
            version.changelog,
            version.published_at,
        )
        for version in PathVersion.objects.filter(path__workspace=workspace).order_by("pk")
    ] + list(Step.objects.filter(path_version__path__workspace=workspace).order_by("pk").values_list())


@pytest.fixture
def acme_paths(acme):
    """A path with history (v1 archived, v2 published, v3 draft) and a default path."""
    main = build_path(acme)
    services.path_update(path=main, audience={"persona": ["admin"]}, priority=5, description="For admins")
    second = services.path_version_create_draft(source=main.versions.get(), changelog="Connect first")
    services.steps_reorder(path_version=second, keys=["connect", "welcome", "invite"])
    services.path_version_publish(path_version=second)
    third = services.path_version_create_draft(source=second)
    services.step_delete(step=third.steps.get(key="invite"))
    fallback = services.path_create(workspace=acme, key="basics", name="Basics", is_default=True)
    services.step_create(
        path_version=fallback.versions.get(), key="tour", title="Take the tour", completion="api"
    )
    services.path_version_publish(path_version=fallback.versions.get())
    return main, fallback


def test_export_writes_every_version_with_its_steps(acme, acme_paths, tmp_path):
    document = export(acme, tmp_path)

    assert document["format"] == "onboarding-paths/1"
    assert [path["key"] for path in document["paths"]] == ["basics", "getting-started"]
    basics, main = document["paths"]
    assert basics == {
        "key": "basics",
        "name": "Basics",
        "description": "",
        "audience": {"persona": [], "use_case": [], "company_size": [], "signup_source": []},
        "priority": 0,
        "is_default": True,
        "versions": [
            {
                "number": 1,
                "status": "published",
                "changelog": "",
                "steps": [
                    {
                        "key": "tour",
                        "title": "Take the tour",
                        "body": "",
                        "optional": False,
                        "expected_duration": None,
                        "ui_component": "checklist",
                        "deep_link": "",
                        "completion": "api",
                        "event_name": "",
                        "conditions": [],
                        "count": 1,
                        "window": None,
                        "window_anchor": "previous_step",
                        "questions": [],
                    }
                ],
            }
        ],
    }
    assert main["audience"]["persona"] == ["admin"]
    assert [(version["number"], version["status"], version["changelog"]) for version in main["versions"]] == [
        (1, "archived", ""),
        (2, "published", "Connect first"),
        (3, "draft", "Cloned from v2."),
    ]
    assert [[step["key"] for step in version["steps"]] for version in main["versions"]] == [
        ["welcome", "connect", "invite"],
        ["connect", "welcome", "invite"],
        ["connect", "welcome"],
    ]
    connect = main["versions"][0]["steps"][1]
    assert (connect["expected_duration"], connect["conditions"]) == (
        "PT2H",
        [{"property": "provider", "operator": "in", "value": ["github", "gitlab"]}],
    )
    assert main["versions"][0]["steps"][2]["window"] == "P7D"


def test_export_then_import_into_another_workspace_then_export_gives_the_same_file(
    acme, globex, acme_paths, tmp_path
):
    original = export(acme, tmp_path, "acme.json")

    report = run("import_paths", "--workspace", globex.slug, "--in", str(tmp_path / "acme.json"))

    assert report.splitlines() == [
        "path 'basics': created with v1 (published)",
        "path 'getting-started': created with v1 (archived), v2 (published), v3 (draft)",
        "Applied 2 change(s).",
    ]
    assert export(globex, tmp_path, "globex.json") == original
    assert Path.objects.get(workspace=globex, is_default=True).key == "basics"


def test_importing_the_same_file_twice_changes_nothing(acme, globex, acme_paths, tmp_path):
    export(acme, tmp_path, "acme.json")
    run("import_paths", "--workspace", globex.slug, "--in", str(tmp_path / "acme.json"))
    before = state(globex)

    again = run("import_paths", "--workspace", globex.slug, "--in", str(tmp_path / "acme.json"))
    into_source = run("import_paths", "--workspace", acme.slug, "--in", str(tmp_path / "acme.json"))

    assert again == into_source == "No changes.\n"
    assert state(globex) == before


def test_a_changed_file_makes_a_new_draft_and_publish_publishes_it(acme, tmp_path):
    build_path(acme)  # v1 published
    document = export(acme, tmp_path)
    steps = document["paths"][0]["versions"][0]["steps"]
    steps[1]["event_name"] = "Integration Connected"
    steps.append({"key": "launch", "title": "Launch", "event_name": "Launched"})
    document["paths"][0]["priority"] = 3
    changed = write(tmp_path, document)

    report = run("import_paths", "--workspace", acme.slug, "--in", changed)

    assert report.splitlines() == [
        "path 'getting-started': priority updated",
        "path 'getting-started': draft v2 created",
        "  step 'connect': event_name 'Integration Added' → 'Integration Connected'",
        "  step 'launch' added",
        "Applied 2 change(s).",
    ]
    path = Path.objects.get(workspace=acme)
    assert list(path.versions.order_by("number").values_list("number", "status")) == [
        (1, "published"),
        (2, "draft"),
    ]
    assert path.priority == 3
    assert run("import_paths", "--workspace", acme.slug, "--in", changed) == "No changes.\n"

    published = run("import_paths", "--workspace", acme.slug, "--in", changed, "--publish")

    assert published.splitlines() == ["path 'getting-started': v2 published", "Applied 1 change(s)."]
    assert list(path.versions.order_by("number").values_list("number", "status")) == [
        (1, "archived"),
        (2, "published"),
    ]
    draft = path.versions.get(number=2)
    assert list(draft.steps.order_by("order").values_list("key", "event_name")) == [
        ("welcome", ""),
        ("connect", "Integration Connected"),
        ("invite", "Teammate Invited"),
        ("launch", "Launched"),
    ]
    assert run("import_paths", "--workspace", acme.slug, "--in", changed, "--publish") == "No changes.\n"


def test_a_changed_file_updates_an_open_draft_instead_of_stacking_drafts(acme, tmp_path):
    path = build_path(acme)
    services.path_version_create_draft(source=path.versions.get())
    document = export(acme, tmp_path)
    document["paths"][0]["versions"][-1]["steps"][0]["title"] = "Hello there"

    report = run("import_paths", "--workspace", acme.slug, "--in", write(tmp_path, document))

    assert report.splitlines()[:2] == [
        "path 'getting-started': draft v2 updated",
        "  step 'welcome': title 'Say hello' → 'Hello there'",
    ]
    assert path.versions.count() == 2
    assert path.versions.get(number=2).steps.get(key="welcome").title == "Hello there"


def test_dry_run_reports_without_changing_anything(acme, globex, acme_paths, tmp_path):
    export(acme, tmp_path, "acme.json")

    report = run("import_paths", "--workspace", globex.slug, "--in", str(tmp_path / "acme.json"), "--dry-run")

    assert report.splitlines()[-1] == "Dry run: would apply 2 change(s)."
    assert not Path.objects.filter(workspace=globex).exists()


def test_an_invalid_file_is_refused_with_every_error_and_changes_nothing(acme, globex, acme_paths, tmp_path):
    document = export(acme, tmp_path)
    main = document["paths"][1]
    main["versions"][1]["steps"][0]["conditions"][0]["operator"] = "equals"
    main["versions"][1]["steps"][1]["questions"][0]["type"] = "select"
    main["versions"][1]["steps"].append(dict(main["versions"][1]["steps"][2]))
    main["versions"][2]["steps"][0]["event_name"] = ""
    document["paths"][0]["audience"]["country"] = ["fr"]

    with pytest.raises(CommandError) as raised:
        run("import_paths", "--workspace", globex.slug, "--in", write(tmp_path, document), "--publish")

    assert str(raised.value).endswith(
        "nothing imported, 6 error(s):\n"
        "  - path 'basics': unknown audience feature 'country' "
        "(persona, use_case, company_size, signup_source)\n"
        "  - path 'getting-started' v2: step 'connect': condition 1: unknown operator 'equals' "
        "(one of eq, neq, in, not_in, exists, not_exists, gt, gte, lt, lte, contains)\n"
        "  - path 'getting-started' v2: step 'welcome': question 'role': unknown type 'select' (one of text, "
        "choice, multi_choice, number, boolean)\n"
        "  - path 'getting-started' v2: step 'welcome': question 'role': "
        "only choice and multi_choice questions take choices\n"
        "  - path 'getting-started' v2: step 'invite': duplicate key\n"
        "  - path 'getting-started' v3: step 'connect': an event step needs an event name"
    )
    assert not Path.objects.filter(workspace=globex).exists()


def test_unreadable_input_and_unknown_workspaces_are_reported(acme, tmp_path):
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")

    with pytest.raises(CommandError, match="no workspace with slug 'nope'"):
        run("export_paths", "--workspace", "nope", "--out", str(tmp_path / "out.json"))
    with pytest.raises(CommandError, match=r"broken\.json is not valid JSON"):
        run("import_paths", "--workspace", acme.slug, "--in", str(not_json))
    with pytest.raises(CommandError, match=r"cannot read .*missing\.json: No such file or directory"):
        run("import_paths", "--workspace", acme.slug, "--in", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match='expected an object with "format": "onboarding-paths/1"'):
        run("import_paths", "--workspace", acme.slug, "--in", write(tmp_path, {"paths": []}))
