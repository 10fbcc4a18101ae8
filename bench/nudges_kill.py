"""Nudges when workers are killed mid-send: RQ workers, PostgreSQL and Redis, a loopback SendGrid.

    .venv/bin/python bench/nudges_kill.py [--nudges 300] [--workers 2] [--kills 6] [--lease 20]

1. Sets up the workspace of bench/nudges.py (a stuck trigger on email, SendGrid pointed at a local
   server) with --nudges stuck users, in a dedicated PostgreSQL database.
2. The local server answers as SendGrid's mail/send does (202) after a short pause, and counts
   the requests it got for each nudge (its id rides in custom_args): a worker killed in that pause
   has handed the nudge over but never learns so.
3. Starts W RQ workers (`rqworker`, SimpleWorker), fires the trigger scan, and SIGKILLs a worker
   every --kill-every seconds (--kills times), starting a replacement each time. The nudge lease
   is --lease seconds (NUDGE_LEASE_SECONDS), and the due sweep (`process_due`) runs every few
   seconds as the scheduler's would every minute, until no nudge is left queued or in flight.
4. Prints: nudges the provider got twice (must be 0), nudges lost (neither sent nor in doubt, or
   recorded sent without reaching the provider: must be 0), nudges in doubt (and how many of those
   the provider had in fact got), and the RQ jobs left in the failed registry as abandoned.

Traffic goes to 127.0.0.1 only; every wait has a timeout, so the run always ends.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import HOST, ROOT, _database_url, _free_port, _manage, drop_database, recreate_database

# bench/nudges.py, loaded under another name (the Django app is called nudges too).
_spec = importlib.util.spec_from_file_location("bench_nudges", Path(__file__).resolve().parent / "nudges.py")
bench_nudges = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_nudges)

SWEEP = "from nudges import pipeline; print(pipeline.process_due())"
ABANDONED = """
import django_rq
from rq.registry import FailedJobRegistry, StartedJobRegistry
queue = django_rq.get_queue("default")
StartedJobRegistry(queue=queue).cleanup()
registry = FailedJobRegistry(queue=queue)
jobs = [queue.fetch_job(job_id) for job_id in registry.get_job_ids()]
results = [job.latest_result() for job in jobs if job is not None]
print(sum(1 for result in results if result and "AbandonedJobError" in (result.exc_string or "")))
"""


class Provider:
    """Requests per nudge id, counted on arrival (before the answer)."""

    def __init__(self, pause: float):
        self.pause = pause
        self.requests: Counter[str] = Counter()


def _start_provider(port: int, provider: Provider) -> None:
    async def on_connection(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                sent = json.loads(body)
                provider.requests[sent.get("custom_args", {}).get("nudge_id", "")] += 1
                await asyncio.sleep(provider.pause)
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nX-Message-Id: kill\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.start_server(on_connection, HOST, port))
    threading.Thread(target=loop.run_forever, daemon=True).start()


def _statuses(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {str(pk): status for pk, status in conn.execute("SELECT id, status FROM nudges_nudge")}


def _kill_workers(workers: list, options, env: dict) -> list:
    """SIGKILL a random worker every --kill-every seconds, each time starting a replacement."""
    for _ in range(options.kills):
        time.sleep(options.kill_every)
        victim = workers.pop(random.randrange(len(workers)))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        workers += bench_nudges._start_workers(env, 1)
    return workers


def _settle(dsn: str, env: dict, options) -> float:
    """Run the due sweep until no nudge is queued, deferred or in flight; seconds it took."""
    started = time.monotonic()
    deadline = started + options.timeout
    while time.monotonic() < deadline:
        open_ones = [s for s in _statuses(dsn).values() if s in ("queued", "deferred", "in_flight")]
        if not open_ones:
            break
        _manage(env, "shell", "-c", SWEEP)
        time.sleep(2)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nudges", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--kill-every", type=float, default=1.5)
    parser.add_argument("--lease", type=int, default=20, help="NUDGE_LEASE_SECONDS for the run")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds the provider takes to answer")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench_kill")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--timeout", type=float, default=300)
    options = parser.parse_args()
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    port = _free_port()
    provider = Provider(options.pause)
    _start_provider(port, provider)
    dsn = recreate_database(options.database_url, db_name)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "NUDGE_LEASE_SECONDS": str(options.lease),
        "PROMETHEUS_MULTIPROC_DIR": str(ROOT / "var" / "bench-prometheus"),
    }
    (ROOT / "var").mkdir(exist_ok=True)
    redis.Redis.from_url(options.redis_url).flushdb()
    print(
        f"nudges: {options.nudges}; {options.workers} RQ workers, {options.kills} SIGKILLs every "
        f"{options.kill_every:g} s; lease {options.lease} s; SendGrid on {HOST}:{port} answering after "
        f"{1000 * options.pause:.0f} ms",
        flush=True,
    )
    workers = []
    try:
        _manage(env, "migrate", "--noinput")
        setup = bench_nudges.SETUP.format(users=options.nudges, provider_url=f"http://{HOST}:{port}/v3")
        _manage(env, "shell", "-c", setup)
        workers = bench_nudges._start_workers(env, options.workers)
        time.sleep(3)
        _manage(env, "run_triggers")
        workers = _kill_workers(workers, options, env)
        settle_seconds = _settle(dsn, env, options)
        abandoned = int(_manage(env, "shell", "-c", ABANDONED).split()[-1])
    finally:
        bench_nudges._stop(workers)
    statuses = _statuses(dsn)
    _report(statuses, provider, settle_seconds, abandoned)
    with contextlib.suppress(psycopg.Error):
        drop_database(options.database_url, db_name)


def _report(statuses: dict[str, str], provider: Provider, settle_seconds: float, abandoned: int) -> None:
    reached = {"sent", "delivered", "opened", "clicked", "converted"}
    twice = [pk for pk, count in provider.requests.items() if count > 1]
    in_doubt = [pk for pk, status in statuses.items() if status == "in_doubt"]
    lost = [
        pk
        for pk, status in statuses.items()
        if status not in reached | {"in_doubt"} or (status in reached and provider.requests[pk] == 0)
    ]
    print(f"  statuses: {dict(Counter(statuses.values()))}")
    print(f"  provider requests: {sum(provider.requests.values())} for {len(provider.requests)} nudges")
    print(f"  nudges the provider got twice: {len(twice)}")
    print(f"  nudges lost (neither sent nor in doubt, or sent without reaching the provider): {len(lost)}")
    got = sum(1 for pk in in_doubt if provider.requests[pk])
    print(
        f"  nudges in doubt (a person decides): {len(in_doubt)}; the provider had got {got} of them "
        f"('mark as delivered'), {len(in_doubt) - got} not ('send again')"
    )
    print(f"  settled by the due sweep {settle_seconds:.0f} s after the last kill")
    print(
        f"  RQ jobs in the failed registry as AbandonedJobError (the admin's queue view): {abandoned} "
        "(a killed worker's job moves there once its execution's TTL, the job timeout, has run out; "
        "its nudges do not wait for that: their lease is shorter)"
    )


if __name__ == "__main__":
    main()
