"""After an erasure, VACUUM the tables it changed (PostgreSQL), so that what it erased does not
linger in dead row versions.

PostgreSQL never overwrites a row: an UPDATE writes a new version and a DELETE marks the old
one dead, and the old bytes (a contact's e-mail, an event's properties) stay in the table's pages
until a vacuum reclaims them. Autovacuum gets there eventually, on its own thresholds (20% of a
table changed by default: on a large events table, days). So the erasure's job vacuums the
tables its erasers write to, once their transactions have committed (docs/operations.md, "Erasure
and dead tuples", says what this does not reach: WAL, replicas, backups).

VACUUM cannot run inside a transaction block, and it holds no lock that stops reads or writes,
but it reads every index of the tables in full: it runs from a job after commit, never from a
request. SQLite rewrites pages in place and has
no such versions: nothing to do there.

Erasers register the models they write to with `erased_models_register` (nudges does, for its
own); the order does not matter.
"""

import logging

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.db.models import Model

from guardrails.models import LLMCall, Preference
from onboarding.models import AnonymousIdentity, AnswerSnapshot, Contact, Enrollment, EnrollmentSignal, Event
from tenancy.models import AuditLog, EndUser

logger = logging.getLogger(__name__)

ERASED_MODELS: list[type[Model]] = []


def erased_models_register(*models: type[Model]) -> None:
    """Models whose rows an eraser updates or deletes: their tables are vacuumed after erasures."""
    for model in models:
        if model not in ERASED_MODELS:
            ERASED_MODELS.append(model)


erased_models_register(
    AuditLog,
    LogEntry,
    Contact,
    AnonymousIdentity,
    EndUser,
    Enrollment,
    EnrollmentSignal,
    AnswerSnapshot,
    Preference,
    LLMCall,
    Event,
)


def erased_tables() -> list[str]:
    return [model._meta.db_table for model in ERASED_MODELS]


def erased_tables_vacuum() -> list[str]:
    """VACUUM every table erasures write to, in one statement; returns the tables vacuumed (none
    on SQLite). PostgreSQL refuses VACUUM inside a transaction: called inside one (a caller's
    atomic block around the whole job), it leaves the tables to autovacuum and says so."""
    if connection.vendor != "postgresql":
        return []
    if connection.in_atomic_block:
        logger.warning("guardrails.gdpr.erasure.vacuum_skipped", extra={"reason": "inside a transaction"})
        return []
    tables = erased_tables()
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    with connection.cursor() as cursor:
        # INDEX_CLEANUP ON: with few dead rows PostgreSQL would skip the indexes, whose entries hold
        # the erased values too (the unique index on the user id holds the old user id).
        cursor.execute(f"VACUUM (INDEX_CLEANUP ON) {quoted}")
    logger.info("guardrails.gdpr.erasure.vacuumed", extra={"tables": len(tables)})
    return tables
