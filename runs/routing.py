"""Route an item from its voters' judgements: auto-accept, or send to humans with a reason.
Pure: no Django.

In order: any failed voter → failed; voters disagree → human review; a label the policy marks
as always human-reviewed → human review; mean confidence of the agreed label below the
threshold → human review; else a random audit share of these would-be auto-accepted items →
human review (drawn as sha256(seed, item id) < share, so the audit is a probability sample with
inclusion probability ``audit_share``); else auto-accepted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Vote:
    label: str | None
    confidence: float | None
    failed: bool = False


@dataclass(frozen=True)
class RoutingRules:
    confidence_threshold: float
    audit_share: float
    audit_seed: int
    always_review_labels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    outcome: str  # auto_accepted | human_review | failed
    reason: str  # agreed | disagreement | low_confidence | audit | always_review_label | failed
    label: str
    confidence: float | None


def audit_draw(seed: int, item_id: int) -> float:
    digest = hashlib.sha256(f"audit:{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(item_id: int, votes: Sequence[Vote], rules: RoutingRules) -> Decision:
    ok = [v for v in votes if not v.failed and v.label]
    counts = Counter(v.label for v in ok)
    top, top_count = counts.most_common(1)[0] if counts else ("", 0)
    majority = top if top_count * 2 > len(votes) else ""
    agreeing = [v.confidence for v in ok if v.label == top and v.confidence is not None]
    confidence = sum(agreeing) / len(agreeing) if agreeing else None
    if len(ok) < len(votes):
        return Decision("failed", "failed", majority, confidence)
    if len(counts) > 1:
        return Decision("human_review", "disagreement", majority, confidence)
    if top in rules.always_review_labels:
        return Decision("human_review", "always_review_label", top, confidence)
    if confidence is None or confidence < rules.confidence_threshold:
        return Decision("human_review", "low_confidence", top, confidence)
    if audit_draw(rules.audit_seed, item_id) < rules.audit_share:
        return Decision("human_review", "audit", top, confidence)
    return Decision("auto_accepted", "agreed", top, confidence)


def needs_adjudication(labels: list[str], violating: frozenset[str], rule: str) -> bool:
    """Do k human labels disagree enough to need an adjudicator? ``no_majority``: no label has
    a strict majority; ``any_violating_dissent``: they differ and at least one is a violation."""
    if len(set(labels)) <= 1:
        return False
    if rule == "any_violating_dissent":
        return any(label in violating for label in labels)
    top = max(labels.count(label) for label in set(labels))
    return 2 * top <= len(labels)
