"""Expiry in a cluster whose clocks disagree (``RAFT.FAULT CLOCK``).

Reads judge expiry by the replicated clock (the time of the last applied
entry, which never goes backwards), not by the clock of the node they run
on, so:

* a node whose clock runs ahead does not see a key expired that the leader
  still serves;
* a leader whose clock is behind does not bring back a key that expired.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import node_client, reset_cluster, wait_until

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


@pytest.fixture(autouse=True)
def clean(cluster: kiwi.Cluster) -> Iterator[None]:
    reset_cluster(cluster)
    yield
    for i in range(len(cluster.nodes)):
        node_client(cluster, i).execute_command("RAFT.FAULT", "CLOCK", "0")


def test_clock_fault_is_reported_and_cleared(cluster: kiwi.Cluster) -> None:
    r = node_client(cluster, 1)
    assert r.execute_command("RAFT.FAULT", "CLOCK", "-2500") == "OK"
    assert "fault_clock_ms:-2500" in r.execute_command("RAFT.INFO")
    assert r.execute_command("RAFT.FAULT", "CLEAR") == "OK"
    assert "fault_clock_ms:0" in r.execute_command("RAFT.INFO")
    with pytest.raises(Exception, match="clock offset"):
        r.execute_command("RAFT.FAULT", "CLOCK", "soon")


def test_a_node_with_a_fast_clock_does_not_expire_keys_early(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    lr, fr = node_client(cluster, leader), node_client(cluster, follower)
    lr.set("k", "v", px=5_000)
    fr.execute_command("RAFT.FAULT", "CLOCK", "60000")
    # Read on the fast node first, then on the leader: never nil then "v".
    for _ in range(20):
        on_follower = fr.get("k")
        on_leader = lr.get("k")
        assert not (on_follower is None and on_leader == "v")
    assert fr.get("k") == "v"
    assert 0 < fr.pttl("k") <= 5_000


def test_a_leader_with_a_slow_clock_does_not_bring_keys_back(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    lr = node_client(cluster, leader)
    lr.set("gone", "v", px=200)
    wait_until(lambda: lr.exists("gone") == 0, timeout=5, message="key expired")
    lr.execute_command("RAFT.FAULT", "CLOCK", "-60000")
    # Entries now carry a time a minute behind; the replicated clock holds.
    for i in range(10):
        lr.set(f"after-{i}", "x")
        for n in range(len(cluster.nodes)):
            assert node_client(cluster, n).get("gone") is None
    # A relative expiry set now counts from the replicated clock, not from
    # the slow clock: the key is neither already expired nor set a minute late.
    lr.set("fresh", "v", px=30_000)
    assert 0 < lr.pttl("fresh") <= 30_000
