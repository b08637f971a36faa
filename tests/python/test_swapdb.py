"""SWAPDB between connections, run the same way on Debian's redis-server and
on Kiwi: which blocked clients wake, which WATCHes break, what survives a
restart, and SWAPDB through a Raft cluster. (Single-connection replies are in
tests/redis-diff/swapdb.txt.)
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import kiwi
from kiwitest import HOST, node_client, reference_redis_server, reset_cluster, wait_until

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-swapdb-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


@pytest.fixture(params=["redis", "kiwi"])
def port(request: Any, reference_port: int, kiwi_port: int) -> int:
    return reference_port if request.param == "redis" else kiwi_port


def client(port: int, db: int = 0) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, db=db, socket_timeout=10, decode_responses=True)


@pytest.fixture
def fresh(port: int) -> Iterator[int]:
    client(port).flushall()
    yield port
    client(port).flushall()


def test_a_client_blocked_on_a_key_the_swap_brings_is_served(fresh: int) -> None:
    waiter, writer = client(fresh), client(fresh, db=1)
    writer.rpush("q", "from-1")
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(waiter.blpop(["q"], timeout=5)))
    t.start()
    wait_until(lambda: int(client(fresh).info("clients")["blocked_clients"]) == 1)
    writer.swapdb(0, 1)
    t.join(10)
    assert got == [("q", "from-1")]
    # The element left the database the waiter is on, which is now db 0.
    assert client(fresh, db=0).exists("q") == 0
    assert client(fresh, db=1).exists("q") == 0


def watch_then_swap(port: int, setup: dict[int, str]) -> list[Any] | None:
    """WATCH `k` on db 0 with `k` set in the listed databases, SWAPDB 0 1
    from another client, then EXEC: its reply (None when aborted)."""
    for db, value in setup.items():
        client(port, db=db).set("k", value)
    r = client(port)
    with r.pipeline() as pipe:
        pipe.watch("k")
        client(port, db=5).swapdb(0, 1)
        pipe.multi()
        pipe.set("done", "1")
        try:
            return list(pipe.execute())
        except redis.WatchError:
            return None


@pytest.mark.parametrize(
    "setup",
    [{}, {0: "a"}, {1: "b"}, {0: "a", 1: "b"}, {2: "c"}],
    ids=["nowhere", "here", "there", "both", "elsewhere"],
)
def test_swapdb_breaks_the_watches_redis_breaks(reference_port: int, kiwi_port: int, setup: dict[int, str]) -> None:
    outcomes = []
    for port in (reference_port, kiwi_port):
        client(port).flushall()
        outcomes.append(watch_then_swap(port, setup))
        client(port).flushall()
    assert outcomes[0] == outcomes[1], outcomes


def test_swaps_survive_a_restart() -> None:
    with tempfile.TemporaryDirectory(prefix="kiwi-swapdb-") as d:
        with kiwi.Server(dir=d) as server:
            r = server.client(decode_responses=True)
            r.set("x", "in-0")
            r.swapdb(0, 4)
            r.swapdb(4, 9)
        with kiwi.Server(dir=d) as server:
            assert client(server.port, db=9).get("x") == "in-0"
            assert client(server.port, db=0).get("x") is None
            assert client(server.port, db=4).get("x") is None
            info = client(server.port).info("keyspace")
            assert list(info) == ["db9"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


def test_swapdb_through_a_cluster_moves_data_on_every_node(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    r = node_client(cluster, follower)
    r.set("x", "in-0")
    assert r.swapdb(0, 2) is True
    for i in range(len(cluster.nodes)):
        node_db2 = node_client(cluster, i, db=2)
        wait_until(lambda c=node_db2: c.get("x") == "in-0", message=f"node {i} sees the swap")
        assert node_client(cluster, i).get("x") is None


def test_swapdb_through_a_cluster_breaks_a_watch(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    watcher = node_client(cluster, follower)
    other = node_client(cluster, leader, db=1)
    other.set("k", "there")
    with watcher.pipeline() as pipe:
        pipe.watch("k")
        assert pipe.get("k") is None
        other.swapdb(0, 1)
        pipe.multi()
        pipe.set("k", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    wait_until(lambda: watcher.get("k") == "there")
