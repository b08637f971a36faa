"""Pipelines: many requests in one send, answered in order, each with its own outcome.

Kiwi runs consecutive data commands of a pipeline in one storage batch; these
tests pin down that this is invisible: a failing command in the middle drops
only its own writes, replies keep their order, and transaction control,
SELECT and blocking commands inside a pipeline behave as if sent one by one.
"""

from __future__ import annotations

from typing import Callable

import redis

from kiwitest import RawConnection, RespError, encode_command, wait_until

RawFactory = Callable[[], RawConnection]


def send_all(conn: RawConnection, *commands: tuple) -> list:
    conn.send(b"".join(encode_command(*c) for c in commands))
    return [conn.read() for _ in commands]


def test_a_failing_command_mid_pipeline_drops_only_its_own_writes(r: redis.Redis, raw: RawFactory) -> None:
    r.set("text", "abc")
    replies = send_all(
        raw(),
        ("SET", "a", "1"),
        ("INCR", "text"),
        ("APPEND", "a", "2"),
        ("SET", "b", "x", "EX", "0"),
        ("GET", "a"),
        ("MSET", "c", "3", "d", "4"),
    )
    assert replies[0] == "OK"
    assert isinstance(replies[1], RespError) and str(replies[1]).startswith("ERR value is not an integer")
    assert replies[2] == 2
    assert isinstance(replies[3], RespError) and "invalid expire time" in str(replies[3])
    assert replies[4] == b"12"
    assert replies[5] == "OK"
    assert r.mget("a", "b", "c", "d", "text") == [b"12", None, b"3", b"4", b"abc"]


def test_reads_in_a_pipeline_see_the_writes_before_them(raw: RawFactory) -> None:
    conn = raw()
    commands = [("INCR", "n") for _ in range(200)] + [("GET", "n")]
    replies = send_all(conn, *commands)
    assert replies[:200] == list(range(1, 201))
    assert replies[200] == b"200"


def test_select_and_multi_inside_a_pipeline(r: redis.Redis, raw: RawFactory) -> None:
    replies = send_all(
        raw(),
        ("SET", "k", "db0"),
        ("SELECT", "5"),
        ("SET", "k", "db5"),
        ("MULTI",),
        ("INCR", "counter"),
        ("GET", "k"),
        ("EXEC",),
        ("GET", "k"),
    )
    assert replies == ["OK", "OK", "OK", "OK", "QUEUED", "QUEUED", [1, b"db5"], b"db5"]
    assert r.get("k") == b"db0"


def test_quit_mid_pipeline_stops_there(r: redis.Redis, raw: RawFactory) -> None:
    conn = raw()
    conn.send(b"".join(encode_command(*c) for c in [("SET", "before", "1"), ("QUIT",), ("SET", "after", "1")]))
    assert conn.read() == "OK"
    assert conn.read() == "OK"
    conn.assert_closed()
    assert r.exists("before") == 1
    assert r.exists("after") == 0


def test_requests_sent_behind_a_blocking_command_that_times_out_are_answered(raw: RawFactory) -> None:
    # More than the server's first read takes: the rest arrives while
    # BLPOP waits and must be answered once it times out (found by cmdfuzz).
    value = b"v" * 100_000
    replies = send_all(raw(), ("BLPOP", "missing", "0.05"), ("SET", "big", value), ("STRLEN", "big"), ("PING",))
    assert replies == [None, "OK", 100_000, "PONG"]


def test_requests_sent_behind_a_blocking_command_that_is_woken_are_answered(r: redis.Redis, raw: RawFactory) -> None:
    conn = raw()
    value = b"w" * 100_000
    commands = [("BLPOP", "queue", "0"), ("SET", "big", value), ("STRLEN", "big"), ("PING",)]
    conn.send(b"".join(encode_command(*c) for c in commands))
    wait_until(lambda: r.info("clients")["blocked_clients"] >= 1, message="BLPOP is blocked")
    r.lpush("queue", "item")
    assert [conn.read() for _ in commands] == [[b"queue", b"item"], "OK", 100_000, "PONG"]
