"""Server-side SVG charts of the labelers-over-time pages (pure: weeks in, SVG strings out; no CDN).

One chart per measure: the weekly value as a line with dots, its 95 % CI as a band (broken at
weeks without data), optionally the trailing level as a dashed step line, and drift weeks
shaded red. The SVG scales down to its container (a 390 px phone) through its viewBox."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape, quoteattr

from review.quality_series import Week

BRAND = "#264b5d"  # the colours of the other pages' charts
BAND = "#9fb7c4"
TRAILING = "#b45309"
DRIFT = "#b91c1c"
GRID = "#e5e7eb"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'

Measure = Callable[[Week], tuple[float | None, float | None, float | None, int]]  # value, low, high, n


def accuracy(week: Week) -> tuple[float | None, float | None, float | None, int]:
    a = week.accuracy
    return a.value, a.ci_low, a.ci_high, a.n


def kappa(week: Week) -> tuple[float | None, float | None, float | None, int]:
    k = week.kappa
    return k.value, k.ci_low, k.ci_high, k.n


def peer(week: Week) -> tuple[float | None, float | None, float | None, int]:
    p = week.peer
    return p.value, p.ci_low, p.ci_high, p.n


def final(week: Week) -> tuple[float | None, float | None, float | None, int]:
    f = week.final
    return f.value, f.ci_low, f.ci_high, f.n


MEASURES: dict[str, tuple[str, Measure]] = {
    "accuracy": ("Accuracy on hidden gold", accuracy),
    "kappa": ("Cohen's κ on hidden gold", kappa),
    "peer": ("Agreement with peers (pairs)", peer),
    "final": ("Agreement with the final label", final),
}


def weekly_chart(weeks: Sequence[Week], measure: str, *, show_trailing: bool = False, width: int = 640,
                 height: int = 220) -> str:
    """The weekly series of one measure (a key of MEASURES) over ``weeks``."""
    title, read = MEASURES[measure]
    pad_left, pad_right, pad_top, pad_bottom = 40, 12, 22, 34
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    points = [read(week) for week in weeks]
    lowest = min((low for _, low, _, _ in points if low is not None), default=0.0)
    floor = -1.0 if lowest < -0.5 else (-0.5 if lowest < 0 else 0.0)
    step = plot_w / max(len(weeks), 1)

    def px(i: int) -> float:
        return pad_left + step * (i + 0.5)

    def py(value: float) -> float:
        return pad_top + plot_h * (1 - (value - floor) / (1 - floor))

    parts = [f'<text x="{pad_left}" y="14" {FONT} font-weight="600">{escape(title)}</text>']
    for i, week in enumerate(weeks):
        if week.drift:
            parts.append(f'<rect class="drift" x="{pad_left + step * i:.1f}" y="{pad_top}" width="{step:.1f}" '
                         f'height="{plot_h}" fill="{DRIFT}" fill-opacity="0.12">'
                         f"<title>{escape(week.drift_reason)}</title></rect>")
    ticks = [floor + (1 - floor) * k / 4 for k in range(5)]
    for tick in ticks:
        parts.append(f'<line x1="{pad_left}" x2="{pad_left + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
                     f'stroke="{GRID}"/><text x="{pad_left - 4}" y="{py(tick) + 4:.1f}" text-anchor="end" '
                     f'font-size="10" font-family="system-ui, sans-serif">{tick:g}</text>')
    every = max(1, round(len(weeks) / max(1, width // 80)))  # a week label every ~80 px, whatever the window
    for i, week in enumerate(weeks):
        if (len(weeks) - 1 - i) % every == 0:
            parts.append(f'<text x="{px(i):.1f}" y="{pad_top + plot_h + 14}" text-anchor="middle" font-size="10" '
                         f'font-family="system-ui, sans-serif">{escape(week.name[5:])}</text>')
    if weeks:
        parts.append(f'<text x="{pad_left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" font-size="10" '
                     f'font-family="system-ui, sans-serif" fill="#6b7280">ISO week (UTC) · {escape(weeks[0].name)} '
                     f'to {escape(weeks[-1].name)}</text>')
    for run in _runs([i for i, (_, low, high, _) in enumerate(points) if low is not None and high is not None]):
        upper = [f"{px(i) - (step * 0.3 if len(run) == 1 else 0):.1f},{py(points[i][2]):.1f}" for i in run]
        lower = [f"{px(i) + (step * 0.3 if len(run) == 1 else 0):.1f},{py(points[i][1]):.1f}" for i in reversed(run)]
        if len(run) == 1:
            upper.append(f"{px(run[0]) + step * 0.3:.1f},{py(points[run[0]][2]):.1f}")
            lower.append(f"{px(run[0]) - step * 0.3:.1f},{py(points[run[0]][1]):.1f}")
        parts.append(f'<polygon class="ci" points="{" ".join(upper + lower)}" fill="{BAND}" fill-opacity="0.45"/>')
    if show_trailing:
        for i, week in enumerate(weeks):
            if week.trailing is not None:
                y = py(week.trailing.value)
                parts.append(f'<line class="trailing" x1="{px(i) - step / 2:.1f}" x2="{px(i) + step / 2:.1f}" '
                             f'y1="{y:.1f}" y2="{y:.1f}" stroke="{TRAILING}" stroke-width="2" stroke-dasharray="4 3">'
                             f"<title>{escape(week.name)}: trailing level {week.trailing.value:.3f} "
                             f"({week.trailing.n} answers)</title></line>")
    for run in _runs([i for i, (value, _, _, _) in enumerate(points) if value is not None]):
        if len(run) > 1:
            line = " ".join(f"{px(i):.1f},{py(points[i][0]):.1f}" for i in run)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{BRAND}" stroke-width="2"/>')
    for i, (value, low, high, n) in enumerate(points):
        if value is None:
            continue
        week = weeks[i]
        ci = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
        colour = DRIFT if week.drift and measure == "accuracy" else BRAND
        parts.append(f'<circle cx="{px(i):.1f}" cy="{py(value):.1f}" r="{5 if colour == DRIFT else 3.5}" '
                     f'fill="{colour}"><title>{escape(week.name)}: {value:.3f}{ci}, n = {n}</title></circle>')
    if not any(value is not None for value, _, _, _ in points):
        parts.append(f'<text x="{pad_left + 8}" y="{pad_top + plot_h / 2:.0f}" {FONT} fill="#6b7280">'
                     "No data in these weeks.</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(title + " by week")} '
            f'class="weekly" data-measure="{measure}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto">{"".join(parts)}</svg>')


def _runs(indices: list[int]) -> list[list[int]]:
    """Consecutive indices grouped: a band or a line breaks at a week without data."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
