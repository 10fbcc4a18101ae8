"""Answers from the LLM provider: one chat completion through the official `openai` client, and
the cache of answers already checked.

The client retries 429s (honouring Retry-After), 5xx and timeouts itself, LLM_MAX_RETRIES times,
each attempt bounded by LLM_TIMEOUT_SECONDS; every 429 it sees is counted in
llm_rate_limit_hits_total. `complete` returns the answer's text with its usage and cost, or
raises `CallFailed` with a stable code: what the caller records as its fallback reason.

The cache is Django's (Redis in production). Its outage costs the cache, never the nudge: a
failed read or write skips it for CACHE_RETRY_AFTER_SECONDS rather than making every call wait
out the socket timeout.
"""

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

LLM_REQUEST_LATENCY = Histogram(
    "llm_request_latency_seconds",
    "Time of one chat completion request to the LLM provider, client retries included.",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 30),
)
LLM_RATE_LIMIT_HITS = Counter(
    "llm_rate_limit_hits", "429 answers from the LLM provider, each of the client's retries counted."
)

TIMEOUT = "llm_timeout"
RATE_LIMITED = "llm_rate_limited"
API_ERROR = "llm_api_error"
REFUSED = "llm_refused"
TRUNCATED = "invalid_json"  # an answer cut at the token limit is never whole JSON

CACHE_RETRY_AFTER_SECONDS = 30.0
_cache_down_until = 0.0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0


@dataclass(frozen=True)
class Completion:
    content: str
    usage: Usage


class CallFailed(Exception):
    """No usable answer. `usage` says what the attempt cost (a refusal is paid for too)."""

    def __init__(self, code: str, message: str, usage: Usage):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.usage = usage


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def max_completion_tokens() -> int:
    return int(_setting("LLM_MAX_COMPLETION_TOKENS", 400))


def cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    prompt_price = Decimal(str(_setting("LLM_PRICE_PER_1K_PROMPT_TOKENS_USD", "0.00015")))
    completion_price = Decimal(str(_setting("LLM_PRICE_PER_1K_COMPLETION_TOKENS_USD", "0.0006")))
    total = (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000
    return total.quantize(Decimal("0.000001"))


def estimated_cost(messages: list[dict[str, str]], schema: dict[str, Any]) -> Decimal:
    """For the budget check before the call: about four characters a token, and the longest
    answer allowed."""
    characters = sum(len(message["content"]) for message in messages) + len(json.dumps(schema))
    return cost(math.ceil(characters / 4), max_completion_tokens())


def _count_rate_limit(response: Any) -> None:
    if response.status_code == 429:
        LLM_RATE_LIMIT_HITS.inc()
        retry_after = response.headers.get("retry-after-ms") or response.headers.get("retry-after")
        logger.warning("nudges.llm.rate_limited", extra={"retry_after": retry_after})


@lru_cache(maxsize=8)
def _client(base_url: str, api_key: str, timeout: float, max_retries: int) -> openai.OpenAI:
    """One client (and connection pool) per endpoint and configuration, for the process."""
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=max_retries,
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [_count_rate_limit]}),
    )


def complete(
    *, endpoint: str, model: str, messages: list[dict[str, str]], schema: dict[str, Any], estimate: Decimal
) -> Completion:
    """The text of the first choice, answering under the strict JSON `schema`."""
    timeout = float(_setting("LLM_TIMEOUT_SECONDS", 3))
    retries = int(_setting("LLM_MAX_RETRIES", 2))
    client = _client(endpoint, _setting("OPENAI_API_KEY", ""), timeout, retries)
    started = time.perf_counter()
    outcome, failure = "error", None
    try:
        response = client.chat.completions.create(
            model=model,
            messages=messages,
            response_format={"type": "json_schema", "json_schema": schema},
            max_completion_tokens=max_completion_tokens(),
        )
        outcome = "ok"
    except openai.APITimeoutError:
        outcome, failure = "timeout", (TIMEOUT, f"no answer within {timeout:g} s ({retries} retries)")
    except openai.RateLimitError:
        outcome, failure = "rate_limited", (RATE_LIMITED, f"429 from the provider after {retries} retries")
    except openai.APIStatusError as error:
        failure = (API_ERROR, f"HTTP {error.status_code} from the provider")
    except openai.APIConnectionError:
        failure = (API_ERROR, "the provider could not be reached")
    except openai.OpenAIError as error:
        failure = (API_ERROR, type(error).__name__)
    elapsed = time.perf_counter() - started
    LLM_REQUEST_LATENCY.labels(outcome=outcome).observe(elapsed)
    latency_ms = round(elapsed * 1000)
    if failure is not None:
        raise CallFailed(*failure, Usage(latency_ms=latency_ms))
    return _answer(response, latency_ms, estimate)


def _answer(response: Any, latency_ms: int, estimate: Decimal) -> Completion:
    reported = getattr(response, "usage", None)
    if reported is not None and reported.prompt_tokens is not None:
        prompt_tokens, completion_tokens = reported.prompt_tokens or 0, reported.completion_tokens or 0
        usage = Usage(prompt_tokens, completion_tokens, cost(prompt_tokens, completion_tokens), latency_ms)
    else:
        usage = Usage(cost_usd=estimate, latency_ms=latency_ms)  # no usage reported: charged the estimate
    choices = getattr(response, "choices", None)
    if not choices or getattr(choices[0], "message", None) is None:
        raise CallFailed(API_ERROR, "the answer has no message", usage)
    choice = choices[0]
    if choice.message.refusal:
        raise CallFailed(REFUSED, "the model refused to answer", usage)
    if choice.finish_reason == "length":
        raise CallFailed(TRUNCATED, "the answer was cut at the completion token limit", usage)
    return Completion(content=choice.message.content or "", usage=usage)


# --- The cache -------------------------------------------------------------------------------------


def cache_key(*, template_version_id: int, material: dict[str, Any]) -> str:
    """By template version and a SHA-256 of everything the answer depends on (redacted)."""
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"nudges:personalise:{template_version_id}:{digest}"


def _cache_failed(operation: str, error: Exception) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + CACHE_RETRY_AFTER_SECONDS
    logger.warning(
        "nudges.llm.cache_unavailable", extra={"operation": operation, "error_type": type(error).__name__}
    )


def cached(key: str) -> str | None:
    if time.monotonic() < _cache_down_until:
        return None
    try:
        value = cache.get(key)
    except Exception as error:
        _cache_failed("get", error)
        return None
    return value if isinstance(value, str) else None


def remember(key: str, content: str) -> None:
    """Only answers that passed every check are remembered (they are checked again when used)."""
    if time.monotonic() < _cache_down_until:
        return
    try:
        cache.set(key, content, timeout=int(_setting("LLM_CACHE_SECONDS", 24 * 3600)))
    except Exception as error:
        _cache_failed("set", error)
