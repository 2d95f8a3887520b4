"""Alert rules, evaluated on one finished cycle (pure: no Django).

- ``estimate_above``: the estimate of ``label`` (``estimator``, default the monitor's first)
  is above ``threshold``.
- ``ci_lower_above_trailing``: the lower CI bound of ``label`` is above the trailing level, the
  mean estimate of the previous ``window`` finished cycles (no alert without a previous cycle).
- ``agreement_below``: the LLM agrees with people on the cycle's audited items less often than
  ``threshold`` (items where both answered; none audited: no alert).
- ``vendor_gold_accuracy_below``: the accuracy of ``vendor`` on hidden gold is below
  ``threshold`` (no gold answered yet: no alert).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Point:
    estimate: float
    ci_low: float | None
    ci_high: float | None


@dataclass
class CycleFacts:
    """What the rules read of a cycle: its points by (label, estimator), the previous finished
    cycles' points (newest first), the audit agreement and the vendors' gold accuracy."""

    points: dict[tuple[str, str], Point]
    previous: list[dict[tuple[str, str], Point]] = field(default_factory=list)
    agreement: float | None = None
    agreement_n: int = 0
    vendor_accuracy: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Firing:
    rule: str
    kind: str
    value: float
    threshold: float
    message: str
    label: str = ""


def evaluate(rule: dict, facts: CycleFacts, *, default_estimator: str) -> Firing | None:
    kind, name = rule["kind"], rule["name"]
    estimator = rule.get("estimator") or default_estimator
    label = rule.get("label", "")
    if kind == "estimate_above":
        point = facts.points.get((label, estimator))
        if point is not None and point.estimate > rule["threshold"]:
            return Firing(name, kind, point.estimate, rule["threshold"], label=label,
                          message=f"{label} ({estimator}) is {point.estimate:.2%}, above {rule['threshold']:.2%}")
        return None
    if kind == "ci_lower_above_trailing":
        point = facts.points.get((label, estimator))
        window = int(rule.get("window", 4))
        trailing = [p[(label, estimator)].estimate for p in facts.previous[:window] if (label, estimator) in p]
        if point is None or point.ci_low is None or not trailing:
            return None
        level = sum(trailing) / len(trailing)
        if point.ci_low > level:
            return Firing(name, kind, point.ci_low, level, label=label,
                          message=f"{label} ({estimator}): the CI's lower bound {point.ci_low:.2%} is above the "
                                  f"trailing level {level:.2%} of the last {len(trailing)} cycles")
        return None
    if kind == "agreement_below":
        if facts.agreement is not None and facts.agreement < rule["threshold"]:
            return Firing(name, kind, facts.agreement, rule["threshold"],
                          message=f"the LLM agrees with people on {facts.agreement:.1%} of {facts.agreement_n} "
                                  f"audited items, below {rule['threshold']:.1%}")
        return None
    if kind == "vendor_gold_accuracy_below":
        accuracy = facts.vendor_accuracy.get(rule["vendor"])
        if accuracy is not None and accuracy < rule["threshold"]:
            return Firing(name, kind, accuracy, rule["threshold"],
                          message=f"vendor {rule['vendor']}: accuracy on hidden gold {accuracy:.1%}, below "
                                  f"{rule['threshold']:.1%}")
        return None
    raise ValueError(f"unknown alert rule kind {kind!r}")
