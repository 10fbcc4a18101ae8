"""Provider credentials per workspace, encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from SECRETS_ENCRYPTION_KEY (comma-separated; the first encrypts, every one decrypts),
so rotating is: put the new key first, run `manage.py secrets_rotate`, drop the old key. Without
a key (development, tests) one is derived from SECRET_KEY; production must set one (a deploy
check in guardrails/secrets/checks.py says so).

Owns the encryption (encryption.py), setting and rotating (services.py), reading
(selectors.py), the write-only admin (admin.py) and the system checks (checks.py).
"""
