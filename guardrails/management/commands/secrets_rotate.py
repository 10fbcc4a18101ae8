"""Re-encrypt every workspace secret with the first SECRETS_ENCRYPTION_KEY (after a key rotation)."""

from django.core.management.base import BaseCommand

from guardrails.secrets.services import workspace_secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every workspace secret with the first key of SECRETS_ENCRYPTION_KEY."

    def handle(self, *args, **options):
        rotated = workspace_secrets_rotate()
        self.stdout.write(f"Re-encrypted {rotated} secret(s) with the first key.")
