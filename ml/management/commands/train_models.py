"""Train the ML models now (the drift job retrains on its own when accuracy drops): every model
of every workspace, or those named; prints each new version's metrics, or why it was refused."""

from collections.abc import Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.progress_bar import progress_line
from ml.models import ModelVersion
from ml.training import services
from tenancy import selectors
from tenancy.models import Workspace


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def summary(model_version: ModelVersion) -> str:
    """One line of a version's metrics, and its policy estimate when it has one."""
    metrics = model_version.metrics
    line = (
        f"{model_version.name} {model_version.version}: AUC {metrics.get('auc')}, log loss "
        f"{metrics.get('log_loss')}, ECE {metrics.get('ece')}, "
        f"base rate {_percent(metrics.get('base_rate'))}, "
        f"{model_version.training_rows} training / {model_version.validation_rows} validation rows, "
        f"{model_version.trained_seconds:.1f} s"
    )
    policy = metrics.get("policy")
    if policy:
        model, rules = policy["model"], policy["rules"]
        low, high = model.get("difference_ci95") or [None, None]
        line += (
            f"\n  offline policy estimate: model {_percent(model['activation'])} vs rules "
            f"{_percent(rules['activation'])}, difference {_percent(model.get('difference'))} "
            f"(95% CI {_percent(low)} to {_percent(high)})"
        )
    return line


class Command(BaseCommand):
    help = "Train the ML models on each workspace's data and register them as candidate versions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", metavar="KEY_OR_ID", help="Only this workspace (slug or id)")
        parser.add_argument(
            "--model",
            action="append",
            metavar="NAME",
            help=f"Only this model ({', '.join(services.MODEL_NAMES)})",
        )
        parser.add_argument("--threads", type=int, default=2, help="LightGBM threads (default 2)")

    def handle(
        self, *args: Any, workspace: str | None = None, model=None, threads: int = 2, **options
    ) -> None:
        try:
            names = [services.model_name_check(name) for name in (model or services.MODEL_NAMES)]
        except ValueError as error:
            raise CommandError(str(error)) from error
        trained = refused = 0
        for each in self._workspaces(workspace):
            for name in names:
                try:
                    model_version = services.model_train(
                        workspace=each, name=name, progress=self._progress(each, name), num_threads=threads
                    )
                except services.TrainingRefused as error:
                    self.stdout.write(f"{each.slug}: {error}")
                    refused += 1
                    continue
                self.stdout.write(f"{each.slug}: {summary(model_version)}")
                trained += 1
        self.stdout.write(f"Done: {trained} model(s) trained, {refused} refused.")

    def _workspaces(self, key: str | None) -> Iterable[Workspace]:
        if not key:
            return Workspace.objects.order_by("slug").iterator()
        found = selectors.workspace_get_by_slug(slug=key)
        if found is None and key.isdigit():
            found = Workspace.objects.filter(pk=int(key)).first()
        if found is None:
            raise CommandError(f"No workspace with slug or id {key!r}")
        return [found]

    def _progress(self, workspace: Workspace, name: str):
        lines: dict[str, Any] = {}

        def show(done: int, total: int, stage: str) -> None:
            if stage == "features":
                if stage not in lines:
                    lines[stage] = progress_line(self.stderr, f"{workspace.slug}: {name}: features")
                lines[stage](done, total)
            else:
                self.stderr.write(f"{workspace.slug}: {name}: {stage}")

        return show
