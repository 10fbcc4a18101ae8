"""Progress benchmark: the production ASGI server, PostgreSQL and the Redis channel layer.

    .venv/bin/python bench/progress.py [--users 1000] [--samples 2000] [--rate 100] [--workers 2]

1. (Re)creates a dedicated PostgreSQL database, migrates it, creates a workspace with a published
   default path (20 event steps "Bench Step i", three realistic event steps, a form step) and
   a baseline workspace without paths. Starts uvicorn as bench/ingest.py does.
2. Event to frame: enrols --users users (identify), gets each an end-user token, opens one
   websocket per user, then POSTs /v1/track "Bench Step i" at --rate events/s spread over the
   users and times each from the POST to the frame on that user's socket showing step i done.
3. Progress API: --clients clients (each its own user and token, one keep-alive connection)
   call GET, then PATCH (answers, If-Match from the previous ETag), for --seconds each, with
   a think time between calls drawn from 0.5x to 1.5x --think-ms (and a random start), so the
   clients do not call in lockstep; p50/p95/p99 and requests/s. Then once more with no think
   time (saturation). --phases picks which of frames, api and ingest run.
4. Ingestion with progress evaluation on: the same realistic batches as bench/ingest.py into the
   workspace with paths and into the baseline one; events/s of each.

Traffic goes to 127.0.0.1 only; every wait has a timeout, so the run always ends.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import orjson
import psycopg
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # bench/ is not a package: bench/ingest.py is on sys.path
    HOST,
    AutoAnalyzer,
    CpuSampler,
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

BENCH_STEPS = 20
# With autovacuum off, the tables whose lookups the bench times (bench/ingest.py's AutoAnalyzer).
ANALYZED_TABLES = (
    *AutoAnalyzer.TABLES,
    "onboarding_enrollment",
    "onboarding_stepcompletion",
    "onboarding_event",
)
SETUP = """
import json
from tenancy import services
from paths import services as path_services
steps = [{"key": f"bench-{i}", "title": f"Bench {i}", "event_name": f"Bench Step {i}"} for i in range(1, 21)]
steps += [
    {"key": "create-project", "title": "Create a project", "event_name": "Project Created"},
    {"key": "invite", "title": "Invite", "event_name": "Teammate Invited", "count": 3, "optional": True},
    {"key": "connect", "title": "Connect", "event_name": "Integration Connected",
     "conditions": [{"property": "provider", "operator": "in", "value": ["slack", "github"]}]},
    {"key": "profile", "title": "Profile", "completion": "form", "questions": [
        {"key": "role", "label": "Role", "type": "choice", "required": True, "choices": ["admin", "dev"]},
        {"key": "team_size", "label": "Team size", "type": "number", "required": True}]},
]
workspace, write_key, secret_key = services.workspace_create(name="Bench progress")
path = path_services.path_create(workspace=workspace, key="bench", name="Bench", is_default=True)
draft = path.versions.get()
path_services.path_version_replace_steps(path_version=draft, steps=steps)
path_services.path_version_publish(path_version=draft)
baseline, baseline_write_key, _ = services.workspace_create(name="Bench baseline")
print(json.dumps({"write_key": write_key.key, "secret_key": secret_key.key,
                  "baseline_write_key": baseline_write_key.key}))
"""


def _auth(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


class Http:
    """A minimal keep-alive HTTP/1.1 client (bench/ingest.py's reader): little client CPU."""

    def __init__(self, port: int, timeout: float = 30):
        self.port, self.timeout, self.connection = port, timeout, None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + body
        for attempt in range(3):
            try:
                if self.connection is None:
                    self.connection = await asyncio.wait_for(
                        asyncio.open_connection(HOST, self.port), self.timeout
                    )
                reader, writer = self.connection
                writer.write(data)
                return await asyncio.wait_for(_read_response_with_etag(reader), self.timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection[1].close()
        self.connection = None


async def _read_response_with_etag(reader: asyncio.StreamReader) -> tuple[int, bytes, str]:
    """Like ingest's reader, but keeps the ETag (PATCH sends it back as If-Match)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, etag = 0, ""
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"etag":
            etag = value.strip().decode()
    return status, await reader.readexactly(length), etag


def _cpu_report(sampler: CpuSampler, start: float, end: float, count: int, unit: str) -> str:
    """Where the cores went between start and end: % of one core per group, and CPU ms per
    `unit` (event, request), which says how fast this could go with the machine to itself."""
    sampler.sample()
    elapsed, cpu = sampler.between(start, end)
    if elapsed <= 0 or not count:
        return "  CPU: no samples"
    groups = ("server", "postgresql", "redis", "load generator")
    shares = ", ".join(f"{group} {100 * cpu[group] / elapsed:.0f}%" for group in groups)
    per_unit = ", ".join(f"{group} {1000 * cpu[group] / count:.1f}" for group in groups[:3])
    return f"  CPU (2 cores = 200%): {shares}; ms per {unit}: {per_unit}"


def _percentiles(label: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"{label}: no samples"
    p50, p95, p99 = (_percentile(values_ms, fraction) for fraction in (0.50, 0.95, 0.99))
    return f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms (n={len(values_ms):,})"


# --- Setup ----------------------------------------------------------------------------------------


async def enrol_users(port: int, write_key: str, secret_key: str, users: list[str]) -> dict[str, str]:
    """Identify every user (batches of 100), then get a token for each: user id -> token."""
    http = Http(port)
    for offset in range(0, len(users), 100):
        batch = [
            {
                "type": "identify",
                "userId": user,
                "traits": {"persona": "admin"},
                "messageId": str(uuid.uuid4()),
            }
            for user in users[offset : offset + 100]
        ]
        status, body = (
            await http.request(
                "POST", "/v1/batch", {"Authorization": _auth(write_key)}, orjson.dumps({"batch": batch})
            )
        )[:2]
        if status != 200:
            raise SystemExit(f"identify failed: {status} {body[:300]!r}")
    http.close()
    tokens: dict[str, str] = {}
    pending = iter(users)

    async def worker():
        client = Http(port)
        for user in pending:
            status, body, _ = await client.request(
                "POST", f"/api/v1/users/{user}/token", {"Authorization": f"Bearer {secret_key}"}
            )
            if status != 200:
                raise SystemExit(f"token for {user} failed: {status} {body[:300]!r}")
            tokens[user] = orjson.loads(body)["token"]
        client.close()

    await asyncio.gather(*(worker() for _ in range(20)))
    return tokens


# --- Event to frame -------------------------------------------------------------------------------


async def event_to_frame(
    port: int, write_key: str, tokens: dict[str, str], samples: int, rate: float, sampler: CpuSampler
):
    users = list(tokens)
    arrivals: dict[tuple[str, int], float] = {}
    sent: dict[tuple[str, int], float] = {}
    sockets = []

    async def reader(user: str, socket) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in socket:
                now = time.monotonic()
                state = orjson.loads(raw)["state"]
                if state is None:
                    continue
                for step in state["steps"]:
                    if step["key"].startswith("bench-") and step["status"] == "completed":
                        arrivals.setdefault((user, int(step["key"][6:])), now)

    connect_start = time.monotonic()
    for offset in range(0, len(users), 100):
        chunk = users[offset : offset + 100]
        opened = await asyncio.gather(
            *(
                websockets.connect(
                    f"ws://{HOST}:{port}/ws/v1/onboarding/?token={tokens[user]}",
                    open_timeout=30,
                    max_queue=None,
                    compression=None,
                )
                for user in chunk
            )
        )
        for user, socket in zip(chunk, opened, strict=True):
            first = orjson.loads(await asyncio.wait_for(socket.recv(), 30))
            assert first["type"] == "onboarding.state" and first["state"]["user_id"] == user, first
            sockets.append(socket)
    readers = [asyncio.create_task(reader(user, socket)) for user, socket in zip(users, sockets, strict=True)]
    print(f"  {len(sockets):,} websockets open in {time.monotonic() - connect_start:.1f} s", flush=True)

    connections: asyncio.Queue = asyncio.Queue()
    for _ in range(50):
        connections.put_nowait(Http(port))
    failures: list[str] = []
    headers = {"Authorization": _auth(write_key)}

    async def send(user: str, step: int) -> None:
        body = orjson.dumps({"userId": user, "event": f"Bench Step {step}", "messageId": str(uuid.uuid4())})
        client = await connections.get()
        try:
            sent[(user, step)] = time.monotonic()
            status, payload, _ = await client.request("POST", "/v1/track", headers, body)
            if status != 200:
                failures.append(f"HTTP {status}: {payload[:200]!r}")
        except Exception as error:  # counted and reported
            failures.append(repr(error))
        finally:
            connections.put_nowait(client)

    plan = [(users[index % len(users)], index // len(users) + 1) for index in range(samples)]
    if plan[-1][1] > BENCH_STEPS:
        raise SystemExit(f"at most {BENCH_STEPS} samples per user: raise --users or lower --samples")
    tasks, start = [], time.monotonic()
    for index, (user, step) in enumerate(plan):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(user, step)))
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    sent_all = time.monotonic()
    deadline = time.monotonic() + 10
    while len(arrivals) < len(plan) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - start
    latencies = [1000 * (arrivals[key] - sent[key]) for key in plan if key in arrivals and key in sent]
    print(
        f"  {len(plan):,} events at {len(plan) / elapsed:,.0f}/s; frames received {len(latencies):,}; "
        f"HTTP errors {len(failures)}"
    )
    for failure in failures[:3]:
        print(f"    {failure}")
    print("  " + _percentiles("event POST -> websocket frame", latencies))
    print(_cpu_report(sampler, start, sent_all, len(plan), "event"))
    for socket in sockets:
        await socket.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    while not connections.empty():
        connections.get_nowait().close()


# --- Progress API ---------------------------------------------------------------------------------


async def progress_api(
    port: int, tokens: dict[str, str], clients: int, seconds: float, think: float, sampler: CpuSampler
):
    users = list(tokens)[:clients]
    results: dict[str, list[float]] = {"GET": [], "PATCH": []}
    statuses: dict[tuple[str, int], int] = {}
    rng = random.Random(5)

    async def client(user: str, method: str, stop_at: float) -> None:
        http = Http(port)
        url = f"/api/v1/users/{user}/onboarding"
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        _, _, etag = await http.request("GET", url, headers)
        team_size = 0
        if think:
            await asyncio.sleep(rng.uniform(0, think))  # clients start spread over one think time
        while time.monotonic() < stop_at:
            if method == "GET":
                started = time.monotonic()
                status, _, etag = await http.request("GET", url, headers)
            else:
                team_size += 1
                body = orjson.dumps({"answers": {"profile": {"role": "admin", "team_size": team_size}}})
                started = time.monotonic()
                status, _, new_etag = await http.request("PATCH", url, {**headers, "If-Match": etag}, body)
                etag = new_etag or etag
            results[method].append(1000 * (time.monotonic() - started))
            statuses[(method, status)] = statuses.get((method, status), 0) + 1
            if think:
                await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        http.close()

    for method in ("GET", "PATCH"):
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.wait_for(
            asyncio.gather(*(client(user, method, stop_at) for user in users)), seconds + 120
        )
        finished = time.monotonic()
        elapsed = finished - started
        codes = {status: count for (name, status), count in statuses.items() if name == method}
        print(
            f"  {method:<5} {len(results[method]) / elapsed:7,.0f} req/s, status {codes}; "
            + _percentiles("latency", results[method])
        )
        print(_cpu_report(sampler, started, finished, len(results[method]), "request"))
        results[method].clear()


# --- Main -----------------------------------------------------------------------------------------


async def run(port: int, keys: dict, options, sampler: CpuSampler) -> None:
    users = [f"ws-{index}" for index in range(options.users)]
    print(f"\nenrolling {len(users):,} users and getting their tokens ...", flush=True)
    tokens = await enrol_users(port, keys["write_key"], keys["secret_key"], users)

    phases = set(options.phases.split(","))
    if "frames" in phases:
        print(
            f"\nevent to frame, {len(users):,} websockets connected, {options.rate:.0f} events/s:", flush=True
        )
        await event_to_frame(port, keys["write_key"], tokens, options.samples, options.rate, sampler)
    if "api" in phases:
        await _progress_api_phases(port, tokens, options, sampler)
    if "ingest" in phases:
        await _ingest_phase(port, keys, options)


async def _progress_api_phases(port: int, tokens: dict[str, str], options, sampler: CpuSampler) -> None:
    print(
        f"\nprogress API, {options.clients} concurrent clients, {options.think_ms:.0f} ms think time:",
        flush=True,
    )
    await progress_api(port, tokens, options.clients, options.seconds, options.think_ms / 1000, sampler)
    print(f"progress API, {options.clients} concurrent clients, no think time (saturation):", flush=True)
    await progress_api(port, tokens, options.clients, options.seconds, 0, sampler)


async def _ingest_phase(port: int, keys: dict, options) -> None:
    print(
        f"\ningestion, {options.events:,} events in batches of 100, {options.ingest_clients} clients:",
        flush=True,
    )
    rates = {}
    for label, write_key, seed in (
        ("baseline workspace (no path)", keys["baseline_write_key"], 11),
        ("with progress evaluation", keys["write_key"], 12),
    ):
        batches = make_batches(events=options.events, batch_size=100, users=5_000, visitors=1_000, seed=seed)
        bodies = [(len(batch["batch"]), orjson.dumps(batch)) for batch in batches]
        started = time.monotonic()
        samples, failures = await _load(port, write_key, bodies, options.ingest_clients, 60)
        elapsed = time.monotonic() - started
        sent = sum(count for _, _, count in samples)
        rates[label] = sent / elapsed
        print(f"  {label:<30} {rates[label]:8,.0f} events/s ({sent:,} events, {len(failures)} errors)")
    ratio = rates["with progress evaluation"] / rates["baseline workspace (no path)"]
    print(f"  progress evaluation keeps {100 * ratio:.0f}% of the baseline rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="connected websockets")
    parser.add_argument("--samples", type=int, default=2000, help="events timed to their frame")
    parser.add_argument("--rate", type=float, default=100, help="events/s while timing frames")
    parser.add_argument("--clients", type=int, default=100, help="concurrent progress API clients")
    parser.add_argument("--seconds", type=float, default=10, help="per progress API phase")
    parser.add_argument("--think-ms", type=float, default=100, help="mean pause between a client's calls")
    parser.add_argument("--phases", default="frames,api,ingest", help="which phases to run, comma-separated")
    parser.add_argument("--events", type=int, default=30_000, help="events per ingestion run")
    parser.add_argument("--ingest-clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench_progress"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args()

    for url in (options.database_url, options.redis_url):
        if urlparse(url).hostname not in (HOST, "localhost"):
            raise SystemExit("the bench only talks to 127.0.0.1")
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    dsn = recreate_database(options.database_url, db_name)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    print(f"database {db_name}: migrating ...", flush=True)
    _manage(env, "migrate", "--noinput")
    keys = json.loads(_manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])

    with psycopg.connect(dsn) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]
    analyzer = AutoAnalyzer(dsn, tables=ANALYZED_TABLES) if autovacuum == "off" else None
    if analyzer:
        print("autovacuum is off on this instance: the bench runs its ANALYZE rule itself")
        analyzer.start()
    port = _free_port()
    server = start_server(env, port, options.workers, "config.asgi:application")
    try:
        wait_healthy(port, server)
        print(
            f"server: uvicorn (uvloop, httptools), {options.workers} workers on {HOST}:{port}, "
            "PostgreSQL, Redis channel layer",
            flush=True,
        )
        sampler = CpuSampler(server.pid, os.getpid(), dsn)
        sampler.sample()
        sampler.start()
        try:
            asyncio.run(asyncio.wait_for(run(port, keys, options, sampler), 1800))
        finally:
            sampler.stop_event.set()
            sampler.join(timeout=10)
            sampler.close()
    finally:
        stop_server(server)
        if analyzer:
            analyzer.stop_event.set()
            analyzer.join(timeout=30)
            print(f"(ANALYZE ran {analyzer.runs} times)")
        if not options.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(options.database_url, db_name)


if __name__ == "__main__":
    main()
