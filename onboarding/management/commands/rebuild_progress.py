"""Rebuild enrollments' progress from events and completions; --check only reports differences."""

import time

from django.core.management.base import BaseCommand, CommandError

from onboarding.progress import rebuild
from tenancy import selectors

MAX_LISTED = 50


class Command(BaseCommand):
    help = (
        "Recompute every enrollment's progress from its events and explicit completions and repair "
        "differences; with --check, only report them (exit status 1 when there are any)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (its slug).")
        parser.add_argument("--check", action="store_true", help="Report differences; change nothing.")

    def handle(self, *args, workspace: str | None = None, check: bool = False, **options):
        target = None
        if workspace:
            target = selectors.workspace_get_by_slug(slug=workspace)
            if target is None:
                raise CommandError(f"No workspace with the slug {workspace!r}.")
        total = rebuild.enrollments_count(workspace=target)
        started = time.monotonic()
        redraw = self.stdout.isatty()
        last_tenth = -1

        def on_progress(done: int) -> None:
            nonlocal last_tenth
            percent = 100 * done // max(total, 1)
            line = f"  enrollments: {done:,}/{total:,} ({percent}%) {time.monotonic() - started:.1f}s"
            if redraw:
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()
            elif total >= 1000 and percent // 10 > last_tenth:
                last_tenth = percent // 10
                self.stdout.write(line)

        report = rebuild.rebuild_progress(workspace=target, repair=not check, on_progress=on_progress)
        if redraw and total:
            self.stdout.write("")
        for enrollment_id, found in list(report.differences.items())[:MAX_LISTED]:
            self.stdout.write(f"enrollment {enrollment_id}:")
            for line in found:
                self.stdout.write(f"  {line}")
        if len(report.differences) > MAX_LISTED:
            self.stdout.write(f"... and {len(report.differences) - MAX_LISTED:,} more enrollments")
        differing = len(report.differences)
        if check:
            self.stdout.write(
                f"Checked {report.enrollments:,} enrollments: {differing:,} differ from their rebuilt state."
            )
            if differing:
                raise CommandError(f"{differing:,} enrollments differ; run without --check to repair them.")
        else:
            self.stdout.write(f"Rebuilt {report.enrollments:,} enrollments: {differing:,} repaired.")
