"""Label Studio labeling configs and task payloads for review queues (pure: no Django, no I/O).

A queue's config shows the item's text parts (the judged part highlighted), its images (blurred
until the labeler reveals them when the policy marks images sensitive), one required single
choice among the policy's labels, the violated rule ids and a rationale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

LABEL_CONTROL = "label"
RULES_CONTROL = "rule_ids"
RATIONALE_CONTROL = "rationale"
MAX_IMAGES = 4


@dataclass(frozen=True)
class QueueLabel:
    key: str
    name: str
    definition: str


@dataclass(frozen=True)
class QueueConfigSpec:
    policy: str  # e.g. "harassment@1"
    labels: Sequence[QueueLabel]
    rule_ids: Sequence[str]
    parts: Sequence[str]  # the text parts a task may carry, in display order
    images: int = 0  # image slots (0..MAX_IMAGES)
    blur_images: bool = False


def _part_name(part: str) -> str:
    return f"part_{part}"


def label_config(spec: QueueConfigSpec) -> str:
    """The project's labeling config (Label Studio XML)."""
    if not spec.labels:
        raise ValueError("labels: a queue needs at least one label")
    if not spec.parts:
        raise ValueError("parts: a queue needs at least one text part")
    lines = ["<View>"]
    if spec.blur_images and spec.images:
        # The wrapper, not the <img>: Label Studio draws the picture on a canvas over it.
        lines.append("  <Style>.ts-sensitive { filter: blur(24px); transition: filter .2s; } "
                     ".ts-sensitive:hover { filter: none; }</Style>")
    lines.append(f"  <Header value={quoteattr('Policy ' + spec.policy)} size=\"5\"/>")
    for part in spec.parts:
        lines.append(f"  <Header value={quoteattr(part)} size=\"6\"/>")
        lines.append(f"  <Text name={quoteattr(_part_name(part))} value={quoteattr('$' + part)}/>")
    for index in range(min(spec.images, MAX_IMAGES)):
        wrapper = ' className="ts-sensitive"' if spec.blur_images else ""
        lines.append(f"  <View{wrapper}><Image name=\"image_{index}\" value=\"$image_{index}\" "
                     f"maxWidth=\"600px\"/></View>")
    target = _part_name(spec.parts[0])
    lines.append(f"  <Choices name=\"{LABEL_CONTROL}\" toName={quoteattr(target)} choice=\"single\" "
                 "required=\"true\" showInline=\"false\">")
    for label in spec.labels:
        hint = quoteattr(f"{label.name}: {label.definition}")
        lines.append(f"    <Choice value={quoteattr(label.key)} hint={hint}/>")
    lines.append("  </Choices>")
    if spec.rule_ids:
        lines.append(f"  <Choices name=\"{RULES_CONTROL}\" toName={quoteattr(target)} choice=\"multiple\" "
                     "showInline=\"true\">")
        lines.extend(f"    <Choice value={quoteattr(rule)}/>" for rule in spec.rule_ids)
        lines.append("  </Choices>")
    lines.append(f"  <TextArea name=\"{RATIONALE_CONTROL}\" toName={quoteattr(target)} rows=\"2\" "
                 "placeholder=\"Why (optional)\" maxSubmissions=\"1\"/>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def task_data(parts: dict[str, str], spec: QueueConfigSpec, image_urls: Sequence[str] = ()) -> dict[str, str]:
    """A task's data: every part the config shows (empty when the item lacks it), image URLs."""
    data = {part: parts.get(part, "") for part in spec.parts}
    for index in range(min(spec.images, MAX_IMAGES)):
        data[f"image_{index}"] = image_urls[index] if index < len(image_urls) else ""
    return data


@dataclass(frozen=True)
class ReadAnnotation:
    label: str | None
    rule_ids: list[str]
    rationale: str
    problem: str = ""  # why the annotation is not a usable label, if it is not


def read_annotation(result: Sequence[dict], taxonomy: set[str]) -> ReadAnnotation:
    """A Label Studio annotation result → our label. A label outside the taxonomy (or none) is
    reported in ``problem``, never mapped to something else."""
    chosen: list[str] = []
    rules: list[str] = []
    rationale = ""
    for region in result:
        value = region.get("value") or {}
        if region.get("from_name") == LABEL_CONTROL:
            chosen.extend(value.get("choices") or [])
        elif region.get("from_name") == RULES_CONTROL:
            rules.extend(value.get("choices") or [])
        elif region.get("from_name") == RATIONALE_CONTROL:
            rationale = " ".join(value.get("text") or [])
    if len(chosen) != 1:
        return ReadAnnotation(None, rules, rationale, f"expected one label, got {len(chosen)}")
    if chosen[0] not in taxonomy:
        return ReadAnnotation(chosen[0], rules, rationale, f"label {chosen[0]!r} is not in the taxonomy")
    return ReadAnnotation(chosen[0], rules, rationale)


def annotation_result(label: str, rule_ids: Sequence[str] = (), rationale: str = "",
                      target_part: str = "text") -> list[dict]:
    """The result payload of an annotation choosing ``label`` (simulated labelers, tests)."""
    target = _part_name(target_part)
    result = [{"from_name": LABEL_CONTROL, "to_name": target, "type": "choices", "value": {"choices": [label]}}]
    if rule_ids:
        result.append({"from_name": RULES_CONTROL, "to_name": target, "type": "choices",
                       "value": {"choices": list(rule_ids)}})
    if rationale:
        result.append({"from_name": RATIONALE_CONTROL, "to_name": target, "type": "textarea",
                       "value": {"text": [rationale]}})
    return result
