"""End-user token misuse: tokens refused again and again, counted where they are refused.

Counted per subject in the cache, in windows of WINDOW_SECONDS; the THRESHOLD-th refusal in a
window records one TOKEN_MISUSE flag (guardrails.abuse.flags dedupes further ones for an hour).

* expired: a token past its lifetime. The subject is the token's end user (its signature is
  good), but the flag does not name them: a replay of someone's old token is not their doing,
  and a flag on an end user stops their nudges.
* other_user / issue_token: a valid token used on another user's URL, or to ask for tokens. The
  token's holder acted, so the flag names that end user.
* invalid: a forged or tampered token. Nothing in it can be trusted, so the subject is a digest
  of the client address; the flag goes to the workspace the token claims, marked unverified,
  when that workspace exists (else the refusals are only logged).

Counting never breaks the refusal it rides on: with the cache unavailable it logs and counts the
detector as unavailable, and while the rate limiter's breaker is open (Redis failed in the last
seconds) it does not try.
"""

import json
import logging
import time

from django.core import signing
from django.core.cache import cache
from django.utils.crypto import salted_hmac

from guardrails.abuse import ratelimit
from guardrails.abuse.flags import abuse_flag_record
from guardrails.models import AbuseFlag
from tenancy import tokens
from tenancy.models import EndUser, Workspace

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 10 * 60
THRESHOLD = 20
REASONS = ("expired", "invalid", "other_user", "issue_token")


def _client_digest(request) -> str:
    """Keyed, so the digest of an address cannot be reversed by hashing every IPv4 address."""
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    return salted_hmac("guardrails.abuse.token_misuse.client", address).hexdigest()[:16]


def _unverified_workspace_id(raw_token: str) -> int | None:
    """The workspace a token claims, read without trusting it (its signature did not verify)."""
    payload = raw_token.removeprefix(tokens.TOKEN_PREFIX).split(":", 1)[0]
    if not payload or payload.startswith("."):  # compressed: never issued that way
        return None
    try:
        claims = json.loads(signing.b64_decode(payload.encode()))
        return int(claims["w"])
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None


def _count(subject: str) -> int:
    window = int(time.time() // WINDOW_SECONDS)
    key = f"guardrails:token_misuse:{subject}:{window}"
    cache.add(key, 0, 2 * WINDOW_SECONDS)
    return cache.incr(key)


def token_refusal_record(
    *,
    request,
    reason: str,
    claims: tokens.EndUserToken | None = None,
    raw_token: str = "",
    **signal_arguments,
) -> None:
    """Count one refused end-user token; at the threshold, flag it. Never raises. The receiver of
    tenancy.signals.token_refused (connected in GuardrailsConfig.ready())."""
    if reason not in REASONS:
        raise ValueError(f"unknown token refusal reason {reason!r}")
    if claims is not None:
        subject = f"token_user:{claims.workspace_id}:{claims.end_user_id}"
    else:
        subject = f"token_client:{_client_digest(request)}"
    if ratelimit.breaker_open():  # Redis just failed: do not make a refusal wait for it again
        ratelimit.detector_unavailable(component="token_misuse")
        return
    try:
        failures = _count(subject)
    except Exception as error:
        ratelimit.detector_unavailable(component="token_misuse", error=error)
        return
    if failures != THRESHOLD:
        return
    try:
        _flag(subject=subject, reason=reason, claims=claims, raw_token=raw_token, failures=failures)
    except Exception:
        logger.exception("guardrails.abuse.token_misuse.flag_failed", extra={"reason": reason})


def _flag(*, subject: str, reason: str, claims, raw_token: str, failures: int) -> None:
    workspace_id = claims.workspace_id if claims is not None else _unverified_workspace_id(raw_token)
    workspace = Workspace.objects.filter(pk=workspace_id).first() if workspace_id is not None else None
    if workspace is None:
        logger.warning(
            "guardrails.abuse.token_misuse.unattributed", extra={"reason": reason, "failures": failures}
        )
        return
    end_user = None
    if claims is not None and reason in ("other_user", "issue_token"):
        end_user = EndUser.objects.filter(workspace=workspace, pk=claims.end_user_id).first()
    abuse_flag_record(
        workspace=workspace,
        end_user=end_user,
        kind=AbuseFlag.Kind.TOKEN_MISUSE,
        subject=subject,
        detail={
            "reason": reason,
            "failures": failures,
            "window_seconds": WINDOW_SECONDS,
            "claims_verified": claims is not None,
            "token_end_user_id": claims.end_user_id if claims is not None else None,
        },
    )
