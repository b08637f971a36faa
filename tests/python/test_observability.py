"""INFO commandstats/errorstats/latencystats, SLOWLOG and LATENCY, with the
same command sequences on Debian's redis-server and on Kiwi: the counts,
error codes and slow-log entries (ids, arguments as redacted and cut,
client address and name) must agree; durations and timestamps differ by
nature and are only checked for shape.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

import kiwi
from kiwitest import HOST, RawConnection, RespError, reference_redis_server

pytestmark = pytest.mark.kiwi_only

#: Commands whose counts and errors are compared (run on a fresh server).
SEQUENCE: list[list[str]] = [
    ["SET", "k", "v"],
    ["GET", "k"],
    ["GET"],
    ["LPUSH", "k", "x"],
    ["NOSUCH", "a"],
    ["CLIENT", "NOSUCH"],
    ["CLIENT", "SETNAME", "observer"],
    ["CLIENT", "KILL"],
    ["INCR", "k"],
    ["MULTI"],
    ["INCR", "counter"],
    ["LPUSH", "k", "y"],
    ["EXEC"],
    ["EVAL", "return redis.call('incr', KEYS[1])", "1", "counter"],
    ["CONFIG", "SET", "requirepass", ""],
]


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-observe-ref-") as port:
        yield port


@pytest.fixture
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


def info_fields(conn: RawConnection, section: str) -> dict[str, str]:
    text = conn.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def counts(fields: dict[str, str], commands: set[str]) -> dict[str, dict[str, str]]:
    """commandstats without the timings, for the commands of the sequence."""
    out = {}
    for key, value in fields.items():
        name = key.removeprefix("cmdstat_")
        if name in commands:
            parts = dict(p.split("=") for p in value.split(","))
            out[name] = {k: v for k, v in parts.items() if k in ("calls", "rejected_calls", "failed_calls")}
    return out


def run_sequence(port: int) -> tuple[dict[str, dict[str, str]], dict[str, str], list[Any]]:
    with RawConnection(HOST, port) as conn:
        conn.call("FLUSHALL")
        conn.call("CONFIG", "RESETSTAT")
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        conn.call("SLOWLOG", "RESET")
        for args in SEQUENCE:
            conn.call(*args)
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        entries = conn.call("SLOWLOG", "GET", "-1")
        names = {"set", "get", "lpush", "incr", "multi", "exec", "eval", "client|setname", "client|kill", "config|set"}
        stats = counts(info_fields(conn, "commandstats"), names)
        errors = info_fields(conn, "errorstats")
        conn.call("SLOWLOG", "RESET")
        return stats, errors, entries


def test_commandstats_errorstats_and_slowlog_match_redis(reference_port: int, kiwi_port: int) -> None:
    want = run_sequence(reference_port)
    got = run_sequence(kiwi_port)
    assert got[0] == want[0]
    assert got[1] == want[1]
    # Slow-log entries: same commands (newest first), same arguments as
    # redacted, same client names; ids count up; durations are numbers.
    want_entries, got_entries = want[2], got[2]

    def shape(entries: list[Any]) -> list[tuple[Any, ...]]:
        # The script's own commands come from a client Redis names "?:0".
        return [(tuple(e[3]), e[5]) for e in entries if e[4] != b"?:0"]

    assert shape(got_entries) == shape(want_entries)
    ids = [e[0] for e in got_entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert all(isinstance(e[2], int) and e[2] >= 0 for e in got_entries)
    assert all(re.fullmatch(rb"127\.0\.0\.1:\d+|\?:0|[^:]*:\d+", e[4]) for e in got_entries)


def test_slowlog_cuts_long_commands_as_redis(reference_port: int, kiwi_port: int) -> None:
    def entry(port: int) -> Any:
        with RawConnection(HOST, port) as conn:
            conn.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
            conn.call("SLOWLOG", "RESET")
            conn.call("RPUSH", "long", *[str(i) for i in range(40)])
            conn.call("ECHO", "x" * 300)
            conn.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
            got = conn.call("SLOWLOG", "GET", "3")
            assert conn.call("SLOWLOG", "LEN") == 3
            conn.call("SLOWLOG", "RESET")
            assert conn.call("SLOWLOG", "LEN") == 0
            return [e[3] for e in got]

    assert entry(kiwi_port) == entry(reference_port)


def test_slowlog_max_len_and_threshold(kiwi_port: int) -> None:
    with RawConnection(HOST, kiwi_port) as conn:
        conn.call("CONFIG", "SET", "slowlog-max-len", "3", "slowlog-log-slower-than", "0")
        for i in range(10):
            conn.call("ECHO", str(i))
        assert conn.call("SLOWLOG", "LEN") == 3
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        conn.call("SLOWLOG", "RESET")
        conn.call("ECHO", "not logged")
        assert conn.call("SLOWLOG", "LEN") == 0
        err = conn.call("SLOWLOG", "GET", "-2")
        assert isinstance(err, RespError) and str(err) == "ERR count should be greater than or equal to -1"


def test_latency_monitor_records_a_slow_script(kiwi_port: int) -> None:
    with RawConnection(HOST, kiwi_port) as conn:
        assert conn.call("LATENCY", "LATEST") == []
        assert conn.call("LATENCY", "DOCTOR").startswith(b"I'm sorry, Dave")
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "20")
        busy = "local t = redis.call('time') local s = t[1]*1000000+t[2] repeat t = redis.call('time') until t[1]*1000000+t[2] - s > 50000"
        conn.call("EVAL", busy, "0")
        latest = conn.call("LATENCY", "LATEST")
        assert [e[0] for e in latest] == [b"command"]
        assert latest[0][2] >= 50 and latest[0][3] >= latest[0][2]
        history = conn.call("LATENCY", "HISTORY", "command")
        assert len(history) == 1 and history[0][1] >= 50
        assert conn.call("LATENCY", "GRAPH", "command").startswith(b"command - high ")
        assert conn.call("LATENCY", "DOCTOR").startswith(b"Dave, I have observed latency spikes")
        name, histogram = conn.call("LATENCY", "HISTOGRAM", "eval")
        assert name == b"eval" and histogram[:3] == [b"calls", 1, b"histogram_usec"]
        # One call, in a bucket of at least 50 ms.
        assert histogram[3][1] == 1 and histogram[3][0] >= 50_000
        assert conn.call("LATENCY", "RESET", "command", "nosuch") == 1
        assert conn.call("LATENCY", "LATEST") == []
        err = conn.call("LATENCY", "GRAPH", "command")
        assert isinstance(err, RespError) and str(err) == "ERR No samples available for event 'command'"
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "0")


def test_info_has_every_section_and_field_redis_prints(reference_port: int, kiwi_port: int) -> None:
    """Tools read INFO by field name: every name redis-server 7.0 prints in
    a section, Kiwi prints too, and the sections come in Redis's order for
    INFO, INFO all and INFO everything."""

    def sections(port: int, *args: str) -> dict[str, list[str]]:
        with RawConnection(HOST, port) as conn:
            text = conn.call("INFO", *args).decode()
        out: dict[str, list[str]] = {}
        current = ""
        for line in text.splitlines():
            if line.startswith("# "):
                current = line[2:]
                out[current] = []
            elif ":" in line:
                out[current].append(line.split(":", 1)[0])
        return out

    for args in [(), ("all",), ("everything",), ("server", "cpu"), ("default",)]:
        want, got = sections(reference_port, *args), sections(kiwi_port, *args)
        assert list(got) == list(want), args
        for name in ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU"):
            if name in want:
                missing = set(want[name]) - set(got[name])
                assert not missing, f"{name} lacks {sorted(missing)}"
