"""The command-layer fuzzer (tools/cmdfuzz.py), bounded for CI.

Fixed seeds of random command sequences from Redis 7.0's grammar run on
Debian's redis-server and on Kiwi; every reply must match (differences that
have a reproducer in tests/redis-diff/pending/ are counted apart, see
``cmdfuzz.KNOWN``). About 30 s in all. The fuzzer's own parts (file format,
shrinking) are checked without servers.
"""

from __future__ import annotations

import random
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

import pytest
import redis

import kiwi
from kiwitest import reference_redis_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import cmdfuzz
import cmdfuzz_grammar as grammar

#: (seed, sequences, protocol): 2,300 sequences, ~48,000 commands, ~25 s.
RUNS = [(1, 800, 2), (2, 800, 3), (3, 700, 2)]


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    """A throwaway Debian redis-server; hz 100 so its blocking timeouts
    (10-20 ms in the grammar) end on time rather than at the next 100 ms tick."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-cmdfuzz-") as port:
        conn = cmdfuzz.Conn(port)
        try:
            assert conn.pipeline([[b"CONFIG", b"SET", b"hz", b"100"]]) == [b"+OK"]
        finally:
            conn.close()
        yield port


@pytest.fixture(scope="module")
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


@pytest.mark.parametrize("seed,count,protocol", RUNS, ids=[f"seed{s}-resp{p}" for s, _, p in RUNS])
def test_random_sequences_match_redis(
    seed: int, count: int, protocol: int, reference_port: int, kiwi_port: int, tmp_path: Path
) -> None:
    stats = cmdfuzz.fuzz(seed, count, reference_port, kiwi_port, resp=protocol, out_dir=tmp_path)
    assert stats.sequences == count
    assert stats.commands > count * 10
    report = []
    for key, d in stats.differences.items():
        lines = "\n".join("    " + cmdfuzz.format_line(x).decode("utf-8", "backslashreplace") for x in d.lines)
        report.append(
            f"{key} (in {stats.occurrences[key]} sequences), shrunk to:\n{lines}\n"
            f"  redis: {cmdfuzz.flat(d.ref)!r}\n  kiwi:  {cmdfuzz.flat(d.kiwi)!r}"
        )
    assert not report, f"seed {seed}, RESP{protocol}:\n" + "\n".join(report)
    # Every command touched only keys it locked (its declared keys, or the
    # whole store): a wrong key list would let writers interleave.
    with redis.Redis(port=kiwi_port) as client:
        assert client.info("stats")["kiwi_lock_scope_misses"] == 0


def test_grammar_covers_every_command(kiwi_port: int) -> None:
    """A command Kiwi gains must be added to the snapshot (--dump-docs) or
    to EXCLUDED, or the fuzzer would never send it."""
    conn = cmdfuzz.Conn(kiwi_port)
    try:
        (listed,) = conn.pipeline([[b"COMMAND", b"LIST"]])
    finally:
        conn.close()
    listed_names = {item.split(b"\r\n", 1)[1].decode() for item in listed[1:]}
    # Subcommands (client|kill) are generated with their command.
    names = {name for name in listed_names if "|" not in name}
    docs = grammar.load_docs()
    assert names - set(docs) - set(grammar.EXCLUDED) == set()
    assert set(docs) - names == set()


def test_sequences_are_deterministic_per_seed() -> None:
    docs = grammar.load_docs()
    for index in range(20):
        assert grammar.generate(docs, 7, index) == grammar.generate(docs, 7, index)
    assert grammar.generate(docs, 7, 0) != grammar.generate(docs, 8, 0)


def test_generated_calls_are_safe_and_writable() -> None:
    """Over many sequences: nothing that would block for long, allocate
    gigabytes or remove random members is sent; most lines can be written
    to a redis-diff file; every command of the grammar comes up."""
    docs = grammar.load_docs()
    seen = set()
    writable = total = 0
    for index in range(1500):
        for line in grammar.generate(docs, 11, index):
            assert grammar.safe(line), line
            seen.add(line[0].lower().decode())
            total += 1
            writable += not any(cmdfuzz.UNWRITABLE.search(a) for a in line)
    assert writable == total
    assert set(docs) - set(grammar.EXCLUDED) - seen == set()


def test_lines_survive_the_file_format() -> None:
    """format_line then the parsing of tests/redis-diff files (shlex after a
    surrogateescape decoding, as test_redis_diff.py reads them) gives back
    the same bytes, for random binary arguments."""
    rng = random.Random(5)
    alphabet = [bytes([b]) for b in range(256) if not cmdfuzz.UNWRITABLE.search(bytes([b]))]
    for _ in range(2000):
        args = [b"SET"] + [b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(3)]
        if any(cmdfuzz.UNWRITABLE.search(a) for a in args):
            continue  # a line break once decoded (U+0085, U+2028): not writable
        line = cmdfuzz.format_line(args)
        assert cmdfuzz.parse_line(line) == args
        text = line.decode("utf-8", "surrogateescape").strip().lstrip("~")
        assert [a.encode("utf-8", "surrogateescape") for a in shlex.split(text)] == args


class FakeRunner(cmdfuzz.Runner):
    """Replies differ at the call "T" only when "A" and "B" came before it."""

    def __init__(self) -> None:
        super().__init__(0, 0)
        self.runs = 0

    def first_difference(self, lines: Sequence[Sequence[bytes]]) -> Optional[object]:
        self.runs += 1
        seen: list[bytes] = []
        for i, line in enumerate(lines):
            if line == [b"T"] and b"A" in seen and b"B" in seen:
                return cmdfuzz.Difference([list(x) for x in lines[: i + 1]], b"+1", b"+2")
            seen.append(line[0])
        return None


def test_shrinking_keeps_only_what_the_difference_needs() -> None:
    rng = random.Random(3)
    for _ in range(50):
        noise = [[b"N%d" % i] for i in range(rng.randint(0, 60))]
        lines = noise + [[b"A"], [b"B"]]
        rng.shuffle(lines)
        lines.append([b"T"])
        runner = FakeRunner()
        found = runner.first_difference(lines)
        assert found is not None
        small = runner.shrink(found)
        assert sorted(small.lines[:-1]) == [[b"A"], [b"B"]] and small.lines[-1] == [b"T"]
        assert runner.runs < 300


def test_known_differences_match_only_their_own() -> None:
    """Each pending reproducer's matcher takes its difference (also inside
    EXEC), and nothing else."""
    diff = cmdfuzz.Difference
    lossy = (b"-ERR Unsupported option \xff", b"-ERR Unsupported option \xef\xbf\xbd")
    cases = [
        (diff([[b"ZSCORE", b"z", b"a"]], b"$2\r\n-0", b"$1\r\n0"), "pending/negative-zero-score.txt"),
        (diff([[b"ZSCORE", b"z", b"a"]], b",-0", b",0"), "pending/negative-zero-score.txt"),
        (diff([[b"OBJECT", b"ENCODING", b"k"]], b"$6\r\nintset", b"$8\r\nlistpack"), "pending/object-encoding.txt"),
        (diff([[b"EXPIRE", b"k", b"1", b"\xff"]], *lossy), "pending/error-text-not-utf8.txt"),
        (
            diff([[b"MULTI"], [b"EXPIRE", b"k", b"1", b"\xff"], [b"EXEC"]], [b"*1", lossy[0]], [b"*1", lossy[1]]),
            "pending/error-text-not-utf8.txt",
        ),
        (diff([[b"ZSCORE", b"z", b"a"]], b",-1", b",1"), None),
        (diff([[b"GET", b"k"]], b"$1\r\n1", b"$1\r\n2"), None),
        (
            diff(
                [[b"MULTI"], [b"OBJECT", b"ENCODING", b"k"], [b"GET", b"k"], [b"EXEC"]],
                [b"*2", b"$6\r\nintset", b"$-1"],
                [b"*2", b"$8\r\nlistpack", b"$1\r\n1"],
            ),
            None,
        ),
    ]
    for d, file in cases:
        k = cmdfuzz.known(d)
        assert (k.file if k else None) == file, d
    for k in cmdfuzz.KNOWN:
        assert (Path(__file__).resolve().parents[1] / "redis-diff" / k.file).is_file()
