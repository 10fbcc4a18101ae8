"""After an erasure, the tables it changed are vacuumed (guardrails.gdpr.vacuum): on PostgreSQL the old
row versions of the person's contact and events, which still held their e-mail and their event
properties, are gone from the tables' pages as rows, their old user id from the indexes, and
every erased table has been vacuumed."""

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from guardrails.gdpr import erased_guard as reimport
from guardrails.gdpr import vacuum
from onboarding.models import Contact, Event
from tenancy import services
from tenancy.models import EndUser
from tests.conftest import basic_auth
from tests.onboarding.progress_setup import published_path

USER_ID = "vacuumed-person-41b8"
EMAIL = "vacuumed.person.5e1d@example.org"
PROPERTY = "vacuumed-property-9c27"


def row_versions_holding(table: str, text: str) -> int:
    """Tuples, live or dead, in the table's pages whose data holds `text` (pageinspect)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM generate_series(0, pg_relation_size(%s)"
            " / current_setting('block_size')::int - 1) AS page,"
            " heap_page_items(get_raw_page(%s, page::int)) AS item"
            " WHERE position(convert_to(%s, 'UTF8') in item.t_data) > 0",
            [table, table, text],
        )
        return cursor.fetchone()[0]


def index_entries_holding(table: str, text: str) -> int:
    """Entries of the table's B-tree indexes whose key holds `text` (pageinspect; page 0 is the
    index's metapage)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index AS index_row"
            " JOIN pg_class AS index_class ON index_class.oid = index_row.indexrelid"
            " JOIN pg_am ON pg_am.oid = index_class.relam AND pg_am.amname = 'btree',"
            " generate_series(1, pg_relation_size(index_class.oid) / current_setting('block_size')::int - 1)"
            " AS page, bt_page_items(index_class.relname::text, page::int) AS item"
            " WHERE index_row.indrelid = %s::regclass"
            " AND position(convert_to(%s, 'UTF8') in decode(replace(item.data, ' ', ''), 'hex')) > 0",
            [table, text],
        )
        return cursor.fetchone()[0]


def last_vacuums(tables: list[str]) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, last_vacuum FROM pg_stat_user_tables WHERE relname = ANY(%s)", [tables]
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_an_erasure_vacuums_the_old_row_versions_of_what_it_erased(postgres, settings, monkeypatch):
    settings.JOBS_RUN_INLINE = True  # the vacuum job runs here, right after the erasure commits
    monkeypatch.setattr(reimport, "MEMO_SECONDS", 0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
    workspace, write_key, secret_key = services.workspace_create(name="Vacuum")
    published_path(workspace)
    client = APIClient()
    for path, body in (
        ("/v1/identify", {"userId": USER_ID, "traits": {"email": EMAIL}}),
        ("/v1/track", {"userId": USER_ID, "event": "Project Created", "properties": {"p": PROPERTY}}),
    ):
        response = client.post(path, body, format="json", HTTP_AUTHORIZATION=basic_auth(write_key.key))
        assert response.status_code == 200, response.content
    tables = [Contact._meta.db_table, Event._meta.db_table]
    assert [row_versions_holding(tables[0], EMAIL), row_versions_holding(tables[1], PROPERTY)] == [1, 1]
    assert index_entries_holding(EndUser._meta.db_table, USER_ID) >= 1
    started = timezone.now()

    erased = client.delete(f"/api/v1/users/{USER_ID}", HTTP_AUTHORIZATION=basic_auth(secret_key.key))

    assert erased.status_code == 200, erased.content
    assert [row_versions_holding(tables[0], EMAIL), row_versions_holding(tables[1], PROPERTY)] == [0, 0]
    assert index_entries_holding(EndUser._meta.db_table, USER_ID) == 0
    vacuumed = last_vacuums(vacuum.erased_tables())
    assert set(vacuumed) == set(vacuum.erased_tables())
    assert all(moment is not None and moment >= started for moment in vacuumed.values()), vacuumed


def test_the_vacuumed_tables_are_every_table_an_eraser_writes_to():
    """nudges registers its own: an eraser's tables are vacuumed whichever app it comes from."""
    assert {"onboarding_event", "onboarding_contact", "onboarding_enduser", "nudges_nudge"} <= set(
        vacuum.erased_tables()
    )
