"""Experiment results benchmark: an experiment's full results over --users assigned users (issue 15:
1M users < 2 s on PostgreSQL).

    .venv/bin/python bench/experiment_results.py [--users 1000000] [--days 28] [--repeats 5]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_experiment_results] [--keep-db] [--reuse-db]

Creates (drops first) the bench database, migrates it, makes a path with two published-then-
archived/published versions and a running 50/50 experiment on them, and generates in SQL
(generate_series, seeded) one end user, one enrollment, one assignment and analytics' enrollment
fact per user: enrolled uniformly over the --days since the start, activation 30 % in A and
33 % in B, time to completion exponential with a mean of 72 hours (a completion still in the
future is not there yet). Then it times `experiments.results.compute_results` --repeats times
(each a fresh computation: one GROUP BY query, the engine, Kaplan-Meier and log-rank on the
hour counts), the query alone, and `experiments.decisions.evaluate`, and prints the
figures with the results' headline numbers. Progress goes to stdout. Not part of `make test`.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
ACTIVATION = {"A": 0.30, "B": 0.33}
MEAN_HOURS_TO_COMPLETE = 72


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=28, help="days the experiment has been running")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_experiment_results"
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database in place")
    parser.add_argument("--reuse-db", action="store_true", help="time a database a --keep-db run left")
    options = parser.parse_args()
    if urlparse(options.database_url).hostname not in (HOST, "localhost"):
        raise SystemExit("the bench only talks to 127.0.0.1")
    return options


def _recreate(url: str, name: str) -> None:
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop(url: str, name: str) -> None:
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _experiment(days: int):
    """A workspace, a path whose v1 was published then archived and whose v2 is published, and a
    running 50/50 experiment v1 (A, control) against v2 (B) started ``days`` ago."""
    from django.utils import timezone

    from experiments import services
    from paths.models import Path as OnboardingPath
    from paths.models import PathVersion
    from tenancy.models import Workspace

    now = timezone.now()
    workspace = Workspace.objects.create(name="Bench experiments", slug="bench-experiments")
    path = OnboardingPath.objects.create(workspace=workspace, key="onboarding", name="Onboarding")
    old = PathVersion.objects.create(
        path=path, number=1, status="archived", published_at=now, archived_at=now
    )
    new = PathVersion.objects.create(path=path, number=2, status="published", published_at=now)
    experiment = services.create_path_experiment(path=path, versions=[old, new], key="onboarding-v2")
    return services.experiment_start(experiment=experiment, at=now - timedelta(days=days))


GENERATE = """
SELECT setseed(0.15);
CREATE UNLOGGED TABLE bench_plan AS
SELECT g AS number,
       (random() < 0.5) AS is_b,
       %(started)s::timestamptz + random() * (now() - %(started)s::timestamptz) AS enrolled_at,
       random() AS draw,
       -ln(1 - random()) * %(mean_hours)s AS hours
FROM generate_series(1, %(users)s) g;
INSERT INTO onboarding_enduser (workspace_id, external_id, traits, persona, signup_source, company_size,
    use_case, locale, timezone, group_id, created_at, updated_at)
SELECT %(workspace)s, 'bench-' || number, '{}', '', '', '', '', '', '', '', enrolled_at, enrolled_at
FROM bench_plan ORDER BY number;
ALTER TABLE bench_plan ADD COLUMN end_user_id bigint, ADD COLUMN completed_at timestamptz;
UPDATE bench_plan p SET end_user_id = u.id FROM onboarding_enduser u
WHERE u.workspace_id = %(workspace)s AND u.external_id = 'bench-' || p.number;
UPDATE bench_plan SET completed_at = enrolled_at + hours * interval '1 hour'
WHERE draw < CASE WHEN is_b THEN %(rate_b)s ELSE %(rate_a)s END
  AND enrolled_at + hours * interval '1 hour' <= now();
INSERT INTO onboarding_enrollment (workspace_id, end_user_id, path_version_id, status, current_step_key,
    answers, revision, decision_reason, enrolled_at, step_entered_at, completed_at, updated_at)
SELECT %(workspace)s, end_user_id, CASE WHEN is_b THEN %(version_b)s ELSE %(version_a)s END,
       CASE WHEN completed_at IS NULL THEN 'active' ELSE 'completed' END, '', '{}', 1, '',
       enrolled_at, enrolled_at, completed_at, coalesce(completed_at, enrolled_at)
FROM bench_plan ORDER BY enrolled_at;
INSERT INTO experiments_assignment (workspace_id, experiment_id, end_user_id, variant_id, enrollment_id,
    assigned_at, hash_value)
SELECT %(workspace)s, %(experiment)s, e.end_user_id,
       CASE WHEN e.path_version_id = %(version_b)s THEN %(variant_b)s ELSE %(variant_a)s END,
       e.id, e.enrolled_at, random()
FROM onboarding_enrollment e WHERE e.workspace_id = %(workspace)s ORDER BY e.enrolled_at;
INSERT INTO analytics_enrollmentfact (enrollment_id, workspace_id, path_version_id, day, persona,
    signup_source, company_size, use_case, started, completed, completed_day, activated, activation_bucket)
SELECT e.id, %(workspace)s, e.path_version_id, (e.enrolled_at AT TIME ZONE 'UTC')::date, '', '', '', '',
       e.completed_at IS NOT NULL OR random() < 0.5, e.completed_at IS NOT NULL,
       (e.completed_at AT TIME ZONE 'UTC')::date,
       coalesce(e.completed_at <= e.enrolled_at + %(window_days)s * interval '1 day', false),
       CASE WHEN e.completed_at <= e.enrolled_at + %(window_days)s * interval '1 day'
            THEN floor(8 * log(2, greatest(extract(epoch FROM e.completed_at - e.enrolled_at), 1)))
       END
FROM onboarding_enrollment e WHERE e.workspace_id = %(workspace)s;
DROP TABLE bench_plan;
"""


def _generate(dsn: str, experiment, users: int) -> None:
    variants = {variant.key: variant for variant in experiment.variants.all()}
    parameters = {
        "users": users,
        "started": experiment.started_at,
        "mean_hours": MEAN_HOURS_TO_COMPLETE,
        "workspace": experiment.workspace_id,
        "experiment": experiment.pk,
        "rate_a": ACTIVATION["A"],
        "rate_b": ACTIVATION["B"],
        "version_a": variants["A"].path_version_id,
        "version_b": variants["B"].path_version_id,
        "variant_a": variants["A"].pk,
        "variant_b": variants["B"].pk,
        "window_days": 14,
    }
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in GENERATE.split(";\n"):
            if not statement.strip():
                continue
            started = time.monotonic()
            connection.execute(
                statement, {key: value for key, value in parameters.items() if f"%({key})s" in statement}
            )
            print(f"  {' '.join(statement.split()[:3])} ... {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        for table in (
            "onboarding_enduser",
            "onboarding_enrollment",
            "experiments_assignment",
            "analytics_enrollmentfact",
        ):
            connection.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        print(f"  VACUUM ANALYZE ... {time.monotonic() - started:.1f} s", flush=True)


def _timed(label: str, function, repeats: int):
    timings, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        timings.append(time.perf_counter() - started)
    print(
        f"  {label}: median {statistics.median(timings):.3f} s, min {min(timings):.3f} s, "
        f"max {max(timings):.3f} s ({repeats} runs)",
        flush=True,
    )
    return value


def _measure(experiment, repeats: int) -> None:
    from django.utils import timezone

    from experiments import decisions, results_data
    from experiments.results import compute_results

    variant_ids = list(experiment.variants.order_by("position").values_list("pk", flat=True))
    print(f"\ntimings over {experiment.assignments.count():,} assigned users", flush=True)
    now = timezone.now()
    _timed(
        "the GROUP BY query alone (results_data.arm_counts)",
        lambda: results_data.arm_counts(
            experiment_id=experiment.pk, variant_ids=variant_ids, at=now, window_days=14
        ),
        repeats,
    )
    found = _timed("experiment_results, full (target < 2 s)", lambda: compute_results(experiment), repeats)
    decision = _timed("decisions.evaluate", lambda: decisions.evaluate(experiment), repeats)
    print(
        f"\nresults (error: {found.error or 'none'}); SRM p = {found.srm_p_value:.3f};"
        f" log-rank p = {found.log_rank_p_value:.3g}"
    )
    for arm in found.arms:
        line = f"  {arm.key}: {arm.users:,} users, {arm.conversions:,} activated ({arm.rate:.2%})"
        line += f", pending {arm.pending:,}"
        line += f", median {arm.median_hours_to_activation} h"
        if not arm.is_control:
            line += (
                f"; uplift {arm.uplift_relative:+.2%} [{arm.ci_relative[0]:+.2%}, {arm.ci_relative[1]:+.2%}],"
                f" p {arm.p_value:.2g},"
                f" sequential [{arm.sequential_ci[0]:+.2%}, {arm.sequential_ci[1]:+.2%}],"
                f" chance to win {arm.chance_to_win:.1%}, risk {arm.risk:.4%}"
            )
        print(line)
    print(
        f"  {len(found.daily)} daily points,"
        f" {sum(len(curve.times_hours) for curve in found.survival)} survival points"
    )
    print(f"decision: {decision.action} {decision.winner}: {decision.reason}")


def main() -> None:
    options = _options()
    name = psycopg.conninfo.conninfo_to_dict(options.database_url)["dbname"]
    if not options.reuse_db:
        print(f"database {name}: recreating and migrating ...", flush=True)
        _recreate(options.database_url, name)
    _django(options.database_url)
    from django.core.management import call_command

    from experiments.models import Experiment

    try:
        if options.reuse_db:
            experiment = Experiment.objects.select_related("workspace").get(key="onboarding-v2")
        else:
            call_command("migrate", verbosity=0)
            experiment = _experiment(options.days)
            print(
                f"generating {options.users:,} users, enrollments, assignments and facts in SQL ...",
                flush=True,
            )
            started = time.monotonic()
            _generate(options.database_url, experiment, options.users)
            print(f"generated in {time.monotonic() - started:.1f} s", flush=True)
        _measure(experiment, options.repeats)
    finally:
        if not (options.keep_db or options.reuse_db):
            from django.db import connections

            connections.close_all()
            _drop(options.database_url, name)


if __name__ == "__main__":
    main()
