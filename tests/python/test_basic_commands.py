"""Strings, keyspace and connection commands, checked under RESP2 and RESP3."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import redis

from kiwitest import RawConnection

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
NOT_INTEGER = "value is not an integer or out of range"
OVERFLOW = "increment or decrement would overflow"
NOT_FLOAT = "value is not a valid float"
NAN_OR_INF = "increment would produce NaN or Infinity"
SYNTAX = "syntax error"

ClientFactory = Callable[..., redis.Redis]
RawFactory = Callable[[], RawConnection]


def error_of(client: redis.Redis, *args: object) -> str:
    """Run a command that must fail and return the error text."""
    with pytest.raises(redis.ResponseError) as exc:
        client.execute_command(*args)
    return str(exc.value)


def as_bytes(value: Any) -> Any:
    """Normalise str replies (redis-py decodes a few under RESP2) to bytes."""
    return value.encode() if isinstance(value, str) else value


def as_dict(reply: Any) -> dict[bytes, Any]:
    """A HELLO reply as a dict whether it came as a RESP2 array or RESP3 map."""
    if isinstance(reply, dict):
        return {as_bytes(k): v for k, v in reply.items()}
    return {as_bytes(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


# -- strings ---------------------------------------------------------------------


def test_set_get_and_missing_key(r: redis.Redis) -> None:
    """SET stores, GET reads, a missing key is nil."""
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.set("k", "w") is True
    assert r.get("k") == b"w"


def test_set_nx_xx(r: redis.Redis) -> None:
    """NX only creates, XX only replaces; a refused SET replies nil."""
    assert r.set("k", "1", xx=True) is None
    assert r.exists("k") == 0
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.set("k", "3", xx=True) is True
    assert r.get("k") == b"3"


def test_set_get_option_returns_previous_value(r: redis.Redis) -> None:
    """SET ... GET replies with the old value (nil if none) and still sets."""
    assert r.set("k", "1", get=True) is None
    assert r.set("k", "2", get=True) == b"1"
    assert r.get("k") == b"2"
    assert r.set("k", "3", nx=True, get=True) == b"2"
    assert r.get("k") == b"2"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("NX", "XX"), id="nx-xx"),
        pytest.param(("XX", "NX"), id="xx-nx"),
        pytest.param(("BOGUS",), id="unknown-option"),
        pytest.param(("PX",), id="px-without-value"),
        pytest.param(("KEEPTTL", "PX", 10), id="keepttl-px"),
        pytest.param(("EXAT", 10, "PXAT", 10), id="exat-pxat"),
    ],
)
def test_set_syntax_errors(r: redis.Redis, args: tuple[object, ...]) -> None:
    """Malformed SET options: ``syntax error``, nothing written."""
    assert error_of(r, "SET", "k", "v", *args) == SYNTAX
    assert r.exists("k") == 0


def test_setnx_getset_getdel(r: redis.Redis) -> None:
    """SETNX creates once; GETSET swaps; GETDEL hands the value over once."""
    assert r.setnx("k", "1") is True
    assert r.setnx("k", "2") is False
    assert r.getset("k", "3") == b"1"
    assert r.getset("new", "x") is None
    assert r.getdel("k") == b"3"
    assert r.getdel("k") is None
    assert r.exists("k") == 0
    assert r.get("new") == b"x"


def test_append_and_strlen(r: redis.Redis) -> None:
    """APPEND creates or extends and returns the new length."""
    assert r.strlen("k") == 0
    assert r.append("k", "ab") == 2
    assert r.append("k", b"\x00cd") == 5
    assert r.append("k", "") == 5
    assert r.get("k") == b"ab\x00cd"
    assert r.strlen("k") == 5


def test_incr_decr_family(r: redis.Redis) -> None:
    """Counters start at 0 and store their decimal form."""
    assert r.incr("c") == 1
    assert r.incrby("c", 41) == 42
    assert r.decr("c") == 41
    assert r.decrby("c", 50) == -9
    assert r.incrby("c", -1) == -10
    assert r.get("c") == b"-10"
    r.set("z", "0")
    assert r.decr("z") == -1


def test_incr_limits(r: redis.Redis) -> None:
    """Reaching the i64 limits is fine, going past them is an error."""
    r.set("max", str(LLONG_MAX))
    r.set("min", str(LLONG_MIN))
    assert error_of(r, "INCR", "max") == OVERFLOW
    assert error_of(r, "INCRBY", "max", 1) == OVERFLOW
    assert error_of(r, "DECR", "min") == OVERFLOW
    assert error_of(r, "DECRBY", "min", 1) == OVERFLOW
    assert r.mget("max", "min") == [str(LLONG_MAX).encode(), str(LLONG_MIN).encode()]
    assert r.incrby("fresh", LLONG_MAX) == LLONG_MAX
    assert r.incrby("fresh2", LLONG_MIN) == LLONG_MIN
    assert r.incr("min") == LLONG_MIN + 1


def test_decrby_llong_min_has_its_own_message(r: redis.Redis) -> None:
    """Negating LLONG_MIN overflows before any addition happens."""
    assert error_of(r, "DECRBY", "k", LLONG_MIN) == "decrement would overflow"
    assert r.exists("k") == 0


@pytest.mark.parametrize(
    "stored",
    ["abc", " 1", "1 ", "1.5", "01", "00", "+1", "-0", "1e3", "99999999999999999999", ""],
)
def test_incr_on_non_integer_value(r: redis.Redis, stored: str) -> None:
    """Only canonical decimal i64 strings count as integers."""
    r.set("k", stored)
    assert error_of(r, "INCR", "k") == NOT_INTEGER
    assert error_of(r, "DECRBY", "k", 1) == NOT_INTEGER
    assert r.get("k") == stored.encode()


@pytest.mark.parametrize("increment", ["abc", "1.5", str(LLONG_MAX + 1), ""])
def test_incrby_with_non_integer_argument(r: redis.Redis, increment: str) -> None:
    """The increment must be an i64 too."""
    r.set("k", "5")
    assert error_of(r, "INCRBY", "k", increment) == NOT_INTEGER
    assert r.get("k") == b"5"


@pytest.mark.parametrize(
    ("start", "increment", "stored"),
    [
        pytest.param("10.50", "0.1", b"10.6", id="docs-10.50+0.1"),
        pytest.param("10.6", "-5", b"5.6", id="docs-10.6-5"),
        pytest.param("5.0e3", "2.0e2", b"5200", id="docs-exponents"),
        pytest.param("3", "1.5", b"4.5", id="int-plus-fraction"),
        pytest.param(None, "0.25", b"0.25", id="missing-key"),
        pytest.param("5", "0", b"5", id="zero-increment"),
        pytest.param("1", "-1", b"0", id="to-zero"),
    ],
)
def test_incrbyfloat_results_and_formatting(r: redis.Redis, start: str | None, increment: str, stored: bytes) -> None:
    """INCRBYFLOAT's stored text: no trailing zeros, no exponent, no '.0'."""
    if start is not None:
        r.set("f", start)
    assert r.incrbyfloat("f", increment) == float(stored)
    assert r.get("f") == stored


@pytest.mark.parametrize(
    ("stored", "increment", "message"),
    [
        pytest.param("1", "abc", NOT_FLOAT, id="increment-not-a-number"),
        pytest.param("1", "nan", NOT_FLOAT, id="increment-nan"),
        pytest.param("1", "", NOT_FLOAT, id="increment-empty"),
        pytest.param("1", " 1", NOT_FLOAT, id="increment-leading-space"),
        pytest.param("abc", "1", NOT_FLOAT, id="value-not-a-number"),
        pytest.param("1 ", "1", NOT_FLOAT, id="value-trailing-space"),
        pytest.param("", "1", NOT_FLOAT, id="value-empty"),
        pytest.param("1", "inf", NAN_OR_INF, id="increment-inf"),
        pytest.param("1", "-inf", NAN_OR_INF, id="increment-minus-inf"),
        pytest.param("inf", "1", NAN_OR_INF, id="value-inf"),
    ],
)
def test_incrbyfloat_errors(r: redis.Redis, stored: str, increment: str, message: str) -> None:
    """Invalid floats and non-finite results are refused; the value stays."""
    r.set("f", stored)
    assert error_of(r, "INCRBYFLOAT", "f", increment) == message
    assert r.get("f") == stored.encode()


def test_incrbyfloat_replies_with_bulk_string_in_resp3(raw: RawFactory) -> None:
    """Even under RESP3 the reply is a bulk string, not a double."""
    conn = raw()
    conn.call("HELLO", 3)
    conn.call("DEL", "rawfloat")
    assert conn.call_raw("INCRBYFLOAT", "rawfloat", "10.5") == b"$4\r\n10.5\r\n"
    assert conn.call_raw("INCRBYFLOAT", "rawfloat", "0.1") == b"$4\r\n10.6\r\n"
    conn.call("DEL", "rawfloat")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 4, b"Hello"),
        (-5, -1, b"World"),
        (0, -1, b"Hello World"),
        (-100, 100, b"Hello World"),
        (6, 6, b"W"),
        (5, 3, b""),
        (-1, -5, b""),
        (11, 20, b""),
        (10, 10, b"d"),
        # Redis 7.0 clamps an end still negative after adding the length to 0.
        (0, -100, b"H"),
        (-100, -50, b"H"),
    ],
)
def test_getrange(r: redis.Redis, start: int, end: int, expected: bytes) -> None:
    """GETRANGE index arithmetic, including negative and out-of-range ends."""
    r.set("s", "Hello World")
    assert r.getrange("s", start, end) == expected


def test_getrange_missing_and_empty(r: redis.Redis) -> None:
    """No key or an empty value gives the empty string."""
    r.set("e", "")
    assert r.getrange("missing", 0, -1) == b""
    assert r.getrange("e", 0, -1) == b""
    assert error_of(r, "GETRANGE", "e", "a", 1) == NOT_INTEGER


def test_setrange(r: redis.Redis) -> None:
    """SETRANGE overwrites in place and pads with zero bytes past the end."""
    r.set("s", "Hello World")
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    assert r.setrange("s", 20, "!") == 21
    assert r.get("s") == b"Hello Redis" + b"\x00" * 9 + b"!"
    assert r.setrange("new", 5, "ab") == 7
    assert r.get("new") == b"\x00\x00\x00\x00\x00ab"


def test_setrange_empty_value(r: redis.Redis) -> None:
    """An empty value never creates or grows a key; it returns the length."""
    r.set("s", "abc")
    assert r.setrange("missing", 5, "") == 0
    assert r.exists("missing") == 0
    assert r.setrange("s", 100, "") == 3
    assert r.setrange("s", 536870911, "") == 3
    assert r.get("s") == b"abc"


def test_setrange_errors(r: redis.Redis) -> None:
    """Negative offsets and results over 512 MB are refused."""
    r.set("s", "abc")
    assert error_of(r, "SETRANGE", "s", -1, "x") == "offset is out of range"
    assert error_of(r, "SETRANGE", "s", 536870912, "x") == ("string exceeds maximum allowed size (proto-max-bulk-len)")
    assert error_of(r, "SETRANGE", "s", "abc", "x") == NOT_INTEGER
    assert r.get("s") == b"abc"


# -- keys ------------------------------------------------------------------------


def test_del_unlink_exists_count_duplicates(r: redis.Redis) -> None:
    """EXISTS counts every mention; DEL/UNLINK count keys actually removed."""
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.exists("a", "a", "a", "missing") == 3
    assert r.exists("missing") == 0
    assert r.delete("a", "a", "missing") == 1
    assert r.unlink("b", "b", "c") == 2
    assert r.unlink("b") == 0
    assert r.dbsize() == 0


def test_type(r: redis.Redis) -> None:
    """TYPE reports string, hash or none."""
    r.set("s", "v")
    r.hset("h", "f", "v")
    assert r.type("s") == b"string"
    assert r.type("h") == b"hash"
    assert r.type("missing") == b"none"


GLOB_KEYS = [
    "hello",
    "hallo",
    "hxllo",
    "hllo",
    "heeello",
    "h*llo",
    "h?llo",
    "h[a]llo",
    "h\\llo",
    "a]b",
    "",
    "foo:bar:1",
    "foo:baz:2",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("h?llo", {"hello", "hallo", "hxllo", "h*llo", "h?llo", "h\\llo"}, id="question"),
        pytest.param(
            "h*llo",
            {"hello", "hallo", "hxllo", "hllo", "heeello", "h*llo", "h?llo", "h[a]llo", "h\\llo"},
            id="star",
        ),
        pytest.param("h[ae]llo", {"hello", "hallo"}, id="class"),
        pytest.param("h[^e]llo", {"hallo", "hxllo", "h*llo", "h?llo", "h\\llo"}, id="negated-class"),
        pytest.param("h[!e]llo", {"hello"}, id="bang-is-literal"),
        pytest.param("h[a-b]llo", {"hallo"}, id="range"),
        pytest.param("h[e-a]llo", {"hallo", "hello"}, id="reversed-range"),
        pytest.param("h\\*llo", {"h*llo"}, id="escaped-star"),
        pytest.param("h\\?llo", {"h?llo"}, id="escaped-question"),
        pytest.param("h\\[a\\]llo", {"h[a]llo"}, id="escaped-brackets"),
        pytest.param("h\\\\llo", {"h\\llo"}, id="escaped-backslash"),
        pytest.param("a]b", {"a]b"}, id="lone-close-bracket"),
        pytest.param("foo:*:1", {"foo:bar:1"}, id="inner-star"),
        pytest.param("*:2", {"foo:baz:2"}, id="leading-star"),
        pytest.param("", {""}, id="empty-pattern"),
        pytest.param("nomatch*", set(), id="no-match"),
        pytest.param("*", set(GLOB_KEYS), id="all"),
    ],
)
def test_keys_patterns(r: redis.Redis, pattern: str, expected: set[str]) -> None:
    """KEYS uses Redis glob rules, including backslash escapes."""
    r.mset(dict.fromkeys(GLOB_KEYS, "1"))
    found = r.keys(pattern)
    assert len(found) == len(set(found))
    assert set(found) == {k.encode() for k in expected}


def scan_all(client: redis.Redis, max_calls: int = 10_000, **options: Any) -> list[bytes]:
    """Drive SCAN from cursor 0 to 0, collecting keys (bounded number of calls)."""
    keys: list[bytes] = []
    cursor = 0
    for _ in range(max_calls):
        cursor, batch = client.scan(cursor, **options)
        keys.extend(batch)
        if cursor == 0:
            return keys
    raise AssertionError(f"SCAN did not finish within {max_calls} calls")


@pytest.fixture
def scan_data(r: redis.Redis) -> dict[str, set[bytes]]:
    """300 user strings, 100 order strings and 100 hashes, by group."""
    users = {f"user:{i}".encode() for i in range(300)}
    orders = {f"order:{i}".encode() for i in range(100)}
    hashes = {f"hash:{i}".encode() for i in range(100)}
    r.mset(dict.fromkeys(users | orders, "v"))
    pipe = r.pipeline(transaction=False)
    for key in hashes:
        pipe.hset(key, "f", "v")
    pipe.execute()
    return {"users": users, "orders": orders, "hashes": hashes}


@pytest.mark.parametrize("count", [1, 7, 100, 10_000])
def test_scan_returns_every_key_exactly_once(r: redis.Redis, scan_data: dict[str, set[bytes]], count: int) -> None:
    """A full SCAN with any COUNT visits each key once."""
    keys = scan_all(r, count=count)
    assert len(keys) == len(set(keys)) == 500
    assert set(keys) == set().union(*scan_data.values())


def test_scan_match_and_type(r: redis.Redis, scan_data: dict[str, set[bytes]]) -> None:
    """MATCH and TYPE filter, alone and combined, still exactly once."""
    users = scan_all(r, match="user:*", count=13)
    assert sorted(users) == sorted(scan_data["users"])
    hashes = scan_all(r, _type="hash", count=13)
    assert sorted(hashes) == sorted(scan_data["hashes"])
    strings = scan_all(r, _type="string", count=13)
    assert sorted(strings) == sorted(scan_data["users"] | scan_data["orders"])
    orders = scan_all(r, match="order:*", _type="string", count=13)
    assert sorted(orders) == sorted(scan_data["orders"])
    assert scan_all(r, match="order:*", _type="hash", count=13) == []
    assert sorted(scan_all(r, match="user:1?", count=50)) == sorted(f"user:1{d}".encode() for d in range(10))


def test_scan_unknown_type_returns_nothing(r: redis.Redis, scan_data: dict[str, set[bytes]]) -> None:
    """An unknown TYPE name filters out every key."""
    assert scan_all(r, _type="nosuchtype", count=100) == []


def test_scan_empty_db(r: redis.Redis) -> None:
    """SCAN on an empty database finishes at once with no keys."""
    assert r.scan(0) == (0, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("abc",), "invalid cursor", id="cursor-not-a-number"),
        pytest.param(("0", "COUNT", "0"), SYNTAX, id="count-zero"),
        pytest.param(("0", "COUNT", "abc"), NOT_INTEGER, id="count-not-a-number"),
        pytest.param(("0", "MATCH"), SYNTAX, id="match-without-pattern"),
        pytest.param(("0", "BOGUS", "x"), SYNTAX, id="unknown-option"),
    ],
)
def test_scan_errors(r: redis.Redis, args: tuple[str, ...], message: str) -> None:
    """SCAN argument errors."""
    assert error_of(r, "SCAN", *args) == message


def test_rename(r: redis.Redis) -> None:
    """RENAME moves the value, overwriting the destination."""
    r.mset({"a": "1", "b": "2"})
    assert r.rename("a", "b") is True
    assert r.mget("a", "b") == [None, b"1"]
    assert r.rename("b", "b") is True
    assert r.get("b") == b"1"
    assert error_of(r, "RENAME", "missing", "x") == "no such key"
    assert r.exists("x") == 0


def test_renamenx(r: redis.Redis) -> None:
    """RENAMENX refuses an existing destination (including itself)."""
    r.mset({"a": "1", "b": "2"})
    assert r.renamenx("a", "b") is False
    assert r.mget("a", "b") == [b"1", b"2"]
    assert r.renamenx("a", "a") is False
    assert r.renamenx("a", "c") is True
    assert r.mget("a", "c") == [None, b"1"]
    assert error_of(r, "RENAMENX", "missing", "x") == "no such key"


def test_randomkey(r: redis.Redis) -> None:
    """RANDOMKEY is nil on an empty db and otherwise returns existing keys."""
    assert r.randomkey() is None
    keys = {b"a", b"b", b"c"}
    r.mset(dict.fromkeys(keys, "v"))
    seen = {r.randomkey() for _ in range(200)}
    assert seen <= keys
    assert len(seen) > 1, "RANDOMKEY always returned the same key"


# -- databases -------------------------------------------------------------------


def test_sixteen_separate_databases(make_client: ClientFactory) -> None:
    """SELECT 0..15 each see only their own keys."""
    clients = [make_client(db=i) for i in range(16)]
    clients[0].flushall()
    for i, client in enumerate(clients):
        client.set("k", f"db{i}")
        client.set(f"only-in-{i}", "1")
    for i, client in enumerate(clients):
        assert client.get("k") == f"db{i}".encode()
        assert client.dbsize() == 2
        assert client.exists(f"only-in-{(i + 1) % 16}") == 0
    clients[0].flushall()


def test_select_on_one_connection(make_client: ClientFactory) -> None:
    """SELECT switches the connection's keyspace back and forth."""
    client = make_client(single_connection_client=True)
    client.flushall()
    client.set("k", "zero")
    assert client.select(5) is True
    assert client.get("k") is None
    client.set("k", "five")
    assert client.select(0) is True
    assert client.get("k") == b"zero"
    client.flushall()


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("16", "DB index is out of range"),
        ("-1", "DB index is out of range"),
        ("abc", NOT_INTEGER),
    ],
)
def test_select_errors(r: redis.Redis, index: str, message: str) -> None:
    """Only 0..15 exist."""
    assert error_of(r, "SELECT", index) == message


def test_flushdb_only_flushes_current_db(make_client: ClientFactory) -> None:
    """FLUSHDB empties one database; FLUSHALL empties all."""
    db0, db3 = make_client(db=0), make_client(db=3)
    db0.flushall()
    db0.mset({"a": "1", "b": "2"})
    db3.set("c", "3")
    assert db3.flushdb() is True
    assert db3.dbsize() == 0
    assert db0.dbsize() == 2
    db3.set("c", "3")
    assert db0.flushall() is True
    assert db0.dbsize() == 0
    assert db3.dbsize() == 0


def test_dbsize(r: redis.Redis) -> None:
    """DBSIZE counts keys of every type."""
    assert r.dbsize() == 0
    r.mset({"a": "1", "b": "2"})
    r.hset("h", "f", "v")
    assert r.dbsize() == 3
    r.delete("a")
    assert r.dbsize() == 2


# -- connection commands -----------------------------------------------------------


def test_ping_and_echo(r: redis.Redis) -> None:
    """PING/ECHO round-trip, including binary payloads."""
    assert r.ping() is True
    assert r.echo("hello") == b"hello"
    assert r.echo(b"\x00\r\n\xff") == b"\x00\r\n\xff"
    assert r.echo("") == b""


def test_ping_with_argument_is_bulk(raw: RawFactory) -> None:
    """PING with an argument replies with it as a bulk string."""
    conn = raw()
    assert conn.call_raw("PING") == b"+PONG\r\n"
    assert conn.call_raw("PING", "hello") == b"$5\r\nhello\r\n"
    assert conn.call_raw("ECHO", "") == b"$0\r\n\r\n"


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("PING", "a", "b"), "ping"),
        (("ECHO",), "echo"),
        (("ECHO", "a", "b"), "echo"),
        (("GET",), "get"),
        (("SET", "k"), "set"),
        (("DBSIZE", "x"), "dbsize"),
        (("CLIENT",), "client"),
        (("GETRANGE", "k", 0), "getrange"),
    ],
)
def test_wrong_arity(r: redis.Redis, args: tuple[str, ...], name: str) -> None:
    """Wrong argument counts name the command in lower case."""
    assert error_of(r, *args) == f"wrong number of arguments for '{name}' command"


def test_unknown_command(r: redis.Redis) -> None:
    """The unknown-command text quotes the name and the first arguments."""
    assert error_of(r, "foo", "a", "b") == "unknown command 'foo', with args beginning with: 'a' 'b' "
    assert error_of(r, "NOSUCH") == "unknown command 'NOSUCH', with args beginning with: "


def test_auth_without_password_configured(raw: RawFactory) -> None:
    """AUTH <password> on a server without requirepass is an error."""
    conn = raw()
    assert conn.call_raw("AUTH", "foo") == (
        b"-ERR AUTH <password> called without any password configured for the default user. "
        b"Are you sure your configuration is correct?\r\n"
    )
    assert conn.call_raw("AUTH", "someone", "foo") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )
    assert conn.call_raw("PING") == b"+PONG\r\n"


def test_hello_reports_protocol(make_client: ClientFactory, protocol: int) -> None:
    """HELLO <p> replies with the server map; proto and id are exact."""
    client = make_client(single_connection_client=True)
    reply = as_dict(client.execute_command("HELLO", protocol))
    assert {b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"} <= set(reply)
    assert reply[b"proto"] == protocol
    assert reply[b"id"] == client.client_id()
    assert as_bytes(reply[b"mode"]) == b"standalone"
    assert as_bytes(reply[b"role"]) == b"master"
    assert reply[b"modules"] == []
    without_version = as_dict(client.execute_command("HELLO"))
    assert without_version[b"proto"] == protocol


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("4", "NOPROTO unsupported protocol version"),
        ("1", "NOPROTO unsupported protocol version"),
        ("abc", "Protocol version is not an integer or out of range"),
    ],
)
def test_hello_bad_version(r: redis.Redis, version: str, message: str) -> None:
    """Unsupported versions are refused and the connection keeps working."""
    assert error_of(r, "HELLO", version) == message
    assert r.ping() is True


def test_hello_switches_reply_encoding(raw: RawFactory) -> None:
    """After HELLO 3 nil is ``_``, maps are ``%``; HELLO 2 switches back."""
    conn = raw()
    conn.call("DEL", "nokey")
    assert conn.call_raw("GET", "nokey") == b"$-1\r\n"
    hello = conn.call_raw("HELLO", 3)
    assert hello.startswith(b"%7\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in hello
    assert conn.call_raw("GET", "nokey") == b"_\r\n"
    assert conn.call_raw("MGET", "nokey", "nokey") == b"*2\r\n_\r\n_\r\n"
    assert conn.call_raw("PING") == b"+PONG\r\n"
    hello2 = conn.call_raw("HELLO", 2)
    assert hello2.startswith(b"*14\r\n")
    assert b"$5\r\nproto\r\n:2\r\n" in hello2
    assert conn.call_raw("GET", "nokey") == b"$-1\r\n"


def test_client_setname_getname(make_client: ClientFactory) -> None:
    """The name is per connection; empty clears it; spaces are refused."""
    client = make_client(single_connection_client=True)
    other = make_client(single_connection_client=True)
    assert client.execute_command("CLIENT", "GETNAME") is None
    assert client.client_setname("worker-1") is True
    assert as_bytes(client.execute_command("CLIENT", "GETNAME")) == b"worker-1"
    assert other.execute_command("CLIENT", "GETNAME") is None
    assert error_of(client, "CLIENT", "SETNAME", "a b") == (
        "Client names cannot contain spaces, newlines or special characters."
    )
    assert as_bytes(client.execute_command("CLIENT", "GETNAME")) == b"worker-1"
    assert client.client_setname("") is True
    assert client.execute_command("CLIENT", "GETNAME") is None


def test_client_id_list_info(make_client: ClientFactory) -> None:
    """CLIENT ID is unique per connection and shows up in LIST and INFO."""
    a = make_client(single_connection_client=True)
    b = make_client(single_connection_client=True)
    id_a, id_b = a.client_id(), b.client_id()
    assert isinstance(id_a, int)
    assert id_a > 0
    assert id_a != id_b
    assert a.client_id() == id_a
    a.client_setname("conn-a")
    listing = as_bytes(a.execute_command("CLIENT", "LIST"))
    lines = listing.decode().splitlines()
    mine = [line for line in lines if f"id={id_a} " in line]
    assert len(mine) == 1
    assert " name=conn-a " in mine[0]
    assert any(f"id={id_b} " in line for line in lines)
    a.select(2)
    info = as_bytes(a.execute_command("CLIENT", "INFO")).decode()
    assert info.startswith(f"id={id_a} ")
    assert " name=conn-a " in info
    assert " db=2 " in info


def test_client_unknown_subcommand(r: redis.Redis) -> None:
    """Unknown CLIENT subcommands point at CLIENT HELP."""
    assert error_of(r, "CLIENT", "FOO") == "unknown subcommand 'FOO'. Try CLIENT HELP."


def test_info(r: redis.Redis) -> None:
    """INFO has redis_version and per-db key/expire counts."""
    r.mset({"a": "1", "b": "2"})
    r.expire("a", 100)
    info = r.info()
    assert "redis_version" in info
    assert r.info("server")["redis_version"]
    keyspace = r.info("keyspace")
    assert keyspace["db0"]["keys"] == 2
    assert keyspace["db0"]["expires"] == 1


@pytest.mark.parametrize("resp", [2, 3])
def test_info_raw_sections(raw: RawFactory, resp: int) -> None:
    """Raw INFO: section headers present; RESP3 sends a ``txt`` verbatim string."""
    conn = raw()
    conn.call("HELLO", resp)
    conn.send_command("INFO")
    payload = conn.read_raw()
    assert payload.startswith(b"$" if resp == 2 else b"=")
    if resp == 3:
        assert payload.split(b"\r\n", 1)[1].startswith(b"txt:")
    for section in (b"# Server", b"# Clients", b"# Memory", b"# Stats", b"# Keyspace"):
        assert section + b"\r\n" in payload, section
    assert b"\r\nredis_version:" in payload


def test_config_get(r: redis.Redis, server_addr: tuple[str, int]) -> None:
    """CONFIG GET answers known parameters as name/value pairs."""
    assert r.config_get("port") == {"port": str(server_addr[1])}
    assert r.config_get("databases") == {"databases": "16"}
    assert r.config_get("no-such-parameter") == {}


def test_config_set_unknown_parameter(r: redis.Redis) -> None:
    """CONFIG SET of an unknown name is an error naming it."""
    assert error_of(r, "CONFIG", "SET", "no-such-parameter", "1") == (
        "Unknown option or number of arguments for CONFIG SET - 'no-such-parameter'"
    )


def test_command_count_and_info(r: redis.Redis, raw: RawFactory) -> None:
    """COMMAND COUNT is positive; COMMAND INFO describes GET's arity."""
    assert r.command_count() > 20
    info = raw().call("COMMAND", "INFO", "get")
    assert isinstance(info, list)
    assert len(info) == 1
    assert info[0][0] == b"get"
    assert info[0][1] == 2


def test_quit_closes_connection(raw: RawFactory) -> None:
    """QUIT replies +OK and the server closes the connection."""
    conn = raw()
    assert conn.call_raw("QUIT") == b"+OK\r\n"
    conn.assert_closed()


def test_large_value_round_trip(r: redis.Redis) -> None:
    """A 4 MiB value survives SET/GET/STRLEN/GETRANGE."""
    value = os.urandom(4 << 20)
    r.set("big", value)
    assert r.strlen("big") == len(value)
    assert r.get("big") == value
    assert r.getrange("big", 1000, 1999) == value[1000:2000]
