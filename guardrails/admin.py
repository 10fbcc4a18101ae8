"""Admin of the guardrails app: each concern registers its admins in a module of its own."""

from guardrails import admin_audit  # noqa: F401  (registers its admins)
from guardrails.abuse import admin as admin_abuse  # noqa: F401
from guardrails.policy import admin as admin_policy  # noqa: F401
from guardrails.secrets import admin as admin_secrets  # noqa: F401
