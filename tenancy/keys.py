"""API key material: generation and digests. Keys are random, so a fast hash is enough."""

import hashlib
import secrets

KEY_PREFIXES = {"write": "wk_", "secret": "sk_"}
DISPLAY_PREFIX_LENGTH = 11


def generate_key(kind: str) -> str:
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
