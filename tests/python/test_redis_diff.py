"""Differential tests: the same commands to Debian's redis-server and to Kiwi.

Each file in ``tests/redis-diff/`` holds one command per line (split like a
shell line; ``#`` comments and blank lines skipped). Both servers get the
lines in order on one connection each, and every reply must be byte-for-byte
identical, under RESP2 and under RESP3. A line starting with ``~`` compares
the elements of an aggregate reply ignoring their order.

Every file runs a second time through a follower of a three-node
``kiwi.Cluster`` (writes forwarded to the leader and applied through the
log, reads behind Raft's read barrier), again under RESP2 and RESP3. A
comment ``# cluster-differs: <why>`` right before a line sends it there too
but does not compare its reply: a difference Kiwi has under Raft on
purpose, which README explains.
"""

from __future__ import annotations

import shlex
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import pytest

import kiwi
from kiwitest import reference_redis_server

DIFF_DIR = Path(__file__).resolve().parent.parent / "redis-diff"
FILES = sorted(DIFF_DIR.glob("*.txt"))

Reply = Union[bytes, list["Reply"]]


def encode(args: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Conn:
    """A raw RESP connection that returns each reply's exact bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _line(self, pos: int) -> tuple[bytes, int]:
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end >= 0:
                return self.buf[pos:end], end + 2
            self._fill()

    def _parse(self, pos: int) -> tuple[Reply, int]:
        line, pos = self._line(pos)
        tag, body = line[:1], line[1:]
        if tag in (b"$", b"=", b"!"):
            n = int(body)
            if n < 0:
                return line, pos
            while len(self.buf) < pos + n + 2:
                self._fill()
            return line + b"\r\n" + self.buf[pos : pos + n], pos + n + 2
        if tag in (b"*", b"~", b">", b"%"):
            n = int(body)
            if n < 0:
                return line, pos
            count = n * 2 if tag == b"%" else n
            items: list[Reply] = [line]
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        return line, pos

    def request(self, args: list[str]) -> Reply:
        self.sock.sendall(encode(args))
        reply, pos = self._parse(0)
        self.buf = self.buf[pos:]
        return reply


def normalize(reply: Reply, unordered: bool) -> Reply:
    if unordered and isinstance(reply, list):
        head, rest = reply[0], reply[1:]
        if isinstance(head, bytes) and head[:1] == b"%":
            pairs = sorted(zip(rest[0::2], rest[1::2]), key=repr)
            return [head] + [x for pair in pairs for x in pair]
        return [head] + sorted(rest, key=repr)
    return reply


CLUSTER_DIFFERS = "# cluster-differs:"


def read_lines(path: Path) -> Iterator[tuple[int, bool, bool, list[str]]]:
    """(line number, unordered, compared through a cluster, arguments)."""
    # surrogateescape: a reproducer may hold bytes that are not UTF-8
    # (tools/cmdfuzz.py writes them raw); encode() turns them back.
    cluster_differs = False
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="surrogateescape").splitlines(), 1):
        line = raw.strip()
        if line.startswith(CLUSTER_DIFFERS):
            cluster_differs = True
            continue
        if not line or line.startswith("#"):
            continue
        unordered = line.startswith("~")
        yield number, unordered, not cluster_differs, shlex.split(line.lstrip("~"))
        cluster_differs = False


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    """A throwaway Debian redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


def test_there_are_command_files() -> None:
    assert FILES, f"no command files in {DIFF_DIR}"


@pytest.fixture(scope="module")
def cluster_follower_port() -> Iterator[int]:
    """A follower's port in a three-node cluster (its writes go through the leader)."""
    with kiwi.Cluster(3) as cluster:
        leader = cluster.wait_for_leader()
        follower = next(node for node in cluster.nodes if node.index != leader)
        yield follower.port


def compare_file(path: Path, protocol: int, reference_port: int, port: int, through_cluster: bool) -> None:
    ref, mine = Conn(reference_port), Conn(port)
    try:
        for conn in (ref, mine):
            conn.request(["HELLO", str(protocol)])
            conn.request(["FLUSHALL"])
        differences = []
        for number, unordered, in_cluster, args in read_lines(path):
            expected = normalize(ref.request(args), unordered)
            got = normalize(mine.request(args), unordered)
            if expected != got and (in_cluster or not through_cluster):
                differences.append(f"{path.name}:{number} {args!r}\n  redis: {expected!r}\n  kiwi:  {got!r}")
        assert not differences, "\n".join(differences)
    finally:
        ref.close()
        mine.close()


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_replies_match_redis(path: Path, protocol: int, reference_port: int, kiwi_port: int) -> None:
    compare_file(path, protocol, reference_port, kiwi_port, through_cluster=False)
    # Each command touched only keys it locked (storage/locks.rs).
    conn = Conn(kiwi_port)
    try:
        stats = conn.request(["INFO", "stats"])
    finally:
        conn.close()
    assert isinstance(stats, bytes) and b"kiwi_lock_scope_misses:0\r\n" in stats


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_replies_match_redis_through_a_cluster(
    path: Path, protocol: int, reference_port: int, cluster_follower_port: int
) -> None:
    compare_file(path, protocol, reference_port, cluster_follower_port, through_cluster=True)


def test_cluster_differences_are_few() -> None:
    """The lines not compared through a cluster stay a short, explained list."""
    marked = [(path.name, number) for path in FILES for number, _, in_cluster, _ in read_lines(path) if not in_cluster]
    assert len(marked) <= 25, marked


# Read commands whose key lookups Redis counts in INFO's keyspace_hits and
# keyspace_misses (lookupKeyRead): a key of another type is a hit, then
# WRONGTYPE. Every one runs against a key of each type and a missing one.
COUNTED_READS = [
    ["GET", "{}"],
    ["STRLEN", "{}"],
    ["HGET", "{}", "f"],
    ["HLEN", "{}"],
    ["HGETALL", "{}"],
    ["HRANDFIELD", "{}"],
    ["HRANDFIELD", "{}", "2"],
    ["HSCAN", "{}", "0"],
    ["SCARD", "{}"],
    ["SISMEMBER", "{}", "m"],
    ["SMEMBERS", "{}"],
    ["SRANDMEMBER", "{}"],
    ["SRANDMEMBER", "{}", "-2"],
    ["SSCAN", "{}", "0"],
    ["SINTER", "{}"],
    ["LLEN", "{}"],
    ["LINDEX", "{}", "0"],
    ["LRANGE", "{}", "0", "-1"],
    ["LPOS", "{}", "x"],
    ["ZCARD", "{}"],
    ["ZSCORE", "{}", "m"],
    ["ZRANK", "{}", "m"],
    ["ZRANGE", "{}", "0", "-1"],
    ["ZCOUNT", "{}", "0", "1"],
    ["ZLEXCOUNT", "{}", "-", "+"],
    ["ZRANDMEMBER", "{}"],
    ["ZRANDMEMBER", "{}", "2", "WITHSCORES"],
    ["ZSCAN", "{}", "0"],
    ["ZUNION", "1", "{}"],
    ["ZINTERCARD", "1", "{}"],
    ["XLEN", "{}"],
    ["XRANGE", "{}", "-", "+"],
    ["XREVRANGE", "{}", "+", "-"],
    ["XREAD", "STREAMS", "{}", "{}", "0", "0"],
    ["XINFO", "STREAM", "{}"],
    ["XPENDING", "{}", "g"],
    ["XACK", "{}", "g", "1-1"],
    ["XCLAIM", "{}", "g", "c", "0", "1-1"],
    ["XAUTOCLAIM", "{}", "g", "c", "0", "0"],
]

KEYS_OF_EACH_TYPE = [
    ["SET", "str", "v"],
    ["HSET", "hash", "f", "v"],
    ["SADD", "set", "m"],
    ["RPUSH", "list", "x"],
    ["ZADD", "zset", "1", "m"],
    ["XADD", "stream", "1-1", "f", "v"],
]


def keyspace_counts(conn: Conn) -> tuple[int, int]:
    info = conn.request(["INFO", "stats"])
    assert isinstance(info, bytes)
    fields = dict(line.split(b":", 1) for line in info.split(b"\r\n") if b":" in line)
    return int(fields[b"keyspace_hits"]), int(fields[b"keyspace_misses"])


def test_keyspace_hits_match_redis(reference_port: int, kiwi_port: int) -> None:
    ref, mine = Conn(reference_port), Conn(kiwi_port)
    try:
        for conn in (ref, mine):
            conn.request(["FLUSHALL"])
            for setup in KEYS_OF_EACH_TYPE:
                conn.request(setup)
        differences = []
        for template in COUNTED_READS:
            for key in [setup[1] for setup in KEYS_OF_EACH_TYPE] + ["missing"]:
                args = [a.format(key) for a in template]
                deltas = []
                for conn in (ref, mine):
                    before = keyspace_counts(conn)
                    conn.request(args)
                    after = keyspace_counts(conn)
                    deltas.append((after[0] - before[0], after[1] - before[1]))
                if deltas[0] != deltas[1]:
                    differences.append(f"{args!r}: redis (hits, misses) {deltas[0]}, kiwi {deltas[1]}")
        assert not differences, "\n".join(differences)
    finally:
        ref.close()
        mine.close()


def unordered_subcommands(reply: Reply) -> Reply:
    """A COMMAND INFO / DOCS reply with its subcommands sorted: Redis lists
    them in its dict's order, which changes from one process to the next."""
    if not isinstance(reply, list) or len(reply) < 2:
        return reply
    entry = reply[1]
    if isinstance(entry, list) and len(entry) == 11 and isinstance(entry[10], list):
        subs = entry[10]
        entry = entry[:10] + [[subs[0]] + sorted(subs[1:], key=repr)]
        return [reply[0], entry] + reply[2:]
    docs = reply[2] if len(reply) > 2 else None
    if isinstance(docs, list):
        fields = docs[1:]
        for i in range(0, len(fields) - 1, 2):
            if fields[i] == b"$11\r\nsubcommands" and isinstance(fields[i + 1], list):
                subs = fields[i + 1]
                pairs = sorted(zip(subs[1::2], subs[2::2]), key=repr)
                fields[i + 1] = [subs[0]] + [x for pair in pairs for x in pair]
        return [reply[0], reply[1], [docs[0]] + fields]
    return reply


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_command_info_and_docs_match_redis_for_every_command(
    protocol: int, reference_port: int, kiwi_port: int
) -> None:
    """COMMAND INFO and COMMAND DOCS of each command Kiwi runs are Redis's
    (regenerate src/cmd/redis_commands.resp with tools/probe_commands.py
    after adding a command)."""
    ref, mine = Conn(reference_port), Conn(kiwi_port)
    try:
        for conn in (ref, mine):
            conn.request(["HELLO", str(protocol)])
        names = mine.request(["COMMAND", "LIST"])
        assert isinstance(names, list)
        differences = []
        for item in names[1:]:
            assert isinstance(item, bytes)
            name = item.split(b"\r\n", 1)[1].decode()
            if "." in name:
                continue  # Kiwi's own (RAFT.*)
            for sub in ("INFO", "DOCS"):
                expected = unordered_subcommands(ref.request(["COMMAND", sub, name]))
                got = unordered_subcommands(mine.request(["COMMAND", sub, name]))
                if expected != got:
                    differences.append(f"COMMAND {sub} {name}")
        assert not differences, differences
    finally:
        ref.close()
        mine.close()
