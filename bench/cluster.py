#!/usr/bin/env python3
"""Writes and linearizable reads on a three-node Kiwi Raft cluster next to a standalone Kiwi, in one run.

    python3 bench/cluster.py [--requests N] [--tests set,mset,get] [--quick] [--markdown FILE]

Starts a standalone ``kiwi.Server()`` and a ``kiwi.Cluster(3)`` in this
process (loopback, temporary directories, all stopped at the end) and runs
redis-benchmark's write workloads, SET and MSET of 10 keys, then GET (each a
linearizable read in the cluster) with ``-r 100000`` (random keys), against
three targets:

* standalone: the single node, no replication;
* leader: the cluster's leader, each write committed through Raft, each
  read answered under its lease (or after a round of heartbeats);
* follower: a follower, which forwards each write to the leader and asks
  it for a read index before each batch of reads.

at 1, 10, 50 and 200 clients unpipelined, and 50 clients with pipeline 16.
It prints, per workload, requests per second and p50/p99 latency of each
target with the cluster/standalone ratios, then how each target's throughput
grows with the number of clients (relative to one client): if the leader
batches the proposals of concurrent clients, cluster throughput grows with
clients the way standalone throughput does.

Requests per test: N (``--requests``, default 50,000) at 50 and 200 clients,
N/5 at 10 clients and N/50 at one client (at least 200; one client waits for
every commit), 4N with pipeline 16. Every target is flushed before its run.
Progress ("step i of N") goes to stderr, the tables to stdout and, with
``--markdown FILE``, are appended to FILE. redis-benchmark comes from
Debian's redis-tools (scripts/setup-system.sh installs it); kiwi is the
installed package.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import Row, Steps, ensure_tools, machine, redis_benchmark

TESTS = ["set", "mset", "get"]
LABELS = {"set": "SET", "mset": "MSET (10 keys)", "get": "GET (linearizable)"}
TARGETS = ["standalone", "leader", "follower"]
#: (clients, pipeline) of every run, in order.
CONFIGS: list[tuple[int, int]] = [(1, 1), (10, 1), (50, 1), (200, 1), (50, 16)]
#: Clients at and above which a run gets the full request count.
FULL_AT = 50


def requests_for(requests: int, clients: int, pipeline: int) -> int:
    """Requests per test for one run: fewer for few clients, more pipelined.

    >>> [requests_for(50_000, c, p) for c, p in CONFIGS]
    [1000, 10000, 50000, 50000, 200000]
    >>> requests_for(2_000, 1, 1)
    200
    """
    n = requests * min(clients, FULL_AT) // FULL_AT
    if pipeline > 1:
        n *= 4
    return max(n, 200)


@dataclass
class Run:
    """One redis-benchmark run on one target."""

    target: str
    clients: int
    pipeline: int
    rows: dict[str, Row]
    note: str = ""


def fmt_latency(row: Optional[Row]) -> str:
    return "–" if row is None else f"{row['p50']:.3f} / {row['p99']:.3f}"


def fmt_rps(row: Optional[Row]) -> str:
    return "–" if row is None else f"{row['rps']:,.0f}"


def fmt_ratio(num: Optional[Row], den: Optional[Row]) -> str:
    if num is None or den is None or not den["rps"]:
        return "–"
    return f"{num['rps'] / den['rps']:.2f}"


def workload_table(test: str, runs: dict[tuple[str, int, int], Run]) -> list[str]:
    """Rows per (clients, pipeline): rps, ratios to standalone, latencies."""
    lines = [
        "| clients | pipeline | standalone rps | leader rps | follower rps | leader/standalone | follower/standalone "
        "| standalone p50/p99 ms | leader p50/p99 ms | follower p50/p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, pipeline in CONFIGS:
        row = {t: runs[(t, clients, pipeline)].rows.get(test) for t in TARGETS}
        lines.append(
            f"| {clients} | {pipeline} | {fmt_rps(row['standalone'])} | {fmt_rps(row['leader'])} "
            f"| {fmt_rps(row['follower'])} | {fmt_ratio(row['leader'], row['standalone'])} "
            f"| {fmt_ratio(row['follower'], row['standalone'])} | {fmt_latency(row['standalone'])} "
            f"| {fmt_latency(row['leader'])} | {fmt_latency(row['follower'])} |"
        )
    return lines


def scaling_table(runs: dict[tuple[str, int, int], Run]) -> list[str]:
    """Unpipelined throughput at each client count relative to one client, per target."""
    lines = [
        "| workload | clients | standalone | leader | follower |",
        "|---|---|---|---|---|",
    ]
    for test in TESTS:
        for clients, pipeline in CONFIGS:
            if pipeline != 1:
                continue
            cells = [fmt_ratio(runs[(t, clients, 1)].rows.get(test), runs[(t, 1, 1)].rows.get(test)) for t in TARGETS]
            lines.append(
                f"| {LABELS[test]} | {clients} | " + " | ".join(f"×{c}" if c != "–" else c for c in cells) + " |"
            )
    return lines


def run_all(requests: int) -> tuple[dict[tuple[str, int, int], Run], list[str]]:
    """Start the servers, run every (config, target), stop the servers."""
    import kiwi

    step = Steps(1 + len(CONFIGS) * len(TARGETS))
    step("starting a standalone kiwi.Server() and a kiwi.Cluster(3)")
    runs: dict[tuple[str, int, int], Run] = {}
    notes: list[str] = []
    with kiwi.Server() as standalone, kiwi.Cluster(3) as cluster:
        for clients, pipeline in CONFIGS:
            n = requests_for(requests, clients, pipeline)
            for target in TARGETS:
                leader = cluster.wait_for_leader()
                if target == "standalone":
                    port, where = standalone.port, "standalone"
                else:
                    index = leader if target == "leader" else (leader + 1) % len(cluster.nodes)
                    port, where = cluster.nodes[index].port, f"{target} (node {cluster.nodes[index].id})"
                who = "1 client" if clients == 1 else f"{clients} clients"
                step(f"SET, MSET, GET on {where}: {who}, pipeline {pipeline}, {n:,} requests per test")
                flusher = standalone.client() if target == "standalone" else cluster.nodes[leader].client()
                try:
                    flusher.flushall()
                finally:
                    flusher.close()
                rows = redis_benchmark(port, TESTS, n, clients, pipeline)
                run = Run(target, clients, pipeline, rows)
                if target != "standalone" and cluster.wait_for_leader() != leader:
                    run.note = f"leader changed from node {leader + 1} during the run"
                    notes.append(f"{clients} clients, pipeline {pipeline}, {target}: {run.note}")
                missing = [t for t in TESTS if t not in rows]
                if missing:
                    notes.append(
                        f"{clients} clients, pipeline {pipeline}, {target}: no result for {', '.join(missing)}"
                    )
                runs[(target, clients, pipeline)] = run
    return runs, notes


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--requests",
        type=int,
        default=50_000,
        help="requests per test at 50+ clients (scaled down for fewer, x4 pipelined)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts (--requests 2000), for a smoke run")
    parser.add_argument(
        "--tests", default=",".join(TESTS), help=f"workloads to run, comma-separated (default {','.join(TESTS)})"
    )
    parser.add_argument("--markdown", type=Path, help="also append the tables to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 2_000
    if args.requests < 1:
        parser.error("--requests must be positive")
    chosen = [t.strip() for t in args.tests.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in LABELS]
    if unknown or not chosen:
        parser.error(f"--tests takes some of {','.join(TESTS)}")
    TESTS[:] = chosen
    ensure_tools()
    runs, notes = run_all(args.requests)
    text = [
        "## Three-node cluster vs standalone (bench/cluster.py)",
        "",
        f"Machine: {machine()}",
        "",
        f"redis-benchmark -r 100000, requests per test from --requests {args.requests} (see bench/cluster.py); "
        "Kiwi 3-node cluster (in-process, loopback) vs a standalone Kiwi.",
        "",
    ]
    for test in TESTS:
        text += [f"### Cluster vs standalone: {LABELS[test]}", "", *workload_table(test, runs), ""]
    text += ["### Throughput relative to one client (unpipelined)", "", *scaling_table(runs), ""]
    if notes:
        text += ["Notes:", "", *[f"- {note}" for note in notes], ""]
    print("\n".join(text))
    if args.markdown:
        with args.markdown.open("a", encoding="utf-8") as out:
            out.write("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
