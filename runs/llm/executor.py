"""Call an OpenAI-compatible endpoint for many (item, voter) pairs with ``AsyncOpenAI``:
bounded concurrency, the shared rate limiter, retries with exponential backoff and jitter
that honour Retry-After, and schema validation of every answer. No Django here: the caller
turns results into rows.

Outcomes per pair: ``ok``; ``failed`` (invalid output or a non-retryable error after the
allowed attempts: stored with the raw text and the reason); ``pending`` (transient errors
such as 429, 5xx, timeouts or a connection failure used every attempt: nothing is stored and
the pair is tried again later, so an endpoint outage never turns into failed items).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import http.cookiejar
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import openai

from runs.llm.output import InvalidLLMOutput, parse_judgement
from runs.llm.ratelimit import RateLimiter
from touchstone.retry import backoff_seconds

T = TypeVar("T")
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


class _NoCookieJar(http.cookiejar.CookieJar):
    """LLM APIs set no cookies worth keeping, and httpx's cookie extraction re-parses every
    response's headers as an email message: a measurable share of each call's CPU."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one (loading the CA bundle) costs tens of
    milliseconds, and every chunk opens a client."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class EndpointConfig:
    key: str
    base_url: str
    api_key: str
    max_concurrency: int
    requests_per_minute: int
    tokens_per_minute: int
    timeout_seconds: float
    price_input: Decimal  # per million tokens
    price_cached_input: Decimal
    price_output: Decimal


@dataclass
class Work:
    item_id: int
    voter_id: int
    model: str
    messages: list[dict[str, Any]]
    temperature: float
    seed: int | None
    max_output_tokens: int
    reasoning_effort: str | None
    estimated_tokens: int


@dataclass
class CallRecord:
    attempt: int
    outcome: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class WorkResult:
    item_id: int
    voter_id: int
    status: str  # ok | failed | pending
    label: str = ""
    confidence: float | None = None
    rationale: str = ""
    violated_rule_ids: list[str] = field(default_factory=list)
    raw_response: str = ""
    error: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    simulated: bool = False

    def total(self, name: str) -> Any:
        return sum(getattr(c, name) for c in self.calls)


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` from synchronous code, also when this thread already runs a loop
    (an embedding host such as a notebook or a test browser): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def call_cost(endpoint: EndpointConfig, input_tokens: int, cached: int, output: int) -> Decimal:
    million = Decimal(1_000_000)
    return ((Decimal(input_tokens - cached) * endpoint.price_input + Decimal(cached) * endpoint.price_cached_input
             + Decimal(output) * endpoint.price_output) / million)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _transport_failure(exc: openai.APIConnectionError) -> tuple[str, str]:
    """("timeout" or "unreachable", reason) from the root cause: the aiohttp transport reports
    a refused connection as a connect timeout, which would send people looking in the wrong place."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TimeoutError):
            return "timeout", str(exc)
        if isinstance(cause, OSError):
            return "unreachable", str(cause) or str(exc)
        cause = cause.__cause__ or cause.__context__
    return ("timeout" if isinstance(exc, openai.APITimeoutError) else "unreachable"), str(exc)


async def _judge(client: openai.AsyncOpenAI, endpoint: EndpointConfig, work: Work, schema: dict[str, Any],
                 limiter: RateLimiter | None, semaphore: asyncio.Semaphore, limiter_gate: asyncio.Semaphore,
                 max_attempts: int, should_stop: Callable[[], bool]) -> WorkResult:
    result = WorkResult(work.item_id, work.voter_id, "pending")
    kwargs: dict[str, Any] = {
        "model": work.model, "messages": work.messages, "temperature": work.temperature,
        "max_tokens": work.max_output_tokens,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "judgement", "schema": schema, "strict": True}},
    }
    if work.seed is not None:
        kwargs["seed"] = work.seed
    if work.reasoning_effort:
        kwargs["reasoning_effort"] = work.reasoning_effort
    transient = False
    for attempt in range(1, max_attempts + 1):
        if should_stop():
            return result
        retry_after: float | None = None
        if limiter is not None:
            # Its own gate: at most max_concurrency limiter calls (and Redis connections) at
            # once, and the Redis round trip does not hold a request slot.
            async with limiter_gate:
                await limiter.acquire(work.estimated_tokens)
        # The slot bounds requests in flight only: parsing and validation happen after it is free.
        async with semaphore:
            started = time.monotonic()
            try:
                # The client's low-level post: the same auth, errors and timeouts as
                # chat.completions.create, without its per-call TypedDict transform of the
                # messages and schema, which costs milliseconds of CPU per request.
                raw = await client.post("/chat/completions", body=kwargs, cast_to=httpx.Response)
            except openai.RateLimitError as exc:
                transient, retry_after, outcome = True, _retry_after(exc), "rate_limited"
                result.error = f"429 rate limited: {exc.message}"
            except openai.APIConnectionError as exc:  # APITimeoutError included
                transient, (outcome, reason) = True, _transport_failure(exc)
                result.error = f"{outcome}: {reason}"
            except openai.APIStatusError as exc:
                outcome = f"http_{exc.status_code}"
                result.error = f"HTTP {exc.status_code}: {exc.message}"
                if exc.status_code >= 500 or exc.status_code in (408, 409):
                    transient, retry_after = True, _retry_after(exc)
                else:  # 4xx: the request itself is wrong; retrying cannot help
                    elapsed = int((time.monotonic() - started) * 1000)
                    result.calls.append(CallRecord(attempt, outcome, latency_ms=elapsed))
                    result.status = "failed"
                    return result
            else:
                outcome = "ok"
            latency = int((time.monotonic() - started) * 1000)
        if outcome == "ok":
            try:
                response = raw.json()
            except ValueError as exc:  # a 200 whose body is not JSON: a broken proxy or server
                transient, outcome = True, "bad_body"
                result.error = f"unreadable response body: {exc}"
            else:
                usage = response.get("usage") or {}
                tokens_in = int(usage.get("prompt_tokens") or 0)
                cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
                tokens_out = int(usage.get("completion_tokens") or 0)
                record = CallRecord(attempt, "ok", tokens_in, cached, tokens_out, latency,
                                    call_cost(endpoint, tokens_in, cached, tokens_out))
                result.simulated = raw.headers.get("x-touchstone-simulator") == "1" or \
                    response.get("system_fingerprint") == "touchstone-simulator"
                choices = response.get("choices") or [{}]
                message = choices[0].get("message") or {}
                finish_reason = choices[0].get("finish_reason")
                result.raw_response = message.get("content") or message.get("refusal") or ""
                try:
                    parsed = parse_judgement(message.get("content"), finish_reason=finish_reason,
                                             refusal=message.get("refusal"), schema=schema)
                except InvalidLLMOutput as exc:
                    record.outcome = "invalid_output"
                    result.calls.append(record)
                    result.error, transient = f"invalid output: {exc}", False
                    continue
                result.calls.append(record)
                result.status, result.error = "ok", ""
                result.label, result.confidence = parsed.label, parsed.confidence
                result.rationale, result.violated_rule_ids = parsed.rationale, parsed.violated_rule_ids
                return result
        result.calls.append(CallRecord(attempt, outcome, latency_ms=latency))
        if attempt < max_attempts:
            await asyncio.sleep(backoff_seconds(attempt, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS,
                                                retry_after=retry_after))
    # Out of attempts: invalid output is the model's failure; transient trouble is not.
    result.status = "pending" if transient else "failed"
    return result


async def execute(work: list[Work], *, endpoint: EndpointConfig, schema: dict[str, Any],
                  limiter: RateLimiter | None, max_attempts: int, should_stop: Callable[[], bool],
                  on_result: Callable[[WorkResult], None] | None = None) -> list[WorkResult]:
    """Judge every pair; at most ``endpoint.max_concurrency`` requests in flight. ``on_result``
    sees each result as it is done (it must not block: the loop waits for it)."""
    semaphore = asyncio.Semaphore(endpoint.max_concurrency)
    limiter_gate = asyncio.Semaphore(endpoint.max_concurrency)
    # aiohttp under the SDK (its documented faster transport) costs about a third less CPU
    # per call than httpcore, which is what decides throughput on a few cores.
    client = openai.AsyncOpenAI(
        base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0, timeout=endpoint.timeout_seconds,
        http_client=openai.DefaultAioHttpClient(
            limits=httpx.Limits(max_connections=endpoint.max_concurrency,
                                max_keepalive_connections=endpoint.max_concurrency),
            timeout=endpoint.timeout_seconds, verify=_tls_context(), cookies=_NoCookieJar()))
    try:
        async def one(item: Work) -> WorkResult:
            outcome = await _judge(client, endpoint, item, schema, limiter, semaphore, limiter_gate, max_attempts,
                                   should_stop)
            if on_result is not None:
                on_result(outcome)
            return outcome

        return list(await asyncio.gather(*(one(w) for w in work)))
    finally:
        await client.close()
