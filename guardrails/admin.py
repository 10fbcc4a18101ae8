"""Admin of the guardrails app: each concern registers its admins in a module of its own."""

from guardrails import admin_abuse, admin_audit, admin_policy, admin_secrets  # noqa: F401  (register their admins)
