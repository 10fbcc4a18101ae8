"""Apply a JSON file made by export_paths to a workspace. Running it twice changes nothing."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from paths.transfer import ImportInvalid, paths_import
from tenancy import selectors as tenancy_selectors


class DryRun(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Import paths from a JSON file. New paths are created with their versions; a changed path "
        "gets a new draft version (published with --publish); an unchanged file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug")
        parser.add_argument("--in", required=True, dest="in_file", help="JSON file from export_paths")
        parser.add_argument("--publish", action="store_true", help="Publish the imported changes")
        parser.add_argument("--dry-run", action="store_true", help="Report the changes, keep none")

    def handle(self, *args, workspace: str, in_file: str, publish: bool, dry_run: bool, **options):
        found = tenancy_selectors.workspace_get_by_slug(slug=workspace)
        if found is None:
            raise CommandError(f"no workspace with slug '{workspace}'")
        try:
            with open(in_file, encoding="utf-8") as file:
                data = json.load(file)
        except OSError as error:
            raise CommandError(f"cannot read {in_file}: {error.strerror}") from error
        except json.JSONDecodeError as error:
            raise CommandError(f"{in_file} is not valid JSON: {error}") from error
        try:
            with transaction.atomic():
                lines = paths_import(workspace=found, data=data, publish=publish)
                if dry_run:
                    raise DryRun
        except DryRun:
            pass
        except ImportInvalid as error:
            listing = "\n".join(f"  - {line}" for line in error.errors)
            raise CommandError(
                f"{in_file}: nothing imported, {len(error.errors)} error(s):\n{listing}"
            ) from error
        for line in lines:
            self.stdout.write(line)
        prefix = "Dry run: would apply" if dry_run else "Applied"
        changes = [line for line in lines if not line.startswith(" ")]
        self.stdout.write(f"{prefix} {len(changes)} change(s)." if lines else "No changes.")
