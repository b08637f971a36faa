#!/usr/bin/env python3
"""Kiwi next to Debian's redis-server, measured in one run.

    python3 bench/compare.py [--requests N] [--clients C] [--quick] [--markdown FILE]

1. redis-benchmark workloads (SET, GET, MSET of 10 keys, LPUSH, LPOP, HSET,
   SADD, ZADD) against both servers, 50 clients unpipelined and with
   pipeline 16: requests per second, p50 and p99 latency, Kiwi/Redis ratio.
2. The embedded engine (kiwi.open) from Python against fakeredis, same mix.
3. Starting and stopping kiwi.Server in-process against starting
   redis-server as a process.

redis-server and redis-benchmark come from Debian's redis-server and
redis-tools (scripts/setup-system.sh installs them); fakeredis from PyPI.
Both servers run on loopback ports picked at random and are stopped at the
end. Kiwi persists every write to RocksDB's write-ahead log; Redis runs with
persistence off (--save '' --appendonly no), as is usual for benchmarks.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["set", "get", "mset", "lpush", "lpop", "hset", "sadd", "zadd"]


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


class Steps:
    """Numbered progress lines on stderr: ``  .. step 3/8 (00:41): message``.

    Call it once as each step starts; the time is since the first step.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started: Optional[float] = None

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        self.done += 1
        elapsed = int(now - self.started)
        progress(f"step {self.done}/{self.total} ({elapsed // 60:02d}:{elapsed % 60:02d}): {message}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def ensure_tools() -> None:
    if not (shutil.which("redis-server") and shutil.which("redis-benchmark")):
        subprocess.run(["bash", str(ROOT / "scripts" / "setup-system.sh")], check=True)


@contextmanager
def redis_server() -> Iterator[int]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def kiwi_server() -> Iterator[int]:
    exe = shutil.which("kiwi-server")
    if exe is None:
        raise SystemExit("kiwi-server is not installed: run scripts/install.sh first")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-kiwi-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--dir", workdir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


Row = dict[str, float]


def redis_benchmark(port: int, tests: list[str], requests: int, clients: int, pipeline: int) -> dict[str, Row]:
    cmd = [
        "redis-benchmark",
        "-p",
        str(port),
        "-t",
        ",".join(tests),
        "-n",
        str(requests),
        "-c",
        str(clients),
        "-P",
        str(pipeline),
        "-r",
        "100000",
        "--csv",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True).stdout
    rows: dict[str, Row] = {}
    for rec in csv.DictReader(io.StringIO(out)):
        name = rec["test"].split()[0].lower()
        rows[name] = {
            "rps": float(rec["rps"]),
            "p50": float(rec["p50_latency_ms"]),
            "p99": float(rec["p99_latency_ms"]),
        }
    return rows


#: Steps of each table, for the "step i/N" progress lines.
SERVER_STEPS = 4
EMBEDDED_STEPS = 2
STARTUP_STEPS = 2


def server_table(requests: int, clients: int, step: Callable[[str], None] = progress) -> list[str]:
    lines = [
        "| workload | pipeline | Redis rps | Kiwi rps | Kiwi/Redis | Redis p50/p99 ms | Kiwi p50/p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for pipeline in (1, 16):
        n = requests * (4 if pipeline > 1 else 1)
        what = f"pipeline {pipeline}, {n} requests per test, {clients} clients"
        step(f"redis-benchmark on redis-server, {what}")
        with redis_server() as rport:
            ref = redis_benchmark(rport, TESTS, n, clients, pipeline)
        step(f"redis-benchmark on kiwi-server, {what}")
        with kiwi_server() as kport:
            mine = redis_benchmark(kport, TESTS, n, clients, pipeline)
        for test in TESTS:
            name = "mset" if test == "mset" else test
            r, k = ref.get(name), mine.get(name)
            if r is None or k is None:
                lines.append(f"| {test.upper()} | {pipeline} | {r and r['rps']} | {k and k['rps']} | – | | |")
                continue
            label = "MSET (10 keys)" if test == "mset" else test.upper()
            lines.append(
                f"| {label} | {pipeline} | {r['rps']:,.0f} | {k['rps']:,.0f} | {k['rps'] / r['rps']:.2f} "
                f"| {r['p50']:.3f} / {r['p99']:.3f} | {k['p50']:.3f} / {k['p99']:.3f} |"
            )
    return lines


def ops_per_second(client, ops: int) -> dict[str, float]:
    work: dict[str, Callable[[int], object]] = {
        "SET": lambda i: client.set(f"k{i}", "v" * 16),
        "GET": lambda i: client.get(f"k{i}"),
        "MSET (10)": lambda i: client.mset({f"m{i}:{j}": j for j in range(10)}),
        "LPUSH": lambda i: client.lpush("list", i),
        "LPOP": lambda i: client.lpop("list"),
        "HSET": lambda i: client.hset("hash", f"f{i}", i),
        "SADD": lambda i: client.sadd("set", i),
        "ZADD": lambda i: client.zadd("zset", {f"m{i}": i}),
    }
    out = {}
    for name, fn in work.items():
        start = time.perf_counter()
        for i in range(ops):
            fn(i)
        out[name] = ops / (time.perf_counter() - start)
    return out


def embedded_table(ops: int, step: Callable[[str], None] = progress) -> list[str]:
    import kiwi

    step(f"embedded kiwi.open(), {ops} operations per command")
    with kiwi.open() as db:
        mine = ops_per_second(db, ops)
    try:
        import fakeredis
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "fakeredis"], check=True)
        import fakeredis
    step(f"fakeredis, {ops} operations per command")
    fake = fakeredis.FakeRedis()
    ref = ops_per_second(fake, ops)
    lines = ["| operation | fakeredis ops/s | kiwi.open() ops/s | Kiwi/fakeredis |", "|---|---|---|---|"]
    for name in mine:
        lines.append(f"| {name} | {ref[name]:,.0f} | {mine[name]:,.0f} | {mine[name] / ref[name]:.2f} |")
    return lines


def startup_table(rounds: int, step: Callable[[str], None] = progress) -> list[str]:
    import kiwi

    step(f"start/stop kiwi.Server(), {rounds} rounds")
    kiwi_times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with kiwi.Server() as server:
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        kiwi_times.append(time.perf_counter() - start)
    step(f"start/stop redis-server, {rounds} rounds")
    redis_times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with redis_server():
            pass
        redis_times.append(time.perf_counter() - start)

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2] * 1000

    return [
        "| what | median ms (start, accept a connection, stop) |",
        "|---|---|",
        f"| kiwi.Server() in-process | {med(kiwi_times):.1f} |",
        f"| redis-server as a process | {med(redis_times):.1f} |",
    ]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.platform()}; {redis_version}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--requests", type=int, default=100_000, help="requests per redis-benchmark test (x4 pipelined)"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ops", type=int, default=20_000, help="embedded operations per command")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.ops = 5_000, 1_000
    ensure_tools()
    step = Steps(SERVER_STEPS + EMBEDDED_STEPS + STARTUP_STEPS)
    sections: list[tuple[str, list[str]]] = [
        ("redis-benchmark: Redis vs Kiwi", server_table(args.requests, args.clients, step)),
        ("Embedded: kiwi.open() vs fakeredis, one Python thread", embedded_table(args.ops, step)),
        ("Start and stop", startup_table(5 if args.quick else 20, step)),
    ]
    text = [f"Machine: {machine()}", ""]
    for title, lines in sections:
        text += [f"### {title}", "", *lines, ""]
    print("\n".join(text))
    if args.markdown:
        args.markdown.write_text("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
