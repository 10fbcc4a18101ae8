"""Erase one person (GDPR right to erasure / CCPA right to delete); safe to run again."""

from django.core.management.base import BaseCommand, CommandError

from core.progress_bar import progress_line
from guardrails.gdpr import erasure, vacuum
from guardrails.management.commands._gdpr import workspace_named


class Command(BaseCommand):
    help = (
        "Erase an end user: contact data, traits and event contents removed, their ids replaced by a "
        "tombstone (counts stay), a suppression so a re-import does not bring them back, an audit "
        "row. Events are scrubbed here, in batches, with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, metavar="SLUG_OR_ID", help="The user's workspace")
        parser.add_argument("--user", required=True, metavar="USER_ID", help="The user id (Segment userId)")

    def handle(self, *args, workspace: str, user: str, **options):
        scope = workspace_named(workspace)
        result = erasure.gdpr_erase(
            workspace=scope,
            user_id=user,
            actor_label="manage.py gdpr_erase",
            on_progress=progress_line(self.stderr, "events erased"),
        )
        if result.status == "not_found":
            raise CommandError(f"No user {user!r} in the workspace {scope.slug!r}, and none was erased.")
        # The erasure has committed: its old row versions can go now (guardrails.gdpr.vacuum).
        vacuumed = vacuum.erased_tables_vacuum() if result.status == "erased" or result.events_erased else []
        vacuum_note = f" Vacuumed {len(vacuumed)} tables." if vacuumed else ""
        if result.status == "already_erased":
            finished = (
                f"; finished {result.events_erased:,} event(s) left over" if result.events_erased else ""
            )
            self.stdout.write(f"This user was erased already{finished}.{vacuum_note}")
            return
        erased = ", ".join(f"{name} {count}" for name, count in result.erased.items())
        self.stdout.write(f"Erased: {erased}; events {result.events_erased:,}.{vacuum_note}")
