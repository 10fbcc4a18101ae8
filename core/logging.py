"""Structured logs: one JSON object a line, with the record's `extra` fields as keys; and no log
line names an end user by their user id.

User ids are the customer's own identifiers, often e-mail addresses, and they sit in request
paths (`/api/v1/users/<user id>/...`) that uvicorn's access log, Django's 4xx warnings and
tracebacks print. A log outlives an erasure (guardrails.gdpr.erasure): its lines would still name the
erased person. So records are rewritten before a handler sees them (`UserIdFilter`: on the
console handler and Django's request logger by settings.LOGGING, on the server's loggers by
`redact_server_logs`): the user id becomes a keyed hash of it (`user_id_digest`), stable for as
long as SECRET_KEY is, so an operator can still follow one person's requests through the logs,
or find them from a user id they are given (`user_id_digest(user_id)` in `manage.py shell`),
while the log itself does not say who they are. End-user tokens in query strings (the progress
websocket's `?token=`) carry the user id too, signed but readable: they are replaced whole.
"""

import logging
import re
from typing import Any
from urllib.parse import unquote

import orjson
from django.utils.crypto import salted_hmac

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

USER_SCOPED_PREFIX = "/api/v1/users/"
_DIGEST_SALT = "core.logging.user_id"
_DIGEST_LENGTH = 16
"""Hex digits kept: 64 bits, enough that two people of one log never share a digest."""

# In free text (an access-log line) a user id ends where a path segment or the line's quoting
# does; in a request path given alone (Django's "Not Found: %s"), only at the next slash. A digest
# already in place is left alone, so that redacting twice changes nothing.
_DIGESTED = r"""(?!\[user:[0-9a-f]{16}\](?:[/?#\s"'<>]|$))"""  # 16: _DIGEST_LENGTH
_USER_ID_IN_TEXT = re.compile(re.escape(USER_SCOPED_PREFIX) + _DIGESTED + r"""([^/?#\s"'<>]+)""")
_USER_ID_IN_PATH = re.compile(re.escape(USER_SCOPED_PREFIX) + _DIGESTED + r"([^/?#]+)")
_TOKEN_PARAMETER = re.compile(r"""([?&]token=)[^&#\s"'<>]+""")
REDACTED_VALUE = "[redacted]"


def user_id_digest(user_id: str) -> str:
    """The user id as the logs show it: an HMAC keyed from SECRET_KEY, as `[user:<16 hex>]`.

    The id is hashed percent-decoded, so uvicorn's quoted path and Django's decoded one give the
    same digest for one person."""
    digest = salted_hmac(_DIGEST_SALT, unquote(user_id), algorithm="sha256").hexdigest()
    return f"[user:{digest[:_DIGEST_LENGTH]}]"


def _digest_match(match: re.Match) -> str:
    return USER_SCOPED_PREFIX + user_id_digest(match.group(1))


def redacted(text: str) -> str:
    """`text` with every user id of a user-scoped path replaced by its digest, and end-user tokens
    of query strings removed."""
    if USER_SCOPED_PREFIX in text:
        pattern = _USER_ID_IN_PATH if text.startswith("/") else _USER_ID_IN_TEXT
        text = pattern.sub(_digest_match, text)
    if "token=" in text:
        text = _TOKEN_PARAMETER.sub(r"\g<1>" + REDACTED_VALUE, text)
    return text


def _redacted_argument(value: Any) -> Any:
    return redacted(value) if isinstance(value, str) else value


class UserIdFilter(logging.Filter):
    """Rewrites the record's message and arguments with `redacted`; never drops a record.

    Installed on a logger, it runs before any of that logger's handlers (Sentry's logging
    integration included); on a handler, it catches records propagated from any logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_argument(value) for value in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted_argument(value) for key, value in record.args.items()}
        return True


SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error", "django.server")
"""Loggers of the web server that print request paths: uvicorn's access lines and its websocket
lines ("WebSocket <path>?token=..." on uvicorn.error), runserver's request lines."""


def redact_server_logs() -> None:
    """Put `UserIdFilter` on the server's loggers where they stand. The server configures them
    before it loads Django (uvicorn's handlers and format; none at all under --no-access-log), and
    settings.LOGGING cannot add a filter to a logger without replacing its handlers. Called once
    the application is loaded (config.asgi); safe to call again."""
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        if not any(isinstance(installed, UserIdFilter) for installed in server_logger.filters):
            server_logger.addFilter(UserIdFilter())


def _json_value(value: Any) -> Any:
    # Objects orjson cannot write (Django's 4xx records carry the request, whose repr holds the
    # path) are written as their text, redacted like the message.
    return redacted(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "event": redacted(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES:
                payload[key] = redacted(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exception"] = redacted(self.formatException(record.exc_info))
        return orjson.dumps(payload, default=_json_value).decode()
