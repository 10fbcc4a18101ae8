"""Compute an experiment's results from sufficient statistics, without touching the database, so
anyone can check the statistics engine (issue 15). Formulas: docs/experiments-statistics.md.

    manage.py experiment_stats --in results.json
    echo '{"metric": "proportion", "arms": [...]}' | manage.py experiment_stats --in -
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from experiments.stats import StatsInputError, experiment_results


class Command(BaseCommand):
    help = (
        "Results of an experiment from per-arm sufficient statistics (JSON in, JSON out): "
        "frequentist, Bayesian, optional sequential, and the SRM check given weights."
    )
    # Pure computation: no system checks or migration checks, which would open the database.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--in",
            dest="source",
            required=True,
            help="the input JSON file, or - for standard input",
        )
        parser.add_argument("--indent", type=int, default=2, help="indentation of the output")

    def handle(self, *args, source: str, indent: int, **options) -> None:
        text = self._read(source)
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"input: not valid JSON ({error})") from error
        try:
            results = experiment_results(spec)
        except StatsInputError as error:
            raise CommandError(f"{error.field}: {error.reason}") from error
        self.stdout.write(json.dumps(results, indent=indent or None))

    def _read(self, source: str) -> str:
        if source == "-":
            return sys.stdin.read()
        try:
            with open(source, encoding="utf-8") as handle:
                return handle.read()
        except OSError as error:
            raise CommandError(f"--in: cannot read {source} ({error.strerror})") from error
