"""Commands whose behaviour under Raft needs more than "propose and apply".

* Blocking commands (BLPOP, BLMOVE, BZPOPMIN…) wait on the node the client
  talks to, wake when an entry applied there fills the key, and hand each
  element to exactly one waiter, wherever the waiters are connected.
* SPOP picks members at random: every node must remove the same ones.
* A pipeline of writes sent to a follower answers exactly as a standalone
  server does, in order, errors included, and lands on every node.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import ClusterDownError, TryAgainError

import kiwi
from kiwitest import (
    BlockingCall,
    blocked_clients,
    node_client,
    reset_cluster,
    wait_until,
    zero_timeout_popper_race,
)

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


@pytest.fixture(autouse=True)
def flushed(cluster: kiwi.Cluster) -> None:
    reset_cluster(cluster)


def roles(c: kiwi.Cluster) -> tuple[int, list[int]]:
    leader = c.wait_for_leader()
    return leader, [i for i in range(len(c.nodes)) if i != leader]


def test_blpop_on_a_follower_wakes_on_a_push_through_another_node(cluster: kiwi.Cluster) -> None:
    _, (f1, f2) = roles(cluster)
    waiter_conn = node_client(cluster, f1)
    waiter = BlockingCall(waiter_conn, "BLPOP", "jobs", 0)
    waiter.start()
    watcher = node_client(cluster, f1)
    wait_until(lambda: blocked_clients(watcher) == 1, message="BLPOP did not block")
    # The waiter is still waiting: nothing was there to take.
    assert waiter.is_alive()
    pusher = node_client(cluster, f2)
    assert pusher.rpush("jobs", "j1") == 1
    assert tuple(waiter.result()) == ("jobs", "j1")
    # The element is gone everywhere.
    for i in range(3):
        assert node_client(cluster, i).llen("jobs") == 0


def test_blpop_times_out_after_its_timeout_not_at_once(cluster: kiwi.Cluster) -> None:
    _, (f1, _) = roles(cluster)
    waiter = BlockingCall(node_client(cluster, f1), "BLPOP", "empty", 0.5)
    waiter.start()
    assert waiter.result() is None
    assert waiter.elapsed >= 0.45, f"answered after {waiter.elapsed:.3f}s"


def test_each_element_goes_to_exactly_one_waiter(cluster: kiwi.Cluster) -> None:
    leader, followers = roles(cluster)
    waiters = [BlockingCall(node_client(cluster, i), "BRPOP", "q", 0) for i in [leader, *followers]]
    for w in waiters:
        w.start()
    watchers = [node_client(cluster, i) for i in [leader, *followers]]
    wait_until(
        lambda: sum(blocked_clients(w) for w in watchers) == 3,
        message="three clients should block",
    )
    pusher = node_client(cluster, followers[0])
    for j in range(3):
        pusher.lpush("q", f"e{j}")
    got = sorted(w.result()[1] for w in waiters)
    assert got == ["e0", "e1", "e2"], "every element handed out once"
    assert pusher.exists("q") == 0


def test_one_push_serves_one_of_two_waiters_the_other_keeps_waiting(cluster: kiwi.Cluster) -> None:
    _, (f1, f2) = roles(cluster)
    first = BlockingCall(node_client(cluster, f1), "BLPOP", "one", 0)
    second = BlockingCall(node_client(cluster, f2), "BLPOP", "one", 0)
    first.start()
    second.start()
    watchers = [node_client(cluster, f1), node_client(cluster, f2)]
    wait_until(lambda: sum(blocked_clients(w) for w in watchers) == 2)
    node_client(cluster, f1).rpush("one", "only")
    served = wait_until(
        lambda: [w for w in (first, second) if not w.is_alive()],
        message="no waiter was served",
    )
    assert len(served) == 1
    assert tuple(served[0].result()) == ("one", "only")
    other = second if served[0] is first else first
    # The other one is still blocked (it did not get a nil at once).
    assert other.is_alive()
    assert sum(blocked_clients(w) for w in watchers) == 1
    node_client(cluster, f2).rpush("one", "second")
    assert tuple(other.result()) == ("one", "second")


def test_blmove_and_bzpopmin_wake_across_nodes(cluster: kiwi.Cluster) -> None:
    leader, (f1, f2) = roles(cluster)
    mover = BlockingCall(node_client(cluster, f1), "BLMOVE", "src", "dst", "LEFT", "RIGHT", 0)
    popper = BlockingCall(node_client(cluster, f2), "BZPOPMIN", "z", 0)
    mover.start()
    popper.start()
    watchers = [node_client(cluster, f1), node_client(cluster, f2)]
    wait_until(lambda: sum(blocked_clients(w) for w in watchers) == 2)
    r = node_client(cluster, leader)
    r.rpush("src", "a", "b")
    r.zadd("z", {"m2": 2, "m1": 1})
    assert mover.result() == "a"
    assert tuple(popper.result()) == ("z", "m1", 1.0)
    for i in range(3):
        c = node_client(cluster, i)
        assert c.lrange("src", 0, -1) == ["b"]
        assert c.lrange("dst", 0, -1) == ["a"]
        assert c.zrange("z", 0, -1, withscores=True) == [("m2", 2.0)]


def test_blpop_with_zero_timeout_waits_through_lost_races(cluster: kiwi.Cluster) -> None:
    """Clients on a follower find an element, propose their BLPOP, and lose
    it, again and again: each keeps waiting (no nil after some number of lost
    races) until it wins one.

    The follower's messages take 150 ms, so a proposal lands 150 ms after the
    look that saw the element, and the next look comes 300 ms after the last:
    the feeder on the leader pushes an element every 300 ms and takes it back
    after 150 ms, so a waiter that saw one loses it, and sees the next. (Few
    waiters: each one's messages must not queue behind the others'.)"""
    leader, (f1, _) = roles(cluster)
    victims = [node_client(cluster, f1) for _ in range(4)]
    assert victims[0].execute_command("RAFT.FAULT", "DELAY", 150) == "OK"
    try:
        replies, left = zero_timeout_popper_race(
            victims, node_client(cluster, leader), "race", period=0.3, take_back_after=0.15, contest=3.5
        )
    finally:
        cluster.heal()
    assert None not in replies, f"{replies.count(None)} of {len(replies)} BLPOP k 0 answered nil"
    popped = [element for _, element in replies]
    assert len(set(popped)) == len(popped), "an element was popped twice"
    for i in range(3):
        assert node_client(cluster, i).lrange("race", 0, -1) == left


def test_blocking_command_on_a_wrong_type_answers_wrongtype(cluster: kiwi.Cluster) -> None:
    _, (f1, _) = roles(cluster)
    r = node_client(cluster, f1)
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match=r"^WRONGTYPE"):
        r.blpop(["s"], timeout=0.1)


def test_spop_removes_the_same_members_on_every_node(cluster: kiwi.Cluster) -> None:
    _, (f1, _) = roles(cluster)
    r = node_client(cluster, f1)
    r.sadd("big", *[f"member:{i}" for i in range(3000)])
    r.sadd("small", *[f"s{i}" for i in range(40)])
    popped = set(r.spop("big", 5) + r.spop("big", 600) + [r.spop("big")])
    popped_small = set(r.spop("small", 7) + [r.spop("small")])
    assert len(popped) == 606 and len(popped_small) == 8
    members = [node_client(cluster, i).smembers("big") for i in range(3)]
    small = [node_client(cluster, i).smembers("small") for i in range(3)]
    assert members[0] == members[1] == members[2]
    assert small[0] == small[1] == small[2]
    assert len(members[0]) == 3000 - 606
    assert not members[0] & popped and not small[0] & popped_small


def test_hyperloglogs_are_the_same_bytes_on_every_node(cluster: kiwi.Cluster) -> None:
    """PFADD/PFMERGE apply alike everywhere (sparse turning dense at the
    default hll-sparse-max-bytes whatever a node's own setting), and PFCOUNT,
    a read, answers the same on every node without changing the value."""
    _, (f1, f2) = roles(cluster)
    r = node_client(cluster, f1)
    node_client(cluster, f2).config_set("hll-sparse-max-bytes", 100)
    try:
        assert r.pfadd("small", *[f"s{i}" for i in range(60)]) == 1
        assert r.pfadd("big", *[f"b{i}" for i in range(5000)]) == 1
        r.pfmerge("both", "small", "big")
        for key in ("small", "big", "both"):
            raw = [node_client(cluster, i, decode_responses=False) for i in range(3)]
            values = [c.get(key) for c in raw]
            assert values[0] == values[1] == values[2], key
            counts = [node_client(cluster, i).pfcount(key) for i in range(3)]
            assert counts[0] == counts[1] == counts[2]
            assert [c.get(key) for c in raw] == values
        assert node_client(cluster, f2).execute_command("PFDEBUG", "ENCODING", "small") == "sparse"
        assert node_client(cluster, f2).execute_command("PFDEBUG", "ENCODING", "big") == "dense"
        assert 4800 < r.pfcount("both") < 5300
    finally:
        node_client(cluster, f2).config_set("hll-sparse-max-bytes", 3000)


def test_pipelined_writes_to_a_follower_answer_in_order(cluster: kiwi.Cluster) -> None:
    _, (f1, _) = roles(cluster)
    r = node_client(cluster, f1)
    pipe = r.pipeline(transaction=False)
    expected: list[Any] = []
    for j in range(300):
        pipe.set(f"k{j}", j)
        expected.append(True)
        pipe.incr("counter")
        expected.append(j + 1)
        if j % 50 == 0:
            pipe.lpush(f"k{j}", "x")  # WRONGTYPE, in the middle of the batch
            expected.append("WRONGTYPE")
        pipe.rpush("log", j)
        expected.append(j + 1)
        if j % 100 == 0:
            pipe.get("counter")  # a read between writes sees them
            expected.append(str(j + 1))
    replies = pipe.execute(raise_on_error=False)
    assert len(replies) == len(expected)
    for got, want in zip(replies, expected):
        if want == "WRONGTYPE":
            assert isinstance(got, redis.ResponseError) and str(got).startswith("WRONGTYPE"), got
        else:
            assert got == want
    for i in range(3):
        c = node_client(cluster, i)
        assert c.get("counter") == "300"
        assert c.lrange("log", 0, -1) == [str(j) for j in range(300)]
        assert c.mget([f"k{j}" for j in range(300)]) == [str(j) for j in range(300)]


def test_readonly_reads_the_nodes_own_data_even_without_a_quorum(cluster: kiwi.Cluster) -> None:
    leader, (f1, _) = roles(cluster)
    node_client(cluster, leader).set("seen", "before")
    # One connection, so READONLY applies to every command that follows.
    r = node_client(cluster, f1, single_connection_client=True)
    try:
        wait_until(lambda: r.get("seen") == "before")
        assert r.execute_command("READONLY") is True
        cluster.isolate(f1)
        # Linearizable reads need the leader; READONLY reads answer from the
        # node's own (possibly stale) data at once.
        started = time.monotonic()
        assert r.get("seen") == "before"
        assert r.exists("seen") == 1
        assert time.monotonic() - started < 1.0
        # Writes still need the quorum.
        with pytest.raises((ClusterDownError, TryAgainError)):
            r.set("seen", "during")
        assert r.execute_command("READWRITE") is True
        with pytest.raises((ClusterDownError, TryAgainError)):
            r.get("seen")
    finally:
        r.close()
        cluster.heal()


def test_wait_counts_the_followers_that_hold_the_writes(cluster: kiwi.Cluster) -> None:
    """WAIT on the leader answers how many followers hold every write
    acknowledged before it: both, once they caught up; a follower's WAIT
    counts none (it applies, it does not replicate)."""
    leader, (f1, _) = roles(cluster)
    client = node_client(cluster, leader)
    for i in range(20):
        client.set(f"w{i}", i)
    assert client.execute_command("WAIT", 2, 10_000) == 2
    assert client.execute_command("WAIT", 0, 0) >= 0
    follower = node_client(cluster, f1)
    started = time.monotonic()
    assert follower.execute_command("WAIT", 1, 200) == 0
    assert time.monotonic() - started >= 0.15


def raft_info(client: redis.Redis) -> dict[str, str]:
    text = client.execute_command("RAFT.INFO")
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_a_delay_on_the_leaders_messages_is_latency_not_a_partition(cluster: kiwi.Cluster) -> None:
    """RAFT.FAULT DELAY 150 on the leader holds each of its messages 150 ms,
    three heartbeat intervals: openraft gives an AppendEntries one interval,
    so before, every one timed out and writes failed as if the followers
    were cut off. Now a retry of the same entries waits for the one already
    on its way: writes succeed, later, and the leader keeps its term."""
    leader, followers = roles(cluster)
    r = node_client(cluster, leader)
    term = raft_info(r)["term"]
    assert r.execute_command("RAFT.FAULT", "DELAY", 150) == "OK"
    try:
        for i in range(5):
            started = time.monotonic()
            assert r.set(f"slow{i}", i) is True
            # Committed needs a follower's answer, which the delay holds back.
            assert time.monotonic() - started >= 0.15
    finally:
        cluster.heal()
    assert cluster.wait_for_leader() == leader
    assert raft_info(r)["term"] == term
    for f in followers:
        assert node_client(cluster, f).mget([f"slow{i}" for i in range(5)]) == [str(i) for i in range(5)]
