"""The WRONGTYPE matrix.

First part: every string command, in all its option forms, against a hash
key. Second part: every command family against a key of every other type.
A typed command must refuse a key of another type with the exact WRONGTYPE
error and leave it untouched (type, content, TTL); commands that replace,
query or delete keys regardless of type (SET, MSET, DEL, EXPIRE, TYPE,
RENAME, COPY, ...) must work on every type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

#: Also run through the leader and a follower of a three-node cluster (conftest).
pytestmark = pytest.mark.cluster_targets

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
HASH = "h"
FIELDS = {"f": b"v", "g": b"w"}
HASH_TTL = 1000


@pytest.fixture
def hr(r: redis.Redis) -> redis.Redis:
    """The ``r`` client with a hash ``h`` (two fields, TTL 1000 s) in place."""
    r.hset(HASH, mapping=FIELDS)
    r.expire(HASH, HASH_TTL)
    return r


def assert_hash_untouched(r: redis.Redis) -> None:
    """The hash still has its type, fields and TTL."""
    assert r.type(HASH) == b"hash"
    assert {f: r.hget(HASH, f) for f in FIELDS} == FIELDS
    assert HASH_TTL - 10 <= r.ttl(HASH) <= HASH_TTL


def assert_became_string(r: redis.Redis, value: bytes, ttl: int | None = -1) -> None:
    """The hash was replaced by a string (with ``ttl``, or any positive TTL if None)."""
    assert r.type(HASH) == b"string"
    assert r.get(HASH) == value
    if ttl is None:
        assert r.ttl(HASH) > 0
    else:
        assert r.ttl(HASH) == ttl


# -- commands that must raise WRONGTYPE ----------------------------------------

WRONGTYPE_COMMANDS = [
    pytest.param(("GET", HASH), id="GET"),
    pytest.param(("SET", HASH, "x", "GET"), id="SET-GET"),
    pytest.param(("SET", HASH, "x", "NX", "GET"), id="SET-NX-GET"),
    pytest.param(("SET", HASH, "x", "XX", "GET"), id="SET-XX-GET"),
    pytest.param(("SET", HASH, "x", "EX", 100, "GET"), id="SET-EX-GET"),
    pytest.param(("GETSET", HASH, "x"), id="GETSET"),
    pytest.param(("GETDEL", HASH), id="GETDEL"),
    pytest.param(("GETEX", HASH), id="GETEX"),
    pytest.param(("GETEX", HASH, "PERSIST"), id="GETEX-PERSIST"),
    pytest.param(("GETEX", HASH, "EX", 10), id="GETEX-EX"),
    pytest.param(("GETEX", HASH, "PXAT", 1), id="GETEX-PXAT-past"),
    pytest.param(("APPEND", HASH, "x"), id="APPEND"),
    pytest.param(("STRLEN", HASH), id="STRLEN"),
    pytest.param(("GETRANGE", HASH, 0, -1), id="GETRANGE"),
    pytest.param(("SETRANGE", HASH, 0, "x"), id="SETRANGE"),
    pytest.param(("SETRANGE", HASH, 0, ""), id="SETRANGE-empty-value"),
    pytest.param(("SETRANGE", HASH, 536870912, "x"), id="SETRANGE-huge-offset"),
    pytest.param(("INCR", HASH), id="INCR"),
    pytest.param(("DECR", HASH), id="DECR"),
    pytest.param(("INCRBY", HASH, 1), id="INCRBY"),
    pytest.param(("DECRBY", HASH, 1), id="DECRBY"),
    pytest.param(("INCRBYFLOAT", HASH, "1.5"), id="INCRBYFLOAT"),
]


@pytest.mark.parametrize("args", WRONGTYPE_COMMANDS)
def test_string_command_on_hash_raises_wrongtype(hr: redis.Redis, args: tuple[object, ...]) -> None:
    """The exact WRONGTYPE error, and the hash is unchanged afterwards."""
    with pytest.raises(redis.ResponseError) as exc:
        hr.execute_command(*args)
    assert str(exc.value) == WRONGTYPE
    assert_hash_untouched(hr)


def test_wrongtype_is_a_plain_error_reply(hr: redis.Redis, raw: Callable) -> None:
    """On the wire the error code is WRONGTYPE itself, not ERR."""
    conn = raw()
    assert conn.call_raw("GET", HASH) == b"-" + WRONGTYPE.encode() + b"\r\n"
    assert conn.call_raw("PING") == b"+PONG\r\n"


# -- which check comes first ---------------------------------------------------

PRECEDENCE = [
    pytest.param(("INCRBY", HASH, "abc"), "value is not an integer or out of range", id="INCRBY-bad-number"),
    pytest.param(("DECRBY", HASH, "abc"), "value is not an integer or out of range", id="DECRBY-bad-number"),
    pytest.param(("DECRBY", HASH, -(2**63)), "decrement would overflow", id="DECRBY-llong-min"),
    pytest.param(("SETRANGE", HASH, -1, "x"), "offset is out of range", id="SETRANGE-negative-offset"),
    pytest.param(
        ("SETRANGE", HASH, "abc", "x"),
        "value is not an integer or out of range",
        id="SETRANGE-bad-offset",
    ),
    pytest.param(
        ("GETRANGE", HASH, "a", "b"),
        "value is not an integer or out of range",
        id="GETRANGE-bad-range",
    ),
    pytest.param(
        ("SET", HASH, "x", "EX", 0, "GET"),
        "invalid expire time in 'set' command",
        id="SET-GET-bad-expire",
    ),
    pytest.param(("SET", HASH, "x", "GET", "FOO"), "syntax error", id="SET-GET-syntax"),
    pytest.param(("GETEX", HASH, "FOO"), "syntax error", id="GETEX-syntax"),
    pytest.param(("INCRBYFLOAT", HASH, "abc"), WRONGTYPE, id="INCRBYFLOAT-type-first"),
    pytest.param(("GETEX", HASH, "EX", 0), WRONGTYPE, id="GETEX-type-before-expire"),
    pytest.param(("GETEX", HASH, "EX", "abc"), WRONGTYPE, id="GETEX-type-before-number"),
]


@pytest.mark.parametrize(("args", "message"), PRECEDENCE)
def test_error_precedence_on_hash(hr: redis.Redis, args: tuple[object, ...], message: str) -> None:
    """Argument errors vs. type errors: Redis's order of checks, exactly."""
    with pytest.raises(redis.ResponseError) as exc:
        hr.execute_command(*args)
    assert str(exc.value) == message
    assert_hash_untouched(hr)


# -- commands that must not raise on a hash -----------------------------------


def check_set(r: redis.Redis) -> None:
    """SET replaces the hash with a string and clears its TTL."""
    assert r.set(HASH, "x") is True
    assert_became_string(r, b"x")


def check_set_xx(r: redis.Redis) -> None:
    """SET XX: the key exists (as a hash), so it is replaced."""
    assert r.set(HASH, "x", xx=True) is True
    assert_became_string(r, b"x")


def check_set_nx(r: redis.Redis) -> None:
    """SET NX: the key exists, nothing happens, no error."""
    assert r.set(HASH, "x", nx=True) is None
    assert_hash_untouched(r)


def check_setex(r: redis.Redis) -> None:
    """SETEX replaces the hash and sets its own TTL."""
    assert r.execute_command("SETEX", HASH, 50, "x") is True
    assert_became_string(r, b"x", ttl=None)
    assert r.ttl(HASH) <= 50


def check_psetex(r: redis.Redis) -> None:
    """PSETEX replaces the hash and sets its own TTL."""
    assert r.psetex(HASH, 50_000, "x") is True
    assert_became_string(r, b"x", ttl=None)
    assert r.ttl(HASH) <= 50


def check_setnx(r: redis.Redis) -> None:
    """SETNX sees an existing key: 0."""
    assert r.setnx(HASH, "x") is False
    assert_hash_untouched(r)


def check_mset(r: redis.Redis) -> None:
    """MSET replaces the hash."""
    assert r.mset({HASH: "x", "other": "y"}) is True
    assert_became_string(r, b"x")
    assert r.get("other") == b"y"


def check_msetnx(r: redis.Redis) -> None:
    """MSETNX refuses as a whole because the hash exists."""
    assert r.msetnx({"other": "y", HASH: "x"}) is False
    assert_hash_untouched(r)
    assert r.exists("other") == 0


def check_mget(r: redis.Redis) -> None:
    """MGET reads a hash as nil."""
    r.set("s", "v")
    assert r.mget(HASH, "s", "missing") == [None, b"v", None]
    assert_hash_untouched(r)


def check_del(r: redis.Redis) -> None:
    """DEL deletes any type."""
    assert r.delete(HASH) == 1
    assert r.exists(HASH) == 0


def check_unlink(r: redis.Redis) -> None:
    """UNLINK deletes any type."""
    assert r.unlink(HASH) == 1
    assert r.exists(HASH) == 0


def check_exists(r: redis.Redis) -> None:
    """EXISTS counts a hash."""
    assert r.exists(HASH, HASH) == 2
    assert_hash_untouched(r)


def check_type(r: redis.Redis) -> None:
    """TYPE names it."""
    assert r.type(HASH) == b"hash"


def check_expire(r: redis.Redis) -> None:
    """EXPIRE works on any type."""
    assert r.expire(HASH, 100) is True
    assert 95 <= r.ttl(HASH) <= 100
    assert r.hget(HASH, "f") == b"v"


def check_pexpire(r: redis.Redis) -> None:
    """PEXPIRE works on any type."""
    assert r.pexpire(HASH, 100_000) is True
    assert 95_000 < r.pttl(HASH) <= 100_000


def check_ttl(r: redis.Redis) -> None:
    """TTL/PTTL/EXPIRETIME read any type's deadline."""
    assert HASH_TTL - 10 <= r.ttl(HASH) <= HASH_TTL
    assert (HASH_TTL - 10) * 1000 <= r.pttl(HASH) <= HASH_TTL * 1000
    assert r.expiretime(HASH) > 0


def check_persist(r: redis.Redis) -> None:
    """PERSIST removes the hash's TTL."""
    assert r.persist(HASH) is True
    assert r.ttl(HASH) == -1
    assert r.hget(HASH, "g") == b"w"


def check_rename(r: redis.Redis) -> None:
    """RENAME moves the hash, fields and TTL."""
    assert r.rename(HASH, "h2") is True
    assert r.exists(HASH) == 0
    assert r.type("h2") == b"hash"
    assert r.hget("h2", "f") == b"v"
    assert r.ttl("h2") > 0


def check_renamenx(r: redis.Redis) -> None:
    """RENAMENX moves the hash to a free name."""
    assert r.renamenx(HASH, "h2") is True
    assert r.hget("h2", "g") == b"w"


def check_rename_string_over_hash(r: redis.Redis) -> None:
    """RENAME onto a hash replaces it with the source string."""
    r.set("s", "v")
    assert r.rename("s", HASH) is True
    assert_became_string(r, b"v")


def check_keys_and_scan(r: redis.Redis) -> None:
    """Listing commands include the hash."""
    assert r.keys("*") == [HASH.encode()]
    assert list(r.scan_iter(count=100)) == [HASH.encode()]


NON_RAISING: dict[str, Callable[[redis.Redis], None]] = {
    "SET": check_set,
    "SET-XX": check_set_xx,
    "SET-NX": check_set_nx,
    "SETEX": check_setex,
    "PSETEX": check_psetex,
    "SETNX": check_setnx,
    "MSET": check_mset,
    "MSETNX": check_msetnx,
    "MGET": check_mget,
    "DEL": check_del,
    "UNLINK": check_unlink,
    "EXISTS": check_exists,
    "TYPE": check_type,
    "EXPIRE": check_expire,
    "PEXPIRE": check_pexpire,
    "TTL": check_ttl,
    "PERSIST": check_persist,
    "RENAME": check_rename,
    "RENAMENX": check_renamenx,
    "RENAME-onto-hash": check_rename_string_over_hash,
    "KEYS-SCAN": check_keys_and_scan,
}


@pytest.mark.parametrize("check", list(NON_RAISING.values()), ids=list(NON_RAISING))
def test_type_agnostic_command_on_hash(hr: redis.Redis, check: Callable[[redis.Redis], None]) -> None:
    """Commands that do not read a string value work on a hash key."""
    check(hr)


# -- the full matrix: every family against every other type -------------------

K = "victim"
TTL = 1000

MAKERS: dict[str, Callable[[redis.Redis], Any]] = {
    "string": lambda r: r.set(K, "12"),
    "hash": lambda r: r.hset(K, mapping={"f": "1", "g": "2"}),
    "list": lambda r: r.rpush(K, "a", "b", "c"),
    "set": lambda r: r.sadd(K, "a", "b", "c"),
    "zset": lambda r: r.zadd(K, {"a": 1, "b": 2}),
}


def snapshot(r: redis.Redis) -> tuple[Any, ...]:
    """Everything observable about the key, whatever its type."""
    kind = r.type(K)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    content: Any = {
        "string": lambda: r.get(K),
        "hash": lambda: sorted(r.hgetall(K).items()),
        "list": lambda: r.lrange(K, 0, -1),
        "set": lambda: sorted(r.smembers(K)),
        "zset": lambda: r.zrange(K, 0, -1, withscores=True),
    }[kind]()
    return kind, content, r.ttl(K)


# Commands per family; K is the key of the wrong type, "other" a missing key.
FAMILIES: dict[str, list[tuple[Any, ...]]] = {
    "string": [
        ("GET", K),
        ("SET", K, "x", "GET"),
        ("GETSET", K, "x"),
        ("GETDEL", K),
        ("GETEX", K, "PERSIST"),
        ("APPEND", K, "x"),
        ("STRLEN", K),
        ("GETRANGE", K, 0, -1),
        ("SETRANGE", K, 0, "x"),
        ("INCR", K),
        ("DECRBY", K, 2),
        ("INCRBYFLOAT", K, "1.5"),
        ("SETBIT", K, 1, 1),
        ("GETBIT", K, 1),
        ("BITCOUNT", K),
        ("BITPOS", K, 1),
    ],
    "hash": [
        ("HSET", K, "f", "v"),
        ("HSETNX", K, "f", "v"),
        ("HGET", K, "f"),
        ("HMGET", K, "f"),
        ("HMSET", K, "f", "v"),
        ("HDEL", K, "f"),
        ("HLEN", K),
        ("HSTRLEN", K, "f"),
        ("HEXISTS", K, "f"),
        ("HKEYS", K),
        ("HVALS", K),
        ("HGETALL", K),
        ("HINCRBY", K, "f", 1),
        ("HINCRBYFLOAT", K, "f", 1),
        ("HRANDFIELD", K),
        ("HSCAN", K, 0),
    ],
    "list": [
        ("LPUSH", K, "x"),
        ("RPUSH", K, "x"),
        ("LPUSHX", K, "x"),
        ("RPUSHX", K, "x"),
        ("LPOP", K),
        ("RPOP", K, 2),
        ("LLEN", K),
        ("LRANGE", K, 0, -1),
        ("LINDEX", K, 0),
        ("LSET", K, 0, "x"),
        ("LINSERT", K, "BEFORE", "a", "x"),
        ("LREM", K, 0, "a"),
        ("LTRIM", K, 0, 1),
        ("LPOS", K, "a"),
        ("LMOVE", K, "other", "LEFT", "RIGHT"),
        ("RPOPLPUSH", K, "other"),
        ("LMPOP", 1, K, "LEFT"),
        ("BLPOP", K, 0.01),
        ("BRPOP", K, 0.01),
        ("BLMOVE", K, "other", "LEFT", "LEFT", 0.01),
    ],
    "set": [
        ("SADD", K, "x"),
        ("SREM", K, "x"),
        ("SCARD", K),
        ("SISMEMBER", K, "x"),
        ("SMISMEMBER", K, "x"),
        ("SMEMBERS", K),
        ("SPOP", K),
        ("SRANDMEMBER", K),
        ("SMOVE", K, "other", "x"),
        ("SINTER", K),
        ("SUNION", K),
        ("SDIFF", K),
        ("SINTERSTORE", "other", K),
        ("SUNIONSTORE", "other", K),
        ("SDIFFSTORE", "other", K),
        ("SINTERCARD", 1, K),
        ("SSCAN", K, 0),
    ],
    "zset": [
        ("ZADD", K, 1, "x"),
        ("ZINCRBY", K, 1, "x"),
        ("ZREM", K, "x"),
        ("ZCARD", K),
        ("ZSCORE", K, "x"),
        ("ZMSCORE", K, "x"),
        ("ZRANK", K, "x"),
        ("ZREVRANK", K, "x"),
        ("ZCOUNT", K, "-inf", "+inf"),
        ("ZLEXCOUNT", K, "-", "+"),
        ("ZRANGE", K, 0, -1),
        ("ZRANGEBYSCORE", K, "-inf", "+inf"),
        ("ZREVRANGEBYSCORE", K, "+inf", "-inf"),
        ("ZRANGEBYLEX", K, "-", "+"),
        ("ZREVRANGE", K, 0, -1),
        ("ZREMRANGEBYRANK", K, 0, -1),
        ("ZREMRANGEBYSCORE", K, "-inf", "+inf"),
        ("ZREMRANGEBYLEX", K, "-", "+"),
        ("ZPOPMIN", K),
        ("ZPOPMAX", K),
        ("BZPOPMIN", K, 0.01),
        ("ZRANDMEMBER", K),
        ("ZUNIONSTORE", "other", 1, K),
        ("ZINTERSTORE", "other", 1, K),
        ("ZDIFFSTORE", "other", 1, K),
        ("ZUNION", 1, K),
        ("ZINTER", 1, K),
        ("ZDIFF", 1, K),
        ("ZRANGESTORE", "other", K, 0, -1),
        ("ZSCAN", K, 0),
    ],
}

CASES = [
    pytest.param(kind, cmd, id=f"{cmd[0]}-on-{kind}")
    for family, commands in FAMILIES.items()
    for cmd in commands
    for kind in MAKERS
    if kind != family
    # Redis's sorted-set stores accept plain sets as sources.
    and not (kind == "set" and cmd[0] in {"ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZUNION", "ZINTER", "ZDIFF"})
]


@pytest.mark.parametrize("kind, command", CASES)
def test_typed_command_on_other_type(r: redis.Redis, kind: str, command: tuple[Any, ...]) -> None:
    MAKERS[kind](r)
    r.expire(K, TTL)
    before = snapshot(r)
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command(*command)
    assert str(exc.value) == WRONGTYPE
    assert snapshot(r) == before
    assert r.exists("other") == 0, "nothing was created on the way"


@pytest.mark.parametrize("kind", list(MAKERS))
def test_generic_commands_work_on_every_type(r: redis.Redis, kind: str) -> None:
    MAKERS[kind](r)
    r.expire(K, TTL)
    original = snapshot(r)
    assert r.exists(K) == 1
    assert r.type(K) in (kind.encode(), kind)
    assert 0 < r.ttl(K) <= TTL
    assert r.touch(K) == 1
    assert r.object("encoding", K) is not None
    assert r.copy(K, "copy") is True
    assert r.rename(K, "renamed") is True
    assert r.exists(K) == 0
    r.rename("renamed", K)
    assert snapshot(r) == original, "RENAME there and back keeps type, content and TTL"
    assert r.persist(K) is True and r.ttl(K) == -1
    keys = [k.decode() if isinstance(k, bytes) else k for k in r.scan_iter(_type=kind)]
    assert sorted(keys) == sorted([K, "copy"])
    assert r.delete(K) == 1
    MAKERS[kind](r)
    assert r.set(K, "new") is True and r.get(K) == b"new"
    r.delete(K)
    MAKERS[kind](r)
    assert r.mset({K: "m", "b": "c"}) is True and r.get(K) == b"m"
