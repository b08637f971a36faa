"""Readable status: ``repr`` and Jupyter's ``_repr_html_`` for Server and Database."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

import kiwi

pytestmark = pytest.mark.kiwi_only

#: A directory name that must be escaped in HTML.
NASTY = "a<b>&\"c'"


class StatusTable(HTMLParser):
    """Reads a status table into its caption and ``{label: value}`` rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.caption = ""
        self.rows: dict[str, str] = {}
        self.tags: list[str] = []
        self._cell: str | None = None
        self._label = ""
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("th", "td", "caption"):
            self._cell, self._text = tag, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self.caption = self._text
        elif tag == "th":
            self._label = self._text
        elif tag == "td":
            assert self._label not in self.rows, f"duplicate row {self._label!r}"
            self.rows[self._label] = self._text
        self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text += data


def parse(markup: str) -> StatusTable:
    table = StatusTable()
    table.feed(markup)
    table.close()
    assert table.tags[:2] == ["table", "caption"], markup
    return table


def test_running_server_table_shows_address_dir_state_keys_clients_uptime(tmp_path: Path) -> None:
    with kiwi.Server(dir=tmp_path / "data") as server:
        client = server.client()
        other = server.client()
        try:
            client.mset({"a": 1, "b": 2})
            client.set("t", "v", ex=100)
            client.select(3)
            client.set("in-3", "x")
            other.ping()
            table = parse(server._repr_html_())
        finally:
            client.close()
            other.close()
        assert table.caption == "kiwi.Server"
        rows = table.rows
        assert rows["address"] == f"127.0.0.1:{server.port}"
        assert rows["data dir"] == str(tmp_path / "data")
        assert rows["state"] == "running"
        assert rows["db0 keys"] == "3 (1 with expiry)"
        assert rows["db3 keys"] == "1 (0 with expiry)"
        assert "keys" not in rows
        # The two clients above plus the one that asked INFO.
        assert rows["connected clients"] == "3"
        assert rows["uptime"].endswith("s")
        assert list(rows) == ["address", "data dir", "state", "db0 keys", "db3 keys", "connected clients", "uptime"]
        assert repr(server) == f"<kiwi.Server 127.0.0.1:{server.port} dir={str(tmp_path / 'data')!r}>"
    stopped = parse(server._repr_html_())
    assert stopped.rows == {"address": "-", "data dir": str(tmp_path / "data"), "state": "stopped"}
    assert repr(server).startswith("<kiwi.Server stopped")


def test_empty_server_and_password_protected_server() -> None:
    with kiwi.Server(requirepass="s3cret") as server:
        rows = parse(server._repr_html_()).rows
        assert rows["state"] == "running"
        assert rows["keys"] == "0"
        assert rows["connected clients"] == "1"


def test_never_started_server() -> None:
    rows = parse(kiwi.Server()._repr_html_()).rows
    assert rows == {"address": "-", "data dir": "-", "state": "stopped"}


def test_server_html_escapes_everything(tmp_path: Path) -> None:
    path = tmp_path / NASTY
    with kiwi.Server(dir=path) as server:
        markup = server._repr_html_()
    assert NASTY not in markup
    assert "a&lt;b&gt;&amp;&quot;c&#x27;" in markup
    assert parse(markup).rows["data dir"] == str(path)


def test_database_table_shows_path_state_and_keys(tmp_path: Path) -> None:
    path = tmp_path / NASTY
    db = kiwi.open(path)
    try:
        assert parse(db._repr_html_()).rows == {"path": str(path), "state": "open", "keys": "0"}
        db.mset({"a": 1, "b": 2})
        db.set("t", "v", px=100_000)
        markup = db._repr_html_()
        assert NASTY not in markup
        assert "a&lt;b&gt;&amp;&quot;c&#x27;" in markup
        table = parse(markup)
        assert table.caption == "kiwi.Database"
        assert table.rows == {"path": str(path), "state": "open", "db0 keys": "3 (1 with expiry)"}
        assert repr(db) == f"<kiwi.Database {str(path)!r} open>"
    finally:
        db.close()
    assert parse(db._repr_html_()).rows == {"path": str(path), "state": "closed"}
    assert repr(db) == f"<kiwi.Database {str(path)!r} closed>"
