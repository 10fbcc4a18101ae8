"""The planner: highest-priority matching audience, else the workspace default, else none."""

import pytest

from paths.planner import PathDecision, choose_path
from tests.factories import (
    EndUserFactory,
    PathFactory,
    PathVersionFactory,
    PublishedPathVersionFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace():
    return WorkspaceFactory()


def published(workspace, key, **path_fields):
    return PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key=key, **path_fields))


def test_highest_priority_matching_path_wins(workspace):
    published(workspace, "admins", audience_personas=["admin"], priority=5)
    wanted = published(
        workspace, "small-admins", audience_personas=["admin"], audience_company_sizes=["11-50"], priority=10
    )
    published(workspace, "developers", audience_personas=["developer"], priority=50)
    end_user = EndUserFactory(workspace=workspace, persona="admin", company_size="11-50")

    assert choose_path(end_user=end_user) == PathDecision(
        wanted, "matched persona=admin, company_size=11-50, priority 10", "rules"
    )


def test_every_set_audience_must_match_case_insensitively(workspace):
    wanted = published(
        workspace,
        "ads-analytics",
        audience_use_cases=["Product_Analytics"],
        audience_signup_sources=["paid_search", "social"],
    )
    published(workspace, "ads-only", audience_signup_sources=["paid_search"], audience_personas=["founder"])

    decision = choose_path(
        end_user=EndUserFactory(
            workspace=workspace, use_case="product_analytics", signup_source="PAID_SEARCH"
        )
    )

    assert decision.path_version == wanted
    assert decision.reason == "matched use_case=product_analytics, signup_source=PAID_SEARCH, priority 0"


def test_a_user_without_the_feature_does_not_match_a_set_audience(workspace):
    published(workspace, "admins", audience_personas=["admin"])

    decision = choose_path(end_user=EndUserFactory(workspace=workspace, persona=""))

    assert decision == PathDecision(None, "no audience matched and the workspace has no default path", "none")


def test_default_path_when_no_audience_matches(workspace):
    published(workspace, "admins", audience_personas=["admin"], priority=10)
    default = published(workspace, "basics", is_default=True, priority=99)

    decision = choose_path(end_user=EndUserFactory(workspace=workspace, persona="designer"))

    assert decision == PathDecision(
        default, "no audience matched; workspace default path 'basics'", "default"
    )


def test_a_path_without_audience_matches_everyone_on_priority(workspace):
    open_path = published(workspace, "everyone", priority=3)
    published(workspace, "basics", is_default=True)

    decision = choose_path(end_user=EndUserFactory(workspace=workspace))

    assert decision == PathDecision(
        open_path, "matched everyone (path 'everyone' has no audience), priority 3", "rules"
    )


def test_drafts_archived_and_other_workspaces_paths_are_ignored(workspace):
    PathVersionFactory(path=PathFactory(workspace=workspace, key="draft"))
    PublishedPathVersionFactory(path=PathFactory(workspace=workspace, key="old"), status="archived")
    published(WorkspaceFactory(), "elsewhere")
    default = PathFactory(workspace=workspace, key="basics", is_default=True)
    PathVersionFactory(path=default)

    decision = choose_path(end_user=EndUserFactory(workspace=workspace))

    assert decision == PathDecision(
        None, "no audience matched; the default path 'basics' has no published version", "none"
    )


def test_equal_priorities_go_to_the_path_key(workspace):
    published(workspace, "b-path", audience_personas=["admin"], priority=1)
    first = published(workspace, "a-path", audience_personas=["admin"], priority=1)

    assert choose_path(end_user=EndUserFactory(workspace=workspace, persona="admin")).path_version == first
