"""Data regions: calls carrying user data go only to the endpoint of the workspace's region; a
region without one blocks the call with a reason, never falls back to another region."""

import logging

import pytest

from guardrails import regions
from guardrails.models import WorkspacePolicy
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "llm": {"us": "https://llm.us.example.com/v1", "eu": "https://llm.eu.example.com/v1"},
    "email": {"us": "https://api.sendgrid.com", "eu": ""},
}


@pytest.fixture(autouse=True)
def endpoints(settings):
    settings.REGION_ENDPOINTS = ENDPOINTS


def workspace_in(region: str | None):
    workspace = WorkspaceFactory()
    if region is not None:
        WorkspacePolicy.objects.create(workspace=workspace, data_region=region)
    return workspace


def test_each_region_gets_its_own_endpoint():
    assert (
        regions.endpoint_for(workspace=workspace_in("us"), service="llm") == "https://llm.us.example.com/v1"
    )
    assert (
        regions.endpoint_for(workspace=workspace_in("eu"), service="llm") == "https://llm.eu.example.com/v1"
    )


def test_a_workspace_without_a_policy_is_in_the_us_region():
    assert regions.endpoint_for(workspace=workspace_in(None), service="email") == "https://api.sendgrid.com"


def test_a_region_without_an_endpoint_blocks_the_call_with_a_reason(caplog):
    workspace = workspace_in("eu")

    with (
        caplog.at_level(logging.WARNING, logger="guardrails.regions"),
        pytest.raises(regions.RegionBlocked) as blocked,
    ):
        regions.endpoint_for(workspace=workspace, service="email")

    assert blocked.value.reason == (
        "blocked: no email endpoint is configured for the workspace's data region 'eu' "
        "(set SENDGRID_API_URL_EU); user data is never sent to another region"
    )
    assert (blocked.value.service, blocked.value.region) == ("email", "eu")
    assert blocked.value.as_reason() == {"code": "region.endpoint_missing", "message": blocked.value.reason}
    [record] = [record for record in caplog.records if record.msg == "guardrails.region.blocked"]
    assert (record.workspace_id, record.service, record.region) == (workspace.pk, "email", "eu")


def test_a_service_missing_from_the_configuration_blocks_every_region():
    for region in ("us", "eu"):
        with pytest.raises(
            regions.RegionBlocked, match=f"no sms endpoint .* region '{region}' .*TWILIO_API_URL_"
        ):
            regions.endpoint_for(workspace=workspace_in(region), service="sms")


def test_an_unknown_service_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown service 'fax'"):
        regions.endpoint_for(workspace=workspace_in("us"), service="fax")


def test_a_region_change_applies_to_the_next_call():
    workspace = workspace_in("us")
    assert regions.endpoint_for(workspace=workspace, service="email") == "https://api.sendgrid.com"

    WorkspacePolicy.objects.filter(workspace=workspace).update(data_region="eu")

    with pytest.raises(regions.RegionBlocked):
        regions.endpoint_for(workspace=workspace, service="email")


def test_endpoints_are_read_from_the_environment(monkeypatch):
    """config/settings/domain.py: <VARIABLE>_US / _EU, the plain variable being the US endpoint."""
    import importlib

    from config.settings import domain as settings_module

    monkeypatch.setenv("OPENAI_BASE_URL", "https://openai.example.com/v1/")
    monkeypatch.setenv("OPENAI_BASE_URL_EU", "https://openai.eu.example.com/v1")
    monkeypatch.setenv("INTERCOM_API_URL_US", "https://api.intercom.io")
    monkeypatch.setenv("INTERCOM_API_URL_EU", "https://api.eu.intercom.io")
    monkeypatch.delenv("SENDGRID_API_URL", raising=False)
    monkeypatch.delenv("SENDGRID_API_URL_US", raising=False)
    monkeypatch.delenv("SENDGRID_API_URL_EU", raising=False)
    try:
        reloaded = importlib.reload(settings_module)
        assert reloaded.REGION_ENDPOINTS["llm"] == {
            "us": "https://openai.example.com/v1",
            "eu": "https://openai.eu.example.com/v1",
        }
        assert reloaded.REGION_ENDPOINTS["intercom"] == {
            "us": "https://api.intercom.io",
            "eu": "https://api.eu.intercom.io",
        }
        assert reloaded.REGION_ENDPOINTS["email"] == {"us": "", "eu": ""}
        assert set(reloaded.REGION_ENDPOINTS) == set(regions.SERVICES)
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)
