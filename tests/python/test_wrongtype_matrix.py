"""The full WRONGTYPE matrix: every command family against a key of every other type.

Each typed command, run on a key holding another type, must answer exactly
``WRONGTYPE Operation against a key holding the wrong kind of value`` and
leave that key as it was (type, content, TTL). Generic commands (DEL,
EXPIRE, TYPE, RENAME, SET, MSET, ...) must work on every type.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import pytest
import redis

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
K = "victim"
TTL = 1000

MAKERS: Dict[str, Callable[[redis.Redis], Any]] = {
    "string": lambda r: r.set(K, "12"),
    "hash": lambda r: r.hset(K, mapping={"f": "1", "g": "2"}),
    "list": lambda r: r.rpush(K, "a", "b", "c"),
    "set": lambda r: r.sadd(K, "a", "b", "c"),
    "zset": lambda r: r.zadd(K, {"a": 1, "b": 2}),
}


def snapshot(r: redis.Redis) -> Tuple[Any, ...]:
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
FAMILIES: Dict[str, List[Tuple[Any, ...]]] = {
    "string": [
        ("GET", K), ("SET", K, "x", "GET"), ("GETSET", K, "x"), ("GETDEL", K), ("GETEX", K, "PERSIST"),
        ("APPEND", K, "x"), ("STRLEN", K), ("GETRANGE", K, 0, -1), ("SETRANGE", K, 0, "x"), ("INCR", K),
        ("DECRBY", K, 2), ("INCRBYFLOAT", K, "1.5"), ("SETBIT", K, 1, 1), ("GETBIT", K, 1), ("BITCOUNT", K),
        ("BITPOS", K, 1),
    ],
    "hash": [
        ("HSET", K, "f", "v"), ("HSETNX", K, "f", "v"), ("HGET", K, "f"), ("HMGET", K, "f"),
        ("HMSET", K, "f", "v"), ("HDEL", K, "f"), ("HLEN", K), ("HSTRLEN", K, "f"), ("HEXISTS", K, "f"),
        ("HKEYS", K), ("HVALS", K), ("HGETALL", K), ("HINCRBY", K, "f", 1), ("HINCRBYFLOAT", K, "f", 1),
        ("HRANDFIELD", K), ("HSCAN", K, 0),
    ],
    "list": [
        ("LPUSH", K, "x"), ("RPUSH", K, "x"), ("LPUSHX", K, "x"), ("RPUSHX", K, "x"), ("LPOP", K), ("RPOP", K, 2),
        ("LLEN", K), ("LRANGE", K, 0, -1), ("LINDEX", K, 0), ("LSET", K, 0, "x"), ("LINSERT", K, "BEFORE", "a", "x"),
        ("LREM", K, 0, "a"), ("LTRIM", K, 0, 1), ("LPOS", K, "a"), ("LMOVE", K, "other", "LEFT", "RIGHT"),
        ("RPOPLPUSH", K, "other"), ("LMPOP", 1, K, "LEFT"), ("BLPOP", K, 0.01), ("BRPOP", K, 0.01),
        ("BLMOVE", K, "other", "LEFT", "LEFT", 0.01),
    ],
    "set": [
        ("SADD", K, "x"), ("SREM", K, "x"), ("SCARD", K), ("SISMEMBER", K, "x"), ("SMISMEMBER", K, "x"),
        ("SMEMBERS", K), ("SPOP", K), ("SRANDMEMBER", K), ("SMOVE", K, "other", "x"), ("SINTER", K),
        ("SUNION", K), ("SDIFF", K), ("SINTERSTORE", "other", K), ("SUNIONSTORE", "other", K),
        ("SDIFFSTORE", "other", K), ("SINTERCARD", 1, K), ("SSCAN", K, 0),
    ],
    "zset": [
        ("ZADD", K, 1, "x"), ("ZINCRBY", K, 1, "x"), ("ZREM", K, "x"), ("ZCARD", K), ("ZSCORE", K, "x"),
        ("ZMSCORE", K, "x"), ("ZRANK", K, "x"), ("ZREVRANK", K, "x"), ("ZCOUNT", K, "-inf", "+inf"),
        ("ZLEXCOUNT", K, "-", "+"), ("ZRANGE", K, 0, -1), ("ZRANGEBYSCORE", K, "-inf", "+inf"),
        ("ZREVRANGEBYSCORE", K, "+inf", "-inf"), ("ZRANGEBYLEX", K, "-", "+"), ("ZREVRANGE", K, 0, -1),
        ("ZREMRANGEBYRANK", K, 0, -1), ("ZREMRANGEBYSCORE", K, "-inf", "+inf"), ("ZREMRANGEBYLEX", K, "-", "+"),
        ("ZPOPMIN", K), ("ZPOPMAX", K), ("BZPOPMIN", K, 0.01), ("ZRANDMEMBER", K), ("ZUNIONSTORE", "other", 1, K),
        ("ZINTERSTORE", "other", 1, K), ("ZDIFFSTORE", "other", 1, K), ("ZUNION", 1, K), ("ZINTER", 1, K),
        ("ZDIFF", 1, K), ("ZRANGESTORE", "other", K, 0, -1), ("ZSCAN", K, 0),
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
def test_typed_command_on_other_type(r: redis.Redis, kind: str, command: Tuple[Any, ...]) -> None:
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
