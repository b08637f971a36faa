"""MONITOR against Redis: the same commands on Debian's redis-server and on
Kiwi show the same lines (timestamps and client ports aside), in the same
order: arguments quoted as Redis quotes them, secrets redacted, admin and
refused commands left out, EXEC after the commands it ran, a script's
commands as ``lua``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import HOST, RawConnection, reference_redis_server

pytestmark = pytest.mark.kiwi_only

COMMANDS: list[list[str]] = [
    ["SET", "a b", 'x"y\nz\t\x01\xff'],
    ["GET", "a b"],
    ["CONFIG", "GET", "maxmemory"],
    ["CLIENT", "LIST"],
    ["CLIENT", "GETNAME"],
    ["AUTH", "secret"],
    ["AUTH", "user", "secret"],
    ["HELLO", "2", "AUTH", "default", "secret"],
    ["HELLO", "2"],
    ["NOSUCHCOMMAND", "x"],
    ["GET"],
    ["LPUSH", "s", "x"],
    ["GET", "s"],
    ["EVAL", "redis.call('set', 'k', 'v') return redis.call('get', 'k')", "0"],
    ["MULTI"],
    ["SET", "t", "1"],
    ["INCR", "t"],
    ["EXEC"],
    ["SELECT", "3"],
    ["PING"],
    ["SELECT", "0"],
    ["PUBLISH", "ch", "m"],
    ["ECHO", "done"],
]

LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$")


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-monitor-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


def monitored(port: int) -> list[bytes]:
    """The lines a monitor sees for COMMANDS, with the time and the client's
    port replaced by placeholders."""
    monitor = RawConnection(HOST, port)
    client = RawConnection(HOST, port)
    try:
        client.call("FLUSHALL")
        monitor.send_command("MONITOR")
        assert monitor.read() == "OK"
        for args in COMMANDS:
            client.send(b"".join(encode(a) for a in [args]))
            client.read_raw()
        client.call("ECHO", "sentinel")
        lines = []
        while True:
            raw = monitor.read_raw()
            match = LINE.match(raw.rstrip(b"\r\n"))
            assert match, raw
            source = match.group(4)
            source = b"client" if source.startswith(b"127.0.0.1:") else source
            lines.append(b"[%s %s] %s" % (match.group(3), source, match.group(5)))
            if match.group(5) == b'"ECHO" "sentinel"':
                return lines
    finally:
        monitor.close()
        client.close()


def encode(args: list[str]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a.encode("utf-8", "surrogateescape") if a.isascii() else a.encode("latin-1")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def test_monitor_lines_match_redis(server: kiwi.Server, reference_port: int) -> None:
    want = monitored(reference_port)
    assert len(want) > 10
    assert monitored(server.port) == want


def test_monitor_stops_with_reset_and_disconnect(server: kiwi.Server) -> None:
    monitor = RawConnection(HOST, server.port)
    client = RawConnection(HOST, server.port)
    try:
        monitor.send_command("MONITOR")
        assert monitor.read() == "OK"
        client.call("SET", "k", "1")
        assert monitor.read_raw().endswith(b'"SET" "k" "1"\r\n')
        monitor.send_command("RESET")
        assert monitor.read() == "RESET"
        client.call("SET", "k", "2")
        monitor.assert_silent()
    finally:
        monitor.close()
        client.close()


def test_embedded_database_monitors(tmp_path: object) -> None:
    with kiwi.open(str(tmp_path)) as db:
        with db.monitor() as m:
            db.set("k", "v")
            # The pool's new connection introduces itself first (HELLO,
            # CLIENT SETINFO): read up to the SET, boundedly.
            for _ in range(10):
                command = m.next_command()
                if command["command"] == "SET k v":
                    break
            assert command["command"] == "SET k v"
            assert command["db"] == 0
            assert command["client_type"] == "tcp"
