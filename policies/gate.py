"""A policy's publish gate: what a candidate version must show on a golden set before it is
published (pure: no Django).

A gate names a golden set (and optionally its version; default: its newest frozen version), a
metric of the candidate version's prompt evaluated on it, and one rule::

    publish_gate:
      golden_set: harassment-gold
      version: 3                      # optional: default, the newest frozen version
      metric: f1                      # precision | recall | f1 | recall_at_fpr
      label: violating                # optional: "violating" (any violating label) or one label key
      max_fpr: 0.01                   # recall_at_fpr only (default 0.01)
      at_least: 0.80                  # the candidate's point estimate >= 0.80 (its CI is shown)
      # or
      no_worse_than_published_by: 0.02  # non-inferiority: the lower 95 % bound of the paired
                                        # bootstrap's Δ(candidate − published) >= −0.02

The same mapping is stored on ``Policy.publish_gate`` (JSON, written only through
:func:`publish_gate_from_data`'s result, ``as_json``). The evaluation app computes verdicts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

METRICS = ("precision", "recall", "f1", "recall_at_fpr")
RULES = ("at_least", "no_worse_than_published_by")
VIOLATING = "violating"
DEFAULT_MAX_FPR = 0.01
FIELDS = ("golden_set", "version", "metric", "label", "max_fpr", *RULES)
_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")


class GateProblem(ValueError):
    """One bad field of a gate definition: ``field`` (e.g. ``metric``) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class PublishGateSpec:
    golden_set: str
    metric: str
    rule: str  # "at_least" | "no_worse_than_published_by"
    value: float  # X of at_least, δ of no_worse_than_published_by
    label: str = VIOLATING
    version: int | None = None
    max_fpr: float | None = None  # recall_at_fpr only

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"golden_set": self.golden_set}
        if self.version is not None:
            data["version"] = self.version
        data["metric"] = self.metric
        data["label"] = self.label
        if self.max_fpr is not None:
            data["max_fpr"] = self.max_fpr
        data[self.rule] = self.value
        return data

    @property
    def golden_set_ref(self) -> str:
        return f"{self.golden_set}@{self.version}" if self.version is not None else f"{self.golden_set} (newest frozen)"

    @property
    def metric_text(self) -> str:
        """``f1 of violating`` or ``recall at FPR <= 0.01 of violating``."""
        name = f"recall at FPR <= {self.max_fpr:g}" if self.metric == "recall_at_fpr" else self.metric
        return f"{name} of {self.label}"

    @property
    def rule_text(self) -> str:
        if self.rule == "at_least":
            return f"the candidate's {self.metric_text} (point estimate) >= {self.value:g}"
        return (f"non-inferiority: the lower 95 % bound of Δ{self.metric} (candidate − published, paired "
                f"bootstrap) >= −{self.value:g}")


def _number(data: dict[str, Any], name: str, *, low: float, high: float) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GateProblem(name, f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise GateProblem(name, f"{value!r} is not in [{low:g}, {high:g}]")
    return float(value)


def publish_gate_from_data(data: Any, *, labels: tuple[str, ...] | None = None) -> PublishGateSpec:
    """Validate a gate mapping (front matter or stored JSON) and return its spec. ``labels``: the
    policy's label keys, when known (``label`` must be one of them or ``violating``).

    Raises GateProblem naming the first bad field."""
    if not isinstance(data, dict):
        raise GateProblem("publish_gate", "expected a mapping")
    for name in data:
        if name not in FIELDS:
            raise GateProblem(str(name), f"unknown field; allowed: {', '.join(sorted(FIELDS))}")
    if "golden_set" not in data:
        raise GateProblem("golden_set", "missing: name the golden set the candidate is measured on")
    golden_set = data["golden_set"]
    if not isinstance(golden_set, str) or not _NAME.match(golden_set):
        raise GateProblem("golden_set", f"{golden_set!r} is not a golden set name (letters, digits, - and _)")
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise GateProblem("version", f"{version!r}: a golden-set version number >= 1 (or leave it out: the newest "
                                     "frozen version)")
    if "metric" not in data:
        raise GateProblem("metric", f"missing: one of {', '.join(METRICS)}")
    metric = data["metric"]
    if metric not in METRICS:
        raise GateProblem("metric", f"{metric!r}: use one of {', '.join(METRICS)}")
    label = data.get("label", VIOLATING)
    if not isinstance(label, str) or not label:
        raise GateProblem("label", f"{label!r}: {VIOLATING!r} or a label key")
    if labels is not None and label != VIOLATING and label not in labels:
        raise GateProblem("label", f"{label!r} is not a label of the policy ({', '.join(labels)}) nor {VIOLATING!r}")
    max_fpr = None
    if "max_fpr" in data:
        if metric != "recall_at_fpr":
            raise GateProblem("max_fpr", "only the metric recall_at_fpr has a max_fpr")
        max_fpr = _number(data, "max_fpr", low=0.0, high=1.0)
    elif metric == "recall_at_fpr":
        max_fpr = DEFAULT_MAX_FPR
    rules = [name for name in RULES if name in data]
    if len(rules) != 1:
        got = f" (got {', '.join(rules)})" if rules else ""
        raise GateProblem(rules[1] if rules else "at_least", f"give exactly one rule: {' or '.join(RULES)}{got}")
    rule = rules[0]
    value = _number(data, rule, low=0.0, high=1.0)
    return PublishGateSpec(golden_set=golden_set, metric=metric, rule=rule, value=value, label=label,
                           version=version, max_fpr=max_fpr)


__all__ = ["DEFAULT_MAX_FPR", "FIELDS", "GateProblem", "METRICS", "PublishGateSpec", "RULES", "VIOLATING",
           "publish_gate_from_data"]
