"""Stream answer snapshots to an NDJSON file, one completed enrollment per line."""

import os
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from core.progress_bar import progress_line
from onboarding.progress import answers
from tenancy import selectors

CHUNK_SIZE = 2000


class Command(BaseCommand):
    help = "Export answer snapshots as NDJSON (written to a temporary file, then moved into place)."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, metavar="FILE.ndjson", help="File to write")
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args, out: str, workspace: str | None, **options):
        scope = None
        if workspace:
            scope = selectors.workspace_get_by_slug(slug=workspace)
            if scope is None:
                raise CommandError(f"No workspace with slug {workspace!r}")
        snapshots = answers.answer_snapshots_for_export(workspace=scope)
        total = snapshots.count()
        show = progress_line(self.stderr, "exported")
        target = Path(out)
        partial = target.with_name(f".{target.name}.partial")
        written = 0
        try:
            with partial.open("wb") as stream:
                for row in snapshots.iterator(chunk_size=CHUNK_SIZE):
                    stream.write(orjson.dumps(answers.export_line(row)) + b"\n")
                    written += 1
                    if written % CHUNK_SIZE == 0:
                        show(written, total)
            show(written, max(total, written))
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stdout.write(f"Exported {written} answer snapshot(s) to {target}.")
