"""The simulator's decisions: pure and deterministic given (model, seed, request content).

Classification
--------------
The label set and rule ids come from the request's ``response_format`` JSON Schema (the
``label`` enum), so the simulator follows whatever taxonomy the prompt declares.

- With an answer key (JSONL lines ``{"text": ..., "label": ...}`` or ``{"sha256": ...,
  "label": ...}``, sha256 of the whitespace-normalised text): if a block of the user
  message matches a key entry, the simulator draws a confidence ``c`` around the model's
  accuracy ``a`` (uniform on ``[a - s, a + s]``, clipped to ``[0.5, 0.99]``) and answers the
  key's label with probability ``c``, another label otherwise. So P(correct | c) = c: its
  confidence is calibrated, and its accuracy is ``a`` on average.
- Without a match, the documented rule: if the text contains a word from a small lexicon of
  abusive terms (``ABUSE_LEXICON``), the answer is the first violating-looking label (the
  first label whose key is not in ``SAFE_KEYS``); otherwise the first label in ``SAFE_KEYS``
  order, else the first label. Confidence is 0.9 on a lexicon hit, 0.75 otherwise.

Every random draw is ``sha256(model, seed, content, purpose)`` mapped to [0, 1).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAULT_KINDS = ("429", "500", "timeout", "malformed", "refusal", "truncated")
SAFE_KEYS = ("safe", "not_harassment", "not_misinformation", "not_abusive", "none", "ok",
             "benign", "not_violating", "non_violating")
ABUSE_LEXICON = frozenset("""
idiot stupid dumb moron useless shut hate kill die bitch slut whore fuck fucking fucker
cunt bastard ugly loser retard retarded pathetic worthless disgusting sexy naked nude
suck sucks trash garbage scum freak creep pervert
""".split())
WORD_RE = re.compile(r"[a-z']+")


def draw(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def normalise(text: str) -> str:
    return " ".join(text.split())


def text_sha256(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


@dataclass(frozen=True)
class ModelProfile:
    name: str
    accuracy: float = 0.85
    spread: float = 0.1


@dataclass
class SimulatorConfig:
    models: dict[str, ModelProfile] = field(default_factory=lambda: {
        "sim-strong": ModelProfile("sim-strong", 0.92), "sim-medium": ModelProfile("sim-medium", 0.85),
        "sim-weak": ModelProfile("sim-weak", 0.72)})
    answer_key: dict[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    retry_after_seconds: float = 1.0
    timeout_seconds: float = 30.0
    batch_seconds: float = 2.0  # how long a Batch API batch takes to complete

    def profile(self, model: str) -> ModelProfile | None:
        if model in self.models:
            return self.models[model]
        return None


def parse_models(specs: Iterable[str]) -> dict[str, ModelProfile]:
    """``sim-name:0.9`` or ``sim-name:0.9:0.05`` (accuracy, confidence spread)."""
    models = {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        if not name.startswith("sim-"):
            raise ValueError(f"simulated model ids must start with 'sim-': {name!r}")
        numbers = [float(x) for x in rest.split(":") if x] if rest else []
        accuracy = numbers[0] if numbers else 0.85
        spread = numbers[1] if len(numbers) > 1 else 0.1
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"{spec}: accuracy must be within 0..1")
        models[name] = ModelProfile(name, accuracy, spread)
    return models


def load_answer_key(path: Path) -> dict[str, str]:
    key: dict[str, str] = {}
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                digest = entry.get("sha256") or text_sha256(entry["text"])
                key[digest] = str(entry["label"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected {{'text' or 'sha256', 'label'}}: {exc}") from exc
    return key


def message_text(messages: Sequence[Mapping[str, Any]], role: str) -> str:
    chunks = []
    for message in messages:
        if message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            chunks.append(content)
        elif isinstance(content, list):
            chunks.extend(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return "\n\n".join(chunks)


def candidate_blocks(user_text: str) -> list[str]:
    """Pieces of the user message that may match an answer key entry, most specific first."""
    blocks = [m.group(2) for m in re.finditer(r"<([a-z_]+)>\n(.*?)\n</\1>", user_text, re.S)]
    target = re.search(r"Target: <([a-z_]+)>", user_text)
    if target:
        tagged = re.search(rf"<{target.group(1)}>\n(.*?)\n</{target.group(1)}>", user_text, re.S)
        if tagged:
            blocks.insert(0, tagged.group(1))
    return [*blocks, user_text]


@dataclass(frozen=True)
class Decision:
    label: str
    confidence: float
    rationale: str
    violated_rule_ids: list[str]


def schema_of(response_format: Mapping[str, Any] | None) -> dict[str, Any]:
    if not response_format or response_format.get("type") != "json_schema":
        return {}
    return dict(response_format.get("json_schema", {}).get("schema", {}))


def classify(config: SimulatorConfig, *, model: str, seed: int | None,
             messages: Sequence[Mapping[str, Any]], schema: Mapping[str, Any]) -> Decision:
    props = schema.get("properties", {})
    labels: list[str] = list(props.get("label", {}).get("enum", [])) or ["safe", "unsafe"]
    rule_ids: list[str] = list(props.get("violated_rule_ids", {}).get("items", {}).get("enum", []))
    profile = config.profile(model) or ModelProfile(model)
    user_text = message_text(messages, "user")
    content_id = text_sha256(message_text(messages, "system") + "\n" + user_text)

    key_label = next((config.answer_key[text_sha256(b)] for b in candidate_blocks(user_text)
                      if text_sha256(b) in config.answer_key), None)
    if key_label is not None and key_label in labels:
        low, high = profile.accuracy - profile.spread, profile.accuracy + profile.spread
        confidence = min(0.99, max(0.5, low + (high - low) * draw(model, seed, content_id, "confidence")))
        if draw(model, seed, content_id, "correct") < confidence or len(labels) == 1:
            label, how = key_label, "matches the reference"
        else:
            others = [lb for lb in labels if lb != key_label]
            label = others[int(draw(model, seed, content_id, "wrong") * len(others))]
            how = "disagrees with the reference"
        source = f"answer key ({how})"
    else:
        words = set(WORD_RE.findall(user_text.lower()))
        hit = sorted(words & ABUSE_LEXICON)
        safe = next((k for k in SAFE_KEYS if k in labels), labels[0])
        violating = [lb for lb in labels if lb not in SAFE_KEYS]
        if hit and violating:
            label, confidence = violating[0], 0.9
            source = f"lexicon rule (matched: {', '.join(hit[:3])})"
        else:
            label, confidence = safe, 0.75
            source = "lexicon rule (no match)"
    # The schema does not say which rules belong to which label: cite one rule at random.
    violated = [] if label in SAFE_KEYS or not rule_ids else [
        rule_ids[int(draw(model, seed, content_id, "rule") * len(rule_ids))]]
    rationale = f"[simulated] {model} chose '{label}' by {source}."
    return Decision(label, round(confidence, 4), rationale, violated)


def choose_fault(config: SimulatorConfig, *, content_id: str, attempt: int,
                 forced: str | None) -> str | None:
    """A fault kind or None. The n-th request for the same content draws afresh, so retries
    can succeed while the whole sequence stays reproducible."""
    if forced:
        return forced if forced in FAULT_KINDS else None
    if config.fault_rate <= 0 or not config.fault_kinds:
        return None
    if draw(content_id, attempt, "fault") >= config.fault_rate:
        return None
    kinds = config.fault_kinds
    return kinds[int(draw(content_id, attempt, "fault-kind") * len(kinds))]


def latency_seconds(config: SimulatorConfig, *, content_id: str, attempt: int) -> float:
    jitter = (draw(content_id, attempt, "latency") * 2 - 1) * config.latency_jitter_ms
    return max(0.0, config.latency_ms + jitter) / 1000.0


def estimate_tokens(text: str) -> int:
    return max(1, (len(text.encode()) + 3) // 4)
