"""The ML layer's part of a GDPR export and erasure: path choices and features."""

import json

import pytest
from django.utils import timezone

from guardrails.gdpr import erasure
from ml.models import FeatureSnapshot, PathChoice
from tenancy.models import EndUser
from tests.conftest import basic_auth, key_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def chosen(tenant):
    """A person identified over the API, with a logged path choice and a feature snapshot."""
    workspace, write_key, _ = tenant
    response = key_client(write_key).post(
        "/v1/identify", {"userId": "ml-gdpr-1", "traits": {"persona": "data_analyst"}}, format="json"
    )
    assert response.status_code == 200
    end_user = EndUser.objects.get(workspace=workspace, external_id="ml-gdpr-1")
    now = timezone.now()
    PathChoice.objects.create(
        workspace=workspace,
        end_user=end_user,
        decided_at=now,
        policy=PathChoice.Policy.EXPLORE,
        path_key="analyst-insights",
        rules_path_key="get-started",
        eligible=["analyst-insights", "get-started"],
        propensity=0.05,
        features={"persona": "data_analyst", "company_size": "1-10"},
        explanation=[["persona=data_analyst", 0.2]],
        reason="exploration: persona=data_analyst",
    )
    FeatureSnapshot.objects.create(
        workspace=workspace, end_user=end_user, event_count=4, session_count=2, computed_at=now
    )
    return end_user


def test_the_export_holds_the_persons_path_choices_and_features(api_client, tenant, chosen):
    _, _, secret_key = tenant

    response = api_client.post(
        "/api/v1/users/ml-gdpr-1/data-export", HTTP_AUTHORIZATION=basic_auth(secret_key)
    )

    assert response.status_code == 200
    section = json.loads(response.content)["ml"]
    assert [each["path"] for each in section["path_choices"]] == ["analyst-insights"]
    assert section["path_choices"][0]["features"]["persona"] == "data_analyst"
    assert section["features"]["session_count"] == 2


def test_erasure_keeps_the_choice_and_drops_what_names_traits(tenant, chosen):
    workspace, _, _ = tenant

    erasure.gdpr_erase(workspace=workspace, user_id="ml-gdpr-1", actor_label="test")

    choice = PathChoice.objects.get(end_user=chosen)
    assert (choice.path_key, choice.policy, choice.propensity) == ("analyst-insights", "explore", 0.05)
    assert (choice.features, choice.explanation, choice.reason) == ({}, [], "")
    assert not FeatureSnapshot.objects.filter(end_user=chosen).exists()
