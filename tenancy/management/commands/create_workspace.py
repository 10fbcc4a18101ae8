"""Create a tenant and print its keys, which are shown only this once."""

import json

from django.core.management.base import BaseCommand, CommandError

from tenancy import services


class Command(BaseCommand):
    help = "Create a workspace with a write key and a secret key (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Display name, e.g. Acme")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object")

    def handle(self, *args, name: str, as_json: bool, **options):
        if not name.strip():
            raise CommandError("--name must not be empty")
        workspace, write_key, secret_key = services.workspace_create(name=name)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "workspace": workspace.slug,
                        "workspace_id": workspace.pk,
                        "name": workspace.name,
                        "write_key": write_key.key,
                        "secret_key": secret_key.key,
                    }
                )
            )
            return
        self.stdout.write(f"Workspace {workspace.name!r} created (slug {workspace.slug}).")
        self.stdout.write(f"Write key (events only):  {write_key.key}")
        self.stdout.write(f"Secret key (server API):  {secret_key.key}")
        self.stdout.write("These keys are stored hashed and will not be shown again.")
