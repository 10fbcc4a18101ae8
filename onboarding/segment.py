"""The Segment Tracking API spec: validation of one call, clock-skew correction, message ids.

One fast validator (pydantic, compiled once) checks every event of a batch; errors name the
field and the reason so a client can fix its payload.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

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


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    userId: Identifier = None
    anonymousId: Identifier = None
    messageId: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
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


def validate_call(raw: Any, *, call_type: str | None = None) -> Call:
    """Validate one call; `call_type` is set by the single-call endpoints (/v1/track ...)."""
    if not isinstance(raw, dict):
        raise InvalidCall([FieldError("(event)", "must be a JSON object")])
    if call_type is not None:
        raw = {**raw, "type": call_type}
    try:
        return _call_adapter.validate_python(raw)
    except ValidationError as error:
        errors = _field_errors(error)
        # pydantic skips the "someone" check when another field already failed; report both.
        nobody = _identifier(raw.get("userId")) is None and _identifier(raw.get("anonymousId")) is None
        if nobody and raw.get("type") != "alias" and all(e.field != "userId" for e in errors):
            errors.append(FieldError("userId", "userId or anonymousId is required"))
        raise InvalidCall(errors) from None


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def event_time(
    call: Call, *, received_at: datetime, batch_sent_at: datetime | None = None
) -> tuple[datetime, datetime | None, datetime | None]:
    """Segment's clock-skew rule: timestamp = receivedAt - (sentAt - timestamp).

    Returns (corrected timestamp, the client's own timestamp, sentAt).
    """
    client_time = _aware(call.timestamp or call.originalTimestamp)
    sent_at = _aware(call.sentAt) or _aware(batch_sent_at)
    if client_time is None:
        return received_at, None, sent_at
    if sent_at is None:
        return client_time, client_time, None
    return received_at - (sent_at - client_time), client_time, sent_at


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
