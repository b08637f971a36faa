"""Streams beyond what the redis-diff file can replay: generated IDs, blocking
reads, consumer groups over time, a cluster, and random command sequences
compared with Debian's redis-server.

``tests/redis-diff/stream.txt`` checks the replies and error texts of every
X* command with explicit IDs; here are the replies that depend on the clock
(``*`` IDs, idle times, delivery times) or on other clients (BLOCK).
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
from kiwitest import (
    HOST,
    BlockingCall,
    RawConnection,
    blocked_clients,
    node_client,
    reference_redis_server,
    reset_cluster,
    wait_until,
)

ClientFactory = Callable[..., redis.Redis]


def parse_id(text: Any) -> tuple[int, int]:
    ms, seq = (text.decode() if isinstance(text, bytes) else text).split("-")
    return int(ms), int(seq)


# ------------------------------------------------------------- generated IDs


def test_star_ids_come_from_the_clock_and_only_grow(r: redis.Redis) -> None:
    before = int(time.time() * 1000)
    ids = [parse_id(r.xadd("s", {"n": i})) for i in range(50)]
    after = int(time.time() * 1000)
    assert ids == sorted(set(ids)), "IDs must strictly increase"
    assert before - 5 <= ids[0][0] <= after + 5
    # Within one millisecond the sequence counts up; a new millisecond starts at 0.
    for (ms1, seq1), (ms2, seq2) in zip(ids, ids[1:]):
        assert (ms2 == ms1 and seq2 == seq1 + 1) or (ms2 > ms1 and seq2 == 0)


def test_star_ids_stay_monotonic_when_the_last_id_is_ahead_of_the_clock(r: redis.Redis) -> None:
    future = int(time.time() * 1000) + 3_600_000
    r.xadd("s", {"a": 1}, id=f"{future}-5")
    assert parse_id(r.xadd("s", {"b": 2})) == (future, 6)
    r.execute_command("XSETID", "s", f"{future}-18446744073709551615")
    assert parse_id(r.xadd("s", {"c": 3})) == (future + 1, 0)


# ------------------------------------------------------------------ blocking


def test_xread_block_is_woken_by_xadd(r: redis.Redis, make_client: ClientFactory) -> None:
    r.xadd("s", {"old": 1}, id="1-1")
    waiter = BlockingCall(make_client(decode_responses=True), "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    waiter.start()
    wait_until(lambda: blocked_clients(r) == 1, message="XREAD did not block")
    # An XADD to another key does not wake it.
    r.xadd("other", {"x": 1}, id="1-1")
    r.xadd("s", {"new": 2}, id="2-1")
    reply = str(waiter.result())
    assert "2-1" in reply and "1-1" not in reply


def test_every_reader_of_a_stream_is_served_by_one_xadd(r: redis.Redis, make_client: ClientFactory) -> None:
    waiters = [
        BlockingCall(make_client(decode_responses=True), "XREAD", "BLOCK", 0, "STREAMS", "s", "$") for _ in range(3)
    ]
    for n, w in enumerate(waiters, start=1):
        w.start()
        wait_until(lambda n=n: blocked_clients(r) == n, message="XREAD did not block")
    r.xadd("s", {"f": "v"}, id="5-5")
    for w in waiters:
        reply = w.result()
        assert reply is not None


def test_xread_block_times_out_with_a_nil(r: redis.Redis) -> None:
    started = time.monotonic()
    assert r.xread({"empty": "$"}, block=300) in (None, {}, [])
    assert time.monotonic() - started >= 0.25


def test_xread_block_in_multi_does_not_wait(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.xread({"empty": "$"}, block=0)
    pipe.ping()
    assert pipe.execute()[1] is True


def test_client_unblock_ends_an_xread(r: redis.Redis, make_client: ClientFactory) -> None:
    reader = make_client(decode_responses=True)
    reader_id = reader.client_id()
    waiter = BlockingCall(reader, "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    waiter.start()
    wait_until(lambda: blocked_clients(r) == 1, message="XREAD did not block")
    assert r.client_unblock(reader_id) == 1
    assert not waiter.result(), "the timeout reply: a nil"

    waiter = BlockingCall(reader, "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    waiter.start()
    wait_until(lambda: blocked_clients(r) == 1, message="XREAD did not block")
    assert r.client_unblock(reader_id, error=True) == 1
    with pytest.raises(redis.ResponseError, match="UNBLOCKED"):
        waiter.result()


def test_xreadgroup_block_gets_new_entries_and_records_them(r: redis.Redis, make_client: ClientFactory) -> None:
    r.xgroup_create("s", "g", id="$", mkstream=True)
    waiter = BlockingCall(
        make_client(decode_responses=True), "XREADGROUP", "GROUP", "g", "alice", "BLOCK", 0, "STREAMS", "s", ">"
    )
    waiter.start()
    wait_until(lambda: blocked_clients(r) == 1, message="XREADGROUP did not block")
    r.xadd("s", {"job": 1}, id="3-1")
    assert "3-1" in str(waiter.result())
    pending = r.xpending("s", "g")
    assert pending["pending"] == 1
    assert [c["name"] for c in pending["consumers"]] in ([b"alice"], ["alice"])


def test_a_destroyed_group_ends_its_blocked_readers(r: redis.Redis, make_client: ClientFactory) -> None:
    r.xgroup_create("s", "g", id="$", mkstream=True)
    waiter = BlockingCall(make_client(), "XREADGROUP", "GROUP", "g", "alice", "BLOCK", 0, "STREAMS", "s", ">")
    waiter.start()
    wait_until(lambda: blocked_clients(r) == 1, message="XREADGROUP did not block")
    # The destroy alone wakes it, as Redis signals the key on XGROUP DESTROY.
    r.xgroup_destroy("s", "g")
    with pytest.raises(
        redis.ResponseError, match="NOGROUP the consumer group this client was blocked on no longer exists"
    ):
        waiter.result()


# --------------------------------------------------------- groups over time


def test_idle_times_and_delivery_counts_grow(r: redis.Redis) -> None:
    r.xadd("s", {"a": 1}, id="1-1")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "alice", {"s": ">"})
    time.sleep(0.12)
    [row] = r.xpending_range("s", "g", "-", "+", 10)
    assert row["time_since_delivered"] >= 100
    assert row["times_delivered"] == 1
    assert r.xpending_range("s", "g", "-", "+", 10, idle=60_000) == []
    [consumer] = r.xinfo_consumers("s", "g")
    assert consumer["idle"] >= 100
    # Claiming needs the idle time; it resets it and counts a delivery.
    assert r.xclaim("s", "g", "bob", 60_000, ["1-1"]) == []
    assert len(r.xclaim("s", "g", "bob", 50, ["1-1"])) == 1
    [row] = r.xpending_range("s", "g", "-", "+", 10)
    assert row["consumer"] in (b"bob", "bob")
    assert row["times_delivered"] == 2
    assert row["time_since_delivered"] < 100
    # Reading its history again counts another delivery.
    r.xreadgroup("g", "bob", {"s": "0"})
    [row] = r.xpending_range("s", "g", "-", "+", 10)
    assert row["times_delivered"] == 3
    # XCLAIM IDLE sets the idle time; XAUTOCLAIM takes what is idle enough.
    r.xclaim("s", "g", "carol", 0, ["1-1"], idle=500_000)
    [row] = r.xpending_range("s", "g", "-", "+", 10)
    assert row["time_since_delivered"] >= 500_000
    _cursor, claimed, *_ = r.xautoclaim("s", "g", "dave", 400_000, "0")
    assert [c[0] for c in claimed] in ([b"1-1"], ["1-1"])
    full = r.xinfo_stream("s", full=True)
    group = full["groups"][0]
    assert group["pel-count"] == 1
    now = int(time.time() * 1000)
    assert abs(group["pending"][0][2] - now) < 5_000


# ------------------------------------------------------------------ cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


@pytest.mark.kiwi_only
def test_blocking_xread_on_a_follower_wakes_on_xadd_through_another_node(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)
    leader = cluster.wait_for_leader()
    f1, f2 = [i for i in range(3) if i != leader]
    waiter = BlockingCall(node_client(cluster, f1), "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    waiter.start()
    watcher = node_client(cluster, f1)
    wait_until(lambda: blocked_clients(watcher) == 1, message="XREAD did not block")
    assert node_client(cluster, f2).xadd("s", {"k": "v"}, id="9-1") in (b"9-1", "9-1")
    reply = waiter.result()
    assert reply is not None
    # XREADGROUP through a follower changes every node's pending list alike.
    c = node_client(cluster, f2)
    c.xgroup_create("s", "g", id="0")
    c.xreadgroup("g", "alice", {"s": ">"})
    for i in range(3):
        n = node_client(cluster, i)
        wait_until(lambda n=n: n.xpending("s", "g")["pending"] == 1, message=f"node {i} has the pending entry")
        assert n.xinfo_groups("s")[0]["last-delivered-id"] in (b"9-1", "9-1")


@pytest.mark.kiwi_only
def test_blocked_group_readers_on_different_nodes_each_get_one_entry(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)
    leader = cluster.wait_for_leader()
    f1, f2 = [i for i in range(3) if i != leader]
    node_client(cluster, leader).xgroup_create("q", "g", id="$", mkstream=True)
    waiters = [
        BlockingCall(
            node_client(cluster, i), "XREADGROUP", "GROUP", "g", f"c{i}", "COUNT", 1, "BLOCK", 0, "STREAMS", "q", ">"
        )
        for i in (f1, f2)
    ]
    for i, w in zip((f1, f2), waiters):
        w.start()
        watcher = node_client(cluster, i)
        wait_until(lambda watcher=watcher: blocked_clients(watcher) == 1, message="XREADGROUP did not block")
    writer = node_client(cluster, leader)
    writer.xadd("q", {"n": 1}, id="1-1")
    writer.xadd("q", {"n": 2}, id="2-1")
    got = sorted(str(w.result()) for w in waiters)
    assert "1-1" in got[0] + got[1] and "2-1" in got[0] + got[1]
    assert all(("1-1" in g) != ("2-1" in g) for g in got), got
    for i in range(3):
        n = node_client(cluster, i)
        wait_until(lambda n=n: n.xpending("q", "g")["pending"] == 2, message=f"node {i} has both pending")


@pytest.mark.kiwi_only
def test_star_ids_are_the_same_on_every_node(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)
    leader = cluster.wait_for_leader()
    c = node_client(cluster, leader)
    ids = [c.xadd("s", {"n": i}) for i in range(20)]
    for i in range(3):
        n = node_client(cluster, i)
        wait_until(lambda n=n: n.xlen("s") == 20, message=f"node {i} has every entry")
        assert [e[0] for e in n.xrange("s")] == ids


# ------------------------------------------- random sequences against Redis


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-streams-redis-") as port:
        yield port


def random_id(rng: random.Random, known: list[str] | None = None) -> str:
    pick = rng.random()
    if known and pick > 0.4:
        return rng.choice(known)
    if pick < 0.05:
        return rng.choice(["-", "+", "abc", "0-0", "(1-1", "18446744073709551615-18446744073709551615"])
    ms = rng.randint(0, 40)
    return str(ms) if pick < 0.3 else f"{ms}-{rng.randint(0, 3)}"


def random_command(rng: random.Random, next_ms: list[int], known: list[str]) -> list[str]:
    """A random stream command; `known` holds IDs added so far, which the
    IDs of XDEL, XACK, XCLAIM and ranges favour."""
    key = rng.choice(["s", "s", "s", "t"])
    group = rng.choice(["g1", "g2"])
    consumer = rng.choice(["alice", "bob", "carol"])
    count = ["COUNT", str(rng.randint(-1, 5))] if rng.random() < 0.5 else []
    kind = rng.randrange(20)
    if kind < 6:
        next_ms[0] += rng.randint(0, 2)
        trim: list[str] = []
        if rng.random() < 0.2:
            trim = [rng.choice(["MAXLEN", "MINID"]), rng.choice(["=", "~", ""]) or "=", str(rng.randint(0, 30))]
        ident = rng.choice([f"{next_ms[0]}-*", f"{next_ms[0]}-{rng.randint(0, 9)}", str(next_ms[0])])
        fields = [f"f{rng.randint(0, 2)}", str(rng.randint(0, 99))] * rng.randint(1, 2)
        return ["XADD", key, *trim, ident, *fields]
    if kind == 6:
        return ["XDEL", key, *[random_id(rng, known) for _ in range(rng.randint(1, 3))]]
    if kind == 7:
        how = rng.choice(["MAXLEN", "MINID"])
        arg = str(rng.randint(0, 20)) if how == "MAXLEN" else f"{rng.randint(0, 40)}"
        return ["XTRIM", key, how, rng.choice(["=", "~"]), arg]
    if kind == 8:
        return [rng.choice(["XRANGE", "XREVRANGE"]), key, random_id(rng, known), random_id(rng, known), *count]
    if kind == 9:
        return ["XLEN", key]
    if kind == 10:
        return [
            "XGROUP",
            "CREATE",
            key,
            group,
            rng.choice(["0", "$", random_id(rng, known)]),
            *(["MKSTREAM"] if rng.random() < 0.3 else []),
        ]
    if kind == 11:
        sub = rng.choice(["SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER"])
        if sub == "SETID":
            return ["XGROUP", sub, key, group, rng.choice(["0", "$", random_id(rng, known)])]
        if sub == "DESTROY":
            return ["XGROUP", sub, key, group]
        return ["XGROUP", sub, key, group, consumer]
    if kind in (12, 13):
        ident = ">" if rng.random() < 0.7 else random_id(rng, known)
        noack = ["NOACK"] if rng.random() < 0.2 else []
        return ["XREADGROUP", "GROUP", group, consumer, *count, *noack, "STREAMS", key, ident]
    if kind == 14:
        return ["XACK", key, group, *[random_id(rng, known) for _ in range(rng.randint(1, 3))]]
    if kind == 15:
        return ["XPENDING", key, group]
    if kind == 16:
        return [
            "XCLAIM",
            key,
            group,
            consumer,
            "0",
            *[random_id(rng, known) for _ in range(rng.randint(1, 3))],
            *rng.choice([[], ["JUSTID"], ["FORCE"], ["RETRYCOUNT", "3"]]),
        ]
    if kind == 17:
        return [
            "XAUTOCLAIM",
            key,
            group,
            consumer,
            "0",
            random_id(rng, known),
            "COUNT",
            str(rng.randint(1, 4)),
            *rng.choice([[], ["JUSTID"]]),
        ]
    if kind == 18:
        return ["XINFO", rng.choice(["STREAM", "GROUPS"]), key]
    return ["XREAD", *count, "STREAMS", key, rng.choice(["0", "$", random_id(rng, known)])]


@pytest.mark.kiwi_only
def test_random_stream_commands_answer_as_redis(redis_port: int) -> None:
    """The same random sequences on both servers: every reply equal. (Idle
    and delivery times never appear: no XPENDING range, no XINFO CONSUMERS
    or FULL; XCLAIM's min-idle is 0.)"""
    with kiwi.Server() as server:
        with RawConnection(HOST, redis_port) as ref, RawConnection(HOST, server.port) as ours:
            for seed in range(40):
                rng = random.Random(seed)
                ref.call("FLUSHALL")
                ours.call("FLUSHALL")
                next_ms = [1]
                known: list[str] = []
                for step in range(200):
                    command = random_command(rng, next_ms, known)
                    want, got = ref.call_raw(*command), ours.call_raw(*command)
                    if command[0] == "XADD" and want.startswith(b"$"):
                        known.append(want.split(b"\r\n")[1].decode())
                    assert got == want, (
                        f"seed {seed} step {step}: {' '.join(command)}\n  redis: {want!r}\n  kiwi:  {got!r}"
                    )


# ------------------------------------------------------------ DUMP / RESTORE


def stream_views(c: redis.Redis, key: str) -> list[Any]:
    """Everything a stream shows, times included (a restored stream keeps
    its delivery and seen times)."""
    return [
        c.xrange(key),
        c.execute_command("XINFO", "STREAM", key),
        c.execute_command("XINFO", "GROUPS", key),
        c.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0"),
        c.xpending(key, "g1"),
    ]


@pytest.mark.kiwi_only
def test_dump_and_restore_of_streams_both_ways(redis_port: int) -> None:
    with kiwi.Server() as server:
        ref = redis.Redis(host=HOST, port=redis_port)
        ours = redis.Redis(host=HOST, port=server.port)
        try:
            for c in (ref, ours):
                c.flushall()
                c.eval(
                    "for i=1,250 do redis.call('XADD', KEYS[1], i .. '-' .. (i%3), 'f', i, 'g', string.rep('v', i % 40)) end",
                    1,
                    "s",
                )
                c.xdel("s", "5-2", "6-0", "150-0")
                c.xgroup_create("s", "g1", id="0")
                c.xgroup_create("s", "g2", id="$")
                c.xreadgroup("g1", "alice", {"s": ">"}, count=3)
                c.xreadgroup("g1", "bob", {"s": ">"}, count=2)
                c.xgroup_createconsumer("s", "g2", "carol")
                c.xtrim("s", maxlen=230)
                c.xadd("empty", {"a": 1}, id="1-1")
                c.xdel("empty", "1-1")
            # Redis's payload restores in Kiwi: the same stream, nodes and all.
            for c in (ref, ours):
                assert c.restore("s-from-redis", 0, ref.dump("s"))
                assert c.restore("empty-from-redis", 0, ref.dump("empty"))
            assert stream_views(ours, "s-from-redis") == stream_views(ref, "s-from-redis")
            info = ["XINFO", "STREAM", "empty-from-redis"]
            assert ours.execute_command(*info) == ref.execute_command(*info)
            # Kiwi's payload restores in Redis (entries, IDs, groups, times).
            assert ref.restore("s-from-kiwi", 0, ours.dump("s"))
            assert ref.xrange("s-from-kiwi") == ours.xrange("s")
            full = ref.execute_command("XINFO", "STREAM", "s-from-kiwi", "FULL", "COUNT", "0")
            assert full == ours.execute_command("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
            assert ours.restore("s-round-trip", 0, ours.dump("s"))
            assert stream_views(ours, "s-round-trip")[0] == stream_views(ours, "s")[0]
        finally:
            ref.close()
            ours.close()
