"""``kiwi.Cluster``: three Raft nodes in this process, on loopback.

Writes go through the leader and through followers (forwarded), a cut-off
leader is replaced, a minority refuses writes within the client bound, and
after the network heals every node holds the same data. Every wait is
bounded (``wait_until`` / ``wait_for_leader``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

import kiwi
from kiwitest import IO_TIMEOUT, is_cluster_error, node_client, wait_until, write_keys

pytestmark = pytest.mark.kiwi_only

#: How long a node without a majority may take to refuse a write (the
#: server's client bound is 2 s).
MINORITY_BOUND = 5.0


@pytest.fixture
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


def converged(c: kiwi.Cluster, data: dict[str, str], nodes: list[int]) -> bool:
    """Every node in ``nodes`` answers every key of ``data`` with its value."""
    keys = list(data)
    expected = [data[k] for k in keys]
    for i in nodes:
        r = node_client(c, i)
        try:
            if r.mget(keys) != expected:
                return False
        except ResponseError:
            return False
        finally:
            r.close()
    return True


def others(i: int) -> list[int]:
    return [j for j in range(3) if j != i]


def test_starts_with_a_leader_and_reports_status(cluster: kiwi.Cluster) -> None:
    leader = cluster.leader()
    assert leader is not None
    status = cluster.status()
    assert [s["id"] for s in status] == [1, 2, 3]
    assert sorted(s["role"] for s in status) == ["follower", "follower", "leader"]
    assert {s["leader"] for s in status} == {cluster.nodes[leader].id}
    assert len({s["term"] for s in status}) == 1
    assert len({n.port for n in cluster.nodes}) == 3
    assert "running" in repr(cluster) and "running" in repr(cluster.nodes[0])


def test_nodes_share_a_random_secret_and_allow_fault_injection(cluster: kiwi.Cluster) -> None:
    """Peers authenticate with a secret drawn per cluster; RAFT.FAULT works
    (the cluster exists to be faulted); CONFIG GET shows no secret."""
    assert len(cluster.raft_secret) == 64
    assert kiwi.Cluster(3).raft_secret != cluster.raft_secret
    for i in range(3):
        r = node_client(cluster, i)
        try:
            info = r.execute_command("RAFT.INFO")
            if isinstance(info, bytes):
                info = info.decode()
            assert "peer_auth:secret" in info.split("\r\n")
            assert r.execute_command("RAFT.FAULT", "CLEAR") in (b"OK", "OK", True)
            config = r.config_get("*")
            assert not any(cluster.raft_secret in str(v) for v in config.values())
            assert not any("raft-secret" in str(k) for k in config)
        finally:
            r.close()


def test_leader_write_is_read_on_every_node(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    r = cluster.client(decode_responses=True)
    assert r.set("greeting", "hello") is True
    r.close()
    for i in range(3):
        reader = node_client(cluster, i)
        assert reader.get("greeting") == "hello", f"node {i}"
        reader.close()
    data = write_keys(cluster, leader, "lead-", 20)
    assert converged(cluster, data, [0, 1, 2])


def test_follower_writes_are_forwarded(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    data: dict[str, str] = {}
    for f in others(leader):
        data.update(write_keys(cluster, f, f"fwd{f}-", 20))
        r = node_client(cluster, f)
        assert r.incr("counter") in (1, 2)
        r.close()
    data["counter"] = "2"
    wait_until(lambda: converged(cluster, data, [0, 1, 2]), timeout=10, message="forwarded writes everywhere")


def test_isolated_leader_is_replaced_and_data_converges_after_heal(cluster: kiwi.Cluster) -> None:
    old = cluster.wait_for_leader()
    data = write_keys(cluster, old, "before-", 10)

    cluster.isolate(old)
    new = cluster.wait_for_leader(timeout=10, exclude=[old])
    assert new in others(old)
    data.update(write_keys(cluster, new, "during-", 10))
    other = next(i for i in others(old) if i != new)
    data.update(write_keys(cluster, other, "during-fwd-", 10))

    # The cut-off node refuses writes within the bound, and never applies them.
    r = node_client(cluster, old)
    started = time.monotonic()
    with pytest.raises(ResponseError) as err:
        r.set("lost", "x")
    assert is_cluster_error(err.value), repr(err.value)
    assert time.monotonic() - started < MINORITY_BOUND
    r.close()

    cluster.heal()
    leader = cluster.wait_for_leader(timeout=10)
    assert leader != old, "the stale leader must not win back with a shorter log"
    data.update(write_keys(cluster, old, "after-", 10))
    wait_until(lambda: converged(cluster, data, [0, 1, 2]), timeout=15, message="identical data after heal")
    wait_until(lambda: len({s["applied"] for s in cluster.status()}) == 1, timeout=10, message="same applied index")
    for i in range(3):
        r = node_client(cluster, i)
        assert r.get("lost") is None, f"node {i} holds an unacknowledged write"
        assert r.dbsize() == len(data)
        r.close()


def test_minority_answers_an_error_for_writes(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    minority = others(leader)[0]
    majority = [i for i in range(3) if i != minority]
    data = write_keys(cluster, minority, "pre-", 5)

    cluster.partition([minority], majority)
    r = node_client(cluster, minority)
    started = time.monotonic()
    with pytest.raises(ResponseError) as err:
        r.set("minority", "x")
    assert is_cluster_error(err.value), repr(err.value)
    assert time.monotonic() - started < MINORITY_BOUND
    r.close()

    # The majority goes on.
    assert cluster.wait_for_leader(timeout=10) in majority
    data.update(write_keys(cluster, cluster.wait_for_leader(), "majority-", 10))

    cluster.heal()
    cluster.wait_for_leader(timeout=10)
    wait_until(lambda: converged(cluster, data, [0, 1, 2]), timeout=15, message="identical data after heal")
    r = node_client(cluster, minority)
    assert r.get("minority") is None
    r.close()


def test_killed_node_restarts_on_its_data(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    data = write_keys(cluster, leader, "k-", 10)
    victim = others(leader)[0]
    port = cluster.nodes[victim].port
    cluster.kill(victim)
    assert not cluster.nodes[victim].running
    assert cluster.status()[victim]["role"] == "stopped"
    data.update(write_keys(cluster, cluster.wait_for_leader(), "while-down-", 10))
    cluster.restart(victim)
    assert cluster.nodes[victim].running and cluster.nodes[victim].port == port
    cluster.wait_for_leader(timeout=10)
    wait_until(lambda: converged(cluster, data, [0, 1, 2]), timeout=15, message="restarted node caught up")


def test_temp_dirs_are_removed_on_exit() -> None:
    import os

    with kiwi.Cluster(3) as c:
        dirs = [n.dir for n in c.nodes]
        assert all(os.path.isdir(d) for d in dirs)
    assert not any(os.path.exists(d) for d in dirs)
    assert "stopped" in repr(c)


# -- Cluster.client(): a client that follows the leader ------------------------


def test_client_is_a_redis_client_without_retries(cluster: kiwi.Cluster) -> None:
    r = cluster.client()
    assert isinstance(r, redis.Redis)
    assert r.connection_pool.connection_kwargs["retry"].get_retries() == 0
    assert r.ping() is True
    r.close()
    with pytest.raises(ValueError):
        cluster.client(single_connection_client=True)


def test_client_follows_the_leader_after_a_kill(cluster: kiwi.Cluster) -> None:
    """Killing the leader costs a client made before at most one error."""
    r = cluster.client(socket_timeout=IO_TIMEOUT, decode_responses=True)
    assert r.set("k", "v") is True
    old = cluster.leader()
    assert old is not None
    cluster.kill(old)
    errors = 0
    for _ in range(2):
        try:
            assert r.get("k") == "v"
        except redis.ConnectionError:
            errors += 1
    assert errors <= 1
    assert r.set("k", "w") is True
    assert r.get("k") == "w"
    r.close()


def test_client_pipeline_error_moves_the_next_one_to_the_new_leader(cluster: kiwi.Cluster) -> None:
    """A pipeline answered CLUSTERDOWN by the cut-off leader is not resent;
    the next pipeline runs on the new leader."""
    r = cluster.client(socket_timeout=IO_TIMEOUT, decode_responses=True)
    old = cluster.wait_for_leader()
    cluster.isolate(old)
    pipe = r.pipeline(transaction=False)
    pipe.set("a", "1").incr("n")
    replies = pipe.execute(raise_on_error=False)
    assert all(is_cluster_error(e) for e in replies), replies
    new = cluster.wait_for_leader(timeout=10, exclude=[old])
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "2").incr("n")
    assert pipe.execute() == [True, 1], "the failed INCR was not applied or replayed"
    conn = r.connection_pool.get_connection()
    try:
        assert conn.port == cluster.nodes[new].port
    finally:
        r.connection_pool.release(conn)
    r.close()


def test_client_without_a_leader_fails_to_connect_in_time(cluster: kiwi.Cluster) -> None:
    """No majority anywhere: connecting gives up after socket_connect_timeout."""
    r = cluster.client(socket_connect_timeout=1.0, socket_timeout=IO_TIMEOUT)
    cluster.partition([0], [1], [2])
    wait_until(lambda: cluster.leader() is None, timeout=10, message="no leader left")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="no kiwi cluster leader"):
        r.ping()
    assert time.monotonic() - started < 1.0 + MINORITY_BOUND
    cluster.heal()
    cluster.wait_for_leader(timeout=10)
    assert r.ping() is True
    r.close()


def test_flushall_does_not_pile_up_wal_files(cluster: kiwi.Cluster) -> None:
    """FLUSHALL flushes memtables (to drop range deletions); the WAL files that
    leaves behind must be released, as they are on a standalone server."""
    from pathlib import Path

    r = node_client(cluster, cluster.wait_for_leader())
    for i in range(200):
        r.flushall()
        r.set(f"k{i}", "v")
    r.close()

    def wal_files() -> list[int]:
        return [len(list(Path(node.dir).glob("*.log"))) for node in cluster.nodes]

    wait_until(lambda: max(wal_files()) <= 10, timeout=3, message=f"WAL files per node: {wal_files()}")


def test_a_directory_is_served_only_as_what_it_is(tmp_path) -> None:
    """Standalone data is not started as a Raft node, nor a Raft node's data
    standalone (server or embedded); a cluster restarts on its directories."""
    node1 = tmp_path / "node1"
    with kiwi.Server(dir=node1) as server:
        assert server.client().set("k", "standalone") is True
    with pytest.raises(RuntimeError, match="holds data of a standalone server"):
        kiwi.Cluster(1, dir=str(tmp_path)).start()
    raft_base = tmp_path / "raft"
    with kiwi.Cluster(1, dir=str(raft_base)) as c:
        assert c.client(socket_timeout=IO_TIMEOUT).set("k", "replicated") is True
    with pytest.raises(RuntimeError, match="belongs to raft node 1; start it with --node-id 1"):
        kiwi.Server(dir=raft_base / "node1").start()
    with pytest.raises(RuntimeError, match="belongs to raft node 1"):
        kiwi.open(raft_base / "node1")
    # The same cluster starts again on its directories, with its data.
    with kiwi.Cluster(1, dir=str(raft_base)) as c:
        assert c.client(socket_timeout=IO_TIMEOUT).get("k") == b"replicated"


def peer_sockets(ports: set[int]) -> int:
    """TCP sockets of this machine (any state, TIME_WAIT included) with one
    end on one of ``ports``, from /proc/net/tcp and tcp6."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = (int(addr.rsplit(":", 1)[1], 16) for addr in fields[1:3])
            count += local in ports or remote in ports
    return count


def test_linearizable_reads_do_not_open_a_connection_each(cluster: kiwi.Cluster) -> None:
    """Concurrent linearizable reads share leadership checks and the
    connections between nodes: the sockets on the raft ports do not grow
    with the number of reads (each read used to open fresh connections to
    every peer, left by thousands in TIME_WAIT)."""
    leader = cluster.wait_for_leader()
    follower = next(node.index for node in cluster.nodes if node.index != leader)
    raft_ports = {node.raft_port for node in cluster.nodes}
    node_client(cluster, leader).set("k", "v")
    before = peer_sockets(raft_ports)
    errors: list[BaseException] = []

    def read(node: int) -> None:
        r = node_client(cluster, node)
        try:
            for _ in range(300):
                assert r.get("k") == "v"
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            r.close()

    threads = [threading.Thread(target=read, args=(leader if i % 2 else follower,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    grown = peer_sockets(raft_ports) - before
    # 4,800 reads; a handful of pooled connections per peer pair may open.
    assert grown < 100, f"{grown} new sockets on the raft ports for 4,800 reads"
