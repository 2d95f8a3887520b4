"""The OpenAI Batch API executor's boundary: build the request file, upload it, create, poll,
cancel and download batches, and read results back into WorkResults.

Large cheap runs: the provider answers within its completion window (the simulator in
seconds) at a discount (``BATCH_PRICE_FACTOR`` of the per-token prices, OpenAI's 50 %).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai

from runs.llm.executor import CallRecord, EndpointConfig, Work, WorkResult, call_cost
from runs.llm.output import InvalidLLMOutput, parse_judgement

BATCH_ENDPOINT = "/v1/chat/completions"
BATCH_PRICE_FACTOR = Decimal("0.5")
TERMINAL = ("completed", "failed", "expired", "cancelled")


def custom_id(item_id: int, voter_id: int) -> str:
    return f"item-{item_id}-voter-{voter_id}"


def parse_custom_id(value: str) -> tuple[int, int]:
    _, item_id, _, voter_id = value.split("-")
    return int(item_id), int(voter_id)


def request_body(work: Work, schema: dict[str, Any]) -> dict[str, Any]:
    """The same body the real-time executor posts, so both executors judge alike."""
    body: dict[str, Any] = {
        "model": work.model, "messages": work.messages, "temperature": work.temperature,
        "max_tokens": work.max_output_tokens,
        "response_format": {"type": "json_schema", "json_schema": {"name": "judgement", "schema": schema,
                                                                   "strict": True}},
    }
    if work.seed is not None:
        body["seed"] = work.seed
    if work.reasoning_effort:
        body["reasoning_effort"] = work.reasoning_effort
    return body


def batch_file(works: list[Work], schema: dict[str, Any]) -> bytes:
    lines = [json.dumps({"custom_id": custom_id(w.item_id, w.voter_id), "method": "POST", "url": BATCH_ENDPOINT,
                         "body": request_body(w, schema)}, ensure_ascii=False) for w in works]
    return ("\n".join(lines) + "\n").encode()


def _client(endpoint: EndpointConfig) -> openai.OpenAI:
    # The SDK retries connection errors, 429 and 5xx with backoff; each call has a timeout.
    return openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=3,
                         timeout=endpoint.timeout_seconds)


@dataclass(frozen=True)
class RemoteBatch:
    id: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    errors: str


def batch_submit(endpoint: EndpointConfig, data: bytes, metadata: dict[str, str]) -> tuple[str, RemoteBatch]:
    """Upload the request file and create the batch; returns (input file id, batch)."""
    with _client(endpoint) as client:
        uploaded = client.files.create(file=("touchstone-batch.jsonl", data), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=BATCH_ENDPOINT,
                                      completion_window="24h", metadata=metadata)
    return uploaded.id, _remote(batch)


def batch_retrieve(endpoint: EndpointConfig, batch_id: str) -> RemoteBatch:
    with _client(endpoint) as client:
        return _remote(client.batches.retrieve(batch_id))


def batch_cancel(endpoint: EndpointConfig, batch_id: str) -> RemoteBatch:
    with _client(endpoint) as client:
        return _remote(client.batches.cancel(batch_id))


def file_text(endpoint: EndpointConfig, file_id: str) -> str:
    with _client(endpoint) as client:
        return client.files.content(file_id).text


def _remote(batch: Any) -> RemoteBatch:
    errors = ""
    if getattr(batch, "errors", None) and batch.errors.data:
        errors = "; ".join(f"{e.code}: {e.message}" for e in batch.errors.data)
    return RemoteBatch(batch.id, batch.status, batch.output_file_id, batch.error_file_id, errors)


def read_results(text: str, *, endpoint: EndpointConfig, schema: dict[str, Any]) -> list[WorkResult]:
    """Output or error file lines → one WorkResult each. A non-200 response or an invalid
    answer fails that pair with the reason; the batch's tokens are priced at the discount."""
    results = []
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        item_id, voter_id = parse_custom_id(record["custom_id"])
        result = WorkResult(item_id, voter_id, "failed")
        response = record.get("response") or {}
        body = response.get("body") or {}
        if record.get("error") or response.get("status_code") != 200:
            error = record.get("error") or body.get("error") or {}
            result.error = f"batch request failed: HTTP {response.get('status_code')}: {error.get('message', error)}"
            result.calls.append(CallRecord(1, f"http_{response.get('status_code')}"))
            results.append(result)
            continue
        usage = body.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
        record_call = CallRecord(1, "ok", tokens_in, cached, tokens_out, 0,
                                 call_cost(endpoint, tokens_in, cached, tokens_out) * BATCH_PRICE_FACTOR)
        result.simulated = body.get("system_fingerprint") == "touchstone-simulator"
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        result.raw_response = message.get("content") or message.get("refusal") or ""
        try:
            parsed = parse_judgement(message.get("content"), finish_reason=choice.get("finish_reason"),
                                     refusal=message.get("refusal"), schema=schema)
        except InvalidLLMOutput as exc:
            record_call.outcome = "invalid_output"
            result.error = f"invalid output: {exc}"
        else:
            result.status = "ok"
            result.label, result.confidence = parsed.label, parsed.confidence
            result.rationale, result.violated_rule_ids = parsed.rationale, parsed.violated_rule_ids
        result.calls.append(record_call)
        results.append(result)
    return results
