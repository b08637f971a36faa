"""The grammar half of tools/cmdfuzz.py: random calls of every command Kiwi implements.

Calls are built from Redis 7.0's COMMAND DOCS argument trees (tools/cmdfuzz_docs.json)
with values picked by argument name and type from the pools below, then sometimes broken
on purpose. `safe` and `mode_of` say which calls may be sent and how their replies are
compared; tools/cmdfuzz.py's docstring lists what is left out and why.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DOCS_FILE = Path(__file__).resolve().parent / "cmdfuzz_docs.json"

#: How two replies are compared (see tools/cmdfuzz.py).
EXACT, UNORDERED, SCAN, SHAPE, TTL_S, TTL_MS = "exact", "unordered", "scan", "shape", "ttl-s", "ttl-ms"

STRING, LIST, HASH, SET, ZSET, STREAM = "string", "list", "hash", "set", "zset", "stream"
TYPES = [STRING, LIST, HASH, SET, ZSET, STREAM]
GROUP_TYPE = {
    "string": STRING,
    "bitmap": STRING,
    "hyperloglog": STRING,
    "list": LIST,
    "hash": HASH,
    "set": SET,
    "sorted-set": ZSET,
    "geo": ZSET,
    "stream": STREAM,
}
KEYS_OF = {t: [t[0].encode() + b"1", t[0].encode() + b"2"] for t in TYPES}
KEYS_OF[SET] = [b"S1", b"S2"]
KEYS_OF[STREAM] = [b"X1", b"X2"]
#: Stream IDs: explicit ones only (a `*` ID comes from the clock, see safe()).
STREAM_IDS = [b"0", b"0-0", b"1", b"1-1", b"1-2", b"2", b"2-*", b"3-0", b"5-5", b"9-*", b"10-1", b"-", b"+", b"$", b">"]
BAD_STREAM_IDS = [b"abc", b"1-x", b"(1-1", b"(", b"-1", b"", b"18446744073709551615-18446744073709551615", b"1-2-3"]
#: Stream commands whose replies hold times (idle, delivery and seen times).
STREAM_TIMED = {"xpending", "xinfo"}
#: Keys no type owns: empty, binary, non-UTF-8, glob characters, long.
ODD_KEYS = [b"", b"x", b"\x00", b"\xff\xfe", "é".encode(), b"{t}k", b"a b", b"*", b"[s]1", b"k" * 300, b"s1\x00"]

BIGS = [
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"4294967296",
    b"2147483648",
    b"-2147483649",
]
NOT_INTS = [b"abc", b"", b"1.5", b" 1", b"1 ", b"+1", b"0x10", b"1e3", b"--1", b"\x00"]
BAD_FLOATS = [b"abc", b"", b"nan", b"NaN", b"1e", b"0x10", b" 1", b"1 ", b"(1", b"--1", b"1.5.5", b"\x00"]
VALUES = [
    b"",
    b"v",
    b"abc",
    b"foobar",
    b"0",
    b"1",
    b"-1",
    b"10",
    b"255",
    b"1.5",
    b"-2.5e3",
    b"3.0",
    b" 1",
    b"1 ",
    b"+5",
    b"007",
    b"-0",
    b"inf",
    b"nan",
    b"\x00\x01",
    b"\xff\xfe\x80",
    "é".encode(),
    b"x" * 45,
    b"y" * 100,
    b"\xff" * 3,
    b"a b",
    b"1e400",
    b"0.1",
] + BIGS[:4]
MEMBERS = [
    b"a",
    b"b",
    b"c",
    b"d",
    b"1",
    b"2",
    b"10",
    b"-1",
    b"",
    b"\x00",
    "é".encode(),
    b"m" * 70,
    b"A",
    b"3.0",
    b"\xff",
]
SCORES = [
    b"0",
    b"1",
    b"2",
    b"-1",
    b"1.5",
    b"-2.5",
    b"10",
    b"100",
    b"inf",
    b"-inf",
    b"+inf",
    b"1e308",
    b"-1e308",
    b"0.1",
    b"3e-5",
    b"-0",
    b"1.7976931348623157e308",
    b"9007199254740993",
    b"5e-324",
    b"1e309",
    b"+1",
    b"1.0",
    b"0.30000000000000004",
]
#: GEO arguments: coordinates inside and just outside Redis's limits, distances.
LONGITUDES = [b"0", b"1", b"-1", b"13.361389", b"15.087269", b"180", b"-180", b"179.9999", b"-0.5", b"100", b"-73.98"]
LATITUDES = [b"0", b"1", b"-1", b"38.115556", b"37.502669", b"85.05112878", b"-85.05112878", b"45", b"-33.9", b"60"]
BAD_COORDS = [b"180.0001", b"-181", b"85.06", b"-90", b"90", b"inf", b"1e400", b"abc", b"", b"nan", b" 1"]
DISTANCES = [b"0", b"1", b"10", b"100", b"200", b"1000", b"5000", b"0.5", b"20000", b"1e7", b"1.5", b"inf"]
BAD_DISTANCES = [b"-1", b"-0.5", b"abc", b"", b"nan", b"1e400", b"-inf"]
SCORE_BOUNDS = [
    b"-inf",
    b"+inf",
    b"inf",
    b"0",
    b"1",
    b"(1",
    b"2",
    b"(2",
    b"-1",
    b"(-1",
    b"1.5",
    b"(1.5",
    b"(-inf",
    b"(+inf",
    b"10",
    b"100",
    b"-0",
]
LEX_BOUNDS = [b"-", b"+", b"[a", b"(a", b"[b", b"(b", b"[c", b"(d", b"[1", b"(10", b"[", b"(", b"[\xff", b"[m", b"[A"]
BAD_BOUNDS = [b"a", b"abc", b"nan", b"((1", b"", b"-x", b"+x", b"[[", b"1e"]
INDEXES = [b"0", b"1", b"2", b"3", b"-1", b"-2", b"-3", b"5", b"10", b"100", b"-100"]
COUNTS = [b"0", b"1", b"2", b"3", b"5", b"10", b"100", b"-1", b"-2"]
INCRS = [
    b"1",
    b"-1",
    b"0",
    b"5",
    b"100",
    b"-100",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"4611686018427387904",
]
FLOAT_INCRS = [
    b"1",
    b"-1",
    b"0.1",
    b"1.5",
    b"0",
    b"10",
    b"-2.5",
    b"1e308",
    b"-1e308",
    b"inf",
    b"-inf",
    b"5e-324",
    b"3.0e2",
    b"0.30000000000000004",
    b"1e17",
    b"-0",
    b"10.50",
]
SECONDS = [b"100", b"1000", b"100000", b"3000"]
ODD_SECONDS = [
    b"0",
    b"-1",
    b"-100",
    b"9223372036854775",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854776",
    b"4611686018427387",
    b"1.5",
]
MILLIS = [b"100000", b"1000000", b"100000000", b"3000000"]
ODD_MILLIS = [b"0", b"-1", b"-100", b"9223372036854775807", b"-9223372036854775808", b"9223372036854775", b"1.5"]
UNIX_TIMES = [
    b"1",
    b"1000000000",
    b"4102444800",
    b"4102444800123",
    b"0",
    b"-1",
    b"9223372036854775807",
    b"9223372036854775",
    b"-9223372036854775808",
    b"253402300799",
]
#: Blocking timeouts: short enough to wait at most 20 ms on an empty key, or invalid.
TIMEOUTS = [b"0.01", b"0.02", b"0.015", b"0x0.03p0"]
BAD_TIMEOUTS = [
    b"-1",
    b"-0.5",
    b"inf",
    b"-inf",
    b"1e100",
    b"abc",
    b"",
    b"nan",
    b"1e400",
    b"-0.0001",
    b"1e-5000",
    b"0.01 ",
]
PATTERNS = [
    b"*",
    b"*1",
    b"s*",
    b"?1",
    b"[a-c]*",
    b"[^s]*",
    b"\\*",
    b"[",
    b"*[",
    b"s\\",
    b"**",
    b"",
    b"h?",
    b"[s-z]?",
    b"*\\",
    b"[]]*",
    b"[\\]a]",
    b"\xff*",
    "*é*".encode(),
    b"?",
    b"a",
    b"[!a]",
    b"[a-]*",
    b"*[a-z",
]
DBS = [b"0", b"1", b"15", b"16", b"-1", b"abc", b"9223372036854775808"]
JUNK = [
    b"foo",
    b"NX",
    b"XX",
    b"GT",
    b"WITHSCORES",
    b"LIMIT",
    b"COUNT",
    b"BYSCORE",
    b"REV",
    b"EX",
    b"KEEPTTL",
    b"0",
    b"-1",
    b"",
    b"1.5",
    b"inf",
    b"a",
] + BIGS[:2]
BLOCKING_TIMEOUT_AT = {
    "blpop": -1,
    "brpop": -1,
    "bzpopmin": -1,
    "bzpopmax": -1,
    "blmove": 5,
    "brpoplpush": 3,
    "blmpop": 1,
    "bzmpop": 1,
}

#: Commands never generated, and why.
EXCLUDED = {
    "info": "server-specific text",
    "slowlog": "durations, timestamps and client addresses",
    "latency": "timings",
    "memory": "sizes are the server's own",
    "debug": "off in redis-server by default (DEBUG tests in test_server_process.py)",
    "save": "writes a checkpoint (test_server_process.py)",
    "bgsave": "writes a checkpoint in the background",
    "shutdown": "stops the servers (admin.txt, test_server_process.py)",
    "role": "replication state",
    "lolwut": "version text",
    "wait": "blocks for its timeout (admin.txt, test_cluster_commands.py)",
    "replicaof": "would make the reference a replica",
    "slaveof": "would make the reference a replica",
    "sync": "streams the reference's replication",
    "psync": "streams the reference's replication",
    "failover": "replication state",
    "migrate": "connects to other servers",
    "bgrewriteaof": "rewrites the reference's files",
    "module": "module loading (replication.txt)",
    "time": "clock",
    "lastsave": "clock",
    "quit": "closes the connection",
    "acl": "changes users, random passwords (tests/redis-diff/acl.txt, test_acl.py)",
    "raft.info": "Kiwi only",
    "raft.cluster": "Kiwi only",
    "raft.node": "Kiwi only",
    "raft.fault": "Kiwi only",
    # Scripting: bodies are programs, not a grammar; covered by
    # tests/redis-diff/scripting.txt, test_scripting.py, test_functions.py.
    "eval": "scripting",
    "evalsha": "scripting",
    "eval_ro": "scripting",
    "evalsha_ro": "scripting",
    "script": "scripting",
    "fcall": "scripting",
    "fcall_ro": "scripting",
    "function": "scripting",
    # Streams every command to the client: tests/python/test_monitor.py.
    "monitor": "a stream of other clients' commands",
    "reset": "drops the connection's protocol and database",
    # Pub/sub: several frames per reply, messages from other connections;
    # compared with Redis in tests/python/test_pubsub_wire.py and
    # tests/redis-diff/pubsub.txt.
    "subscribe": "pub/sub context",
    "psubscribe": "pub/sub context",
    "ssubscribe": "pub/sub context",
    "unsubscribe": "pub/sub context",
    "punsubscribe": "pub/sub context",
    "sunsubscribe": "pub/sub context",
    "publish": "pub/sub (test_pubsub_wire.py)",
    "spublish": "pub/sub (test_pubsub_wire.py)",
    "pubsub": "pub/sub (test_pubsub_wire.py)",
    # Ten million adds, a second or more on each server: run once by
    # tests/redis-diff/hll.txt.
    "pfselftest": "slow self-test",
    # Kiwi's payloads are valid but not byte-identical to Redis's (other
    # encodings); both ways compared in tests/python/test_dump_restore.py.
    # RESTORE stays: its argument, TTL, BUSYKEY and checksum errors compare.
    "dump": "payload bytes differ from Redis's (test_dump_restore.py)",
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
    if name in STREAM_TIMED and (name != "xpending" or len(args) > 3) and (name != "xinfo" or sub != b"groups"):
        return SHAPE
    if name in ("ttl", "expiretime"):
        return TTL_S
    if name in ("pttl", "pexpiretime"):
        return TTL_MS
    return EXACT


def may_be_unspecified(args: Sequence[bytes]) -> bool:
    """Calls whose reply Redis may leave unspecified (cmdfuzz.unspecified
    asks the reference when they differ): lex ranges, DBSIZE, relative
    EXPIRE/PEXPIRE with GT/LT. Inside MULTI, where EXEC carries the reply,
    they are not generated."""
    call = [a.lower() for a in args]
    return (
        call[0] in (b"zlexcount", b"zrangebylex", b"zrevrangebylex", b"zremrangebylex", b"dbsize")
        or (call[0] in (b"zrange", b"zrangestore") and b"bylex" in call)
        or (call[0] in (b"expire", b"pexpire") and bool({b"gt", b"lt"} & set(call[3:])))
    )


def safe(args: Sequence[bytes]) -> bool:
    """False for calls whose effect is random, or that would block or allocate
    too long (see the module docstring)."""
    name = args[0].lower().decode("latin-1")
    lowered = [a.lower() for a in args]
    if name == "xadd" and b"*" in args:
        return False  # the ID comes from the clock: the keyspaces would diverge
    if name in ("xread", "xreadgroup") and b"block" in lowered:
        return False  # may block for its timeout (test_streams.py)
    if name in ("xclaim", "xautoclaim") and len(args) > 4:
        idle = parse_int(args[4])
        if idle is not None and idle > 0:
            return False  # claims by idle time: depends on the clock
    if name in ("xclaim",) and (b"idle" in lowered or b"time" in lowered):
        return False  # sets delivery times from the clock
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
        # A resumed scan, or one whose COUNT may stop it early (a hash table
        # in Redis), is implementation-specific.
        at = 1 if name == "scan" else 2
        if len(args) <= at or scan_cursor(args[at]) is None:
            return True
        count: Optional[bytes] = None
        i = at + 1
        while i + 1 < len(args) and args[i].lower() in (b"count", b"match", b"type"):
            count = args[i + 1] if args[i].lower() == b"count" else count
            i += 2
        if i < len(args):
            return True  # a syntax error
        n = parse_int(count) if count is not None else 10
        return scan_cursor(args[at]) == 0 and (n is None or n < 1 or n >= 1000)
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

    def __init__(self, docs: dict[str, dict], rng: random.Random) -> None:
        self.docs = docs
        self.rng = rng
        #: The data types a sequence works on (two: the second for WRONGTYPE).
        self.focus = rng.sample(TYPES, 2)
        self.by_type: dict[Optional[str], list[str]] = {}
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
        """A key of the call's type, or now and then an odd key or one of another
        type the sequence uses (WRONGTYPE), or of any type."""
        r = self.rng.random()
        if r < 0.05:
            return self.pick(ODD_KEYS)
        if kind is None or r < 0.15:
            types = self.focus if kind is None or r < 0.12 else TYPES
            return self.pick(KEYS_OF[self.pick(types)])
        return self.pick(KEYS_OF[kind])

    def value(self, arg: dict, ctx: Ctx, cmd: str) -> bytes:
        name, typ = arg["name"], arg["type"]
        rng = self.rng
        if typ == "pattern":
            return self.pick(PATTERNS)
        if typ == "unix-time":
            return self.often(UNIX_TIMES, NOT_INTS)
        if name == "timeout":
            return self.often(TIMEOUTS, BAD_TIMEOUTS, 0.35)
        if typ == "double":
            if name == "longitude":
                return self.often(LONGITUDES, BAD_COORDS, 0.15)
            if name == "latitude":
                return self.often(LATITUDES, BAD_COORDS, 0.15)
            if name in ("radius", "width", "height"):
                return self.often(DISTANCES, BAD_DISTANCES, 0.1)
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
                return self.often(SECONDS, ODD_SECONDS + NOT_INTS, 0.3)
            if name == "milliseconds":
                return self.often(MILLIS, ODD_MILLIS + NOT_INTS, 0.3)
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
        if cmd.startswith("x") and name == "min-idle-time":
            return self.often([b"0", b"-1"], [b"abc", b"10", b""], 0.1)
        if cmd.startswith("x") and name in ("group", "groupname"):
            return self.pick([b"g1", b"g1", b"g2", b""])
        if cmd.startswith("x") and name in ("consumer", "consumername"):
            return self.pick([b"c1", b"c2", b"c3"])
        if cmd.startswith("x") and name in ("id", "start", "end", "threshold", "last-id", "max_deleted_entry_id"):
            return self.often(STREAM_IDS, BAD_STREAM_IDS, 0.15)
        if name in ("member", "field", "element", "pivot"):
            if cmd in ("lpush", "rpush", "lpushx", "rpushx") and rng.random() < 0.2:
                return self.pick(VALUES)
            return self.pick(MEMBERS)
        if name in ("min", "max"):
            return self.often(LEX_BOUNDS, BAD_BOUNDS)
        if name in ("start", "stop"):
            return self.often(INDEXES + SCORE_BOUNDS + LEX_BOUNDS, NOT_INTS)
        if name == "subcommand" and cmd == "pfdebug":
            return self.pick([b"GETREG", b"DECODE", b"ENCODING", b"TODENSE", b"decode", b"foo", b""])
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

    def args(self, spec: Sequence[dict], out: list[bytes], ctx: Ctx, cmd: str) -> None:
        for arg in spec:
            self.arg(arg, out, ctx, cmd)

    def arg(self, arg: dict, out: list[bytes], ctx: Ctx, cmd: str, optional_ok: bool = True) -> None:
        flags = arg.get("flags", [])
        if optional_ok and "optional" in flags and self.rng.random() < 0.5:
            return
        reps = 1
        if "multiple" in flags:
            if (arg["type"] == "key" and ctx.numkeys is not None) or (
                arg["name"] == "weight" and ctx.numkeys is not None and self.rng.random() < 0.9
            ):
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
            out[-1] = self.pick([b"0", b"-1", b"abc", b"%d" % (ctx.numkeys + 1), b"%d" % (ctx.numkeys - 1)] + BIGS[:2])

    # -- commands Kiwi only partly implements, or whose replies are server-specific

    def special(self, name: str, kind: Optional[str]) -> Optional[list[bytes]]:
        rng = self.rng
        if name == "client":
            sub = rng.choice(["GETNAME", "SETNAME", "SETNAME", "ID", "INFO", "LIST", "NO-EVICT", "foo", "Getname"])
            rest: list[bytes] = []
            if sub.upper() == "SETNAME":
                rest = [self.value({"name": "clientname", "type": "string"}, Ctx(None), name)]
            elif sub == "LIST" and rng.random() < 0.5:
                rest = rng.choice(
                    [
                        [b"TYPE", self.pick([b"normal", b"pubsub", b"replica", b"master", b"foo"])],
                        [b"ID", self.pick([b"abc", b"0", b"-1", b"1"])],
                        [b"foo"],
                    ]
                )
            elif sub == "NO-EVICT":
                rest = [self.pick([b"on", b"off", b"foo", b"ON"])]
            return [b"CLIENT", sub.encode()] + rest
        if name == "config":
            return rng.choice(
                [
                    [b"CONFIG", b"GET"],
                    [b"CONFIG", b"GET", b"nosuchparam*"],
                    [b"CONFIG", b"SET"],
                    [b"CONFIG", b"SET", b"nosuchparam", b"1"],
                    [b"CONFIG", b"SET", b"maxmemory"],
                    [b"CONFIG", b"foo"],
                    [b"CONFIG", b"RESETSTAT"],
                    [b"CONFIG", b"REWRITE"],
                    [b"CONFIG", b"RESETSTAT", b"x"],
                    [b"CONFIG"],
                ]
            )
        if name == "object":
            sub = rng.choice([b"ENCODING", b"encoding", b"REFCOUNT", b"FREQ", b"foo"])
            args = [b"OBJECT", sub, self.key(kind)]
            return args if rng.random() < 0.9 else args[: rng.randint(1, 2)] + [b"x", b"y"][: rng.randint(0, 2)]
        if name == "command":
            if rng.random() < 0.2:
                return [b"COMMAND", self.pick([b"foo", b"GETKEYS", b"INFO1"])]
            inner = self.call(rng.choice([n for n in self.docs if n not in EXCLUDED]), kind, top=False)
            return [b"COMMAND", self.token(rng.choice(["GETKEYS", "GETKEYSANDFLAGS"]))] + inner
        if name == "hello":
            proto = self.pick([b"4", b"1", b"0", b"-1", b"abc", b"", b"3.0", b"9223372036854775808"])
            tail = self.pick([[], [b"SETNAME", b"x"], [b"AUTH", b"nobody", b"x"], [b"foo"]])
            if rng.random() < 0.3:  # a valid version with a bad option: refused, no switch
                proto, tail = (
                    self.pick([b"2", b"3"]),
                    self.pick([[b"foo"], [b"AUTH", b"nobody", b"x"], [b"SETNAME"], [b"AUTH", b"x"]]),
                )
            return [b"HELLO", proto] + tail
        return None

    def call(self, name: str, kind: Optional[str], top: bool = True) -> list[bytes]:
        special = self.special(name, kind)
        if special is not None:
            return special
        doc = self.docs[name]
        ctx = Ctx(GROUP_TYPE.get(doc["group"], kind))
        out = [name.upper().encode() if self.rng.random() < 0.8 else name.encode()]
        self.args(doc.get("arguments", []), out, ctx, name)
        if name in ("zrange", "zrangestore") and self.rng.random() < 0.85:
            # Start and stop come before the BYSCORE/BYLEX that says what they are.
            at = 3 if name == "zrangestore" else 2
            by = {a.lower() for a in out} & {b"byscore", b"bylex"}
            pool = SCORE_BOUNDS if b"byscore" in by else LEX_BOUNDS if b"bylex" in by else INDEXES
            out[at : at + 2] = [self.pick(pool), self.pick(pool)]
        if name in SCAN_CMDS and len(out) > 1 and out[-1] not in (b"COUNT", b"count"):
            # One call must return everything: cursors are implementation-specific.
            out += [b"COUNT", b"1000"] if self.rng.random() < 0.95 else [b"COUNT", self.pick(NOT_INTS + [b"0"])]
        if top and self.rng.random() < 0.12:
            self.mutate(out, doc)
        return out

    def mutate(self, out: list[bytes], doc: dict) -> None:
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
            del out[max(n, 1) :]
            while len(out) < n:
                out.append(self.pick(VALUES))

    def sequence(self, length: int) -> list[list[bytes]]:
        rng = self.rng
        out: list[list[bytes]] = []
        in_multi = False
        queued = 0  # calls left before a transaction is closed
        while len(out) < length:
            r = rng.random()
            if in_multi and queued == 0:
                args = [self.pick([b"EXEC", b"EXEC", b"EXEC", b"DISCARD", b"exec"])]
                in_multi = False
                out.append(args)
                continue
            if r < 0.65:
                kind: Optional[str] = self.focus[0]
            elif r < 0.78:
                kind = self.focus[1]
            elif r < 0.93:
                kind = None
            else:
                kind = rng.choice(TYPES)
            name = rng.choice(self.by_type[kind])
            if name in BLOCKING_TIMEOUT_AT and rng.random() < 0.75:  # slow: each may wait 10-20 ms
                name = rng.choice(self.by_type[kind])
            args = self.call(name, kind)
            if not safe(args) or (in_multi and (mode_of(args) != EXACT or may_be_unspecified(args))):
                continue
            lname = args[0].lower()
            if lname == b"multi" and len(args) == 1 and not in_multi:
                in_multi, queued = True, rng.randint(1, 6)
            elif lname in (b"exec", b"discard") and len(args) == 1:
                in_multi = False
            elif in_multi:
                queued -= 1
            out.append(args)
        return out


def load_docs(path: Path = DOCS_FILE) -> dict[str, dict]:
    return json.loads(path.read_text())


def sequence_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"cmdfuzz:{seed}:{index}")


def generate(docs: dict[str, dict], seed: int, index: int, max_len: int = 40) -> list[list[bytes]]:
    rng = sequence_rng(seed, index)
    return Generator(docs, rng).sequence(rng.randint(3, max_len))
