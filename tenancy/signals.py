"""What tenancy tells the apps above it has happened, as Django signals.

tenancy may not import the apps built on it, so it announces and they listen: each receiver is
connected in its app's `AppConfig.ready()` (guardrails counts refused tokens, onboarding closes
the live debugger's sockets). Every signal is sent with keyword arguments only. Receivers run
synchronously in the sender's thread and must not raise.
"""

from django.dispatch import Signal

token_refused = Signal()
"""An end-user token was refused. Arguments: `request`, `reason` ("expired", "invalid",
"other_user" or "issue_token"), `claims` (the token's genuine claims when it was signed by us, else
None) and `raw_token` (the refused text when there are no claims, else "")."""

api_key_revoked = Signal()
"""An API key was revoked; sent once the revocation has committed. Arguments: `api_key_id`."""
