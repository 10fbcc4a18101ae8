"""Nudge analytics: one counting rule (nudges.selectors.nudge_outcome_counts) behind the metrics,
the breakdowns, the read API and the template admin's rates.

The fixture is thirteen nudges of one workspace whose fates are set by hand; every expected number
below is counted from the table in `outcomes`' docstring, not from the code.
"""

from datetime import UTC, date, datetime

import pytest

from analytics.nudges import breakdown, metrics
from nudges import selectors
from nudges.content import stats
from nudges.models import ChannelProvider, Nudge
from tests.conftest import key_client
from tests.factories import EndUserFactory, EnrollmentFactory
from tests.nudges.factories import (
    ChannelProviderFactory,
    NudgeFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

URL = "/api/v1/analytics/nudges"
FIRST, LAST = date(2026, 3, 10), date(2026, 3, 12)
RANGE = {"from": "2026-03-10", "to": "2026-03-12"}


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def make_nudge(*, created: datetime, **fields) -> Nudge:
    nudge = NudgeFactory(**fields)
    Nudge.objects.filter(pk=nudge.pk).update(created_at=created)  # auto_now_add ignores the factory
    return nudge


@pytest.fixture
def outcomes(tenant):
    """Thirteen nudges of the tenant (D10 = 2026-03-10, times UTC), one of another workspace:

    | #  | created     | sent         | channel | variant | reached                     | status     |
    | 1  | D10         | D10          | email   | A       | delivered, opened           | opened     |
    | 2  | D10         | D10          | email   | A       | delivered, clicked          | clicked    |
    | 3  | D10         | D10          | email   | A       | delivered, opened, clicked, | converted  |
    |    |             |              |         |         | converted; on a path        |            |
    | 4  | D10         | D10          | email   | A       |                             | sent       |
    | 5  | D11         | D11          | email   | B       | delivered, opened           | opened     |
    | 6  | D10         |              | email   | B       |                             | failed     |
    | 7  | D11         |              | (none)  | (none)  |                             | suppressed |
    | 8  | D11         | D11          | push    | A       | clicked, converted          | converted  |
    | 9  | D12         | D12          | push    | A       |                             | sent       |
    | 10 | D9 23:59:59 | D10          | email   | A       |                             | sent       |
    | 11 | D12         | D13 00:00    | email   | A       |                             | sent       |
    | 12 | D10         | D12 23:59:59 | email   | B       |                             | bounced    |
    | 13 | another workspace's: D10, opened                                                   |

    Email goes through SendGrid (reports deliveries), push through Web Push (does not); #9 has
    no provider recorded. #12: the rest of the range's last day still counts."""
    workspace = tenant[0]
    email_trigger = TriggerFactory(workspace=workspace, name="Stuck")
    push_trigger = TriggerFactory(workspace=workspace, name="Welcome", kind="welcome")
    email = NudgeTemplateFactory(trigger=email_trigger, name="Stuck email", channel="email")
    push = NudgeTemplateFactory(trigger=push_trigger, name="Welcome push", channel="push")
    email_a = TemplateVersionFactory(template=email, variant="A", number=1)
    email_b = TemplateVersionFactory(template=email, variant="B", number=2)
    push_a = TemplateVersionFactory(template=push, variant="A", number=1)
    sendgrid = ChannelProviderFactory(workspace=workspace, channel="email")
    webpush = ChannelProviderFactory(
        workspace=workspace, channel="push", provider=ChannelProvider.Provider.WEBPUSH
    )
    path_user = EndUserFactory(workspace=workspace, persona="developer")
    enrollment = EnrollmentFactory(end_user=path_user, path_version__path__key="developer-setup")

    def email_nudge(number: int, version, created, sent, provider=sendgrid, **fields):
        return make_nudge(
            trigger=email_trigger,
            template_version=version,
            provider=provider,
            created=created,
            sent_at=sent,
            occasion=f"nudge-{number}",
            **fields,
        )

    nudges = {
        1: email_nudge(1, email_a, at(10), at(10), delivered_at=at(10), opened_at=at(10), status="opened"),
        2: email_nudge(2, email_a, at(10), at(10), delivered_at=at(10), clicked_at=at(10), status="clicked"),
        3: email_nudge(
            3,
            email_a,
            at(10),
            at(10),
            end_user=path_user,
            enrollment=enrollment,
            delivered_at=at(10),
            opened_at=at(10),
            clicked_at=at(10),
            converted_at=at(11),
            status="converted",
        ),
        4: email_nudge(4, email_a, at(10), at(10), status="sent"),
        5: email_nudge(5, email_b, at(11), at(11), delivered_at=at(11), opened_at=at(11), status="opened"),
        6: email_nudge(6, email_b, at(10), None, provider=None, status="failed", failed_at=at(10)),
        7: make_nudge(trigger=email_trigger, channel="", created=at(11), sent_at=None, status="suppressed"),
        8: make_nudge(
            trigger=push_trigger,
            template_version=push_a,
            channel="push",
            provider=webpush,
            created=at(11),
            sent_at=at(11),
            clicked_at=at(11),
            converted_at=at(12),
            status="converted",
        ),
        9: make_nudge(
            trigger=push_trigger, template_version=push_a, channel="push", created=at(12), sent_at=at(12)
        ),
        10: email_nudge(10, email_a, at(9, 23, 59, 59), at(10), status="sent"),
        11: email_nudge(11, email_a, at(12), at(13, 0), status="sent"),
        12: email_nudge(
            12, email_b, at(10), at(12, 23, 59, 59), status="bounced", failed_at=at(12, 23, 59, 59)
        ),
    }
    NudgeFactory(opened_at=at(10), sent_at=at(10))  # another workspace
    return {
        "workspace": workspace,
        "secret_key": tenant[2],
        "write_key": tenant[1],
        "nudges": nudges,
        "email": email,
        "push": push,
        "email_trigger": email_trigger,
    }


def query(outcomes, **filters) -> metrics.NudgeQuery:
    return metrics.NudgeQuery(workspace=outcomes["workspace"], date_from=FIRST, date_to=LAST, **filters)


def counts(row: selectors.NudgeOutcomeCounts, *names: str) -> tuple[int, ...]:
    return tuple(getattr(row, name) for name in names)


# --- The counting rule ------------------------------------------------------------------------------


def test_nudges_created_in_range_and_the_send_rate(outcomes):
    [created] = metrics.created_in_range(query(outcomes))

    # Created D10..D12: 1-9, 11 and 12 (10 was created on D9, 13 is another workspace's).
    assert counts(created, "created", "sent", "failed", "suppressed") == (11, 9, 1, 1)
    assert metrics.nudge_send_rate(query(outcomes)) == metrics.RateValue(9 / 11, 9, 11)


def test_nudges_sent_in_range_their_outcomes_and_rates(outcomes):
    [sent] = metrics.sent_in_range(query(outcomes))

    # Sent D10..D12: 1-5, 8, 9, 10 and 12 (11 was sent at D13 00:00, the day after the range).
    assert counts(sent, "sent", "delivered", "delivery_unknown", "opened", "clicked", "converted") == (
        9,
        4,  # 1, 2, 3, 5
        2,  # the pushes: no delivery report exists for them
        5,  # 1, 2 (clicked only), 3, 5, 8 (clicked only)
        3,
        2,
    )
    assert sent.bounced == 1
    assert metrics.nudge_open_rate(query(outcomes)) == metrics.RateValue(5 / 9, 5, 9)
    assert metrics.nudge_conversion_rate(query(outcomes)) == metrics.RateValue(2 / 9, 2, 9)
    totals = breakdown.nudge_totals(query(outcomes))
    assert totals.delivery_rate == metrics.RateValue(4 / 7, 4, 7)  # of the 7 sends that report it


def test_a_click_without_an_open_counts_as_opened(tenant):
    version = TemplateVersionFactory(template__trigger__workspace=tenant[0])
    make_nudge(
        trigger=version.template.trigger,
        template_version=version,
        created=at(10),
        sent_at=at(10),
        clicked_at=at(10),
    )
    make_nudge(trigger=version.template.trigger, template_version=version, created=at(10), sent_at=at(10))
    the_query = metrics.NudgeQuery(workspace=tenant[0], date_from=FIRST, date_to=LAST)

    assert metrics.nudge_open_rate(the_query) == metrics.RateValue(0.5, 1, 2)
    assert breakdown.nudge_totals(the_query).click_rate == metrics.RateValue(0.5, 1, 2)


def test_zero_denominators_are_none_not_zero(outcomes):
    empty = metrics.NudgeQuery(
        workspace=outcomes["workspace"], date_from=date(2025, 1, 1), date_to=date(2025, 1, 2)
    )

    for metric in metrics.NUDGE_METRICS.values():
        assert metric(empty) == metrics.RateValue(None, 0, 0)
    # Push reports no delivery: its delivery rate is unknown, not 0%.
    push = breakdown.nudge_totals(query(outcomes, channel="push"))
    assert push.delivery_rate == metrics.RateValue(None, 0, 0)
    assert push.open_rate == metrics.RateValue(0.5, 1, 2)


def test_segment_and_path_filters_follow_the_end_user_and_the_enrollment(outcomes):
    path_query = query(outcomes, path_key="developer-setup")
    assert metrics.nudge_conversion_rate(path_query) == metrics.RateValue(1.0, 1, 1)  # nudge 3 only
    assert metrics.nudge_conversion_rate(query(outcomes, persona="developer")) == metrics.RateValue(1.0, 1, 1)
    assert metrics.nudge_open_rate(query(outcomes, path_key="another-path")) == metrics.RateValue(None, 0, 0)
    assert metrics.nudge_open_rate(query(outcomes, variant="B")) == metrics.RateValue(0.5, 1, 2)  # 5 and 12
    push = query(outcomes, template_id=outcomes["push"].pk)
    assert metrics.nudge_send_rate(push) == metrics.RateValue(1.0, 2, 2)


# --- Breakdowns -----------------------------------------------------------------------------------


def rows_of(rows: list[breakdown.NudgeRates], key: str) -> dict:
    return {
        row.group[key]: (
            row.created.created,
            row.created.sent,
            row.sent.sent,
            row.sent.opened,
            row.sent.converted,
        )
        for row in rows
    }


def test_breakdown_per_channel(outcomes):
    rows = breakdown.nudge_breakdown(query(outcomes), "channel")

    # (created, of them sent | sent in range, opened, converted)
    assert rows_of(rows, "channel") == {
        "email": (8, 7, 7, 4, 1),  # created 1-6, 11, 12; sent 1-5, 10, 12
        "push": (2, 2, 2, 1, 1),
        None: (1, 0, 0, 0, 0),  # the suppressed nudge, before a channel was chosen
    }
    assert [row.group["channel"] for row in rows] == ["email", "push", None]
    assert rows[2].open_rate.value is None and rows[2].send_rate.value == 0.0


def test_breakdown_per_variant_and_per_template(outcomes):
    variants = rows_of(breakdown.nudge_breakdown(query(outcomes), "variant"), "variant")
    templates = breakdown.nudge_breakdown(query(outcomes), "template")

    # A created 1-4, 8, 9, 11 (all sent), sent 1-4, 8-10; B created 5, 6, 12, sent 5, 12.
    assert variants == {"A": (7, 7, 7, 4, 2), "B": (3, 2, 2, 1, 0), None: (1, 0, 0, 0, 0)}
    names = {row.group["template"]: row.group["template_name"] for row in templates}
    assert names == {outcomes["email"].pk: "Stuck email", outcomes["push"].pk: "Welcome push", None: None}
    assert rows_of(templates, "template")[outcomes["email"].pk] == (8, 7, 7, 4, 1)


def test_breakdown_per_day_has_every_day_of_the_range(outcomes):
    rows = breakdown.nudge_breakdown(query(outcomes), "day")

    # Created per created day, sent per sent day: D10 created 1-4, 6, 12 (sent but 6), sent 1-4, 10.
    assert rows_of(rows, "day") == {
        "2026-03-10": (6, 5, 5, 3, 1),
        "2026-03-11": (3, 2, 2, 2, 1),  # created 5, 7, 8; sent 5, 8
        "2026-03-12": (2, 2, 2, 0, 0),  # created 9, 11; sent 9, 12
    }
    assert [row.group["day"] for row in rows] == ["2026-03-10", "2026-03-11", "2026-03-12"]


def test_an_empty_day_has_a_row_with_zeros_and_no_rates(outcomes):
    rows = breakdown.nudge_breakdown(
        metrics.NudgeQuery(
            workspace=outcomes["workspace"], date_from=date(2026, 3, 14), date_to=date(2026, 3, 15)
        ),
        "day",
    )

    assert [row.group["day"] for row in rows] == ["2026-03-14", "2026-03-15"]
    assert all(row.sent.sent == 0 and row.open_rate.value is None for row in rows)


# --- The template admin counts by the same rule --------------------------------------------------------


def test_the_template_admins_rates_equal_the_selectors(outcomes):
    workspace, template = outcomes["workspace"], outcomes["email"]
    by_variant = {
        row.group["variant"]: row
        for row in selectors.nudge_outcome_counts(
            workspace=workspace, template_id=template.pk, group_by=("variant",)
        )
    }

    shown = stats.variant_stats(workspace=workspace, template=template)

    assert [(row.variant, row.sent, row.opened, row.clicked, row.converted) for row in shown] == [
        (
            variant,
            by_variant[variant].sent,
            by_variant[variant].opened,
            by_variant[variant].clicked,
            by_variant[variant].converted,
        )
        for variant in ("A", "B")
    ]
    # All time: A sent 1, 2, 3, 4, 10, 11; B sent 5, 12.
    assert [(row.variant, row.sent, row.opened) for row in shown] == [("A", 6, 3), ("B", 2, 1)]


# --- The API ------------------------------------------------------------------------------------


def test_the_api_gives_totals_and_rows_per_channel(outcomes):
    response = key_client(outcomes["secret_key"]).get(URL, {**RANGE, "by": "channel"})

    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["nudge_send_rate"] == {"value": 9 / 11, "numerator": 9, "denominator": 11}
    assert body["totals"]["nudge_open_rate"] == {"value": 5 / 9, "numerator": 5, "denominator": 9}
    assert body["totals"]["nudge_conversion_rate"] == {"value": 2 / 9, "numerator": 2, "denominator": 9}
    assert body["totals"]["sent_in_range"]["delivery_unknown"] == 2
    push = next(row for row in body["rows"] if row["channel"] == "push")
    assert push["sent_in_range"]["delivery_rate"] is None
    assert push["sent_in_range"]["open_rate"] == 0.5
    assert [row["channel"] for row in body["rows"]] == ["email", "push", None]


def test_the_api_filters_by_channel_and_variant(outcomes):
    response = key_client(outcomes["secret_key"]).get(
        URL, {**RANGE, "channel": "email", "variant": "B", "by": "day"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["nudge_open_rate"] == {"value": 0.5, "numerator": 1, "denominator": 2}
    assert [row["day"] for row in body["rows"]] == ["2026-03-10", "2026-03-11", "2026-03-12"]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2026-03-12", "to": "2026-03-10"}, "to", "before"),
        ({"from": "2025-01-01", "to": "2026-03-10"}, "from", "400 days"),
        ({**RANGE, "by": "week"}, "by", "channel, template, variant, trigger, day"),
        ({**RANGE, "channel": "fax"}, "channel", "email"),
        ({**RANGE, "path_version": "2"}, "path_version", "path"),
        ({"from": "yesterday"}, "from", "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(outcomes, params, field, words):
    response = key_client(outcomes["secret_key"]).get(URL, params)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert words in error["reason"]


def test_an_unknown_path_is_a_404(outcomes):
    response = key_client(outcomes["secret_key"]).get(URL, {**RANGE, "path": "no-such-path"})

    assert response.status_code == 404


def test_only_a_secret_key_reads_analytics(outcomes, api_client):
    assert key_client(outcomes["write_key"]).get(URL, RANGE).status_code == 403
    assert api_client.get(URL, RANGE).status_code == 401


def test_another_workspace_sees_only_its_own_nudges(outcomes, other_tenant):
    body = key_client(other_tenant[2]).get(URL, RANGE).json()

    assert body["totals"]["nudge_open_rate"] == {"value": None, "numerator": 0, "denominator": 0}


def test_the_endpoint_is_in_the_openapi_schema(api_client, db):
    schema = api_client.get("/api/schema", HTTP_ACCEPT="application/json").json()

    parameters = {
        parameter["name"] for parameter in schema["paths"]["/api/v1/analytics/nudges"]["get"]["parameters"]
    }
    assert {"from", "to", "by", "channel", "template", "variant"} <= parameters


def test_a_query_from_the_metric_definitions_segment_names(outcomes):
    built = metrics.NudgeQuery.from_segments(
        workspace=outcomes["workspace"],
        date_from=FIRST,
        date_to=LAST,
        segments={"path": "developer-setup", "channel": "email", "variant": "A"},
    )

    assert built == query(outcomes, path_key="developer-setup", channel="email", variant="A")
    assert metrics.nudge_conversion_rate(built) == metrics.RateValue(1.0, 1, 1)
    with pytest.raises(ValueError, match="colour"):
        metrics.NudgeQuery.from_segments(
            workspace=outcomes["workspace"], date_from=FIRST, date_to=LAST, segments={"colour": "red"}
        )


def test_the_api_breaks_down_per_trigger_with_its_name(outcomes):
    body = key_client(outcomes["secret_key"]).get(URL, {**RANGE, "by": "trigger"}).json()

    # Stuck: the email nudges (1-7, 10-12); Welcome: the pushes (8, 9).
    rows = {row["trigger_name"]: row for row in body["rows"]}
    assert rows.keys() == {"Stuck", "Welcome"}
    assert rows["Stuck"]["created_in_range"] == {
        "created": 9,  # 1-7, 11, 12
        "sent": 7,
        "suppressed": 1,
        "failed": 1,
        "send_rate": 7 / 9,
    }
    assert rows["Welcome"]["sent_in_range"]["conversion_rate"] == 0.5
    assert rows["Stuck"]["trigger"] == outcomes["email_trigger"].pk
