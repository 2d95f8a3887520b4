"""The simulator's HTTP face: an OpenAI-compatible subset on a threading HTTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulator import SIMULATOR_FINGERPRINT
from simulator.batches import BatchStore, parse_multipart
from simulator.engine import (
    SimulatorConfig,
    choose_fault,
    classify,
    estimate_tokens,
    latency_seconds,
    message_text,
    schema_of,
    text_sha256,
)

CACHE_MIN_TOKENS = 1024  # as OpenAI: prefixes of 1,024+ tokens are cached in 128-token steps
CACHE_STEP = 128


class SimulatorState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.seen_prefixes: set[str] = set()
        self.requests = 0

    def next_attempt(self, content_id: str) -> int:
        with self.lock:
            self.requests += 1
            attempt = self.attempts.get(content_id, 0) + 1
            self.attempts[content_id] = attempt
            return attempt

    def cached_tokens(self, model: str, system_text: str) -> int:
        tokens = estimate_tokens(system_text)
        if tokens < CACHE_MIN_TOKENS:
            return 0
        key = f"{model}\x1f{text_sha256(system_text)}"
        with self.lock:
            seen = key in self.seen_prefixes
            self.seen_prefixes.add(key)
        return (tokens // CACHE_STEP) * CACHE_STEP if seen else 0


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": f"{message} (touchstone simulator)", "type": kind, "code": code,
                      "param": None}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms stalls
    server: SimulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Touchstone-Simulator", "1")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Touchstone-Simulator", "1")
        self.end_headers()
        self.wfile.write(data)

    def _completer(self):  # noqa: ANN202 - a closure over this server's state
        state = self.server.state
        return lambda body, model, messages: complete(state, body, model, messages, sleep=False)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        state = self.server.state
        batches = self.server.batches
        parts = self.path.rstrip("/").split("/")
        if self.path.startswith("/v1/files/") and len(parts) in (4, 5):
            entry = batches.file(parts[3])
            if entry is None:
                self._send(404, _error("invalid_request_error", f"no file {parts[3]}", "not_found"))
            elif len(parts) == 5 and parts[4] == "content":
                self._send_bytes(batches.content(parts[3]) or b"")
            else:
                self._send(200, entry)
            return
        if self.path.startswith("/v1/batches/") and len(parts) == 4:
            batch = batches.get_batch(parts[3], self._completer())
            if batch is None:
                self._send(404, _error("invalid_request_error", f"no batch {parts[3]}", "not_found"))
            else:
                self._send(200, batch)
            return
        if self.path == "/health":
            self._send(200, {"status": "ok", "simulator": True, "requests": state.requests})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": SIMULATOR_FINGERPRINT}
                for name in sorted(state.config.models)]})
        else:
            self._send(404, _error("invalid_request_error", f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        received = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.rstrip("/")
        if path in ("/v1/files", "/v1/batches") or (path.startswith("/v1/batches/") and path.endswith("/cancel")):
            self._files_and_batches(path, raw)
            return
        if path != "/v1/chat/completions":
            self._send(404, _error("invalid_request_error", f"no route {self.path}", "not_found"))
            return
        try:
            request = json.loads(raw)
            model = str(request["model"])
            messages = list(request["messages"])
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, _error("invalid_request_error", f"bad request body: {exc}"))
            return
        self._chat_completion(request, model, messages, received)

    def _files_and_batches(self, path: str, raw: bytes) -> None:
        batches = self.server.batches
        try:
            if path == "/v1/files":
                fields = parse_multipart(self.headers.get("Content-Type", ""), raw)
                filename, data = fields["file"]
                purpose = fields.get("purpose", (None, b"batch"))[1].decode()
                self._send(200, batches.create_file(filename or "upload.jsonl", purpose, data))
            elif path == "/v1/batches":
                status, body = batches.create_batch(json.loads(raw))
                self._send(status, body if status == 200 else _error("invalid_request_error", body["message"],
                                                                      body["code"]))
            else:
                batch = batches.cancel(path.split("/")[3])
                if batch is None:
                    self._send(404, _error("invalid_request_error", "no such batch", "not_found"))
                else:
                    self._send(200, batch)
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, _error("invalid_request_error", f"bad request: {exc}"))

    def _chat_completion(self, request: dict[str, Any], model: str, messages: list[Any], received: float) -> None:
        status, body, headers = complete(self.server.state, request, model, messages,
                                         forced_fault=self.headers.get("X-Sim-Fault"), sleep=True, received=received)
        self._send(status, body, headers)


def complete(state: SimulatorState, request: dict[str, Any], model: str, messages: list[Any], *,
             forced_fault: str | None = None, sleep: bool = True,
             received: float | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One chat completion: (HTTP status, body, headers). Shared by the HTTP route and batches
    (which do not wait out the latency: a batch's time is its own). The latency is the time
    from ``received`` to the answer, the simulator's own work included."""
    received = time.monotonic() if received is None else received
    config = state.config
    if config.profile(model) is None:
        return 404, _error("invalid_request_error", f"The model {model!r} does not exist; simulated models: "
                                                    f"{', '.join(sorted(config.models))}", "model_not_found"), {}
    system_text = message_text(messages, "system")
    user_text = message_text(messages, "user")
    content_id = text_sha256(f"{model}\n{request.get('seed')}\n{system_text}\n{user_text}")
    attempt = state.next_attempt(content_id)
    fault = choose_fault(config, content_id=content_id, attempt=attempt, forced=forced_fault)
    answer = _answer(state, request, model, messages, system_text, user_text, content_id, attempt, fault, sleep)
    if sleep:
        time.sleep(max(0.0, received + latency_seconds(config, content_id=content_id, attempt=attempt)
                       - time.monotonic()))
        if fault == "timeout":
            time.sleep(config.timeout_seconds)
    return answer


def _answer(state: SimulatorState, request: dict[str, Any], model: str, messages: list[Any], system_text: str,
            user_text: str, content_id: str, attempt: int, fault: str | None,
            sleep: bool) -> tuple[int, dict[str, Any], dict[str, str]]:
    config = state.config
    if fault == "429":
        return (429, _error("rate_limit_error", "Rate limit reached", "rate_limit_exceeded"),
                {"Retry-After": f"{config.retry_after_seconds:g}"})
    if fault == "500":
        return 500, _error("server_error", "The server had an error"), {}
    if fault == "timeout" and not sleep:
        return 504, _error("server_error", "The request timed out"), {}

    decision = classify(config, model=model, seed=request.get("seed"), messages=messages,
                        schema=schema_of(request.get("response_format")))
    content: str | None = json.dumps({
        "label": decision.label, "confidence": decision.confidence,
        "rationale": decision.rationale, "violated_rule_ids": decision.violated_rule_ids})
    refusal = None
    finish_reason = "stop"
    if fault == "malformed":
        content = content[: len(content) // 2].replace('"', "'") + " <not json>"
    elif fault == "truncated":
        content, finish_reason = content[: len(content) // 2], "length"
    elif fault == "refusal":
        content, refusal = None, "[simulated] I can't help with classifying this content."

    prompt_tokens = estimate_tokens(system_text) + estimate_tokens(user_text)
    completion_tokens = estimate_tokens(content or refusal or "")
    return 200, {
        "id": f"chatcmpl-sim-{content_id[:24]}-{attempt}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SIMULATOR_FINGERPRINT,
        "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": state.cached_tokens(model, system_text)},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }, {}


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], config: SimulatorConfig, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.state = SimulatorState(config)
        self.batches = BatchStore(config.batch_seconds)
        self.verbose = verbose


def serve_in_thread(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
                    ) -> tuple[SimulatorHTTPServer, threading.Thread]:
    """Start a server on a background thread (tests); ``server.server_address`` has the port."""
    server = SimulatorHTTPServer((host, port), config)
    thread = threading.Thread(target=server.serve_forever, name="llm-simulator", daemon=True)
    thread.start()
    return server, thread
