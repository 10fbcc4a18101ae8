"""Merge pre and post survey signals now and write the reports (the scheduler does it nightly)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.signals import selectors as signal_selectors
from analytics.signals import services
from analytics.signals.storage import StorageError, signals_storage
from core.progress_bar import progress_line
from tenancy import selectors


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Merge pre and post signals on <user id>-<session id> and write summary.json and report.html "
        "per workspace, for one UTC day (--date) or for every signal stored (default)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_day, help="UTC day YYYY-MM-DD (default: all days)")
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args, date: date | None = None, workspace: str | None = None, **options) -> None:
        storage = signals_storage()
        if workspace:
            found = selectors.workspace_get_by_slug(slug=workspace)
            if found is None:
                raise CommandError(f"No workspace with slug {workspace!r}")
            workspace_ids = [found.pk]
        else:
            workspace_ids = signal_selectors.signal_workspace_ids(storage=storage)
        for workspace_id in workspace_ids:
            try:
                written = services.signals_report_write(
                    storage=storage,
                    workspace_id=workspace_id,
                    day=date,
                    on_progress=progress_line(self.stderr, f"workspace {workspace_id}: signals read"),
                )
            except StorageError as error:
                raise CommandError(f"The signals store failed: {error}") from error
            counts = written.summary["counts"]
            self.stdout.write(
                f"workspace {workspace_id} ({written.label}): {counts['pre']} pre, {counts['post']} post, "
                f"{counts['pairs']} pairs -> {written.report_key}"
            )
        self.stdout.write(f"Done: {len(workspace_ids)} workspace(s) in {storage.environment}.")
