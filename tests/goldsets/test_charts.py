"""The server-side SVG charts (pure: no database)."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from goldsets.charts import kappa_heatmap


def pair(a: str, b: str, value: float | None, shared: int = 40) -> dict:
    return {"a": a, "b": b, "shared": shared, "kappa": {"value": value}}


def row_labels(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")
            if t.get("text-anchor") == "end" and t.text and t.text.startswith("L-")]


def test_heatmap_leaves_out_labelers_without_a_measured_pair_and_says_how_many() -> None:
    svg = kappa_heatmap(["L-a", "L-b", "L-c", "L-lonely", "L-alone"],
                        [pair("L-a", "L-b", 0.8), pair("L-b", "L-c", None)])
    assert row_labels(svg) == ["L-a", "L-b", "L-c"]  # no empty rows
    assert "2 labelers without a measured pair not shown" in svg
    assert svg.count(">0.80<") == 2 and svg.count(">—<") == 2  # symmetric cells, undefined shown as a dash


def test_heatmap_has_a_colour_legend_from_minus_one_to_one_with_undefined() -> None:
    svg = kappa_heatmap(["L-a", "L-b"], [pair("L-a", "L-b", 0.5)])
    legend = re.search(r'<g class="legend">(.*?)</g>', svg, re.S)
    assert legend and "Cohen's κ" in legend.group(1) and "undefined" in legend.group(1)
    assert [t for t in re.findall(r">(-?\d+)</text>", legend.group(1))] == ["-1", "0", "1"]
    assert legend.group(1).count("<rect") >= 20  # the ramp
    assert "not shown" not in svg
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    assert width >= 120 + 200 + 24 + 18 + 70  # the "undefined" label fits


def test_heatmap_with_no_pair_says_so() -> None:
    svg = kappa_heatmap(["L-a"], [])
    assert "No labeler pair was measured." in svg and row_labels(svg) == []
    ElementTree.fromstring(svg)  # well-formed
