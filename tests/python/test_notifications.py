"""Keyspace notifications against Redis: the same commands on Debian's
redis-server and on Kiwi must publish the same events, in the same order,
on the same channels.

A subscriber on each server listens to ``__key*__:*`` and to a sentinel
channel; after every command the writer publishes on the sentinel, so the
events a command raised are exactly those that arrive before it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import HOST, RawConnection, reference_redis_server, wait_until

pytestmark = pytest.mark.kiwi_only

SENTINEL = "kiwi-test-sentinel"

COMMANDS: list[list[str]] = [
    # Reads of missing keys (key-miss events).
    ["GET", "nosuch"],
    ["MGET", "nosuch", "nosuch2"],
    ["EXISTS", "nosuch"],
    ["TYPE", "nosuch"],
    ["TTL", "nosuch"],
    ["HGET", "nosuch", "f"],
    ["LRANGE", "nosuch", "0", "-1"],
    ["ZUNION", "2", "nosuch", "nosuch2"],
    ["SET", "nosuch", "x", "GET"],
    # Strings.
    ["SET", "s", "v"],
    ["SET", "s", "v2", "EX", "100"],
    ["SET", "s", "v3", "KEEPTTL"],
    ["SET", "s", "v4", "NX"],
    ["SETNX", "s2", "x"],
    ["SETEX", "s3", "100", "x"],
    ["PSETEX", "s4", "100000", "x"],
    ["GETSET", "s", "v5"],
    ["MSET", "m1", "a", "m2", "b"],
    ["APPEND", "s", "more"],
    ["APPEND", "fresh", "x"],
    ["SETRANGE", "s", "1", "XY"],
    ["INCR", "n"],
    ["INCRBY", "n", "5"],
    ["DECR", "n"],
    ["INCRBYFLOAT", "f", "1.5"],
    ["GETDEL", "m2"],
    ["GETEX", "m1", "EX", "100"],
    ["GETEX", "m1", "PERSIST"],
    ["SETBIT", "b", "7", "1"],
    ["BITFIELD", "bf", "SET", "u8", "0", "1"],
    ["BITFIELD", "bf", "SET", "u8", "0", "1"],
    ["BITFIELD", "bf", "SET", "u8", "16", "0"],
    ["BITFIELD", "bf2", "OVERFLOW", "FAIL", "SET", "u2", "0", "7"],
    ["BITFIELD", "bf", "GET", "u8", "0"],
    ["LCS", "nosuch", "bf"],
    ["SORT", "nosuch", "STORE", "sorted"],
    ["RPUSH", "tosort", "3", "1", "2"],
    ["SORT", "tosort", "STORE", "sorted"],
    ["SORT", "tosort", "STORE", "sorted"],
    ["SORT", "tosort", "LIMIT", "0", "0", "STORE", "sorted"],
    ["SORT", "tosort", "BY", "w_*", "GET", "g_*"],
    # Generic.
    ["EXPIRE", "s", "100"],
    ["PEXPIRE", "s", "100000"],
    ["PERSIST", "s"],
    ["EXPIRE", "s3", "-1"],
    ["RENAME", "s", "renamed"],
    ["RENAME", "renamed", "n"],
    ["COPY", "n", "copied"],
    ["MOVE", "copied", "3"],
    ["MOVE", "copied", "3"],
    ["SELECT", "3"],
    ["MOVE", "copied", "0"],
    ["SELECT", "0"],
    ["DEL", "copied", "nosuch", "f"],
    ["UNLINK", "s2"],
    # Hashes.
    ["HSET", "h", "a", "1", "b", "2"],
    ["HSET", "h", "a", "1"],
    ["HSETNX", "h", "c", "3"],
    ["HSETNX", "h", "c", "3"],
    ["HINCRBY", "h", "a", "1"],
    ["HINCRBYFLOAT", "h", "z", "1.5"],
    ["HDEL", "h", "a", "nosuch"],
    ["HDEL", "h", "b", "c", "z"],
    # Lists.
    ["LPUSH", "l", "a", "b"],
    ["RPUSH", "l", "c"],
    ["LPUSHX", "nolist", "x"],
    ["LINSERT", "l", "BEFORE", "c", "x"],
    ["LSET", "l", "0", "y"],
    ["LREM", "l", "0", "x"],
    ["LTRIM", "l", "0", "5"],
    ["LPOP", "l"],
    ["RPOP", "l", "1"],
    ["LMOVE", "l", "l2", "LEFT", "RIGHT"],
    ["RPOPLPUSH", "l2", "l2"],
    ["RPUSH", "l3", "1", "2", "3"],
    ["LMPOP", "1", "l3", "LEFT", "COUNT", "5"],
    ["LPOP", "l2"],
    # Sets.
    ["SADD", "st", "a", "b", "c"],
    ["SADD", "st", "a"],
    ["SREM", "st", "a"],
    ["SMOVE", "st", "st2", "b"],
    ["SPOP", "st"],
    ["SADD", "st", "x", "y"],
    ["SINTERSTORE", "st3", "st", "st"],
    ["SUNIONSTORE", "st3", "st", "st2"],
    ["SDIFFSTORE", "st3", "st", "st"],
    # Sorted sets.
    ["ZADD", "z", "1", "a", "2", "b", "3", "c"],
    ["ZADD", "z", "1", "a"],
    ["ZADD", "z", "INCR", "5", "a"],
    ["ZINCRBY", "z", "1", "b"],
    ["ZREM", "z", "nosuch"],
    ["ZREM", "z", "c"],
    ["ZPOPMIN", "z"],
    ["ZADD", "z2", "1", "x", "2", "y", "3", "w"],
    ["ZREMRANGEBYSCORE", "z2", "3", "3"],
    ["ZREMRANGEBYRANK", "z2", "0", "0"],
    ["ZREMRANGEBYLEX", "z2", "-", "+"],
    ["ZUNIONSTORE", "z3", "1", "z"],
    ["ZRANGESTORE", "z4", "z", "0", "-1"],
    ["ZPOPMAX", "z", "5"],
    # Streams.
    ["XADD", "x", "1-1", "a", "1"],
    ["XADD", "x", "MAXLEN", "1", "2-1", "b", "2"],
    ["XADD", "x", "NOMKSTREAM", "3-1", "c", "3"],
    ["XADD", "nostream", "NOMKSTREAM", "1-1", "a", "1"],
    ["XDEL", "x", "9-9"],
    ["XDEL", "x", "2-1"],
    ["XADD", "x", "4-1", "d", "4"],
    ["XTRIM", "x", "MAXLEN", "5"],
    ["XTRIM", "x", "MAXLEN", "0"],
    ["XSETID", "x", "10-0"],
    ["XGROUP", "CREATE", "x", "g", "0"],
    ["XGROUP", "CREATE", "x2", "g", "$", "MKSTREAM"],
    ["XGROUP", "CREATECONSUMER", "x", "g", "alice"],
    ["XGROUP", "CREATECONSUMER", "x", "g", "alice"],
    ["XADD", "x", "11-1", "e", "5"],
    ["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"],
    ["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"],
    ["XCLAIM", "x", "g", "carol", "0", "11-1"],
    ["XAUTOCLAIM", "x", "g", "dave", "0", "0"],
    ["XACK", "x", "g", "11-1"],
    ["XGROUP", "SETID", "x", "g", "0"],
    ["XGROUP", "DELCONSUMER", "x", "g", "alice"],
    ["XGROUP", "DELCONSUMER", "x", "g", "nobody"],
    ["XGROUP", "DESTROY", "x", "g"],
    ["XGROUP", "DESTROY", "x", "g"],
    ["XRANGE", "nostream", "-", "+"],
    ["XREAD", "STREAMS", "nostream", "0"],
    ["DEL", "x", "x2"],
    # Scripts and transactions raise their commands' events.
    ["EVAL", "redis.call('set', KEYS[1], 'x') redis.call('del', KEYS[1])", "1", "scripted"],
    ["MULTI"],
    ["SET", "tx", "1"],
    ["INCR", "tx"],
    ["EXEC"],
    ["FLUSHALL"],
]


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-notify-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


def events_of(port: int, flags: str) -> list[tuple[str, list[object]]]:
    """Each command with the messages it made the subscriber receive."""
    writer = RawConnection(HOST, port)
    listener = RawConnection(HOST, port)
    try:
        writer.call("FLUSHALL")
        writer.call("CONFIG", "SET", "notify-keyspace-events", flags)
        listener.send_command("PSUBSCRIBE", "__key*__:*")
        listener.read()
        listener.send_command("SUBSCRIBE", SENTINEL)
        listener.read()
        out = []
        in_multi = False
        for n, args in enumerate(COMMANDS):
            writer.call(*args)
            name = args[0].upper()
            in_multi = (in_multi or name == "MULTI") and name not in ("EXEC", "DISCARD")
            if in_multi:
                # The sentinel would be queued too: EXEC's events come together.
                out.append((" ".join(args), []))
                continue
            writer.call("PUBLISH", SENTINEL, str(n))
            got: list[object] = []
            while True:
                message = listener.read()
                assert isinstance(message, list)
                if message[0] == b"message":
                    assert message[2] == str(n).encode()
                    break
                got.append(message)
            out.append((" ".join(args), got))
        return out
    finally:
        writer.call("CONFIG", "SET", "notify-keyspace-events", "")
        writer.close()
        listener.close()


@pytest.mark.parametrize("flags", ["KEA", "KEAn", "Kl", "E$gx", "KEm", "AKEnm"])
def test_events_match_redis(server: kiwi.Server, reference_port: int, flags: str) -> None:
    want = events_of(reference_port, flags)
    assert any(got for _, got in want), "the reference published nothing: the test would prove nothing"
    got = events_of(server.port, flags)
    differences = [f"{cmd}\n  redis: {w!r}\n  kiwi:  {g!r}" for (cmd, w), (_, g) in zip(want, got) if w != g]
    assert not differences, "\n".join(differences)


def test_expired_keys_raise_expired(server: kiwi.Server) -> None:
    writer = RawConnection(HOST, server.port)
    listener = RawConnection(HOST, server.port)
    try:
        writer.call("CONFIG", "SET", "notify-keyspace-events", "Ex")
        listener.send_command("SUBSCRIBE", "__keyevent@0__:expired")
        listener.read()
        writer.call("SET", "short", "v", "PX", "50")
        message = listener.read()
        assert message == [b"message", b"__keyevent@0__:expired", b"short"]
        wait_until(lambda: writer.call("EXISTS", "short") == 0, timeout=5, message="the key is gone")
    finally:
        writer.call("CONFIG", "SET", "notify-keyspace-events", "")
        writer.close()
        listener.close()


def test_notify_keyspace_events_config_as_redis(server: kiwi.Server, reference_port: int) -> None:
    replies = []
    for port in (reference_port, server.port):
        conn = RawConnection(HOST, port)
        try:
            seen = []
            for value in ["KEA", "AKE", "Kgx", "Em$n", "KQ", "", "lshzxetd", "gKA"]:
                seen.append(conn.call_raw("CONFIG", "SET", "notify-keyspace-events", value))
                seen.append(conn.call_raw("CONFIG", "GET", "notify-keyspace-events"))
            replies.append(seen)
        finally:
            conn.call("CONFIG", "SET", "notify-keyspace-events", "")
            conn.close()
    assert replies[1] == replies[0]


def test_every_cluster_node_publishes_what_it_applies() -> None:
    with kiwi.Cluster(3) as c:
        leader = c.wait_for_leader()
        listeners = []
        try:
            for i in range(3):
                node = c.nodes[i]
                admin = RawConnection(HOST, node.port)
                admin.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
                admin.close()
                listener = RawConnection(HOST, node.port)
                listener.send_command("SUBSCRIBE", "__keyevent@0__:hset")
                listener.read()
                listeners.append(listener)
            writer = RawConnection(HOST, c.nodes[(leader + 1) % 3].port)
            assert writer.call("HSET", "h", "f", "v") == 1
            writer.close()
            for listener in listeners:
                assert listener.read() == [b"message", b"__keyevent@0__:hset", b"h"]
        finally:
            for listener in listeners:
                listener.close()
