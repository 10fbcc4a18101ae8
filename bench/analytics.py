"""Analytics benchmark: rollups, analytics reads, raw funnels and ingestion with the refresh running.

    .venv/bin/python bench/analytics.py [--users 1000000] [--events 10000000] [--reads 20]

1. (Re)creates a dedicated PostgreSQL database (Redis db 9 for the cache, flushed), migrates it,
   creates a workspace with two published paths of six event steps each (`manage.py shell`), then
   loads by COPY (indexes and unique constraints dropped during the load and rebuilt after, foreign
   key triggers off in the loading session): --users end users with segment traits spread over 90
   days, one enrollment each with step completions that drop off step by step (times to complete
   log-normal, median 30 minutes), and --events track events over the same 90 days. ANALYZE.
2. Times the full rollup build (`manage.py rebuild_rollups`, wall time of the command).
3. Starts the production server (`python -m config.serve`) and loads each analytics read of the
   API --reads times in a row over one keep-alive connection (secret key): the path funnel of each
   path, each rollup metric, nudges, cohorts; p50/p95/max. Then each admin dashboard page of
   analytics.dashboards.registry and the Overview (/admin/) --reads times, in-process through
   Django's test client as a superuser with a TOTP-verified session (views, queries, templates;
   no HTTP server, static files unhashed).
4. The funnel of one path version computed raw (one SQL over its enrollments and their completions,
   the rollups' definition: entered, advanced, completed, median and p90 seconds per step) against
   a plain count(*) of the same joined rows, with the ratio; its counts are checked against the API.
5. The event funnel of the events API over the whole range (all --events events): time, and
   whether it hit the statement timeout (503, or `stale`).
6. Ingestion (bench/ingest.py's realistic batches, users of the workspace) with the rollup refresh
   off, at a cadence and back to back, alternated: `refresh_rollups_job()` in a loop in its own
   process, every --refresh-every seconds (the scheduler runs it every 5 minutes; a shorter
   cadence shows the effect within a phase), or back to back (the worst case); events/s of each
   and the two ratios.
7. Settles the rollups, sends --progress-events events over HTTP that each complete the next step
   of an active enrollment, then times one incremental refresh (in its process, without startup);
   from it and the two rates of 6, an estimate (labelled so) of the ratio at the scheduler's interval.

Traffic goes to 127.0.0.1 only; the database is dropped at the end unless --keep-db.
"""

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

import orjson
import psycopg
import redis
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # bench/ is not a package: bench/ingest.py is on sys.path
    HOST,
    PYTHON,
    ROOT,
    _database_url,
    _free_port,
    _load,
    _manage,
    _percentile,
    drop_database,
    make_batches,
    recreate_database,
    start_server,
    stop_server,
    wait_healthy,
)

DAYS = 90
SCHEDULED_EVERY = 300  # config/cron.py's ROLLUP_REFRESH_INTERVAL_SECONDS
PATHS = {
    "activation": [
        ("create-project", "Create a project", "Project Created"),
        ("invite", "Invite a teammate", "Teammate Invited"),
        ("connect", "Connect an integration", "Integration Connected"),
        ("first-task", "Complete a task", "Task Completed"),
        ("dashboard", "Open the dashboard", "Dashboard Viewed"),
        ("upload", "Upload a file", "File Uploaded"),
    ],
    "power-user": [
        ("checklist", "Tick a checklist item", "Checklist Item Done"),
        ("search", "Search", "Search Performed"),
        ("task", "Complete a task", "Task Completed"),
        ("dashboard", "Open the dashboard", "Dashboard Viewed"),
        ("upload", "Upload a file", "File Uploaded"),
        ("invite", "Invite a teammate", "Teammate Invited"),
    ],
}
OPTIONAL_STEP = "invite"  # skippable: 10% of its completions are skips
CONTINUE = (0.82, 0.74, 0.68, 0.80, 0.86, 0.90)  # of those who entered step i, share who complete it
SEGMENTS = {
    "persona": (["founder", "engineer", "marketer", "designer", "ops", "sales"], [3, 5, 2, 1, 1, 2]),
    "signup_source": (["organic", "ads", "referral", "partner", "webinar"], [5, 3, 2, 1, 1]),
    "company_size": (["1-10", "11-50", "51-200", "201-1000"], [4, 3, 2, 1]),
    "use_case": (["project-management", "crm", "support", "", "roadmap"], [4, 2, 1, 2, 1]),
}
EVENT_NAMES = (
    [
        *("Project Created", "Teammate Invited", "Integration Connected", "Task Completed"),
        *("Dashboard Viewed", "Checklist Item Done", "Search Performed", "File Uploaded"),
    ],
    [3, 2, 1, 20, 15, 4, 10, 3],
)
SETUP = """
import json
from tenancy import services
from paths import services as path_services
plan = json.loads('PLAN')
workspace, write_key, secret_key = services.workspace_create(name="Bench analytics")
versions = {}
for index, (key, steps) in enumerate(plan.items()):
    path = path_services.path_create(workspace=workspace, key=key, name=key.title(), is_default=index == 0)
    draft = path.versions.get()
    path_services.path_version_replace_steps(path_version=draft, steps=steps)
    versions[key] = path_services.path_version_publish(path_version=draft).pk
print(json.dumps({"write_key": write_key.key, "secret_key": secret_key.key,
                  "workspace_id": workspace.pk, "versions": versions}))
"""
REFRESH_LOOP = """
import json, os, time
from analytics.jobs import refresh_rollups_job
every = float(os.environ["BENCH_REFRESH_EVERY"])
while True:
    started = time.monotonic()
    print(json.dumps({"started": time.time()}), flush=True)
    totals = refresh_rollups_job()
    print(json.dumps({**totals, "seconds": time.monotonic() - started}), flush=True)
    time.sleep(max(0.0, every - (time.monotonic() - started)))
"""
DASHBOARD_PAGES = """
import importlib, json, os, time
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
try:
    registry = importlib.import_module("analytics.dashboards.registry")
except ImportError:
    registry = None
pages = {"overview (admin home)": "/admin/"}
for entry in registry.dashboards() if registry else []:
    pages[entry.title] = f"/admin/analytics/{entry.key}/"
users = get_user_model().objects
user = users.filter(username="bench-analytics").first() or users.create_superuser(
    "bench-analytics", "bench@example.com", "bench-password-1"
)
device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(user)
session = client.session
session[DEVICE_ID_SESSION_KEY] = device.persistent_id
session.save()
query = os.environ["BENCH_QUERY"]
results = {}
# Plain static URLs: production serves what collectstatic wrote; the bench has no manifest.
plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
override = override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain_static})
override.enable()
for title, url in (pages.items() if registry else []):
    times, statuses = [], {}
    for _ in range(int(os.environ["BENCH_READS"])):
        started = time.monotonic()
        response = client.get(f"{url}?{query}", secure=True)
        times.append(1000 * (time.monotonic() - started))
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    results[title] = {"times": times, "statuses": statuses}
print(json.dumps(results))
"""
TIMED_REFRESH = """
import json, time
from analytics.jobs import refresh_rollups_job
started = time.monotonic()
totals = refresh_rollups_job()
print(json.dumps({**totals, "seconds": time.monotonic() - started}))
"""


def _path_plan() -> dict:
    return {
        key: [
            {"key": step, "title": title, "event_name": event, "optional": step == OPTIONAL_STEP}
            for step, title, event in steps
        ]
        for key, steps in PATHS.items()
    }


# --- Generation by COPY ---------------------------------------------------------------------------


@contextlib.contextmanager
def _bulk_load(conn: psycopg.Connection, tables: tuple[str, ...]):
    """Drop the tables' secondary indexes and unique constraints (not the primary keys), let the
    caller COPY with foreign key triggers off, then rebuild them: far faster than maintaining
    four indexes row by row over 10M rows."""
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)",
        (list(tables),),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        (list(tables),),
    ).fetchall()
    for table, name, _ in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
        )
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    conn.execute("SET session_replication_role = replica")
    conn.commit()
    yield
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("SET maintenance_work_mem = '512MB'")
    started = time.monotonic()
    for table, name, definition in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
            + sql.SQL(definition)
        )
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))
    conn.commit()
    print(f"  indexes and unique constraints rebuilt in {time.monotonic() - started:.1f} s", flush=True)


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _journey(rng: random.Random, enrolled: float, end: float, steps: int) -> list[float]:
    """Completion times of the steps this enrollment completes: each entered step is completed with
    its CONTINUE share, after a log-normal time (median 30 minutes, long tail); none after `end`."""
    times, moment = [], enrolled
    for index in range(steps):
        if rng.random() > CONTINUE[index]:
            break
        moment += rng.lognormvariate(math.log(1800), 1.8)
        if moment > end:
            break
        times.append(moment)
    return times


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], lines) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count, chunk = 0, []
    with conn.cursor().copy(statement) as copy:
        for line in lines:
            chunk.append(line)
            if len(chunk) == 10_000:
                copy.write("".join(chunk))
                count += len(chunk)
                chunk = []
        copy.write("".join(chunk))
        count += len(chunk)
    return count


def generate_people(conn, keys: dict, options, start: float, end: float) -> tuple[dict, list]:
    """End users, their enrollments and completions; returns the counts and, per active
    enrollment, (user index, path key, steps done) for the progress events sent later."""
    rng = random.Random(options.seed)
    workspace = keys["workspace_id"]
    versions = keys["versions"]
    path_keys = list(PATHS)
    created = [start + rng.random() * (end - start) for _ in range(options.users)]
    choices = {
        name: rng.choices(values, weights, k=options.users) for name, (values, weights) in SEGMENTS.items()
    }

    def users():
        for index, moment in enumerate(created):
            traits = {name: choices[name][index] for name in SEGMENTS if choices[name][index]}
            segment = "\t".join(choices[name][index] for name in SEGMENTS)
            yield (
                f"{index + 1}\t{workspace}\tuser-{index}\t{orjson.dumps(traits).decode()}\t{segment}"
                f"\t\t\t\t{_ts(moment)}\t{_ts(moment)}\n"
            )

    columns = ("id", "workspace_id", "external_id", "traits", *SEGMENTS, "locale", "timezone", "group_id")
    counts = {"end users": _copy(conn, "onboarding_enduser", (*columns, "created_at", "updated_at"), users())}
    completions, active = [], []

    def enrollments():
        for index, moment in enumerate(created):
            path = path_keys[0] if rng.random() < 0.65 else path_keys[1]
            steps = PATHS[path]
            enrolled = moment + rng.random() * 600
            times = _journey(rng, enrolled, end, len(steps))
            done = len(times) == len(steps)
            last = times[-1] if times else enrolled
            status = (
                "completed"
                if done
                else "abandoned"
                if end - last > 30 * 86400 and rng.random() < 0.3
                else "active"
            )
            if status == "active":
                active.append((index, path, len(times)))
            for step, at in zip(steps, times, strict=False):
                method = "skip" if step[0] == OPTIONAL_STEP and rng.random() < 0.1 else "event"
                completions.append(f"{index + 1}\t{step[0]}\t{method}\t{_ts(at)}\t{_ts(at)}\n")
            current = "" if done else steps[len(times)][0]
            completed_at = _ts(last) if done else "\\N"
            yield (
                f"{index + 1}\t{status}\t{current}\t{{}}\t{1 + len(times)}\t\t{_ts(enrolled)}\t{_ts(last)}"
                f"\t{completed_at}\t\\N\t{_ts(last)}\t{index + 1}\t{versions[path]}\t{workspace}\n"
            )

    columns = ("id", "status", "current_step_key", "answers", "revision", "decision_reason", "enrolled_at")
    columns += ("step_entered_at", "completed_at", "stuck_at", "updated_at", "end_user_id", "path_version_id")
    counts["enrollments"] = _copy(conn, "onboarding_enrollment", (*columns, "workspace_id"), enrollments())
    columns = ("enrollment_id", "step_key", "method", "completed_at", "recorded_at")
    counts["step completions"] = _copy(conn, "onboarding_stepcompletion", columns, iter(completions))
    return counts, active


def _moments_in_order(rng: random.Random, count: int, start: float, span: float, slices: int = 2000):
    """`count` moments in ascending order, leaning to the recent past as start + span * sqrt(U)
    does (more users have signed up by then): each of `slices` equal spans gets its share of that
    distribution, drawn uniformly and sorted. In order, as a live server stamps received_at, so the
    BRIN index on received_at bounds a time window as it does in production."""
    done = 0
    width = span / slices
    for index in range(slices):
        upto = round(count * ((index + 1) / slices) ** 2)
        lower = start + width * index
        yield from sorted(lower + width * rng.random() for _ in range(upto - done))
        done = upto


def generate_events(conn, keys: dict, options, start: float, end: float) -> int:
    """--events track events: a random end user each, at a random time between their signup and
    the end, a name from a handful (weighted) with a few pre-serialised property sets."""
    rng = random.Random(options.seed + 1)
    names, weights = EVENT_NAMES
    properties = [
        orjson.dumps({"plan": plan, "source": src}).decode()
        for plan in ("free", "trial", "pro")
        for src in ("web", "ios")
    ]
    workspace, users, span = keys["workspace_id"], options.users, end - start
    picked = rng.choices(range(len(names)), weights, k=min(options.events, 1_000_000))

    def events():
        for number, moment in enumerate(_moments_in_order(rng, options.events, start, span)):
            user = int(rng.random() * users)
            stamp = _ts(moment)
            name = names[picked[number % len(picked)]]
            yield (
                f"{workspace}\t{user + 1}\ttrack\t{name}\tbench-{number}\tuser-{user}\t\t\t\t"
                f"{properties[number % len(properties)]}\t{{}}\t{stamp}\t{stamp}\t{stamp}\t{stamp}\n"
            )

    columns = ("workspace_id", "end_user_id", "type", "name", "message_id", "user_id", "anonymous_id")
    columns += ("group_id", "previous_id", "properties", "context", "timestamp", "original_timestamp")
    return _copy(conn, "onboarding_event", (*columns, "sent_at", "received_at"), events())


TABLES = ("onboarding_enduser", "onboarding_enrollment", "onboarding_stepcompletion", "onboarding_event")


def generate(dsn: str, keys: dict, options) -> list:
    end = time.time() - 600
    start = end - DAYS * 86400
    started = time.monotonic()
    with psycopg.connect(dsn) as conn:
        with _bulk_load(conn, TABLES):
            counts, active = generate_people(conn, keys, options, start, end)
            counts["events"] = generate_events(conn, keys, options, start, end)
            conn.commit()
            print(f"  rows copied in {time.monotonic() - started:.1f} s", flush=True)
        for table in TABLES:
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            )
        conn.commit()
        conn.autocommit = True
        analyzed = time.monotonic()
        conn.execute("ANALYZE")
        print(f"  ANALYZE in {time.monotonic() - analyzed:.1f} s", flush=True)
    print(
        f"generated in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{n:,} {what}" for what, n in counts.items())
    )
    return active


# --- Raw funnel and count(*) ------------------------------------------------------------------------


def raw_funnel_sql(steps: list[str]) -> str:
    """The rollups' funnel definition in one statement over the version's enrollments enrolled in
    the range and their non-reverted completions: entered step i = completed step i-1 (every
    enrollment for the first), advanced = entered and completed i (skips included), completed =
    advanced and not skipped; seconds to complete from entering (enrolment, else the previous
    completion), median and p90 over the completions that are not skips."""
    flags = []
    for index, step in enumerate(steps):
        flags.append(f"bool_or(c.step_key = '{step}') AS d{index}")
        flags.append(f"bool_or(c.step_key = '{step}' AND c.method = 'skip') AS k{index}")
        flags.append(f"max(c.completed_at) FILTER (WHERE c.step_key = '{step}') AS t{index}")
    outputs = []
    for index in range(len(steps)):
        entered = f"d{index - 1}" if index else "TRUE"
        since = f"t{index - 1}" if index else "enrolled_at"
        timed = f"{entered} AND d{index} AND NOT k{index}"
        seconds = f"EXTRACT(EPOCH FROM t{index} - {since})"
        outputs += [
            f"count(*) FILTER (WHERE {entered})",
            f"count(*) FILTER (WHERE {entered} AND d{index})",
            f"count(*) FILTER (WHERE {timed})",
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) FILTER (WHERE {timed})",
            f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {seconds}) FILTER (WHERE {timed})",
        ]
    return (
        f"SELECT {', '.join(outputs)} FROM ("  # noqa: S608 (step keys are the bench's own constants)
        f"SELECT e.id, e.enrolled_at, {', '.join(flags)} FROM onboarding_enrollment e"
        " LEFT JOIN onboarding_stepcompletion c ON c.enrollment_id = e.id AND c.reverted_at IS NULL"
        " WHERE e.workspace_id = %(workspace)s AND e.path_version_id = %(version)s"
        " AND e.enrolled_at >= %(start)s AND e.enrolled_at < %(end)s GROUP BY e.id) per_enrollment"
    )


COUNT_SQL = (
    "SELECT count(*) FROM onboarding_enrollment e"
    " LEFT JOIN onboarding_stepcompletion c ON c.enrollment_id = e.id AND c.reverted_at IS NULL"
    " WHERE e.workspace_id = %(workspace)s AND e.path_version_id = %(version)s"
    " AND e.enrolled_at >= %(start)s AND e.enrolled_at < %(end)s"
)


def raw_funnel(
    dsn: str, keys: dict, path: str, api_steps: list[dict], start: datetime, end: datetime
) -> None:
    steps = [step for step, _, _ in PATHS[path]]
    params = {
        "workspace": keys["workspace_id"],
        "version": keys["versions"][path],
        "start": start,
        "end": end,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        started = time.monotonic()
        row = conn.execute(raw_funnel_sql(steps), params).fetchone()
        funnel_seconds = time.monotonic() - started
        started = time.monotonic()
        (joined,) = conn.execute(COUNT_SQL, params).fetchone()
        count_seconds = time.monotonic() - started
    print(f"\nraw funnel of {path!r} (published version, whole range, {joined:,} joined rows):")
    print(
        f"  raw funnel SQL {funnel_seconds:.2f} s (target < 10 s); count(*) of the same rows"
        f" {count_seconds:.2f} s; ratio {funnel_seconds / count_seconds:.1f}x"
    )
    raw = [tuple(row[5 * index : 5 * index + 3]) for index in range(len(steps))]
    from_api = [(step["entered"], step["advanced"], step["completed"]) for step in api_steps]
    print(f"  entered/advanced/completed per step: {raw}")
    print(
        "  same counts as the API's funnel from the rollups: "
        + ("yes" if raw == from_api else f"NO, API {from_api}")
    )
    medians = [
        f"{row[5 * index + 3] or 0:,.0f}/{row[5 * index + 4] or 0:,.0f}" for index in range(len(steps))
    ]
    print(f"  raw median/p90 seconds per step: {', '.join(medians)}")


# --- Reads over HTTP -------------------------------------------------------------------------------


def _get(connection: http.client.HTTPConnection, method: str, url: str, headers: dict, body=None):
    connection.request(method, url, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def analytics_reads(port: int, keys: dict, options) -> list[dict]:
    """Each read --reads times in a row; returns the funnels' steps (for the raw comparison)."""
    today = datetime.now(UTC).date()
    recent = {"from": (today - timedelta(days=options.range_days - 1)).isoformat(), "to": today.isoformat()}
    reads = [
        (f"path funnel {path}, {options.range_days} days", f"paths/{path}/funnel", recent) for path in PATHS
    ]
    whole = {"from": (today - timedelta(days=DAYS + 1)).isoformat(), "to": today.isoformat()}
    reads.append(
        (f"path funnel {next(iter(PATHS))}, {DAYS} days", f"paths/{next(iter(PATHS))}/funnel", whole)
    )
    for name in ROLLUP_METRICS:
        reads.append((f"metric {name}", "metrics", {"name": name, **recent}))
    reads.append(
        (
            "metric step_completion_rate, one path",
            "metrics",
            {"name": "step_completion_rate", "path": "activation", **recent},
        )
    )
    reads.append(("nudges", "nudges", recent))
    if not options.no_cohorts:
        reads.append(("cohorts by signup, any event (rollups)", "cohorts", recent))
        reads.append(("cohorts by enrolment, any event (rollups)", "cohorts", {"by": "enrollment", **recent}))
        chosen = {"event": EVENT_NAMES[0][0], **recent}
        reads.append((f"cohorts, event {EVENT_NAMES[0][0]} (raw SQL)", "cohorts", chosen))
    headers = {"Authorization": f"Bearer {keys['secret_key']}"}
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    print(f"\nanalytics reads over HTTP, {options.reads} loads each, one keep-alive connection:")
    funnel = None
    for label, route, params in reads:
        times, statuses = [], {}
        for _ in range(options.reads):
            started = time.monotonic()
            status, body = _get(connection, "GET", f"/api/v1/analytics/{route}?{urlencode(params)}", headers)
            times.append(1000 * (time.monotonic() - started))
            statuses[status] = statuses.get(status, 0) + 1
        if route.startswith("paths/") and params is whole:
            funnel = orjson.loads(body)["steps"]
        p50, p95 = _percentile(times, 0.5), _percentile(times, 0.95)
        verdict = "ok" if p95 < 1000 else "OVER 1 s"
        print(
            f"  {label:<48} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(times):7.1f} ms"
            f"  {statuses} {verdict}"
        )
    connection.close()
    return funnel


def dashboard_pages(env: dict, keys: dict, options) -> None:
    """The admin dashboards, in-process through Django's test client (a superuser whose session
    a confirmed TOTP device verifies, as tests/conftest.py's verified_client): the views, their
    queries and templates, without the HTTP server."""
    today = datetime.now(UTC).date()
    query = urlencode(
        {
            "workspace": keys["workspace_id"],
            "from": (today - timedelta(days=options.range_days - 1)).isoformat(),
            "to": today.isoformat(),
        }
    )
    env = {**env, "BENCH_QUERY": query, "BENCH_READS": str(options.reads)}
    try:
        results = json.loads(_manage(env, "shell", "-c", DASHBOARD_PAGES).strip().splitlines()[-1])
    except SystemExit as error:  # the dashboards are another helper's work in progress: say, go on
        print(f"  dashboard pages FAILED: {str(error).strip().splitlines()[-1]}")
        return
    if not results:
        print("  dashboard pages: none (analytics.dashboards.registry does not exist in this tree)")
        return
    print(
        f"admin dashboard pages, {options.reads} loads each, in-process (Django test client, TOTP-verified):"
    )
    for title, found in results.items():
        times = found["times"]
        p50, p95 = _percentile(times, 0.5), _percentile(times, 0.95)
        verdict = "ok" if p95 < 1000 else "OVER 1 s"
        print(
            f"  {title:<48} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(times):7.1f} ms"
            f"  {found['statuses']} {verdict}",
            flush=True,
        )


ROLLUP_METRICS = (
    "onboarding_start_rate",
    "activation_rate",
    "time_to_activation_p50_hours",
    "time_to_activation_p90_hours",
    "step_completion_rate",
    "drop_off_rate_by_step",
)


def event_funnel(port: int, keys: dict) -> None:
    today = datetime.now(UTC).date()
    body = orjson.dumps(
        {
            "steps": [{"event": "Project Created"}, {"event": "Task Completed"}, {"event": "File Uploaded"}],
            "from": (today - timedelta(days=DAYS + 1)).isoformat(),
            "to": today.isoformat(),
        }
    )
    headers = {"Authorization": f"Bearer {keys['secret_key']}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(HOST, port, timeout=300)
    started = time.monotonic()
    status, payload = _get(connection, "POST", "/api/v1/analytics/funnels/events", headers, body)
    elapsed = time.monotonic() - started
    connection.close()
    result = orjson.loads(payload) if payload else {}
    timed_out = status == 503 or result.get("stale")
    counts = [step.get("count") for step in result.get("steps", [])]
    print(f"\nevent funnel (Project Created -> Task Completed -> File Uploaded, {DAYS} days, all events):")
    print(
        f"  HTTP {status} in {elapsed:.2f} s; statement timeout hit: {'YES' if timed_out else 'no'};"
        f" counts {counts}"
    )


# --- Ingestion with the refresh on and off, incremental refresh ---------------------------------------


def _start_refresh_loop(env: dict, every: float) -> tuple[subprocess.Popen, Path]:
    log = ROOT / "var" / "bench-analytics-refresh.log"
    command = [PYTHON, "manage.py", "shell", "-c", REFRESH_LOOP]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "BENCH_REFRESH_EVERY": str(every)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _refresh_runs(log: Path) -> str:
    """What the refresh loop did: each finished refresh's seconds, and whether one was running
    when the phase ended."""
    lines = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    runs = [each for each in lines if isinstance(each, dict)]
    finished = [f"{each['seconds']:.1f}" for each in runs if "seconds" in each]
    started = sum(1 for each in runs if "started" in each)
    running = " (one still running at the end)" if started > len(finished) else ""
    return (
        f"; {started} refreshes started, seconds of those finished: {', '.join(finished) or 'none'}{running}"
    )


def _ingest_phase(port: int, keys: dict, env: dict, options, seed: int, every: float | None) -> tuple:
    """(events sent, seconds, errors, what the refresh loop did) of one phase; `every` None: no
    refresh, 0: refreshes back to back."""
    batches = make_batches(
        events=options.ingest_events,
        batch_size=100,
        users=min(5_000, options.users),
        visitors=1_000,
        seed=seed,
    )
    bodies = [(len(batch["batch"]), orjson.dumps(batch)) for batch in batches]
    loop = _start_refresh_loop(env, every) if every is not None else None
    try:
        started = time.monotonic()
        samples, failures = asyncio.run(_load(port, keys["write_key"], bodies, options.ingest_clients, 60))
        elapsed = time.monotonic() - started
    finally:
        if loop is not None:
            _stop(loop[0])
    sent = sum(count for _, _, count in samples)
    return sent, elapsed, len(failures), _refresh_runs(loop[1]) if loop is not None else ""


def ingestion_on_off(port: int, keys: dict, env: dict, options) -> tuple[float, float]:
    """Phases alternated per round: no refresh, the refresh every --refresh-every s (a cadence, as
    the scheduler runs it, only shorter), and refreshes back to back (the worst case)."""
    print(
        f"\ningestion, {options.ingest_events:,} events per phase in batches of 100, {options.ingest_clients}"
        f" clients; refresh = refresh_rollups_job() in its own process, every {options.refresh_every:.0f} s"
        " (cadence) or back to back:",
        flush=True,
    )
    modes = {"off": None, "cadence": options.refresh_every, "back to back": 0.0}
    totals = {mode: [0, 0.0] for mode in modes}
    for round_number in range(options.ingest_rounds):
        for index, (mode, every) in enumerate(modes.items()):
            seed = 100 + len(modes) * round_number + index
            sent, elapsed, errors, extra = _ingest_phase(port, keys, env, options, seed, every)
            totals[mode][0] += sent
            totals[mode][1] += elapsed
            print(
                f"  round {round_number + 1}, refresh {mode:<12}: {sent / elapsed:8,.0f} events/s"
                f" ({sent:,} events, {errors} errors){extra}",
                flush=True,
            )
    rates = {mode: sent / seconds for mode, (sent, seconds) in totals.items()}
    cadence, back_to_back = (100 * rates[mode] / rates["off"] for mode in ("cadence", "back to back"))
    print(
        f"  overall: off {rates['off']:,.0f} events/s; refresh every {options.refresh_every:.0f} s"
        f" {rates['cadence']:,.0f} events/s = {cadence:.0f}% (target >= 90%);"
        f" back to back {rates['back to back']:,.0f} events/s = {back_to_back:.0f}%"
    )
    return rates["off"], rates["back to back"]


def progress_batches(active: list, count: int, first_user: int) -> list[tuple[int, bytes]]:
    """`count` track events, each the next step's event of an active enrollment (users from
    `first_user`, away from the ingestion phases' users), round robin so one user's steps come in
    order in successive batches; timestamps now."""
    queue = [[user, path, done] for user, path, done in active if user >= first_user]
    events, now = [], datetime.now(UTC)
    run = int(now.timestamp())  # messageIds unique across runs on a kept database (else deduplicated)
    while len(events) < count and queue:
        still = []
        for entry in queue:
            user, path, done = entry
            if done >= len(PATHS[path]) or len(events) >= count:
                continue
            moment = (now + timedelta(milliseconds=len(events))).isoformat().replace("+00:00", "Z")
            events.append(
                {
                    "type": "track",
                    "userId": f"user-{user}",
                    "event": PATHS[path][done][2],
                    "messageId": f"progress-{run}-{len(events)}",
                    "timestamp": moment,
                    "properties": {},
                }
            )
            entry[2] += 1
            still.append(entry)
        queue = still
    sent_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        (
            len(events[offset : offset + 100]),
            orjson.dumps({"batch": events[offset : offset + 100], "sentAt": sent_at}),
        )
        for offset in range(0, len(events), 100)
    ]


def autovacuum_pass(dsn: str) -> list[str]:
    """One pass of what autovacuum does at its default thresholds (VACUUM past 20% dead rows,
    ANALYZE past 10% changed, each plus 50): this bench's server may run with autovacuum off, and a
    refresh over tables never vacuumed after rounds of 100k updates measured 27-40 s from run to
    run. Returns what it did."""
    done = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_dead_tup > 50 + 0.2 * n_live_tup, n_mod_since_analyze > 50 + 0.1 * n_live_tup"
            " FROM pg_stat_user_tables WHERE schemaname = 'public'"
        ).fetchall()
        for table, vacuum, analyze in rows:
            if vacuum or analyze:
                verb = "VACUUM ANALYZE" if vacuum else "ANALYZE"
                conn.execute(sql.SQL(verb + " {}").format(sql.Identifier(table)))
                done.append(f"{verb.lower()} {table}")
    return done


def _run_refresh(env: dict, timeout: float) -> dict | None:
    """One refresh_rollups_job() in its own process, timed inside it; None if it outlasts `timeout`."""
    try:
        done = subprocess.run(
            [PYTHON, "manage.py", "shell", "-c", TIMED_REFRESH],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def incremental_refresh(port: int, keys: dict, env: dict, active: list, options) -> float:
    print("\nincremental refresh:", flush=True)
    settle = _run_refresh(env, options.refresh_timeout)
    if settle is None:
        print(f"  settling refresh: not finished within {options.refresh_timeout:.0f} s, stopped")
        return options.refresh_timeout
    print(
        f"  settling refresh after the ingestion phases: {settle['seconds']:.1f} s, {settle['slices']} slices"
        f" (event rollups {settle.get('event_rollups_ms', 0) / 1000:.1f} s of it)"
    )
    bodies = progress_batches(active, options.progress_events, min(5_000, options.users // 2))
    sent_events = sum(count for count, _ in bodies)
    started = time.monotonic()
    samples, failures = asyncio.run(_load(port, keys["write_key"], bodies, options.ingest_clients, 60))
    elapsed = time.monotonic() - started
    sent = sum(count for _, _, count in samples)
    print(
        f"  {sent:,} of {sent_events:,} progress events sent over HTTP in {elapsed:.1f} s"
        f" ({sent / elapsed:,.0f}/s, {len(failures)} errors)"
    )
    with psycopg.connect(env["BENCH_DSN"]) as conn:
        (changed,) = conn.execute(
            "SELECT count(*) FROM onboarding_stepcompletion WHERE recorded_at >= now() - %s::interval",
            (f"{int(elapsed) + 5} seconds",),
        ).fetchone()
    print(f"  step completions recorded by them: {changed:,}")
    if options.only == "progress":
        return 0.0
    started = time.monotonic()
    vacuumed = autovacuum_pass(env["BENCH_DSN"])
    seconds = time.monotonic() - started
    print(f"  autovacuum's pass at its thresholds ({seconds:.1f} s): {', '.join(vacuumed) or 'nothing'}")
    timed = _run_refresh(env, options.refresh_timeout)
    if timed is None:
        print(
            f"  incremental refresh: not finished within {options.refresh_timeout:.0f} s, stopped"
            " (target < 30 s)"
        )
        return options.refresh_timeout
    verdict = "ok" if timed["seconds"] < 30 else "OVER 30 s"
    print(
        f"  incremental refresh: {timed['seconds']:.1f} s (target < 30 s, {verdict}; event rollups"
        f" {timed.get('event_rollups_ms', 0) / 1000:.1f} s of it);"
        f" {timed['slices']} slices,"
        f" {timed['rows_changed']:,} rollup rows changed"
    )
    return timed["seconds"]


# --- Main -------------------------------------------------------------------------------------------


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000, help="end users, one enrollment each")
    parser.add_argument("--events", type=int, default=10_000_000, help="events generated by COPY")
    parser.add_argument("--reads", type=int, default=20, help="loads of each analytics read")
    parser.add_argument("--range-days", type=int, default=30, help="the reads' range (the API's default)")
    parser.add_argument("--ingest-events", type=int, default=30_000, help="events per ingestion phase")
    parser.add_argument("--ingest-rounds", type=int, default=2, help="rounds of (refresh off, refresh on)")
    parser.add_argument("--ingest-clients", type=int, default=8)
    parser.add_argument("--refresh-every", type=float, default=10, help="seconds between refreshes when on")
    parser.add_argument(
        "--progress-events", type=int, default=100_000, help="events before the timed refresh"
    )
    parser.add_argument(
        "--refresh-timeout", type=float, default=1800, help="seconds before the timed refresh is stopped"
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench_analytics"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="flushed at the start")
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database in place")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="read a database a --keep-db run left (migrated, no generation or rebuild); implies --keep-db",
    )
    parser.add_argument(
        "--only",
        choices=("all", "reads", "refresh", "progress", "ingestion"),
        default="all",
        help="reads: the API reads, pages and raw funnel; refresh: the timed incremental refresh (step 7);"
        " progress: settle, then send step 7's progress events and leave them unrefreshed (to profile);"
        " ingestion: step 6 alone",
    )
    parser.add_argument("--no-cohorts", action="store_true", help="leave the (slow) cohorts read out")
    options = parser.parse_args()
    for url in (options.database_url, options.redis_url):
        if urlparse(url).hostname not in (HOST, "localhost"):
            raise SystemExit("the bench only talks to 127.0.0.1")
    options.keep_db = options.keep_db or options.reuse_db
    return options


def _keys_file(db_name: str) -> Path:
    """Where a run keeps its workspace's keys, so a --reuse-db run can read the same database."""
    return ROOT / "var" / f"bench-analytics-{db_name}.json"


ROLLUP_TABLES = (
    "analytics_enrollmentrollup",
    "analytics_activationtimebucket",
    "analytics_steprollup",
    "analytics_steptimebucket",
)


def _timed_rebuild(env: dict, timeout: float) -> None:
    started = time.monotonic()
    # Not _manage: its 300 s limit is under a 1M build on a shared machine.
    done = subprocess.run(
        [PYTHON, "manage.py", "rebuild_rollups"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py rebuild_rollups failed:\n{done.stdout}\n{done.stderr}")
    output = done.stdout
    elapsed = time.monotonic() - started
    print(f"\nfull rollup build (manage.py rebuild_rollups, wall time with Django's start): {elapsed:.1f} s")
    for line in output.strip().splitlines()[:-1]:  # per workspace (the enrollment and event rollups)
        print("  " + line)
    with psycopg.connect(env["BENCH_DSN"]) as conn:
        rows = []
        tables = ("analytics_enrollmentrollup", "analytics_steprollup", "analytics_steptimebucket")
        tables += ("analytics_cohortmember", "analytics_activityweek", "analytics_cohortcount")
        tables += ("analytics_eventdayrollup",)
        for table in tables:
            count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            rows.append(f"{conn.execute(count).fetchone()[0]:,} {table}")
    print("  rollup rows: " + ", ".join(rows), flush=True)
    # What autovacuum does within minutes of the build (this bench's server may run without it):
    # without statistics the planner reads the new rollup rows as one row and sorts 1.5M on disk.
    with psycopg.connect(env["BENCH_DSN"], autocommit=True) as conn:
        analyzed = time.monotonic()
        conn.execute("VACUUM ANALYZE " + ", ".join(ROLLUP_TABLES))
    print(f"  VACUUM ANALYZE of the rollup tables in {time.monotonic() - analyzed:.1f} s", flush=True)


def active_enrollments(dsn: str) -> list[tuple[int, str, int]]:
    """(user index, path key, steps done) of the active enrollments stored, for a --reuse-db run."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT substr(u.external_id, 6)::int, p.key, (SELECT count(*) FROM onboarding_stepcompletion c"
            " WHERE c.enrollment_id = e.id AND c.reverted_at IS NULL)"
            " FROM onboarding_enrollment e JOIN onboarding_enduser u ON u.id = e.end_user_id"
            " JOIN paths_pathversion v ON v.id = e.path_version_id JOIN paths_path p ON p.id = v.path_id"
            " WHERE e.status = 'active' AND u.external_id LIKE 'user-%%' ORDER BY 1"
        ).fetchall()
    return [(user, path, done) for user, path, done in rows if path in PATHS]


def _measure(port: int, keys: dict, env: dict, active: list, options) -> None:
    if options.only == "ingestion":
        ingestion_on_off(port, keys, env, options)
        return
    if options.only in ("refresh", "progress"):
        incremental_refresh(port, keys, env, active or active_enrollments(env["BENCH_DSN"]), options)
        return
    funnel = analytics_reads(port, keys, options)
    dashboard_pages(env, keys, options)
    end = datetime.now(UTC)
    raw_funnel(env["BENCH_DSN"], keys, next(iter(PATHS)), funnel, end - timedelta(days=DAYS + 2), end)
    if options.only == "reads":
        return
    event_funnel(port, keys)
    rate_off, rate_on = ingestion_on_off(port, keys, env, options)
    refresh_seconds = incremental_refresh(port, keys, env, active, options)
    # The back-to-back phases above are the worst case; the scheduler refreshes every
    # SCHEDULED_EVERY seconds, so a refresh of this length runs that share of the time.
    # An estimate from the two measured rates, not a measurement.
    busy = min(1.0, refresh_seconds / SCHEDULED_EVERY)
    estimate = (1 - busy) + busy * rate_on / rate_off
    print(
        f"\nestimate (not measured): with the scheduler's refresh every {SCHEDULED_EVERY} s and a refresh of"
        f" {refresh_seconds:.0f} s, the refresh runs {100 * busy:.0f}% of the time, so ingestion keeps"
        f" ~{100 * estimate:.0f}% of its rate without it"
    )


def main() -> None:
    options = _options()
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    if options.reuse_db:
        dsn = psycopg.conninfo.make_conninfo(options.database_url, dbname=db_name)
    else:
        dsn = recreate_database(options.database_url, db_name)
    redis.Redis.from_url(options.redis_url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "BENCH_DSN": dsn,
    }
    (ROOT / "var").mkdir(exist_ok=True)
    try:
        print(f"database {db_name}: migrating ...", flush=True)
        _manage(env, "migrate", "--noinput")
        if options.reuse_db:
            keys, active = json.loads(_keys_file(db_name).read_text()), []
            print(f"reusing {db_name} and its keys in {_keys_file(db_name)}", flush=True)
        else:
            setup = SETUP.replace("PLAN", json.dumps(_path_plan()))
            keys = json.loads(_manage(env, "shell", "-c", setup).strip().splitlines()[-1])
            _keys_file(db_name).write_text(json.dumps(keys))
            print(f"generating {options.users:,} end users and {options.events:,} events by COPY ...")
            active = generate(dsn, keys, options)
            _timed_rebuild(env, options.refresh_timeout)
        port = _free_port()
        server = start_server(env, port, options.workers, "config.asgi:application")
        try:
            wait_healthy(port, server)
            print(f"server: python -m config.serve, {options.workers} workers on {HOST}:{port}", flush=True)
            _measure(port, keys, env, active, options)
        finally:
            stop_server(server)
    finally:
        if not options.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(options.database_url, db_name)


if __name__ == "__main__":
    main()
