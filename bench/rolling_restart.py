"""Rolling restart of a three-node cluster under continuous writes.

Writers SET unique keys through every node (a write to a node that is down
goes to the next one) while each node in turn is stopped, left down for a
moment and started again. Reported per restart: the longest time no write
succeeded anywhere (the cluster's write unavailability), the writes that
failed, and at the end whether every acknowledged write is there.

``--stop term`` stops with SIGTERM (a leader hands leadership over first);
``--stop kill`` uses ``kill -9`` for comparison (the cluster waits out an
election timeout and the followers' leader lease).

    python bench/rolling_restart.py [--rounds 2] [--stop term|kill]
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field

import redis

from kiwi.testing.processes import ProcessCluster
from kiwi.testing.targets import no_retry


@dataclass
class Log:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, str] = field(default_factory=dict)
    ok_times: list[float] = field(default_factory=list)
    failures: int = 0


def writer(target: ProcessCluster, first: int, log: Log, stop: threading.Event, name: str) -> None:
    node, n = first, 0
    clients: dict[int, redis.Redis] = {}
    while not stop.is_set():
        key = f"{name}:{n}"
        client = clients.get(node)
        if client is None:
            client = redis.Redis(
                host=target.host, port=target.port(node), socket_timeout=5, socket_connect_timeout=1, retry=no_retry()
            )
            clients[node] = client
        try:
            client.set(key, n)
        except (redis.ConnectionError, redis.TimeoutError):
            clients.pop(node, None)
            node = (node + 1) % target.nodes
            with log.lock:
                log.failures += 1
            time.sleep(0.005)
            continue
        except redis.ResponseError:
            with log.lock:
                log.failures += 1
            time.sleep(0.005)
            continue
        with log.lock:
            log.acked[key] = str(n)
            log.ok_times.append(time.monotonic())
        n += 1
    for c in clients.values():
        c.close()


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    points = [start, *inside, end]
    return max(b - a for a, b in zip(points, points[1:]))


def caught_up(target: ProcessCluster, node: int, timeout: float = 30.0) -> None:
    """Wait until restarted ``node`` applied what the leader had committed
    when it came back (writes go on, so the nodes are never all equal)."""
    deadline = time.monotonic() + timeout
    goal = None
    while time.monotonic() < deadline:
        leader = target.leader()
        if goal is None and leader is not None and leader != node:
            info = target.raft_info(leader)
            goal = int(info["commit_index"]) if info else None
        mine = target.raft_info(node)
        applied = (mine or {}).get("applied_index", "-")
        if goal is not None and applied != "-" and int(applied) >= goal:
            return
        time.sleep(0.05)
    raise TimeoutError(f"node {node} did not catch up within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="times every node is restarted")
    parser.add_argument("--stop", choices=["term", "kill"], default="term")
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--down", type=float, default=1.0, help="seconds a node stays down")
    args = parser.parse_args()
    log = Log()
    done = threading.Event()
    with ProcessCluster(3, raft_timeout_ms=5000) as target:
        target.wait_settled(timeout=30)
        threads = [
            threading.Thread(target=writer, args=(target, i % 3, log, done, f"w{i}"), daemon=True)
            for i in range(args.writers)
        ]
        for t in threads:
            t.start()
        time.sleep(2)
        rows = []
        for _ in range(args.rounds):
            for node in range(3):
                was_leader = target.leader() == node
                with log.lock:
                    failed_before = log.failures
                start = time.monotonic()
                if args.stop == "term":
                    target.stop(node)
                else:
                    target.kill(node)
                stopped = time.monotonic()
                time.sleep(args.down)
                target.restart(node)
                caught_up(target, node)
                time.sleep(1.0)
                end = time.monotonic()
                with log.lock:
                    gap = longest_gap(log.ok_times, start, end)
                    failed = log.failures - failed_before
                rows.append((node, was_leader, stopped - start, gap, failed))
        done.set()
        for t in threads:
            t.join(timeout=10)
        target.wait_settled(timeout=30)
        check = target.client(target.leader() or 0)
        lost = [k for k, v in log.acked.items() if check.get(k) != v.encode()]
        check.close()
    print(f"stop={args.stop} writers={args.writers} acknowledged={len(log.acked)} lost={len(lost)}")
    print("| node | leader | stop took s | longest write gap s | failed writes |")
    print("|---|---|---|---|---|")
    for node, was_leader, took, gap, failed in rows:
        print(f"| {node} | {'yes' if was_leader else 'no'} | {took:.2f} | {gap:.3f} | {failed} |")


if __name__ == "__main__":
    main()
