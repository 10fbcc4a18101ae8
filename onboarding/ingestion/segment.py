"""The Segment Tracking API spec: validation of one call, clock-skew correction, message ids.

One fast validator (pydantic, compiled once) checks every event of a batch; errors name the
field and the reason so a client can fix its payload.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from onboarding.ingestion import event_times

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")


def _identifier(value: Any) -> Any:
    """Segment ids may arrive as numbers; an empty id counts as absent."""
    if isinstance(value, bool):
        return value  # let validation reject it
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and not value.strip():
        return None
    return value


Identifier = Annotated[Annotated[str, StringConstraints(max_length=255)] | None, BeforeValidator(_identifier)]
RequiredIdentifier = Annotated[
    str, BeforeValidator(_identifier), StringConstraints(min_length=1, max_length=255)
]
Moment = Annotated[datetime, AfterValidator(event_times.checked)]
"""A client's time: inside onboarding.ingestion.event_times' window, returned in UTC."""


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    userId: Identifier = None
    anonymousId: Identifier = None
    messageId: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    timestamp: Moment | None = None
    originalTimestamp: Moment | None = None
    sentAt: Moment | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _someone(self):
        if self.userId is None and self.anonymousId is None:
            raise ValueError("userId or anonymousId is required")
        return self


class TrackCall(_Call):
    type: Literal["track"]
    event: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    properties: dict[str, Any] = Field(default_factory=dict)


class IdentifyCall(_Call):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


class PageCall(_Call):
    type: Literal["page"]
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    category: Annotated[str, StringConstraints(max_length=255)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class ScreenCall(_Call):
    type: Literal["screen"]
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    category: Annotated[str, StringConstraints(max_length=255)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class GroupCall(_Call):
    type: Literal["group"]
    groupId: RequiredIdentifier
    traits: dict[str, Any] = Field(default_factory=dict)


class AliasCall(_Call):
    type: Literal["alias"]
    userId: RequiredIdentifier
    previousId: RequiredIdentifier

    @model_validator(mode="after")
    def _someone(self):
        return self


Call = TrackCall | IdentifyCall | PageCall | ScreenCall | GroupCall | AliasCall
_call_adapter = TypeAdapter(Annotated[Call, Field(discriminator="type")])


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidCall(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{error.field}: {error.reason}" for error in errors))
        self.errors = errors


def _field_errors(error: ValidationError) -> list[FieldError]:
    field_errors = []
    for detail in error.errors(include_url=False):
        location = list(detail["loc"])
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            expected = ", ".join(CALL_TYPES)
            reason = (
                "type is required"
                if detail["type"] == "union_tag_not_found"
                else f"unknown call type {detail['input'].get('type')!r}; expected one of {expected}"
            )
            field_errors.append(FieldError("type", reason))
            continue
        if location and location[0] in CALL_TYPES:
            location = location[1:]  # drop the discriminator tag pydantic puts first
        message = detail["msg"].removeprefix("Value error, ")
        if not location and "userId or anonymousId" in message:
            location = ["userId"]
        field = ".".join(str(part) for part in location) or "(event)"
        field_errors.append(FieldError(field, message))
    return field_errors


MAX_NESTING = 64
"""Levels of objects and arrays a call's values may hold (Segment's properties rarely pass 5).
Deeper values are refused by field: orjson, which stores and sends events, stops at 254 levels,
and each layer that wraps an event (a batch, a websocket frame) takes some of those."""

MAX_EMAIL_LENGTH = 254
"""The longest address SMTP can deliver to (RFC 5321), and the length of Contact.email."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels deep; iterative, so a value
    nested thousands deep costs no recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def nesting_errors(raw: Any, encoded: bytes | None) -> list[FieldError]:
    """The top-level fields of a call whose values nest too deeply. `encoded` is the call's JSON
    (None when orjson found it too deep to encode): a call with no more than MAX_NESTING brackets
    in all cannot nest deeper, so most calls skip the walk."""
    if encoded is not None and encoded.count(b"{") + encoded.count(b"[") <= MAX_NESTING:
        return []
    reason = f"objects and arrays are nested more than {MAX_NESTING} levels deep"
    if not isinstance(raw, dict):
        too_deep = isinstance(raw, list) and _deeper_than(raw, MAX_NESTING)
        return [FieldError("(event)", reason)] if too_deep else []
    return [
        FieldError(key, reason)
        for key, value in raw.items()
        if isinstance(value, dict | list) and _deeper_than(value, MAX_NESTING)
    ]


def _contact_errors(call: Call) -> list[FieldError]:
    if not isinstance(call, IdentifyCall) or call.traits.get("email") is None:
        return []
    email = str(call.traits["email"]).strip()
    if len(email) <= MAX_EMAIL_LENGTH:
        return []
    reason = f"is {len(email)} characters long; an e-mail address has at most {MAX_EMAIL_LENGTH}"
    return [FieldError("traits.email", reason)]


def validate_call(raw: Any, *, call_type: str | None = None) -> Call:
    """Validate one call; `call_type` is set by the single-call endpoints (/v1/track ...)."""
    if not isinstance(raw, dict):
        raise InvalidCall([FieldError("(event)", "must be a JSON object")])
    if call_type is not None:
        raw = {**raw, "type": call_type}
    try:
        call = _call_adapter.validate_python(raw)
    except ValidationError as error:
        errors = _field_errors(error)
        # pydantic skips the "someone" check when another field already failed; report both.
        nobody = _identifier(raw.get("userId")) is None and _identifier(raw.get("anonymousId")) is None
        if nobody and raw.get("type") != "alias" and all(e.field != "userId" for e in errors):
            errors.append(FieldError("userId", "userId or anonymousId is required"))
        raise InvalidCall(errors) from None
    errors = _contact_errors(call)
    if errors:
        raise InvalidCall(errors)
    return call


def event_time(
    call: Call, *, received_at: datetime, batch_sent_at: datetime | None = None
) -> tuple[datetime, datetime | None, datetime | None]:
    """Segment's clock-skew rule: timestamp = receivedAt - (sentAt - timestamp).

    Returns (corrected timestamp, the client's own timestamp, sentAt), all in UTC. Each time was
    checked on arrival (onboarding.ingestion.event_times); a correction that lands outside that window
    (a timestamp and a sentAt decades apart) is refused as the timestamp's fault.
    """
    client_time = call.timestamp or call.originalTimestamp
    sent_at = call.sentAt or batch_sent_at
    if client_time is None:
        return received_at, None, sent_at
    if sent_at is None:
        return client_time, client_time, None
    corrected = received_at - (sent_at - client_time)
    if not event_times.within(corrected):
        reason = (
            f"corrected for clock skew (receivedAt - (sentAt - timestamp)), it {event_times.OUT_OF_RANGE}"
        )
        field = "timestamp" if call.timestamp is not None else "originalTimestamp"
        raise InvalidCall([FieldError(field, reason)])
    return corrected, client_time, sent_at


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a /v1/batch body holds around its calls: they share its context and sentAt."""

    batch: list[Any]
    context: dict[str, Any] | None
    sent_at: datetime | None


class InvalidBatch(InvalidCall):
    """The batch as a whole is at fault (every call would inherit the fault, or there are too
    many calls to look at); `too_large` answers 413 rather than 400."""

    def __init__(self, errors: list[FieldError], *, too_large: bool = False):
        super().__init__(errors)
        self.too_large = too_large


_optional_moment = TypeAdapter(Moment | None)


def _context_errors(context: dict[str, Any]) -> list[FieldError]:
    if _deeper_than(context, MAX_NESTING):
        return [FieldError("context", f"objects and arrays are nested more than {MAX_NESTING} levels deep")]
    if b"\\u0000" in orjson.dumps(context):
        return [FieldError("context", "contains a NUL character (\\u0000), which cannot be stored")]
    return []


def validate_envelope(body: dict[str, Any], *, max_events: int) -> Envelope:
    """Check a batch's own fields before any call is looked at: the number of calls first, so
    that a small compressed body of many empty calls costs neither validation nor an error list."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise InvalidBatch([FieldError("batch", "required, a list of calls")])
    if len(batch) > max_events:
        reason = f"holds {len(batch)} events; the limit is {max_events} per batch"
        raise InvalidBatch([FieldError("batch", reason)], too_large=True)
    context = body.get("context")
    context = context if isinstance(context, dict) else None
    errors = _context_errors(context) if context else []
    sent_at = None
    try:
        sent_at = _optional_moment.validate_python(body.get("sentAt"))
    except ValidationError as error:
        errors.append(FieldError("sentAt", error.errors()[0]["msg"].removeprefix("Value error, ")))
    if errors:
        raise InvalidBatch(errors)
    return Envelope(batch=batch, context=context, sent_at=sent_at)


def message_id(call: Call, raw: dict) -> str:
    """The client's messageId; without one, a digest of the payload when the client gave the
    event a time (so a retried request is still recognised), else a fresh id."""
    if call.messageId:
        return call.messageId
    if call.timestamp is None and call.originalTimestamp is None:
        return f"gen-{uuid.uuid4().hex}"
    stable = {key: value for key, value in raw.items() if key not in ("sentAt", "writeKey")}
    digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"hash-{digest[:40]}"
