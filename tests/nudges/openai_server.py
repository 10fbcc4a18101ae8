"""A local OpenAI-compatible server for tests: POST /v1/chat/completions answered the way
OpenAI's API answers it (the body, headers and error shapes the official client parses), or with
the failure a test scripts.

    server.script(Answer(fields={"ui_component": "popup"}), RateLimited(), ServerError(), Hang(5))

Scripted behaviours are used one per request, in order; after them every request gets the
default (`Answer()`: a valid nudge built from the request's own JSON schema). `server.received`
keeps every request exactly as it arrived (raw bytes), for the PII canary checks.
"""

import contextlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

API_KEY = "sk-test-local-0123456789abcdef"
USAGE = (1200, 80)  # prompt and completion tokens of a default answer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def user_message(self) -> str:
        return next(message["content"] for message in self.json()["messages"] if message["role"] == "user")


@dataclass(frozen=True)
class Answer:
    """A 200 with a chat completion. `fields` override the generated nudge; `raw` replaces the
    message content whole (invalid JSON...); `refusal` answers a refusal instead."""

    fields: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    usage: tuple[int, int] | None = USAGE


@dataclass(frozen=True)
class Error:
    status: int
    message: str
    type: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def RateLimited(retry_after_ms: int = 20) -> Error:
    return Error(
        429,
        "Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM):"
        f" Limit 500, Used 500, Requested 1. Please try again in {retry_after_ms}ms.",
        "requests",
        "rate_limit_exceeded",
        headers={"retry-after-ms": str(retry_after_ms), "retry-after": "1"},
    )


def ServerError() -> Error:
    return Error(
        500, "The server had an error while processing your request. Sorry about that!", "server_error"
    )


@dataclass(frozen=True)
class Hang:
    """Answer nothing for `seconds` (past the client's timeout), then a default answer."""

    seconds: float


def _schema_problem(response_format: Any) -> str | None:
    """What OpenAI's API refuses in a strict json_schema response format, as it words it."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return "response_format must be of type json_schema"
    json_schema = response_format.get("json_schema") or {}
    name, schema = json_schema.get("name"), json_schema.get("schema")
    if not name or not isinstance(schema, dict):
        return "Missing required parameter: 'response_format.json_schema.name'."
    if json_schema.get("strict") is not True:
        return None
    if schema.get("additionalProperties") is not False:
        return f"Invalid schema for response_format '{name}': 'additionalProperties' is required to be false."
    properties = schema.get("properties") or {}
    if sorted(schema.get("required") or []) != sorted(properties):
        return (
            f"Invalid schema for response_format '{name}': 'required' is required to be supplied and to"
            " be an array including every key in properties."
        )
    for key, value in properties.items():
        if "enum" in value and not value["enum"]:
            return f"Invalid schema for response_format '{name}': enum of '{key}' must not be empty."
    return None


def _nudge_for(request: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A valid answer to the request's schema: the first allowed component and link."""
    properties = request["response_format"]["json_schema"]["schema"]["properties"]
    channel_without_subject = "Empty" in properties["subject"].get("description", "")
    nudge = {
        "subject": "" if channel_without_subject else "Your next step is ready",
        "body": "Hi {{ first_name }}, one step to go: connect your data and see your first report.",
        "cta_text": "Connect now",
        "ui_component": properties["ui_component"]["enum"][0],
        "deep_link": properties["deep_link"]["enum"][0],
    }
    return {**nudge, **overrides}


class OpenAIServer:
    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key
        self.received: list[Received] = []
        self._script: list[Any] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Also closes the kept-alive connections: a pooled client must not reach a stopped server."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def script(self, *behaviours: Any) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def _next(self) -> Any:
        with self._lock:
            return self._script.pop(0) if self._script else Answer()

    @property
    def completions(self) -> list[Received]:
        return [request for request in self.received if request.path == "/v1/chat/completions"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server._connections.append(self.connection)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays quiet; `received` has it all

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                server.received.append(
                    Received(
                        "POST", self.path, {name.lower(): value for name, value in self.headers.items()}, body
                    )
                )
                server._answer(self, body)

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if handler.path != "/v1/chat/completions":
            return self._send(
                handler, 404, _error(f"Invalid URL (POST {handler.path})", "invalid_request_error")
            )
        if handler.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._send(
                handler,
                401,
                _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
            )
        try:
            request = json.loads(body)
        except ValueError:
            return self._send(
                handler,
                400,
                _error("We could not parse the JSON body of your request.", "invalid_request_error"),
            )
        if (
            not request.get("model")
            or not isinstance(request.get("messages"), list)
            or not request["messages"]
        ):
            return self._send(
                handler, 400, _error("Missing required parameter: 'messages'.", "invalid_request_error")
            )
        if problem := _schema_problem(request.get("response_format")):
            return self._send(handler, 400, _error(problem, "invalid_request_error", "invalid_json_schema"))
        behaviour = self._next()
        if isinstance(behaviour, Hang):
            if self._stopping.wait(behaviour.seconds):
                return None
            behaviour = Answer()
        if isinstance(behaviour, Error):
            return self._send(
                handler,
                behaviour.status,
                _error(behaviour.message, behaviour.type, behaviour.code),
                behaviour.headers,
            )
        return self._send(handler, 200, _completion(request, behaviour))

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
            handler.send_header("openai-version", "2020-10-01")
            handler.send_header("openai-processing-ms", "312")
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer


def _error(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _completion(request: dict[str, Any], answer: Answer) -> dict[str, Any]:
    if answer.refusal is not None:
        content, refusal = None, answer.refusal
    elif answer.raw is not None:
        content, refusal = answer.raw, None
    else:
        content, refusal = json.dumps(_nudge_for(request, answer.fields)), None
    payload: dict[str, Any] = {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{request['model']}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "service_tier": "default",
        "system_fingerprint": "fp_0123456789",
    }
    if answer.usage is not None:
        prompt_tokens, completion_tokens = answer.usage
        payload["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    return payload


@pytest.fixture
def openai_server():
    server = OpenAIServer().start()
    yield server
    server.stop()
