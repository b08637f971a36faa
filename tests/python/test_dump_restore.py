"""DUMP and RESTORE between Debian's redis-server 7.0 and Kiwi.

Values of every type, in every encoding Redis writes for them (listpack,
intset, hashtable, skiplist, quicklists of several nodes and PLAIN nodes),
dumped by Redis must restore in Kiwi with exactly the same data, and values
dumped by Kiwi must restore in Redis. RESTORE's replies (BUSYKEY, TTL,
ABSTTL, REPLACE, IDLETIME, FREQ, damaged payloads) and keyspace events are
compared with Redis's, each server restoring its own payloads. Payload
bytes themselves are not compared: Kiwi writes different, valid encodings.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import kiwi
from kiwitest import HOST, node_client, reference_redis_server, wait_until

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def ref() -> Iterator[redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    # DEBUG QUICKLIST-PACKED-THRESHOLD makes Redis write PLAIN list nodes.
    with reference_redis_server(binary, "kiwi-dump-ref-", "--enable-debug-command", "yes") as port:
        client = redis.Redis(host=HOST, port=port)
        yield client
        client.close()


@pytest.fixture(scope="module")
def kiwi_client() -> Iterator[redis.Redis]:
    with kiwi.Server() as s:
        client = redis.Redis(host=s.host, port=s.port)
        yield client
        client.close()


def content(c: redis.Redis, key: str) -> tuple[str, Any]:
    """The key's type and its whole value, in a form equal across servers."""
    kind = c.type(key).decode()
    readers: dict[str, Callable[[], Any]] = {
        "string": lambda: c.get(key),
        "list": lambda: c.lrange(key, 0, -1),
        "set": lambda: sorted(c.smembers(key)),
        "hash": lambda: sorted(c.hgetall(key).items()),
        "zset": lambda: c.zrange(key, 0, -1, withscores=True),
        "none": lambda: None,
    }
    return kind, readers[kind]()


def crc64(data: bytes) -> int:
    """Redis's crc64 (Jones polynomial, reflected)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95AC9329AC4BC9B5 if crc & 1 else 0)
    return crc


def seal(body: bytes, version: int = 10) -> bytes:
    """A payload with a footer Redis accepts: version then CRC-64."""
    covered = body + version.to_bytes(2, "little")
    return covered + crc64(covered).to_bytes(8, "little")


rng = random.Random(7)
BIG_INTS = [str(rng.randint(-(2**63), 2**63 - 1)) for _ in range(300)]
SCORES = {f"m{i}": rng.uniform(-1e9, 1e9) for i in range(800)}
BINARY = bytes(range(256))
# (name, writer): each writer fills key "src" on a client. Sizes pick Redis's
# encodings: small → listpack/intset, large → hashtable/skiplist/quicklist.
CASES: list[tuple[str, Callable[[redis.Redis], Any]]] = [
    ("string", lambda c: c.set("src", "hello")),
    ("string-int", lambda c: c.set("src", "-9223372036854775808")),
    ("string-small-int", lambda c: c.set("src", "12")),
    ("string-empty", lambda c: c.set("src", "")),
    ("string-lzf", lambda c: c.set("src", "abc" * 1000)),
    ("string-binary", lambda c: c.set("src", BINARY * 40)),
    ("list-small", lambda c: c.rpush("src", "a", "1", "-2", "", "4096", "70000", "-5000000000", BINARY)),
    ("list-nodes", lambda c: c.rpush("src", *[f"e{i}" * (i % 40) for i in range(3000)])),
    ("list-ints", lambda c: c.rpush("src", *BIG_INTS)),
    ("list-big-elements", lambda c: c.rpush("src", "x" * 70000, "y", "z" * 20000)),
    ("set-intset", lambda c: c.sadd("src", 1, -2, 70000, -(2**63), 2**63 - 1)),
    ("set-small", lambda c: c.sadd("src", "a", "", BINARY)),
    ("set-large", lambda c: c.sadd("src", *[f"m{i}" for i in range(1000)])),
    ("set-large-ints", lambda c: c.sadd("src", *range(0, 3000, 3))),
    ("hash-small", lambda c: c.hset("src", mapping={"a": "1", "": "empty", "n": "-300", "b": BINARY})),
    ("hash-large", lambda c: c.hset("src", mapping={f"f{i}": "v" * (i % 70) for i in range(600)})),
    ("hash-long-value", lambda c: c.hset("src", mapping={"f": "v" * 1000})),
    (
        "zset-small",
        lambda c: c.zadd("src", {"a": 1.5, "b": float("-inf"), "c": float("inf"), "": -1e300, "d": 0, "e": 3}),
    ),
    ("zset-large", lambda c: c.zadd("src", SCORES)),
    ("zset-long-member", lambda c: c.zadd("src", {"m" * 100: 2.5, "n": 5e-324})),
]


@pytest.mark.parametrize("name,writer", CASES, ids=[name for name, _ in CASES])
def test_values_travel_both_ways(ref: redis.Redis, kiwi_client: redis.Redis, name: str, writer: Callable) -> None:
    for c in (ref, kiwi_client):
        c.flushall()
        writer(c)
    expected = content(ref, "src")
    assert content(kiwi_client, "src") == expected
    for source, target in ((ref, kiwi_client), (kiwi_client, ref)):
        payload = source.dump("src")
        assert target.restore("dst", 0, payload) == b"OK"
        assert content(target, "dst") == expected, f"{name}: {source} -> {target}"
        target.delete("dst")


def test_plain_list_nodes_from_redis(ref: redis.Redis, kiwi_client: redis.Redis) -> None:
    ref.flushall()
    ref.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100")
    try:
        values = [b"s", b"p" * 150, b"", b"q" * 1000, b"t", b"r" * 101]
        ref.rpush("src", *values)
        payload = ref.dump("src")
    finally:
        ref.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(1 << 30))
    kiwi_client.delete("dst")
    assert kiwi_client.restore("dst", 0, payload)
    assert kiwi_client.lrange("dst", 0, -1) == values
    assert ref.restore("back", 0, kiwi_client.dump("dst"))
    assert ref.lrange("back", 0, -1) == values


def reply(c: redis.Redis, *args: Any) -> Any:
    try:
        return c.execute_command(*args)
    except redis.ResponseError as e:
        return f"error: {e}"


def run_flow(c: redis.Redis) -> list[Any]:
    """RESTORE's replies for one server, with that server's own payloads."""
    c.flushall()
    c.set("s", "value")
    c.rpush("l", "a", "b")
    p, lp = c.dump("s"), c.dump("l")
    now_ms = int(time.time() * 1000)
    out: list[Any] = []

    def step(*args: Any) -> None:
        out.append(reply(c, *args))

    step("RESTORE", "k", 0, p)
    step("RESTORE", "k", 0, p)
    step("RESTORE", "k", 0, lp, "REPLACE")
    step("TYPE", "k")
    step("PTTL", "k")
    step("RESTORE", "k", 100000, p, "REPLACE")
    out.append(c.ttl("k"))
    step("RESTORE", "k", now_ms + 500000, p, "REPLACE", "ABSTTL")
    out.append(c.ttl("k"))
    # An absolute TTL in the past: the old key goes, nothing is created.
    step("RESTORE", "k", 1, lp, "REPLACE", "ABSTTL")
    step("EXISTS", "k")
    step("RESTORE", "k", 1, lp, "ABSTTL")
    step("EXISTS", "k")
    step("RESTORE", "k", 2**63 - 1, p)
    step("EXISTS", "k")
    step("RESTORE", "k", 0, p, "IDLETIME", 1000, "REPLACE")
    step("RESTORE", "k", 0, p, "FREQ", 100, "REPLACE", "ABSTTL")
    step("RESTORE", "k", 0, p, "FREQ", 100, "IDLETIME", 5, "REPLACE")
    step("RESTORE", "k", -1, p, "REPLACE")
    step("RESTORE", "k", "x", p, "REPLACE")
    step("RESTORE", "k", 0, p, "IDLETIME", -1)
    step("RESTORE", "k", 0, p, "FREQ", 256)
    step("RESTORE", "k", 0, p, "BOGUS")
    step("GET", "k")
    # Damaged payloads: a flipped byte, truncation, a newer version.
    for damaged in (
        p[:1] + bytes([p[1] ^ 0x20]) + p[2:],
        p[:-1],
        p[:5],
        b"",
        seal(p[:-10], version=11),
        seal(p[:-10], version=9),
        seal(b"\x00"),
        seal(b"\x02\x05\x01a\x01b"),
        seal(b"\x02\x02\x01a\x01a"),
        seal(b"\x02\x00"),
        seal(b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f"),
        seal(b"\x08\x00"),
        seal(b"\x63"),
    ):
        step("RESTORE", "bad", 0, damaged)
    step("EXISTS", "bad")
    return out


def test_restore_replies_match_redis(ref: redis.Redis, kiwi_client: redis.Redis) -> None:
    assert run_flow(kiwi_client) == run_flow(ref)


def test_random_payloads_with_valid_checksums(ref: redis.Redis, kiwi_client: redis.Redis) -> None:
    """Kiwi answers an error or OK for any body, never dies. Only bodies
    Redis reads safely without deep sanitization are compared with Redis
    (plain types: every length is read through its stream)."""
    gen = random.Random(11)
    for _ in range(300):
        body = bytes([gen.choice([0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 16, 17, 18])]) + gen.randbytes(
            gen.randint(0, 40)
        )
        answer = reply(kiwi_client, "RESTORE", "fuzz", 0, seal(body), "REPLACE")
        assert answer == b"OK" or answer.startswith("error: Bad data format"), answer
    assert kiwi_client.ping()
    for _ in range(200):
        body = bytes([gen.choice([0, 2, 4, 5])]) + gen.randbytes(gen.randint(0, 12))
        payload = seal(body)
        ours, theirs = (
            reply(kiwi_client, "RESTORE", "fuzz", 0, payload, "REPLACE"),
            reply(ref, "RESTORE", "fuzz", 0, payload, "REPLACE"),
        )
        assert ours == theirs, body
        if ours == b"OK":
            assert content(kiwi_client, "fuzz") == content(ref, "fuzz"), body


def test_a_stream_payload_restores(ref: redis.Redis, kiwi_client: redis.Redis) -> None:
    """(Streams both ways, groups and all: test_streams.py.)"""
    ref.delete("st")
    ref.xadd("st", {"f": "v"}, id="5-1")
    assert kiwi_client.restore("st", 0, ref.dump("st"), replace=True)
    assert kiwi_client.xrange("st") == ref.xrange("st")
    assert kiwi_client.type("st") == b"stream"


def events(c: redis.Redis) -> list[Any]:
    c.flushall()
    c.config_set("notify-keyspace-events", "KEA")
    c.set("src", "v")
    payload = c.dump("src")
    sub = c.pubsub()
    sub.psubscribe("__key*__:*")
    wait_until(lambda: sub.get_message(timeout=0.1) is not None, timeout=5, message="psubscribed")
    c.restore("k", 0, payload)
    c.restore("k", 0, payload, replace=True)
    c.restore("k", 1, payload, replace=True, absttl=True)
    c.restore("k", 1, payload, absttl=True)
    c.set("end", "1")
    seen: list[Any] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not seen or seen[-1][0] != b"__keyevent@0__:set"):
        m = sub.get_message(timeout=0.1)
        if m is not None:
            seen.append((m["channel"], m["data"]))
    sub.close()
    c.config_set("notify-keyspace-events", "")
    return seen


def test_keyspace_events_match_redis(ref: redis.Redis, kiwi_client: redis.Redis) -> None:
    assert events(kiwi_client) == events(ref)


def test_restore_through_a_cluster(ref: redis.Redis) -> None:
    """RESTORE is a replicated write: sent to a follower, every node ends
    with the same value and the same absolute expiry."""
    ref.flushall()
    ref.zadd("z", {"a": 1.5, "b": -2})
    ref.hset("h", mapping={"f": "v"})
    payloads = {"z": ref.dump("z"), "h": ref.dump("h")}
    with kiwi.Cluster(3) as c:
        leader = c.wait_for_leader()
        clients = [node_client(c, i, decode_responses=False) for i in range(3)]
        try:
            follower = clients[(leader + 1) % 3]
            assert follower.restore("z", 100000, payloads["z"]) == b"OK"
            assert follower.restore("h", 0, payloads["h"]) == b"OK"
            with pytest.raises(redis.ResponseError, match="BUSYKEY"):
                follower.restore("h", 0, payloads["h"])

            def same_everywhere() -> bool:
                seen = set()
                for i in range(3):
                    local = node_client(c, i, decode_responses=False)
                    try:
                        local.readonly()
                        seen.add(
                            (
                                tuple(local.zrange("z", 0, -1, withscores=True)),
                                tuple(sorted(local.hgetall("h").items())),
                                local.pexpiretime("z"),
                            )
                        )
                    except redis.RedisError:
                        return False
                    finally:
                        local.close()
                return len(seen) == 1 and next(iter(seen))[:2] == (((b"b", -2.0), (b"a", 1.5)), ((b"f", b"v"),))

            wait_until(same_everywhere, timeout=10, message="every node holds the restored values")
        finally:
            for r in clients:
                r.close()
