"""Encrypting and decrypting one value with the configured keys (MultiFernet: the first key
encrypts, every one decrypts)."""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def development_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for environments without SECRETS_ENCRYPTION_KEY."""
    digest = hashlib.sha256(b"workspace-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def current_fernet() -> MultiFernet:
    """SECRETS_ENCRYPTION_KEY, or the development key derived from SECRET_KEY when it is empty."""
    keys = tuple(key.strip() for key in settings.SECRETS_ENCRYPTION_KEY if key.strip())
    return _fernet(keys or (development_key(settings.SECRET_KEY),))


def secret_encrypt(value: str) -> str:
    return current_fernet().encrypt(value.encode()).decode()


def secret_decrypt(ciphertext: str) -> str:
    """The plain value; InvalidToken when no configured key opened it."""
    return current_fernet().decrypt(ciphertext.encode()).decode()
