"""Hash commands: behaviour under RESP2 and RESP3, WRONGTYPE, empty hashes
disappearing, exact reply shapes, and exact counts under concurrent clients.

Runs against Kiwi or, with ``KIWI_TEST_EXTERNAL_PORT``, against a reference
redis-server: every assertion holds for both. Reply shapes are checked on
raw connections, so redis-py's response callbacks cannot hide a difference.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from kiwitest import RawConnection, RespError, run_threads, wait_until

ClientFactory = Callable[..., redis.Redis]
RawFactory = Callable[[], RawConnection]

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BARRIER_TIMEOUT = 15.0


def raw_conn(raw: RawFactory, protocol: int) -> RawConnection:
    """A raw connection speaking ``protocol``, on an empty database."""
    conn = raw()
    if protocol == 3:
        assert isinstance(conn.call("HELLO", "3"), dict)
    assert conn.call("FLUSHALL") == "OK"
    return conn


# -- setting and reading fields ---------------------------------------------------


def test_hset_counts_new_fields_only(r: redis.Redis) -> None:
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hset("h", mapping={"a": "10", "c": "3"}) == 1
    # A field named twice in one command is new once; the last value wins.
    assert r.execute_command("HSET", "h", "d", "x", "d", "y") == 1
    assert r.hget("h", "a") == b"10"
    assert r.hget("h", "d") == b"y"
    assert r.hlen("h") == 4
    assert r.type("h") == b"hash"


def test_hmset_and_hmget(r: redis.Redis) -> None:
    assert r.execute_command("HMSET", "h", "a", "1", "b", "2") in (b"OK", "OK", True)
    assert r.hmget("h", ["a", "zz", "b", "a"]) == [b"1", None, b"2", b"1"]
    assert r.hmget("missing", ["a", "b"]) == [None, None]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'hmset'"):
        r.execute_command("HMSET", "h", "a", "1", "b")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'hset'"):
        r.execute_command("HSET", "h", "a", "1", "b")
    assert r.hlen("h") == 2


def test_hsetnx(r: redis.Redis) -> None:
    assert r.hsetnx("h", "f", "v") == 1
    assert r.hsetnx("h", "f", "w") == 0
    assert r.hget("h", "f") == b"v"
    assert r.hsetnx("h", "g", "w") == 1
    assert r.hlen("h") == 2


def test_field_queries(r: redis.Redis) -> None:
    r.hset("h", mapping={"s": "hello", "e": "", "n": "-12"})
    assert r.hstrlen("h", "s") == 5
    assert r.hstrlen("h", "e") == 0
    assert r.hstrlen("h", "n") == 3
    assert r.hstrlen("h", "zz") == 0
    assert r.hstrlen("missing", "s") == 0
    assert r.hexists("h", "e") is True
    assert r.hexists("h", "zz") is False
    assert r.hexists("missing", "s") is False
    assert r.hlen("missing") == 0
    assert r.hget("h", "zz") is None
    assert r.hget("missing", "s") is None


def test_binary_fields_and_values(r: redis.Redis) -> None:
    fields = {b"\x00": b"\xff\x00", b"a\r\nb": b"\r\n", b"": b"empty field", b"\xff" * 3: b""}
    assert r.hset("bin", mapping=fields) == len(fields)
    assert r.hgetall("bin") == fields
    for field, value in fields.items():
        assert r.hget("bin", field) == value
    big = b"x" * 100_000
    r.hset("bin", "big", big)
    assert r.hget("bin", "big") == big
    assert r.hstrlen("bin", "big") == len(big)


def test_hkeys_hvals_hgetall(r: redis.Redis) -> None:
    fields = {f"f{i}".encode(): str(i).encode() for i in range(300)}
    r.hset("h", mapping=fields)
    assert sorted(r.hkeys("h")) == sorted(fields)
    assert Counter(r.hvals("h")) == Counter(fields.values())
    assert r.hgetall("h") == fields
    assert r.hkeys("missing") == []
    assert r.hvals("missing") == []
    assert r.hgetall("missing") == {}


def test_reply_shapes(raw: RawFactory, protocol: int) -> None:
    """HGETALL is a map in RESP3; missing fields are the protocol's null."""
    conn = raw_conn(raw, protocol)
    conn.call("HSET", "h", "a", "1")
    if protocol == 3:
        assert conn.call_raw("HGETALL", "h") == b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"
        assert conn.call_raw("HGETALL", "missing") == b"%0\r\n"
        assert conn.call_raw("HGET", "h", "zz") == b"_\r\n"
        assert conn.call_raw("HMGET", "h", "zz", "a") == b"*2\r\n_\r\n$1\r\n1\r\n"
        assert conn.call_raw("HRANDFIELD", "missing") == b"_\r\n"
    else:
        assert conn.call_raw("HGETALL", "h") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        assert conn.call_raw("HGETALL", "missing") == b"*0\r\n"
        assert conn.call_raw("HGET", "h", "zz") == b"$-1\r\n"
        assert conn.call_raw("HMGET", "h", "zz", "a") == b"*2\r\n$-1\r\n$1\r\n1\r\n"
        assert conn.call_raw("HRANDFIELD", "missing") == b"$-1\r\n"
    # Same bytes under both protocols.
    assert conn.call_raw("HKEYS", "missing") == b"*0\r\n"
    assert conn.call_raw("HEXISTS", "h", "a") == b":1\r\n"
    assert conn.call_raw("HRANDFIELD", "missing", "3") == b"*0\r\n"
    assert conn.call_raw("HSCAN", "missing", "0") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    assert conn.call_raw("HSCAN", "h", "0") == b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert conn.call_raw("HINCRBYFLOAT", "h", "a", "0.5") == b"$3\r\n1.5\r\n"


# -- deleting fields ---------------------------------------------------------------


def test_hdel_counts_and_deletes_the_empty_hash(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.hdel("h", "a", "a", "zz") == 1
    assert r.hdel("h", "a") == 0
    assert r.hlen("h") == 2
    assert r.hdel("missing", "a") == 0
    assert r.hdel("h", "b", "c") == 2
    assert r.exists("h") == 0
    assert r.type("h") == b"none"
    assert r.hlen("h") == 0
    assert r.hgetall("h") == {}
    assert "h" not in [k.decode() for k in r.keys("*")]
    # Re-created, it shows none of the old fields.
    assert r.hset("h", "x", "1") == 1
    assert r.hgetall("h") == {b"x": b"1"}


def test_hdel_of_the_last_field_drops_the_ttl(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.expire("h", 1000)
    assert r.hdel("h", "a") == 1
    assert 990 <= r.ttl("h") <= 1000
    assert r.hdel("h", "b") == 1
    assert r.ttl("h") == -2
    r.hset("h", "a", "1")
    assert r.ttl("h") == -1


def test_writes_keep_the_ttl(r: redis.Redis) -> None:
    r.hset("h", "a", "1")
    r.expire("h", 1000)
    r.hset("h", "b", "2")
    r.hsetnx("h", "c", "3")
    r.hincrby("h", "n", 1)
    r.hincrbyfloat("h", "m", 1.5)
    r.hdel("h", "a")
    assert 990 <= r.ttl("h") <= 1000
    assert r.hlen("h") == 4


def test_expired_hash_is_replaced_by_a_fresh_one(r: redis.Redis) -> None:
    r.hset("h", mapping={"old1": "1", "old2": "2"})
    r.pexpire("h", 50)
    wait_until(lambda: r.exists("h") == 0, message="hash expired")
    assert r.hlen("h") == 0
    assert r.hget("h", "old1") is None
    assert r.hset("h", "new", "1") == 1
    assert r.hgetall("h") == {b"new": b"1"}
    assert r.hlen("h") == 1
    assert r.ttl("h") == -1
    # Incrementing an expired field starts from zero too.
    r.hset("g", "n", "41")
    r.pexpire("g", 50)
    wait_until(lambda: r.exists("g") == 0, message="hash expired")
    assert r.hincrby("g", "n", 1) == 1
    assert r.hlen("g") == 1


# -- HINCRBY / HINCRBYFLOAT --------------------------------------------------------


def test_hincrby(r: redis.Redis) -> None:
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.hget("h", "n") == b"-2"
    assert r.hlen("h") == 1
    r.hset("h", mapping={"max": str(2**63 - 1), "min": str(-(2**63)), "s": "abc", "sp": " 1"})
    with pytest.raises(redis.ResponseError, match=r"^increment or decrement would overflow$"):
        r.hincrby("h", "max", 1)
    with pytest.raises(redis.ResponseError, match=r"^increment or decrement would overflow$"):
        r.hincrby("h", "min", -1)
    assert r.hincrby("h", "max", -1) == 2**63 - 2
    for field in ("s", "sp"):
        with pytest.raises(redis.ResponseError, match=r"^hash value is not an integer$"):
            r.hincrby("h", field, 1)
    with pytest.raises(redis.ResponseError, match=r"^value is not an integer or out of range$"):
        r.execute_command("HINCRBY", "h", "n", "1.5")
    with pytest.raises(redis.ResponseError, match=r"^value is not an integer or out of range$"):
        r.execute_command("HINCRBY", "h", "new", "x")
    assert r.hexists("h", "new") is False
    assert r.hget("h", "s") == b"abc"


def test_hincrbyfloat(raw: RawFactory, protocol: int) -> None:
    """Long double arithmetic printed like INCRBYFLOAT: 10.6, not 10.59999…"""
    conn = raw_conn(raw, protocol)

    def incr(field: str, by: str) -> object:
        return conn.call("HINCRBYFLOAT", "h", field, by)

    assert incr("f", "10.5") == b"10.5"
    assert incr("f", "0.1") == b"10.6"
    assert conn.call("HGET", "h", "f") == b"10.6"
    assert incr("f", "-10.6") == b"0"
    assert incr("g", "5.0e3") == b"5000"
    assert incr("g", "1.5e-5") == b"5000.00001499999999988"
    conn.call("HSET", "h", "int", "10", "s", "abc", "inf", "inf")
    assert incr("int", "0.25") == b"10.25"
    assert incr("s", "1") == "ERR hash value is not a float"
    assert incr("inf", "1") == "ERR increment would produce NaN or Infinity"
    assert incr("new", "inf") == "ERR value is NaN or Infinity"
    for bad in ("abc", "nan", "", " 1", "1e5000"):
        assert incr("new", bad) == "ERR value is not a valid float", bad
    assert conn.call("HEXISTS", "h", "new") == 0
    assert conn.call("HGET", "h", "inf") == b"inf"
    assert conn.call("HLEN", "h") == 5


# -- HRANDFIELD --------------------------------------------------------------------


def test_hrandfield_without_count(r: redis.Redis) -> None:
    fields = {f"f{i}": str(i) for i in range(5)}
    r.hset("h", mapping=fields)
    seen: set[bytes] = set()
    for _ in range(500):
        seen.add(r.hrandfield("h"))
        if len(seen) == len(fields):
            break
    assert seen == {f.encode() for f in fields}
    assert r.hrandfield("missing") is None


def test_hrandfield_positive_count_is_distinct(r: redis.Redis) -> None:
    fields = {f"f{i}".encode(): str(i).encode() for i in range(200)}
    r.hset("h", mapping=fields)
    for count in (1, 2, 10, 199):
        got = r.hrandfield("h", count)
        assert len(got) == count
        assert len(set(got)) == count
        assert set(got) <= set(fields)
    assert sorted(r.hrandfield("h", 200)) == sorted(fields)
    assert sorted(r.hrandfield("h", 10_000)) == sorted(fields)
    assert r.hrandfield("h", 0) == []
    assert r.hrandfield("missing", 5) == []


def test_hrandfield_negative_count_repeats(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    got = r.hrandfield("h", -300)
    assert len(got) == 300
    assert set(got) == {b"a", b"b", b"c"}
    assert r.hrandfield("h", -1)[0] in (b"a", b"b", b"c")
    r.hset("one", "only", "v")
    assert r.hrandfield("one", -4) == [b"only"] * 4


def test_hrandfield_withvalues_shapes(raw: RawFactory, protocol: int) -> None:
    """RESP2: a flat field/value array; RESP3: an array of [field, value] pairs."""
    conn = raw_conn(raw, protocol)
    fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(20)}
    conn.call("HSET", "h", *[x for kv in fields.items() for x in kv])

    def pairs(reply: list) -> list[tuple[bytes, bytes]]:
        if protocol == 3:
            assert all(isinstance(p, list) and len(p) == 2 for p in reply)
            return [(p[0], p[1]) for p in reply]
        assert len(reply) % 2 == 0
        return list(zip(reply[0::2], reply[1::2]))

    for count in (5, 20, 50, -5, -50):
        got = pairs(conn.call("HRANDFIELD", "h", count, "WITHVALUES"))
        assert len(got) == (min(count, 20) if count > 0 else -count)
        assert all(fields[f] == v for f, v in got)
        if count > 0:
            assert len({f for f, _ in got}) == len(got)
    assert conn.call("HRANDFIELD", "h", 0, "WITHVALUES") == []
    assert conn.call("HRANDFIELD", "missing", 3, "WITHVALUES") == []
    conn.call("HSET", "one", "f", "v")
    one = b"*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n" if protocol == 3 else b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert conn.call_raw("HRANDFIELD", "one", "1", "WITHVALUES") == one


def test_hrandfield_errors(raw: RawFactory, protocol: int) -> None:
    conn = raw_conn(raw, protocol)
    conn.call("HSET", "h", "a", "1")
    assert conn.call("HRANDFIELD", "h", "x") == "ERR value is not an integer or out of range"
    assert conn.call("HRANDFIELD", "h", "1", "foo") == "ERR syntax error"
    assert conn.call("HRANDFIELD", "h", "1", "withvalues", "x") == "ERR syntax error"
    assert conn.call("HRANDFIELD", "h", "4611686018427387904", "withvalues") == ("ERR value is out of range")
    assert conn.call("HRANDFIELD", "h", "-9223372036854775808") == (
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )


# -- HSCAN -------------------------------------------------------------------------


def full_hscan(r: redis.Redis, key: str, **kwargs: object) -> list[tuple[bytes, bytes]]:
    """Every (field, value) a complete HSCAN iteration returns, in order."""
    out: list[tuple[bytes, bytes]] = []
    cursor = 0
    for _ in range(10_000):
        cursor, chunk = r.hscan(key, cursor, **kwargs)
        out.extend(chunk.items())
        if cursor == 0:
            return out
    raise AssertionError("HSCAN did not finish")


def test_hscan_small_hash_in_one_call(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    cursor, chunk = r.hscan("h", 0, count=1)
    assert cursor == 0
    assert chunk == {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert r.hscan("h", 0, match="b*") == (0, {b"b": b"2"})
    assert r.hscan("missing", 0) == (0, {})


def test_hscan_large_hash_returns_every_field_once(r: redis.Redis) -> None:
    fields = {f"field:{i}".encode(): str(i).encode() for i in range(1000)}
    r.hset("h", mapping=fields)
    got = full_hscan(r, "h", count=25)
    assert Counter(f for f, _ in got) == Counter(fields.keys())
    assert all(fields[f] == v for f, v in got)
    matched = full_hscan(r, "h", match="field:1*", count=50)
    expected = {f for f in fields if f.startswith(b"field:1")}
    assert {f for f, _ in matched} == expected


def test_hscan_sees_fields_present_throughout(r: redis.Redis) -> None:
    """Fields present for the whole iteration come back at least once."""
    stable = {f"s{i:04}".encode() for i in range(400)}
    r.hset("h", mapping=dict.fromkeys(stable, b"1"))
    seen: set[bytes] = set()
    cursor, step = 0, 0
    while True:
        cursor, chunk = r.hscan("h", cursor, count=20)
        seen.update(chunk)
        r.hset("h", f"t{step}", "x")
        r.hdel("h", f"t{step - 1}")
        step += 1
        assert step < 10_000
        if cursor == 0:
            break
    assert stable <= seen


def test_hscan_errors(raw: RawFactory, protocol: int) -> None:
    conn = raw_conn(raw, protocol)
    conn.call("HSET", "h", "a", "1")
    assert conn.call("HSCAN", "h", "x") == "ERR invalid cursor"
    assert conn.call("HSCAN", "h", "0", "count", "0") == "ERR syntax error"
    assert conn.call("HSCAN", "h", "0", "count", "x") == ("ERR value is not an integer or out of range")
    assert conn.call("HSCAN", "h", "0", "novalues") == "ERR syntax error"
    assert conn.call("HSCAN", "h", "0", "type", "hash") == "ERR syntax error"
    # A missing key answers before the options are looked at.
    assert conn.call("HSCAN", "missing", "0", "count", "0") == [b"0", []]


# -- WRONGTYPE ---------------------------------------------------------------------

WRONGTYPE_COMMANDS = [
    pytest.param(("HSET", "s", "f", "v"), id="HSET"),
    pytest.param(("HSETNX", "s", "f", "v"), id="HSETNX"),
    pytest.param(("HMSET", "s", "f", "v"), id="HMSET"),
    pytest.param(("HGET", "s", "f"), id="HGET"),
    pytest.param(("HMGET", "s", "f", "g"), id="HMGET"),
    pytest.param(("HDEL", "s", "f"), id="HDEL"),
    pytest.param(("HLEN", "s"), id="HLEN"),
    pytest.param(("HSTRLEN", "s", "f"), id="HSTRLEN"),
    pytest.param(("HEXISTS", "s", "f"), id="HEXISTS"),
    pytest.param(("HKEYS", "s"), id="HKEYS"),
    pytest.param(("HVALS", "s"), id="HVALS"),
    pytest.param(("HGETALL", "s"), id="HGETALL"),
    pytest.param(("HINCRBY", "s", "f", "1"), id="HINCRBY"),
    pytest.param(("HINCRBYFLOAT", "s", "f", "1.5"), id="HINCRBYFLOAT"),
    pytest.param(("HRANDFIELD", "s"), id="HRANDFIELD"),
    pytest.param(("HRANDFIELD", "s", "0"), id="HRANDFIELD-0"),
    pytest.param(("HRANDFIELD", "s", "-3", "WITHVALUES"), id="HRANDFIELD-neg"),
    pytest.param(("HSCAN", "s", "0"), id="HSCAN"),
    pytest.param(("HSCAN", "s", "0", "COUNT", "0"), id="HSCAN-bad-count"),
]


@pytest.mark.parametrize("command", WRONGTYPE_COMMANDS)
def test_wrongtype_against_a_string(r: redis.Redis, command: tuple[str, ...]) -> None:
    r.set("s", "value", ex=1000)
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command(*command)
    assert str(info.value) == WRONGTYPE
    assert r.type("s") == b"string"
    assert r.get("s") == b"value"
    assert 990 <= r.ttl("s") <= 1000


def test_string_commands_refuse_a_hash(raw: RawFactory, protocol: int) -> None:
    conn = raw_conn(raw, protocol)
    conn.call("HSET", "h", "f", "v")
    for command in (("GET", "h"), ("APPEND", "h", "x"), ("INCR", "h"), ("STRLEN", "h")):
        reply = conn.call(*command)
        assert isinstance(reply, RespError) and reply == WRONGTYPE, command
    assert conn.call("HGETALL", "h") == ({b"f": b"v"} if protocol == 3 else [b"f", b"v"])


# -- concurrency -------------------------------------------------------------------


def test_concurrent_hincrby_is_exact(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, rounds = 8, 250
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = clients[index]
        start.wait()
        for _ in range(rounds):
            client.hincrby("counter", "n", index + 1)
        return rounds

    run_threads([lambda i=i: worker(i) for i in range(threads)])
    assert r.hget("counter", "n") == str(rounds * sum(range(1, threads + 1))).encode()
    assert r.hlen("counter") == 1


def test_concurrent_hincrbyfloat_is_exact(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, rounds = 6, 200
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> None:
        start.wait()
        for _ in range(rounds):
            clients[index].hincrbyfloat("counter", "f", 0.5)

    run_threads([lambda i=i: worker(i) for i in range(threads)])
    assert r.hget("counter", "f") == str(threads * rounds // 2).encode()


def test_concurrent_hset_of_distinct_fields_counts_exactly(r: redis.Redis, make_client: ClientFactory) -> None:
    threads, per_thread = 8, 150
    clients = [make_client() for _ in range(threads)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(index: int) -> int:
        client = clients[index]
        start.wait()
        created = 0
        for i in range(per_thread):
            # Every thread also rewrites one shared field: never counted twice.
            created += client.hset("h", mapping={f"t{index}:{i}": str(i), "shared": str(index)})
        return created

    created = run_threads([lambda i=i: worker(i) for i in range(threads)])
    expected = threads * per_thread + 1
    assert sum(created) == expected
    assert r.hlen("h") == expected
    assert len(r.hkeys("h")) == expected


def test_concurrent_hsetnx_and_hdel_agree(r: redis.Redis, make_client: ClientFactory) -> None:
    """HSETNX of the same fields succeeds once per field; overlapping HDELs
    remove each field once, and the emptied hash is gone."""
    threads, nfields = 6, 200
    clients = [make_client() for _ in range(threads)]
    fields = [f"f{i}" for i in range(nfields)]
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def setter(index: int) -> int:
        start.wait()
        return sum(clients[index].hsetnx("h", f, str(index)) for f in fields)

    assert sum(run_threads([lambda i=i: setter(i) for i in range(threads)])) == nfields
    assert r.hlen("h") == nfields

    def deleter(index: int) -> int:
        start.wait()
        removed = 0
        for i in range(0, nfields, 2):
            removed += clients[index].hdel("h", fields[i], fields[(i + 1 + index) % nfields])
        return removed

    assert sum(run_threads([lambda i=i: deleter(i) for i in range(threads)])) == nfields
    assert r.exists("h") == 0
    assert r.hlen("h") == 0
