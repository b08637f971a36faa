"""MULTI/EXEC and WATCH through a Raft cluster behave as on one Redis.

* redis-py's optimistic-transaction recipe (WATCH, GET, MULTI, SET v+1,
  EXEC, retry on WatchError) run by clients spread over every node loses no
  acknowledged update: the counter ends at the number of EXECs that
  succeeded (before the fix: 3,558 successes, counter 954).
* WATCH then a write through *another* node aborts EXEC, even when the
  client's node had not applied that write yet.
* SELECT inside MULTI moves the commands after it to its database, and the
  connection stays there after EXEC, as in Redis.
* Commands that act on the node (PING, ECHO) work inside MULTI.
* RESP3 clients get RESP3 replies from writes (ZPOPMIN pairs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

import kiwi
from kiwitest import is_cluster_error, node_client, reset_cluster, run_threads, wait_until

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


@pytest.fixture(autouse=True)
def flushed(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)


def keyspaces_agree(c: kiwi.Cluster, key: str) -> bool:
    values = {node_client(c, i).get(key) for i in range(len(c.nodes))}
    return len(values) == 1


def test_optimistic_increments_from_every_node_lose_nothing(cluster: kiwi.Cluster) -> None:
    optimistic_increments_lose_nothing(cluster)


def test_optimistic_increments_through_five_nodes_lose_nothing() -> None:
    with kiwi.Cluster(5) as five:
        optimistic_increments_lose_nothing(five)


def optimistic_increments_lose_nothing(cluster: kiwi.Cluster) -> None:
    """Eight clients spread over every node run the recipe 25 times each:
    the counter ends at the number of successful EXECs. A loaded machine can
    cost the cluster its quorum for a moment: a refusal (`CLUSTERDOWN no
    quorum` exactly) did not happen and is retried; any other cluster error
    may have happened, so the counter may exceed the successes by at most
    that many."""
    clients, per_client, deadline = 8, 25, time.monotonic() + 60
    succeeded = [0] * clients
    unknown = [0] * clients
    lock = threading.Lock()

    def worker(n: int) -> None:
        r = node_client(cluster, n % len(cluster.nodes))
        try:
            while succeeded[n] < per_client and time.monotonic() < deadline:
                with r.pipeline() as pipe:
                    try:
                        pipe.watch("cnt")
                        value = int(pipe.get("cnt") or 0)
                        pipe.multi()
                        pipe.set("cnt", value + 1)
                        pipe.execute()
                    except redis.WatchError:
                        continue
                    except redis.RedisError as e:
                        if not is_cluster_error(e):
                            raise
                        if str(e) != "no quorum":
                            unknown[n] += 1
                        continue
                with lock:
                    succeeded[n] += 1
        finally:
            r.close()

    run_threads([lambda n=n: worker(n) for n in range(clients)], timeout=90)
    assert sum(succeeded) == clients * per_client, "every client finished in time"
    wait_until(lambda: keyspaces_agree(cluster, "cnt"), message="every node holds the counter")
    counter = int(node_client(cluster, 0).get("cnt"))
    assert sum(succeeded) <= counter <= sum(succeeded) + sum(unknown), (counter, succeeded, unknown)


def test_a_write_through_another_node_aborts_exec(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    watcher = node_client(cluster, follower)
    writer = node_client(cluster, leader)
    watcher.set("k", "0")
    for _ in range(20):
        with watcher.pipeline() as pipe:
            pipe.watch("k")
            seen = pipe.get("k")
            writer.set("k", f"other-{seen}")  # acknowledged before EXEC
            pipe.multi()
            pipe.set("k", "mine")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert watcher.get("k").startswith("other-")


def test_a_clients_own_earlier_write_does_not_abort_its_transaction(
    cluster: kiwi.Cluster,
) -> None:
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    r = node_client(cluster, follower)
    for i in range(20):
        r.set("own", str(i))  # through the leader; the follower may lag
        with r.pipeline() as pipe:
            pipe.watch("own")
            pipe.multi()
            pipe.incr("own")
            assert pipe.execute() == [i + 1]


def test_select_inside_multi_moves_the_following_commands(cluster: kiwi.Cluster) -> None:
    r = node_client(cluster, 1, db=0)
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "zero")
    pipe.execute_command("SELECT", "5")
    pipe.set("a", "five")
    pipe.get("a")
    assert pipe.execute() == [True, True, True, "five"]
    # The connection stays in the database selected inside the transaction.
    assert r.get("a") == "five"
    assert node_client(cluster, 2, db=0).get("a") == "zero"
    assert node_client(cluster, 0, db=5).get("a") == "five"


def test_connection_commands_inside_multi(cluster: kiwi.Cluster) -> None:
    r = node_client(cluster, 2)
    pipe = r.pipeline(transaction=True)
    pipe.ping()
    pipe.echo("hi")
    pipe.set("x", "1")
    pipe.execute_command("SELECT", "99")
    pipe.get("x")
    replies = pipe.execute(raise_on_error=False)
    assert replies[:3] == [True, "hi", True]
    assert isinstance(replies[3], redis.ResponseError)
    assert str(replies[3]) == "DB index is out of range"
    assert replies[4] == "1"


def test_a_watched_key_that_expires_aborts_exec(cluster: kiwi.Cluster) -> None:
    r = node_client(cluster, 0)
    r.set("ttl", "v", px=300)
    with r.pipeline() as pipe:
        pipe.watch("ttl")
        assert pipe.get("ttl") == "v"
        wait_until(lambda: r.exists("ttl") == 0, timeout=5, message="ttl expired")
        pipe.multi()
        pipe.set("other", "1")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.exists("other") == 0


def test_resp3_clients_get_resp3_replies_from_writes(cluster: kiwi.Cluster) -> None:
    r3 = node_client(cluster, 1, protocol=3, decode_responses=False)
    r3.zadd("z", {"a": 1, "b": 2, "c": 3})
    raw = r3.execute_command("ZPOPMIN", "z", "2")
    assert raw == [[b"a", 1.0], [b"b", 2.0]]
    # Inside a transaction too.
    pipe = r3.pipeline(transaction=True)
    pipe.execute_command("ZPOPMIN", "z", "1")
    assert pipe.execute() == [[[b"c", 3.0]]]


def test_exec_refused_by_a_minority_changes_nothing(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(len(cluster.nodes)) if i != leader)
    r = node_client(cluster, follower)
    r.set("m", "before")
    cluster.isolate(follower)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set("m", "during")
        with pytest.raises(redis.RedisError) as failure:
            pipe.execute()
        assert is_cluster_error(failure.value) or "CLUSTERDOWN" in str(failure.value)
    finally:
        r.close()
        cluster.heal()
    cluster.wait_for_leader()
    with node_client(cluster, leader) as check:
        assert check.get("m") == "before"
