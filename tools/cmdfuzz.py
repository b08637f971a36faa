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
(see EXCLUDED, safe and mode_of in tools/cmdfuzz_grammar.py, the generator's half):
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
    SETRANGE/SETBIT offsets that allocate more than a few megabytes, DUMP (Kiwi's
    payloads are other valid encodings; RESTORE is generated: its errors compare);
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
import re
import shlex
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from cmdfuzz_grammar import (
    DOCS_FILE,
    EXACT,
    SCAN,
    SHAPE,
    TTL_MS,
    TTL_S,
    UNORDERED,
    generate,
    load_docs,
    may_be_unspecified,
    mode_of,
    parse_float,
)

Reply = Union[bytes, list["Reply"]]
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

    def pipeline(self, commands: Sequence[Sequence[bytes]]) -> list[Reply]:
        """Send every command at once, then read one reply per command. A reply
        that does not come in time, or a closed connection, ends the list with a
        marker."""
        out: list[Reply] = []
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
    if (
        mode in (TTL_S, TTL_MS)
        and isinstance(a, bytes)
        and isinstance(b, bytes)
        and a[:1] == b":"
        and b[:1] == b":"
        and a != b
    ):
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


# ------------------------------------------------------------ running, shrinking


@dataclass
class Difference:
    """The first reply that differs in a sequence."""

    lines: list[list[bytes]]  # the sequence up to and including the differing call
    ref: Reply
    kiwi: Reply

    @property
    def call(self) -> list[bytes]:
        return self.lines[-1]

    def key(self) -> tuple[str, str, str]:
        name = self.call[0].lower().decode("latin-1")
        if name in ("client", "config", "object", "command") and len(self.call) > 1:
            name += "|" + self.call[1].lower().decode("latin-1")
        return name, reply_kind(self.ref), reply_kind(self.kiwi)


@dataclass
class Known:
    """A difference that has a pending reproducer: counted apart, not shrunk."""

    file: str
    matches: Callable[[Difference], bool]


def _items(reply: Reply) -> list[bytes]:
    return [x for r in reply[1:] for x in _items(r)] if isinstance(reply, list) else [reply]


def _outline(reply: Reply) -> Reply:
    return [reply[0]] + [_outline(r) for r in reply[1:]] if isinstance(reply, list) else b""


def _same_but(d: Difference, same_item: Callable[[bytes, bytes], bool]) -> bool:
    """Both replies have one outline and every differing item passes ``same_item``."""
    return _outline(d.ref) == _outline(d.kiwi) and all(
        x == y or same_item(x, y) for x, y in zip(_items(d.ref), _items(d.kiwi))
    )


def _negative_zero(x: bytes, y: bytes) -> bool:
    return (x, y) in ((b"$2\r\n-0", b"$1\r\n0"), (b",-0", b",0"))


def _float_text(x: bytes, y: bytes) -> bool:
    fx, fy = parse_float(x.split(b"\r\n")[-1]), parse_float(y.split(b"\r\n")[-1])
    return fx is not None and fx == fy


def _lossy_error(x: bytes, y: bytes) -> bool:
    return x[:1] == b"-" and x.decode("utf-8", "replace").encode() == y


#: Differences with a reproducer in tests/redis-diff/pending/, not fixed yet
#: (the file says why).
KNOWN: list[Known] = [
    Known(
        "pending/object-encoding.txt",
        lambda d: (
            d.call[0].lower() == b"object" and len(d.call) > 1 and d.call[1].lower() in (b"encoding", b"refcount")
        ),
    ),
    Known("pending/negative-zero-score.txt", lambda d: _same_but(d, _negative_zero)),
    Known("pending/zscan-score-text.txt", lambda d: d.call[0].lower() == b"zscan" and _same_but(d, _float_text)),
    Known("pending/error-text-not-utf8.txt", lambda d: _same_but(d, _lossy_error)),
]


def unspecified(d: Difference, runner: Runner) -> bool:
    """Whether Redis leaves the differing reply unspecified, asked of the
    reference in the state the sequence left it in:
    - a lex range over a sorted set whose members do not all have the same
      score (Redis's answer then follows its encoding's internals);
    - DBSIZE counting keys that have expired but that Redis has not reclaimed
      yet (SET … EXAT in the past keeps the key until expiry finds it);
    - EXPIRE/PEXPIRE … GT/LT setting a relative expiry within a second of the
      key's: whether it is greater depends on the milliseconds in between."""
    if not may_be_unspecified(d.call):
        return False
    call = [a.lower() for a in d.call]
    if call == [b"dbsize"]:
        probe = [[b"SCAN", b"0", b"COUNT", b"1000000"], [b"DBSIZE"]]  # SCAN reclaims expired keys
        return runner.replies(runner.ports[0], d.lines[:-1] + probe)[-1] == d.kiwi
    if call[0] in (b"expire", b"pexpire"):
        amount = parse_float(call[2])
        pttl = runner.replies(runner.ports[0], d.lines[:-1] + [[b"PTTL", d.call[1]]])[-1]
        if amount is None or not isinstance(pttl, bytes) or pttl[:1] != b":":
            return False
        wanted = amount * (1000 if call[0] == b"expire" else 1)
        return abs(int(pttl[1:]) - wanted) <= 1000
    if len(call) < 3:  # a lex range
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
    return _known_in_exec(d)


def _known_in_exec(d: Difference) -> Optional[Known]:
    """An EXEC whose replies differ only where a queued call's would be known."""
    if d.call[0].lower() != b"exec" or not isinstance(d.ref, list) or not isinstance(d.kiwi, list):
        return None
    starts = [i for i, line in enumerate(d.lines) if line[0].lower() == b"multi"]
    if not starts or len(d.ref) != len(d.kiwi):
        return None
    queued = [x for x in d.lines[starts[-1] + 1 : -1] if x[0].lower() not in (b"multi", b"watch")]
    if len(queued) != len(d.ref) - 1:
        return None
    found = None
    for call, a, b in zip(queued, d.ref[1:], d.kiwi[1:]):
        if a != b:
            found = known(Difference(d.lines[: starts[-1]] + [call], a, b))
            if found is None:
                return None
    return found


class Runner:
    """Runs sequences on both servers, each on fresh connections after FLUSHALL."""

    def __init__(self, ref_port: int, kiwi_port: int, resp: int = 2) -> None:
        self.ports = (ref_port, kiwi_port)
        self.resp = resp
        self.sent = 0

    def replies(self, port: int, lines: Sequence[Sequence[bytes]]) -> list[Reply]:
        conn = Conn(port)
        try:
            setup: list[list[bytes]] = [[b"FLUSHALL"]]
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

        def test(lines: list[list[bytes]]) -> Optional[Difference]:
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


def parse_line(line: bytes) -> list[bytes]:
    text = line.decode("utf-8", "surrogateescape").strip().lstrip("~")
    return [a.encode("utf-8", "surrogateescape") for a in shlex.split(text)]


def read_file(path: Path) -> list[list[bytes]]:
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
    header = [
        f"# cmdfuzz: {origin}; the last line's replies differ",
        f"#   redis: {shown(d.ref)}",
        f"#   kiwi:  {shown(d.kiwi)}",
    ]
    body = b"\n".join(format_line(line) for line in d.lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes("\n".join(header).encode() + b"\n" + body + b"\n")
    return path


# --------------------------------------------------------------------- main


@dataclass
class Stats:
    sequences: int = 0
    commands: int = 0
    differences: dict[tuple[str, str, str], Difference] = field(default_factory=dict)
    occurrences: dict[tuple[str, str, str], int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    unspecified: int = 0
    files: list[Path] = field(default_factory=list)


def fuzz(
    seed: int,
    count: int,
    ref_port: int,
    kiwi_port: int,
    resp: int = 2,
    start: int = 0,
    out_dir: Optional[Path] = None,
    duration: Optional[float] = None,
    max_len: int = 40,
    log: Callable[[str], None] = lambda s: None,
) -> Stats:
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
                    try:
                        small = runner.shrink(d)
                    except OSError as e:  # a server stopped answering (Kiwi died?)
                        stats.differences[key] = d
                        log(f"sequence {index}: {e}; the unshrunk sequence is kept")
                        if out_dir is not None:
                            write_reproducer(d, out_dir, f"--seed {seed} --start {index} --count 1 --resp {resp}")
                        break
                    stats.differences[key] = small
                    origin = f"--seed {seed} --start {index} --count 1 --resp {resp}"
                    log(
                        f"difference in sequence {index}: {key}\n  "
                        + "\n  ".join(format_line(x).decode("utf-8", "backslashreplace") for x in small.lines)
                        + f"\n  redis: {flat(small.ref)!r}\n  kiwi:  {flat(small.kiwi)!r}"
                    )
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
    docs_reply, info_reply = conn.pipeline(
        [[b"COMMAND", b"DOCS"] + [n.encode() for n in names], [b"COMMAND", b"INFO"] + [n.encode() for n in names]]
    )

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
        {k: strip(v) for k, v in a.items() if k in keep}
        if isinstance(a, dict)
        else [strip(x) for x in a]
        if isinstance(a, list)
        else a
    )
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


def main(argv: Optional[list[str]] = None) -> int:
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
    stats = fuzz(
        opts.seed,
        opts.count,
        opts.ref,
        opts.kiwi,
        opts.resp,
        opts.start,
        opts.out,
        opts.duration,
        opts.max_len,
        log=lambda s: print(s, flush=True),
    )
    took = time.monotonic() - began
    print(
        f"{stats.sequences} sequences, {stats.commands} commands in {took:.0f} s; "
        f"{sum(stats.occurrences.values())} differing sequences of {len(stats.differences)} kinds; "
        f"known (pending): {stats.known or 0}; unspecified by Redis: {stats.unspecified}"
    )
    for key, n in sorted(stats.occurrences.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6d}  {key}")
    return 1 if stats.differences else 0


if __name__ == "__main__":
    sys.exit(main())
