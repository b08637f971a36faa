#!/usr/bin/env python3
"""cmdfuzz: random command sequences run on a reference Redis and on Kiwi, replies compared byte for byte.

Usage:
  python tools/cmdfuzz.py --seed N --count M --ref PORT --kiwi PORT [--resp 3] [--out DIR]
  python tools/cmdfuzz.py --ref PORT --kiwi PORT --replay FILE      (run a redis-diff file)
  python tools/cmdfuzz.py --ref PORT --dump-docs                    (refresh cmdfuzz_docs.json)

The grammar is Redis 7.0's own COMMAND DOCS (argument trees: tokens, optional and repeated
arguments, one-of choices, blocks) for every command Kiwi implements, snapshotted in
tools/cmdfuzz_docs.json, plus value pools chosen by argument name and type (scores, lex
bounds, counts, TTLs, huge and negative numbers, binary and empty strings). A sequence
focuses on one or two data types; each type has its own keys, and a few picks cross types
so WRONGTYPE paths run. About one call in eight is then broken on purpose: an argument
dropped, added, duplicated or replaced, or the call cut to the wrong arity.

Sequence I of seed N is generated from its own random stream, so `--seed N --start I
--count 1` replays it. Each sequence runs pipelined on a fresh connection to each server
after FLUSHALL. At the first reply that differs, the sequence is shrunk (delta debugging on
its lines) to a minimal prefix whose last line still gives the same two replies, and the
result is written to --out as a redis-diff file (tests/redis-diff/ format; arguments that
are not printable ASCII are written as raw bytes in single quotes, read back with
surrogateescape). Differences are deduplicated by command and reply kinds.

Left out, or compared loosely, because the reply is legitimately server-specific or random
(see EXCLUDED and mode_of):
  - not generated: INFO, TIME, LASTSAVE, QUIT, COMMAND (COUNT/INFO/DOCS/LIST describe the
    server's own table; only GETKEYS and bad subcommands are generated), CONFIG GET/SET of
    real parameters (only unknown names and bad forms), HELLO with a valid protocol
    version (only invalid versions and options), CLIENT SETINFO/NO-TOUCH (Redis 7.2
    subcommands Kiwi accepts for redis-py), CLIENT KILL/PAUSE/REPLY/TRACKING and other
    subcommands Kiwi does not implement, every HELP subcommand (server-specific text),
    OBJECT IDLETIME (clock), RAFT.* (Kiwi only), SPOP without a count or with a count
    below 1000 (removes random members, so the two keyspaces would diverge), random-member
    counts below -50 (Redis builds the whole reply: -2^63+1 takes gigabytes), blocking
    timeouts that would block for more than 50 ms (0, tiny fractions, large values),
    SETRANGE/SETBIT offsets that allocate more than a few megabytes;
  - compared by shape only (errors, nils and aggregate sizes exact; bulk contents masked):
    SRANDMEMBER/HRANDFIELD/ZRANDMEMBER without a count or with a count below 1000,
    RANDOMKEY, CLIENT ID/INFO/LIST;
  - compared ignoring order: SMEMBERS, SINTER, SUNION, SDIFF, HGETALL, HKEYS, HVALS, KEYS,
    SPOP with a count, the random-member commands with a count of 1000 or more; the
    SCAN family is generated with cursor 0 and COUNT 1000 (one call returns everything)
    and compared with the element list sorted;
  - compared within a tolerance: TTL and EXPIRETIME (1 s), PTTL and PEXPIRETIME (1 s):
    relative expiries are set a few milliseconds apart on the two servers. TTLs are
    otherwise either in the past or at least 100 s away, so nothing expires mid-run.
Inside MULTI only exactly-compared commands are generated (EXEC returns their replies).
A difference in a lex range (ZLEXCOUNT, ZRANGEBYLEX…) over members of unequal scores is
not counted: Redis leaves that reply unspecified (see `unspecified`). Differences that
have a pending reproducer in tests/redis-diff/pending/ are counted apart (see KNOWN).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

DOCS_FILE = Path(__file__).resolve().parent / "cmdfuzz_docs.json"

Reply = Union[bytes, List["Reply"]]
#: Marker replies: the server did not answer in time, or closed the connection.
TIMEOUT = b"<no reply within the timeout>"
CLOSED = b"<connection closed>"
REPLY_TIMEOUT = 3.0

# --------------------------------------------------------------------- RESP


def encode(args: Sequence[bytes]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A raw RESP connection returning each reply's exact bytes (aggregates as
    ``[header, *items]`` so that order-insensitive comparisons can sort them)."""

    def __init__(self, port: int, timeout: float = REPLY_TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.pos = 0

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos : end]
                self.pos = end + 2
                return line
            self._fill()

    def reply(self) -> Reply:
        line = self._line()
        tag, body = line[:1], line[1:]
        if tag in (b"$", b"=", b"!") and body != b"-1":
            n = int(body)
            while len(self.buf) < self.pos + n + 2:
                self._fill()
            data = self.buf[self.pos : self.pos + n]
            self.pos += n + 2
            return line + b"\r\n" + data
        if tag in (b"*", b"~", b">", b"%", b"|") and body != b"-1":
            n = int(body) * (2 if tag in (b"%", b"|") else 1)
            return [line] + [self.reply() for _ in range(n)]
        return line

    def pipeline(self, commands: Sequence[Sequence[bytes]]) -> List[Reply]:
        """Send every command at once, then read one reply per command. A reply
        that does not come in time, or a closed connection, ends the list with a
        marker."""
        out: List[Reply] = []
        try:
            self.sock.sendall(b"".join(encode(c) for c in commands))
            for _ in commands:
                out.append(self.reply())
        except socket.timeout:
            out.append(TIMEOUT)
        except (ConnectionError, OSError):
            out.append(CLOSED)
        return out


# --------------------------------------------------------------- comparison

#: How two replies are compared (see the module docstring).
EXACT, UNORDERED, SCAN, SHAPE, TTL_S, TTL_MS = "exact", "unordered", "scan", "shape", "ttl-s", "ttl-ms"


def sort_items(reply: Reply) -> Reply:
    if not isinstance(reply, list):
        return reply
    head, rest = reply[0], reply[1:]
    if head[:1] in (b"%", b"|"):
        pairs = sorted(zip(rest[0::2], rest[1::2]), key=repr)
        return [head] + [x for pair in pairs for x in pair]
    return [head] + sorted(rest, key=repr)


def mask(reply: Reply) -> Reply:
    if isinstance(reply, list):
        return [reply[0]] + [mask(r) for r in reply[1:]]
    if reply[:1] in (b"$", b"=", b",", b":", b"+", b"(") and reply not in (b"$-1",):
        return reply[:1] + b"?"
    return reply


def normalize(reply: Reply, mode: str) -> Reply:
    if mode == UNORDERED:
        return sort_items(reply)
    if mode == SCAN and isinstance(reply, list) and len(reply) == 3:
        return [reply[0], reply[1], sort_items(reply[2])]
    if mode == SHAPE:
        return mask(reply)
    return reply


def same(a: Reply, b: Reply, mode: str) -> bool:
    if mode in (TTL_S, TTL_MS) and isinstance(a, bytes) and isinstance(b, bytes):
        if a[:1] == b":" and b[:1] == b":" and a != b:
            x, y = int(a[1:]), int(b[1:])
            slack = 1 if mode == TTL_S else 1000
            return x >= 0 and y >= 0 and abs(x - y) <= slack
    return normalize(a, mode) == normalize(b, mode)


def flat(reply: Reply) -> bytes:
    if isinstance(reply, list):
        return b"\r\n".join(flat(r) for r in reply)
    return reply


def reply_kind(reply: Reply) -> str:
    """What a difference is keyed on: an error's text (numbers and quoted
    arguments masked), otherwise the reply's type."""
    if isinstance(reply, list):
        return "aggregate " + reply[0][:1].decode()
    if reply in (TIMEOUT, CLOSED):
        return reply.decode()
    if reply[:1] == b"-":
        text = reply.decode("utf-8", "replace")
        text = re.sub(r"'[^']*'", "'…'", text)
        return re.sub(r"-?\d+", "N", text)
    return reply[:1].decode("latin-1") + ("nil" if reply in (b"$-1", b"*-1", b"_") else "")


# ------------------------------------------------------------------ grammar

STRING, LIST, HASH, SET, ZSET = "string", "list", "hash", "set", "zset"
TYPES = [STRING, LIST, HASH, SET, ZSET]
GROUP_TYPE = {"string": STRING, "bitmap": STRING, "list": LIST, "hash": HASH, "set": SET, "sorted-set": ZSET}
KEYS_OF = {t: [t[0].encode() + b"1", t[0].encode() + b"2"] for t in TYPES}
KEYS_OF[SET] = [b"S1", b"S2"]
#: Keys no type owns: empty, binary, non-UTF-8, glob characters, long.
ODD_KEYS = [b"", b"x", b"\x00", b"\xff\xfe", "é".encode(), b"{t}k", b"a b", b"*", b"[s]1", b"k" * 300, b"s1\x00"]

BIGS = [b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"-9223372036854775809",
        b"18446744073709551616", b"4294967296", b"2147483648", b"-2147483649"]
NOT_INTS = [b"abc", b"", b"1.5", b" 1", b"1 ", b"+1", b"0x10", b"1e3", b"--1", b"\x00"]
BAD_FLOATS = [b"abc", b"", b"nan", b"NaN", b"1e", b"0x10", b" 1", b"1 ", b"(1", b"--1", b"1.5.5", b"\x00"]
VALUES = [b"", b"v", b"abc", b"foobar", b"0", b"1", b"-1", b"10", b"255", b"1.5", b"-2.5e3", b"3.0", b" 1", b"1 ",
          b"+5", b"007", b"-0", b"inf", b"nan", b"\x00\x01", b"\xff\xfe\x80", "é".encode(), b"x" * 45, b"y" * 100,
          b"\xff" * 3, b"a b", b"1e400", b"0.1"] + BIGS[:4]
MEMBERS = [b"a", b"b", b"c", b"d", b"1", b"2", b"10", b"-1", b"", b"\x00", "é".encode(), b"m" * 70, b"A", b"3.0",
           b"\xff"]
SCORES = [b"0", b"1", b"2", b"-1", b"1.5", b"-2.5", b"10", b"100", b"inf", b"-inf", b"+inf", b"1e308", b"-1e308",
          b"0.1", b"3e-5", b"-0", b"1.7976931348623157e308", b"9007199254740993", b"5e-324", b"1e309", b"+1",
          b"1.0", b"0.30000000000000004"]
SCORE_BOUNDS = [b"-inf", b"+inf", b"inf", b"0", b"1", b"(1", b"2", b"(2", b"-1", b"(-1", b"1.5", b"(1.5", b"(-inf",
                b"(+inf", b"10", b"100", b"-0"]
LEX_BOUNDS = [b"-", b"+", b"[a", b"(a", b"[b", b"(b", b"[c", b"(d", b"[1", b"(10", b"[", b"(", b"[\xff", b"[m",
              b"[A"]
BAD_BOUNDS = [b"a", b"abc", b"nan", b"((1", b"", b"-x", b"+x", b"[[", b"1e"]
INDEXES = [b"0", b"1", b"2", b"3", b"-1", b"-2", b"-3", b"5", b"10", b"100", b"-100"]
COUNTS = [b"0", b"1", b"2", b"3", b"5", b"10", b"100", b"-1", b"-2"]
INCRS = [b"1", b"-1", b"0", b"5", b"100", b"-100", b"9223372036854775807", b"-9223372036854775808",
         b"4611686018427387904"]
FLOAT_INCRS = [b"1", b"-1", b"0.1", b"1.5", b"0", b"10", b"-2.5", b"1e308", b"-1e308", b"inf", b"-inf", b"5e-324",
               b"3.0e2", b"0.30000000000000004", b"1e17", b"-0", b"10.50"]
SECONDS = [b"100", b"1000", b"100000", b"0", b"-1", b"-100", b"9223372036854775", b"9223372036854775807",
           b"-9223372036854775808", b"9223372036854776", b"4611686018427387", b"1.5"]
MILLIS = [b"100000", b"1000000", b"100000000", b"0", b"-1", b"-100", b"9223372036854775807",
          b"-9223372036854775808", b"9223372036854775", b"1.5"]
UNIX_TIMES = [b"1", b"1000000000", b"4102444800", b"4102444800123", b"0", b"-1", b"9223372036854775807",
              b"9223372036854775", b"-9223372036854775808", b"253402300799"]
#: Blocking timeouts: short enough to wait at most 20 ms on an empty key, or invalid.
TIMEOUTS = [b"0.01", b"0.01", b"0.02", b"0.015", b"-1", b"-0.5", b"inf", b"-inf", b"1e100", b"abc", b"", b"nan",
            b"0x0.03p0", b"1e400", b"-0.0001", b"1e-5000", b"0.01 "]
PATTERNS = [b"*", b"*1", b"s*", b"?1", b"[a-c]*", b"[^s]*", b"\\*", b"[", b"*[", b"s\\", b"**", b"", b"h?",
            b"[s-z]?", b"*\\", b"[]]*", b"[\\]a]", b"\xff*", "*é*".encode(), b"?", b"a", b"[!a]", b"[a-]*", b"*[a-z"]
DBS = [b"0", b"1", b"15", b"16", b"-1", b"abc", b"9223372036854775808"]
JUNK = [b"foo", b"NX", b"XX", b"GT", b"WITHSCORES", b"LIMIT", b"COUNT", b"BYSCORE", b"REV", b"EX", b"KEEPTTL",
        b"0", b"-1", b"", b"1.5", b"inf", b"a"] + BIGS[:2]
BLOCKING_TIMEOUT_AT = {"blpop": -1, "brpop": -1, "bzpopmin": -1, "bzpopmax": -1, "blmove": 5, "brpoplpush": 3,
                       "blmpop": 1, "bzmpop": 1}

#: Commands never generated, and why.
EXCLUDED = {
    "info": "server-specific text",
    "time": "clock",
    "lastsave": "clock",
    "quit": "closes the connection",
    "raft.info": "Kiwi only",
    "raft.cluster": "Kiwi only",
    "raft.node": "Kiwi only",
    "raft.fault": "Kiwi only",
}

#: Order-insensitive commands.
UNORDERED_CMDS = {"smembers", "sinter", "sunion", "sdiff", "hgetall", "hkeys", "hvals", "keys", "spop"}
SCAN_CMDS = {"scan", "sscan", "hscan", "zscan"}
RANDOM_CMDS = {"srandmember", "hrandfield", "zrandmember"}


def parse_int(b: bytes) -> Optional[int]:
    if re.fullmatch(rb"-?[0-9]+", b) and not re.match(rb"-?0[0-9]", b) and b != b"-0":
        return int(b)
    return None


def parse_float(b: bytes) -> Optional[float]:
    """Roughly what C's strtold accepts (decimal and hexadecimal, inf), or None."""
    try:
        if b.strip() != b or not b:
            return None
        text = b.split(b"\x00", 1)[0].decode("ascii").lower()
        value = float.fromhex(text) if "0x" in text else float(text)
        return None if math.isnan(value) else value
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def scan_cursor(b: bytes) -> Optional[int]:
    """A cursor as Redis reads it (strtoul on a C string), or None if refused."""
    b = b.split(b"\x00", 1)[0]
    m = re.fullmatch(rb"([-+]?)([0-9]+)", b)
    if not b:
        return 0
    if m is None or int(m.group(2)) >= 2**64:
        return None
    return (-int(m.group(2)) if m.group(1) == b"-" else int(m.group(2))) % 2**64


def mode_of(args: Sequence[bytes]) -> str:
    """How the replies to this call are compared."""
    name = args[0].lower().decode("latin-1")
    sub = args[1].lower() if len(args) > 1 else b""
    if name in UNORDERED_CMDS:
        return UNORDERED
    if name in SCAN_CMDS:
        return SCAN
    if name in RANDOM_CMDS:
        count = parse_int(args[2]) if len(args) > 2 else None
        return UNORDERED if count is not None and count >= 1000 else SHAPE
    if name == "randomkey" or (name == "client" and sub in (b"id", b"info", b"list")):
        return SHAPE
    if name in ("ttl", "expiretime"):
        return TTL_S
    if name in ("pttl", "pexpiretime"):
        return TTL_MS
    return EXACT


def safe(args: Sequence[bytes]) -> bool:
    """False for calls whose effect is random, or that would block or allocate
    too long (see the module docstring)."""
    name = args[0].lower().decode("latin-1")
    if name == "spop":
        count = parse_int(args[2]) if len(args) > 2 else None
        return len(args) > 2 and not (count is not None and 0 < count < 1000)
    if name in RANDOM_CMDS and len(args) > 2:
        count = parse_int(args[2])
        return count is None or count >= -50 or count == -(2**63)
    if name in BLOCKING_TIMEOUT_AT and len(args) > 2:
        at = BLOCKING_TIMEOUT_AT[name]
        at = at if at >= 0 else len(args) + at
        if at < 1 or at >= len(args):
            return True
        t = parse_float(args[at])
        if t is None or math.isinf(t) or (t == 0 and re.search(rb"[1-9]", args[at].split(b"e")[0])):
            return True  # refused (+inf and underflow: not a float; huge: negative once in ms)
        ms = math.ceil(t * 1000)
        return ms < 0 or 0 < ms <= 50 or ms >= 2**63  # 0 blocks forever
    if name in SCAN_CMDS:
        at = 1 if name == "scan" else 2  # a resumed scan is implementation-specific
        return len(args) <= at or scan_cursor(args[at]) in (None, 0)
    if name in ("setrange", "setbit") and len(args) == 4:
        offset = parse_int(args[2])
        limit = 1 << 22 if name == "setrange" else 1 << 25
        return offset is None or offset < limit or offset >= (1 << 29 if name == "setrange" else 1 << 32)
    return True


@dataclass
class Ctx:
    """What one call's generation knows: its data type and the numkeys it chose."""

    kind: Optional[str]
    numkeys: Optional[int] = None


class Generator:
    """Random calls from the COMMAND DOCS grammar; one instance per sequence."""

    def __init__(self, docs: Dict[str, dict], rng: random.Random) -> None:
        self.docs = docs
        self.rng = rng
        self.by_type: Dict[Optional[str], List[str]] = {}
        for name, doc in docs.items():
            if name in EXCLUDED:
                continue
            self.by_type.setdefault(GROUP_TYPE.get(doc["group"]), []).append(name)
        for names in self.by_type.values():
            names.sort()

    # -- values

    def pick(self, pool: Sequence[bytes]) -> bytes:
        return self.rng.choice(pool)

    def often(self, good: Sequence[bytes], bad: Sequence[bytes], p_bad: float = 0.1) -> bytes:
        return self.pick(bad if self.rng.random() < p_bad else good)

    def key(self, kind: Optional[str]) -> bytes:
        r = self.rng.random()
        if r < 0.06:
            return self.pick(ODD_KEYS)
        if kind is None or r < 0.14:
            return self.pick(KEYS_OF[self.pick(TYPES)])  # type: ignore[arg-type]
        return self.pick(KEYS_OF[kind])

    def value(self, arg: dict, ctx: Ctx, cmd: str) -> bytes:
        name, typ = arg["name"], arg["type"]
        rng = self.rng
        if typ == "pattern":
            return self.pick(PATTERNS)
        if typ == "unix-time":
            return self.often(UNIX_TIMES, NOT_INTS)
        if name == "timeout":
            return self.pick(TIMEOUTS)
        if typ == "double":
            if name in ("min", "max"):
                return self.often(SCORE_BOUNDS, BAD_BOUNDS)
            if name == "increment":
                return self.often(FLOAT_INCRS, BAD_FLOATS)
            return self.often(SCORES, BAD_FLOATS)
        if typ == "integer":
            if name == "numkeys":
                return b"%d" % (ctx.numkeys or 1)
            if name == "cursor":
                return self.often([b"0"], [b"abc", b"1.5", b"", b"18446744073709551616", b" 0", b"-"], 0.1)
            if name in ("seconds",):
                return self.often(SECONDS, NOT_INTS)
            if name == "milliseconds":
                return self.often(MILLIS, NOT_INTS)
            if name in ("increment", "decrement"):
                return self.often(INCRS, NOT_INTS + BIGS)
            if name == "offset" and cmd in ("setrange", "getbit", "setbit"):
                pool = [b"0", b"1", b"3", b"7", b"8", b"10", b"15", b"64", b"100", b"1000", b"-1"]
                return self.often(pool, NOT_INTS + BIGS + [b"536870912", b"4294967296", b"4294967295"], 0.15)
            if name in ("value", "bit"):
                return self.often([b"0", b"1"], [b"2", b"-1", b"a", b"", b"01"], 0.2)
            if name == "destination-db":
                return self.pick(DBS)
            if name == "weight":
                return self.often([b"1", b"2", b"0", b"-1", b"1.5", b"3"], [b"inf", b"-inf", b"nan", b"abc", b""])
            if name == "client-id":
                return self.pick([b"1", b"0", b"-1", b"abc", b"9223372036854775807"])
            if name == "count" and cmd in RANDOM_CMDS:
                pool = [b"0", b"1", b"2", b"3", b"5", b"-1", b"-3", b"-10", b"1000", b"1000", b"9223372036854775807"]
                return self.often(pool, NOT_INTS + [b"-9223372036854775808", b"-9223372036854775807"])
            if name == "count" and cmd == "spop":
                return self.often([b"1000", b"0"], NOT_INTS + [b"-1", b"9223372036854775807"] + BIGS, 0.3)
            if name == "count" or name in ("limit", "num-matches", "len", "rank"):
                return self.often(COUNTS, NOT_INTS + BIGS)
            return self.often(INDEXES, NOT_INTS + BIGS)
        # strings
        if name in ("member", "field", "element", "pivot"):
            if cmd in ("lpush", "rpush", "lpushx", "rpushx") and rng.random() < 0.2:
                return self.pick(VALUES)
            return self.pick(MEMBERS)
        if name in ("min", "max"):
            return self.often(LEX_BOUNDS, BAD_BOUNDS)
        if name in ("start", "stop"):
            return self.often(INDEXES + SCORE_BOUNDS + LEX_BOUNDS, NOT_INTS)
        if name == "operation":
            return self.pick([b"AND", b"OR", b"XOR", b"NOT", b"and", b"Or", b"foo", b""])
        if name == "type":
            return self.pick([b"string", b"list", b"set", b"zset", b"hash", b"stream", b"foo", b"STRING", b""])
        if name in ("username",):
            return self.pick([b"default", b"nobody", b"", b"x"])
        if name in ("password",):
            return self.pick([b"x", b"", b"pw"])
        if name in ("clientname", "connection-name"):
            return self.pick([b"me", b"a b", b"", b"x-1", b"\xff", b"\x00"])
        if name == "value" and rng.random() < 0.02:
            return b"z" * rng.choice([1000, 5000, 70000])
        return self.pick(VALUES)

    def token(self, tok: str) -> bytes:
        r = self.rng.random()
        if r < 0.15:
            return tok.lower().encode()
        if r < 0.2:
            return tok.capitalize().encode()
        return tok.encode()

    # -- argument trees

    def args(self, spec: Sequence[dict], out: List[bytes], ctx: Ctx, cmd: str) -> None:
        for arg in spec:
            self.arg(arg, out, ctx, cmd)

    def arg(self, arg: dict, out: List[bytes], ctx: Ctx, cmd: str, optional_ok: bool = True) -> None:
        flags = arg.get("flags", [])
        if optional_ok and "optional" in flags and self.rng.random() < 0.5:
            return
        reps = 1
        if "multiple" in flags:
            if arg["type"] == "key" and ctx.numkeys is not None:
                reps = ctx.numkeys
            elif arg["name"] == "weight" and ctx.numkeys is not None and self.rng.random() < 0.9:
                reps = ctx.numkeys
            else:
                reps = 1 + min(int(self.rng.expovariate(0.7)), 6)
        if arg["name"] == "numkeys":
            ctx.numkeys = self.rng.choice([1, 1, 2, 2, 3])
        for i in range(reps):
            if "token" in arg and (i == 0 or "multiple_token" in flags):
                out.append(self.token(arg["token"]))
            typ = arg["type"]
            if typ == "pure-token":
                continue
            if typ == "oneof":
                self.arg(self.rng.choice(arg["arguments"]), out, ctx, cmd, optional_ok=False)
            elif typ == "block":
                self.args(arg["arguments"], out, ctx, cmd)
            elif typ == "key":
                out.append(self.key(ctx.kind))
            else:
                out.append(self.value(arg, ctx, cmd))
        if arg["name"] == "numkeys" and self.rng.random() < 0.08:
            out[-1] = self.pick([b"0", b"-1", b"abc", b"%d" % (ctx.numkeys + 1), b"%d" % (ctx.numkeys - 1)]
                                + BIGS[:2])

    # -- commands Kiwi only partly implements, or whose replies are server-specific

    def special(self, name: str, kind: Optional[str]) -> Optional[List[bytes]]:
        rng = self.rng
        if name == "client":
            sub = rng.choice(["GETNAME", "SETNAME", "SETNAME", "ID", "INFO", "LIST", "NO-EVICT", "foo", "Getname"])
            rest: List[bytes] = []
            if sub.upper() == "SETNAME":
                rest = [self.value({"name": "clientname", "type": "string"}, Ctx(None), name)]
            elif sub == "LIST" and rng.random() < 0.5:
                rest = rng.choice([[b"TYPE", self.pick([b"normal", b"pubsub", b"replica", b"master", b"foo"])],
                                   [b"ID", self.pick([b"abc", b"0", b"-1", b"1"])], [b"foo"]])
            elif sub == "NO-EVICT":
                rest = [self.pick([b"on", b"off", b"foo", b"ON"])]
            return [b"CLIENT", sub.encode()] + rest
        if name == "config":
            return rng.choice([[b"CONFIG", b"GET"], [b"CONFIG", b"GET", b"nosuchparam*"], [b"CONFIG", b"SET"],
                               [b"CONFIG", b"SET", b"nosuchparam", b"1"], [b"CONFIG", b"SET", b"maxmemory"],
                               [b"CONFIG", b"foo"], [b"CONFIG", b"RESETSTAT"], [b"CONFIG", b"REWRITE"],
                               [b"CONFIG", b"RESETSTAT", b"x"], [b"CONFIG"]])
        if name == "object":
            sub = rng.choice([b"ENCODING", b"encoding", b"REFCOUNT", b"FREQ", b"foo"])
            args = [b"OBJECT", sub, self.key(kind)]
            return args if rng.random() < 0.9 else args[: rng.randint(1, 2)] + [b"x", b"y"][: rng.randint(0, 2)]
        if name == "command":
            if rng.random() < 0.2:
                return [b"COMMAND", self.pick([b"foo", b"GETKEYS", b"INFO1"])]
            inner = self.call(rng.choice([n for n in self.docs if n not in EXCLUDED]), kind, top=False)
            return [b"COMMAND", self.token("GETKEYS")] + inner
        if name == "hello":
            proto = self.pick([b"4", b"1", b"0", b"-1", b"abc", b"", b"3.0", b"9223372036854775808"])
            tail = self.pick([[], [b"SETNAME", b"x"], [b"AUTH", b"nobody", b"x"], [b"foo"]])
            if rng.random() < 0.3:  # a valid version with a bad option: refused, no switch
                proto, tail = self.pick([b"2", b"3"]), self.pick([[b"foo"], [b"AUTH", b"nobody", b"x"],
                                                                  [b"SETNAME"], [b"AUTH", b"x"]])
            return [b"HELLO", proto] + tail
        return None

    def call(self, name: str, kind: Optional[str], top: bool = True) -> List[bytes]:
        special = self.special(name, kind)
        if special is not None:
            return special
        doc = self.docs[name]
        ctx = Ctx(GROUP_TYPE.get(doc["group"], kind))
        out = [name.upper().encode() if self.rng.random() < 0.8 else name.encode()]
        self.args(doc.get("arguments", []), out, ctx, name)
        if name in SCAN_CMDS and len(out) > 1 and out[-1] not in (b"COUNT", b"count"):
            # One call must return everything: cursors are implementation-specific.
            out += [b"COUNT", b"1000"] if self.rng.random() < 0.95 else [b"COUNT", self.pick(NOT_INTS + [b"0"])]
        if top and self.rng.random() < 0.12:
            self.mutate(out, doc)
        return out

    def mutate(self, out: List[bytes], doc: dict) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.2 and len(out) > 1:
            del out[rng.randrange(1, len(out))]
        elif r < 0.4:
            out.insert(rng.randrange(1, len(out) + 1), self.pick(JUNK + VALUES))
        elif r < 0.6 and len(out) > 1:
            out[rng.randrange(1, len(out))] = self.pick(JUNK + VALUES + NOT_INTS)
        elif r < 0.75 and len(out) > 1:
            i = rng.randrange(1, len(out))
            out.insert(i, out[i])
        else:  # wrong arity: one short of the minimum, or one over a fixed arity
            arity = doc["arity"]
            n = abs(arity) - 1 if arity < 0 or rng.random() < 0.5 else arity + 1
            del out[max(n, 1):]
            while len(out) < n:
                out.append(self.pick(VALUES))

    def sequence(self, length: int) -> List[List[bytes]]:
        rng = self.rng
        focus = rng.sample(TYPES, rng.choice([1, 1, 2]))
        out: List[List[bytes]] = []
        in_multi = False
        while len(out) < length:
            r = rng.random()
            if r < 0.75:
                kind: Optional[str] = rng.choice(focus)
            elif r < 0.9:
                kind = None
            else:
                kind = rng.choice(TYPES)
            name = rng.choice(self.by_type[kind])
            if name in BLOCKING_TIMEOUT_AT and rng.random() < 0.5:  # slow: redis times out at its hz
                name = rng.choice(self.by_type[kind])
            args = self.call(name, kind)
            if not safe(args) or (in_multi and mode_of(args) != EXACT):
                continue
            lname = args[0].lower()
            if lname == b"multi" and len(args) == 1:
                in_multi = True
            elif lname in (b"exec", b"discard") and len(args) == 1:
                in_multi = False
            out.append(args)
        return out


def load_docs(path: Path = DOCS_FILE) -> Dict[str, dict]:
    return json.loads(path.read_text())


# ------------------------------------------------------------ running, shrinking


@dataclass
class Difference:
    """The first reply that differs in a sequence."""

    lines: List[List[bytes]]  # the sequence up to and including the differing call
    ref: Reply
    kiwi: Reply

    @property
    def call(self) -> List[bytes]:
        return self.lines[-1]

    def key(self) -> Tuple[str, str, str]:
        name = self.call[0].lower().decode("latin-1")
        if name in ("client", "config", "object", "command") and len(self.call) > 1:
            name += "|" + self.call[1].lower().decode("latin-1")
        return name, reply_kind(self.ref), reply_kind(self.kiwi)


@dataclass
class Known:
    """A difference that has a pending reproducer: counted apart, not shrunk."""

    file: str
    matches: Callable[[Difference], bool]


def _after_blocking_wait(d: Difference) -> bool:
    blocking = any(line[0].lower().decode("latin-1") in BLOCKING_TIMEOUT_AT for line in d.lines[:-1])
    size = sum(len(a) + 16 for line in d.lines for a in line)
    return d.kiwi == TIMEOUT and blocking and size > 16000


def _items(reply: Reply) -> List[bytes]:
    return [x for r in reply[1:] for x in _items(r)] if isinstance(reply, list) else [reply]


def _same_but(d: Difference, same_item: Callable[[bytes, bytes], bool]) -> bool:
    """Both replies have one shape and every differing item passes ``same_item``."""
    a, b = _items(d.ref), _items(d.kiwi)
    return (mask(d.ref) == mask(d.kiwi) and len(a) == len(b)
            and all(x == y or same_item(x, y) for x, y in zip(a, b)))


def _negative_zero(x: bytes, y: bytes) -> bool:
    return (x, y) in ((b"$2\r\n-0", b"$1\r\n0"), (b",-0", b",0"))


def _float_text(x: bytes, y: bytes) -> bool:
    fx, fy = parse_float(x.split(b"\r\n")[-1]), parse_float(y.split(b"\r\n")[-1])
    return fx is not None and fx == fy


def _lossy_error(d: Difference) -> bool:
    a, b = d.ref, d.kiwi
    return (isinstance(a, bytes) and isinstance(b, bytes) and a[:1] == b"-" and a != b
            and a.decode("utf-8", "replace").encode() == b)


#: Differences with a reproducer in tests/redis-diff/pending/, not fixed yet
#: (the file says why).
KNOWN: List[Known] = [
    Known("pending/pipeline-after-block.txt", _after_blocking_wait),
    Known("pending/object-encoding.txt",
          lambda d: d.call[0].lower() == b"object" and len(d.call) > 1
          and d.call[1].lower() in (b"encoding", b"refcount")),
    Known("pending/negative-zero-score.txt", lambda d: _same_but(d, _negative_zero)),
    Known("pending/zscan-score-text.txt",
          lambda d: d.call[0].lower() == b"zscan" and _same_but(d, _float_text)),
    Known("pending/error-text-not-utf8.txt", _lossy_error),
]


LEX_CMDS = {b"zlexcount", b"zrangebylex", b"zrevrangebylex", b"zremrangebylex"}


def unspecified(d: Difference, runner: "Runner") -> bool:
    """Whether Redis leaves the differing reply unspecified, asked of the
    reference in the state the sequence left it in:
    - a lex range over a sorted set whose members do not all have the same
      score (Redis's answer then follows its encoding's internals);
    - DBSIZE counting keys that have expired but that Redis has not reclaimed
      yet (SET … EXAT in the past keeps the key until expiry finds it)."""
    call = [a.lower() for a in d.call]
    if call == [b"dbsize"]:
        probe = [[b"SCAN", b"0", b"COUNT", b"1000000"], [b"DBSIZE"]]  # SCAN reclaims expired keys
        return runner.replies(runner.ports[0], d.lines[:-1] + probe)[-1] == d.kiwi
    lex = call[0] in LEX_CMDS or (call[0] in (b"zrange", b"zrangestore") and b"bylex" in call)
    if not lex or len(call) < 3:
        return False
    key = d.call[2] if call[0] == b"zrangestore" else d.call[1]
    probe = runner.replies(runner.ports[0], d.lines[:-1] + [[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]])[-1]
    if not isinstance(probe, list):
        return False
    items = probe[1:]
    if items and isinstance(items[0], list):  # RESP3: [member, score] pairs
        scores = {flat(pair[2]) for pair in items if isinstance(pair, list)}
    else:
        scores = {flat(s) for s in items[1::2]}
    return len(scores) > 1


def known(d: Difference) -> Optional[Known]:
    for k in KNOWN:
        if k.matches(d):
            return k
    return None


class Runner:
    """Runs sequences on both servers, each on fresh connections after FLUSHALL."""

    def __init__(self, ref_port: int, kiwi_port: int, resp: int = 2) -> None:
        self.ports = (ref_port, kiwi_port)
        self.resp = resp
        self.sent = 0

    def replies(self, port: int, lines: Sequence[Sequence[bytes]]) -> List[Reply]:
        conn = Conn(port)
        try:
            setup: List[List[bytes]] = [[b"FLUSHALL"]]
            if self.resp == 3:
                setup.insert(0, [b"HELLO", b"3"])
            got = conn.pipeline(setup)
            if len(got) != len(setup) or any(not isinstance(g, list) and g[:1] in (b"-", b"<") for g in got):
                raise RuntimeError(f"server on port {port} refused the setup: {got!r}")
            self.sent += len(lines)
            return conn.pipeline(lines)
        finally:
            conn.close()

    def first_difference(self, lines: Sequence[Sequence[bytes]]) -> Optional[Difference]:
        a = self.replies(self.ports[0], lines)
        b = self.replies(self.ports[1], lines)
        for i, line in enumerate(lines):
            ra = a[i] if i < len(a) else TIMEOUT
            rb = b[i] if i < len(b) else TIMEOUT
            if ra is TIMEOUT and rb is TIMEOUT:
                return None  # both stuck: nothing after this point is comparable
            if not same(ra, rb, mode_of(line)):
                return Difference([list(x) for x in lines[: i + 1]], ra, rb)
            if ra in (TIMEOUT, CLOSED) or rb in (TIMEOUT, CLOSED):
                return None
        return None

    def shrink(self, d: Difference) -> Difference:
        """Delta debugging on the lines before the differing call: the smallest
        prefix found whose last line is the first to differ, with the same replies."""

        def test(lines: List[List[bytes]]) -> Optional[Difference]:
            got = self.first_difference(lines + [d.call])
            if got is not None and len(got.lines) == len(lines) + 1 and got.key() == d.key():
                return got
            return None

        best = d
        lines = d.lines[:-1]
        n = 2
        while lines:
            chunk = max(1, len(lines) // n)
            reduced = False
            for start in range(0, len(lines), chunk):
                candidate = lines[:start] + lines[start + chunk :]
                got = test(candidate)
                if got is not None:
                    lines, best, reduced = candidate, got, True
                    n = max(n - 1, 2)
                    break
            if not reduced:
                if chunk == 1:
                    break
                n = min(n * 2, len(lines))
        if not lines:
            got = test([])
            if got is not None:
                best = got
        return best


# ------------------------------------------------------------------- files

SAFE_BYTES = re.compile(rb"[A-Za-z0-9_.:{}+\-*/=@%,^?\[\]()!<>&|$#]+")
#: Characters Python's splitlines/strip treat as line or space breaks: such an
#: argument cannot be written in a redis-diff file.
UNWRITABLE = re.compile(rb"[\r\n\x0b\x0c\x1c-\x1e]|\xc2\x85|\xe2\x80[\xa8\xa9]")


def quote(arg: bytes) -> bytes:
    if SAFE_BYTES.fullmatch(arg) and not arg.startswith(b"~"):
        return arg
    return b"'" + arg.replace(b"'", b"'\"'\"'") + b"'"


def format_line(args: Sequence[bytes]) -> bytes:
    prefix = b"" if mode_of(args) == EXACT else b"~"
    return prefix + b" ".join(quote(a) for a in args)


def parse_line(line: bytes) -> List[bytes]:
    text = line.decode("utf-8", "surrogateescape").strip().lstrip("~")
    return [a.encode("utf-8", "surrogateescape") for a in shlex.split(text)]


def read_file(path: Path) -> List[List[bytes]]:
    out = []
    for raw in path.read_bytes().split(b"\n"):
        line = raw.strip()
        if line and not line.startswith(b"#"):
            out.append(parse_line(line))
    return out


def write_reproducer(d: Difference, out_dir: Path, origin: str) -> Optional[Path]:
    if any(UNWRITABLE.search(a) for line in d.lines for a in line):
        return None
    name, _, _ = d.key()
    digest = hashlib.sha1(repr(d.key()).encode()).hexdigest()[:8]
    path = out_dir / f"{re.sub(r'[^a-z0-9]+', '-', name)}-{digest}.txt"
    shown = lambda r: repr(flat(r))[:300]  # noqa: E731
    header = [f"# cmdfuzz: {origin}; the last line's replies differ", f"#   redis: {shown(d.ref)}",
              f"#   kiwi:  {shown(d.kiwi)}"]
    body = b"\n".join(format_line(line) for line in d.lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes("\n".join(header).encode() + b"\n" + body + b"\n")
    return path


# --------------------------------------------------------------------- main


@dataclass
class Stats:
    sequences: int = 0
    commands: int = 0
    differences: Dict[Tuple[str, str, str], Difference] = field(default_factory=dict)
    occurrences: Dict[Tuple[str, str, str], int] = field(default_factory=dict)
    known: Dict[str, int] = field(default_factory=dict)
    unspecified: int = 0
    files: List[Path] = field(default_factory=list)


def sequence_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"cmdfuzz:{seed}:{index}")


def generate(docs: Dict[str, dict], seed: int, index: int, max_len: int = 40) -> List[List[bytes]]:
    rng = sequence_rng(seed, index)
    return Generator(docs, rng).sequence(rng.randint(3, max_len))


def fuzz(seed: int, count: int, ref_port: int, kiwi_port: int, resp: int = 2, start: int = 0,
         out_dir: Optional[Path] = None, duration: Optional[float] = None, max_len: int = 40,
         log: Callable[[str], None] = lambda s: None) -> Stats:
    """Run ``count`` sequences of ``seed`` (from ``start``) on both servers; shrink and
    record each new kind of difference."""
    docs = load_docs()
    runner = Runner(ref_port, kiwi_port, resp)
    stats = Stats()
    deadline = None if duration is None else time.monotonic() + duration
    index = start
    while (count <= 0 or index < start + count) and (deadline is None or time.monotonic() < deadline):
        lines = generate(docs, seed, index, max_len)
        d = runner.first_difference(lines)
        stats.sequences += 1
        if d is not None and unspecified(d, runner):
            stats.unspecified += 1
        elif d is not None:
            k = known(d)
            if k is not None:
                stats.known[k.file] = stats.known.get(k.file, 0) + 1
            else:
                key = d.key()
                stats.occurrences[key] = stats.occurrences.get(key, 0) + 1
                if key not in stats.differences:
                    small = runner.shrink(d)
                    stats.differences[key] = small
                    origin = f"--seed {seed} --start {index} --count 1 --resp {resp}"
                    log(f"difference in sequence {index}: {key}\n  " + "\n  ".join(
                        format_line(x).decode("utf-8", "backslashreplace") for x in small.lines)
                        + f"\n  redis: {flat(small.ref)!r}\n  kiwi:  {flat(small.kiwi)!r}")
                    if out_dir is not None:
                        path = write_reproducer(small, out_dir, origin)
                        if path is not None:
                            stats.files.append(path)
                            log(f"  written to {path}")
        index += 1
    stats.commands = runner.sent // 2
    return stats


def replay(path: Path, ref_port: int, kiwi_port: int, resp: int) -> int:
    runner = Runner(ref_port, kiwi_port, resp)
    lines = read_file(path)
    a, b = runner.replies(ref_port, lines), runner.replies(kiwi_port, lines)
    diffs = 0
    for line, ra, rb in zip(lines, a, b):
        if not same(ra, rb, mode_of(line)):
            diffs += 1
            print(f"{format_line(line)!r}\n  redis: {flat(ra)!r}\n  kiwi:  {flat(rb)!r}")
    print(f"{diffs} differing replies")
    return 1 if diffs else 0


def dump_docs(ref_port: int, kiwi_port: Optional[int]) -> None:
    """Snapshot COMMAND DOCS and arities of the reference for the commands the
    Kiwi server implements (or that the current snapshot lists)."""
    if kiwi_port is not None:
        listed = Conn(kiwi_port).pipeline([[b"COMMAND", b"LIST"]])[0]
        names = [r.split(b"\r\n", 1)[1].decode() for r in listed[1:]]  # type: ignore[union-attr]
    else:
        names = list(load_docs())
    conn = Conn(ref_port)
    conn.pipeline([[b"HELLO", b"3"]])
    docs_reply, info_reply = conn.pipeline([[b"COMMAND", b"DOCS"] + [n.encode() for n in names],
                                            [b"COMMAND", b"INFO"] + [n.encode() for n in names]])

    def value(r: Reply) -> object:
        if isinstance(r, list):
            items = [value(x) for x in r[1:]]
            if r[0][:1] == b"%":
                return dict(zip(items[0::2], items[1::2]))  # type: ignore[arg-type]
            return items
        body = r.split(b"\r\n", 1)[-1] if r[:1] in (b"$", b"=") else r[1:]
        return int(body) if r[:1] == b":" else body.decode()

    keep = ("name", "type", "token", "flags", "arguments")
    strip: Callable[[object], object] = lambda a: (  # noqa: E731
        {k: strip(v) for k, v in a.items() if k in keep} if isinstance(a, dict)
        else [strip(x) for x in a] if isinstance(a, list) else a)
    docs = value(docs_reply)
    arities = {i[0]: i[1] for i in value(info_reply) if i}  # type: ignore[union-attr,index]
    out = {}
    for n in sorted(names):
        if n not in docs:  # type: ignore[operator]
            continue
        d = docs[n]  # type: ignore[index]
        out[n] = {"group": d["group"], "arity": arities[n], "arguments": strip(d.get("arguments", []))}
    DOCS_FILE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(out)} commands written to {DOCS_FILE}")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=int, required=True, help="port of the reference redis-server")
    ap.add_argument("--kiwi", type=int, help="port of the Kiwi server")
    ap.add_argument("--resp", type=int, default=2, choices=(2, 3))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=100, help="sequences to run (0: until --duration)")
    ap.add_argument("--start", type=int, default=0, help="index of the first sequence")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("--max-len", type=int, default=40, help="longest sequence")
    ap.add_argument("--out", type=Path, default=Path("cmdfuzz-out"), help="where reproducers are written")
    ap.add_argument("--replay", type=Path, help="run one redis-diff file instead of fuzzing")
    ap.add_argument("--dump-docs", action="store_true", help="refresh cmdfuzz_docs.json from --ref")
    opts = ap.parse_args(argv)
    if opts.dump_docs:
        dump_docs(opts.ref, opts.kiwi)
        return 0
    if opts.kiwi is None:
        ap.error("--kiwi is required")
    if opts.replay:
        return replay(opts.replay, opts.ref, opts.kiwi, opts.resp)
    began = time.monotonic()
    stats = fuzz(opts.seed, opts.count, opts.ref, opts.kiwi, opts.resp, opts.start, opts.out, opts.duration,
                 opts.max_len, log=lambda s: print(s, flush=True))
    took = time.monotonic() - began
    print(f"{stats.sequences} sequences, {stats.commands} commands in {took:.0f} s; "
          f"{sum(stats.occurrences.values())} differing sequences of {len(stats.differences)} kinds; "
          f"known (pending): {stats.known or 0}; unspecified by Redis: {stats.unspecified}")
    for key, n in sorted(stats.occurrences.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6d}  {key}")
    return 1 if stats.differences else 0


if __name__ == "__main__":
    sys.exit(main())
