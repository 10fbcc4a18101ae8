"""Write everything held on one person to a JSON file (GDPR access / CCPA right to know)."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.progress_bar import progress_line
from guardrails.gdpr import export as gdpr
from guardrails.management.commands._gdpr import workspace_named
from tenancy import selectors


class Command(BaseCommand):
    help = (
        "Export one end user's data as one JSON bundle (written to a temporary file, then moved into "
        "place). The export is recorded in the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, metavar="SLUG_OR_ID", help="The user's workspace")
        parser.add_argument("--user", required=True, metavar="USER_ID", help="The user id (Segment userId)")
        parser.add_argument("--out", required=True, metavar="FILE.json", help="File to write")

    def handle(self, *args, workspace: str, user: str, out: str, **options):
        scope = workspace_named(workspace)
        end_user = selectors.end_user_get(workspace=scope, external_id=user)
        if end_user is None:
            raise CommandError(f"No user {user!r} in the workspace {scope.slug!r}.")
        total = gdpr.events_count(gdpr.Subject(workspace=scope, end_user=end_user))
        show = progress_line(self.stderr, "events exported")
        target = Path(out)
        partial = target.with_name(f".{target.name}.partial")
        try:
            with partial.open("wb") as stream:
                report = gdpr.gdpr_export(
                    workspace=scope,
                    end_user=end_user,
                    stream=stream,
                    actor_label="manage.py gdpr_export",
                    on_event=lambda done: show(done, max(total, done)),
                )
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stdout.write(
            f"Exported {len(report.sections)} section(s), {report.events} event(s), "
            f"{report.bytes_written:,} bytes to {target}."
        )
