"""Server-side SVG charts of the evaluation page (pure: numbers in, SVG strings out; no CDN).
The headline intervals reuse :func:`goldsets.charts.interval_chart`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

from goldsets.charts import BRAND, FONT

ACCENT = "#c2410c"  # the chosen threshold
GRID = "#e5e7eb"


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(label)} '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{body}</svg>')


def confusion_heatmap(labels: Sequence[str], counts: Sequence[Sequence[int]], *, cell: int = 56) -> str:
    """Rows gold, columns signal; each cell's shade is its share of its gold row (so rare labels
    read as well as common ones), with the count written in it."""
    margin_left, margin_top = 150, 120
    q = len(labels)
    width, height = margin_left + q * cell + 10, margin_top + q * cell + 46
    parts = [f'<text x="{margin_left + q * cell / 2:.0f}" y="14" text-anchor="middle" {FONT} font-weight="600">'
             f"signal →</text>",
             f'<text transform="translate(14,{margin_top + q * cell / 2:.0f}) rotate(-90)" text-anchor="middle" '
             f'{FONT} font-weight="600">gold →</text>']
    for i, label in enumerate(labels):
        parts.append(f'<text x="{margin_left - 6}" y="{margin_top + i * cell + cell * 0.58:.1f}" text-anchor="end" '
                     f"{FONT}>{escape(label)}</text>")
        parts.append(f'<text transform="translate({margin_left + i * cell + cell * 0.55:.1f},{margin_top - 6}) '
                     f'rotate(-40)" {FONT}>{escape(label)}</text>')
    for i, row in enumerate(counts):
        total = sum(row) or 1
        for j, value in enumerate(row):
            share = value / total
            fill = (f"rgb({int(255 - 217 * share)},{int(255 - 180 * share)},{int(255 - 162 * share)})" if i == j
                    else f"rgb(255,{int(255 - 150 * share)},{int(255 - 160 * share)})")
            ink = "#fff" if share > 0.55 else "#111"
            x, y = margin_left + j * cell, margin_top + i * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                         f"<title>gold {escape(labels[i])}, signal {escape(labels[j])}: {value} "
                         f"({100 * share:.1f}% of the gold row)</title></rect>"
                         f'<text x="{x + (cell - 2) / 2}" y="{y + cell * 0.58:.1f}" text-anchor="middle" '
                         f'font-size="12" font-family="system-ui, sans-serif" fill="{ink}">{value}</text>')
    muted = f'{FONT} fill="#6b7280"'
    parts.append(f'<text x="10" y="{height - 24}" {muted}>shade: share of the gold row</text>'
                 f'<text x="10" y="{height - 8}" {muted}>blue diagonal = agreement, red = confusion</text>')
    return _svg(max(width, 300), height, "confusion matrix", "".join(parts))


def curve_chart(xs: Sequence[float], ys: Sequence[float], *, x_label: str, y_label: str, title: str,
                marker: tuple[float | None, float | None] | None = None, marker_label: str = "",
                diagonal: bool = False, size: int = 320) -> str:
    """A curve on [0, 1] × [0, 1] (PR or ROC) with the chosen threshold's point marked."""
    pad_left, pad_bottom, pad_top, pad_right = 46, 40, 24, 14
    plot = size - pad_left - pad_right
    height = pad_top + plot + pad_bottom

    def px(x: float) -> float:
        return pad_left + plot * x

    def py(y: float) -> float:
        return pad_top + plot * (1 - y)

    parts = [f'<text x="{pad_left}" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{px(tick):.1f}" x2="{px(tick):.1f}" y1="{pad_top}" y2="{pad_top + plot}" '
                     f'stroke="{GRID}"/><line x1="{pad_left}" x2="{pad_left + plot}" y1="{py(tick):.1f}" '
                     f'y2="{py(tick):.1f}" stroke="{GRID}"/>'
                     f'<text x="{px(tick):.1f}" y="{pad_top + plot + 14}" text-anchor="middle" font-size="10" '
                     f'font-family="system-ui, sans-serif">{tick:g}</text>'
                     f'<text x="{pad_left - 4}" y="{py(tick) + 3:.1f}" text-anchor="end" font-size="10" '
                     f'font-family="system-ui, sans-serif">{tick:g}</text>')
    parts.append(f'<text x="{pad_left + plot / 2:.0f}" y="{height - 6}" text-anchor="middle" {FONT}>'
                 f"{escape(x_label)}</text>"
                 f'<text transform="translate(12,{pad_top + plot / 2:.0f}) rotate(-90)" text-anchor="middle" {FONT}>'
                 f"{escape(y_label)}</text>")
    if diagonal:
        parts.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#9ca3af" '
                     'stroke-dasharray="4 4"/>')
    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True)
                      if x is not None and y is not None)
    parts.append(f'<polyline points="{points}" fill="none" stroke="{BRAND}" stroke-width="2"/>')
    if marker is not None and marker[0] is not None and marker[1] is not None:
        mx, my = px(marker[0]), py(marker[1])
        parts.append(f'<circle class="chosen" cx="{mx:.1f}" cy="{my:.1f}" r="6" fill="{ACCENT}" stroke="#fff" '
                     f'stroke-width="2"><title>{escape(marker_label)}</title></circle>'
                     f'<text x="{min(mx + 9, size - 80):.1f}" y="{max(my - 8, pad_top + 10):.1f}" font-size="11" '
                     f'font-family="system-ui, sans-serif" fill="{ACCENT}">{escape(marker_label)}</text>')
    return _svg(size, height, title, "".join(parts))


def reliability_chart(bins: Sequence[Mapping], *, size: int = 320, title: str = "Reliability diagram") -> str:
    """Observed rate against mean predicted probability per bin (equal-width bins), bars
    showing each bin's share of the items, and the diagonal of perfect calibration."""
    pad_left, pad_bottom, pad_top, pad_right = 46, 40, 24, 14
    plot = size - pad_left - pad_right
    height = pad_top + plot + pad_bottom
    total = sum(b["count"] for b in bins) or 1

    def px(x: float) -> float:
        return pad_left + plot * x

    def py(y: float) -> float:
        return pad_top + plot * (1 - y)

    parts = [f'<text x="{pad_left}" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{px(tick):.1f}" y="{pad_top + plot + 14}" text-anchor="middle" font-size="10" '
                     f'font-family="system-ui, sans-serif">{tick:g}</text>'
                     f'<text x="{pad_left - 4}" y="{py(tick) + 3:.1f}" text-anchor="end" font-size="10" '
                     f'font-family="system-ui, sans-serif">{tick:g}</text>')
    parts.append(f'<rect x="{pad_left}" y="{pad_top}" width="{plot}" height="{plot}" fill="none" stroke="{GRID}"/>')
    for b in bins:
        share = b["count"] / total
        bar = plot * (b["high"] - b["low"]) - 2
        parts.append(f'<rect x="{px(b["low"]) + 1:.1f}" y="{py(share):.1f}" width="{bar:.1f}" '
                     f'height="{plot * share:.1f}" fill="#dbeafe"><title>{b["count"]} items</title></rect>')
    parts.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#9ca3af" stroke-dasharray="4 4"/>')
    filled = [b for b in bins if b["count"]]
    points = " ".join(f"{px(b['mean_probability']):.1f},{py(b['observed_rate']):.1f}" for b in filled)
    parts.append(f'<polyline points="{points}" fill="none" stroke="{BRAND}" stroke-width="2"/>')
    for b in filled:
        parts.append(f'<circle cx="{px(b["mean_probability"]):.1f}" cy="{py(b["observed_rate"]):.1f}" r="4" '
                     f'fill="{BRAND}"><title>{b["low"]:.2f}–{b["high"]:.2f}: mean {b["mean_probability"]:.3f}, '
                     f'observed {b["observed_rate"]:.3f}, {b["count"]} items</title></circle>')
    parts.append(f'<text x="{pad_left + plot / 2:.0f}" y="{height - 6}" text-anchor="middle" {FONT}>'
                 "mean predicted probability</text>"
                 f'<text transform="translate(12,{pad_top + plot / 2:.0f}) rotate(-90)" text-anchor="middle" {FONT}>'
                 "observed rate</text>")
    return _svg(size, height, title, "".join(parts))


def delta_chart(rows: Sequence[tuple[str, Mapping | None]], *, width: int = 560) -> str:
    """Differences B − A with their 95 % CIs on a symmetric axis around 0 (wide enough for every
    interval, at least ±0.1); the 0 line marks "no change". Rows: (name, {"delta", "ci_low",
    "ci_high", "reason"}); an undefined delta is written as such."""
    label_width, step = 170, 28
    height = step * len(rows) + 30
    span = width - label_width - 30
    reach = max([0.1] + [abs(v) for _, d in rows if d for v in (d.get("delta"), d.get("ci_low"), d.get("ci_high"))
                         if v is not None])
    bound = min(1.0, -(-reach * 10 // 1) / 10)  # up to the next 0.1

    def x(value: float) -> float:
        return label_width + span * (min(max(value, -bound), bound) + bound) / (2 * bound)

    parts = []
    for tick in (-bound, -bound / 2, 0.0, bound / 2, bound):
        colour = "#9ca3af" if tick == 0 else GRID
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="4" y2="{height - 22}" stroke="{colour}"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" {FONT}>{tick:+.2f}</text>')
    for i, (name, d) in enumerate(rows):
        y = 14 + i * step
        parts.append(f'<text x="{label_width - 8}" y="{y + 4}" text-anchor="end" {FONT}>{escape(name)}</text>')
        if not d or d.get("delta") is None:
            parts.append(f'<text x="{label_width}" y="{y + 4}" {FONT} fill="#6b7280">undefined</text>')
            continue
        if d.get("ci_low") is not None:
            parts.append(f'<line class="ci" x1="{x(d["ci_low"]):.1f}" x2="{x(d["ci_high"]):.1f}" y1="{y}" y2="{y}" '
                         f'stroke="{BRAND}" stroke-width="3"/>')
        parts.append(f'<circle class="delta" cx="{x(d["delta"]):.1f}" cy="{y}" r="5" fill="{BRAND}">'
                     f"<title>{escape(name)}: {d['delta']:+.3f}</title></circle>")
    return _svg(width, height, "differences B minus A with 95% intervals", "".join(parts))


SERIES = ("#264b5d", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0369a1")  # one per golden-set version


def history_chart(points: Sequence[Mapping], *, metric: str, width: int = 640) -> str:
    """A signal's evaluations over time: one headline estimate per evaluation with its 95 % CI as
    an error bar, in evaluation order (x: the version evaluated, and the date), one colour and
    line per golden-set version. Points: {"id", "href", "x_label", "date", "group", "estimate"};
    an undefined estimate is drawn as a grey × on the axis with its reason."""
    pad_left, pad_right, pad_top, plot_h = 46, 16, 18, 200
    groups = list(dict.fromkeys(p["group"] for p in points))
    legend_h = 18 * len(groups)
    height = pad_top + plot_h + 44 + legend_h
    n = max(len(points), 1)
    step = min(90.0, max(40.0, (width - pad_left - pad_right) / n))
    width = max(560, int(pad_left + pad_right + step * n))
    # The y axis starts at the lowest interval bound rounded down to 0.1 (not at 0), so that
    # changes between versions show; its ticks say where it starts.
    lows = [v for p in points if p["estimate"] for v in (p["estimate"].get("value"), p["estimate"].get("ci_low"))
            if v is not None]
    bottom = max(0.0, min([1.0, *lows]) * 10 // 1 / 10 - 0.1) if lows else 0.0

    def px(i: int) -> float:
        return pad_left + step * (i + 0.5)

    def py(y: float) -> float:
        return pad_top + plot_h * (1 - (min(max(y, bottom), 1.0) - bottom) / (1 - bottom))

    parts = []
    tick_step = 0.1 if 1 - bottom <= 0.5 + 1e-9 else 0.2
    for tick in [round(bottom + tick_step * k, 1) for k in range(int(round((1 - bottom) / tick_step)) + 1)]:
        parts.append(f'<line x1="{pad_left}" x2="{width - pad_right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
                     f'stroke="{GRID}"/><text x="{pad_left - 4}" y="{py(tick) + 3:.1f}" text-anchor="end" '
                     f'font-size="10" font-family="system-ui, sans-serif">{tick:g}</text>')
    parts.append(f'<text transform="translate(12,{pad_top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
                 f"{FONT}>{escape(metric)}</text>")
    every = max(1, round(28 / step))  # labels at least ~28 px apart
    for i, p in enumerate(points):
        if i % every == 0:
            parts.append(f'<text x="{px(i):.1f}" y="{pad_top + plot_h + 14}" text-anchor="middle" font-size="10" '
                         f'font-family="system-ui, sans-serif">{escape(p["x_label"])}</text>'
                         f'<text x="{px(i):.1f}" y="{pad_top + plot_h + 26}" text-anchor="middle" font-size="9" '
                         f'font-family="system-ui, sans-serif" fill="#6b7280">{escape(p["date"])}</text>')
    for g, group in enumerate(groups):
        colour = SERIES[g % len(SERIES)]
        line = [(px(i), py(p["estimate"]["value"])) for i, p in enumerate(points)
                if p["group"] == group and p["estimate"] and p["estimate"].get("value") is not None]
        if len(line) > 1:
            parts.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in line)}" fill="none" '
                         f'stroke="{colour}" stroke-width="1.5" stroke-opacity="0.6"/>')
        y = pad_top + plot_h + 44 + 18 * g
        parts.append(f'<circle cx="{pad_left + 5}" cy="{y - 4}" r="5" fill="{colour}"/>'
                     f'<text class="legend" x="{pad_left + 16}" y="{y}" {FONT}>{escape(group)}</text>')
    for i, p in enumerate(points):
        colour = SERIES[groups.index(p["group"]) % len(SERIES)]
        e = p["estimate"] or {}
        x = px(i)
        if e.get("value") is None:
            reason = e.get("reason") or "no value stored"
            parts.append(f'<a href={quoteattr(p["href"])}><text class="undefined" x="{x:.1f}" y="{py(bottom) - 4:.1f}" '
                         f'text-anchor="middle" font-size="14" fill="#9ca3af">×<title>evaluation {p["id"]}: '
                         f"undefined ({escape(reason)})</title></text></a>")
            continue
        title = f"evaluation {p['id']}, {p['x_label']} on {p['group']}: {e['value']:.3f}"
        if e.get("ci_low") is not None:
            title += f" [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
            parts.append(f'<line class="ci" x1="{x:.1f}" x2="{x:.1f}" y1="{py(e["ci_low"]):.1f}" '
                         f'y2="{py(e["ci_high"]):.1f}" stroke="{colour}" stroke-width="2"/>'
                         f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{py(e["ci_low"]):.1f}" '
                         f'y2="{py(e["ci_low"]):.1f}" '
                         f'stroke="{colour}" stroke-width="2"/>'
                         f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{py(e["ci_high"]):.1f}" '
                         f'y2="{py(e["ci_high"]):.1f}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<a href={quoteattr(p["href"])}><circle class="point" cx="{x:.1f}" cy="{py(e["value"]):.1f}" '
                     f'r="5" fill="{colour}" stroke="#fff" stroke-width="1.5"><title>{escape(title)}</title>'
                     f"</circle></a>")
    return _svg(width, height, f"{metric} per evaluation with 95% intervals", "".join(parts))
