"""ML layer benchmark: the figures issue 16 sets, on PostgreSQL and Redis, in this process.

    .venv/bin/python bench/ml.py [--people 100000] [--days 60] [--decisions 2000] [--threads 2]

1. (Re)creates a dedicated PostgreSQL database and migrates it; a workspace.
2. Simulates --people people over --days days (ml/simulation: planted effects, path choices with
   propensities, events, completions, nudges) and times the write.
3. Trains the three models (num_threads=--threads) and times each: the target is the path
   classifier on 100k enrollments in under 60 s on 2 cores. Prints their validation metrics and the
   path classifier's offline policy estimate against the rules.
4. Memory of a loaded model: the process's resident set before and after loading the path
   classifier's artifact (and the artifact's size).
5. One-row predict latency, num_threads=1, p50/p95/p99 over 5,000 calls (target p95 < 0.2 ms).
6. The planner's full decision for one new person (published versions, the deciders' prepare with
   the feature store read from Redis, the model's scores for every eligible path, the reason), as
   identify calls it, with the path classifier active and exploration off; p50/p95/p99 over
   --decisions people (target p95 < 5 ms), and the same with no model (the rules) for contrast.

Ingestion throughput with the feature store on and off is bench/ml_ingest.py (a server is needed).
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
# This script is bench/ml.py: with bench/ first on the path, "import ml" would import it, not the app.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from ingest import HOST, _database_url, _manage, recreate_database  # noqa: E402


def _percentiles(label: str, values_ms: list[float]) -> str:
    ordered = sorted(values_ms)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return (
        f"{label}: p50 {at(0.50):.3f} ms, p95 {at(0.95):.3f} ms, p99 {at(0.99):.3f} ms "
        f"(n={len(ordered)}, mean {statistics.fmean(ordered):.3f} ms)"
    )


def _setup(options) -> None:
    db_name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    dsn = recreate_database(options.database_url, db_name)
    env = {
        "DATABASE_URL": _database_url(dsn),
        "REDIS_URL": options.redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
        "LOG_LEVEL": "WARNING",
        "ML_ARTIFACTS_DIR": str(ROOT / "var" / "bench-ml"),
        "ML_EXPLORATION_SHARE": "0",
    }
    os.environ.update(env)
    print(f"database {db_name}: migrating ...", flush=True)
    _manage({**os.environ}, "migrate", "--noinput")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _simulate(options):
    from django.utils import timezone

    from ml.simulation.writer import simulate
    from tenancy import services

    workspace, _, _ = services.workspace_create(name="Bench ML")
    now = timezone.now()
    started = time.perf_counter()
    report = simulate(
        workspace=workspace,
        people=options.people,
        start=now - timedelta(days=options.days),
        days=options.days,
        seed=options.seed,
    )
    seconds = time.perf_counter() - started
    from core.db.statistics import analyze
    from ml.models import PathChoice
    from nudges.models import Nudge
    from onboarding.models import Enrollment, Event, StepCompletion
    from tenancy.models import EndUser

    analyze(EndUser, Event, Enrollment, StepCompletion, PathChoice, Nudge)  # autovacuum may be off
    print(
        f"simulated {report.people:,} people, {report.enrollments:,} enrollments, {report.events:,} events, "
        f"{report.path_choices:,} path choices in {seconds:.1f} s",
        flush=True,
    )
    return workspace, now


def _train(workspace, now, options) -> dict:
    from ml.training.services import MODEL_NAMES, model_train

    versions = {}
    for name in MODEL_NAMES:
        started = time.perf_counter()
        version = model_train(workspace=workspace, name=name, now=now, num_threads=options.threads)
        seconds = time.perf_counter() - started
        metrics = version.metrics
        print(
            f"trained {name} {version.version} in {seconds:.1f} s ({options.threads} threads): "
            f"{version.training_rows:,} training / {version.validation_rows:,} validation rows, "
            f"AUC {metrics.get('auc')}, log loss {metrics.get('log_loss')}, ECE {metrics.get('ece')}",
            flush=True,
        )
        if "policy" in metrics:
            print(f"  offline policy estimate: {metrics['policy']}", flush=True)
        versions[name] = version
    return versions


MEMORY_PROBE = """
import sys
import lightgbm
from ml.registry import artifacts
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
content = open(sys.argv[1], "rb").read()
before = rss()
kept = [artifacts.loads(content) for _ in range(int(sys.argv[2]))]
print(f"{(rss() - before) / len(kept):.2f}")
"""


def _loaded_model_mb(path: str, copies: int) -> float:
    """Resident memory per loaded copy, measured in a fresh process (this one's allocator already
    holds what training freed)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, path, str(copies)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ},
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _memory_and_predict(version) -> None:
    from django.core.files.storage import storages

    from ml.registry import artifacts

    content = artifacts.read(version.artifact)
    path = storages[artifacts.STORAGE_ALIAS].path(version.artifact)
    one, each_of_ten = _loaded_model_mb(path, 1), _loaded_model_mb(path, 10)
    print(
        f"memory: artifact {len(content) / 1024:.0f} KiB; resident set +{one:.1f} MiB for one loaded "
        f"{version.name} {version.version}, +{each_of_ten:.1f} MiB a copy over 10",
        flush=True,
    )
    loaded = [artifacts.loads(content)]
    predictor = loaded[0]
    row = {
        "persona": "data_analyst",
        "signup_source": "organic_search",
        "company_size": "11-50",
        "use_case": "product_analytics",
        "engagement_score": 12.0,
        "hours_since_signup": 0.2,
        "steps_completed": 0,
        "session_count": 1,
        "avg_session_minutes": 3.0,
        "events_7d": 3,
        "hours_since_last_event": 0.1,
        "path": "get-started",
    }
    matrix = predictor.matrix([row])
    for _ in range(200):
        predictor.predict(matrix)
    timings = []
    for _ in range(5000):
        started = time.perf_counter()
        predictor.predict(matrix)
        timings.append((time.perf_counter() - started) * 1000)
    print(_percentiles("one-row predict (num_threads=1)", timings), flush=True)
    timings = []
    for _ in range(2000):
        started = time.perf_counter()
        predictor.predict(predictor.matrix([row]))
        timings.append((time.perf_counter() - started) * 1000)
    print(_percentiles("one-row encode + predict", timings), flush=True)


def _decisions(workspace, version, options) -> None:
    from django.utils import timezone

    from ml.registry import services as registry
    from ml.serving import loaded
    from ml.simulation import world
    from paths import planner
    from tenancy.models import EndUser

    start = timezone.now()
    people = [
        world.draw_person(seed=options.seed + 1, index=i, start=start, days=0.01, prefix="bench")
        for i in range(options.decisions)
    ]
    users = EndUser.objects.bulk_create(
        [EndUser(workspace=workspace, external_id=person.external_id, **person.traits) for person in people]
    )

    def timed(label: str) -> None:
        timings, sources = [], {}
        for end_user in users[:50]:
            planner.choose_path(end_user=end_user)
        for end_user in users:
            started = time.perf_counter()
            decision = planner.choose_path(end_user=end_user)
            timings.append((time.perf_counter() - started) * 1000)
            sources[decision.source] = sources.get(decision.source, 0) + 1
        print(_percentiles(label, timings) + f"; sources {sources}", flush=True)
        print(f"  e.g. {decision.reason}", flush=True)

    loaded.forget()
    timed("planner decision, no model (rules)")
    registry.model_promote(model_version=version, override_reason="bench: measure the decision with a model")
    loaded.forget()
    timed(f"planner decision, {version.name} {version.version} active")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/onboarding_bench_ml")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    options = parser.parse_args()
    for url in (options.database_url, options.redis_url):
        if urlparse(url).hostname not in (HOST, "localhost"):
            raise SystemExit("the bench only talks to 127.0.0.1")
    _setup(options)
    workspace, now = _simulate(options)
    versions = _train(workspace, now, options)
    _memory_and_predict(versions["path_classifier"])
    _decisions(workspace, versions["path_classifier"], options)


if __name__ == "__main__":
    main()
