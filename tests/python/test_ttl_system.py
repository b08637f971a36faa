"""Expiry: EXPIRE family with NX/XX/GT/LT, TTL queries, SET/GETEX/SETEX
expiry options, lazy and active expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from kiwitest import wait_until

#: Also run through the leader and a follower of a three-node cluster (conftest).
pytestmark = pytest.mark.cluster_targets

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
NOT_INTEGER = "value is not an integer or out of range"
SYNTAX = "syntax error"
INCOMPATIBLE = "NX and XX, GT or LT options at the same time are not compatible"
GT_LT = "GT and LT options at the same time are not compatible"
#: 2100-01-01T00:00:00Z, far enough in the future for absolute deadlines.
FAR_FUTURE_S = 4_102_444_800


def invalid_expire(command: str) -> str:
    """Redis's message for an out-of-range expire argument."""
    return f"invalid expire time in '{command}' command"


def now_ms() -> int:
    """Wall-clock milliseconds (server and tests share the machine's clock)."""
    return int(time.time() * 1000)


def error_of(r: redis.Redis, *args: object) -> str:
    """Run a command that must fail and return the error text."""
    with pytest.raises(redis.ResponseError) as exc:
        r.execute_command(*args)
    return str(exc.value)


# -- TTL queries ---------------------------------------------------------------


def test_ttl_queries_on_missing_key_return_minus_two(r: redis.Redis) -> None:
    """TTL, PTTL, EXPIRETIME and PEXPIRETIME all answer -2 for no key."""
    assert r.ttl("nokey") == -2
    assert r.pttl("nokey") == -2
    assert r.expiretime("nokey") == -2
    assert r.execute_command("PEXPIRETIME", "nokey") == -2


def test_ttl_queries_on_persistent_key_return_minus_one(r: redis.Redis) -> None:
    """A key without expiry answers -1 everywhere."""
    r.set("k", "v")
    assert r.ttl("k") == -1
    assert r.pttl("k") == -1
    assert r.expiretime("k") == -1
    assert r.execute_command("PEXPIRETIME", "k") == -1


def test_expire_and_pexpire_set_relative_ttl(r: redis.Redis) -> None:
    """EXPIRE counts seconds, PEXPIRE milliseconds."""
    r.mset({"s": "v", "ms": "v"})
    assert r.expire("s", 100) is True
    assert r.pexpire("ms", 50_000) is True
    assert 95 <= r.ttl("s") <= 100
    assert 95_000 < r.pttl("s") <= 100_000
    assert 45_000 < r.pttl("ms") <= 50_000
    assert 45 <= r.ttl("ms") <= 50


def test_expireat_round_trips_through_expiretime(r: redis.Redis) -> None:
    """EXPIREAT stores the exact absolute deadline."""
    r.set("k", "v")
    assert r.expireat("k", FAR_FUTURE_S) is True
    assert r.expiretime("k") == FAR_FUTURE_S
    assert r.execute_command("PEXPIRETIME", "k") == FAR_FUTURE_S * 1000


@pytest.mark.parametrize(
    ("deadline_ms", "expected_s"),
    [
        pytest.param(FAR_FUTURE_S * 1000 + 499, FAR_FUTURE_S, id="rounds-down"),
        pytest.param(FAR_FUTURE_S * 1000 + 500, FAR_FUTURE_S + 1, id="rounds-half-up"),
        pytest.param(FAR_FUTURE_S * 1000 + 999, FAR_FUTURE_S + 1, id="rounds-up"),
    ],
)
def test_pexpireat_round_trips_and_expiretime_rounds(r: redis.Redis, deadline_ms: int, expected_s: int) -> None:
    """PEXPIRETIME is exact; EXPIRETIME rounds milliseconds to nearest second."""
    r.set("k", "v")
    assert r.pexpireat("k", deadline_ms) is True
    assert r.execute_command("PEXPIRETIME", "k") == deadline_ms
    assert r.expiretime("k") == expected_s


@pytest.mark.parametrize("command", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_family_on_missing_key_returns_zero(r: redis.Redis, command: str) -> None:
    """No key, nothing to expire: 0, and no key gets created."""
    assert r.execute_command(command, "nokey", 10**12) == 0
    assert r.execute_command(command, "nokey", 10**12, "LT") == 0
    assert r.exists("nokey") == 0


def test_persist(r: redis.Redis) -> None:
    """PERSIST removes a TTL (1) and is a no-op (0) otherwise."""
    r.set("k", "v", ex=100)
    r.set("plain", "v")
    assert r.persist("k") is True
    assert r.ttl("k") == -1
    assert r.persist("k") is False
    assert r.persist("plain") is False
    assert r.persist("nokey") is False
    assert r.get("k") == b"v"


# -- past deadlines delete -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("EXPIRE", -1), id="expire-negative"),
        pytest.param(("EXPIRE", 0), id="expire-zero"),
        pytest.param(("EXPIRE", -(LLONG_MAX // 1000)), id="expire-most-negative-allowed"),
        pytest.param(("PEXPIRE", 0), id="pexpire-zero"),
        pytest.param(("PEXPIRE", LLONG_MIN), id="pexpire-llong-min"),
        pytest.param(("EXPIREAT", 1), id="expireat-epoch"),
        pytest.param(("PEXPIREAT", 1), id="pexpireat-epoch"),
        pytest.param(("EXPIRE", -1, "NX"), id="expire-negative-nx-on-persistent"),
        pytest.param(("EXPIRE", -1, "LT"), id="expire-negative-lt-on-persistent"),
    ],
)
def test_expire_in_the_past_deletes_key(r: redis.Redis, args: tuple[object, ...]) -> None:
    """A deadline already passed deletes the key at once and replies 1."""
    r.set("k", "v")
    command, *rest = args
    assert r.execute_command(command, "k", *rest) == 1
    assert r.exists("k") == 0
    assert r.get("k") is None
    assert r.dbsize() == 0


def test_past_deadline_refused_by_gt_keeps_key(r: redis.Redis) -> None:
    """GT compares first: a past deadline is never greater, so nothing happens."""
    r.set("k", "v", ex=100)
    r.set("plain", "v")
    assert r.expire("k", -1, gt=True) is False
    assert r.expire("plain", -1, gt=True) is False
    assert r.expire("plain", -1, xx=True) is False
    assert r.mget("k", "plain") == [b"v", b"v"]
    assert r.ttl("plain") == -1


# -- NX / XX / GT / LT ---------------------------------------------------------


@dataclass(frozen=True)
class FlagCase:
    """One EXPIRE-flag scenario, in seconds relative to now."""

    initial_ttl: int | None
    flags: tuple[str, ...]
    new_ttl: int
    applied: bool

    @property
    def expected_ttl(self) -> int | None:
        """The TTL (seconds) the key should have afterwards; None = persistent."""
        return self.new_ttl if self.applied else self.initial_ttl


FLAG_CASES = {
    "nx-on-persistent": FlagCase(None, ("NX",), 100, True),
    "nx-on-volatile": FlagCase(100, ("NX",), 200, False),
    "xx-on-persistent": FlagCase(None, ("XX",), 100, False),
    "xx-on-volatile": FlagCase(100, ("XX",), 200, True),
    "gt-on-persistent-is-never-greater": FlagCase(None, ("GT",), 100, False),
    "lt-on-persistent-is-always-less": FlagCase(None, ("LT",), 100, True),
    "gt-larger": FlagCase(100, ("GT",), 200, True),
    "gt-smaller": FlagCase(100, ("GT",), 50, False),
    "lt-smaller": FlagCase(100, ("LT",), 50, True),
    "lt-larger": FlagCase(100, ("LT",), 200, False),
    "xx-gt-larger": FlagCase(100, ("XX", "GT"), 200, True),
    "xx-gt-smaller": FlagCase(100, ("XX", "GT"), 50, False),
    "xx-lt-smaller": FlagCase(100, ("XX", "LT"), 50, True),
    "xx-lt-on-persistent": FlagCase(None, ("XX", "LT"), 50, False),
    "lowercase-nx": FlagCase(None, ("nx",), 100, True),
    "repeated-gt": FlagCase(100, ("GT", "GT"), 200, True),
}

EXPIRE_ARGUMENT: dict[str, Callable[[int], int]] = {
    "EXPIRE": lambda s: s,
    "PEXPIRE": lambda s: s * 1000,
    "EXPIREAT": lambda s: int(time.time()) + s,
    "PEXPIREAT": lambda s: now_ms() + s * 1000,
}


@pytest.mark.parametrize("command", list(EXPIRE_ARGUMENT))
@pytest.mark.parametrize("case", list(FLAG_CASES.values()), ids=list(FLAG_CASES))
def test_expire_flags(r: redis.Redis, command: str, case: FlagCase) -> None:
    """Redis 7 NX/XX/GT/LT semantics; a persistent key counts as infinite TTL."""
    r.set("k", "v")
    if case.initial_ttl is not None:
        r.expire("k", case.initial_ttl)
    reply = r.execute_command(command, "k", EXPIRE_ARGUMENT[command](case.new_ttl), *case.flags)
    assert reply == int(case.applied)
    ttl = r.ttl("k")
    if case.expected_ttl is None:
        assert ttl == -1
    else:
        assert case.expected_ttl - 5 <= ttl <= case.expected_ttl
    assert r.get("k") == b"v"


@pytest.mark.parametrize("command", list(EXPIRE_ARGUMENT))
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(("NX", "XX"), INCOMPATIBLE, id="nx-xx"),
        pytest.param(("XX", "NX"), INCOMPATIBLE, id="xx-nx"),
        pytest.param(("NX", "GT"), INCOMPATIBLE, id="nx-gt"),
        pytest.param(("NX", "LT"), INCOMPATIBLE, id="nx-lt"),
        pytest.param(("GT", "LT"), GT_LT, id="gt-lt"),
        pytest.param(("FOO",), "Unsupported option FOO", id="unknown-option"),
    ],
)
def test_expire_flag_errors(r: redis.Redis, command: str, flags: tuple[str, ...], message: str) -> None:
    """Conflicting or unknown flags are errors and leave the key alone."""
    r.set("k", "v")
    assert error_of(r, command, "k", EXPIRE_ARGUMENT[command](100), *flags) == message
    assert r.ttl("k") == -1


# -- overflow and parsing errors ------------------------------------------------


@pytest.mark.parametrize(
    ("command", "value", "message"),
    [
        pytest.param("EXPIRE", LLONG_MAX, invalid_expire("expire"), id="expire-llong-max"),
        pytest.param("EXPIRE", LLONG_MAX // 1000, invalid_expire("expire"), id="expire-ms-overflow"),
        pytest.param("EXPIRE", LLONG_MIN, invalid_expire("expire"), id="expire-llong-min"),
        pytest.param("EXPIRE", LLONG_MIN // 1000, invalid_expire("expire"), id="expire-ms-underflow"),
        pytest.param("PEXPIRE", LLONG_MAX, invalid_expire("pexpire"), id="pexpire-llong-max"),
        pytest.param("EXPIREAT", LLONG_MAX, invalid_expire("expireat"), id="expireat-llong-max"),
        pytest.param("EXPIRE", LLONG_MAX + 1, NOT_INTEGER, id="expire-beyond-i64"),
        pytest.param("PEXPIREAT", LLONG_MAX + 1, NOT_INTEGER, id="pexpireat-beyond-i64"),
        pytest.param("EXPIRE", "abc", NOT_INTEGER, id="expire-not-a-number"),
        pytest.param("EXPIRE", "1.5", NOT_INTEGER, id="expire-float"),
        pytest.param("PEXPIRE", "", NOT_INTEGER, id="pexpire-empty"),
    ],
)
def test_expire_overflow_and_parse_errors(r: redis.Redis, command: str, value: object, message: str) -> None:
    """Out-of-range or malformed expire values give Redis's exact errors."""
    r.set("k", "v")
    assert error_of(r, command, "k", value) == message
    assert r.get("k") == b"v"
    assert r.ttl("k") == -1


def test_pexpireat_accepts_llong_max(r: redis.Redis) -> None:
    """An absolute millisecond deadline of LLONG_MAX is valid and stored as is."""
    r.set("k", "v")
    assert r.execute_command("PEXPIREAT", "k", LLONG_MAX) == 1
    assert r.execute_command("PEXPIRETIME", "k") == LLONG_MAX
    assert r.pttl("k") > 10**18


def test_expire_wrong_arity(r: redis.Redis) -> None:
    """EXPIRE needs a key and a time."""
    assert error_of(r, "EXPIRE", "k") == "wrong number of arguments for 'expire' command"


# -- SET with expiry -------------------------------------------------------------


def test_set_ex_px_exat_pxat(r: redis.Redis) -> None:
    """Each SET expiry option produces the corresponding deadline."""
    deadline_ms = FAR_FUTURE_S * 1000 + 123
    assert r.set("ex", "v", ex=100) is True
    assert r.set("px", "v", px=100_000) is True
    assert r.set("exat", "v", exat=FAR_FUTURE_S) is True
    assert r.set("pxat", "v", pxat=deadline_ms) is True
    assert 95 <= r.ttl("ex") <= 100
    assert 95_000 < r.pttl("px") <= 100_000
    assert r.expiretime("exat") == FAR_FUTURE_S
    assert r.execute_command("PEXPIRETIME", "pxat") == deadline_ms
    assert r.mget("ex", "px", "exat", "pxat") == [b"v"] * 4


def test_set_lowercase_ex(r: redis.Redis) -> None:
    """Option names are case-insensitive."""
    assert r.execute_command("SET", "k", "v", "ex", "50") is True
    assert 45 <= r.ttl("k") <= 50


@pytest.mark.parametrize("option", ["EXAT", "PXAT"])
def test_set_with_absolute_deadline_in_past_stores_nothing(r: redis.Redis, option: str) -> None:
    """SET ... EXAT/PXAT in the past replies OK but leaves no key behind."""
    r.set("k", "old")
    assert r.execute_command("SET", "k", "v", option, 1) is True
    assert r.exists("k") == 0
    assert r.dbsize() == 0


def test_set_without_keepttl_clears_ttl(r: redis.Redis) -> None:
    """A plain SET makes the key persistent again."""
    r.set("k", "v", ex=100)
    r.set("k", "w")
    assert r.ttl("k") == -1


def test_set_keepttl_keeps_ttl(r: redis.Redis) -> None:
    """KEEPTTL replaces the value but keeps the deadline exactly."""
    r.set("k", "v", pxat=FAR_FUTURE_S * 1000 + 7)
    assert r.set("k", "w", keepttl=True) is True
    assert r.get("k") == b"w"
    assert r.execute_command("PEXPIRETIME", "k") == FAR_FUTURE_S * 1000 + 7


def test_set_keepttl_on_new_key_is_persistent(r: redis.Redis) -> None:
    """KEEPTTL on a new key: nothing to keep."""
    assert r.set("k", "v", keepttl=True) is True
    assert r.ttl("k") == -1


def test_set_get_with_ex_returns_old_value_and_sets_ttl(r: redis.Redis) -> None:
    """GET combines with an expiry option."""
    r.set("k", "old")
    assert r.set("k", "new", ex=100, get=True) == b"old"
    assert r.get("k") == b"new"
    assert 95 <= r.ttl("k") <= 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("EX", 0), invalid_expire("set"), id="ex-zero"),
        pytest.param(("EX", -1), invalid_expire("set"), id="ex-negative"),
        pytest.param(("PX", 0), invalid_expire("set"), id="px-zero"),
        pytest.param(("PX", -5), invalid_expire("set"), id="px-negative"),
        pytest.param(("EXAT", 0), invalid_expire("set"), id="exat-zero"),
        pytest.param(("PXAT", 0), invalid_expire("set"), id="pxat-zero"),
        pytest.param(("EX", LLONG_MAX), invalid_expire("set"), id="ex-llong-max"),
        pytest.param(("EX", LLONG_MAX // 1000), invalid_expire("set"), id="ex-ms-overflow"),
        pytest.param(("PX", LLONG_MAX), invalid_expire("set"), id="px-llong-max"),
        pytest.param(("EX", "abc"), NOT_INTEGER, id="ex-not-a-number"),
        pytest.param(("EX", "1.5"), NOT_INTEGER, id="ex-float"),
        pytest.param(("PXAT", LLONG_MAX + 1), NOT_INTEGER, id="pxat-beyond-i64"),
        pytest.param(("EX", 10, "PX", 10), SYNTAX, id="ex-and-px"),
        pytest.param(("EX", 10, "KEEPTTL"), SYNTAX, id="ex-and-keepttl"),
        pytest.param(("EX",), SYNTAX, id="ex-without-value"),
        pytest.param(("NX", "XX"), SYNTAX, id="nx-and-xx"),
        pytest.param(("BOGUS",), SYNTAX, id="unknown-option"),
    ],
)
def test_set_expiry_errors(r: redis.Redis, args: tuple[object, ...], message: str) -> None:
    """Bad SET expiry options fail with Redis's text and change nothing."""
    r.set("k", "keep")
    assert error_of(r, "SET", "k", "new", *args) == message
    assert r.get("k") == b"keep"
    assert r.ttl("k") == -1


# -- SETEX / PSETEX --------------------------------------------------------------


def test_setex_and_psetex(r: redis.Redis) -> None:
    """SETEX/PSETEX set value and TTL, replacing an older TTL."""
    r.set("a", "old", ex=10_000)
    assert r.execute_command("SETEX", "a", 100, "v") is True
    assert r.psetex("b", 100_000, "w") is True
    assert r.mget("a", "b") == [b"v", b"w"]
    assert 95 <= r.ttl("a") <= 100
    assert 95_000 < r.pttl("b") <= 100_000


@pytest.mark.parametrize(
    ("command", "value", "message"),
    [
        pytest.param("SETEX", 0, invalid_expire("setex"), id="setex-zero"),
        pytest.param("SETEX", -1, invalid_expire("setex"), id="setex-negative"),
        pytest.param("SETEX", LLONG_MAX, invalid_expire("setex"), id="setex-llong-max"),
        pytest.param("PSETEX", 0, invalid_expire("psetex"), id="psetex-zero"),
        pytest.param("PSETEX", LLONG_MAX, invalid_expire("psetex"), id="psetex-llong-max"),
        pytest.param("SETEX", "abc", NOT_INTEGER, id="setex-not-a-number"),
        pytest.param("PSETEX", LLONG_MAX + 1, NOT_INTEGER, id="psetex-beyond-i64"),
    ],
)
def test_setex_psetex_errors(r: redis.Redis, command: str, value: object, message: str) -> None:
    """Invalid SETEX/PSETEX times are rejected before anything is written."""
    r.set("k", "keep")
    assert error_of(r, command, "k", value, "new") == message
    assert r.get("k") == b"keep"
    assert r.ttl("k") == -1


# -- GETEX -----------------------------------------------------------------------


def test_getex_without_options_keeps_ttl(r: redis.Redis) -> None:
    """Plain GETEX is a GET."""
    r.set("k", "v", pxat=FAR_FUTURE_S * 1000)
    assert r.getex("k") == b"v"
    assert r.execute_command("PEXPIRETIME", "k") == FAR_FUTURE_S * 1000


def test_getex_options(r: redis.Redis) -> None:
    """EX, PX, EXAT, PXAT and PERSIST each rewrite the deadline."""
    r.set("k", "v")
    assert r.getex("k", ex=100) == b"v"
    assert 95 <= r.ttl("k") <= 100
    assert r.getex("k", px=50_000) == b"v"
    assert 45_000 < r.pttl("k") <= 50_000
    assert r.getex("k", exat=FAR_FUTURE_S) == b"v"
    assert r.expiretime("k") == FAR_FUTURE_S
    assert r.getex("k", pxat=FAR_FUTURE_S * 1000 + 1) == b"v"
    assert r.execute_command("PEXPIRETIME", "k") == FAR_FUTURE_S * 1000 + 1
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1


def test_getex_missing_key_is_nil_and_creates_nothing(r: redis.Redis) -> None:
    """GETEX on a missing key replies nil, even with options."""
    assert r.getex("nokey") is None
    assert r.getex("nokey", ex=100) is None
    assert r.exists("nokey") == 0


def test_getex_with_past_deadline_returns_value_then_deletes(r: redis.Redis) -> None:
    """The value is returned once, then the key is gone."""
    r.set("k", "v")
    assert r.getex("k", exat=1) == b"v"
    assert r.exists("k") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("EX", 0), invalid_expire("getex"), id="ex-zero"),
        pytest.param(("EX", -1), invalid_expire("getex"), id="ex-negative"),
        pytest.param(("PX", 0), invalid_expire("getex"), id="px-zero"),
        pytest.param(("EXAT", 0), invalid_expire("getex"), id="exat-zero"),
        pytest.param(("EX", LLONG_MAX), invalid_expire("getex"), id="ex-llong-max"),
        pytest.param(("EX", "abc"), NOT_INTEGER, id="ex-not-a-number"),
        pytest.param(("PERSIST", "EX", 10), SYNTAX, id="persist-and-ex"),
        pytest.param(("EX", 10, "PX", 10), SYNTAX, id="ex-and-px"),
        pytest.param(("EX",), SYNTAX, id="ex-without-value"),
        pytest.param(("BOGUS",), SYNTAX, id="unknown-option"),
    ],
)
def test_getex_errors(r: redis.Redis, args: tuple[object, ...], message: str) -> None:
    """Bad GETEX options fail with Redis's text and leave the TTL alone."""
    r.set("k", "v")
    assert error_of(r, "GETEX", "k", *args) == message
    assert r.ttl("k") == -1


# -- which writes keep or clear a TTL ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("INCR", "k"), id="incr"),
        pytest.param(("DECR", "k"), id="decr"),
        pytest.param(("INCRBY", "k", 5), id="incrby"),
        pytest.param(("DECRBY", "k", 5), id="decrby"),
        pytest.param(("INCRBYFLOAT", "k", "1.5"), id="incrbyfloat"),
        pytest.param(("APPEND", "k", "0"), id="append"),
        pytest.param(("SETRANGE", "k", 0, "9"), id="setrange"),
        pytest.param(("SET", "k", "7", "KEEPTTL"), id="set-keepttl"),
        pytest.param(("MSETNX", "k", "1", "other", "2"), id="msetnx-refused"),
        pytest.param(("SETNX", "k", "1"), id="setnx-refused"),
        pytest.param(("SET", "k", "1", "NX"), id="set-nx-refused"),
    ],
)
def test_in_place_modifications_keep_ttl(r: redis.Redis, args: tuple[object, ...]) -> None:
    """Commands that modify a value in place keep its deadline exactly."""
    deadline = FAR_FUTURE_S * 1000 + 42
    r.set("k", "10", pxat=deadline)
    r.execute_command(*args)
    assert r.execute_command("PEXPIRETIME", "k") == deadline


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("SET", "k", "1"), id="set"),
        pytest.param(("SET", "k", "1", "XX"), id="set-xx"),
        pytest.param(("SET", "k", "1", "GET"), id="set-get"),
        pytest.param(("GETSET", "k", "1"), id="getset"),
        pytest.param(("MSET", "k", "1"), id="mset"),
        pytest.param(("GETEX", "k", "PERSIST"), id="getex-persist"),
    ],
)
def test_overwrites_clear_ttl(r: redis.Redis, args: tuple[object, ...]) -> None:
    """Commands that replace the value (or PERSIST) drop the deadline."""
    r.set("k", "10", ex=1000)
    r.execute_command(*args)
    assert r.ttl("k") == -1
    assert r.exists("k") == 1


def test_rename_carries_ttl(r: redis.Redis) -> None:
    """RENAME moves the deadline with the value."""
    deadline = FAR_FUTURE_S * 1000 + 5
    r.set("src", "v", pxat=deadline)
    r.rename("src", "dst")
    assert r.execute_command("PEXPIRETIME", "dst") == deadline
    assert r.ttl("src") == -2


# -- expiry actually happens -------------------------------------------------


def test_expired_keys_are_invisible_immediately_after_deadline(r: redis.Redis) -> None:
    """Lazy expiry: once the deadline passed, no read sees the keys.

    A probe key shares the targets' deadline; when the server reports it gone,
    the server's clock is past the deadline, so every following read of the
    targets must miss, whether or not active expiry reclaimed them yet.
    """
    deadline = now_ms() + 200
    targets = [f"t{i}" for i in range(6)]
    for key in [*targets, "probe"]:
        r.set(key, "v", pxat=deadline)
    r.set("survivor", "v")
    assert r.exists(*targets) == len(targets)

    wait_until(lambda: r.exists("probe") == 0, timeout=5, message="probe key never expired")

    assert sorted(r.keys("*")) == [b"survivor"]
    assert r.exists(targets[0]) == 0
    assert r.get(targets[1]) is None
    assert r.mget(targets[2], "survivor") == [None, b"v"]
    assert r.ttl(targets[3]) == -2
    assert r.strlen(targets[4]) == 0
    assert r.type(targets[5]) == b"none"
    # Every target has been looked up, so all are reclaimed by now.
    assert r.dbsize() == 1


def test_expired_key_is_writable_as_new(r: redis.Redis) -> None:
    """SETNX, INCR and APPEND treat an expired key as absent."""
    r.mset({"a": "old", "b": "41", "c": "old"})
    for key in ("a", "b", "c"):
        r.pexpire(key, 50)
    wait_until(lambda: r.exists("a", "b", "c") == 0, timeout=5)
    assert r.setnx("a", "new") is True
    assert r.incr("b") == 1
    assert r.append("c", "x") == 1
    assert r.mget("a", "b", "c") == [b"new", b"1", b"x"]
    assert [r.ttl(k) for k in ("a", "b", "c")] == [-1, -1, -1]


def test_hash_key_expires_too(r: redis.Redis) -> None:
    """Expiry is type-independent."""
    r.hset("h", "f", "v")
    assert r.pexpire("h", 50) is True
    wait_until(lambda: r.exists("h") == 0, timeout=5)
    assert r.hget("h", "f") is None


def test_active_expiry_reclaims_unread_keys(r: redis.Redis) -> None:
    """Keys nobody reads disappear from DBSIZE on their own.

    DBSIZE counts expired keys until they are reclaimed, so this only passes
    if the server expires keys in the background. Nothing touches the keys.
    """
    r.set("long", "v")
    pipe = r.pipeline(transaction=False)
    for i in range(20):
        pipe.set(f"short:{i}", "v", px=50)
    assert pipe.execute() == [True] * 20
    wait_until(lambda: r.dbsize() == 1, timeout=8, message="expired keys never reclaimed")
    assert r.keys("*") == [b"long"]
