"""Sorted-set commands under RESP2 and RESP3: replies, errors, empty sets
deleted, blocking pops, and exact results under concurrent clients.

Byte-level replies of most edge cases are covered by
``tests/redis-diff/zset.txt``; these tests check behaviour across commands,
on larger sets, and with several clients at once. Every loop is bounded and
every thread is joined against a deadline (:func:`kiwitest.run_threads`).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis

from kiwitest import RawConnection, run_threads, wait_until

ClientFactory = Callable[..., redis.Redis]
RawFactory = Callable[[], RawConnection]

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_FLOAT = "value is not a valid float"
NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"
NAN_SCORE = "resulting score is not a number (NaN)"
RANGE_NOT_FLOAT = "min or max is not a float"
LEX_INVALID = "min or max not valid string range item"
BARRIER_TIMEOUT = 15.0


def error_of(client: redis.Redis, *args: object) -> str:
    """Run a command that must fail and return the error text."""
    with pytest.raises(redis.ResponseError) as exc:
        client.execute_command(*args)
    return str(exc.value)


def scored(reply: Any) -> list[tuple[bytes, float]]:
    """A WITHSCORES reply as (member, score) pairs: RESP3 sends pairs with
    double scores, RESP2 a flat list with scores as bulk strings."""
    if reply and isinstance(reply[0], (list, tuple)):
        return [(m, float(s)) for m, s in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def scan_pairs(batch: Any) -> list[tuple[bytes, float]]:
    """ZSCAN's element list (redis-py may already have paired it)."""
    if batch and isinstance(batch[0], tuple):
        return [(m, float(v)) for m, v in batch]
    return scored(batch)


def members(client: redis.Redis, key: str) -> list[bytes]:
    return list(client.execute_command("ZRANGE", key, 0, -1))


def with_scores(client: redis.Redis, key: str) -> list[tuple[bytes, float]]:
    return scored(client.execute_command("ZRANGE", key, 0, -1, "WITHSCORES"))


def sorted_model(model: dict[bytes, float]) -> list[tuple[bytes, float]]:
    """Redis order: by score, then by member bytes."""
    return sorted(model.items(), key=lambda kv: (kv[1], kv[0]))


# -- ZADD and friends ------------------------------------------------------------


def test_zadd_counts_and_updates(r: redis.Redis) -> None:
    assert r.execute_command("ZADD", "z", 1, "a", 2, "b") == 2
    assert r.execute_command("ZADD", "z", 3, "a", 4, "c") == 1
    assert r.execute_command("ZADD", "z", "CH", 3, "a", 5, "b", 6, "d") == 2
    assert with_scores(r, "z") == [(b"a", 3.0), (b"c", 4.0), (b"b", 5.0), (b"d", 6.0)]
    assert r.zcard("z") == 4
    assert r.type("z") == b"zset"


def test_zadd_same_member_twice_in_one_call(r: redis.Redis) -> None:
    assert r.execute_command("ZADD", "z", 1, "a", 2, "a", 3, "a") == 1
    assert r.zscore("z", "a") == 3.0
    assert r.execute_command("ZADD", "z", "CH", 4, "a", 3, "a") == 2
    assert r.zcard("z") == 1


def test_zadd_condition_flags(r: redis.Redis) -> None:
    r.zadd("z", {"a": 5})
    assert r.execute_command("ZADD", "z", "NX", 1, "a", 1, "b") == 1
    assert r.zscore("z", "a") == 5.0
    assert r.execute_command("ZADD", "z", "XX", "CH", 7, "a", 1, "new") == 1
    assert r.zscore("z", "new") is None
    assert r.execute_command("ZADD", "z", "GT", "CH", 6, "a", 8, "b") == 1
    assert r.zscore("z", "a") == 7.0 and r.zscore("z", "b") == 8.0
    assert r.execute_command("ZADD", "z", "LT", "CH", 9, "a", 2, "b", 0, "c") == 2
    assert with_scores(r, "z") == [(b"c", 0.0), (b"b", 2.0), (b"a", 7.0)]


def test_zadd_incr(r: redis.Redis) -> None:
    assert r.zadd("z", {"a": 1.5}, incr=True) == 1.5
    assert r.zadd("z", {"a": 1}, incr=True) == 2.5
    assert r.zadd("z", {"missing": 1}, xx=True, incr=True) is None
    assert r.zadd("z", {"a": 1}, nx=True, incr=True) is None
    assert r.zadd("z", {"a": -1}, gt=True, incr=True) is None
    assert r.zadd("nokey", {"a": 1}, xx=True, incr=True) is None
    assert r.exists("nokey") == 0
    assert r.zscore("z", "a") == 2.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("NX", "XX", 1, "a"), "XX and NX options at the same time are not compatible"),
        (("NX", "GT", 1, "a"), "GT, LT, and/or NX options at the same time are not compatible"),
        (("GT", "LT", 1, "a"), "GT, LT, and/or NX options at the same time are not compatible"),
        (("INCR", 1, "a", 2, "b"), "INCR option supports a single increment-element pair"),
        ((1, "a", 2), SYNTAX),
        (("NX", 1), SYNTAX),
        (("x", "a"), NOT_FLOAT),
        (("nan", "a"), NOT_FLOAT),
        (("1e400", "a"), NOT_FLOAT),
        ((" 1", "a"), NOT_FLOAT),
        (("", "a"), NOT_FLOAT),
    ],
)
def test_zadd_errors_change_nothing(r: redis.Redis, args: tuple[object, ...], message: str) -> None:
    r.zadd("z", {"keep": 1})
    assert error_of(r, "ZADD", "z", *args) == message
    assert with_scores(r, "z") == [(b"keep", 1.0)]


def test_scores_accept_what_redis_accepts(r: redis.Redis) -> None:
    r.execute_command("ZADD", "z", "inf", "i", "-inf", "n", "0x10", "h", ".5", "p", "5.", "q", "1e-310", "s")
    assert with_scores(r, "z") == [
        (b"n", float("-inf")),
        (b"s", 1e-310),
        (b"p", 0.5),
        (b"q", 5.0),
        (b"h", 16.0),
        (b"i", float("inf")),
    ]


def test_nan_result_is_refused(r: redis.Redis) -> None:
    r.zadd("z", {"a": float("inf")})
    assert error_of(r, "ZINCRBY", "z", "-inf", "a") == NAN_SCORE
    assert error_of(r, "ZADD", "z", "INCR", "-inf", "a") == NAN_SCORE
    assert r.zscore("z", "a") == float("inf")


def test_double_formatting(r: redis.Redis, raw: RawFactory, protocol: int) -> None:
    conn = raw()
    if protocol == 3:
        conn.call("HELLO", 3)
    conn.call("ZADD", "z", "0.1", "a", "1e20", "b", "-0", "c", "123456789012345678", "d")
    if protocol == 3:
        assert conn.call_raw("ZSCORE", "z", "a") == b",0.10000000000000001\r\n"
        assert conn.call_raw("ZSCORE", "z", "c") == b",0\r\n"
        assert conn.call_raw("ZINCRBY", "z", "1", "b") == b",1e+20\r\n"
    else:
        assert conn.call_raw("ZSCORE", "z", "a") == b"$19\r\n0.10000000000000001\r\n"
        assert conn.call_raw("ZSCORE", "z", "c") == b"$1\r\n0\r\n"
        assert conn.call_raw("ZINCRBY", "z", "1", "b") == b"$5\r\n1e+20\r\n"
    # ZSCAN sends scores as strings under both protocols; a small set's
    # integral scores print as integers (Redis's listpack form).
    reply = conn.call("ZSCAN", "z", "0")
    scanned = dict(zip(reply[1][::2], reply[1][1::2]))
    assert scanned[b"d"] == b"123456789012345680"
    assert scanned[b"a"] == b"0.10000000000000001"
    assert conn.call("ZSCORE", "z", "d") in (b"1.2345678901234568e+17", 1.2345678901234568e17)


def test_zincrby(r: redis.Redis) -> None:
    assert r.zincrby("z", 2.5, "a") == 2.5
    assert r.zincrby("z", -5, "a") == -2.5
    assert r.zcard("z") == 1
    assert error_of(r, "ZINCRBY", "z", "x", "a") == NOT_FLOAT
    assert r.zscore("z", "a") == -2.5


# -- removal and empty sets ------------------------------------------------------


def test_zrem_deletes_emptied_set(r: redis.Redis) -> None:
    r.zadd("z", {"a": 1, "b": 2})
    assert r.execute_command("ZREM", "z", "a", "a", "missing") == 1
    assert r.exists("z") == 1
    assert r.execute_command("ZREM", "z", "b") == 1
    assert r.exists("z") == 0
    assert r.execute_command("ZREM", "z", "b") == 0
    assert r.zcard("z") == 0


@pytest.mark.parametrize(
    "command",
    [
        ("ZREMRANGEBYRANK", "z", 0, -1),
        ("ZREMRANGEBYSCORE", "z", "-inf", "+inf"),
        ("ZREMRANGEBYLEX", "z", "-", "+"),
        ("ZPOPMIN", "z", 10),
        ("ZPOPMAX", "z", 10),
        ("ZMPOP", 1, "z", "MIN", "COUNT", 10),
    ],
)
def test_emptying_commands_delete_the_key(r: redis.Redis, command: tuple[object, ...]) -> None:
    r.zadd("z", {"a": 0, "b": 0, "c": 0})
    r.execute_command(*command)
    assert r.exists("z") == 0
    assert r.execute_command("ZRANGE", "z", 0, -1) == []
    # A new set under the same name starts empty.
    r.zadd("z", {"d": 1})
    assert members(r, "z") == [b"d"]


def test_expired_set_does_not_come_back(r: redis.Redis) -> None:
    r.zadd("z", {"old1": 1, "old2": 2})
    r.pexpire("z", 50)
    wait_until(lambda: r.exists("z") == 0, message="zset expired")
    assert r.zcard("z") == 0
    r.zadd("z", {"new": 3})
    assert with_scores(r, "z") == [(b"new", 3.0)]
    assert r.execute_command("ZRANGEBYSCORE", "z", "-inf", "+inf") == [b"new"]


def test_zadd_keeps_ttl(r: redis.Redis) -> None:
    r.zadd("z", {"a": 1})
    r.expire("z", 100)
    r.zadd("z", {"b": 2})
    r.zrem("z", "a")
    assert 0 < r.ttl("z") <= 100


# -- reads and ranges ------------------------------------------------------------


def test_point_reads(r: redis.Redis) -> None:
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert r.execute_command("ZMSCORE", "z", "a", "x", "c") == [1.0, None, 3.0]
    assert r.execute_command("ZMSCORE", "nokey", "a") == [None]
    assert r.zrank("z", "c") == 2
    assert r.zrevrank("z", "c") == 0
    assert r.zrank("z", "x") is None
    assert r.zscore("nokey", "a") is None


def test_ranks_on_a_large_set_match_a_model(r: redis.Redis) -> None:
    rng = random.Random(7)
    model = {f"m{i:04d}".encode(): float(rng.randrange(50)) for i in range(1500)}
    pipe = r.pipeline(transaction=False)
    items = list(model.items())
    for i in range(0, len(items), 500):
        pipe.zadd("big", dict(items[i : i + 500]))
    pipe.execute()
    ordered = sorted_model(model)
    rank = {m: i for i, (m, _) in enumerate(ordered)}
    for member in rng.sample(sorted(model), 40) + [ordered[0][0], ordered[-1][0]]:
        assert r.zrank("big", member) == rank[member]
        assert r.zrevrank("big", member) == len(model) - 1 - rank[member]
    for start, stop in [(0, 9), (700, 710), (-10, -1), (1490, 2000), (-2000, 3)]:
        got = scored(r.execute_command("ZRANGE", "big", start, stop, "WITHSCORES"))
        s = start if start >= 0 else max(0, len(model) + start)
        e = stop if stop >= 0 else len(model) + stop
        assert got == ordered[s : e + 1]
    rev = r.execute_command("ZRANGE", "big", 5, 9, "REV")
    assert rev == [m for m, _ in ordered[::-1][5:10]]
    band = r.execute_command("ZRANGEBYSCORE", "big", "(10", 12, "LIMIT", 3, 20)
    assert band == [m for m, s in ordered if 10 < s <= 12][3:23]
    assert r.zcount("big", 10, "(20") == sum(1 for s in model.values() if 10 <= s < 20)


def test_score_ranges_and_limits(r: redis.Redis) -> None:
    r.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert r.execute_command("ZRANGEBYSCORE", "z", "(1", 4) == [b"b", b"c", b"d"]
    assert r.execute_command("ZREVRANGEBYSCORE", "z", 4, "(1") == [b"d", b"c", b"b"]
    assert r.execute_command("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", 1, 2) == [
        b"b",
        b"c",
    ]
    assert r.execute_command("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", 0, 1) == [b"e"]
    assert r.execute_command("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", -1, 2) == []
    assert r.execute_command("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 3, -1) == [b"d", b"e"]
    got = scored(r.execute_command("ZRANGEBYSCORE", "z", 2, 3, "WITHSCORES"))
    assert got == [(b"b", 2.0), (b"c", 3.0)]


def test_lex_ranges(r: redis.Redis) -> None:
    words = ["alpha", "bar", "cool", "down", "elephant", "foo", "great", "hill", "omega"]
    r.zadd("z", dict.fromkeys(words, 0))
    assert r.execute_command("ZRANGEBYLEX", "z", "[bar", "(down") == [b"bar", b"cool"]
    assert r.execute_command("ZREVRANGEBYLEX", "z", "(down", "[bar") == [b"cool", b"bar"]
    assert r.execute_command("ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", 7, 5) == [b"hill", b"omega"]
    assert r.execute_command("ZLEXCOUNT", "z", "(alpha", "[foo") == 5
    assert r.execute_command("ZREMRANGEBYLEX", "z", "[a", "(c") == 2
    assert members(r, "z") == [w.encode() for w in words[2:]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("ZRANGE", "z", 0, -1, "LIMIT", 0, 1),
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            ("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"),
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            ("ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"),
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (("ZRANGE", "z", 0, -1, "BYSCORE", "BYLEX"), SYNTAX),
        (("ZRANGE", "z", 0, -1, "LIMIT", 0), SYNTAX),
        (("ZRANGE", "z", "a", "b"), NOT_INTEGER),
        (("ZRANGE", "z", "x", 1, "BYSCORE"), RANGE_NOT_FLOAT),
        (("ZCOUNT", "z", "(nan", 1), RANGE_NOT_FLOAT),
        (("ZRANGEBYLEX", "z", "a", "+"), LEX_INVALID),
        (("ZLEXCOUNT", "z", "-", "+x"), LEX_INVALID),
        (("ZRANGESTORE", "d", "z", 0, -1, "WITHSCORES"), SYNTAX),
        (("ZREMRANGEBYRANK", "z", 0, "x"), NOT_INTEGER),
    ],
)
def test_range_errors(r: redis.Redis, args: tuple[object, ...], message: str) -> None:
    r.zadd("z", {"a": 1})
    assert error_of(r, *args) == message


def test_withscores_reply_shapes(r: redis.Redis, raw: RawFactory, protocol: int) -> None:
    conn = raw()
    if protocol == 3:
        conn.call("HELLO", 3)
    conn.call("ZADD", "z", 1, "a", "2.5", "b")
    if protocol == 3:
        pairs = b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
        assert conn.call_raw("ZRANGE", "z", 0, -1, "WITHSCORES") == pairs
        assert conn.call_raw("ZUNION", 1, "z", "WITHSCORES") == pairs
        assert conn.call_raw("ZPOPMIN", "z") == b"*2\r\n$1\r\na\r\n,1\r\n"
        assert conn.call_raw("ZPOPMIN", "z", 1) == b"*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    else:
        flat = b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
        assert conn.call_raw("ZRANGE", "z", 0, -1, "WITHSCORES") == flat
        assert conn.call_raw("ZUNION", 1, "z", "WITHSCORES") == flat
        assert conn.call_raw("ZPOPMIN", "z") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        assert conn.call_raw("ZPOPMIN", "z", 1) == b"*2\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
    conn.call("ZADD", "z", 1, "a")
    score = b",1\r\n" if protocol == 3 else b"$1\r\n1\r\n"
    assert conn.call_raw("ZMPOP", 1, "z", "MIN") == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n" + score
    assert conn.call_raw("ZMPOP", 1, "z", "MIN") == (b"_\r\n" if protocol == 3 else b"*-1\r\n")


# -- stores and set operations ---------------------------------------------------


def test_zrangestore(r: redis.Redis) -> None:
    r.zadd("src", {"a": 1, "b": 2, "c": 3})
    r.set("dst", "a string")
    assert r.execute_command("ZRANGESTORE", "dst", "src", 1, -1) == 2
    assert with_scores(r, "dst") == [(b"b", 2.0), (b"c", 3.0)]
    assert r.execute_command("ZRANGESTORE", "dst", "src", 5, 10) == 0
    assert r.exists("dst") == 0
    assert r.execute_command("ZRANGESTORE", "src", "src", "[b", "+", "BYLEX") == 2
    assert members(r, "src") == [b"b", b"c"]


def test_union_inter_diff(r: redis.Redis) -> None:
    r.zadd("z1", {"a": 1, "b": 2, "c": 3})
    r.zadd("z2", {"b": 10, "c": 20, "d": 30})
    union = scored(r.execute_command("ZUNION", 2, "z1", "z2", "WEIGHTS", 2, 1, "WITHSCORES"))
    assert union == [(b"a", 2.0), (b"b", 14.0), (b"c", 26.0), (b"d", 30.0)]
    inter = scored(r.execute_command("ZINTER", 2, "z1", "z2", "AGGREGATE", "MAX", "WITHSCORES"))
    assert inter == [(b"b", 10.0), (b"c", 20.0)]
    assert r.execute_command("ZDIFF", 2, "z1", "z2") == [b"a"]
    assert r.execute_command("ZINTERCARD", 2, "z1", "z2") == 2
    assert r.execute_command("ZINTERCARD", 2, "z1", "z2", "LIMIT", 1) == 1
    assert r.execute_command("ZUNIONSTORE", "z1", 2, "z1", "z2", "AGGREGATE", "MIN") == 4
    assert with_scores(r, "z1") == [(b"a", 1.0), (b"b", 2.0), (b"c", 3.0), (b"d", 30.0)]
    r.set("out", "string")
    assert r.execute_command("ZINTERSTORE", "out", 2, "z2", "nokey") == 0
    assert r.exists("out") == 0
    assert r.execute_command("ZDIFFSTORE", "out", 2, "z2", "z1") == 0
    assert r.exists("out") == 0
    assert error_of(r, "ZUNION", 0, "z1") == "at least 1 input key is needed for 'zunion' command"
    assert error_of(r, "ZUNION", 1, "z1", "WEIGHTS", "x") == "weight value is not a float"
    assert error_of(r, "ZINTERCARD", 1, "z1", "LIMIT", -1) == "LIMIT can't be negative"


def test_plain_sets_count_as_score_one(r: redis.Redis) -> None:
    try:
        r.sadd("s", "a", "b")
    except redis.ResponseError as exc:
        if "unknown command" in str(exc):
            pytest.skip("this server has no SADD yet")
        raise
    r.zadd("z", {"b": 5, "c": 7})
    assert scored(r.execute_command("ZUNION", 2, "s", "z", "WITHSCORES")) == [
        (b"a", 1.0),
        (b"b", 6.0),
        (b"c", 7.0),
    ]
    assert scored(r.execute_command("ZINTER", 2, "z", "s", "WITHSCORES")) == [(b"b", 6.0)]
    assert r.execute_command("ZDIFF", 2, "s", "z") == [b"a"]
    assert r.execute_command("ZINTERCARD", 2, "s", "z") == 1
    assert r.execute_command("ZUNIONSTORE", "out", 1, "s", "WEIGHTS", 3) == 2
    assert with_scores(r, "out") == [(b"a", 3.0), (b"b", 3.0)]


# -- random members and scanning -------------------------------------------------


def test_zrandmember(r: redis.Redis) -> None:
    model = {f"m{i}".encode(): float(i) for i in range(20)}
    r.zadd("z", model)
    one = r.execute_command("ZRANDMEMBER", "z")
    assert one in model
    distinct = r.execute_command("ZRANDMEMBER", "z", 5)
    assert len(distinct) == 5 and len(set(distinct)) == 5 and set(distinct) <= set(model)
    repeated = r.execute_command("ZRANDMEMBER", "z", -50)
    assert len(repeated) == 50 and set(repeated) <= set(model)
    pairs = scored(r.execute_command("ZRANDMEMBER", "z", -7, "WITHSCORES"))
    assert len(pairs) == 7 and all(model[m] == s for m, s in pairs)
    whole = scored(r.execute_command("ZRANDMEMBER", "z", 100, "WITHSCORES"))
    assert sorted(whole) == sorted(model.items())
    assert r.execute_command("ZRANDMEMBER", "nokey") is None
    assert r.execute_command("ZRANDMEMBER", "nokey", 3) == []
    assert error_of(r, "ZRANDMEMBER", "z", 1, "WITHSCORES", "x") == SYNTAX


def test_zscan_walks_a_large_set(r: redis.Redis) -> None:
    model = {f"member:{i}".encode(): i / 4 for i in range(1000)}
    pipe = r.pipeline(transaction=False)
    items = list(model.items())
    for i in range(0, len(items), 250):
        pipe.zadd("z", dict(items[i : i + 250]))
    pipe.execute()
    seen: dict[bytes, float] = {}
    cursor = 0
    for _ in range(1000):
        cursor, batch = r.execute_command("ZSCAN", "z", cursor, "COUNT", 50)
        seen.update(scan_pairs(batch))
        if int(cursor) == 0:
            break
    else:
        pytest.fail("ZSCAN did not finish")
    assert seen == model
    matched: set[bytes] = set()
    cursor = 0
    for _ in range(1000):
        cursor, batch = r.execute_command("ZSCAN", "z", cursor, "MATCH", "member:1?", "COUNT", 100)
        matched.update(m for m, _ in scan_pairs(batch))
        if int(cursor) == 0:
            break
    assert matched == {f"member:{i}".encode() for i in range(10, 20)}


# -- types -----------------------------------------------------------------------

WRONGTYPE_COMMANDS: list[tuple[object, ...]] = [
    ("ZADD", "k", 1, "a"),
    ("ZINCRBY", "k", 1, "a"),
    ("ZREM", "k", "a"),
    ("ZCARD", "k"),
    ("ZSCORE", "k", "a"),
    ("ZMSCORE", "k", "a"),
    ("ZRANK", "k", "a"),
    ("ZREVRANK", "k", "a"),
    ("ZCOUNT", "k", 0, 1),
    ("ZLEXCOUNT", "k", "-", "+"),
    ("ZRANGE", "k", 0, -1),
    ("ZRANGEBYSCORE", "k", 0, 1),
    ("ZREVRANGEBYSCORE", "k", 1, 0),
    ("ZRANGEBYLEX", "k", "-", "+"),
    ("ZREVRANGEBYLEX", "k", "+", "-"),
    ("ZREVRANGE", "k", 0, -1),
    ("ZRANGESTORE", "d", "k", 0, -1),
    ("ZREMRANGEBYRANK", "k", 0, -1),
    ("ZREMRANGEBYSCORE", "k", 0, 1),
    ("ZREMRANGEBYLEX", "k", "-", "+"),
    ("ZPOPMIN", "k"),
    ("ZPOPMAX", "k", 2),
    ("BZPOPMIN", "k", 0),
    ("BZPOPMAX", "nokey", "k", 0),
    ("ZMPOP", 1, "k", "MIN"),
    ("BZMPOP", 0, 1, "k", "MAX"),
    ("ZRANDMEMBER", "k"),
    ("ZRANDMEMBER", "k", 2),
    ("ZUNION", 1, "k"),
    ("ZINTER", 1, "k"),
    ("ZDIFF", 1, "k"),
    ("ZINTERCARD", 1, "k"),
    ("ZUNIONSTORE", "d", 1, "k"),
    ("ZINTERSTORE", "d", 1, "k"),
    ("ZDIFFSTORE", "d", 1, "k"),
    ("ZSCAN", "k", 0),
]


@pytest.mark.parametrize("command", WRONGTYPE_COMMANDS, ids=lambda c: " ".join(map(str, c)))
def test_wrongtype_changes_nothing(r: redis.Redis, command: tuple[object, ...]) -> None:
    r.set("k", "value")
    r.set("d", "dest")
    assert error_of(r, *command) == WRONGTYPE
    assert r.get("k") == b"value"
    assert r.get("d") == b"dest"


def test_other_commands_refuse_a_zset(r: redis.Redis) -> None:
    r.zadd("z", {"a": 1})
    assert error_of(r, "GET", "z") == WRONGTYPE
    assert error_of(r, "HSET", "z", "f", "v") == WRONGTYPE
    assert members(r, "z") == [b"a"]


# -- blocking pops ---------------------------------------------------------------


def require_blocking(client: redis.Redis) -> None:
    """Skip when the server answers a blocking pop without waiting."""
    try:
        client.execute_command("BZPOPMIN", "blocking:probe", "0.01")
    except redis.ResponseError as exc:
        if "cannot block" in str(exc):
            pytest.skip("this server cannot block connections yet")
        raise


def test_bzpopmin_returns_at_once_when_data_is_there(r: redis.Redis) -> None:
    r.zadd("z2", {"x": 5, "y": 6})
    reply = r.execute_command("BZPOPMIN", "nokey", "z2", 0)
    assert [reply[0], reply[1], float(reply[2])] == [b"z2", b"x", 5.0]
    reply = r.execute_command("BZPOPMAX", "z2", 0)
    assert [reply[0], reply[1], float(reply[2])] == [b"z2", b"y", 6.0]
    assert r.exists("z2") == 0
    r.zadd("z3", {"a": 1, "b": 2, "c": 3})
    reply = r.execute_command("BZMPOP", 0, 1, "z3", "MAX", "COUNT", 2)
    assert reply[0] == b"z3" and scored(reply[1]) == [(b"c", 3.0), (b"b", 2.0)]


def test_blocking_pops_time_out_with_nil(r: redis.Redis) -> None:
    require_blocking(r)
    assert r.execute_command("BZPOPMIN", "empty1", "empty2", "0.05") is None
    assert r.execute_command("BZMPOP", "0.05", 1, "empty1", "MIN") is None


@pytest.mark.parametrize("command", ["BZPOPMIN", "BZMPOP"])
def test_blocked_pop_wakes_on_zadd(r: redis.Redis, make_client: ClientFactory, command: str) -> None:
    require_blocking(r)
    waiter = make_client()
    started = threading.Event()

    def block() -> Any:
        started.set()
        if command == "BZPOPMIN":
            return waiter.execute_command("BZPOPMIN", "q1", "q2", 5)
        return waiter.execute_command("BZMPOP", 5, 2, "q1", "q2", "MIN", "COUNT", 5)

    def push() -> None:
        started.wait(BARRIER_TIMEOUT)
        wait_until(
            lambda: any(c.get("cmd") in ("bzpopmin", "bzmpop") for c in r.client_list()),
            message="client blocked",
        )
        r.zadd("q2", {"m": 7, "n": 8})

    result, _ = run_threads([block, push])
    if command == "BZPOPMIN":
        assert [result[0], result[1], float(result[2])] == [b"q2", b"m", 7.0]
        assert members(r, "q2") == [b"n"]
    else:
        assert result[0] == b"q2" and scored(result[1]) == [(b"m", 7.0), (b"n", 8.0)]
        assert r.exists("q2") == 0


# -- concurrency -----------------------------------------------------------------


def test_concurrent_zincrby_sums_exactly(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, rounds = 8, 200
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(client: redis.Redis) -> None:
        start.wait()
        for _ in range(rounds):
            client.zincrby("counter", 1, "hits")
            client.zincrby("counter", 0.5, "halves")

    run_threads([lambda c=c: worker(c) for c in clients])
    assert r.zscore("counter", "hits") == threads * rounds
    assert r.zscore("counter", "halves") == threads * rounds * 0.5
    assert r.zcard("counter") == 2


def test_concurrent_zadd_of_distinct_members(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, per_thread = 8, 150
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int, client: redis.Redis) -> int:
        start.wait()
        added = 0
        for i in range(per_thread):
            # Every member is also added once by a neighbour: only one counts.
            added += client.zadd("z", {f"{index}:{i}": i, f"{(index + 1) % threads}:{i}": i})
        return added

    results = run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(clients)])
    assert sum(results) == threads * per_thread
    assert r.zcard("z") == threads * per_thread
    assert r.zcount("z", "-inf", "+inf") == threads * per_thread
    assert len(r.execute_command("ZRANGE", "z", 0, -1)) == threads * per_thread


def test_concurrent_zpopmin_hands_out_each_member_once(r: redis.Redis, make_client: ClientFactory) -> None:
    total, threads = 1200, 8
    pipe = r.pipeline(transaction=False)
    for i in range(0, total, 300):
        pipe.zadd("jobs", {f"job{j}": j for j in range(i, i + 300)})
    pipe.execute()
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(client: redis.Redis) -> list[bytes]:
        start.wait()
        taken: list[bytes] = []
        for _ in range(total):  # bounded: at most every member
            reply = client.execute_command("ZPOPMIN", "jobs", 3)
            got = [m for m, _ in scored(reply)]
            if not got:
                break
            taken.extend(got)
        return taken

    results = run_threads([lambda c=c: worker(c) for c in clients])
    counts = Counter(m for taken in results for m in taken)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert r.exists("jobs") == 0


def test_readers_never_see_a_half_written_zadd(r: redis.Redis, make_client: ClientFactory) -> None:
    """A writer replaces batches of members; readers compare ZCARD with the
    members ZRANGE lists and with ZCOUNT over all scores, in one call each."""
    writer_client, readers = make_client(), [make_client() for _ in range(3)]
    done = threading.Event()
    batch = {f"m{i}": i for i in range(20)}
    r.zadd("z", batch)

    def writer() -> None:
        try:
            for round_ in range(150):
                writer_client.zadd("z", {m: s + round_ for m, s in batch.items()})
                writer_client.zrem("z", *list(batch)[:5])
                writer_client.zadd("z", dict.fromkeys(list(batch)[:5], 0))
        finally:
            done.set()

    def reader(client: redis.Redis) -> int:
        checks = 0
        while not done.is_set() and checks < 3000:
            listed = client.execute_command("ZRANGE", "z", 0, -1, "WITHSCORES")
            pairs = scored(listed)
            assert len(pairs) in (15, 20)
            assert pairs == sorted(pairs, key=lambda p: (p[1], p[0]))
            checks += 1
        return checks

    run_threads([writer, *[lambda c=c: reader(c) for c in readers]])
    assert r.zcard("z") == 20
