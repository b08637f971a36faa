"""MSET, MGET and MSETNX: semantics, sizes, binary safety and arity errors."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import redis

from kiwitest import RawConnection

#: Also run through the leader and a follower of a three-node cluster (conftest).
pytestmark = pytest.mark.cluster_targets

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def arity_error(command: str) -> str:
    """Redis's wrong-arity message (redis-py strips the ``ERR `` prefix)."""
    return f"wrong number of arguments for '{command}' command"


# -- MSET / MGET basics --------------------------------------------------------


def test_mset_then_mget_in_request_order(r: redis.Redis) -> None:
    """MGET answers in argument order, with nil for missing keys."""
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("c", "a", "missing", "b") == [b"3", b"1", None, b"2"]
    assert r.dbsize() == 3


def test_mset_reply_is_simple_ok(raw: Callable[[], RawConnection]) -> None:
    """MSET always replies +OK."""
    conn = raw()
    assert conn.call_raw("MSET", "raw:a", "1", "raw:b", "2") == b"+OK\r\n"
    assert conn.call_raw("DEL", "raw:a", "raw:b") == b":2\r\n"


def test_mset_overwrites_existing_values(r: redis.Redis) -> None:
    """Existing string values are replaced, other keys are untouched."""
    r.mset({"a": "old-a", "b": "old-b", "untouched": "u"})
    assert r.mset({"a": "new-a", "b": "new-b"}) is True
    assert r.mget("a", "b", "untouched") == [b"new-a", b"new-b", b"u"]


def test_mset_clears_ttl_of_overwritten_keys(r: redis.Redis) -> None:
    """Like SET without KEEPTTL, MSET makes an overwritten key persistent."""
    r.set("a", "old", ex=1000)
    r.set("b", "keep", ex=1000)
    r.mset({"a": "new", "c": "fresh"})
    assert r.ttl("a") == -1
    assert r.ttl("c") == -1
    assert 990 <= r.ttl("b") <= 1000
    assert r.get("a") == b"new"


def test_mset_same_key_twice_last_value_wins(r: redis.Redis) -> None:
    """Duplicate keys in one MSET are applied left to right."""
    assert r.execute_command("MSET", "k", "1", "k", "2", "k", "3") is True
    assert r.get("k") == b"3"
    assert r.dbsize() == 1


def test_mset_replaces_hash_key(r: redis.Redis) -> None:
    """MSET over a hash replaces it with a string (and drops its TTL)."""
    r.hset("h", "field", "v")
    r.expire("h", 1000)
    assert r.mset({"h": "now-a-string", "other": "x"}) is True
    assert r.type("h") == b"string"
    assert r.get("h") == b"now-a-string"
    assert r.ttl("h") == -1
    with pytest.raises(redis.ResponseError) as exc:
        r.hget("h", "field")
    assert str(exc.value) == WRONGTYPE


def test_mget_repeated_key_answers_each_time(r: redis.Redis) -> None:
    """A key listed twice is answered twice."""
    r.set("a", "1")
    assert r.mget("a", "a", "nope", "a") == [b"1", b"1", None, b"1"]


def test_mget_non_string_key_is_nil(r: redis.Redis) -> None:
    """MGET never raises WRONGTYPE: a hash reads as nil."""
    r.hset("h", "f", "v")
    r.set("s", "v")
    assert r.mget("h", "s") == [None, b"v"]
    assert r.hget("h", "f") == b"v"


# -- MSETNX ------------------------------------------------------------------


def test_msetnx_sets_all_when_no_key_exists(r: redis.Redis) -> None:
    """MSETNX returns 1 and writes every pair when all keys are new."""
    assert r.msetnx({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget("a", "b", "c") == [b"1", b"2", b"3"]
    assert [r.ttl(k) for k in ("a", "b", "c")] == [-1, -1, -1]


def test_msetnx_touches_nothing_when_one_key_exists(r: redis.Redis) -> None:
    """One existing key makes MSETNX return 0 and write nothing at all."""
    r.set("b", "original", ex=1000)
    assert r.msetnx({"a": "1", "b": "2", "c": "3"}) is False
    assert r.exists("a", "c") == 0
    assert r.get("b") == b"original"
    assert 990 <= r.ttl("b") <= 1000
    assert r.dbsize() == 1


def test_msetnx_blocked_by_existing_hash(r: redis.Redis) -> None:
    """Existence, not type, is what counts: a hash blocks MSETNX too."""
    r.hset("h", "f", "v")
    assert r.msetnx({"new": "1", "h": "2"}) is False
    assert r.type("h") == b"hash"
    assert r.hget("h", "f") == b"v"
    assert r.exists("new") == 0


def test_msetnx_duplicate_new_key_last_value_wins(r: redis.Redis) -> None:
    """A new key listed twice does not block itself; the last value wins."""
    assert r.execute_command("MSETNX", "q", "1", "q", "2") is True
    assert r.get("q") == b"2"


def test_msetnx_replies_integer_0_or_1(raw: Callable[[], RawConnection]) -> None:
    """MSETNX replies with the integers 1 and 0, not +OK or a boolean."""
    conn = raw()
    conn.call("DEL", "nx:a", "nx:b")
    assert conn.call_raw("MSETNX", "nx:a", "1", "nx:b", "2") == b":1\r\n"
    assert conn.call_raw("MSETNX", "nx:b", "x", "nx:c", "y") == b":0\r\n"
    assert conn.call("EXISTS", "nx:c") == 0
    conn.call("DEL", "nx:a", "nx:b")


def test_msetnx_after_expiry_sees_key_as_missing(r: redis.Redis) -> None:
    """An expired key does not block MSETNX."""
    r.set("gone", "old")
    r.pexpireat("gone", 1)  # already in the past: deleted now
    assert r.msetnx({"gone": "new", "x": "1"}) is True
    assert r.get("gone") == b"new"


# -- sizes -------------------------------------------------------------------


def test_mset_ten_thousand_keys_in_one_command(r: redis.Redis) -> None:
    """A 10,000-pair MSET lands completely and MGET returns it in order."""
    mapping = {f"bulk:{i}": f"value:{i}" for i in range(10_000)}
    assert r.mset(mapping) is True
    assert r.dbsize() == 10_000
    assert r.mget(list(mapping)) == [v.encode() for v in mapping.values()]


def test_mset_one_megabyte_value(r: redis.Redis) -> None:
    """A 1 MiB binary value round-trips byte for byte."""
    big = os.urandom(1 << 20)
    assert r.mset({"big": big, "small": "x"}) is True
    assert r.strlen("big") == 1 << 20
    assert r.get("big") == big
    assert r.mget("small", "big") == [b"x", big]


# -- binary safety -----------------------------------------------------------


def test_mset_every_byte_value_as_key_and_value(r: redis.Redis) -> None:
    """All 256 single-byte keys are distinct keys with their own values."""
    mapping = {bytes([b]): bytes([255 - b]) * 3 for b in range(256)}
    assert r.mset(mapping) is True
    assert r.dbsize() == 256
    assert r.mget(list(mapping)) == list(mapping.values())


def test_mset_key_and_value_made_of_all_bytes(r: redis.Redis) -> None:
    """A key and a value containing every byte 0..255 round-trip."""
    everything = bytes(range(256))
    r.mset({everything: everything[::-1], b"plain": everything})
    assert r.get(everything) == everything[::-1]
    assert r.mget(b"plain", everything) == [everything, everything[::-1]]
    assert r.strlen(everything) == 256


def test_mset_nul_and_crlf_inside_keys_and_values(r: redis.Redis) -> None:
    """NUL, CR/LF and protocol-looking bytes are ordinary data."""
    mapping = {
        b"a\x00b": b"\x00",
        b"a\x00c": b"\x00\x00",
        b"line\r\nbreak": b"\r\n",
        b"*1\r\n$4\r\nPING\r\n": b"-ERR not an error\r\n",
    }
    assert r.mset(mapping) is True
    assert r.dbsize() == 4
    assert r.mget(list(mapping)) == list(mapping.values())
    assert r.exists(b"a") == 0


def test_mset_empty_key_and_empty_value(r: redis.Redis) -> None:
    """The empty string is a valid key and a valid value."""
    assert r.mset({b"": b"", b"e": b""}) is True
    assert r.mget(b"", b"e") == [b"", b""]
    assert r.exists(b"") == 1
    assert r.strlen(b"") == 0
    assert r.type(b"") == b"string"
    assert sorted(r.keys("*")) == [b"", b"e"]


# -- arity -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("MSET",), id="mset-no-args"),
        pytest.param(("MSET", "a"), id="mset-key-only"),
        pytest.param(("MSET", "a", "1", "b"), id="mset-odd-args"),
        pytest.param(("MSETNX",), id="msetnx-no-args"),
        pytest.param(("MSETNX", "a"), id="msetnx-key-only"),
        pytest.param(("MSETNX", "a", "1", "b"), id="msetnx-odd-args"),
        pytest.param(("MGET",), id="mget-no-args"),
    ],
)
def test_wrong_arity_exact_error_and_no_write(r: redis.Redis, args: tuple[str, ...]) -> None:
    """Wrong arity is rejected with Redis's text and writes nothing."""
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command(*args)
    assert str(exc.value) == arity_error(args[0].lower())
    assert r.dbsize() == 0


def test_wrong_arity_raw_reply(raw: Callable[[], RawConnection]) -> None:
    """The error is an ``-ERR`` reply and the connection stays usable."""
    conn = raw()
    assert conn.call_raw("MSET", "a", "1", "b") == (b"-ERR wrong number of arguments for 'mset' command\r\n")
    assert conn.call_raw("PING") == b"+PONG\r\n"
