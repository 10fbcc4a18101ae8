"""Why the model chose a path: the contributions named by feature and value, and the end user's
admin page showing the latest path choice (policy, version, chosen vs the rules' path, top
features, feature source, shadow agreement), escaped."""

from datetime import UTC, datetime

import pytest

from ml.models import ModelVersion, PathChoice
from ml.serving import decider, explain, loaded
from onboarding.progress import enrolling
from paths import services as path_services
from tenancy.models import EndUser
from tests.conftest import verified_client
from tests.factories import AdminUserFactory
from tests.ml.conftest import feature_source, register_preferring

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STEPS = [{"key": "create", "title": "Create", "completion": "event", "event_name": "Project Created"}]


@pytest.fixture(autouse=True)
def _serving(settings, fresh_serving):
    settings.ML_EXPLORATION_SHARE = 0.0
    decider.DECIDER.seed(0)


@pytest.fixture
def workspace(tenant):
    workspace = tenant[0]
    for key, name, audience, priority in (
        ("get-started", "Get started", None, 10),
        ("developer", "Developer path", {"persona": ["developer"]}, 0),
    ):
        path = path_services.path_create(
            workspace=workspace, key=key, name=name, audience=audience, priority=priority
        )
        draft = path.versions.get()
        path_services.path_version_replace_steps(path_version=draft, steps=STEPS)
        path_services.path_version_publish(path_version=draft)
    return workspace


def test_contributions_name_the_feature_and_value_that_moved_the_score(workspace):
    version = register_preferring(workspace, persona="developer", preferred="developer", other="get-started")
    predictor = loaded.load(version).predictor
    developer = {
        "persona": "developer",
        "company_size": "1-10",
        "engagement_score": 50.0,
        "path": "developer",
    }
    marketer = {**developer, "persona": "marketer"}

    for_developer = dict(
        explain.top_contributions(predictor, predictor.matrix([developer]), developer, limit=12)
    )
    for_marketer = dict(
        explain.top_contributions(predictor, predictor.matrix([marketer]), marketer, limit=12)
    )

    assert for_developer["persona=developer"] > 0.2
    assert for_marketer["persona=marketer"] < -0.2
    assert explain.contributions_text([["persona=developer", 0.214], ["company_size=51-200", -0.05]]) == (
        "persona=developer +0.21, company_size=51-200 -0.05"
    )


def test_the_end_user_page_shows_the_models_choice_and_why(workspace):
    register_preferring(workspace, preferred="developer", other="get-started")
    register_preferring(
        workspace, preferred="get-started", other="developer", status=ModelVersion.Status.SHADOW
    )
    end_user = EndUser.objects.create(workspace=workspace, external_id="ada", persona="developer")
    enrolling.enrol(end_user=end_user, enrolled_at=T0)
    choice = PathChoice.objects.get(end_user=end_user)
    client = verified_client(AdminUserFactory(is_superuser=True))

    content = client.get(f"/admin/onboarding/enduser/{end_user.pk}/change/").content.decode()

    assert "<label>Path model:</label>" in content
    assert "policy <b>model</b> (path_classifier 1.0.0), propensity 1.000" in content
    developer, rules = (f"{choice.scores[key]:.0%}" for key in ("developer", "get-started"))
    assert f"chose <b>developer</b> ({developer}); the rules chose get-started ({rules})" in content
    assert "top features: persona=developer +" in content
    assert f"features from {feature_source()}" in content
    assert "shadow 1.1.0: get-started (disagrees)" in content


def test_the_panel_escapes_what_it_shows(workspace):
    end_user = EndUser.objects.create(workspace=workspace, external_id="eve", persona="developer")
    PathChoice.objects.create(
        workspace=workspace,
        end_user=end_user,
        decided_at=T0,
        policy="rules",
        path_key="<script>alert(1)</script>",
        rules_path_key="get-started",
        eligible=["get-started"],
        propensity=1.0,
        explanation=[["persona=<img src=x>", 0.3]],
        reason="because <b>",
    )
    client = verified_client(AdminUserFactory(is_superuser=True))

    content = client.get(f"/admin/onboarding/enduser/{end_user.pk}/change/").content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "persona=&lt;img src=x&gt; +0.30" in content
    assert "<i>because &lt;b&gt;</i>" in content
