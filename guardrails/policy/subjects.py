"""Digests of the people and addresses a suppression names.

A Suppression row stores `subject_digest(...)`, never the address or user id itself, so an erased
person's "do not contact / do not resurrect" entry keeps nothing that identifies them. The same
value normalised the same way always gives the same digest: emails are compared in lower case,
phone numbers in E.164.
"""

import hashlib

import phonenumbers

from tenancy.models import Workspace

EMAIL = "email"
PHONE = "phone"
USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"  # a device id of an erased person (guardrails.gdpr.erasure)
KINDS = (EMAIL, PHONE, USER_ID, ANONYMOUS_ID)


def normalise(kind: str, value: str, *, phone_region: str | None = None) -> str:
    """The canonical form of an address or user id; ValueError for an unknown kind."""
    value = value.strip()
    if kind == EMAIL:
        return value.lower()
    if kind == PHONE:
        return _e164(value, phone_region)
    if kind in (USER_ID, ANONYMOUS_ID):
        return value
    raise ValueError(f"unknown subject kind {kind!r}; expected one of {', '.join(KINDS)}")


def _e164(value: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        # Not parseable (a national number without a region): keep the digits, so the same
        # input still gives the same digest.
        digits = "".join(character for character in value if character.isdigit())
        return f"+{digits}" if value.startswith("+") else digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def subject_digest(
    workspace: Workspace | int, kind: str, value: str, *, phone_region: str | None = None
) -> str:
    """SHA-256 hex of the workspace, the kind and the normalised value."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    canonical = normalise(kind, value, phone_region=phone_region)
    return hashlib.sha256(f"{workspace_id}:{kind}:{canonical}".encode()).hexdigest()
