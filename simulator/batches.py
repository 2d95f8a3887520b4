"""The simulator's Files and Batch API: upload a JSONL of requests, create a batch, poll it,
download the results. A batch takes ``batch_seconds`` (validating → in_progress → completed)
and then answers every request as the chat-completions route would, faults included."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

Completer = Callable[[dict[str, Any], str, list[Any]], tuple[int, dict[str, Any], dict[str, str]]]
BATCH_ENDPOINT = "/v1/chat/completions"


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart/form-data body: name → (filename, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ValueError("expected multipart/form-data")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class BatchStore:
    def __init__(self, batch_seconds: float) -> None:
        self.batch_seconds = batch_seconds
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    def create_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        entry = {"id": f"file-sim-{uuid.uuid4().hex[:24]}", "object": "file", "bytes": len(data),
                 "created_at": int(time.time()), "filename": filename, "purpose": purpose, "status": "processed"}
        with self.lock:
            self.files[entry["id"]] = entry
            self.contents[entry["id"]] = data
        return entry

    def file(self, file_id: str) -> dict[str, Any] | None:
        return self.files.get(file_id)

    def content(self, file_id: str) -> bytes | None:
        return self.contents.get(file_id)

    def create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        input_file_id = body.get("input_file_id")
        if input_file_id not in self.files:
            return 400, {"message": f"input_file_id {input_file_id!r} does not exist", "code": "invalid_file"}
        if body.get("endpoint") != BATCH_ENDPOINT:
            return 400, {"message": f"endpoint must be {BATCH_ENDPOINT}", "code": "invalid_endpoint"}
        now = int(time.time())
        batch = {
            "id": f"batch_sim_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": BATCH_ENDPOINT,
            "errors": None, "input_file_id": input_file_id,
            "completion_window": body.get("completion_window", "24h"), "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "_started": time.monotonic(),
        }
        with self.lock:
            self.batches[batch["id"]] = batch
        return 200, self.public(batch)

    @staticmethod
    def public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def get_batch(self, batch_id: str, complete: Completer) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            elapsed = time.monotonic() - batch["_started"]
            if batch["status"] == "validating" and elapsed >= 0.1 * self.batch_seconds:
                batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
            if batch["status"] == "in_progress" and elapsed >= self.batch_seconds:
                self._run(batch, complete)
            return self.public(batch)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch["status"] in ("validating", "in_progress"):
                batch["status"], batch["cancelled_at"] = "cancelled", int(time.time())
            return self.public(batch)

    def _run(self, batch: dict[str, Any], complete: Completer) -> None:
        """Runs under the lock: answer every request line, write the output and error files."""
        outputs, errors, seen = [], [], set()
        lines = self.contents[batch["input_file_id"]].decode().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                custom_id = str(request["custom_id"])
                if custom_id in seen:
                    raise ValueError(f"duplicate custom_id {custom_id!r}")
                seen.add(custom_id)
                if request.get("url") != BATCH_ENDPOINT or request.get("method") != "POST":
                    raise ValueError(f"url must be {BATCH_ENDPOINT} with method POST")
                body = request["body"]
                model, messages = str(body["model"]), list(body["messages"])
            except (ValueError, KeyError, TypeError) as exc:
                batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [
                    {"code": "invalid_request", "message": f"line {number}: {exc} (touchstone simulator)",
                     "param": None, "line": number}]})
                return
            status, response, _ = complete(body, model, messages)
            record = {"id": f"batch_req_sim_{uuid.uuid4().hex[:20]}", "custom_id": custom_id,
                      "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": response},
                      "error": None}
            (outputs if status == 200 else errors).append(json.dumps(record))
        now = int(time.time())
        for kind, records in (("output_file_id", outputs), ("error_file_id", errors)):
            if records:
                data = ("\n".join(records) + "\n").encode()
                entry = {"id": f"file-sim-{uuid.uuid4().hex[:24]}", "object": "file", "bytes": len(data),
                         "created_at": now, "filename": f"{batch['id']}_{kind[:-8]}.jsonl",
                         "purpose": "batch_output", "status": "processed"}
                self.files[entry["id"]] = entry
                self.contents[entry["id"]] = data
                batch[kind] = entry["id"]
        batch.update(status="completed", finalizing_at=now, completed_at=now, request_counts={
            "total": len(outputs) + len(errors), "completed": len(outputs), "failed": len(errors)})
