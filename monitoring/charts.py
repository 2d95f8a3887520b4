"""SVG charts of the monitor pages (pure: numbers in, SVG strings out; no CDN): a time series of
one or more lines with their interval bands, dashed reference lines and alert marks; a
sparkline; bars of cost per cycle."""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
GRID, INK, MUTED = "#e5e7eb", "#1f2937", "#6b7280"
PPI, HUMAN, DESIGN, OTHER_VERSION, REFERENCE, ALERT = "#c2410c", "#6b7280", "#264b5d", "#7c3aed", "#111827", "#b91c1c"


@dataclass
class Line:
    """One line: points (date, value, low, high); low/high None draw no band there."""

    name: str
    colour: str
    points: list[tuple[datetime.date, float, float | None, float | None]]
    dashed: bool = False
    band: bool = True
    markers: bool = True
    width: float = 2.0


@dataclass
class Mark:
    day: datetime.date
    value: float
    title: str
    anchor: str = ""  # an element id to link to


@dataclass
class Axis:
    low: float = 0.0
    high: float | None = None  # None: from the data
    percent: bool = True
    ticks: int = 5
    label: str = ""


@dataclass
class _Frame:
    days: list[datetime.date]
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    low: float
    high: float
    extra: dict = field(default_factory=dict)

    def x(self, day: datetime.date) -> float:
        first, last = self.days[0], self.days[-1]
        span = max((last - first).days, 1)
        inner = self.width - self.left - self.right
        if first == last:
            return self.left + inner / 2
        return self.left + inner * (day - first).days / span

    def y(self, value: float) -> float:
        inner = self.height - self.top - self.bottom
        v = min(max(value, self.low), self.high)
        return self.top + inner * (1 - (v - self.low) / (self.high - self.low))


def nice_max(top: float) -> float:
    if top <= 0:
        return 0.01
    step = 10 ** math.floor(math.log10(top))
    for multiple in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if multiple * step >= top * 1.05:
            return multiple * step
    return 10 * step


def _tick_every(n: int, width: int) -> int:
    """Label every k-th partition so that labels are at least ~70 px apart."""
    return max(1, math.ceil(n / max(2, (width - 80) // 70)))


def _tick_shown(i: int, n: int, every: int) -> bool:
    """Every k-th partition, and the last one unless it would crowd the label before it."""
    if i == n - 1:
        return i % every == 0 or i % every >= every / 2 or every == 1
    return i % every == 0


def _fmt(value: float, percent: bool) -> str:
    return f"{100 * value:.3g} %" if percent else f"{value:.3g}"


def _segments(points: Sequence[tuple], days: list[datetime.date]) -> list[list[tuple]]:
    """Runs of points on consecutive partitions of ``days`` (a missing partition breaks the line)."""
    index = {d: i for i, d in enumerate(days)}
    out: list[list[tuple]] = []
    for p in sorted(points, key=lambda p: p[0]):
        if out and index[p[0]] == index[out[-1][-1][0]] + 1:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def series_chart(lines: Sequence[Line], *, days: Sequence[datetime.date], marks: Sequence[Mark] = (),
                 axis: Axis | None = None, width: int = 860, height: int = 280, label: str = "time series") -> str:
    """Lines over partition dates (x) with translucent interval bands, a legend above."""
    axis = axis or Axis()
    days = sorted(set(days) | {p[0] for line in lines for p in line.points})
    if not days:
        return ""
    values = [v for line in lines for p in line.points for v in (p[1], p[3]) if v is not None]
    high = axis.high if axis.high is not None else nice_max(max(values + [0.0]))
    low = axis.low if axis.low < high else 0.0
    # The legend wraps onto as many rows as it needs (about 7 px per character).
    legend_rows, row, x_used = [], [], 0
    for line in lines:
        w = 34 + 7 * len(line.name)
        if row and x_used + w > width - 60:
            legend_rows.append(row)
            row, x_used = [], 0
        row.append((line, x_used))
        x_used += w
    if row:
        legend_rows.append(row)
    top = 14 + 18 * len(legend_rows)
    frame = _Frame(days=days, width=width, height=height + top, left=58, right=16, top=top, bottom=40,
                   low=low, high=high)
    parts = []
    for i in range(axis.ticks + 1):
        value = low + (high - low) * i / axis.ticks
        y = frame.y(value)
        parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{MUTED}">'
                     f"{_fmt(value, axis.percent)}</text>")
    every = _tick_every(len(days), width)
    for i, day in enumerate(days):
        if not _tick_shown(i, len(days), every):
            continue
        x = frame.x(day)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.height - frame.bottom}" '
                     f'y2="{frame.height - frame.bottom + 4}" stroke="{MUTED}"/>'
                     f'<text x="{x:.1f}" y="{frame.height - frame.bottom + 17}" text-anchor="middle" {FONT} '
                     f'fill="{MUTED}">{day:%m-%d}</text>')
    if axis.label:
        parts.append(f'<text transform="translate(12,{(frame.top + frame.height - frame.bottom) / 2:.0f}) '
                     f'rotate(-90)" text-anchor="middle" {FONT} fill="{MUTED}">{escape(axis.label)}</text>')
    for line in lines:  # bands first, under every line
        if not line.band:
            continue
        for seg in _segments([p for p in line.points if p[2] is not None and p[3] is not None], days):
            if len(seg) == 1:
                d, _, lo, hi = seg[0]
                parts.append(f'<line x1="{frame.x(d):.1f}" x2="{frame.x(d):.1f}" y1="{frame.y(lo):.1f}" '
                             f'y2="{frame.y(hi):.1f}" stroke="{line.colour}" stroke-opacity="0.35" stroke-width="6"/>')
                continue
            upper = " ".join(f"{frame.x(d):.1f},{frame.y(hi):.1f}" for d, _, _, hi in seg)
            lower = " ".join(f"{frame.x(d):.1f},{frame.y(lo):.1f}" for d, _, lo, _ in reversed(seg))
            parts.append(f'<polygon class="band" points="{upper} {lower}" fill="{line.colour}" fill-opacity="0.14" '
                         f'stroke="{line.colour}" stroke-opacity="0.25" stroke-width="0.5"/>')
    for line in lines:
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        for seg in _segments(line.points, days):
            if len(seg) > 1:
                path = " ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v, _, _ in seg)
                parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{line.colour}" '
                             f'stroke-width="{line.width}"{dash}/>')
        if line.markers:
            for d, v, lo, hi in line.points:
                interval = "" if lo is None or hi is None else \
                    f" [{_fmt(lo, axis.percent)}, {_fmt(hi, axis.percent)}]"
                parts.append(f'<circle cx="{frame.x(d):.1f}" cy="{frame.y(v):.1f}" r="3" fill="{line.colour}">'
                             f"<title>{escape(line.name)} {d:%Y-%m-%d}: {_fmt(v, axis.percent)}{escape(interval)}"
                             f"</title></circle>")
    for mark in marks:
        x, y = frame.x(mark.day), frame.y(mark.value) - 10
        tri = f'<path class="alert-mark" d="M{x - 6:.1f},{y - 9:.1f} L{x + 6:.1f},{y - 9:.1f} L{x:.1f},{y:.1f} Z" ' \
              f'fill="{ALERT}"><title>{escape(mark.title)}</title></path>'
        parts.append(f'<a href="#{escape(mark.anchor)}">{tri}</a>' if mark.anchor else tri)
    for r, items in enumerate(legend_rows):
        y = 12 + 18 * r
        for line, dx in items:
            x = frame.left + dx
            dash = ' stroke-dasharray="6 4"' if line.dashed else ""
            parts.append(f'<line x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{line.colour}" '
                         f'stroke-width="{max(line.width, 2)}"{dash}/>'
                         f'<text class="legend" x="{x + 29}" y="{y}" {FONT} fill="{INK}">{escape(line.name)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(label)} '
            f'width="{width}" height="{frame.height}" viewBox="0 0 {width} {frame.height}">{"".join(parts)}</svg>')


def sparkline(points: Sequence[tuple[datetime.date, float, float | None, float | None]], *, width: int = 120,
              height: int = 30, colour: str = DESIGN) -> str:
    """A small trend: the line, its band, the last point marked; no axes (the table gives numbers)."""
    if not points:
        return ""
    points = sorted(points, key=lambda p: p[0])
    days = [p[0] for p in points]
    top = max([p[3] if p[3] is not None else p[1] for p in points] + [1e-9])
    frame = _Frame(days=days, width=width, height=height, left=2, right=4, top=3, bottom=3, low=0.0,
                   high=nice_max(top))
    parts = []
    banded = [p for p in points if p[2] is not None and p[3] is not None]
    if len(banded) > 1:
        upper = " ".join(f"{frame.x(d):.1f},{frame.y(hi):.1f}" for d, _, _, hi in banded)
        lower = " ".join(f"{frame.x(d):.1f},{frame.y(lo):.1f}" for d, _, lo, _ in reversed(banded))
        parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.15"/>')
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v, _, _ in points)}" '
                     f'fill="none" stroke="{colour}" stroke-width="1.5"/>')
    d, v = points[-1][0], points[-1][1]
    parts.append(f'<circle cx="{frame.x(d):.1f}" cy="{frame.y(v):.1f}" r="2.5" fill="{colour}"/>')
    summary = f"{len(points)} points from {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}; last {100 * v:.3g} %"
    return (f'<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(summary)} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>{escape(summary)}</title>'
            f'{"".join(parts)}</svg>')


def bar_chart(bars: Sequence[tuple[datetime.date, float]], *, width: int = 860, height: int = 150,
              unit: str = "$", label: str = "cost per cycle") -> str:
    """One bar per partition (cost per cycle)."""
    if not bars:
        return ""
    days = sorted(d for d, _ in bars)
    high = nice_max(max([v for _, v in bars] + [1e-9]))
    frame = _Frame(days=days, width=width, height=height, left=58, right=16, top=10, bottom=30, low=0.0, high=high)
    slot = (width - frame.left - frame.right) / max(len(days), 1)
    bar = max(2.0, min(28.0, slot * 0.6))
    parts = []
    for i in range(3):
        value = high * i / 2
        y = frame.y(value)
        parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{MUTED}">'
                     f"{unit}{value:.3g}</text>")
    every = _tick_every(len(days), width)
    for i, (d, v) in enumerate(sorted(bars)):
        x = frame.x(d) if len(days) > 1 else frame.left + (width - frame.left - frame.right) / 2
        x = min(max(x, frame.left + bar / 2), width - frame.right - bar / 2)
        y = frame.y(v)
        parts.append(f'<rect x="{x - bar / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{frame.y(0) - y:.1f}" '
                     f'fill="{DESIGN}"><title>{d:%Y-%m-%d}: {unit}{v:.4f}</title></rect>')
        if _tick_shown(i, len(days), every):
            parts.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle" {FONT} fill="{MUTED}">'
                         f"{d:%m-%d}</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(label)} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')
