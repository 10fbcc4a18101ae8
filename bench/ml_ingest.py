"""Ingestion throughput with the real-time feature store on and off, in the same run.

    .venv/bin/python bench/ml_ingest.py [--events N] [--phases off,on,on,off] [--clients C]

bench/ingest.py's machinery (database, production server, load generator in its own process, CPU
accounting) runs once per phase against one PostgreSQL database and one Redis: the server is
restarted with ML_FEATURE_STORE_REALTIME=0 or 1, and each phase sends N new events (its own seed:
new message ids, new people). The default order off, on, on, off puts both settings equally early
and late, so the database's growth during the run does not favour either. Prints each phase's
figures, then the sustained events/s of each setting and on / off (the issue's target: >= 90%).

Traffic goes to 127.0.0.1 only. The Redis db given is flushed at the start and the end.
"""

import argparse
import contextlib
import multiprocessing
import os
import secrets
import statistics
import sys
from pathlib import Path

import orjson
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # bench/ingest.py, beside this file


def _phase(options, env: dict, write_key: str, dsn: str, realtime: bool, seed: int) -> float:
    """One server run with the store on or off; returns its sustained events/s."""
    env = {**env, "ML_FEATURE_STORE_REALTIME": "1" if realtime else "0"}
    port = ingest._free_port()
    server = ingest.start_server(env, port, options.workers, "config.asgi:application")
    generator = None
    try:
        ingest.wait_healthy(port, server)
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        settings = {**vars(options), "seed": seed}
        generator = context.Process(
            target=ingest.load_generator, args=(port, write_key, settings, child_end), daemon=True
        )
        generator.start()
        if not parent_end.poll(600):
            raise SystemExit("the load generator did not get ready in time")
        parent_end.recv()
        sampler = ingest.CpuSampler(server.pid, generator.pid, dsn)
        sampler.sample()
        sampler.start()
        parent_end.send("go")
        if not parent_end.poll(max(600.0, options.events / 200)):
            raise SystemExit("the load did not finish in time")
        _, started, finished, samples, failures = parent_end.recv()
        sampler.stop_event.set()
        sampler.join(timeout=10)
        sampler.sample()
        sampler.close()
        return ingest._report_load(samples, failures, started, finished, sampler, options.events)
    finally:
        if generator is not None and generator.is_alive():
            generator.terminate()
            generator.join(timeout=10)
        ingest.stop_server(server)


def _run(options, dsn: str) -> dict[str, list[float]]:
    env = {
        **os.environ,
        "DATABASE_URL": ingest._database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{ingest.HOST},localhost",
        "PYTHONUNBUFFERED": "1",
    }
    (ingest.ROOT / "var").mkdir(exist_ok=True)
    print("migrating ...", flush=True)
    ingest._manage(env, "migrate", "--noinput")
    created = orjson.loads(ingest._manage(env, "create_workspace", "--name", "Bench", "--json"))
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for index, phase in enumerate(options.phases.split(",")):
        print(f"\n=== phase {index + 1}: real-time feature store {phase} ===", flush=True)
        rate = _phase(options, env, created["write_key"], dsn, phase == "on", options.seed + index)
        rates[phase].append(rate)
    keys = redis.Redis.from_url(options.redis_url).dbsize()
    print(f"\nRedis keys after the run: {keys:,} (the counters and recent sets of the people seen)")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000, help="events per phase")
    parser.add_argument("--phases", default="off,on,on,off")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--visitors", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_ml_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--request-timeout", type=float, default=60)
    options = parser.parse_args()
    if psycopg.conninfo.conninfo_to_dict(options.database_url).get("host", ingest.HOST) not in (
        ingest.HOST,
        "localhost",
    ):
        raise SystemExit("the bench only talks to 127.0.0.1")
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    dsn = ingest.recreate_database(options.database_url, db_name)
    redis.Redis.from_url(options.redis_url).flushdb()
    try:
        rates = _run(options, dsn)
    finally:
        redis.Redis.from_url(options.redis_url).flushdb()
        with contextlib.suppress(psycopg.Error):
            ingest.drop_database(options.database_url, db_name)
    off, on = statistics.mean(rates["off"]), statistics.mean(rates["on"])
    print(
        "\nsustained events/s per phase: "
        + "; ".join(f"{k}: " + ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items())
    )
    print(f"store off: {off:,.0f} events/s, store on: {on:,.0f} events/s -> on / off = {100 * on / off:.0f}%")


if __name__ == "__main__":
    main()
