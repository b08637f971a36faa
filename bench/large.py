"""A data set several times larger than Kiwi's memory budget.

Starts kiwi-server, sets its budget through CONFIG SET (``block-cache-size``
and ``memtable-budget``, ``--budget-mb`` each), loads ``--data-mb`` of 1 KB
random values (incompressible), then times random GETs one at a time over
all of it. Reports the server's RSS after loading and after the reads
against the budget, and the GET latencies (p50/p99), beside redis-server
holding the part that fits in the same budget (``2 × --budget-mb`` of the
same values) and serving random GETs over that part.

    python bench/large.py [--data-mb 512] [--budget-mb 32] [--gets 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

from benchlib import encode, free_port, rss_mb

VALUE = 1024
BATCH = 2_000


def wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.ping():
                client.close()
                return
        except (redis.ConnectionError, redis.TimeoutError):
            if proc.poll() is not None:
                sys.exit(f"the server exited with {proc.returncode}")
            time.sleep(0.02)
    sys.exit("the server did not answer in 60 s")


def load(port: int, keys: int) -> float:
    """SET keys 0..keys with random 1 KB values; seconds taken."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for first in range(0, keys, BATCH):
            last = min(first + BATCH, keys)
            sock.sendall(b"".join(encode(b"SET", b"key:%d" % i, os.urandom(VALUE)) for i in range(first, last)))
            want, got = (last - first) * 5, 0
            while got < want:
                data = sock.recv(1 << 20)
                if not data or data.startswith(b"-"):
                    sys.exit(f"loading failed: {data[:200]!r}")
                got += len(data)
    return time.monotonic() - began


def random_gets(port: int, keys: int, count: int) -> list[float]:
    """Latencies in ms of `count` GETs of random keys, one at a time."""
    rng = random.Random(7)
    times = []
    with redis.Redis(port=port) as client:
        for _ in range(count):
            key = f"key:{rng.randrange(keys)}"
            began = time.perf_counter()
            value = client.get(key)
            times.append((time.perf_counter() - began) * 1000)
            if value is None or len(value) != VALUE:
                sys.exit(f"{key} read back wrong")
    return times


def percentiles(times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return f"p50 {q[49]:.3f} ms, p99 {q[98]:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-mb", type=int, default=512)
    parser.add_argument("--budget-mb", type=int, default=32, help="block cache and memtables, each")
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--server", default=shutil.which("kiwi-server") or "kiwi-server")
    args = parser.parse_args()
    keys = args.data_mb * 1024 * 1024 // VALUE
    budget = 2 * args.budget_mb
    directory = tempfile.mkdtemp(prefix="kiwi-large-")
    port = free_port()
    kiwi = subprocess.Popen(
        [args.server, "--port", str(port), "--dir", directory, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(kiwi, port)
        with redis.Redis(port=port) as client:
            idle = rss_mb(kiwi.pid)
            client.config_set("block-cache-size", f"{args.budget_mb}mb")
            client.config_set("memtable-budget", f"{args.budget_mb}mb")
            seconds = load(port, keys)
            loaded = rss_mb(kiwi.pid)
            times = random_gets(port, keys, args.gets)
            after = rss_mb(kiwi.pid)
            memory = client.info("memory")
        print(f"kiwi-server, budget {budget} MB (block cache {args.budget_mb} MB + memtables {args.budget_mb} MB)")
        print(f"  loaded {keys:,} keys, {args.data_mb} MB of values, in {seconds:.1f} s")
        print(f"  RSS: {idle:.0f} MB idle, {loaded:.0f} MB loaded, {after:.0f} MB after {args.gets:,} random GETs")
        print(
            f"  RocksDB holds: block cache {memory['kiwi_block_cache_bytes'] / 2**20:.1f} MB, "
            f"memtables {memory['kiwi_memtable_bytes'] / 2**20:.1f} MB"
        )
        print(f"  random GET over all {keys:,} keys: {percentiles(times)}")
    finally:
        kiwi.terminate()
        kiwi.wait(timeout=60)
        shutil.rmtree(directory, ignore_errors=True)

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print("redis-server is not installed: no comparison")
        return
    fits = budget * 1024 * 1024 // VALUE
    port = free_port()
    ref = subprocess.Popen(
        [redis_bin, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(ref, port)
        load(port, fits)
        rss = rss_mb(ref.pid)
        times = random_gets(port, fits, args.gets)
        print(f"redis-server holding the part that fits: {fits:,} keys, RSS {rss:.0f} MB")
        print(f"  random GET over its {fits:,} keys: {percentiles(times)}")
    finally:
        ref.terminate()
        ref.wait(timeout=60)


if __name__ == "__main__":
    main()
