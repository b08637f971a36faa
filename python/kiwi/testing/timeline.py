"""Timelines: a picture of concurrent ops, to see why a history is wrong.

One lane per process, a bar per op from its invoke to its completion (the
time axis is the history's line numbers, so the picture shows exactly the
order the checker saw), coloured by outcome: green ``ok``, red ``fail``,
orange ``info`` (an op that never completed runs to the right edge, dashed).
Each bar is labelled with the op (``f``, key, value, result); hovering shows
all of it. The output is self-contained HTML with inline SVG: it shows in
Jupyter (:meth:`Timeline._repr_html_`) and in any browser
(:meth:`Timeline.save`).

Example::

    >>> from kiwi.testing.timeline import Timeline
    >>> window = [
    ...     {"process": 0, "f": "write", "key": "x", "value": 1, "result": 1, "type": "ok", "invoke": 0, "complete": 1},
    ...     {"process": 1, "f": "read", "key": "x", "value": None, "result": 2, "type": "ok", "invoke": 2, "complete": 3},
    ... ]
    >>> t = Timeline(window, title="x")
    >>> svg = t.to_svg()
    >>> svg.startswith("<svg") and "read → 2" in svg and "(key x)" in svg and "process 1" in svg
    True
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

from kiwi.testing.history import FAIL, INFO, OK, History, Op

PathLike = Union[str, "os.PathLike[str]"]

#: Bar fill and border per op type.
COLOURS = {OK: ("#a5d6a7", "#2e7d32"), FAIL: ("#ef9a9a", "#c62828"), INFO: ("#ffcc80", "#ef6c00")}
ROW = 24  # px per row of bars
LEFT = 90  # px for the lane names
TOP = 34  # px above the first lane (title, marks)
BOTTOM = 30  # px for the axis


def _ops(source: Union[History, Iterable[Union[Op, dict[str, Any]]]]) -> list[Op]:
    if isinstance(source, History):
        return source.ops()
    return [op if isinstance(op, Op) else Op.from_dict(op) for op in source]


def _short(v: Any, limit: int = 40) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(op: Op, key: bool = True) -> str:
    """The text on an op's bar (without the key if ``key`` is false): ``→``
    the result, ``≠`` a cas that compared unequal, ``✗`` another failure,
    ``?`` an unknown outcome.

    Example::

        >>> label(Op(0, "cas", "x", [1, 2], [1, 2], "fail", 0, 1))
        'cas x [1,2] ≠'
        >>> label(Op(0, "write", "x", 3, 3, "fail", 0, 1, error="CLUSTERDOWN no quorum"), key=False)
        'write 3 ✗'
        >>> label(Op(0, "read", None, None, 5, "ok", 0, 1))
        'read → 5'
    """
    parts = [op.f]
    if key and op.key is not None:
        parts.append(str(op.key))
    if op.value is not None:
        parts.append(_short(op.value))
    text = " ".join(parts)
    if op.type == OK and op.result is not None and op.result != op.value:
        text += f" → {_short(op.result)}"
    elif op.type == FAIL:
        text += " ≠" if op.f == "cas" and op.error is None else " ✗"
    elif op.type == INFO:
        text += " ?"
    return text


class Timeline:
    """A timeline of ``ops`` (a :class:`~kiwi.testing.history.History`, or
    ops / ``window`` dicts as ``check_history`` reports them).

    ``marks`` are ``(line, text)`` pairs drawn as vertical lines (faults, say);
    ``context`` ops (others running meanwhile) are drawn faintly.

    Example::

        >>> import os, pathlib, tempfile
        >>> t = Timeline([{"process": 3, "f": "add", "value": 1, "type": "info", "invoke": 4, "complete": None}])
        >>> path = os.path.join(tempfile.mkdtemp(), "t.html")
        >>> t.save(path)
        >>> pathlib.Path(path).read_text().startswith("<!DOCTYPE html>")
        True
    """

    def __init__(
        self,
        ops: Union[History, Iterable[Union[Op, dict[str, Any]]]],
        title: Optional[str] = None,
        marks: Sequence[tuple[int, str]] = (),
        context: Iterable[Union[Op, dict[str, Any]]] = (),
    ) -> None:
        self.ops = sorted(_ops(ops), key=lambda op: (op.invoke, op.process))
        self.title = title
        self.marks = list(marks)
        self.context = sorted(_ops(context), key=lambda op: (op.invoke, op.process))
        self._context_set = {id(op) for op in self.context}
        keys = {op.key for op in self.ops + self.context}
        #: The one key every op is on (then left out of the labels), if so.
        self.key: Optional[str] = next(iter(keys)) if len(keys) == 1 else None

    def _extent(self) -> tuple[int, int]:
        """First line and one past the last line the window's ops span (context is clipped to it)."""
        if not self.ops:
            return 0, 1
        first = min(op.invoke for op in self.ops)
        last = max(op.complete if op.complete is not None else op.invoke for op in self.ops)
        return first, last + 1

    def _rows(self) -> list[tuple[int, list[list[Op]]]]:
        """Per process (sorted), rows of ops that do not overlap each other."""
        lanes: dict[int, list[list[Op]]] = {}
        _, end = self._extent()
        for op in sorted(self.ops + self.context, key=lambda op: (op.invoke, op.process)):
            rows = lanes.setdefault(op.process, [])
            for row in rows:
                last = row[-1]
                if (last.complete if last.complete is not None else end) < op.invoke:
                    row.append(op)
                    break
            else:
                rows.append([op])
        return sorted(lanes.items())

    def to_svg(self) -> str:
        """The picture as an ``<svg>`` element."""
        first, end = self._extent()
        span = max(1, end - first)
        step = max(6.0, min(60.0, 900.0 / span))
        width = LEFT + (span + 1) * step + 20

        def x(line: float) -> float:
            return LEFT + (line - first + 0.5) * step

        lanes = self._rows()
        n_rows = sum(len(rows) for _, rows in lanes) or 1
        height = TOP + n_rows * ROW + BOTTOM
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
            f'viewBox="0 0 {width:.0f} {height}" font-family="sans-serif" font-size="11">'
        ]
        title = self.title or ""
        if self.key is not None:
            title += f" (key {self.key})" if title else f"key {self.key}"
        if title:
            out.append(f'<text x="4" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>')
        y = TOP
        for process, rows in lanes:
            out.append(
                f'<text x="4" y="{y + ROW * len(rows) / 2 + 4:.0f}" fill="#333">process {process}</text>'
                f'<line x1="0" x2="{width:.0f}" y1="{y}" y2="{y}" stroke="#eee"/>'
            )
            for row in rows:
                for op in row:
                    out.append(self._bar(op, x, y, end, step))
                y += ROW
        axis_y = TOP + n_rows * ROW + 4
        out.append(f'<line x1="{LEFT}" x2="{width - 10:.0f}" y1="{axis_y}" y2="{axis_y}" stroke="#999"/>')
        tick = max(1, round(span / 12))
        for line in range(first, end + 1, tick):
            out.append(
                f'<line x1="{x(line):.1f}" x2="{x(line):.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#999"/>'
                f'<text x="{x(line):.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#666">{line + 1}</text>'
            )
        out.append(f'<text x="4" y="{axis_y + 16}" fill="#666">history line</text>')
        for line, text in self.marks:
            if first <= line <= end:
                out.append(
                    f'<line x1="{x(line - 0.5):.1f}" x2="{x(line - 0.5):.1f}" y1="{TOP - 14}" y2="{axis_y}" '
                    f'stroke="#7b1fa2" stroke-dasharray="3,3"><title>{html.escape(text)}</title></line>'
                    f'<text x="{x(line - 0.5) + 3:.1f}" y="{TOP - 4}" fill="#7b1fa2">{html.escape(_short(text, 30))}</text>'
                )
        out.append("</svg>")
        return "".join(out)

    def _bar(self, op: Op, x: Any, y: int, end: int, step: float) -> str:
        fill, stroke = COLOURS.get(op.type, COLOURS[INFO])
        left = max(LEFT - 2.0, x(op.invoke) - step * 0.4)
        right = x(min(op.complete if op.complete is not None else end, end)) + step * 0.4
        dash = ' stroke-dasharray="4,2"' if op.complete is None else ""
        faint = ' opacity="0.35"' if id(op) in self._context_set else ""
        text = label(op, key=self.key is None)
        full = json.dumps(op.to_dict(), ensure_ascii=False)
        chars = max(0, int((right - left - 6) / 6.2))
        shown = text if len(text) <= chars else (text[: max(0, chars - 1)] + "…" if chars > 1 else "")
        return (
            f"<g{faint}><title>{html.escape(full)}</title>"
            f'<rect x="{left:.1f}" y="{y + 3}" width="{max(2.0, right - left):.1f}" height="{ROW - 6}" rx="3" '
            f'fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text x="{left + 3:.1f}" y="{y + ROW / 2 + 4:.0f}" fill="#111">{html.escape(shown)}</text></g>'
        )

    def to_html(self) -> str:
        """The picture with a legend, as an HTML fragment."""
        legend = " ".join(
            f'<span style="background:{fill};border:1px solid {stroke};padding:0 4px">{kind}</span>'
            for kind, (fill, stroke) in COLOURS.items()
        )
        faint = " (faint: other ops running meanwhile)" if self.context else ""
        return (
            '<div class="kiwi-timeline" style="overflow-x:auto">'
            f'<div style="font:11px sans-serif;margin:2px 0">{legend}{faint} — hover a bar for the whole op</div>'
            f"{self.to_svg()}</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def save(self, path: PathLike) -> None:
        """Write a standalone HTML page with the timeline to ``path``."""
        title = html.escape(self.title or "kiwi.testing timeline")
        page = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body>{self.to_html()}</body></html>\n"
        )
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)

    def __repr__(self) -> str:
        return f"<kiwi.testing.Timeline {len(self.ops)} ops>"
