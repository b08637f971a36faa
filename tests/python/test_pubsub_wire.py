"""Pub/sub on the wire, byte for byte against Debian's redis-server.

A redis-diff file holds one connection and one reply per command; pub/sub
needs several connections, commands answering several frames (one
confirmation per channel) and messages arriving unasked. Each scenario here
is a list of steps ``(connection, command, frames)``: send ``command`` (none:
only read) on that connection, then read ``frames`` complete replies. Both
servers get the same steps; every frame must be identical, and at the end
no connection may hold anything more.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Optional, Union

import pytest

import kiwi
from kiwitest import HOST, RawConnection, encode_command, reference_redis_server, wait_until

#: ``(connection, command or None, frames to read, compare)``; ``compare``
#: False for replies that differ by nature (HELLO's client id).
Step = tuple[str, Optional[list[str]], int, bool]
Script = list[Union[Step, tuple[str, Optional[list[str]], int]]]

RESP2_SUBSCRIBER: Script = [
    ("a", ["SUBSCRIBE", "news", "sport"], 2),
    ("b", ["PUBLISH", "news", "hello"], 1),
    ("a", None, 1),
    ("b", ["PUBLISH", "weather", "rain"], 1),
    ("b", ["PUBLISH", "sport", ""], 1),
    ("a", None, 1),
    # Only the pub/sub commands, PING, QUIT and RESET in this context.
    ("a", ["GET", "k"], 1),
    ("a", ["CLIENT", "LIST"], 1),
    ("a", ["CLIENT", "NOSUCH"], 1),
    ("a", ["MULTI"], 1),
    ("a", ["HELLO", "3"], 1),
    ("a", ["GET"], 1),
    ("a", ["NOSUCH"], 1),
    ("a", ["PING"], 1),
    ("a", ["PING", "x"], 1),
    ("a", ["PING", "x", "y"], 1),
    ("a", ["SUBSCRIBE", "news"], 1),
    ("a", ["UNSUBSCRIBE", "news", "nosuch"], 2),
    ("b", ["PUBLISH", "news", "gone"], 1),
    ("a", ["UNSUBSCRIBE"], 1),
    ("a", ["UNSUBSCRIBE"], 1),
    ("a", ["PUNSUBSCRIBE"], 1),
    ("a", ["SUNSUBSCRIBE"], 1),
    # Out of the context: anything goes again.
    ("a", ["GET", "k"], 1),
    ("a", ["PING"], 1),
]

PATTERNS: Script = [
    ("a", ["PSUBSCRIBE", "h?llo", "news.*"], 2),
    ("a", ["SUBSCRIBE", "hello"], 1),
    ("b", ["PUBLISH", "hello", "1"], 1),
    # The channel's subscriber first, then the pattern's.
    ("a", None, 2),
    ("b", ["PUBLISH", "news.tech", "2"], 1),
    ("a", None, 1),
    ("b", ["PUBSUB", "NUMPAT"], 1),
    ("b", ["PUBSUB", "NUMSUB", "hello", "h?llo", "none"], 1),
    ("b", ["PUBSUB", "CHANNELS"], 1),
    ("b", ["PUBSUB", "CHANNELS", "h*"], 1),
    ("b", ["PUBSUB", "CHANNELS", "x*"], 1),
    ("a", ["PUNSUBSCRIBE", "news.*"], 1),
    ("b", ["PUBLISH", "news.tech", "3"], 1),
    ("a", ["PUNSUBSCRIBE", "h?llo"], 1),
    ("a", ["UNSUBSCRIBE", "hello"], 1),
    # A lone "*" does not match the empty channel, in PUBSUB CHANNELS either.
    ("a", ["PSUBSCRIBE", "*"], 1),
    ("a", ["SUBSCRIBE", ""], 1),
    ("b", ["PUBLISH", "", "empty"], 1),
    ("a", None, 1),
    ("b", ["PUBSUB", "CHANNELS", "*"], 1),
    ("b", ["PUBSUB", "CHANNELS"], 1),
    ("b", ["PUBSUB", "NUMSUB", ""], 1),
]

SHARD: Script = [
    ("a", ["SSUBSCRIBE", "orders"], 1),
    ("a", ["SUBSCRIBE", "orders"], 1),
    ("a", ["PSUBSCRIBE", "ord*"], 1),
    ("a", ["SSUBSCRIBE", "stock"], 1),
    ("b", ["SPUBLISH", "orders", "s1"], 1),
    ("a", None, 1),
    ("b", ["PUBLISH", "orders", "p1"], 1),
    ("a", None, 2),
    ("b", ["PUBSUB", "SHARDCHANNELS", "o*"], 1),
    ("b", ["PUBSUB", "SHARDNUMSUB", "orders", "x"], 1),
    ("b", ["PUBSUB", "SHARDNUMSUB"], 1),
    ("a", ["SUNSUBSCRIBE", "orders"], 1),
    ("a", ["SUNSUBSCRIBE", "stock"], 1),
    ("a", ["UNSUBSCRIBE", "orders"], 1),
    ("a", ["PUNSUBSCRIBE", "ord*"], 1),
    ("b", ["SPUBLISH", "orders", "s2"], 1),
]

RESP3_SUBSCRIBER: Script = [
    ("a", ["HELLO", "3"], 1, False),
    ("a", ["SUBSCRIBE", "news"], 1),
    # Any command: pushes and replies interleave.
    ("a", ["SET", "k", "v"], 1),
    ("a", ["GET", "k"], 1),
    ("a", ["PING"], 1),
    # Its own message comes before PUBLISH's reply.
    ("a", ["PUBLISH", "news", "mine"], 2),
    ("b", ["PUBLISH", "news", "theirs"], 1),
    ("a", None, 1),
    ("a", ["PSUBSCRIBE", "n*"], 1),
    ("b", ["PUBLISH", "news", "both"], 1),
    ("a", None, 2),
    # Messages reach it while a blocking command waits.
    ("a", ["BLPOP", "queue", "0"], 0),
    ("b", ["PUBLISH", "news", "while blocked"], 1),
    ("a", None, 2),
    ("b", ["RPUSH", "queue", "job"], 1),
    ("a", None, 1),
    ("a", ["MULTI"], 1),
    ("a", ["SUBSCRIBE", "more"], 1),
    ("a", ["EXEC"], 1),
    ("a", ["UNSUBSCRIBE", "more"], 1),
    ("a", ["PUNSUBSCRIBE"], 1),
    ("a", ["HELLO", "2"], 1, False),
    ("a", ["GET", "k"], 1),
    ("a", ["PING"], 1),
    # RESET drops every subscription and goes back to RESP2.
    ("a", ["RESET"], 1),
    ("b", ["PUBLISH", "news", "after"], 1),
    ("a", ["GET", "k"], 1),
]

TRANSACTION: Script = [
    ("a", ["MULTI"], 1),
    ("a", ["SUBSCRIBE", "t1", "t2"], 1),
    ("a", ["PING"], 1),
    # Redis counts the commands, not the frames: a two-element array holds
    # both confirmations, and PING's reply follows it.
    ("a", ["EXEC"], 2),
    ("b", ["PUBLISH", "t2", "x"], 1),
    ("a", None, 1),
    ("a", ["RESET"], 1),
    ("a", ["MULTI"], 1),
    ("a", ["PUBLISH", "t1", "queued"], 1),
    ("a", ["EXEC"], 1),
]

CLIENT_STATE: Script = [
    ("a", ["CLIENT", "SETNAME", "sub"], 1),
    ("a", ["SELECT", "3"], 1),
    ("a", ["SUBSCRIBE", "c1"], 1),
    ("a", ["PSUBSCRIBE", "p1", "p2"], 2),
    ("a", ["SSUBSCRIBE", "s1"], 1),
    ("b", ["INFO", "stats"], 1, False),
    ("a", ["RESET"], 1),
    ("a", ["CLIENT", "GETNAME"], 1),
    ("a", ["DBSIZE"], 1),
    ("b", ["PUBSUB", "NUMPAT"], 1),
    ("b", ["PUBLISH", "c1", "x"], 1),
    ("b", ["SPUBLISH", "s1", "x"], 1),
]

SCRIPTS = {
    "resp2-subscriber": RESP2_SUBSCRIBER,
    "patterns": PATTERNS,
    "shard": SHARD,
    "resp3-subscriber": RESP3_SUBSCRIBER,
    "transaction": TRANSACTION,
    "client-state": CLIENT_STATE,
}


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    """A throwaway Debian redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-ref-pubsub-") as port:
        yield port


@pytest.fixture(scope="module")
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


def run(port: int, script: Script) -> list[tuple[int, bytes]]:
    """Play ``script`` on fresh connections to ``port``: each compared
    frame with its step's number."""
    conns: dict[str, RawConnection] = {}
    frames: list[tuple[int, bytes]] = []
    with RawConnection(HOST, port) as admin:
        assert admin.call("FLUSHALL") == "OK"
    try:
        for number, step in enumerate(script):
            name, command, count = step[0], step[1], step[2]
            compare = step[3] if len(step) > 3 else True  # type: ignore[misc]
            conn = conns.get(name)
            if conn is None:
                conn = conns[name] = RawConnection(HOST, port)
            if command is not None:
                conn.send_command(*command)
            for _ in range(count):
                frame = conn.read_raw()
                if compare:
                    frames.append((number, frame))
        for conn in conns.values():
            conn.assert_silent(0.05)
    finally:
        for conn in conns.values():
            conn.close()
    return frames


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_pubsub_matches_redis(name: str, reference_port: int, kiwi_port: int) -> None:
    script = SCRIPTS[name]
    expected = run(reference_port, script)
    got = run(kiwi_port, script)
    differences = [
        f"step {e[0]} {script[e[0]][:2]!r}\n  redis: {e[1]!r}\n  kiwi:  {g[1]!r}"
        for e, g in zip(expected, got)
        if e != g
    ]
    assert not differences, "\n".join(differences)
    assert len(expected) == len(got)


@pytest.mark.parametrize("server", ["redis", "kiwi"])
def test_a_closed_subscriber_is_forgotten(server: str, reference_port: int, kiwi_port: int) -> None:
    port = reference_port if server == "redis" else kiwi_port
    with RawConnection(HOST, port) as subscriber, RawConnection(HOST, port) as publisher:
        subscriber.call("SUBSCRIBE", "leaving")
        subscriber.call("PSUBSCRIBE", "leav*")
        assert publisher.call("PUBLISH", "leaving", "x") == 2
        subscriber.close()
        wait_until(
            lambda: publisher.call("PUBLISH", "leaving", "y") == 0,
            timeout=5,
            interval=0.01,
            message="the closed subscriber no longer counts",
        )
        assert publisher.call("PUBSUB", "NUMSUB", "leaving") == [b"leaving", 0]
        assert publisher.call("PUBSUB", "NUMPAT") == 0


@pytest.mark.parametrize("server", ["redis", "kiwi"])
def test_a_pipelined_subscribe_answers_in_order(server: str, reference_port: int, kiwi_port: int) -> None:
    """Replies before SUBSCRIBE's come first; what follows it is in the
    subscribed context (RESP2)."""
    port = reference_port if server == "redis" else kiwi_port
    with RawConnection(HOST, port) as conn:
        conn.send(
            encode_command("SET", "pk", "v")
            + encode_command("GET", "pk")
            + encode_command("SUBSCRIBE", "pc")
            + encode_command("GET", "pk")
            + encode_command("PING")
        )
        assert conn.read() == "OK"
        assert conn.read() == b"v"
        assert conn.read() == [b"subscribe", b"pc", 1]
        assert "Can't execute 'get'" in str(conn.read())
        assert conn.read() == [b"pong", b""]
