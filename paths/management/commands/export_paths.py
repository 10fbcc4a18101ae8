"""Write every path of a workspace, with its versions and steps, to one JSON file."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from paths.transfer import paths_export
from tenancy import selectors as tenancy_selectors


class Command(BaseCommand):
    help = "Export a workspace's paths (all versions, with steps) to a JSON file for git."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug")
        parser.add_argument("--out", required=True, help="File to write, or - for standard output")

    def handle(self, *args, workspace: str, out: str, **options):
        found = tenancy_selectors.workspace_get_by_slug(slug=workspace)
        if found is None:
            raise CommandError(f"no workspace with slug '{workspace}'")
        document = paths_export(workspace=found)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if out == "-":
            sys.stdout.write(text)
            return
        with open(out, "w", encoding="utf-8") as file:
            file.write(text)
        versions = sum(len(path["versions"]) for path in document["paths"])
        self.stdout.write(f"Exported {len(document['paths'])} path(s), {versions} version(s) to {out}.")
