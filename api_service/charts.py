"""Charts as inline SVG, drawn on the server.

The quality report must load nothing from another host and run under a Content-Security-Policy
without scripts, so its charts are plain SVG markup: bars and lines placed here in Python, colours
given as presentation attributes (not `style`, which the policy forbids), fonts from the report's
stylesheet. Every text is escaped; the result is `Markup` ready for a Jinja template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 760
HEIGHT = 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 70, 58
_LABEL_PX = 52  # room one x tick label needs
_AXIS = "#4a5568"
_GRID = "#e2e8f0"


@dataclass(frozen=True)
class Series:
    """One coloured set of values, one per category of the chart (None: a gap in a line)."""

    name: str
    values: Sequence[float | None]
    color: str


def nice_ticks(maximum: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least `maximum` (steps of 1, 2 or 5 x 10^k); counts
    (`integer`) never get a step below 1."""
    if not maximum or maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(step, 1)
    top = math.ceil(maximum / step - 1e-9) * step
    return [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class _Frame:
    """Plot area, scales and the parts every chart shares (title, axes, legend)."""

    def __init__(
        self, chart_id: str, title: str, labels: Sequence[str], y_max: float, integer: bool
    ):
        self.chart_id = chart_id
        self.title = title
        self.labels = list(labels)
        self.ticks = nice_ticks(y_max, integer=integer)
        self.plot_w = WIDTH - _LEFT - _RIGHT
        self.plot_h = HEIGHT - _TOP - _BOTTOM
        self.band = self.plot_w / max(len(self.labels), 1)

    def x(self, index: int) -> float:
        """Centre of category `index`."""
        return _LEFT + self.band * (index + 0.5)

    def y(self, value: float) -> float:
        return _TOP + self.plot_h * (1 - value / self.ticks[-1])

    def open(
        self, description: str, x_label: str, y_label: str, series: Sequence[Series], empty: bool
    ) -> list:
        cid = escape(self.chart_id)
        parts = [
            f'<svg class="chart" id="{cid}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-labelledby="{cid}-title {cid}-desc">',
            f'<title id="{cid}-title">{escape(self.title)}</title>',
            f'<desc id="{cid}-desc">{escape(description)}</desc>',
            f'<text class="chart-title" x="{_LEFT}" y="24">{escape(self.title)}</text>',
        ]
        parts += self._legend(series)
        parts += self._axes(x_label, y_label, empty)
        return parts

    def _legend(self, series: Sequence[Series]) -> list[str]:
        out = ['<g class="legend">']
        x = float(_LEFT)
        for item in series:
            out.append(
                f'<rect x="{x:.1f}" y="36" width="12" height="12" fill="{escape(item.color)}"/>'
                f'<text class="legend-label" x="{x + 17:.1f}" y="46">{escape(item.name)}</text>'
            )
            x += 34 + 7.5 * len(item.name)
        out.append("</g>")
        return out

    def _axes(self, x_label: str, y_label: str, empty: bool) -> list[str]:
        bottom = _TOP + self.plot_h
        out = ['<g class="axes">']
        for tick in self.ticks:
            y = self.y(tick)
            out.append(
                f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + self.plot_w}" y2="{y:.1f}" '
                f'stroke="{_GRID}" stroke-width="1"/>'
                f'<text class="tick" x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_fmt(tick)}</text>"
            )
        every = max(1, math.ceil(len(self.labels) / max(1, self.plot_w // _LABEL_PX)))
        for i, label in enumerate(self.labels):
            if i % every == 0:
                out.append(
                    f'<text class="tick" x="{self.x(i):.1f}" y="{bottom + 18}" '
                    f'text-anchor="middle">{escape(label)}</text>'
                )
        out.append(
            f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" stroke="{_AXIS}"/>'
            f'<line x1="{_LEFT}" y1="{bottom}" x2="{_LEFT + self.plot_w}" y2="{bottom}" '
            f'stroke="{_AXIS}"/>'
            f'<text class="axis-label" x="{_LEFT + self.plot_w / 2:.1f}" y="{HEIGHT - 10}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
            f'<text class="axis-label" x="16" y="{_TOP + self.plot_h / 2:.1f}" '
            f'text-anchor="middle" transform="rotate(-90 16 {_TOP + self.plot_h / 2:.1f})">'
            f"{escape(y_label)}</text>"
        )
        if empty:
            out.append(
                f'<text class="no-data" x="{_LEFT + self.plot_w / 2:.1f}" '
                f'y="{_TOP + self.plot_h / 2:.1f}" text-anchor="middle">No data in this period</text>'
            )
        out.append("</g>")
        return out


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for item in series:
        if len(item.values) != len(labels):
            raise ValueError(
                f"series {item.name!r} has {len(item.values)} values for {len(labels)} labels"
            )


def stacked_bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
) -> Markup:
    """Bars per category, the series stacked bottom-up in the order given."""
    _check(labels, series)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    frame = _Frame(chart_id, title, labels, max(totals, default=0), integer=True)
    summary = "; ".join(
        f"{label}: " + ", ".join(f"{s.name} {_fmt(s.values[i] or 0)}" for s in series)
        for i, label in enumerate(labels)
        if totals[i]
    )
    empty = not any(totals)
    parts = frame.open(summary or "no data", x_label, y_label, series, empty)
    width = frame.band * 0.7
    parts.append('<g class="bars">')
    for i, label in enumerate(labels):
        base = 0.0
        for item in series:
            value = item.values[i] or 0
            if value <= 0:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            parts.append(
                f'<rect class="bar" x="{frame.x(i) - width / 2:.1f}" y="{top:.1f}" '
                f'width="{width:.1f}" height="{bottom - top:.1f}" fill="{escape(item.color)}">'
                f"<title>{escape(label)}: {escape(item.name)} {_fmt(value)}</title></rect>"
            )
            base += value
    parts.append("</g></svg>")
    # every text in the SVG went through escape(); numbers are formatted by the code
    return Markup("".join(parts))  # nosec B704


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    unit: str = "",
    integer: bool = False,
) -> Markup:
    """One line per series; a None value is a gap (no point that day). `integer`: the values
    are counts, so the y axis has whole-number ticks."""
    _check(labels, series)
    values = [v for s in series for v in s.values if v is not None]
    frame = _Frame(chart_id, title, labels, max(values, default=0), integer)
    summary = "; ".join(
        f"{s.name}: "
        + ", ".join(f"{labels[i]} {_fmt(v)}{unit}" for i, v in enumerate(s.values) if v is not None)
        for s in series
    )
    parts = frame.open(summary or "no data", x_label, y_label, series, not values)
    for item in series:
        color = escape(item.color)
        parts.append(f'<g class="series" data-series="{escape(item.name)}">')
        path, pen_down = [], False
        for i, value in enumerate(item.values):
            if value is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{frame.x(i):.1f} {frame.y(value):.1f}")
            pen_down = True
        if path:
            parts.append(
                f'<path class="line" d="{" ".join(path)}" fill="none" stroke="{color}" '
                f'stroke-width="2.5" stroke-linejoin="round"/>'
            )
        for i, value in enumerate(item.values):
            if value is not None:
                parts.append(
                    f'<circle class="point" cx="{frame.x(i):.1f}" cy="{frame.y(value):.1f}" '
                    f'r="3.5" fill="{color}"><title>{escape(labels[i])}: {escape(item.name)} '
                    f"{_fmt(value)}{escape(unit)}</title></circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    # every text in the SVG went through escape(); numbers are formatted by the code
    return Markup("".join(parts))  # nosec B704
