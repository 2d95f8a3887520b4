"""SVG charts of the prevalence pages (drawn here, no CDN): a forest plot of estimates with their
intervals, the PPI interval and the human-only one on the same human labels beside each other."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
PPI_COLOUR, HUMAN_COLOUR, DESIGN_COLOUR = "#c2410c", "#6b7280", "#264b5d"


@dataclass(frozen=True)
class ForestRow:
    name: str  # the row's label, e.g. "insult · ppi++"
    estimate: float
    low: float | None
    high: float | None
    kind: str  # ppi | human | design
    heading: bool = False  # a label's first row: a rule above it


def _axis_max(rows: Sequence[ForestRow]) -> float:
    top = max([r.high for r in rows if r.high is not None] + [r.estimate for r in rows] + [0.0])
    if top <= 0:
        return 0.01
    step = 10 ** math.floor(math.log10(top))
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * step >= top * 1.05:
            return multiple * step
    return 10 * step


def forest_chart(rows: Sequence[ForestRow], *, width: int = 640, label_width: int = 190) -> str:
    """Estimates (points) with intervals (lines) on a 0…max axis in percent; rows in order."""
    step, top_pad = 22, 8
    height = top_pad + step * len(rows) + 34
    span = width - label_width - 24
    low_end, high_end = 0.0, _axis_max(rows)

    def x(value: float) -> float:
        return label_width + span * (min(max(value, low_end), high_end) - low_end) / (high_end - low_end)

    parts = []
    for i in range(6):
        tick = high_end * i / 5
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top_pad}" y2="{height - 26}" '
                     f'stroke="#e5e7eb"/><text x="{x(tick):.1f}" y="{height - 12}" text-anchor="middle" {FONT}>'
                     f'{100 * tick:.3g} %</text>')
    colours = {"ppi": PPI_COLOUR, "human": HUMAN_COLOUR, "design": DESIGN_COLOUR}
    for i, row in enumerate(rows):
        y = top_pad + 12 + i * step
        colour = colours[row.kind]
        if row.heading and i:
            parts.append(f'<line x1="0" x2="{width}" y1="{y - 11}" y2="{y - 11}" stroke="#d1d5db"/>')
        fill = ' fill="#6b7280"' if row.kind == "human" else ""
        parts.append(f'<text x="{label_width - 8}" y="{y + 4}" text-anchor="end" {FONT}{fill}>'
                     f'{escape(row.name)}</text>')
        if row.low is not None and row.high is not None:
            dash = ' stroke-dasharray="4 2"' if row.kind == "human" else ""
            parts.append(f'<line x1="{x(row.low):.1f}" x2="{x(row.high):.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
                         f'stroke-width="3"{dash}/>')
        interval = "" if row.low is None else f" [{100 * row.low:.2f} %, {100 * row.high:.2f} %]"
        parts.append(f'<circle cx="{x(row.estimate):.1f}" cy="{y}" r="4.5" fill="{colour}"><title>'
                     f'{escape(row.name)}: {100 * row.estimate:.2f} %{interval}</title></circle>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="prevalence estimates with intervals" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')
