"""List commands: behaviour, WRONGTYPE, emptied lists, concurrency, blocking.

Every test runs under RESP2 and RESP3 (the ``r`` fixture) and passes against
Debian's redis-server as well as Kiwi. Threads use clients of their own, all
loops are bounded, and every thread is joined against a deadline by
:func:`kiwitest.run_threads`. Blocking tests wait for the blocked client to
show up in CLIENT LIST instead of sleeping.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis

from kiwitest import run_threads, wait_until, zero_timeout_popper_race

ClientFactory = Callable[..., redis.Redis]
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BARRIER_TIMEOUT = 15.0


def cmd(r: redis.Redis, *args: Any) -> Any:
    """Run a raw command; lists come back as lists under both protocols."""
    reply = r.execute_command(*args)
    if isinstance(reply, tuple):
        return list(reply)
    return reply


def error_of(r: redis.Redis, *args: Any) -> str:
    """The error text a command answers (it must answer an error)."""
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command(*args)
    return str(info.value)


# -- pushes and pops ----------------------------------------------------------


def test_push_order_and_lengths(r: redis.Redis) -> None:
    assert r.lpush("l", "a") == 1
    assert r.lpush("l", "b", "c") == 3
    assert r.rpush("l", "d", "e") == 5
    assert r.lrange("l", 0, -1) == [b"c", b"b", b"a", b"d", b"e"]
    assert r.llen("l") == 5
    assert r.type("l") == b"list"
    assert r.lpushx("l", "x") == 6
    assert r.rpushx("l", "y", "z") == 8
    assert r.lrange("l", 0, -1) == [b"x", b"c", b"b", b"a", b"d", b"e", b"y", b"z"]
    assert r.lpushx("missing", "a") == 0
    assert r.rpushx("missing", "a") == 0
    assert r.exists("missing") == 0


def test_pop_with_and_without_count(r: redis.Redis) -> None:
    r.rpush("p", *"abcdefg")
    assert r.lpop("p") == b"a"
    assert r.rpop("p") == b"g"
    assert cmd(r, "LPOP", "p", 2) == [b"b", b"c"]
    assert cmd(r, "RPOP", "p", 2) == [b"f", b"e"]
    assert cmd(r, "LPOP", "p", 0) == []
    assert cmd(r, "RPOP", "p", 10) == [b"d"]
    assert r.exists("p") == 0
    # A missing key: nil, or a nil array with a count (even 0).
    assert r.lpop("p") is None
    assert cmd(r, "LPOP", "p", 3) is None
    assert cmd(r, "RPOP", "p", 0) is None


@pytest.mark.parametrize("count", ["-1", "abc", "1.5", "9223372036854775808"])
def test_pop_count_must_be_positive(r: redis.Redis, count: str) -> None:
    r.rpush("p", "a")
    for name in ("LPOP", "RPOP"):
        assert error_of(r, name, "p", count) == "value is out of range, must be positive"
        assert error_of(r, name, "missing", count) == "value is out of range, must be positive"
    assert r.lrange("p", 0, -1) == [b"a"]


def test_pop_extra_argument_is_an_arity_error(r: redis.Redis) -> None:
    r.rpush("p", "a")
    assert error_of(r, "LPOP", "p", 1, 2) == "wrong number of arguments for 'lpop' command"
    assert error_of(r, "RPOP", "p", 1, 2) == "wrong number of arguments for 'rpop' command"


def test_big_list_both_ends(r: redis.Redis) -> None:
    n = 2000
    r.rpush("big", *range(n // 2, n))
    r.lpush("big", *reversed(range(n // 2)))  # LPUSH reverses: 0 ends up first
    assert r.llen("big") == n
    assert r.lrange("big", 0, -1) == [str(i).encode() for i in range(n)]
    assert r.lindex("big", 0) == b"0"
    assert r.lindex("big", -1) == str(n - 1).encode()
    assert r.lindex("big", 1234) == b"1234"
    assert r.lrange("big", 998, 1001) == [b"998", b"999", b"1000", b"1001"]
    assert cmd(r, "LPOP", "big", 1000) == [str(i).encode() for i in range(1000)]
    assert cmd(r, "RPOP", "big", 5000) == [str(i).encode() for i in reversed(range(1000, n))]
    assert r.exists("big") == 0


# -- indexes, ranges, LSET --------------------------------------------------------


def test_lrange_and_lindex_clamping(r: redis.Redis) -> None:
    r.rpush("r", *range(10))
    digits = [str(i).encode() for i in range(10)]
    cases = [(0, -1), (2, 5), (-3, -1), (-100, 100), (5, 2), (10, 20), (-11, -11), (8, -3)]
    for start, end in cases:
        # Python's slice semantics differ; compute Redis's clamping by hand.
        s = start + 10 if start < 0 else start
        e = end + 10 if end < 0 else end
        s = max(s, 0)
        expected = [] if s > e or s >= 10 else digits[s : min(e, 9) + 1]
        assert r.lrange("r", start, end) == expected, (start, end)
    assert r.lindex("r", -1) == b"9"
    assert r.lindex("r", -10) == b"0"
    assert r.lindex("r", 10) is None
    assert r.lindex("r", -11) is None
    assert r.lrange("missing", 0, -1) == []
    assert r.lindex("missing", 0) is None
    # LINDEX looks the key up first: a bad index on a missing key is nil.
    assert cmd(r, "LINDEX", "missing", "abc") is None
    assert error_of(r, "LINDEX", "r", "abc") == "value is not an integer or out of range"
    assert error_of(r, "LRANGE", "missing", "a", 0) == "value is not an integer or out of range"


def test_lset(r: redis.Redis) -> None:
    r.rpush("s", "a", "b", "c")
    assert r.lset("s", 0, "A") is True
    assert r.lset("s", -1, "C") is True
    assert r.lrange("s", 0, -1) == [b"A", b"b", b"C"]
    assert error_of(r, "LSET", "s", 3, "x") == "index out of range"
    assert error_of(r, "LSET", "s", -4, "x") == "index out of range"
    assert error_of(r, "LSET", "missing", 0, "x") == "no such key"
    assert error_of(r, "LSET", "missing", "abc", "x") == "no such key"
    assert error_of(r, "LSET", "s", "abc", "x") == "value is not an integer or out of range"
    assert r.exists("missing") == 0
    assert r.lrange("s", 0, -1) == [b"A", b"b", b"C"]


# -- LINSERT, LREM, LTRIM, LPOS ------------------------------------------------


def test_linsert(r: redis.Redis) -> None:
    r.rpush("i", "a", "b", "c")
    assert r.linsert("i", "BEFORE", "b", "x") == 4
    assert r.linsert("i", "AFTER", "b", "y") == 5
    assert r.linsert("i", "before", "a", "first") == 6
    assert r.linsert("i", "after", "c", "last") == 7
    assert r.lrange("i", 0, -1) == [b"first", b"a", b"x", b"b", b"y", b"c", b"last"]
    assert r.linsert("i", "AFTER", "nosuch", "z") == -1
    assert r.linsert("missing", "AFTER", "a", "z") == 0
    assert r.exists("missing") == 0
    assert error_of(r, "LINSERT", "i", "MIDDLE", "a", "z") == "syntax error"
    assert error_of(r, "LINSERT", "missing", "MIDDLE", "a", "z") == "syntax error"
    # The first occurrence of the pivot is used.
    r.rpush("d", "p", "q", "p")
    r.linsert("d", "AFTER", "p", "n")
    assert r.lrange("d", 0, -1) == [b"p", b"n", b"q", b"p"]


def test_lrem(r: redis.Redis) -> None:
    r.rpush("rm", *"abacada")
    assert r.lrem("rm", 1, "a") == 1
    assert r.lrange("rm", 0, -1) == [b"b", b"a", b"c", b"a", b"d", b"a"]
    assert r.lrem("rm", -2, "a") == 2
    assert r.lrange("rm", 0, -1) == [b"b", b"a", b"c", b"d"]
    assert r.lrem("rm", 0, "zz") == 0
    assert r.lrem("rm", 0, "a") == 1
    for ch in "bcd":
        r.lrem("rm", 0, ch)
    assert r.exists("rm") == 0
    assert r.lrem("rm", 0, "a") == 0
    assert error_of(r, "LREM", "missing", "abc", "a") == "value is not an integer or out of range"


def test_ltrim(r: redis.Redis) -> None:
    r.rpush("t", *range(10))
    assert r.ltrim("t", 1, -2) is True
    assert r.lrange("t", 0, -1) == [str(i).encode() for i in range(1, 9)]
    assert r.ltrim("t", 2, 3) is True
    assert r.lrange("t", 0, -1) == [b"3", b"4"]
    # After a trim the list still grows at both ends.
    r.lpush("t", "L")
    r.rpush("t", "R")
    assert r.lrange("t", 0, -1) == [b"L", b"3", b"4", b"R"]
    assert r.ltrim("t", 5, 2) is True
    assert r.exists("t") == 0
    assert r.ltrim("missing", 0, -1) is True
    assert r.exists("missing") == 0


def test_ltrim_keeping_a_few_of_many(r: redis.Redis) -> None:
    r.rpush("t", *range(1000))
    r.ltrim("t", 500, 502)
    assert r.lrange("t", 0, -1) == [b"500", b"501", b"502"]
    r.lpush("t", "a")
    r.rpush("t", "z")
    assert r.lrange("t", 0, -1) == [b"a", b"500", b"501", b"502", b"z"]
    assert r.lindex("t", 1) == b"500"


def test_lpos(r: redis.Redis) -> None:
    r.rpush("lp", "a", "b", "c", "1", "2", "3", "c", "c")
    assert r.lpos("lp", "c") == 2
    assert r.lpos("lp", "c", rank=2) == 6
    assert r.lpos("lp", "c", rank=-1) == 7
    assert r.lpos("lp", "c", rank=-3) == 2
    assert r.lpos("lp", "c", rank=4) is None
    assert r.lpos("lp", "c", count=0) == [2, 6, 7]
    assert r.lpos("lp", "c", count=2, rank=-1) == [7, 6]
    assert r.lpos("lp", "c", count=0, maxlen=7) == [2, 6]
    assert r.lpos("lp", "c", maxlen=2) is None
    assert r.lpos("lp", "nosuch", count=3) == []
    assert r.lpos("missing", "c") is None
    assert r.lpos("missing", "c", count=0) == []
    assert error_of(r, "LPOS", "lp", "c", "RANK", 0).startswith("RANK can't be zero")
    assert error_of(r, "LPOS", "lp", "c", "COUNT", -1) == "COUNT can't be negative"
    assert error_of(r, "LPOS", "lp", "c", "MAXLEN", -1) == "MAXLEN can't be negative"
    assert error_of(r, "LPOS", "lp", "c", "FOO", 1) == "syntax error"


# -- moves ------------------------------------------------------------------------


def test_lmove_and_rpoplpush(r: redis.Redis) -> None:
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.lrange("dst", 0, -1) == [b"c", b"a"]
    assert r.rpoplpush("src", "dst") == b"b"
    assert r.exists("src") == 0
    assert r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.lmove("missing", "dst", "LEFT", "LEFT") is None
    assert r.rpoplpush("missing", "dst") is None
    assert error_of(r, "LMOVE", "dst", "src", "UP", "LEFT") == "syntax error"


def test_same_list_rotation_keeps_ttl(r: redis.Redis) -> None:
    r.rpush("rot", "a", "b", "c")
    assert r.rpoplpush("rot", "rot") == b"c"
    assert r.lrange("rot", 0, -1) == [b"c", b"a", b"b"]
    assert r.lmove("rot", "rot", "LEFT", "RIGHT") == b"c"
    assert r.lrange("rot", 0, -1) == [b"a", b"b", b"c"]
    r.delete("rot")
    r.rpush("one", "x")
    r.expire("one", 1000)
    assert r.rpoplpush("one", "one") == b"x"
    assert r.lrange("one", 0, -1) == [b"x"]
    assert 990 <= r.ttl("one") <= 1000


def test_lmpop(r: redis.Redis) -> None:
    r.rpush("m1", *"abcde")
    r.rpush("m2", "x", "y")
    assert cmd(r, "LMPOP", 1, "m1", "LEFT") == [b"m1", [b"a"]]
    assert cmd(r, "LMPOP", 2, "nokey", "m2", "RIGHT", "COUNT", 10) == [b"m2", [b"y", b"x"]]
    assert r.exists("m2") == 0
    assert cmd(r, "LMPOP", 2, "m2", "m1", "LEFT", "COUNT", 2) == [b"m1", [b"b", b"c"]]
    assert cmd(r, "LMPOP", 1, "nokey", "LEFT") is None
    assert error_of(r, "LMPOP", 0, "m1", "LEFT") == "numkeys should be greater than 0"
    assert error_of(r, "LMPOP", 1, "m1", "LEFT", "COUNT", 0) == "count should be greater than 0"
    assert error_of(r, "LMPOP", 2, "m1", "LEFT") == "syntax error"
    assert error_of(r, "LMPOP", 1, "m1", "LEFT", "COUNT", 1, "COUNT", 1) == "syntax error"


# -- a randomized comparison against a model ----------------------------------------


def redis_range(model: list[bytes], start: int, end: int) -> tuple[int, int] | None:
    """The inclusive offsets LRANGE/LTRIM cover, or None."""
    n = len(model)
    s = start + n if start < 0 else start
    e = end + n if end < 0 else end
    s = max(s, 0)
    if s > e or s >= n:
        return None
    return s, min(e, n - 1)


def test_random_operations_match_a_model(r: redis.Redis) -> None:
    """Pushes, pops, inserts, removals, trims, sets and rotations at random
    positions (so both shifting directions run) against a Python list."""
    rng = random.Random(20240611)
    model: list[bytes] = []
    values = [b"v%d" % i for i in range(8)]
    for step in range(600):
        op = rng.choice(["lpush", "rpush", "lpop", "rpop", "linsert", "lrem", "ltrim", "lset", "rot"])
        v = rng.choice(values)
        if op == "lpush":
            n = rng.randint(1, 4)
            items = [rng.choice(values) for _ in range(n)]
            assert r.lpush("k", *items) == len(model) + n
            model[:0] = list(reversed(items))
        elif op == "rpush":
            items = [rng.choice(values) for _ in range(rng.randint(1, 4))]
            assert r.rpush("k", *items) == len(model) + len(items)
            model.extend(items)
        elif op == "lpop":
            n = rng.randint(1, 3)
            got = cmd(r, "LPOP", "k", n)
            assert got == (model[:n] if model else None)
            del model[:n]
        elif op == "rpop":
            got = r.rpop("k")
            assert got == (model.pop() if model else None)
        elif op == "linsert":
            where = rng.choice(["BEFORE", "AFTER"])
            got = r.linsert("k", where, v, b"new%d" % step)
            if not model:
                assert got == 0
            elif v not in model:
                assert got == -1
            else:
                at = model.index(v) + (where == "AFTER")
                model.insert(at, b"new%d" % step)
                assert got == len(model)
        elif op == "lrem":
            count = rng.randint(-3, 3)
            got = r.lrem("k", count, v)
            hits = [i for i, x in enumerate(model) if x == v]
            if count < 0:
                hits = hits[::-1][:-count]
            elif count > 0:
                hits = hits[:count]
            for i in sorted(hits, reverse=True):
                del model[i]
            assert got == len(hits)
        elif op == "ltrim" and rng.random() < 0.3:
            n = len(model)
            start = rng.randint(-n - 2, n + 2)
            end = rng.randint(-n - 2, n + 2)
            r.ltrim("k", start, end)
            span = redis_range(model, start, end)
            model = [] if span is None else model[span[0] : span[1] + 1]
        elif op == "lset" and model:
            i = rng.randint(-len(model), len(model) - 1)
            r.lset("k", i, v)
            model[i] = v
        elif op == "rot" and model:
            assert r.rpoplpush("k", "k") == model[-1]
            model.insert(0, model.pop())
        if step % 10 == 0 or op in ("linsert", "lrem"):
            assert r.lrange("k", 0, -1) == model, (step, op)
            assert r.llen("k") == len(model)
            assert r.exists("k") == (1 if model else 0)
        if model and step % 7 == 0:
            i = rng.randint(-len(model), len(model) - 1)
            assert r.lindex("k", i) == model[i]
            for rank in (1, 2, -1):
                hits = [j for j, x in enumerate(model) if x == v]
                ordered = hits if rank > 0 else hits[::-1]
                expected = ordered[abs(rank) - 1] if len(ordered) >= abs(rank) else None
                assert r.lpos("k", v, rank=rank) == expected


# -- WRONGTYPE and emptied lists ------------------------------------------------------

WRONGTYPE_COMMANDS = [
    ("LPUSH", "str", "a"),
    ("RPUSH", "str", "a"),
    ("LPUSHX", "str", "a"),
    ("RPUSHX", "str", "a"),
    ("LPOP", "str"),
    ("RPOP", "str", 2),
    ("LLEN", "str"),
    ("LRANGE", "str", 0, -1),
    ("LINDEX", "str", 0),
    ("LSET", "str", 0, "x"),
    ("LINSERT", "str", "BEFORE", "a", "b"),
    ("LREM", "str", 0, "a"),
    ("LTRIM", "str", 0, -1),
    ("LPOS", "str", "a"),
    ("LMOVE", "str", "dst", "LEFT", "LEFT"),
    ("LMOVE", "lst", "str", "LEFT", "LEFT"),
    ("RPOPLPUSH", "str", "str"),
    ("RPOPLPUSH", "lst", "str"),
    ("LMPOP", 2, "str", "lst", "LEFT"),
    ("BLPOP", "str", "lst", 0),
    ("BRPOP", "str", 0),
    ("BLMOVE", "str", "dst", "LEFT", "LEFT", 0),
    ("BLMOVE", "lst", "str", "LEFT", "LEFT", 0),
    ("BRPOPLPUSH", "lst", "str", 0),
    ("BLMPOP", 0, 1, "str", "LEFT"),
]


@pytest.mark.parametrize("args", WRONGTYPE_COMMANDS, ids=lambda a: " ".join(map(str, a)))
def test_wrongtype_against_a_string(r: redis.Redis, args: tuple[Any, ...]) -> None:
    r.set("str", "value")
    r.expire("str", 1000)
    r.rpush("lst", "a", "b")
    assert error_of(r, *args) == WRONGTYPE
    assert r.get("str") == b"value"
    assert 990 <= r.ttl("str") <= 1000
    assert r.lrange("lst", 0, -1) == [b"a", b"b"]
    assert r.exists("dst") == 0


@pytest.mark.parametrize(
    "args",
    [
        ("LPOP", "e"),
        ("RPOP", "e", 5),
        ("LREM", "e", 0, "a"),
        ("LTRIM", "e", 1, 0),
        ("LMOVE", "e", "other", "LEFT", "LEFT"),
        ("RPOPLPUSH", "e", "other"),
        ("LMPOP", 1, "e", "RIGHT", "COUNT", 9),
        ("BLPOP", "e", 0),
        ("BRPOP", "e", 0),
        ("BLMOVE", "e", "other", "RIGHT", "RIGHT", 0),
        ("BRPOPLPUSH", "e", "other", 0),
        ("BLMPOP", 0, 1, "e", "LEFT", "COUNT", 3),
    ],
    ids=lambda a: a[0],
)
def test_list_is_deleted_when_emptied(r: redis.Redis, args: tuple[Any, ...]) -> None:
    r.rpush("e", "a")
    r.expire("e", 1000)
    r.execute_command(*args)
    assert r.exists("e") == 0
    assert r.ttl("e") == -2
    assert r.type("e") == b"none"
    # A new list under the same name starts empty and without the old TTL.
    assert r.rpush("e", "b") == 1
    assert r.lrange("e", 0, -1) == [b"b"]
    assert r.ttl("e") == -1


# -- concurrency ----------------------------------------------------------------------


def test_concurrent_push_and_pop_lose_and_duplicate_nothing(r: redis.Redis, make_client: ClientFactory) -> None:
    """Pushers LPUSH unique values while poppers RPOP (some with a count):
    every value comes out exactly once, and each popper sees every pusher's
    values in push order (the list is a FIFO from the right)."""
    pushers, poppers, per_pusher = 4, 4, 400
    total = pushers * per_pusher
    popped_total = [0]
    lock = threading.Lock()
    start = threading.Barrier(pushers + poppers, timeout=BARRIER_TIMEOUT)

    def pusher(index: int, client: redis.Redis) -> int:
        start.wait()
        seq = 0
        while seq < per_pusher:
            batch = [f"{index}:{seq + j}" for j in range(min(1 + seq % 3, per_pusher - seq))]
            client.lpush("q", *batch)
            seq += len(batch)
        return seq

    def popper(index: int, client: redis.Redis) -> list[bytes]:
        start.wait()
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if popped_total[0] >= total:
                    break
            if index % 2:
                items = cmd(client, "RPOP", "q", 3) or []
            else:
                one = client.rpop("q")
                items = [one] if one is not None else []
            got.extend(items)
            with lock:
                popped_total[0] += len(items)
        return got

    workers: list[Callable[[], Any]] = []
    workers += [functools.partial(pusher, i, make_client()) for i in range(pushers)]
    workers += [functools.partial(popper, i, make_client()) for i in range(poppers)]
    results = run_threads(workers, timeout=60)
    popped = [v for lst in results[pushers:] for v in lst]
    expected = {f"{i}:{s}".encode() for i in range(pushers) for s in range(per_pusher)}
    counts = Counter(popped)
    assert not [v for v, n in counts.items() if n > 1], "duplicated values"
    assert set(popped) == expected, f"lost {len(expected - set(popped))} values"
    for got in results[pushers:]:
        last: dict[bytes, int] = {}
        for v in got:
            who, seq = v.split(b":")
            assert int(seq) > last.get(who, -1), "a popper saw a pusher's values out of order"
            last[who] = int(seq)
    assert r.exists("q") == 0


def test_concurrent_moves_conserve_elements(r: redis.Redis, make_client: ClientFactory) -> None:
    """LMOVE between two lists and same-list rotations from many clients:
    the union of both lists is always the original elements."""
    elements = {f"e{i}".encode() for i in range(60)}
    r.rpush("A", *sorted(elements))
    movers = 6
    start = threading.Barrier(movers, timeout=BARRIER_TIMEOUT)

    def mover(index: int, client: redis.Redis) -> int:
        rng = random.Random(index)
        start.wait()
        for _ in range(300):
            src, dst = rng.choice([("A", "B"), ("B", "A"), ("A", "A"), ("B", "B")])
            ends = rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])
            if rng.random() < 0.3:
                client.rpoplpush(src, dst)
            else:
                client.lmove(src, dst, *ends)
        return 300

    run_threads([functools.partial(mover, i, make_client()) for i in range(movers)], timeout=60)
    a, b = r.lrange("A", 0, -1), r.lrange("B", 0, -1)
    assert len(a) + len(b) == len(elements)
    assert set(a) | set(b) == elements
    assert r.llen("A") == len(a) and r.llen("B") == len(b)


def test_concurrent_inserts_and_removals_in_the_middle(r: redis.Redis, make_client: ClientFactory) -> None:
    """LINSERT/LREM in the middle while others push at both ends: the final
    list holds exactly what was added and not removed, in a consistent order."""
    r.rpush("mid", "pivot")
    workers_n, per_worker = 4, 90
    start = threading.Barrier(workers_n * 2, timeout=BARRIER_TIMEOUT)

    def inserter(index: int, client: redis.Redis) -> int:
        start.wait()
        for j in range(per_worker):
            where = "BEFORE" if j % 2 else "AFTER"
            assert client.linsert("mid", where, "pivot", f"i{index}:{j}") > 0
            if j % 3 == 0:
                assert client.lrem("mid", 1, f"i{index}:{j}") == 1
        return per_worker

    def pusher(index: int, client: redis.Redis) -> int:
        start.wait()
        for j in range(per_worker):
            if j % 2:
                client.lpush("mid", f"p{index}:{j}")
            else:
                client.rpush("mid", f"p{index}:{j}")
        return per_worker

    workers: list[Callable[[], Any]] = []
    workers += [functools.partial(inserter, i, make_client()) for i in range(workers_n)]
    workers += [functools.partial(pusher, i, make_client()) for i in range(workers_n)]
    run_threads(workers, timeout=60)
    final = r.lrange("mid", 0, -1)
    expected = {b"pivot"}
    for i in range(workers_n):
        for j in range(per_worker):
            expected.add(f"p{i}:{j}".encode())
            if j % 3:
                expected.add(f"i{i}:{j}".encode())
    assert Counter(final) == Counter(expected)
    assert r.llen("mid") == len(expected)
    # Everything inserted AFTER the pivot is after it, BEFORE before it.
    pivot = final.index(b"pivot")
    for pos, v in enumerate(final):
        if v.startswith(b"i"):
            j = int(v.split(b":")[1])
            assert (pos > pivot) == (j % 2 == 0)


# -- blocking -------------------------------------------------------------------------


def blocked_on(r: redis.Redis, name: str, command: str) -> bool:
    """Whether the client called ``name`` is running (blocked in) ``command``."""
    return any(c.get("name") == name and c.get("cmd", "").split("|")[0] == command for c in r.client_list())


def start_blocked(
    make_client: ClientFactory, r: redis.Redis, name: str, *args: Any
) -> tuple[threading.Thread, list[Any]]:
    """Run a blocking command in a thread on its own client; return once the
    server shows the client blocked in it."""
    client = make_client()
    client.client_setname(name)
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(cmd(client, *args))
        except Exception as exc:  # surfaced by the caller
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(
        lambda: blocked_on(r, name, str(args[0]).lower()) or result,
        message=f"{name} blocked in {args[0]}",
    )
    assert not result, f"{args[0]} answered instead of blocking: {result}"
    return thread, result


def finish(thread: threading.Thread, result: list[Any]) -> Any:
    thread.join(10)
    assert not thread.is_alive(), "blocked client did not wake up"
    assert len(result) == 1
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def test_blpop_wakes_on_push(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "bl1", "BLPOP", "k1", "k2", 0)
    r.rpush("k2", "a", "b")
    assert finish(thread, result) == [b"k2", b"a"]
    assert r.lrange("k2", 0, -1) == [b"b"]


def test_brpop_wakes_on_push(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "br1", "BRPOP", "k", 5)
    r.rpush("k", "a", "b")
    assert finish(thread, result) == [b"k", b"b"]
    assert r.lrange("k", 0, -1) == [b"a"]


def test_blmove_and_brpoplpush_wake_on_push(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "bm1", "BLMOVE", "src", "dst", "LEFT", "RIGHT", 0)
    r.rpush("src", "x", "y")
    assert finish(thread, result) == b"x"
    assert r.lrange("src", 0, -1) == [b"y"]
    assert r.lrange("dst", 0, -1) == [b"x"]
    r.delete("src", "dst")
    thread, result = start_blocked(make_client, r, "bm2", "BRPOPLPUSH", "src", "dst", 0)
    r.lpush("src", "p", "q")
    assert finish(thread, result) == b"p"
    assert r.lrange("dst", 0, -1) == [b"p"]
    assert r.lrange("src", 0, -1) == [b"q"]


def test_blmpop_wakes_with_count(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "bmp", "BLMPOP", 0, 2, "a", "b", "RIGHT", "COUNT", 2)
    r.rpush("b", "1", "2", "3")
    assert finish(thread, result) == [b"b", [b"3", b"2"]]
    assert r.lrange("b", 0, -1) == [b"1"]


def test_blocked_pop_is_woken_by_a_move_into_its_key(r: redis.Redis, make_client: ClientFactory) -> None:
    r.rpush("from", "m")
    thread, result = start_blocked(make_client, r, "bmv", "BLPOP", "into", 0)
    assert r.rpoplpush("from", "into") == b"m"
    assert finish(thread, result) == [b"into", b"m"]
    assert r.exists("from", "into") == 0


def test_blocking_timeouts_answer_nil(r: redis.Redis) -> None:
    for args in (
        ("BLPOP", "none1", "none2", 0.05),
        ("BRPOP", "none1", 0.05),
        ("BLMPOP", 0.05, 1, "none1", "LEFT"),
        ("BLMOVE", "none1", "none2", "LEFT", "LEFT", 0.05),
        ("BRPOPLPUSH", "none1", "none2", 0.05),
    ):
        began = time.monotonic()
        assert cmd(r, *args) is None
        assert 0.03 <= time.monotonic() - began < 5, args
    assert r.exists("none1", "none2") == 0


def test_several_blocked_clients_each_get_one_element(r: redis.Redis, make_client: ClientFactory) -> None:
    waiters = [start_blocked(make_client, r, f"w{i}", "BLPOP", "many", 0) for i in range(4)]
    r.rpush("many", "a", "b", "c", "d", "e")
    got = sorted(finish(t, res)[1] for t, res in waiters)
    assert got == [b"a", b"b", b"c", b"d"]
    assert r.lrange("many", 0, -1) == [b"e"]


def test_blocked_client_ignores_a_push_to_other_keys(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "bo", "BLPOP", "mine", 0)
    r.rpush("other", "x")
    assert blocked_on(r, "bo", "blpop")
    assert not result
    r.rpush("mine", "y")
    assert finish(thread, result) == [b"mine", b"y"]
    assert r.lrange("other", 0, -1) == [b"x"]


def assert_still_blocked(result: list[Any], name: str, r: redis.Redis, command: str) -> None:
    """The blocked client has not answered (checked for a moment: there is
    no event to wait for when nothing should happen)."""
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        assert not result, f"{name} answered: {result}"
        time.sleep(0.02)
    assert blocked_on(r, name, command)


def test_blocked_pop_ignores_its_key_turning_into_a_string(r: redis.Redis, make_client: ClientFactory) -> None:
    """Redis serves blocked clients only from lists: a key that becomes a
    string is not ready (no WRONGTYPE); a later list there wakes the client."""
    thread, result = start_blocked(make_client, r, "bws", "BLPOP", "k", "k2", 0)
    r.set("k", "v")
    assert_still_blocked(result, "bws", r, "blpop")
    r.rpush("k2", "x")
    assert finish(thread, result) == [b"k2", b"x"]
    assert r.get("k") == b"v"


def test_blocked_lmove_answers_wrongtype_for_a_string_destination(r: redis.Redis, make_client: ClientFactory) -> None:
    thread, result = start_blocked(make_client, r, "bmw", "BLMOVE", "src", "dst", "LEFT", "LEFT", 0)
    r.set("dst", "v")
    r.rpush("src", "a")
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(result[0], redis.ResponseError)
    assert str(result[0]) == WRONGTYPE
    assert r.lrange("src", 0, -1) == [b"a"]
    assert r.get("dst") == b"v"


def test_blpop_with_zero_timeout_waits_through_lost_races(
    r: redis.Redis, make_client: Callable[..., redis.Redis]
) -> None:
    """Losing the race for an element to another client, however often, is
    not a timeout: ``BLPOP k 0`` answers only with an element."""
    victims = [make_client(decode_responses=True) for _ in range(20)]
    replies, left = zero_timeout_popper_race(
        victims, make_client(decode_responses=True), "race", period=0.01, take_back_after=0.005, contest=0.2
    )
    assert None not in replies, f"{replies.count(None)} BLPOP k 0 answered nil"
    popped = [element for _, element in replies]
    assert all(key == "race" for key, _ in replies)
    assert len(set(popped)) == len(popped), "an element was popped twice"
    assert not set(popped) & set(left)
