"""Small HTML status tables for Jupyter (``_repr_html_``), escaped throughout."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

Row = tuple[str, Any]


def keyspace_rows(info: Mapping[str, Any]) -> list[Row]:
    """``("db0 keys", "3 (1 with expiry)")`` rows from a parsed ``INFO keyspace``.

    ``info`` is redis-py's parsed INFO: ``{"db0": {"keys": 3, "expires": 1, ...}}``.
    An empty keyspace gives a single ``("keys", "0")`` row.

    Example::

        >>> keyspace_rows({"db0": {"keys": 3, "expires": 1}})
        [('db0 keys', '3 (1 with expiry)')]
        >>> keyspace_rows({})
        [('keys', '0')]
    """
    rows: list[Row] = []
    dbs = sorted(
        (name for name in info if name.startswith("db") and name[2:].isdigit()),
        key=lambda name: int(name[2:]),
    )
    for name in dbs:
        stats = info[name]
        if isinstance(stats, Mapping):
            keys, expires = stats.get("keys", 0), stats.get("expires", 0)
            rows.append((f"{name} keys", f"{keys} ({expires} with expiry)"))
    return rows or [("keys", "0")]


def table(title: str, rows: Iterable[Row]) -> str:
    """An HTML table with a caption; every title, label and value is escaped.

    Example::

        >>> table("kiwi", [("a<b", "<x>")])
        '<table class="kiwi-status"><caption>kiwi</caption><tbody><tr><th style="text-align:left">a&lt;b</th><td style="text-align:left">&lt;x&gt;</td></tr></tbody></table>'
    """
    body = "".join(
        f'<tr><th style="text-align:left">{html.escape(str(label))}</th>'
        f'<td style="text-align:left">{html.escape(str(value))}</td></tr>'
        for label, value in rows
    )
    return f'<table class="kiwi-status"><caption>{html.escape(title)}</caption><tbody>{body}</tbody></table>'


def duration(seconds: int) -> str:
    """A short human duration: ``"3d 4h 5m 6s"``.

    Example::

        >>> duration(93906)
        '1d 2h 5m 6s'
        >>> duration(7)
        '7s'
    """
    seconds = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size or parts:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return " ".join(parts)
