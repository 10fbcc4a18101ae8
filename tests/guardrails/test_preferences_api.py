"""GET/PUT /api/v1/users/{user_id}/preferences: secret key or the user's own token, every refusal."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from guardrails.models import ConsentRecord, Preference, WorkspacePolicy
from tenancy.models import AuditLog
from tests.conftest import end_user_client, key_client
from tests.factories import EndUserFactory

PREFERENCES = "/api/v1/users/{}/preferences"


@pytest.fixture
def ada(tenant):
    return EndUserFactory(workspace=tenant[0], external_id="ada", timezone="Europe/Paris")


@pytest.fixture
def server(server, ada):
    """The secret-key client, with ada in the workspace."""
    return server


def _nothing_changed():
    assert not ConsentRecord.objects.exists()
    assert not Preference.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="consent.").exists()


DEFAULT_STATE = {
    "user_id": "ada",
    "channels": {
        "email": {"onboarding": True, "marketing": False},
        "sms": {"onboarding": False, "marketing": False},
        "push": {"onboarding": False, "marketing": False},
        "in_app": {"onboarding": True, "marketing": False},
        "intercom": {"onboarding": False, "marketing": False},
    },
    "quiet_hours": {"start": None, "end": None, "timezone": "Europe/Paris", "source": None},
    "snooze_until": None,
    "do_not_disturb": False,
}


# --- GET -------------------------------------------------------------------------------------------


def test_get_returns_the_defaults_for_a_new_user(server):
    response = server.get(PREFERENCES.format("ada"))

    assert response.status_code == 200
    assert response.json() == DEFAULT_STATE


def test_get_shows_the_workspace_s_quiet_hours_until_the_user_sets_their_own(server, tenant):
    WorkspacePolicy.objects.create(workspace=tenant[0], quiet_hours_start="21:00", quiet_hours_end="08:00")

    quiet_hours = server.get(PREFERENCES.format("ada")).json()["quiet_hours"]

    assert quiet_hours == {
        "start": "21:00",
        "end": "08:00",
        "timezone": "Europe/Paris",
        "source": "workspace",
    }


def test_the_user_s_own_token_reads_and_writes_their_preferences(ada):
    client = end_user_client(ada)

    assert client.get(PREFERENCES.format("ada")).status_code == 200
    response = client.put(
        PREFERENCES.format("ada"), {"channels": {"email": {"marketing": True}}}, format="json"
    )

    assert response.status_code == 200
    assert list(ConsentRecord.objects.values_list("source", flat=True)) == ["preference_centre"]
    assert AuditLog.objects.get(action="consent.granted").actor_label == "end user (preference centre)"


def test_a_token_for_one_user_cannot_touch_another(tenant, ada):
    bob = EndUserFactory(workspace=tenant[0], external_id="bob")
    client = end_user_client(ada)

    read = client.get(PREFERENCES.format("bob"))
    write = client.put(PREFERENCES.format("bob"), {"do_not_disturb": True}, format="json")

    assert (read.status_code, write.status_code) == (403, 403)
    assert read.json() == {"detail": "This end-user token is for another user."}
    assert not Preference.objects.filter(end_user=bob).exists()


def test_a_token_of_a_deleted_and_recreated_user_is_refused(tenant, ada):
    client = end_user_client(ada)
    ada.delete()
    EndUserFactory(workspace=tenant[0], external_id="ada")

    assert client.get(PREFERENCES.format("ada")).status_code == 403


def test_a_write_key_no_credentials_and_another_workspace_are_refused(tenant, other_tenant, ada):
    EndUserFactory(workspace=other_tenant[0], external_id="ada")
    write_key = key_client(tenant[1])
    stranger = key_client(other_tenant[2])

    assert write_key.get(PREFERENCES.format("ada")).status_code == 403
    assert APIClient().get(PREFERENCES.format("ada")).status_code == 401
    # Globex's secret key reaches Globex's ada, never Acme's.
    stranger.put(PREFERENCES.format("ada"), {"do_not_disturb": True}, format="json")
    assert not Preference.objects.filter(end_user=ada).exists()


def test_an_unknown_user_is_404(server):
    response = server.get(PREFERENCES.format("nobody"))

    assert (response.status_code, response.json()) == (404, {"detail": "No such user: 'nobody'."})


# --- PUT -------------------------------------------------------------------------------------------


def test_put_changes_what_it_sends_and_returns_the_new_state(server, ada):
    snooze = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    response = server.put(
        PREFERENCES.format("ada"),
        {
            "channels": {"email": {"marketing": True}, "in_app": {"onboarding": False}},
            "quiet_hours": {"start": "22:00", "end": "07:30"},
            "snooze_until": snooze.isoformat(),
            "do_not_disturb": True,
        },
        format="json",
    )

    assert response.status_code == 200
    expected = {
        **DEFAULT_STATE,
        "channels": {
            **DEFAULT_STATE["channels"],
            "email": {"onboarding": True, "marketing": True},
            "in_app": {"onboarding": False, "marketing": False},
        },
        "quiet_hours": {"start": "22:00", "end": "07:30", "timezone": "Europe/Paris", "source": "user"},
        "snooze_until": snooze.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "do_not_disturb": True,
    }
    assert response.json() == expected
    assert server.get(PREFERENCES.format("ada")).json() == expected
    assert sorted(ConsentRecord.objects.values_list("channel", "purpose", "granted", "source")) == [
        ("email", "marketing", True, "api"),
        ("in_app", "onboarding", False, "api"),
    ]
    assert AuditLog.objects.filter(action="consent.withdrawn").get().actor_label.startswith("API key ")


def test_putting_back_what_get_returned_changes_nothing(server, tenant):
    WorkspacePolicy.objects.create(workspace=tenant[0], quiet_hours_start="21:00", quiet_hours_end="08:00")
    state = server.get(PREFERENCES.format("ada")).json()

    response = server.put(PREFERENCES.format("ada"), state, format="json")

    assert (response.status_code, response.json()) == (200, state)
    assert not ConsentRecord.objects.exists()
    assert Preference.objects.get().quiet_hours_start is None  # still the workspace's hours


def test_quiet_hours_can_be_cleared_with_null(server, ada):
    server.put(PREFERENCES.format("ada"), {"quiet_hours": {"start": "22:00", "end": "07:00"}}, format="json")

    response = server.put(PREFERENCES.format("ada"), {"quiet_hours": None}, format="json")

    assert response.json()["quiet_hours"]["start"] is None
    assert Preference.objects.get().quiet_hours_end is None


def test_a_put_of_start_alone_keeps_the_stored_end(server, ada):
    server.put(PREFERENCES.format("ada"), {"quiet_hours": {"start": "22:00", "end": "07:00"}}, format="json")

    response = server.put(PREFERENCES.format("ada"), {"quiet_hours": {"start": "21:30"}}, format="json")

    assert response.status_code == 200
    assert response.json()["quiet_hours"] == {
        "start": "21:30",
        "end": "07:00",
        "timezone": "Europe/Paris",
        "source": "user",
    }


def test_a_put_of_end_alone_keeps_the_workspace_s_start_as_the_user_s_own(server, tenant):
    WorkspacePolicy.objects.create(workspace=tenant[0], quiet_hours_start="21:00", quiet_hours_end="08:00")

    response = server.put(PREFERENCES.format("ada"), {"quiet_hours": {"end": "06:30"}}, format="json")

    assert response.status_code == 200
    assert (response.json()["quiet_hours"]["start"], response.json()["quiet_hours"]["end"]) == (
        "21:00",
        "06:30",
    )
    assert response.json()["quiet_hours"]["source"] == "user"


def test_a_bad_start_alone_is_the_only_error_when_the_end_is_stored(server, ada):
    server.put(PREFERENCES.format("ada"), {"quiet_hours": {"start": "22:00", "end": "07:00"}}, format="json")

    response = server.put(PREFERENCES.format("ada"), {"quiet_hours": {"start": "7pm"}}, format="json")

    assert response.status_code == 400
    assert [(error["field"], error["reason"]) for error in response.json()["errors"]] == [
        ("quiet_hours.start", "must be a 24-hour time HH:MM, e.g. 22:00")
    ]
    assert server.get(PREFERENCES.format("ada")).json()["quiet_hours"]["start"] == "22:00"


IN_A_YEAR_AND_A_DAY = (datetime.now(UTC) + timedelta(days=366)).isoformat()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([1, 2], [("(request)", "the body must be a JSON object")]),
        ({}, [("(request)", "send at least one of channels, quiet_hours, snooze_until, do_not_disturb")]),
        (
            {"colour": "blue"},
            [
                ("colour", "unknown field; expected channels, quiet_hours, snooze_until, do_not_disturb"),
                ("(request)", "send at least one of channels, quiet_hours, snooze_until, do_not_disturb"),
            ],
        ),
        ({"channels": []}, [("channels", 'must be an object, e.g. {"email": {"marketing": false}}')]),
        (
            {"channels": {"fax": {"onboarding": True}}},
            [("channels.fax", "unknown channel; expected email, sms, push, in_app, intercom")],
        ),
        ({"channels": {"email": True}}, [("channels.email", 'must be an object, e.g. {"onboarding": true}')]),
        (
            {"channels": {"email": {"sales": True}}},
            [("channels.email.sales", "unknown purpose; expected onboarding, marketing")],
        ),
        (
            {"channels": {"email": {"marketing": "yes"}}},
            [("channels.email.marketing", "must be true or false")],
        ),
        (
            {"quiet_hours": "22-07"},
            [("quiet_hours", 'must be null or {"start": "22:00", "end": "07:00"}')],
        ),
        (
            {"quiet_hours": {"start": "10pm", "end": "07:00"}},
            [("quiet_hours.start", "must be a 24-hour time HH:MM, e.g. 22:00")],
        ),
        (
            {"quiet_hours": {"start": "22:00"}},
            [
                (
                    "quiet_hours.end",
                    "missing: the user has no quiet hours to keep the end of; send start and end",
                )
            ],
        ),
        (
            {"quiet_hours": {"start": "10pm"}},
            [("quiet_hours.start", "must be a 24-hour time HH:MM, e.g. 22:00")],
        ),
        (
            {"quiet_hours": {"start": "22:00", "end": None}},
            [
                (
                    "quiet_hours.end",
                    "must be a 24-hour time HH:MM; null clears quiet hours only with start null too",
                )
            ],
        ),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, [("quiet_hours", "start and end must differ")]),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "days": "weekdays"}},
            [("quiet_hours.days", "unknown field; expected start, end, timezone, source")],
        ),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"}},
            [
                (
                    "quiet_hours.timezone",
                    "read-only: quiet hours follow the user's time zone (Europe/Paris), "
                    "which is set by the timezone trait of identify",
                )
            ],
        ),
        (
            {"snooze_until": "tomorrow"},
            [("snooze_until", "must be an ISO 8601 date-time, e.g. 2030-01-31T09:00:00Z, or null")],
        ),
        (
            {"snooze_until": "2030-01-31T09:00:00"},
            [("snooze_until", "needs a UTC offset, e.g. 2030-01-31T09:00:00Z or 2030-01-31T10:00:00+01:00")],
        ),
        ({"snooze_until": "2020-01-31T09:00:00Z"}, [("snooze_until", "is in the past")]),
        (
            {"snooze_until": IN_A_YEAR_AND_A_DAY},
            [
                (
                    "snooze_until",
                    "is more than 365 days ahead; use do_not_disturb to pause nudges indefinitely",
                )
            ],
        ),
        (
            {"snooze_until": "2030-02-30T09:00:00Z"},
            [("snooze_until", "must be an ISO 8601 date-time, e.g. 2030-01-31T09:00:00Z, or null")],
        ),
        ({"do_not_disturb": "on"}, [("do_not_disturb", "must be true or false")]),
    ],
)
def test_put_names_each_field_at_fault_and_changes_nothing(server, body, errors):
    response = server.put(PREFERENCES.format("ada"), body, format="json")

    assert response.status_code == 400
    assert [(error["field"], error["reason"]) for error in response.json()["errors"]] == errors
    _nothing_changed()


def test_every_error_of_a_request_is_reported_at_once_and_the_valid_fields_wait(server):
    response = server.put(
        PREFERENCES.format("ada"),
        {
            "channels": {"email": {"marketing": True}, "sms": {"onboarding": 1}},
            "quiet_hours": {"start": "7", "end": "23:00"},
            "do_not_disturb": True,
            "snooze_until": "2001-01-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert [error["field"] for error in body["errors"]] == [
        "channels.sms.onboarding",
        "quiet_hours.start",
        "snooze_until",
    ]
    assert body["detail"] == (
        "Invalid preferences (channels.sms.onboarding, quiet_hours.start, snooze_until): nothing was changed."
    )
    _nothing_changed()
