"""System checks: the secrets encryption key is set in production and every key is usable."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def secrets_encryption_keys_valid(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for position, key in enumerate(settings.SECRETS_ENCRYPTION_KEY, start=1):
        try:
            Fernet(key.strip().encode())
        except ValueError:
            errors.append(
                Error(
                    f"Key {position} of SECRETS_ENCRYPTION_KEY is not a Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    id="guardrails.E002",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def secrets_encryption_key_set(app_configs=None, **kwargs) -> list[Error]:
    if settings.DEBUG or settings.SECRETS_ENCRYPTION_KEY:
        return []
    return [
        Error(
            "SECRETS_ENCRYPTION_KEY is not set: workspace secrets would be encrypted with a key "
            "derived from SECRET_KEY.",
            hint="Set SECRETS_ENCRYPTION_KEY to one or more comma-separated Fernet keys.",
            id="guardrails.E001",
        )
    ]
