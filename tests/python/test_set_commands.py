"""Set commands: behaviour under RESP2 and RESP3, WRONGTYPE, empty sets
deleted, random picks, SSCAN, and exact counts under concurrent clients.

Exact reply bytes and error texts are covered by ``tests/redis-diff/set.txt``;
these tests check what a byte comparison cannot: random commands, cursors,
expiry and concurrency. Every loop is bounded and every thread is joined
against a deadline by :func:`kiwitest.run_threads`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from kiwitest import RawConnection, run_threads, wait_until

ClientFactory = Callable[..., redis.Redis]
RawFactory = Callable[[], RawConnection]

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BARRIER_TIMEOUT = 15.0
#: Bigger than the size up to which Kiwi samples a set exactly, so random
#: picks in large sets take the other path.
LARGE = 1500


def members(n: int, prefix: str = "m") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def sadd_many(r: redis.Redis, key: str, items: list[bytes], chunk: int = 1000) -> None:
    for i in range(0, len(items), chunk):
        r.sadd(key, *items[i : i + chunk])


def as_set(reply: object) -> set[bytes]:
    assert isinstance(reply, (set, list)), reply
    return set(reply)


def sscan_all(r: redis.Redis, key: str, **kwargs: object) -> list[bytes]:
    """Every member SSCAN returns, over all calls (bounded)."""
    out: list[bytes] = []
    cursor = 0
    for _ in range(100_000):
        cursor, items = r.sscan(key, cursor, **kwargs)
        out.extend(items)
        if cursor == 0:
            return out
    raise AssertionError("SSCAN did not finish")


# -- basic behaviour --------------------------------------------------------------


def test_sadd_counts_only_new_members(r: redis.Redis) -> None:
    assert r.sadd("s", "a", "b", "a", "c", "b") == 3
    assert r.sadd("s", "a", "d", "d") == 1
    assert r.sadd("s", "a") == 0
    assert r.scard("s") == 4
    assert r.smembers("s") == {b"a", b"b", b"c", b"d"}
    assert r.type("s") == b"set"


def test_members_are_binary_safe(r: redis.Redis) -> None:
    odd = [b"", b"\x00", b"\x00\x00", b"\xff", b"\xff\xff", b"a\r\nb", b"\x80abc"]
    assert r.sadd("s", *odd) == len(odd)
    assert r.smembers("s") == set(odd)
    assert r.smismember("s", odd + [b"\x01"]) == [1] * len(odd) + [0]
    assert r.srem("s", b"\x00", b"\xff") == 2
    assert r.scard("s") == len(odd) - 2


def test_srem_removes_and_deletes_the_empty_set(r: redis.Redis) -> None:
    r.sadd("s", "a", "b", "c")
    assert r.srem("s", "a", "a", "z") == 1
    assert r.scard("s") == 2
    assert r.srem("s", "b", "c") == 2
    assert r.exists("s") == 0
    assert r.type("s") == b"none"
    assert r.srem("s", "b") == 0
    assert r.srem("missing", "x") == 0
    # A set created again starts empty: nothing of the old one shows.
    assert r.sadd("s", "new") == 1
    assert r.smembers("s") == {b"new"}


def test_sismember_and_smismember(r: redis.Redis) -> None:
    r.sadd("s", "a", "b")
    assert r.sismember("s", "a") == 1
    assert r.sismember("s", "z") == 0
    assert r.sismember("missing", "a") == 0
    assert r.smismember("s", ["a", "z", "b", "a"]) == [1, 0, 1, 1]
    assert r.smismember("missing", ["a", "b"]) == [0, 0]


def test_reply_shapes_per_protocol(raw: RawFactory, protocol: int) -> None:
    """Set-typed replies are RESP3 sets; SRANDMEMBER's are always arrays."""
    conn = raw()
    conn.call("HELLO", protocol)
    conn.call("DEL", "s")
    conn.call("SADD", "s", "a")
    agg = b"~" if protocol == 3 else b"*"
    nil = b"_\r\n" if protocol == 3 else b"$-1\r\n"
    for cmd in (("SMEMBERS", "s"), ("SINTER", "s"), ("SUNION", "s"), ("SDIFF", "s")):
        assert conn.call_raw(*cmd) == agg + b"1\r\n$1\r\na\r\n", cmd
    assert conn.call_raw("SMEMBERS", "missing") == agg + b"0\r\n"
    assert conn.call_raw("SRANDMEMBER", "s", 1) == b"*1\r\n$1\r\na\r\n"
    assert conn.call_raw("SRANDMEMBER", "s", -2) == b"*2\r\n$1\r\na\r\n$1\r\na\r\n"
    assert conn.call_raw("SRANDMEMBER", "missing", 3) == b"*0\r\n"
    assert conn.call_raw("SRANDMEMBER", "missing") == nil
    assert conn.call_raw("SPOP", "missing") == nil
    assert conn.call_raw("SPOP", "missing", 2) == agg + b"0\r\n"
    assert conn.call_raw("SPOP", "s", 0) == agg + b"0\r\n"
    assert conn.call_raw("SPOP", "s", 5) == agg + b"1\r\n$1\r\na\r\n"
    assert conn.call_raw("SISMEMBER", "s", "a") == b":0\r\n"
    assert conn.call_raw("SMISMEMBER", "s", "a") == b"*1\r\n:0\r\n"


# -- SPOP / SRANDMEMBER -----------------------------------------------------------


@pytest.mark.parametrize("size", [5, LARGE], ids=["small", "large"])
def test_spop_one_at_a_time_empties_the_set(r: redis.Redis, size: int) -> None:
    items = members(size)
    sadd_many(r, "s", items)
    popped = [r.spop("s") for _ in range(size)]
    assert sorted(popped) == sorted(items)
    assert r.exists("s") == 0
    assert r.spop("s") is None


@pytest.mark.parametrize("size", [20, LARGE], ids=["small", "large"])
def test_spop_with_count(r: redis.Redis, size: int) -> None:
    items = members(size)
    sadd_many(r, "s", items)
    first = r.spop("s", 7)
    assert len(first) == 7 and len(set(first)) == 7
    assert set(first) <= set(items)
    assert r.scard("s") == size - 7
    assert not set(first) & r.smembers("s")
    half = r.spop("s", (size - 7) // 2)
    assert len(set(half)) == (size - 7) // 2
    assert not set(half) & set(first)
    rest = r.spop("s", size)
    assert set(first) | set(half) | set(rest) == set(items)
    assert len(first) + len(half) + len(rest) == size
    assert r.exists("s") == 0


def test_spop_binary_members_of_a_large_set(r: redis.Redis) -> None:
    """Random picks walk the member bytes: 0x00 and 0xff bytes included."""
    rng = random.Random(7)
    items = {bytes(rng.choice([0, 1, 0x7F, 0xFE, 0xFF]) for _ in range(rng.randint(1, 9))) for _ in range(LARGE)}
    items |= {b"\xff" * n for n in range(1, 12)} | {b"\x00" * n for n in range(1, 12)}
    sadd_many(r, "s", sorted(items))
    got = [r.spop("s") for _ in range(len(items))]
    assert sorted(got) == sorted(items)
    assert r.exists("s") == 0


def test_srandmember_positive_count_gives_distinct_members(r: redis.Redis) -> None:
    items = set(members(50))
    sadd_many(r, "s", sorted(items))
    for count in (1, 10, 49):
        got = r.srandmember("s", count)
        assert len(got) == count and len(set(got)) == count
        assert set(got) <= items
    assert sorted(r.srandmember("s", 50)) == sorted(items)
    assert sorted(r.srandmember("s", 1000)) == sorted(items)
    assert r.srandmember("s", 0) == []
    assert r.scard("s") == 50


def test_srandmember_negative_count_allows_repeats(r: redis.Redis) -> None:
    r.sadd("s", "a", "b", "c")
    got = r.srandmember("s", -200)
    assert len(got) == 200
    assert set(got) == {b"a", b"b", b"c"}  # 200 draws of 3: all come up
    assert r.srandmember("s", -1)[0] in {b"a", b"b", b"c"}
    assert r.scard("s") == 3


def test_srandmember_on_a_large_set(r: redis.Redis) -> None:
    items = set(members(LARGE))
    sadd_many(r, "s", sorted(items))
    distinct = r.srandmember("s", 40)
    assert len(set(distinct)) == 40 and set(distinct) <= items
    many = r.srandmember("s", LARGE - 300)
    assert len(set(many)) == LARGE - 300 and set(many) <= items
    repeats = r.srandmember("s", -30)
    assert len(repeats) == 30 and set(repeats) <= items
    assert len(r.srandmember("s", -10_000)) == 10_000
    assert r.scard("s") == LARGE


def test_single_random_picks_spread_over_a_large_set(r: redis.Redis) -> None:
    """Not a statistical test of uniformity, only against gross bias (such as
    one member of thousands coming up every tenth time). Kiwi samples sets
    over 1024 members with an approximate walk (measured: with members
    m0..m1499, 60,000 draws gave between 1 and 88 hits per member against a
    mean of 40), so the bounds leave room for that known bias; in 100 runs
    of 600 draws the most frequent member came up at most 7 times and at
    least 435 members came up."""
    items = members(LARGE)
    sadd_many(r, "s", items)
    draws = Counter(r.srandmember("s") for _ in range(600))
    assert set(draws) <= set(items)
    assert len(draws) > 380
    assert max(draws.values()) <= 10


# -- SMOVE ------------------------------------------------------------------------


def test_smove(r: redis.Redis) -> None:
    r.sadd("src", "a", "b")
    assert r.smove("src", "dst", "a") == 1
    assert r.smembers("src") == {b"b"}
    assert r.smembers("dst") == {b"a"}
    assert r.smove("src", "dst", "zzz") == 0
    r.sadd("src", "a")
    # Already in the destination: still moved out of the source.
    assert r.smove("src", "dst", "a") == 1
    assert r.scard("dst") == 1
    assert r.smove("src", "dst", "b") == 1
    assert r.exists("src") == 0
    assert r.smembers("dst") == {b"a", b"b"}
    assert r.smove("dst", "dst", "a") == 1
    assert r.smove("dst", "dst", "q") == 0
    assert r.smembers("dst") == {b"a", b"b"}
    assert r.smove("missing", "dst", "a") == 0


def test_smove_type_errors_change_nothing(r: redis.Redis) -> None:
    r.sadd("src", "a")
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("src", "str", "a")
    with pytest.raises(redis.ResponseError, match=WRONGTYPE):
        r.smove("str", "src", "a")
    assert r.smembers("src") == {b"a"}
    assert r.get("str") == b"v"
    # A missing source answers 0 before the destination's type matters.
    assert r.smove("missing", "str", "a") == 0


# -- set algebra ------------------------------------------------------------------


def random_sets(seed: int, n: int = 4, size: int = 60, universe: int = 100) -> dict[str, set[bytes]]:
    rng = random.Random(seed)
    return {f"k{i}": {str(rng.randrange(universe)).encode() for _ in range(size)} for i in range(n)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_algebra_matches_python_sets(r: redis.Redis, seed: int) -> None:
    sets = random_sets(seed)
    for key, values in sets.items():
        r.sadd(key, *values)
    keys = list(sets)
    for k in range(1, len(keys) + 1):
        chosen = keys[:k]
        inter = set.intersection(*(sets[x] for x in chosen))
        union = set.union(*(sets[x] for x in chosen))
        diff = sets[chosen[0]].difference(*(sets[x] for x in chosen[1:]))
        assert as_set(r.sinter(chosen)) == inter
        assert as_set(r.sunion(chosen)) == union
        assert as_set(r.sdiff(chosen)) == diff
        assert r.sintercard(k, chosen) == len(inter)
        assert r.sintercard(k, chosen, limit=3) == min(3, len(inter))
        assert r.sinterstore("out", chosen) == len(inter)
        assert r.smembers("out") == inter
        assert r.sunionstore("out", chosen) == len(union)
        assert r.smembers("out") == union
        assert r.sdiffstore("out", chosen) == len(diff)
        assert r.smembers("out") == diff
        assert r.scard("out") == len(diff)
    # A missing key is an empty set.
    assert as_set(r.sinter(["k0", "missing"])) == set()
    assert as_set(r.sunion(["k0", "missing"])) == sets["k0"]
    assert as_set(r.sdiff(["missing", "k0"])) == set()
    assert as_set(r.sdiff(["k0", "missing"])) == sets["k0"]


def test_store_overwrites_any_destination(r: redis.Redis) -> None:
    r.sadd("a", "1", "2")
    r.sadd("b", "2", "3")
    r.set("dst", "string", ex=1000)
    assert r.sunionstore("dst", ["a", "b"]) == 3
    assert r.type("dst") == b"set"
    assert r.ttl("dst") == -1
    assert r.smembers("dst") == {b"1", b"2", b"3"}
    r.hset("dst2", "f", "v")
    assert r.sinterstore("dst2", ["a", "b"]) == 1
    assert r.smembers("dst2") == {b"2"}
    # An older set's members never show through the new value.
    r.sadd("dst3", "old1", "old2")
    assert r.sdiffstore("dst3", ["a", "b"]) == 1
    assert r.smembers("dst3") == {b"1"}


@pytest.mark.parametrize("cmd", ["sinterstore", "sunionstore", "sdiffstore"])
def test_store_of_an_empty_result_deletes_the_destination(r: redis.Redis, cmd: str) -> None:
    for old in ("string", "set", "hash"):
        if old == "string":
            r.set("dst", "v")
        elif old == "set":
            r.sadd("dst", "x")
        else:
            r.hset("dst", "f", "v")
        assert getattr(r, cmd)("dst", ["missing"]) == 0
        assert r.exists("dst") == 0


def test_destination_among_the_sources(r: redis.Redis) -> None:
    r.sadd("u", "1", "2", "3")
    r.sadd("v", "3", "4")
    assert r.sunionstore("u", ["u", "v"]) == 4
    assert r.smembers("u") == {b"1", b"2", b"3", b"4"}
    assert r.sinterstore("u", ["v", "u"]) == 2
    assert r.smembers("u") == {b"3", b"4"}
    assert r.sdiffstore("u", ["u", "v"]) == 0
    assert r.exists("u") == 0
    r.sadd("u", "1", "3")
    assert r.sdiffstore("u", ["v", "u"]) == 1
    assert r.smembers("u") == {b"4"}
    assert r.sinterstore("u", ["u"]) == 1
    assert r.smembers("u") == {b"4"}


# -- WRONGTYPE ----------------------------------------------------------------------

SINGLE_KEY = [
    ("SADD", "w", "a"),
    ("SREM", "w", "a"),
    ("SCARD", "w"),
    ("SISMEMBER", "w", "a"),
    ("SMISMEMBER", "w", "a"),
    ("SMEMBERS", "w"),
    ("SPOP", "w"),
    ("SPOP", "w", 2),
    ("SRANDMEMBER", "w"),
    ("SRANDMEMBER", "w", -2),
    ("SSCAN", "w", 0),
    ("SMOVE", "w", "set", "a"),
    ("SMOVE", "set", "w", "x"),
    ("SINTER", "set", "w"),
    ("SINTER", "missing", "w"),
    ("SUNION", "set", "w"),
    ("SDIFF", "missing", "w"),
    ("SDIFF", "w", "set"),
    ("SINTERCARD", 2, "missing", "w"),
    ("SINTERSTORE", "dst", "missing", "w"),
    ("SUNIONSTORE", "dst", "set", "w"),
    ("SDIFFSTORE", "dst", "set", "w"),
]


@pytest.mark.parametrize("kind", ["string", "hash"])
@pytest.mark.parametrize("args", SINGLE_KEY, ids=lambda a: " ".join(map(str, a)))
def test_wrongtype_changes_nothing(r: redis.Redis, kind: str, args: tuple[object, ...]) -> None:
    if kind == "string":
        r.set("w", "v")
    else:
        r.hset("w", "f", "v")
    r.sadd("set", "x", "y")
    r.sadd("dst", "old")
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command(*args)
    assert str(exc.value) == WRONGTYPE
    assert r.type("w") == kind.encode()
    if kind == "string":
        assert r.get("w") == b"v"
    else:
        assert r.hget("w", "f") == b"v"
    assert r.smembers("set") == {b"x", b"y"}
    assert r.smembers("dst") == {b"old"}


# -- SSCAN --------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 7, 100, 5000])
def test_sscan_returns_every_member_once(r: redis.Redis, count: int) -> None:
    items = members(700)
    sadd_many(r, "s", items)
    got = sscan_all(r, "s", count=count)
    assert sorted(got) == sorted(items)


def test_sscan_match(r: redis.Redis) -> None:
    r.sadd("s", *members(300, "a"), *members(300, "b"))
    got = sscan_all(r, "s", match="a1*", count=13)
    assert sorted(got) == sorted(m for m in members(300, "a") if m.startswith(b"a1"))


def test_sscan_while_the_set_changes(r: redis.Redis) -> None:
    """Members present for the whole scan are returned, nothing twice."""
    stable = members(400, "s")
    sadd_many(r, "s", stable)
    cursor, seen, rounds = 0, [], 0
    while True:
        cursor, items = r.sscan("s", cursor, count=25)
        seen.extend(items)
        rounds += 1
        r.sadd("s", f"new{rounds}")
        r.srem("s", f"new{rounds - 1}")
        if cursor == 0 or rounds > 1000:
            break
    assert cursor == 0
    assert set(stable) <= set(seen)
    assert len(seen) == len(set(seen))


def test_sscan_missing_key(r: redis.Redis) -> None:
    assert r.sscan("missing", 0) == (0, [])
    assert r.sscan("missing", 0, count=5, match="x*") == (0, [])


# -- expiry -------------------------------------------------------------------------


def test_an_expired_set_is_gone(r: redis.Redis) -> None:
    r.sadd("s", "a", "b", "c")
    r.pexpire("s", 30)
    wait_until(lambda: r.exists("s") == 0, message="set expired")
    assert r.scard("s") == 0
    assert r.smembers("s") == set()
    assert r.sismember("s", "a") == 0
    assert r.spop("s") is None
    assert r.sadd("s", "d") == 1
    assert r.smembers("s") == {b"d"}
    assert r.ttl("s") == -1


# -- concurrency --------------------------------------------------------------------


def test_concurrent_sadd_of_distinct_members_counts_exactly(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, per_thread, batch = 8, 400, 4
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = make_client()
        start.wait()
        added = 0
        for i in range(0, per_thread, batch):
            added += client.sadd("s", *(f"t{index}:{j}" for j in range(i, i + batch)))
        return added

    results = run_threads([lambda i=i: worker(i) for i in range(threads)])
    assert results == [per_thread] * threads
    assert r.scard("s") == threads * per_thread
    assert len(r.smembers("s")) == threads * per_thread


def test_concurrent_sadd_of_overlapping_members_counts_each_once(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, universe = 6, 500
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = make_client()
        order = list(range(universe))
        random.Random(index).shuffle(order)
        start.wait()
        return sum(client.sadd("s", f"m{i}") for i in order)

    results = run_threads([lambda i=i: worker(i) for i in range(threads)])
    # Every member was new for exactly one of the threads.
    assert sum(results) == universe
    assert r.scard("s") == universe


@pytest.mark.parametrize("size", [600, LARGE], ids=["small", "large"])
def test_concurrent_spop_hands_out_every_member_once(r: redis.Redis, make_client: ClientFactory, size: int) -> None:
    items = members(size)
    sadd_many(r, "s", items)
    threads = 8
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> list[bytes]:
        client = make_client()
        got: list[bytes] = []
        start.wait()
        for _ in range(size + 1):  # bounded: the set empties before
            if index % 2:
                batch = client.spop("s", 3)
                if not batch:
                    break
                got.extend(batch)
            else:
                one = client.spop("s")
                if one is None:
                    break
                got.append(one)
        return got

    results = run_threads([lambda i=i: worker(i) for i in range(threads)], timeout=120)
    handed = [m for got in results for m in got]
    duplicates = [m for m, n in Counter(handed).items() if n > 1]
    assert not duplicates, f"members popped twice: {duplicates[:10]}"
    assert sorted(handed) == sorted(items)
    assert r.exists("s") == 0


def test_concurrent_srem_counts_each_member_once(r: redis.Redis, make_client: ClientFactory) -> None:
    items = members(800)
    sadd_many(r, "s", items)
    threads = 6
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = make_client()
        order = list(items)
        random.Random(index).shuffle(order)
        start.wait()
        return sum(client.srem("s", *order[i : i + 5]) for i in range(0, len(order), 5))

    results = run_threads([lambda i=i: worker(i) for i in range(threads)])
    assert sum(results) == len(items)
    assert r.exists("s") == 0


def test_concurrent_smove_moves_each_member_once(r: redis.Redis, make_client: ClientFactory) -> None:
    items = members(400)
    sadd_many(r, "src", items)
    threads = 6
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = make_client()
        order = list(items)
        random.Random(index).shuffle(order)
        start.wait()
        return sum(client.smove("src", "dst", m) for m in order)

    results = run_threads([lambda i=i: worker(i) for i in range(threads)])
    assert sum(results) == len(items)
    assert r.exists("src") == 0
    assert r.scard("dst") == len(items)
    assert r.smembers("dst") == set(items)


def test_concurrent_store_is_never_seen_half_written(r: redis.Redis, make_client: ClientFactory) -> None:
    """Readers of a destination that SUNIONSTORE keeps rewriting see either
    nothing yet or a whole union: the 50 members of ``a`` (never removed)
    are always all there, whatever the concurrent writes to the sources."""
    base = set(members(50, "a"))
    r.sadd("a", *base)
    r.sadd("b", *members(50, "b"))
    done = threading.Event()
    start = threading.Barrier(3, timeout=BARRIER_TIMEOUT)

    def writer() -> int:
        client = make_client()
        start.wait()
        try:
            for i in range(300):
                client.sadd("a", f"x{i}")
                client.srem("b", f"b{i % 50}")
                client.sunionstore("dst", ["a", "b"])
        finally:
            done.set()
        return 300

    def storer() -> int:
        client = make_client()
        start.wait()
        n = 0
        while not done.is_set() and n < 5000:
            assert client.sunionstore("dst", ["a", "b"]) >= len(base)
            n += 1
        return n

    def reader() -> int:
        client = make_client()
        start.wait()
        n = 0
        while not done.is_set() and n < 5000:
            got = client.smembers("dst")
            assert not got or base <= got, "a torn SUNIONSTORE was visible"
            n += 1
        return n

    run_threads([writer, storer, reader], timeout=120)
    final = r.sunionstore("dst", ["a", "b"])
    assert final == r.scard("dst") == len(r.smembers("dst"))
    assert r.smembers("dst") == r.smembers("a") | r.smembers("b")
