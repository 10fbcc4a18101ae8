"""Ingestion benchmark: the production ASGI server against PostgreSQL, loaded over HTTP.

    .venv/bin/python bench/ingest.py [--events N] [--clients C] [--workers W]

1. (Re)creates a dedicated PostgreSQL database, migrates it and creates a workspace.
2. Starts uvicorn (uvloop + httptools, W worker processes, DEBUG off, Redis channel layer) and
   waits for /healthz. Two workers by default, one per core: a worker's Python work is bound by
   its GIL, so more processes than cores only add contention (3 and 4 measured no faster), and
   each worker already overlaps database waits with a second ingestion thread.
3. A separate process sends N realistic Segment events (track, page, screen, identify; 20k users,
   anonymous visitors, unique messageIds) in batches of 100 over C keep-alive connections. It uses
   a minimal asyncio HTTP/1.1 client with every body serialised in advance, so it needs little of
   the CPU the server and PostgreSQL share.
4. Prints events/s sustained (after warm-up), batch latency percentiles, errors, the CPU split
   between server, PostgreSQL and load generator, and checks the database holds exactly N events.
5. Stops the server, then times a raw psycopg COPY of the same rows and an executemany of
   INSERT ... ON CONFLICT DO NOTHING in batches of 100 (one transaction each, as a request is)
   into copies of the events table, for comparison. Drops the database unless --keep-db.

Traffic goes to 127.0.0.1 only; every wait has a timeout, so the run always ends.
"""

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
CONTACT_TRAITS = {"email", "phone", "name", "firstName", "first_name", "lastName", "last_name", "address"}
EVENT_COLUMNS = (
    "workspace_id",
    "end_user_id",
    "type",
    "name",
    "message_id",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "properties",
    "context",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
)


# --- Realistic traffic -------------------------------------------------------------------------

TRACK_EVENTS = [
    ("Project Created", lambda r: {"template": r.choice(["blank", "kanban", "crm", "roadmap"])}),
    ("Teammate Invited", lambda r: {"role": r.choice(["admin", "member"]), "count": r.randint(1, 5)}),
    ("Integration Connected", lambda r: {"provider": r.choice(["slack", "github", "jira", "gdrive"])}),
    ("Task Completed", lambda r: {"project_id": f"p_{r.randint(1, 50_000)}", "seconds": r.randint(3, 900)}),
    ("Dashboard Viewed", lambda r: {"dashboard": r.choice(["home", "sales"]), "widgets": r.randint(1, 12)}),
    ("Checklist Item Done", lambda r: {"item": r.choice(["profile", "invite", "import", "connect"])}),
    ("Search Performed", lambda r: {"query_length": r.randint(1, 40), "results": r.randint(0, 200)}),
    ("File Uploaded", lambda r: {"bytes": r.randint(1_000, 9_000_000), "kind": r.choice(["csv", "pdf"])}),
]
PAGES = ["Home", "Pricing", "Docs", "Settings", "Billing", "Onboarding", "Templates", "Integrations"]
SCREENS = ["Feed", "Inbox", "Profile", "Settings", "Task Detail"]
PERSONAS = ["founder", "engineer", "marketer", "designer", "ops", "sales"]
SOURCES = ["organic", "ads", "referral", "partner", "webinar"]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP"]
TIMEZONES = ["America/New_York", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "America/Sao_Paulo"]
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_batches(*, events: int, batch_size: int, users: int, visitors: int, seed: int) -> list[dict]:
    """Deterministic Segment batches (same seed, same events), as analytics.js would send them.

    Known users carry userId and the anonymousId of their device; 1% of their events come
    before sign-in (anonymousId only), so some anonymous profiles are claimed or merged later.
    Anonymous visitors never identify. Every event has its own messageId.
    """
    rng = random.Random(seed)
    anonymous = [_uuid(rng) for _ in range(users + visitors)]
    start = datetime(2025, 3, 1, tzinfo=UTC)
    batches = []
    for batch_start in range(0, events, batch_size):
        sent_at = start + timedelta(seconds=batch_start // 10)
        batch = []
        for _ in range(min(batch_size, events - batch_start)):
            person = rng.randrange(users + visitors)
            is_user = person < users and rng.random() >= 0.01
            moment = sent_at - timedelta(milliseconds=rng.randint(5, 30_000))
            event = {
                "messageId": _uuid(rng),
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
                "anonymousId": anonymous[person],
                "context": {
                    "library": {"name": "analytics.js", "version": "5.2.1"},
                    "ip": f"203.0.{person % 250}.{person % 200 + 1}",
                    "userAgent": AGENTS[person % len(AGENTS)],
                    "locale": LOCALES[person % len(LOCALES)],
                    "timezone": TIMEZONES[person % len(TIMEZONES)],
                    "page": {"path": "/app", "url": "https://app.example.com/app", "referrer": ""},
                },
            }
            if is_user:
                event["userId"] = f"user-{person}"
            roll = rng.random()
            if roll < 0.72:
                name, properties = rng.choice(TRACK_EVENTS)
                event.update(type="track", event=name, properties=properties(rng))
            elif roll < 0.87:
                page = rng.choice(PAGES)
                event.update(
                    type="page",
                    name=page,
                    properties={"path": f"/{page.lower()}", "title": f"{page} | Example", "referrer": ""},
                )
            elif roll < 0.93:
                screen = rng.choice(SCREENS)
                event.update(type="screen", name=screen, properties={"build": rng.randint(100, 140)})
            elif is_user:
                event.update(
                    type="identify",
                    traits={
                        "email": f"user{person}@example.com",
                        "name": f"User {person}",
                        "phone": f"+1415555{person % 10_000:04d}",
                        "persona": PERSONAS[person % len(PERSONAS)],
                        "signupSource": SOURCES[person % len(SOURCES)],
                        "company_size": rng.choice(["1-10", "11-50", "51-200", "201-1000"]),
                        "locale": LOCALES[person % len(LOCALES)],
                        "plan": rng.choice(["free", "trial", "pro"]),
                    },
                )
            else:
                event.update(type="page", name="Pricing", properties={"path": "/pricing"})
            batch.append(event)
        batches.append({"batch": batch, "sentAt": sent_at.isoformat().replace("+00:00", "Z")})
    return batches


# --- Load generator (separate process) ---------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if not chunked:
        body = await reader.readexactly(length)
    else:
        parts = []
        while size := int((await reader.readline()).split(b";")[0].strip(), 16):
            parts.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        body = b"".join(parts)
    if close:
        raise ConnectionResetError("server asked to close")  # caller reconnects, body is valid
    return status, body


async def _load(port: int, write_key: str, bodies: list[tuple[int, bytes]], clients: int, timeout: float):
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Basic {auth}\r\n"
        "Content-Type: application/json\r\nUser-Agent: bench-ingest\r\n"
    ).encode()
    pending = iter(range(len(bodies)))
    samples: list[tuple[float, float, int]] = []  # (start, end, events)
    failures: list[str] = []

    async def client():
        connection = None
        for index in pending:
            count, body = bodies[index]
            request = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            for _attempt in range(5):  # a retry after an error is deduplicated by messageId
                start = time.monotonic()
                try:
                    if connection is None:
                        connection = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
                    reader, writer = connection
                    writer.write(request)
                    status, payload = await asyncio.wait_for(_read_response(reader), timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                    failures.append(f"{type(error).__name__}: {error}")
                    if connection is not None:
                        connection[1].close()
                    connection = None
                    await asyncio.sleep(0.2)
                    continue
                if status == 200:
                    samples.append((start, time.monotonic(), count))
                    break
                failures.append(f"HTTP {status}: {payload[:300]!r}")
                await asyncio.sleep(0.2)
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return samples, failures


def load_generator(port, write_key, options, conn) -> None:
    """Child process: build and serialise every batch, tell the parent, then send them."""
    batches = make_batches(
        events=options["events"],
        batch_size=options["batch_size"],
        users=options["users"],
        visitors=options["visitors"],
        seed=options["seed"],
    )
    bodies = [(len(batch["batch"]), orjson.dumps(batch)) for batch in batches]
    del batches
    conn.send(("ready", time.monotonic()))
    conn.recv()  # go
    started = time.monotonic()
    samples, failures = asyncio.run(
        _load(port, write_key, bodies, options["clients"], options["request_timeout"])
    )
    conn.send(("done", started, time.monotonic(), samples, failures))
    conn.close()


# --- CPU accounting from /proc -----------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds so far)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def _descendants(processes, root: int) -> set[int]:
    tree, changed = {root}, True
    while changed:
        changed = False
        for pid, (parent, _, _) in processes.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return tree


class CpuSampler(threading.Thread):
    """Samples CPU seconds of the server tree, PostgreSQL, Redis, the load generator and the
    machine as a whole, so the bench can say where the cores went. PostgreSQL counts the
    backends of the bench database and the shared background processes (WAL writer,
    checkpointer ...); backends of other databases (other work on this machine) count as other."""

    def __init__(self, server_pid: int, generator_pid: int, dsn: str):
        super().__init__(daemon=True)
        self.server_pid, self.generator_pid = server_pid, generator_pid
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stop_event = threading.Event()
        # Processes that died between samples take their CPU time with them; count what we saw.
        self._last: dict[int, tuple[str, float]] = {}
        self._db = psycopg.connect(dsn, autocommit=True)

    def _postgresql_pids(self) -> set[int]:
        rows = self._db.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() OR backend_type <> 'client backend'"
        ).fetchall()
        return {pid for (pid,) in rows}

    def sample(self) -> None:
        processes = _processes()
        server = _descendants(processes, self.server_pid)
        generator = _descendants(processes, self.generator_pid)
        postgresql = self._postgresql_pids()
        for pid, (_, name, seconds) in processes.items():
            if pid in server:
                group = "server"
            elif pid in generator:
                group = "load generator"
            elif pid in postgresql or (name == "postgres" and processes[pid][0] == 1):
                group = "postgresql"
            elif name.startswith("redis"):
                group = "redis"
            else:
                group = "other"
            self._last[pid] = (group, seconds)
        totals = dict.fromkeys(("server", "postgresql", "load generator", "redis", "other"), 0.0)
        for group, seconds in self._last.values():
            totals[group] += seconds
        with open("/proc/stat") as stat:
            values = [int(value) for value in stat.readline().split()[1:]]
        totals["machine busy"] = (sum(values) - values[3] - values[4]) / CLOCK_TICKS
        self.samples.append((time.monotonic(), totals))

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.sample()

    def close(self) -> None:
        self._db.close()

    def between(self, start: float, end: float) -> tuple[float, dict[str, float]]:
        before = min(self.samples, key=lambda sample: abs(sample[0] - start))
        after = min(self.samples, key=lambda sample: abs(sample[0] - end))
        elapsed = after[0] - before[0]
        return elapsed, {group: after[1][group] - before[1][group] for group in after[1]}


# --- Database, server ----------------------------------------------------------------------------


class AutoAnalyzer(threading.Thread):
    """autovacuum's analyze rule (50 rows + 10% of the table changed), checked every 2 s, for
    the tables ingestion looks rows up in (end users, anonymous ids, contacts).

    Used only when the instance runs with autovacuum off. In production it is on and these
    tables have statistics; a bench that grows them from empty within seconds would otherwise
    plan every lookup from the statistics of an empty table. The events table is left alone:
    ingestion only appends to it, and re-analysing it every 10% of growth is an artefact of
    starting from empty that production (100M rows, analysed every 10M) does not pay."""

    TABLES = ("onboarding_enduser", "onboarding_anonymousidentity", "onboarding_contact")

    def __init__(self, dsn: str, tables: tuple[str, ...] = TABLES):
        super().__init__(daemon=True)
        self.dsn, self.tables, self.runs = dsn, tables, 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop_event.wait(2):
                stale = conn.execute(
                    "SELECT relname FROM pg_stat_user_tables"
                    " WHERE n_mod_since_analyze > 50 + 0.1 * n_live_tup AND relname = ANY(%s)",
                    (list(self.tables),),
                ).fetchall()
                for (table,) in stale:
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
                    self.runs += 1


def _admin_dsn(base: str) -> str:
    return psycopg.conninfo.make_conninfo(base, dbname="postgres")


def recreate_database(base_dsn: str, name: str) -> str:
    with psycopg.connect(_admin_dsn(base_dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(base_dsn, dbname=name)


def drop_database(base_dsn: str, name: str) -> None:
    with psycopg.connect(_admin_dsn(base_dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _database_url(dsn: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    return f"postgres://{user}{password}@{info.get('host', HOST)}:{info.get('port', 5432)}/{info['dbname']}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_server(env: dict, port: int, workers: int, app: str) -> subprocess.Popen:
    """The production server (config/serve.py): W uvicorn workers (uvloop, httptools), each on
    its own SO_REUSEPORT socket."""
    command = [
        PYTHON,
        "-m",
        "config.serve",
        "--app",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log = open(ROOT / "var" / "bench-server.log", "wb")  # noqa: SIM115 (lives as long as the server)
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see var/bench-server.log")
        try:
            with socket.create_connection((HOST, port), timeout=2) as probe:
                probe.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become healthy in time; see var/bench-server.log")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


# --- Raw PostgreSQL baselines --------------------------------------------------------------------


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def event_rows(dsn: str, workspace_id: int, batches: list[dict]) -> list[tuple]:
    """The events table rows the server stored for these batches (end users looked up)."""
    with psycopg.connect(dsn) as conn:
        by_user = dict(
            conn.execute(
                "SELECT external_id, id FROM onboarding_enduser"
                " WHERE workspace_id = %s AND external_id IS NOT NULL",
                (workspace_id,),
            ).fetchall()
        )
        by_anonymous = dict(
            conn.execute(
                "SELECT anonymous_id, end_user_id FROM onboarding_anonymousidentity WHERE workspace_id = %s",
                (workspace_id,),
            ).fetchall()
        )
    received_at = datetime.now(UTC)
    rows = []
    for batch in batches:
        sent_at = _parse_time(batch["sentAt"])
        for event in batch["batch"]:
            client_time = _parse_time(event["timestamp"])
            user_id, anonymous_id = event.get("userId", ""), event["anonymousId"]
            properties = event.get("properties") or {
                key: value for key, value in event.get("traits", {}).items() if key not in CONTACT_TRAITS
            }
            context = {key: value for key, value in event["context"].items() if key != "ip"}
            rows.append(
                (
                    workspace_id,
                    by_user[user_id] if user_id else by_anonymous[anonymous_id],
                    event["type"],
                    event.get("event") or event.get("name", ""),
                    event["messageId"],
                    user_id,
                    anonymous_id,
                    "",
                    "",
                    properties,
                    context,
                    received_at - (sent_at - client_time),
                    client_time,
                    sent_at,
                    received_at,
                )
            )
    return rows


def _copy_table(conn: psycopg.Connection, name: str) -> sql.Identifier:
    table = sql.Identifier(name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    # Same columns, unique constraint and indexes as the events table (LIKE copies no foreign keys).
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE onboarding_event INCLUDING ALL)").format(table))
    conn.commit()
    return table


def _json_rows(rows: list[tuple]) -> list[tuple]:
    return [(*row[:9], Jsonb(row[9]), Jsonb(row[10]), *row[11:]) for row in rows]


def time_copy(dsn: str, rows: list[tuple]) -> float:
    """One COPY of every row, as fast as psycopg goes: the ceiling for this table."""
    with psycopg.connect(dsn) as conn:
        psycopg.types.json.set_json_dumps(orjson.dumps, conn)
        table = _copy_table(conn, "bench_copy")
        prepared = _json_rows(rows)
        columns = sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))
        start = time.perf_counter()
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
            for row in prepared:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
        conn.commit()
    return len(rows) / elapsed


def time_executemany(dsn: str, rows: list[tuple], batch_size: int) -> float:
    """executemany of INSERT ... ON CONFLICT DO NOTHING, one transaction per batch like a request."""
    with psycopg.connect(dsn) as conn:
        psycopg.types.json.set_json_dumps(orjson.dumps, conn)
        table = _copy_table(conn, "bench_insert")
        prepared = _json_rows(rows)
        statement = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (workspace_id, message_id) DO NOTHING"
        ).format(
            table,
            sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)),
            sql.SQL(", ").join([sql.Placeholder()] * len(EVENT_COLUMNS)),
        )
        start = time.perf_counter()
        with conn.cursor() as cursor:
            for offset in range(0, len(prepared), batch_size):
                cursor.executemany(statement, prepared[offset : offset + batch_size])
                conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
        conn.commit()
    return len(rows) / elapsed


# --- Main ------------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _report_load(samples, failures, started, finished, sampler: CpuSampler, expected: int) -> float:
    completed = sorted(samples, key=lambda sample: sample[1])
    sent = sum(count for _, _, count in completed)
    print(f"\nsent {sent:,} events in {len(completed):,} batches in {finished - started:.1f} s")
    print(f"errors: {len(failures)} (retried; every batch must end accepted)")
    for failure in failures[:5]:
        print(f"  {failure}")
    if sent != expected:
        print(f"  !! only {sent:,} of {expected:,} events were acknowledged")
    # Sustained: skip the first 10% of batches (warm-up: connections, caches, first profiles)
    # and the last 5% (clients draining).
    first, last = int(0.10 * len(completed)), max(int(0.95 * len(completed)) - 1, 1)
    window_start, window_end = completed[first][1], completed[last][1]
    in_window = sum(count for _, end, count in completed[first + 1 : last + 1])
    rate = in_window / (window_end - window_start)
    latencies = [1000 * (end - start) for start, end, _ in completed[first : last + 1]]
    print(f"overall:   {sent / (finished - started):,.0f} events/s (wall time, including warm-up)")
    print(f"sustained: {rate:,.0f} events/s (after warm-up, {window_end - window_start:.1f} s window)")
    p50, p95, p99 = (_percentile(latencies, fraction) for fraction in (0.50, 0.95, 0.99))
    print(f"batch latency: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
    elapsed, cpu = sampler.between(window_start, window_end)
    cores = os.cpu_count() or 1
    print(f"CPU in the sustained window ({cores} cores = {100 * cores}%):")
    for group in ("server", "postgresql", "load generator", "redis", "other", "machine busy"):
        print(f"  {group:<15} {100 * cpu[group] / elapsed:5.0f}%")
    # CPU seconds per event do not depend on what else runs on the machine: they say how fast
    # this could go with the cores to itself.
    events = in_window * elapsed / (window_end - window_start)
    own = sum(cpu[group] for group in ("server", "postgresql", "load generator", "redis"))
    print(
        "CPU per 1,000 events: server {:.0f} ms, PostgreSQL {:.0f} ms, all of the bench {:.0f} ms"
        " -> {:,.0f} events/s if the bench had the {} cores to itself".format(
            1e6 * cpu["server"] / events,
            1e6 * cpu["postgresql"] / events,
            1e6 * own / events,
            cores * events / own,
            cores,
        )
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (one per core)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--visitors", type=int, default=5_000, help="anonymous visitors who never identify")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--skip-baselines", action="store_true", help="no COPY / executemany comparison")
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database in place")
    parser.add_argument("--app", default="config.asgi:application", help="ASGI app (to measure a variant)")
    options = parser.parse_args()

    url = psycopg.conninfo.conninfo_to_dict(options.database_url)
    if url.get("host", HOST) not in (HOST, "localhost"):
        raise SystemExit("the bench only talks to 127.0.0.1")
    db_name = url["dbname"]
    dsn = recreate_database(options.database_url, db_name)
    try:
        ok = _run(options, dsn, db_name)
    finally:
        if not options.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(options.database_url, db_name)
    if not ok:
        raise SystemExit(1)


def _run(options, dsn: str, db_name: str) -> bool:
    """Everything between creating the database and dropping it; True when nothing was lost."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "PYTHONUNBUFFERED": "1",
    }
    (ROOT / "var").mkdir(exist_ok=True)
    print(f"database {db_name}: migrating ...", flush=True)
    _manage(env, "migrate", "--noinput")
    created = orjson.loads(_manage(env, "create_workspace", "--name", "Bench", "--json"))
    write_key, workspace_id = created["write_key"], created["workspace_id"]

    with psycopg.connect(dsn) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
    analyzer = AutoAnalyzer(dsn) if autovacuum == "off" else None
    if analyzer:
        print("autovacuum is off on this instance: the bench runs its ANALYZE rule itself")
        analyzer.start()

    port = _free_port()
    server = start_server(env, port, options.workers, options.app)
    generator = None
    try:
        wait_healthy(port, server)
        print(
            f"server: uvicorn (uvloop, httptools), {options.workers} workers on {HOST}:{port}; "
            f"{options.clients} clients, {options.events:,} events in batches of {options.batch_size}",
            flush=True,
        )
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        generator = context.Process(
            target=load_generator,
            args=(port, write_key, {**vars(options)}, child_end),
            daemon=True,
        )
        generator.start()
        if not parent_end.poll(600):
            raise SystemExit("the load generator did not get ready in time")
        parent_end.recv()
        sampler = CpuSampler(server.pid, generator.pid, dsn)
        sampler.sample()
        sampler.start()
        parent_end.send("go")
        budget = max(600.0, options.events / 200)  # at worst 200 events/s, then give up
        if not parent_end.poll(budget):
            raise SystemExit(f"the load did not finish within {budget:.0f} s")
        _, started, finished, samples, failures = parent_end.recv()
        sampler.stop_event.set()
        sampler.join(timeout=10)
        sampler.sample()
        sampler.close()
        generator.join(timeout=30)
        _report_load(samples, failures, started, finished, sampler, options.events)
    finally:
        if generator is not None and generator.is_alive():
            generator.terminate()
            generator.join(timeout=10)
        stop_server(server)
        if analyzer:
            analyzer.stop_event.set()
            analyzer.join(timeout=30)
            print(f"(ANALYZE ran {analyzer.runs} times on the lookup tables)")

    with psycopg.connect(dsn) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM onboarding_event WHERE workspace_id = %s",
            (workspace_id,),
        ).fetchone()
    verdict = "OK" if stored == (options.events, options.events) else "MISMATCH"
    print(f"stored: {stored[0]:,} events, {stored[1]:,} distinct ids, of {options.events:,}: {verdict}")

    if not options.skip_baselines:
        batches = make_batches(
            events=options.events,
            batch_size=options.batch_size,
            users=options.users,
            visitors=options.visitors,
            seed=options.seed,
        )
        rows = event_rows(dsn, workspace_id, batches)
        del batches
        print("\nraw PostgreSQL for comparison (same rows, server stopped):")
        print(f"  COPY, one statement:                           {time_copy(dsn, rows):>9,.0f} rows/s")
        rate = time_executemany(dsn, rows, options.batch_size)
        print(f"  executemany INSERT ON CONFLICT, batches of {options.batch_size}: {rate:>9,.0f} rows/s")
    return verdict == "OK"


if __name__ == "__main__":
    main()
