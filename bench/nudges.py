"""Nudge pipeline benchmark: RQ workers, PostgreSQL and Redis, to a loopback email provider.

    .venv/bin/python bench/nudges.py [--nudges 2000] [--workers 2] [--skip-personalised]

1. (Re)creates a dedicated PostgreSQL database, migrates it and sets up a workspace with a
   published path, a stuck trigger on email, an active email template, SendGrid as provider
   (pointed at a local server) and --nudges end users with contact data, three events each and
   an open stuck signal.
2. Starts a local server answering as SendGrid's v3 mail/send does (202), which records when each
   nudge arrives (its nudge id rides in custom_args), and W RQ workers (`rqworker`, the
   non-forking SimpleWorker: one process per core, each keeping its database connection).
3. Runs one trigger scan (`run_triggers`): it creates one nudge per stuck user and queues its
   job. Prints nudges/s through the whole pipeline (trigger to provider), p50/p95/p99 of the time
   from a nudge's trigger to its provider request, and where the CPU went.
4. Runs again with personalisation on, against a local OpenAI-compatible server (every user has
   the same context, so after the first call the answers come from the cache), and prints the
   same figures plus how many requests reached the LLM server.

Traffic goes to 127.0.0.1 only; every wait has a timeout, so the run always ends.
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # bench/ is not a package: bench/ingest.py is on sys.path
    HOST,
    PYTHON,
    ROOT,
    CpuSampler,
    _database_url,
    _free_port,
    _manage,
    _percentile,
    drop_database,
    recreate_database,
)

SETUP = """
import json, uuid
from datetime import timedelta
from django.utils import timezone
from guardrails.models import WorkspacePolicy
from guardrails.secrets.services import workspace_secret_set
from nudges.models import ChannelProvider, NudgeSettings, NudgeTemplate, TemplateVersion, Trigger
from tenancy import services
from onboarding.models import Contact, Enrollment, EnrollmentSignal, Event
from tenancy.models import EndUser
from paths import services as path_services

USERS, PROVIDER_URL = {users}, "{provider_url}"
workspace, write_key, _ = services.workspace_create(name="Bench nudges")
path = path_services.path_create(workspace=workspace, key="start", name="Getting started", is_default=True)
draft = path.versions.get()
path_services.path_version_replace_steps(path_version=draft, steps=[
    {{"key": "create-project", "title": "Create a project", "event_name": "Project Created",
      "deep_link": "/projects/new"}},
    {{"key": "invite", "title": "Invite a teammate", "event_name": "Teammate Invited", "deep_link": "/team"}},
])
version = path_services.path_version_publish(path_version=draft)
WorkspacePolicy.objects.update_or_create(workspace=workspace, defaults={{"llm_daily_budget_usd": 1000}})
NudgeSettings.objects.create(workspace=workspace, postal_address="Bench Inc., 1 Main St, Springfield",
                             allowed_link_domains=["app.example.com"])
trigger = Trigger.objects.create(workspace=workspace, name="Stuck", kind="stuck", channels=["email"])
template = NudgeTemplate.objects.create(workspace=workspace, trigger=trigger, name="Stuck email",
                                        channel="email")
TemplateVersion.objects.create(template=template, number=1, status="active", activated_at=timezone.now(),
    subject="Finish {{{{ step_title }}}}",
    body="Hi {{{{ first_name }}}}, you are {{{{ percent_complete }}}}% through {{{{ path_name }}}}. "
    "{{{{ step_title }}}} takes two minutes.", cta_text="Continue",
    cta_url="https://app.example.com/projects/new")
workspace_secret_set(workspace=workspace, name="sendgrid_api_key", value="SG.bench")
ChannelProvider.objects.create(workspace=workspace, channel="email", provider="sendgrid",
    settings={{"from_email": "hello@bench.example", "api_url": PROVIDER_URL}}, secret_name="sendgrid_api_key")
now = timezone.now()
people = EndUser.objects.bulk_create([
    EndUser(workspace=workspace, external_id=f"bench-{{index}}", persona="admin", timezone="UTC")
    for index in range(USERS)])
Contact.objects.bulk_create([Contact(end_user=person, email=f"bench-{{index}}@example.com", first_name="Sam")
    for index, person in enumerate(people)])
Event.objects.bulk_create([Event(workspace=workspace, end_user=person, type="track", name=name,
    message_id=str(uuid.uuid4()), user_id=person.external_id, timestamp=now - timedelta(hours=3),
    received_at=now - timedelta(hours=3)) for person in people
    for name in ("Signed Up", "Dashboard Viewed", "Settings Opened")])
enrollments = Enrollment.objects.bulk_create([Enrollment(workspace=workspace, end_user=person,
    path_version=version, current_step_key="create-project", enrolled_at=now - timedelta(hours=3),
    step_entered_at=now - timedelta(hours=3)) for person in people])
EnrollmentSignal.objects.bulk_create([EnrollmentSignal(enrollment=enrollment, kind="stuck",
    step_key="create-project", reason="3 h on this step (expected 1 h)") for enrollment in enrollments])
print(json.dumps({{"workspace": workspace.slug}}))
"""

STEP_LINKS = ["/projects/new", "/team"]
LLM_ANSWER = {
    "subject": "Your first project is two minutes away",
    "body": "Hi {{ first_name }}, create a project to see your data come alive.",
    "cta_text": "Create a project",
    "ui_component": "email",
    "deep_link": "/projects/new",
}


class Recorder:
    """Arrival time of each nudge at a local server, by nudge id."""

    def __init__(self):
        self.arrivals: dict[str, float] = {}
        self.requests = 0


async def _serve(port: int, handle) -> asyncio.AbstractServer:
    async def on_connection(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                status, headers, payload = handle(head, body)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(payload)}\r\n{headers}\r\n".encode() + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_connection, HOST, port)


def _sendgrid(recorder: Recorder):
    def handle(head: bytes, body: bytes):
        recorder.requests += 1
        sent = json.loads(body)
        recorder.arrivals.setdefault(sent.get("custom_args", {}).get("nudge_id", ""), time.time())
        return "202 Accepted", "X-Message-Id: bench\r\n", b""

    return handle


def _openai(recorder: Recorder):
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": json.dumps(LLM_ANSWER)},
            }
        ],
        "usage": {"prompt_tokens": 420, "completion_tokens": 60, "total_tokens": 480},
    }
    payload = json.dumps(completion).encode()

    def handle(head: bytes, body: bytes):
        recorder.requests += 1
        return "200 OK", "Content-Type: application/json\r\n", payload

    return handle


def _start_servers(
    sendgrid_port: int, openai_port: int, sendgrid: Recorder, llm: Recorder
) -> threading.Thread:
    loop = asyncio.new_event_loop()

    async def main():
        await _serve(sendgrid_port, _sendgrid(sendgrid))
        await _serve(openai_port, _openai(llm))

    loop.run_until_complete(main())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return thread


def _start_workers(env: dict, count: int) -> list[subprocess.Popen]:
    log = open(ROOT / "var" / "bench-workers.log", "ab")  # noqa: SIM115 (lives as long as the workers)
    return [
        subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "rqworker",
                "default",
                "--worker-class",
                "rq.worker.SimpleWorker",
                "-v",
                "0",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _created_times(dsn: str) -> dict[str, float]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, created_at FROM nudges_nudge").fetchall()
    return {str(nudge_id): created.timestamp() for nudge_id, created in rows}


def _statuses(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM nudges_nudge GROUP BY status").fetchall())


def _run(
    label: str, *, dsn: str, env: dict, options, sendgrid: Recorder, llm: Recorder, database_setup
) -> None:
    print(f"\n{label}:", flush=True)
    database_setup()
    sendgrid.arrivals.clear()
    llm.requests = 0
    workers = _start_workers(env, options.workers)
    sampler = CpuSampler(os.getpid(), os.getpid(), dsn)
    try:
        time.sleep(3)  # the workers are connected and waiting
        sampler.sample()
        sampler.start()
        started = time.monotonic()
        _manage(env, "run_triggers")
        deadline = time.monotonic() + options.timeout
        while len(sendgrid.arrivals) < options.nudges and time.monotonic() < deadline:
            time.sleep(0.2)
        finished = time.monotonic()
    finally:
        sampler.stop_event.set()
        sampler.join(timeout=10)
        sampler.sample()
        _stop(workers)
    created = _created_times(dsn)
    latencies = [
        1000 * (arrival - created[nudge_id])
        for nudge_id, arrival in sendgrid.arrivals.items()
        if nudge_id in created
    ]
    if not latencies:
        print("  no nudge reached the provider; see var/bench-workers.log")
        return
    first_trigger = min(created.values())
    last_arrival = max(sendgrid.arrivals.values())
    rate = len(latencies) / (last_arrival - first_trigger)
    p50, p95, p99 = (_percentile(latencies, fraction) for fraction in (0.50, 0.95, 0.99))
    print(
        f"  {len(latencies):,} of {options.nudges:,} nudges reached the provider "
        f"in {finished - started:.1f} s"
    )
    print(f"  statuses: {_statuses(dsn)}")
    print(
        f"  throughput, first trigger to last provider request: {rate:,.0f} nudges/s "
        f"({3600 * rate:,.0f}/hour)"
    )
    print(f"  trigger -> provider request: p50 {p50:,.0f} ms, p95 {p95:,.0f} ms, p99 {p99:,.0f} ms")
    if llm.requests:
        print(f"  requests that reached the LLM server: {llm.requests:,} (the rest were cache hits)")
    elapsed, cpu = sampler.between(sampler.samples[0][0], sampler.samples[-1][0])
    cores = os.cpu_count() or 1
    # The bench's own process tree holds the RQ workers, the trigger scan and the local servers.
    shares = {
        "RQ workers + scan + local servers": cpu["server"],
        "PostgreSQL": cpu["postgresql"],
        "Redis": cpu["redis"],
        "machine busy": cpu["machine busy"],
    }
    print(
        f"  CPU over the run ({cores} cores = {100 * cores}%): "
        + ", ".join(f"{name} {100 * seconds / elapsed:.0f}%" for name, seconds in shares.items())
    )
    count = len(latencies)
    print(
        f"  CPU per nudge: workers and scan {1000 * cpu['server'] / count:.1f} ms, "
        f"PostgreSQL {1000 * cpu['postgresql'] / count:.1f} ms, Redis {1000 * cpu['redis'] / count:.1f} ms"
    )
    sampler.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nudges", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes (one per core)")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench_nudges"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--skip-personalised", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args()
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    sendgrid_port, openai_port = _free_port(), _free_port()
    sendgrid, llm = Recorder(), Recorder()
    _start_servers(sendgrid_port, openai_port, sendgrid, llm)
    base_env = {
        **os.environ,
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(ROOT / "var" / "bench-prometheus"),
    }
    (ROOT / "var").mkdir(exist_ok=True)
    print(
        f"nudges: {options.nudges:,}; {options.workers} RQ workers; SendGrid on {HOST}:{sendgrid_port}, "
        f"an OpenAI-compatible server on {HOST}:{openai_port}; PostgreSQL database {db_name}",
        flush=True,
    )
    runs = [("static templates", {})]
    if not options.skip_personalised:
        runs.append(
            (
                "personalised by the LLM (local OpenAI-compatible server, cache hits)",
                {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": f"http://{HOST}:{openai_port}/v1"},
            )
        )
    try:
        for label, extra in runs:
            dsn = recreate_database(options.database_url, db_name)
            env = {**base_env, "DATABASE_URL": _database_url(dsn), **extra}
            import redis

            redis.Redis.from_url(options.redis_url).flushdb()

            def database_setup(env=env, dsn=dsn):
                _manage(env, "migrate", "--noinput")
                setup = SETUP.format(users=options.nudges, provider_url=f"http://{HOST}:{sendgrid_port}/v3")
                _manage(env, "shell", "-c", setup)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("ANALYZE")

            _run(
                label,
                dsn=dsn,
                env=env,
                options=options,
                sendgrid=sendgrid,
                llm=llm,
                database_setup=database_setup,
            )
    finally:
        if not options.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(options.database_url, db_name)
    print(f"\n(finished {datetime.now():%H:%M:%S})")


if __name__ == "__main__":
    main()
