"""Small server-side SVG charts for the golden-set pages (pure: strings in, SVG out; no CDN)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

BRAND = "#264b5d"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def bar_chart(counts: Mapping[str, int], *, width: int = 560, bar_height: int = 22, title: str = "") -> str:
    """Horizontal bars, one per key, labelled with the count and share."""
    total = sum(counts.values()) or 1
    top = max(counts.values(), default=1) or 1
    label_width, gap = 170, 6
    height = len(counts) * (bar_height + gap) + gap
    rows = []
    for i, (label, value) in enumerate(counts.items()):
        y = gap + i * (bar_height + gap)
        length = (width - label_width - 110) * value / top
        rows.append(
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" {FONT}>'
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" rx="3" fill="{BRAND}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.7:.1f}" {FONT}>'
            f"{value} ({100 * value / total:.1f}%)</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(title or "bar chart")} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(rows)}</svg>')


def _kappa_colour(value: float | None) -> str:
    if value is None:
        return "#e5e7eb"
    # white at 0 → brand blue at 1; red for agreement below chance
    if value < 0:
        strength = min(1.0, -value)
        return f"rgb({255},{int(255 - 120 * strength)},{int(255 - 120 * strength)})"
    strength = min(1.0, value)
    return f"rgb({int(255 - 217 * strength)},{int(255 - 180 * strength)},{int(255 - 162 * strength)})"


def kappa_heatmap(labelers: Sequence[str], pairs: Sequence[Mapping], *, cell: int = 34) -> str:
    """A symmetric labeler × labeler grid of pairwise Cohen's κ, with a colour legend below it.

    ``pairs`` are the measured pairs (``a``, ``b``, ``shared``, ``kappa``: {value, …}); a labeler
    in no measured pair has no row (an empty row says nothing) and is counted under the legend.
    Grey cells are pairs whose κ is undefined."""
    paired = {name for pair in pairs for name in (pair["a"], pair["b"])}
    shown = [name for name in labelers if name in paired]
    index = {name: i for i, name in enumerate(shown)}
    margin = 120
    grid = margin + cell * len(shown)
    width = max(grid + 90, margin + 360)  # room for the last rotated column label and for the legend
    legend_y = grid + 24
    height = legend_y + 64
    parts = []
    for name, i in index.items():
        parts.append(f'<text x="{margin - 6}" y="{margin + i * cell + cell * 0.62:.1f}" text-anchor="end" {FONT}>'
                     f"{escape(name)}</text>")
        parts.append(f'<text transform="translate({margin + i * cell + cell * 0.62:.1f},{margin - 6}) rotate(-45)" '
                     f"{FONT}>{escape(name)}</text>")
    for pair in pairs:
        if pair["a"] not in index or pair["b"] not in index:
            continue
        value = pair["kappa"].get("value")
        text = "—" if value is None else f"{value:.2f}"
        tip = f"{pair['a']} × {pair['b']}: κ {text} on {pair['shared']} shared items"
        for row, col in ((index[pair["a"]], index[pair["b"]]), (index[pair["b"]], index[pair["a"]])):
            x, y = margin + col * cell, margin + row * cell
            ink = "#fff" if value is not None and value > 0.55 else "#111"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{_kappa_colour(value)}">'
                         f"<title>{escape(tip)}</title></rect>"
                         f'<text x="{x + (cell - 2) / 2}" y="{y + cell * 0.6:.1f}" text-anchor="middle" '
                         f'font-size="10" font-family="system-ui, sans-serif" fill="{ink}">{text}</text>')
    for i in range(len(shown)):
        x = y = margin + i * cell
        parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="#f9fafb"/>')
    if not shown:
        parts.append(f'<text x="{margin}" y="{margin - 20}" {FONT} fill="#6b7280">No labeler pair was measured.</text>')
    parts.append(_kappa_legend(x=margin, y=legend_y, left_out=len(set(labelers) - paired)))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="pairwise Cohen kappa heatmap" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')


def _kappa_legend(*, x: int, y: int, left_out: int, length: int = 200) -> str:
    """A −1 … 0 … 1 colour ramp with ticks, a grey swatch for undefined κ, and how many labelers
    have no row."""
    steps = 40
    parts = [f'<g class="legend"><text x="{x}" y="{y - 6}" {FONT}>Cohen\'s κ</text>']
    for i in range(steps):
        value = -1 + 2 * (i + 0.5) / steps
        parts.append(f'<rect x="{x + i * length / steps:.1f}" y="{y}" width="{length / steps + 0.5:.1f}" height="12" '
                     f'fill="{_kappa_colour(value)}"/>')
    parts.append(f'<rect x="{x}" y="{y}" width="{length}" height="12" fill="none" stroke="#d1d5db"/>')
    for tick in (-1.0, 0.0, 1.0):
        tx = x + length * (tick + 1) / 2
        parts.append(f'<text x="{tx:.1f}" y="{y + 26}" text-anchor="middle" {FONT}>{tick:g}</text>')
    gx = x + length + 24
    parts.append(f'<rect x="{gx}" y="{y}" width="12" height="12" fill="{_kappa_colour(None)}"/>'
                 f'<text x="{gx + 18}" y="{y + 10}" {FONT}>undefined</text>')
    if left_out:
        parts.append(f'<text x="{x}" y="{y + 46}" {FONT} fill="#6b7280">{left_out} labeler'
                     f'{"s" if left_out != 1 else ""} without a measured pair not shown</text>')
    parts.append("</g>")
    return "".join(parts)


def interval_chart(rows: Sequence[tuple[str, Mapping | None]], *, width: int = 560) -> str:
    """Point estimates with 95 % CIs on a −0.2…1 axis (agreement coefficients)."""
    label_width, low, high, step = 170, -0.2, 1.0, 28
    height = step * len(rows) + 30
    span = width - label_width - 30

    def x(value: float) -> float:
        return label_width + span * (min(max(value, low), high) - low) / (high - low)

    parts = []
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="4" y2="{height - 22}" stroke="#e5e7eb"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" {FONT}>{tick:.1f}</text>')
    for i, (name, estimate) in enumerate(rows):
        y = 14 + i * step
        parts.append(f'<text x="{label_width - 8}" y="{y + 4}" text-anchor="end" {FONT}>{escape(name)}</text>')
        if not estimate or estimate.get("value") is None:
            parts.append(f'<text x="{label_width}" y="{y + 4}" {FONT} fill="#6b7280">undefined</text>')
            continue
        if estimate.get("ci_low") is not None:
            parts.append(f'<line x1="{x(estimate["ci_low"]):.1f}" x2="{x(estimate["ci_high"]):.1f}" y1="{y}" '
                         f'y2="{y}" stroke="{BRAND}" stroke-width="3"/>')
        parts.append(f'<circle cx="{x(estimate["value"]):.1f}" cy="{y}" r="5" fill="{BRAND}">'
                     f"<title>{escape(name)}: {estimate['value']:.3f}</title></circle>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="agreement with 95% intervals" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')
