"""Label Studio labeling configs and task payloads for review queues (pure: no Django, no I/O).

A queue's config shows the item as one block (its parts in conversation order, the part to
judge marked, empty parts left out), its images (blurred until the labeler reveals them when
the policy marks images sensitive), one required single choice among the policy's labels, the
violated rules and a rationale. Choices show names; each carries its key as its ``alias``,
which is what Label Studio stores in results, so annotations come back as keys.

The project's instructions are the policy's Markdown rendered to HTML with raw HTML escaped
and only http(s), mailto and relative links kept (``instructions_html``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from policies.compiler import PART_ORDER

LABEL_CONTROL = "label"
RULES_CONTROL = "rule_ids"
RATIONALE_CONTROL = "rationale"
ITEM_OBJECT = "item"  # the object tag every control points at
ITEM_FIELD = "item_html"  # the task data field it shows
MAX_IMAGES = 4
SAFE_SCHEMES = {"", "http", "https", "mailto"}
_CONTROLS = re.compile(r"[\x00-\x20\x7f]")
PART_TITLES = {"prev_agent": "Agent (earlier turn)", "prev_user": "User (earlier turn)", "agent": "Agent",
               "user": "User", "context": "Context", "query": "Query", "prompt": "Prompt", "response": "Response",
               "title": "Title", "text": "Text"}

_STYLE = (".ts-item { font-size: 15px; line-height: 1.5; max-width: 72ch; } "
          ".ts-part { border-left: 3px solid #d0d5dd; padding: 4px 12px; margin: 0 0 10px; } "
          ".ts-part.ts-target { border-left: 4px solid #b42318; background: #fef3f2; } "
          ".ts-who { font-size: 12px; font-weight: 600; letter-spacing: .02em; color: #475467; } "
          ".ts-target .ts-who { color: #b42318; } "
          ".ts-said { white-space: pre-wrap; overflow-wrap: anywhere; margin: 2px 0 0; } "
          ".ts-note { font-size: 12px; color: #475467; margin: 0 0 8px; }")


@dataclass(frozen=True)
class QueueLabel:
    key: str
    name: str
    definition: str


@dataclass(frozen=True)
class QueueRule:
    rule_id: str
    text: str = ""


@dataclass(frozen=True)
class QueueConfigSpec:
    policy: str  # e.g. "harassment@1"
    labels: Sequence[QueueLabel]
    rule_ids: Sequence[str | QueueRule]
    parts: Sequence[str]  # the text parts a task's data carries (raw, beside the rendered item)
    images: int = 0  # image slots (0..MAX_IMAGES)
    blur_images: bool = False


def _rule(rule: str | QueueRule) -> QueueRule:
    return rule if isinstance(rule, QueueRule) else QueueRule(rule)


def _choice_names(labels: Sequence[QueueLabel]) -> list[str]:
    """What each label's choice shows: its name, or "name (key)" when names repeat or are empty."""
    names = [label.name.strip() for label in labels]
    return [name if name and names.count(name) == 1 else f"{name or label.key} ({label.key})"
            for name, label in zip(names, labels, strict=True)]


def label_config(spec: QueueConfigSpec) -> str:
    """The project's labeling config (Label Studio XML)."""
    if not spec.labels:
        raise ValueError("labels: a queue needs at least one label")
    if not spec.parts:
        raise ValueError("parts: a queue needs at least one text part")
    style = _STYLE
    if spec.blur_images and spec.images:
        # The wrapper, not the <img>: Label Studio draws the picture on a canvas over it.
        style += " .ts-sensitive { filter: blur(24px); transition: filter .2s; } .ts-sensitive:hover { filter: none; }"
    lines = ["<View>", f"  <Style>{style}</Style>",
             f"  <Header value={quoteattr('Policy ' + spec.policy)} size=\"5\"/>",
             f"  <HyperText name=\"{ITEM_OBJECT}\" value=\"${ITEM_FIELD}\" inline=\"true\"/>"]
    for index in range(min(spec.images, MAX_IMAGES)):
        wrapper = ' className="ts-sensitive"' if spec.blur_images else ""
        lines.append(f"  <View{wrapper}><Image name=\"image_{index}\" value=\"$image_{index}\" "
                     f"maxWidth=\"600px\"/></View>")
    lines.append("  <Header value=\"Label\" size=\"6\"/>")
    lines.append(f"  <Choices name=\"{LABEL_CONTROL}\" toName=\"{ITEM_OBJECT}\" choice=\"single\" "
                 "required=\"true\" showInline=\"false\">")
    for label, shown in zip(spec.labels, _choice_names(spec.labels), strict=True):
        lines.append(f"    <Choice value={quoteattr(shown)} alias={quoteattr(label.key)} "
                     f"hint={quoteattr(label.definition or shown)}/>")
    lines.append("  </Choices>")
    if spec.rule_ids:
        lines.append("  <Header value=\"Rules broken (if any)\" size=\"6\"/>")
        lines.append(f"  <Choices name=\"{RULES_CONTROL}\" toName=\"{ITEM_OBJECT}\" choice=\"multiple\" "
                     "showInline=\"false\">")
        for rule in map(_rule, spec.rule_ids):
            shown = f"{rule.rule_id}: {rule.text}" if rule.text else rule.rule_id
            lines.append(f"    <Choice value={quoteattr(shown)} alias={quoteattr(rule.rule_id)}/>")
        lines.append("  </Choices>")
    lines.append(f"  <TextArea name=\"{RATIONALE_CONTROL}\" toName=\"{ITEM_OBJECT}\" rows=\"2\" "
                 "placeholder=\"Why (optional)\" maxSubmissions=\"1\"/>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def part_title(part: str) -> str:
    return PART_TITLES.get(part, part.replace("_", " ").capitalize())


def ordered_parts(parts: Mapping[str, str]) -> list[str]:
    """The item's non-empty parts in conversation order (the order the LLM prompt uses)."""
    present = [name for name, text in parts.items() if isinstance(text, str) and text.strip()]
    return [name for name in PART_ORDER if name in present] + sorted(n for n in present if n not in PART_ORDER)


def item_html(parts: Mapping[str, str], target: str = "") -> str:
    """The item as the labeler reads it: each non-empty part under its speaker, oldest first,
    the part to judge marked. Every text is escaped: this is the only HTML in the task."""
    names = ordered_parts(parts)
    marked = target if target in names and len(names) > 1 else ""
    html = ['<div class="ts-item">']
    if len(names) > 1:
        html.append('<p class="ts-note">' + (
            f"Judge only the part marked &#8220;judge this&#8221; ({escape(part_title(marked))}); "
            "the others are context." if marked else "Judge the item as a whole.") + "</p>")
    for name in names:
        target_class = " ts-target" if name == marked else ""
        badge = " · judge this" if name == marked else ""
        html.append(f'<div class="ts-part{target_class}" data-part="{escape(name)}">'
                    f'<div class="ts-who">{escape(part_title(name))}{badge}</div>'
                    f'<p class="ts-said">{escape(parts[name].strip())}</p></div>')
    html.append("</div>")
    return "".join(html)


def task_data(parts: Mapping[str, str], spec: QueueConfigSpec, image_urls: Sequence[str] = (),
              target: str = "") -> dict[str, str]:
    """A task's data: the rendered item (``item_html``), every raw part of the spec (empty when
    the item lacks it: Label Studio's data manager shows them as columns), image URLs."""
    data = {part: parts.get(part, "") for part in spec.parts}
    data[ITEM_FIELD] = item_html(parts, target)
    for index in range(min(spec.images, MAX_IMAGES)):
        data[f"image_{index}"] = image_urls[index] if index < len(image_urls) else ""
    return data


class _SafeLinks(Treeprocessor):
    """Drops links and images whose URL scheme could run code (javascript:, data:, vbscript:…)."""

    def run(self, root: Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                url = element.get(attribute)
                # As a browser reads it: tabs, newlines and controls inside a scheme are dropped.
                if url is not None and urlsplit(_CONTROLS.sub("", url)).scheme.lower() not in SAFE_SCHEMES:
                    del element.attrib[attribute]


class _ListMarks(Treeprocessor):
    """Bullets and numbers as text: Label Studio's stylesheet hides list markers in its
    instructions dialog and its sanitizer drops style attributes."""

    def run(self, root: Element) -> None:
        for element in root.iter():
            if element.tag in ("ul", "ol"):
                for number, item in enumerate((child for child in element if child.tag == "li"), start=1):
                    mark = "\u2022 " if element.tag == "ul" else f"{number}. "
                    holder = item[0] if not (item.text or "").strip() and len(item) and item[0].tag == "p" else item
                    holder.text = mark + (holder.text or "")


class _NoRawHtml(Extension):
    """Raw HTML in the Markdown is shown as text, never passed through."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (the library's name)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeLinks(md), "safe_links", -1)
        md.treeprocessors.register(_ListMarks(md), "list_marks", -2)


def instructions_html(text: str) -> str:
    """A policy's Markdown as HTML for Label Studio's instructions: headings, lists, emphasis
    and links render; raw HTML is escaped; links with unsafe schemes lose their URL."""
    return markdown.markdown(text, extensions=[_NoRawHtml(), "sane_lists"], output_format="html")


@dataclass(frozen=True)
class ReadAnnotation:
    label: str | None
    rule_ids: list[str]
    rationale: str
    problem: str = ""  # why the annotation is not a usable label, if it is not


def read_annotation(result: Sequence[dict], taxonomy: set[str]) -> ReadAnnotation:
    """A Label Studio annotation result → our label. Choices come back as their alias, which is
    the key (the shown name only in a project whose choice had no alias). A label outside the
    taxonomy (or none) is reported in ``problem``, never mapped to something else."""
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
                      target_part: str = "") -> list[dict]:
    """The result payload of an annotation choosing ``label`` (a key: the choices' alias), as
    the labeling UI makes it (simulated labelers, LLM suggestions, tests). ``target_part`` is
    accepted for older callers; every control points at the item block."""
    del target_part
    result = [{"from_name": LABEL_CONTROL, "to_name": ITEM_OBJECT, "type": "choices", "value": {"choices": [label]}}]
    if rule_ids:
        result.append({"from_name": RULES_CONTROL, "to_name": ITEM_OBJECT, "type": "choices",
                       "value": {"choices": list(rule_ids)}})
    if rationale:
        result.append({"from_name": RATIONALE_CONTROL, "to_name": ITEM_OBJECT, "type": "textarea",
                       "value": {"text": [rationale]}})
    return result
