"""What the labeler reads in Label Studio (issue 13, item 16): the policy rendered, the parts in
conversation order with the judged one marked and empty ones left out, label names on the
choices with the keys coming back. Pure: no database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from review.lsconfig import (
    ITEM_FIELD,
    QueueConfigSpec,
    QueueLabel,
    QueueRule,
    annotation_result,
    instructions_html,
    item_html,
    label_config,
    read_annotation,
    task_data,
)

SPEC = QueueConfigSpec(
    policy="harassment@1",
    labels=[QueueLabel("not_harassment", "Not harassment", "No attack."),
            QueueLabel("insult", "Insult or degradation", "Demeans the person.")],
    rule_ids=[QueueRule("HAR-1", "Name-calling aimed at the person addressed.")],
    parts=["prev_agent", "prev_user", "agent", "user"])
CONVERSATION = {"user": "you are a useless bot", "agent": "Can you elaborate?", "prev_user": "",
                "prev_agent": "How can I help?"}


def test_instructions_are_rendered_markdown_not_one_paragraph():
    html = instructions_html("# Harassment\n\nCovers **attacks**.\n\n## Scope\n- the target\n- not context\n")
    assert "<h1>Harassment</h1>" in html and "<h2>Scope</h2>" in html
    assert "<strong>attacks</strong>" in html
    assert html.count("<li>") == 2 and "\u2022 the target" in html  # bullets Label Studio's CSS would hide
    assert "#" not in html and "**" not in html


def test_instructions_escape_raw_html_and_drop_unsafe_links():
    html = instructions_html('<script>alert(1)</script>\n\nx <img src=x onerror="alert(1)"> '
                             "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c](https://example.org/p) "
                             "![d](data:image/svg+xml;base64,AA)")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<img src" not in html and "&lt;img src=x onerror" in html  # shown as text
    assert "javascript" not in html.lower().replace("&lt;", "")
    assert '<a href="https://example.org/p">c</a>' in html
    assert "data:" not in html


def test_parts_come_in_conversation_order_with_the_target_marked_and_no_empty_part():
    html = item_html(CONVERSATION, target="user")
    block = ET.fromstring(html)
    parts = [div for div in block.iter("div") if "ts-part" in div.get("class", "")]
    assert [div.get("data-part") for div in parts] == ["prev_agent", "agent", "user"]
    assert [div.get("class") for div in parts] == ["ts-part", "ts-part", "ts-part ts-target"]
    assert "judge this" in "".join(parts[2].itertext()) and "judge this" not in "".join(parts[0].itertext())
    assert ">_<" not in html and "prev_user" not in html


def test_the_item_text_is_escaped():
    html = item_html({"text": "<b onmouseover=alert(1)>hi</b> & bye"})
    assert "<b " not in html and "&lt;b onmouseover=alert(1)&gt;hi&lt;/b&gt; &amp; bye" in html
    assert "judge this" not in html  # one part: nothing to single out


def test_task_data_carries_the_rendered_item_and_the_raw_parts():
    data = task_data(CONVERSATION, SPEC, target="user")
    assert data[ITEM_FIELD] == item_html(CONVERSATION, target="user")
    assert data["prev_user"] == "" and data["user"] == "you are a useless bot"


def test_choices_show_names_and_carry_keys_as_aliases():
    root = ET.fromstring(label_config(SPEC))
    label_choices = root.find("Choices[@name='label']")
    assert [(c.get("value"), c.get("alias")) for c in label_choices] == [
        ("Not harassment", "not_harassment"), ("Insult or degradation", "insult")]
    rules = root.find("Choices[@name='rule_ids']")
    assert [(c.get("value"), c.get("alias")) for c in rules] == [
        ("HAR-1: Name-calling aimed at the person addressed.", "HAR-1")]
    assert root.find("HyperText").get("value") == f"${ITEM_FIELD}"
    assert {c.get("toName") for c in root.iter() if c.get("toName")} == {"item"}


def test_repeated_label_names_stay_distinguishable():
    spec = QueueConfigSpec(policy="p@1", labels=[QueueLabel("a", "Other", ""), QueueLabel("b", "Other", "")],
                           rule_ids=[], parts=["text"])
    values = [c.get("value") for c in ET.fromstring(label_config(spec)).find("Choices")]
    assert values == ["Other (a)", "Other (b)"]


def test_an_answer_made_with_the_names_reads_back_as_keys():
    # Label Studio stores a choice's alias in the result: the key, as annotation_result makes it.
    read = read_annotation(annotation_result("insult", ["HAR-1"], "rude"), {"insult", "not_harassment"})
    assert (read.label, read.rule_ids, read.problem) == ("insult", ["HAR-1"], "")
    shown_name = annotation_result("Insult or degradation")
    assert read_annotation(shown_name, {"insult"}).problem  # a name is never taken for a key
