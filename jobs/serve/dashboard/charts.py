"""The dashboard's plots as SVG text, drawn by the server.

The page must work behind a firewall with no network, so it fetches no
plotting library; drawing a few polylines here costs about a millisecond,
where matplotlib (``evaluate --plot``) takes a hundred and would hold the GIL
the predictions need. Colours follow matplotlib's default cycle, so a model
has the same colour here as in ``evaluate --plot``.
"""

from __future__ import annotations

import html
import math
import time

__all__ = ["line_chart", "bar_chart", "marks_chart", "COLOURS"]

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 28, 10, 38  # margins around the plot area


def nice_ticks(low: float, high: float, count: int = 5, least_step: float = 0.0) -> list[float]:
    """Round tick values covering ``[low, high]``, about ``count`` of them, no closer than ``least_step``.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(3, 3)
    [3.0]
    >>> nice_ticks(10.2, 11.9, least_step=1)  # whole seconds on a clock
    [11.0]
    """
    if not high > low:
        return [float(low)]
    raw = max((high - low) / count, least_step)
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [float(round(first + i * step, 12)) for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float, clock: bool) -> str:
    if clock:
        return time.strftime("%H:%M:%S", time.gmtime(value))
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


class _Frame:
    """Maps data to pixels in a plot area and draws its axes."""

    def __init__(self, xs: list[float], ys: list[float], x_label: str, y_label: str, clock: bool = False,
                 y_from_zero: bool = False, x_from_zero: bool = False):
        self.x_low, self.x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_from_zero:
            self.x_low = min(0.0, self.x_low)
        y_low, y_high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if y_from_zero:
            y_low = min(0.0, y_low)
        if y_high == y_low:
            y_low, y_high = y_low - 0.5, y_high + 0.5
        self.y_low, self.y_high = y_low, y_high
        if self.x_high == self.x_low:
            self.x_low, self.x_high = self.x_low - 0.5, self.x_high + 0.5
        self.x_label, self.y_label, self.clock = x_label, y_label, clock

    def x(self, value: float) -> float:
        return LEFT + (value - self.x_low) / (self.x_high - self.x_low) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y_low) / (self.y_high - self.y_low) * (HEIGHT - TOP - BOTTOM)

    def axes(self, y_ticks: bool = True) -> list[str]:
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
                 'fill="none" stroke="#bbb"/>']
        for tick in nice_ticks(self.x_low, self.x_high, least_step=1.0 if self.clock else 0.0):
            x = self.x(tick)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">'
                         f'{_label(tick, self.clock)}</text>')
        for tick in nice_ticks(self.y_low, self.y_high, 4) if y_ticks else ():
            y = self.y(tick)
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                         f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_label(tick, False)}</text>')
        parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
                     f'{html.escape(self.x_label)}</text>')
        parts.append(f'<text transform="translate(12 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" '
                     f'text-anchor="middle">{html.escape(self.y_label)}</text>')
        return parts


def _short(name: str, most: int = 20) -> str:
    """A legend's name: a long model spec's tail, which names the model.

    >>> _short("examples/models/lifecycle.py:on_product")
    '…ecycle.py:on_product'
    """
    return name if len(name) <= most else "…" + name[-most:]


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'font-family="sans-serif" font-size="11"><title>{html.escape(title)}</title>{"".join(parts)}</svg>')


def _empty(title: str, message: str) -> str:
    return _svg([f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">'
                 f'{html.escape(message)}</text>'], title)


def line_chart(series: list[tuple[str, list[tuple[float, float]]]], x_label: str, y_label: str, title: str,
               clock: bool = False, y_from_zero: bool = False) -> str:
    """One polyline per ``(name, points)``, with a legend; each polyline says its series in ``data-series``."""
    series = [(name, [(x, y) for x, y in points if math.isfinite(y)]) for name, points in series]
    drawn = [(name, points) for name, points in series if points]
    if not drawn:
        return _empty(title, "nothing reported yet")
    frame = _Frame([x for _, points in drawn for x, _ in points], [y for _, points in drawn for _, y in points],
                   x_label, y_label, clock, y_from_zero, x_from_zero=not clock)  # counts of events: from the start
    parts = frame.axes()
    for number, (name, points) in enumerate(drawn):
        colour = COLOURS[number % len(COLOURS)]
        coordinates = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
        parts.append(f'<polyline data-series="{html.escape(name)}" fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{coordinates}"/>')
        if len(points) == 1:
            parts.append(f'<circle cx="{frame.x(points[0][0]):.1f}" cy="{frame.y(points[0][1]):.1f}" r="2.5" '
                         f'fill="{colour}"/>')
        legend_y = TOP + 14 + 14 * number
        parts.append(f'<line x1="{WIDTH - RIGHT - 130}" x2="{WIDTH - RIGHT - 112}" y1="{legend_y - 4}" '
                     f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{WIDTH - RIGHT - 108}" y="{legend_y}">{html.escape(_short(name))}</text>')
    return _svg(parts, title)


def bar_chart(bars: list[tuple[float, float, int]], x_label: str, title: str) -> str:
    """A histogram: one bar per ``(low, high, count)``."""
    if not bars:
        return _empty(title, "no key has a figure yet")
    frame = _Frame([bars[0][0], bars[-1][1]], [0] + [count for *_, count in bars], x_label, "keys", y_from_zero=True)
    parts = frame.axes()
    for low, high, count in bars:
        x, top = frame.x(low), frame.y(count)
        parts.append(f'<rect data-count="{count}" x="{x + 0.5:.1f}" y="{top:.1f}" '
                     f'width="{max(frame.x(high) - x - 1, 1):.1f}" height="{frame.y(0) - top:.1f}" '
                     f'fill="{COLOURS[0]}"/>')
    return _svg(parts, title)


def marks_chart(marks: list[tuple[float, str]], title: str) -> str:
    """A timeline: one row per kind of mark, a tick at each mark's time."""
    marks = [(ts, kind) for ts, kind in marks if isinstance(ts, (int, float))]
    if not marks:
        return _empty(title, "no drift or promotion yet")
    kinds = sorted({kind for _, kind in marks})
    frame = _Frame([ts for ts, _ in marks], [0, len(kinds)], "time (UTC)", "", clock=True)
    parts = frame.axes(y_ticks=False)  # the rows are named instead
    row = (HEIGHT - TOP - BOTTOM) / len(kinds)
    for number, kind in enumerate(kinds):
        colour, middle = COLOURS[number % len(COLOURS)], TOP + row * (number + 0.5)
        parts.append(f'<text x="{LEFT + 4}" y="{middle - row * 0.3:.1f}" fill="{colour}">{html.escape(kind)}</text>')
        parts.extend(f'<line data-kind="{html.escape(kind)}" x1="{frame.x(ts):.1f}" x2="{frame.x(ts):.1f}" '
                     f'y1="{middle - row * 0.2:.1f}" y2="{middle + row * 0.3:.1f}" stroke="{colour}"/>'
                     for ts, mark in marks if mark == kind)
    return _svg(parts, title)
