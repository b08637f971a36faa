"""Leader leases: a leader answers linearizable reads from its lease.

A follower refuses every vote for an election timeout after it last heard
from its leader, so while a quorum acknowledged the leader within that time
no other leader can exist and the leader's committed index is a read index:
reads need no round of heartbeats. These tests check that reads use the
lease, that a leader cut off from the others stops answering before another
leader's writes could make its answers stale, and that a restarted node,
which has forgotten when it last heard from the leader, holds its vote back
for a lease.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import kiwi
from kiwitest import is_cluster_error, node_client, wait_until

pytestmark = pytest.mark.kiwi_only


@pytest.fixture
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


def raft_info(r: redis.Redis) -> dict[str, str]:
    text = r.execute_command("RAFT.INFO")
    if isinstance(text, bytes):
        text = text.decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_leader_reads_are_answered_from_the_lease(cluster: kiwi.Cluster) -> None:
    """One client reading in a loop: almost every read is answered by the
    lease, not by a round of heartbeats (each read was a round before)."""
    leader = cluster.wait_for_leader()
    r = node_client(cluster, leader)
    r.set("k", "v")
    before = raft_info(r)
    reads = 300
    for _ in range(reads):
        assert r.get("k") == "v"
    after = raft_info(r)
    leased = int(after["lease_reads"]) - int(before["lease_reads"])
    rounds = int(after["read_rounds"]) - int(before["read_rounds"])
    # A lapse of the lease (a heartbeat held up on a loaded machine) sends
    # a read to a round instead.
    assert leased >= reads * 0.8, (leased, rounds)
    assert rounds <= reads * 0.2, (leased, rounds)


def test_a_follower_reads_through_the_leaders_lease(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = next(n.index for n in cluster.nodes if n.index != leader)
    node_client(cluster, leader).set("k", "v")
    before = int(raft_info(node_client(cluster, leader))["lease_reads"])
    r = node_client(cluster, follower)
    for _ in range(50):
        assert r.get("k") == "v"
    assert int(raft_info(node_client(cluster, leader))["lease_reads"]) - before >= 40


def test_a_cut_off_leader_never_answers_an_old_value(cluster: kiwi.Cluster) -> None:
    """The old leader may answer from its lease while no other leader can
    exist; once the others have elected a leader and written through it,
    the old leader answers CLUSTERDOWN, never the value before the write."""
    old = cluster.wait_for_leader()
    node_client(cluster, old).set("k", "before")
    cluster.isolate(old)
    new = cluster.wait_for_leader(exclude=[old])
    writer = node_client(cluster, new)
    wait_until(lambda: writer.set("k", "after"), timeout=10, message="write on the new leader")
    r = node_client(cluster, old)
    for _ in range(3):
        try:
            value = r.get("k")
        except redis.RedisError as e:
            assert is_cluster_error(e), e
        else:
            pytest.fail(f"the cut-off leader answered {value!r} after the new leader's write")
    cluster.heal()
    wait_until(lambda: r.get("k") == "after", timeout=10, message="the old leader catches up")


def test_a_restarted_node_holds_its_vote_for_a_lease(cluster: kiwi.Cluster) -> None:
    """A node of a new cluster has acknowledged no leader before: no hold.
    Restarted on its data, a node holds its vote back for an election
    timeout (RAFT.INFO vote_hold_ms), then takes part in elections again."""
    leader = cluster.wait_for_leader()
    for node in cluster.nodes:
        assert raft_info(node_client(cluster, node.index))["vote_hold_ms"] == "0"
    follower = next(n.index for n in cluster.nodes if n.index != leader)
    cluster.kill(follower)
    cluster.restart(follower)
    assert raft_info(node_client(cluster, follower))["vote_hold_ms"] == "600"
    # After the hold the node votes: it and the old leader's other follower
    # elect a leader when the old leader is cut off.
    cluster.isolate(leader)
    assert cluster.wait_for_leader(exclude=[leader]) != leader
    cluster.heal()
