"""kill -9 under load: no acknowledged write is ever lost, none is invented.

* Standalone: client threads write to one ``kiwi-server`` process while it
  is SIGKILLed at random moments and restarted on the same directory (each
  start draws ``--appendfsync`` at random: a *process* crash loses nothing
  under any policy, since every write reaches the WAL file before its reply).
* Cluster: the same against a three-node :class:`ProcessCluster` whose nodes
  are SIGKILLed at random and restarted; at the end every node's own copy
  (``READONLY``) is checked once the cluster has settled.

Client threads (``acklog.Writer``) write keys of their own with unique,
checkable content and log each operation as acknowledged or unknown; the final
state is compared per key with the logs (``acklog.violations``): every
acknowledged value present, nothing never attempted, list elements in push
order, counters between the acknowledged and the attempted count, the two
counters of a MULTI/EXEC equal.

CI runs ``KILLS`` (50) kills of each. The long form, by hand::

    KIWI_KILL9_KILLS=500 python -m pytest -s tests/python/test_kill9.py

prints a summary line per run (kills, operations acknowledged, unknown, lost).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Optional

import pytest
import redis

from acklog import UNKNOWN, Writer, all_violations, check_writers, stop_writers, total
from kiwi.testing.processes import ProcessCluster, ServerProcess, server_command
from kiwi.testing.targets import free_ports
from kiwitest import HOST, no_retry, wait_until

#: Kills per run (each of standalone and cluster).
KILLS = int(os.environ.get("KIWI_KILL9_KILLS", "50"))
#: Client threads writing meanwhile.
WRITERS = int(os.environ.get("KIWI_KILL9_WRITERS", "4"))
#: Writes acknowledged after a (re)start before the next kill may come.
WRITES_BETWEEN_KILLS = 20
#: The suite's 300 s per test is for the CI form; a long run gets time by its kills.
pytestmark = [pytest.mark.kiwi_only, pytest.mark.timeout(max(300, KILLS * 4))]

START_TIMEOUT = 30.0
SETTLE = 60.0
POLICIES = ("always", "everysec", "no")


def report(kind: str, kills: int, writers: list[Writer], lost: int, started: float) -> None:
    print(
        f"\nkill -9 {kind}: {kills} kills, {total(writers)} operations acknowledged, "
        f"{total(writers, UNKNOWN)} unknown, {lost} lost or invented, {time.monotonic() - started:.1f}s"
    )


def wait_for_progress(writers: list[Writer], since: int, rng: random.Random) -> None:
    """Until WRITES_BETWEEN_KILLS more writes are acknowledged, then a random
    moment (up to 150 ms) more: the kill lands in the middle of the load."""
    wait_until(
        lambda: (check_writers(writers), total(writers) >= since + WRITES_BETWEEN_KILLS)[1],
        timeout=START_TIMEOUT,
        interval=0.005,
        message="writes acknowledged after the restart",
    )
    time.sleep(rng.uniform(0, 0.15))  # a random moment under load, not a wait for a condition


# -- standalone -------------------------------------------------------------------


@pytest.fixture
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="kiwi-kill9-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_kill9_standalone_loses_no_acknowledged_write(workdir: str) -> None:
    rng = random.Random(os.environ.get("KIWI_KILL9_SEED", "kill9-standalone"))
    (port,) = free_ports(1)
    args = ["--port", str(port), "--bind", HOST, "--dir", os.path.join(workdir, "data")]
    proc = ServerProcess(server_command(), args, os.path.join(workdir, "server.log"))
    started = time.monotonic()

    def start() -> None:
        proc.start(["--appendfsync", rng.choice(POLICIES)])
        proc.wait_ready(HOST, port, START_TIMEOUT)

    def connect(attempt: int) -> Optional[redis.Redis]:
        r = redis.Redis(host=HOST, port=port, socket_timeout=10, socket_connect_timeout=1, retry=no_retry())
        try:
            r.ping()
            return r
        except redis.RedisError:
            r.close()
            return None

    writers = [Writer(w, connect, rng.getrandbits(32)) for w in range(WRITERS)]
    try:
        start()
        for w in writers:
            w.start()
        for _ in range(KILLS):
            wait_for_progress(writers, total(writers), rng)
            proc.kill()
            start()
        wait_for_progress(writers, total(writers), rng)
        stop_writers(writers)
        # The writes acknowledged last must survive a kill too.
        proc.kill()
        start()
        r = redis.Redis(host=HOST, port=port, socket_timeout=30, retry=no_retry())
        try:
            bad = all_violations(writers, r)
        finally:
            r.close()
        report("standalone", KILLS + 1, writers, len(bad), started)
        assert not bad, f"{len(bad)} violations, first: {bad[:10]}\nserver log:\n{proc.log_tail(30)}"
        assert total(writers) > KILLS * WRITES_BETWEEN_KILLS
    finally:
        for w in writers:
            w.stop.set()
        proc.kill()


# -- a three-node cluster ---------------------------------------------------------------


def test_kill9_cluster_loses_no_acknowledged_write() -> None:
    rng = random.Random(os.environ.get("KIWI_KILL9_SEED", "kill9-cluster"))
    started = time.monotonic()
    with ProcessCluster(3, raft_timeout_ms=1000) as cluster:

        def connect(attempt: int) -> Optional[redis.Redis]:
            node = attempt % cluster.nodes
            if not cluster.running(node):
                return None
            return cluster.client(node, socket_timeout=10, socket_connect_timeout=1, retry=no_retry())

        writers = [Writer(w, connect, rng.getrandbits(32)) for w in range(WRITERS)]
        try:
            for w in writers:
                w.start()
            for _ in range(KILLS):
                wait_for_progress(writers, total(writers), rng)
                node = rng.randrange(cluster.nodes)
                cluster.kill(node)
                cluster.restart(node)
            wait_for_progress(writers, total(writers), rng)
            stop_writers(writers)
            cluster.wait_settled(SETTLE)
            bad: list[str] = []
            for node in range(cluster.nodes):
                r = cluster.client(node, single_connection_client=True, socket_timeout=30, retry=no_retry())
                try:
                    r.execute_command("READONLY")  # this node's own copy
                    bad += [f"node {node}: {v}" for v in all_violations(writers, r)]
                finally:
                    r.close()
            report("3-node cluster", KILLS, writers, len(bad), started)
            assert not bad, f"{len(bad)} violations, first: {bad[:10]}"
            assert total(writers) > KILLS * WRITES_BETWEEN_KILLS
        finally:
            for w in writers:
                w.stop.set()
