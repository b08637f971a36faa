"""Ten million keys: what stays constant-time, how soon active expiry finds
an expired key, and how long kiwi-server takes to start.

Loads ``--keys`` string keys (default 10,000,000) into a kiwi-server process
by pipelined SETs, ``--volatile`` of them (default 1,000, spread over the
keyspace) with a deadline a few seconds ahead. Then reports:

- DBSIZE and INFO keyspace latency, median of 200 calls, empty and full;
- how long after the deadline passed active expiry had deleted every
  volatile key (``INFO stats expired_keys``), with no client reading them;
- the server's RSS when loaded;
- start-up time (start to the first PONG) after a clean stop (SIGTERM) and
  after ``kill -9`` (the WAL is replayed and the keys counted by a walk).

    python bench/scale.py [--keys 10000000] [--volatile 1000] [--server PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

from benchlib import encode, free_port, rss_mb

BATCH = 10_000
EXPIRE_BOUND = 600.0


def start(binary: str, directory: str, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """Start kiwi-server and wait for its first PONG; (process, seconds)."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--dir", directory, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = began + 600
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return proc, time.monotonic() - began
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            if proc.poll() is not None:
                sys.exit(f"kiwi-server exited with {proc.returncode}")
            time.sleep(0.01)
    proc.kill()
    sys.exit("kiwi-server did not answer in 600 s")


def load(port: int, keys: int, volatile: set[int], deadline_ms: int) -> float:
    """SET every key over one raw connection, BATCH at a time; seconds taken."""
    began = time.monotonic()
    deadline = str(deadline_ms).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for first in range(0, keys, BATCH):
            last = min(first + BATCH, keys)
            chunk = []
            for i in range(first, last):
                key = b"key:%d" % i
                if i in volatile:
                    chunk.append(encode(b"SET", key, b"v", b"PXAT", deadline))
                else:
                    chunk.append(encode(b"SET", key, b"value-%d" % i))
            sock.sendall(b"".join(chunk))
            want = (last - first) * len(b"+OK\r\n")
            got = 0
            while got < want:
                data = sock.recv(1 << 20)
                if not data:
                    sys.exit("the server closed the connection while loading")
                if b"-" in data:
                    sys.exit(f"an error while loading: {data[:200]!r}")
                got += len(data)
    return time.monotonic() - began


def median_ms(client: redis.Redis, *command: str) -> float:
    times = []
    for _ in range(200):
        began = time.perf_counter()
        client.execute_command(*command)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--volatile", type=int, default=1_000)
    parser.add_argument("--server", default=shutil.which("kiwi-server") or "kiwi-server")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="kiwi-scale-")
    port = free_port()
    proc, _ = start(args.server, directory, port)
    try:
        client = redis.Redis(port=port)
        empty = (median_ms(client, "DBSIZE"), median_ms(client, "INFO", "keyspace"))
        volatile = set(random.Random(1).sample(range(args.keys), args.volatile))
        # The deadline: a little after the load is expected to end.
        estimate = args.keys / 150_000
        deadline_ms = int((time.time() + estimate + 5) * 1000)
        seconds = load(port, args.keys, volatile, deadline_ms)
        print(f"loaded {args.keys:,} keys in {seconds:.1f} s ({args.keys / seconds:,.0f} SET/s)")
        full = (median_ms(client, "DBSIZE"), median_ms(client, "INFO", "keyspace"))
        print(f"DBSIZE median: {empty[0]:.3f} ms empty, {full[0]:.3f} ms with {client.dbsize():,} keys")
        print(f"INFO keyspace median: {empty[1]:.3f} ms empty, {full[1]:.3f} ms full")
        print(f"RSS loaded: {rss_mb(proc.pid):,.0f} MB")
        wait = deadline_ms / 1000 - time.time()
        if wait < 0:
            print(f"(the load ended {-wait:.1f} s after the deadline)")
        time.sleep(max(0.0, wait))
        passed = time.time()
        while client.info("stats")["expired_keys"] < args.volatile:
            if time.time() - passed > EXPIRE_BOUND:
                sys.exit(f"active expiry did not delete every volatile key in {EXPIRE_BOUND} s")
            time.sleep(0.01)
        print(
            f"active expiry deleted all {args.volatile:,} volatile keys "
            f"{time.time() - passed:.2f} s after their deadline"
        )
        assert client.dbsize() == args.keys - args.volatile
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        proc, clean = start(args.server, directory, port)
        print(f"start after a clean stop: {clean:.2f} s")
        proc.kill()
        proc.wait()
        proc, crashed = start(args.server, directory, port)
        print(f"start after kill -9: {crashed:.2f} s")
        with redis.Redis(port=port) as check:
            assert check.dbsize() == args.keys - args.volatile, "keys lost or invented across the restarts"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
