"""``kiwi.testing.targets`` and ``kiwi.testing.nemesis``: real ``kiwi-server``
processes crashed, frozen, partitioned and re-membered, and the schedules of
every nemesis.

Most tests share one three-node :class:`ProcessCluster` (``procs``) and begin
by putting it back whole (:func:`whole`). After every fault the cluster is
healed, :meth:`wait_settled` must succeed, and each node's *own* copy of the
keyspace (read with ``READONLY``, so without asking the leader) must be the
same and hold every acknowledged write.

The schedule tests run against :class:`FakeTarget`, which only records calls.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
import redis

from kiwi.testing import nemesis as nem
from kiwi.testing.processes import ProcessCluster
from kiwi.testing.targets import (
    InProcessCluster,
    Target,
    UnsupportedFault,
    make,
    parse_members,
)
from kiwitest import is_cluster_error, wait_until

pytestmark = pytest.mark.kiwi_only

#: The cluster's quorum wait (the server's bound before CLUSTERDOWN).
RAFT_TIMEOUT_MS = 1000
#: How long a node without a majority may take to refuse.
MINORITY_BOUND = 4.0
SETTLE = 30.0


@pytest.fixture(scope="module")
def procs() -> Iterator[ProcessCluster]:
    with ProcessCluster(3, raft_timeout_ms=RAFT_TIMEOUT_MS) as target:
        yield target


def whole(t: ProcessCluster) -> None:
    """Every node running, unpaused, a member, every link and clock restored, settled."""
    for i in range(t.nodes):
        if t.paused(i):
            t.resume(i)
        if not t.running(i):
            t.restart(i)
    t.heal()
    if "clock" in t.capabilities:
        for i in range(t.nodes):
            t.clock_offset(i, 0)
    t.wait_settled(SETTLE)
    for i in sorted(set(range(t.nodes)) - t.members()):
        t.add(i)
    t.wait_settled(SETTLE)


def local_keyspace(t: Target, node: int) -> dict[str, str]:
    """Node ``node``'s own copy of every string key (READONLY: no leader asked)."""
    r = t.client(node, single_connection_client=True, decode_responses=True)
    try:
        r.execute_command("READONLY")
        keys = sorted(str(k) for k in r.keys("*"))
        return {k: str(v) for k, v in zip(keys, r.mget(keys))} if keys else {}
    finally:
        r.close()


def same_everywhere(t: Target) -> dict[str, str]:
    """Every node's own keyspace, required identical; returns it."""
    copies = [local_keyspace(t, i) for i in range(t.nodes)]
    for i, copy in enumerate(copies[1:], 1):
        assert copy == copies[0], f"node {i} differs from node 0: {set(copy.items()) ^ set(copies[0].items())}"
    return copies[0]


def write_during(t: Target, prefix: str, want: int, timeout: float = 20.0) -> dict[str, str]:
    """SET keys through the nodes in turn until ``want`` are acknowledged or
    ``timeout`` passes; returns the acknowledged ones. A node that failed is
    left alone for a second (a paused one costs a whole socket timeout)."""
    acked: dict[str, str] = {}
    resting: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    seq = 0
    while len(acked) < want and time.monotonic() < deadline:
        for i in range(t.nodes):
            if resting.get(i, 0.0) > time.monotonic():
                continue
            key, value = f"{prefix}:{seq}", f"v{seq}"
            seq += 1
            r = t.client(i, socket_timeout=2, socket_connect_timeout=2)
            try:
                if r.set(key, value):
                    acked[key] = value
            except redis.RedisError:
                resting[i] = time.monotonic() + 1.0
            finally:
                r.close()
        time.sleep(0.01)
    return acked


def settled_with(t: Target, acked: dict[str, str]) -> dict[str, str]:
    """Settle, require identical copies holding every acknowledged write."""
    t.wait_settled(SETTLE)
    data = same_everywhere(t)
    missing = {k: v for k, v in acked.items() if data.get(k) != v}
    assert not missing, f"acknowledged writes lost: {missing}"
    return data


# -- ProcessCluster ---------------------------------------------------------------


def test_every_node_is_a_process_that_serves(procs: ProcessCluster) -> None:
    """Three processes of their own (pid, dir, log file, ports); a write
    through any node is read through every node."""
    t = procs
    whole(t)
    pids = {t.pid(i) for i in range(3)}
    assert None not in pids and len(pids) == 3 and os.getpid() not in pids
    assert len({t.port(i) for i in range(3)} | {t.raft_address(i) for i in range(3)}) == 6
    for i in range(3):
        assert os.path.getsize(t.log_path(i)) > 0
        assert t.client(i).set(f"via{i}", f"node{i}") is True
    for i in range(3):
        r = t.client(i, decode_responses=True)
        assert r.mget(["via0", "via1", "via2"]) == ["node0", "node1", "node2"]
        info = t.raft_info(i)
        assert info is not None and set(parse_members(info["members"])) == {1, 2, 3}
    assert t.capabilities >= {"partition", "kill", "pause", "membership"}
    # Quiet: every node reports the same commit index, equal to what it applied.
    t.wait_settled(SETTLE)

    def indexes() -> set[tuple[str, str, str]]:
        infos = [t.raft_info(i) for i in range(3)]
        return {(x["commit_index"], x["applied_index"], x["last_log_index"]) for x in infos if x}

    wait_until(lambda: len(indexes()) == 1 and len(set(next(iter(indexes())))) == 1, timeout=10)


def test_nodes_share_a_secret_kept_off_the_command_line_and_allow_faults(procs: ProcessCluster) -> None:
    """Every node authenticates its peers with the cluster's random secret,
    read from an owner-only config file (``ps`` shows no secret), and has
    fault injection on."""
    t = procs
    assert len(t.raft_secret) == 64
    for i in range(3):
        info = t.raft_info(i)
        assert info is not None and info["peer_auth"] == "secret"
        config = os.path.join(t.dir(i), "kiwi.conf")
        assert os.stat(config).st_mode & 0o777 == 0o600
        with open(config) as f:
            assert f'raft-secret "{t.raft_secret}"' in f.read()
        with open(f"/proc/{t.pid(i)}/cmdline", "rb") as f:
            assert t.raft_secret.encode() not in f.read()
        assert t.client(i, decode_responses=True).config_get("enable-fault-injection") == {
            "enable-fault-injection": "yes"
        }
    assert ProcessCluster(3).raft_secret != t.raft_secret


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_minority_refuses_in_time_while_majority_serves(procs: ProcessCluster, role: str) -> None:
    """A node partitioned away answers CLUSTERDOWN/TRYAGAIN within the bound;
    the other two elect a leader and take writes; after heal the refused
    write is nowhere and the others' writes are everywhere."""
    t = procs
    whole(t)
    leader = t.leader()
    assert leader is not None
    minority = leader if role == "leader" else (leader + 1) % 3
    majority = [i for i in range(3) if i != minority]
    t.partition([minority], majority)
    assert t.cuts == {(minority, j) for j in majority} | {(j, minority) for j in majority}
    started = time.monotonic()
    with pytest.raises(redis.ResponseError) as refused:
        t.client(minority).set("refused", "x")
    assert is_cluster_error(refused.value), repr(refused.value)
    assert time.monotonic() - started < MINORITY_BOUND
    acked = write_during(t, f"majority-{role}", 6)
    assert len(acked) >= 6
    assert wait_until(lambda: t.leader() in majority, timeout=10)
    t.heal()
    data = settled_with(t, acked)
    assert "refused" not in data


def test_kill_9_leader_fails_over_and_restart_keeps_data(procs: ProcessCluster) -> None:
    """SIGKILL of the leader's process: the others elect a new leader and take
    writes; the restarted node (same data dir, ports, no re-init) catches up."""
    t = procs
    whole(t)
    before = write_during(t, "before-kill", 5)
    old = t.leader()
    assert old is not None
    pid = t.pid(old)
    assert pid is not None
    t.kill(old)
    assert not t.running(old) and t.pid(old) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped
    wait_until(lambda: t.leader() not in (None, old), timeout=15, message="a new leader")
    during = write_during(t, "while-dead", 5)
    with pytest.raises(redis.ConnectionError):
        t.client(old).ping()
    t.restart(old)
    assert t.pid(old) not in (None, pid)
    settled_with(t, {**before, **during})


def test_restarted_node_gets_its_cuts_back(procs: ProcessCluster) -> None:
    """A node killed while partitioned comes back still partitioned (its table
    is pushed again), and heal then reconnects it."""
    t = procs
    whole(t)
    t.partition([0], [1, 2])
    t.kill(0)
    t.restart(0)
    info = t.raft_info(0)
    assert info is not None
    assert (info["fault_blocked_out"], info["fault_blocked_in"]) == ("2,3", "2,3")
    t.heal()
    info = t.raft_info(0)
    assert info is not None and info["fault_blocked_out"] == ""
    settled_with(t, {})


def test_sigstop_follower_then_sigcont(procs: ProcessCluster) -> None:
    """A SIGSTOPped follower is frozen (state T, no answer); the others go on;
    after SIGCONT it catches up, including faults set while it was stopped."""
    t = procs
    whole(t)
    leader = t.leader()
    assert leader is not None
    follower = (leader + 1) % 3
    t.pause(follower)
    pid = t.pid(follower)
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    with pytest.raises(redis.TimeoutError):
        t.client(follower, socket_timeout=0.3).ping()
    assert t.raft_info(follower) is None
    acked = write_during(t, "paused", 5)
    assert len(acked) >= 5
    third = 3 - leader - follower
    t.block(third, follower)  # cannot be told while stopped: told on resume
    t.resume(follower)
    info = t.raft_info(third)
    assert info is not None and info["fault_blocked_out"] == str(follower + 1)
    t.heal()
    settled_with(t, acked)


def test_membership_remove_and_add_back(procs: ProcessCluster) -> None:
    """RAFT.NODE REMOVE through another node takes a follower out of the
    voters; writes go on; RAFT.NODE ADD puts it back and it catches up."""
    t = procs
    whole(t)
    leader = t.leader()
    assert leader is not None
    gone = (leader + 2) % 3
    t.remove(gone)
    assert wait_until(lambda: t.members() == {leader, (leader + 1) % 3}, timeout=10)
    acked = write_during(t, "removed", 5)
    assert len(acked) >= 5
    t.add(gone)
    assert t.members() == {0, 1, 2}
    settled_with(t, acked)


def test_close_kills_every_process_and_removes_the_directory() -> None:
    """close() leaves no child process, not even a SIGSTOPped one, and no
    directory; a script that never closes its cluster leaves none either."""
    before = children()
    t = ProcessCluster(3, raft_timeout_ms=RAFT_TIMEOUT_MS).start()
    pids = [t.pid(i) for i in range(3)]
    base = os.path.dirname(t.dir(0))
    t.pause(1)
    t.kill(2)
    t.close()
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not os.path.exists(base)
    assert children() == before

    script = (
        "from kiwi.testing.targets import ProcessCluster\n"
        "t = ProcessCluster(2).start()\n"
        "t.pause(0)\n"
        "print([t.pid(i) for i in range(2)], t.dir(0), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.strip().split("] ")
    for pid in map(int, printed[0].strip("[").split(",")):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not os.path.exists(printed[1])


def children() -> dict[int, str]:
    """This process's children (from /proc): pid -> command line."""
    out = {}
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid == me:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out[int(entry)] = f.read().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return out


def test_start_failure_leaves_nothing(tmp_path: Any) -> None:
    """A server that cannot start makes start() raise with its log, and no
    process or temporary directory is left."""
    bad = tmp_path / "not-a-server"
    bad.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    bad.chmod(0o755)
    before = children()
    with pytest.raises(RuntimeError, match=r"(?s)exited with 3.*boom"):
        ProcessCluster(3, binary=str(bad)).start()
    assert children() == before


# -- every nemesis on the process cluster ------------------------------------------


@pytest.mark.parametrize("name", sorted(set(nem.NEMESES) - {"clock"}) + ["partition,kill"])
def test_nemesis_injected_and_healed(procs: ProcessCluster, name: str) -> None:
    """Fault, writes, recovery, fault, writes, heal: then settled, identical
    copies, every acknowledged write on every node."""
    t = procs
    whole(t)
    rng = random.Random(name)
    nemesis = nem.by_name(name)
    nemesis.schedule(t, rng)
    steps = [nemesis.inject(t, rng)]
    acked = write_during(t, f"{name}-a", 4, timeout=10)
    steps.append(nemesis.inject(t, rng))
    steps.append(nemesis.inject(t, rng))
    acked.update(write_during(t, f"{name}-b", 4, timeout=10))
    nemesis.heal(t)
    assert acked, f"no write acknowledged during {steps}"
    settled_with(t, acked)
    assert t.cuts == frozenset() and all(t.running(i) and not t.paused(i) for i in range(3)), steps
    assert t.members() == {0, 1, 2}, steps


def test_clock_nemesis(procs: ProcessCluster) -> None:
    """With RAFT.FAULT CLOCK: offsets are set and reset and the cluster
    settles. Without it: the nemesis is refused up front, saying why."""
    t = procs
    whole(t)
    rng = random.Random(5)
    nemesis = nem.by_name("clock")
    if "clock" not in t.capabilities:
        with pytest.raises(UnsupportedFault, match="clock"):
            nemesis.schedule(t, rng)
        with pytest.raises(UnsupportedFault, match=r"RAFT\.FAULT CLOCK"):
            t.clock_offset(0, 1000)
        return
    nemesis.schedule(t, rng)
    step = nemesis.inject(t, rng)
    assert step.startswith("clock node ")
    acked = write_during(t, "clock", 4)
    nemesis.heal(t)
    settled_with(t, acked)


# -- other targets -------------------------------------------------------------------


def test_standalone_process_kill_pause_and_refusals() -> None:
    """One kiwi-server process: kill -9 and restart keep its data, pause
    freezes it; partitions and membership are refused with a reason."""
    before = children()
    with make("standalone", process=True) as t:
        assert t.capabilities == {"kill", "pause"} and t.nodes == 1
        assert t.client(0).set("k", "v") is True
        t.kill(0)
        assert t.leader() is None
        t.restart(0)
        t.wait_settled(10)
        assert t.client(0).get("k") == b"v"
        t.pause(0)
        with pytest.raises(redis.TimeoutError):
            t.client(0, socket_timeout=0.3).ping()
        t.resume(0)
        t.wait_settled(10)
        for fault in (lambda: t.partition([0]), lambda: t.remove(0), lambda: t.clock_offset(0, 5)):
            with pytest.raises(UnsupportedFault, match="one node"):
                fault()
        with pytest.raises(UnsupportedFault, match="partition"):
            nem.by_name("partition").schedule(t, random.Random(1))
    assert children() == before


def test_in_process_cluster_refuses_pause_and_keeps_cuts_over_restart() -> None:
    with InProcessCluster(3) as t:
        assert "pause" not in t.capabilities
        with pytest.raises(UnsupportedFault, match="cannot be paused"):
            t.pause(0)
        with pytest.raises(UnsupportedFault, match="pause"):
            nem.by_name("pause").schedule(t, random.Random(1))
        t.partition([1], [0, 2])
        t.kill(1)
        t.restart(1)
        info = t.raft_info(1)
        assert info is not None and info["fault_blocked_out"] == "1,3"
        t.heal()
        t.wait_settled(SETTLE)


# -- schedules, on a fake target -------------------------------------------------------


class FakeTarget(Target):
    """Records every call; node ``leader_node`` always leads."""

    def __init__(self, nodes: int, leader_node: int = 0, capabilities: Optional[set[str]] = None) -> None:
        self.nodes = nodes
        self.leader_node = leader_node
        self.calls: list[tuple[Any, ...]] = []
        all_faults = {"partition", "kill", "stop", "pause", "clock", "membership"}
        self._caps = frozenset(all_faults if capabilities is None else capabilities)
        self.cut: set[tuple[int, int]] = set()
        self.down: set[int] = set()
        self.removed: set[int] = set()

    @property
    def capabilities(self) -> frozenset[str]:
        return self._caps

    def start(self) -> FakeTarget:
        return self

    def close(self) -> None:
        pass

    def client(self, node: int, **kw: Any) -> redis.Redis:
        raise AssertionError("no clients in schedule tests")

    def leader(self) -> Optional[int]:
        return self.leader_node

    def wait_settled(self, timeout: float = 30.0) -> None:
        pass

    def running(self, node: int) -> bool:
        return node not in self.down

    def members(self) -> set[int]:
        return set(range(self.nodes)) - self.removed

    def partition(self, *groups: Any) -> None:
        self.calls.append(("partition", *map(tuple, groups)))
        of = {n: g for g, group in enumerate(groups) for n in group}
        self.cut = {(i, j) for i in of for j in of if of[i] != of[j]}

    def set_cuts(self, cuts: Any) -> None:
        self.cut = set(cuts)
        self.calls.append(("cuts", tuple(sorted(self.cut))))

    def heal(self) -> None:
        self.cut = set()
        self.calls.append(("heal",))

    def kill(self, node: int) -> None:
        self.down.add(node)
        self.calls.append(("kill", node))

    def restart(self, node: int) -> None:
        self.down.discard(node)
        self.calls.append(("restart", node))

    def stop(self, node: int) -> None:
        self.down.add(node)
        self.calls.append(("stop", node))

    def pause(self, node: int) -> None:
        self.calls.append(("pause", node))

    def resume(self, node: int) -> None:
        self.calls.append(("resume", node))

    def clock_offset(self, node: int, ms: int) -> None:
        self.calls.append(("clock", node, ms))

    def remove(self, node: int) -> None:
        self.removed.add(node)
        self.calls.append(("remove", node))

    def add(self, node: int) -> None:
        self.removed.discard(node)
        self.calls.append(("add", node))


SPECS = sorted(nem.NEMESES) + ["partition,kill", "ring,membership,clock,pause"]


def run_schedule(spec: str, seed: int, nodes: int = 5, steps: int = 12) -> tuple[list[str], list[tuple[Any, ...]]]:
    target = FakeTarget(nodes, leader_node=2)
    rng = random.Random(seed)
    nemesis = nem.by_name(spec)
    nemesis.schedule(target, rng)
    descriptions = [nemesis.inject(target, rng) for _ in range(steps)]
    nemesis.heal(target)
    return descriptions, target.calls


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_schedule(spec: str) -> None:
    """Two runs with one seed inject the same faults, described the same;
    after heal nothing is left broken."""
    first, calls = run_schedule(spec, 42)
    again, calls_again = run_schedule(spec, 42)
    assert first == again and calls == calls_again
    assert len(first) == 12 and all(isinstance(d, str) and d for d in first)


def test_rolling_restart_stops_every_node_once_a_round() -> None:
    """Each round stops every node once, in a random order, and restarts it
    before the next one stops."""
    descriptions, calls = run_schedule("rolling-restart", 3, nodes=5, steps=10)
    stops = [c[1] for c in calls if c[0] == "stop"]
    assert sorted(stops) == list(range(5))
    assert [c[0] for c in calls if c[0] in ("stop", "restart")] == ["stop", "restart"] * 5
    assert any(d.endswith("(leader)") for d in descriptions)


@pytest.mark.parametrize("spec", ["partition", "ring", "bridge", "kill", "rolling-restart", "clock", "membership"])
def test_other_seeds_other_schedules(spec: str) -> None:
    schedules = {tuple(run_schedule(spec, seed)[0]) for seed in range(8)}
    assert len(schedules) > 1


@pytest.mark.parametrize("spec", SPECS)
def test_heal_undoes_everything(spec: str) -> None:
    """Whatever step the schedule stopped at, heal leaves no cut, no killed,
    paused or removed node and no clock offset."""
    for steps in range(6):
        target = FakeTarget(5)
        rng = random.Random(steps)
        nemesis = nem.by_name(spec)
        nemesis.schedule(target, rng)
        for _ in range(steps):
            nemesis.inject(target, rng)
        nemesis.heal(target)
        assert not target.cut and not target.down and not target.removed
        paused = [c[1] for c in target.calls if c[0] == "pause"]
        resumed = [c[1] for c in target.calls if c[0] == "resume"]
        assert sorted(paused) == sorted(resumed)
        clocks: dict[int, int] = {}
        for c in target.calls:
            if c[0] == "clock":
                clocks[c[1]] = c[2]
        assert not any(clocks.values())


def test_steps_alternate_fault_and_recovery() -> None:
    descriptions, calls = run_schedule("kill", 1, steps=4)
    assert [d.split()[0] for d in descriptions] == ["kill", "restart", "kill", "restart"]
    assert [c[0] for c in calls] == ["kill", "restart", "kill", "restart"]
    # A killed leader is named as such (the fake's leader is node 2).
    assert any(d == "kill -9 node 2 (leader)" for s in range(10) for d in run_schedule("kill", s, steps=1)[0])


def test_composed_parts_take_turns() -> None:
    descriptions, _ = run_schedule("partition,kill", 3, steps=4)
    assert descriptions[0].startswith("partition ") and descriptions[1].startswith("kill -9 ")
    assert descriptions[2] == "heal network" and descriptions[3].startswith("restart node ")


@pytest.mark.parametrize("nodes", [3, 4, 5, 7])
def test_ring_every_node_sees_a_different_majority(nodes: int) -> None:
    for seed in range(5):
        _, cuts = nem.Ring().cuts(nodes, random.Random(seed))
        assert all((b, a) in cuts for a, b in cuts)
        seen = [frozenset(j for j in range(nodes) if (i, j) not in cuts) for i in range(nodes)]
        assert all(i in s and len(s) > nodes // 2 for i, s in enumerate(seen))
        if nodes >= 4:
            assert len(set(seen)) == nodes
        else:
            assert not cuts


def test_bridge_halves_talk_only_through_the_bridge() -> None:
    target = FakeTarget(5)
    rng = random.Random(9)
    step = nem.by_name("bridge").inject(target, rng)
    a, bridge, b = nem.Bridge().halves(5, random.Random(9))
    assert step == f"bridge {a} <-> {bridge} <-> {b}"
    assert target.cut == {(i, j) for i in a for j in b} | {(j, i) for i in a for j in b}
    assert not any(bridge in link for link in target.cut)


def test_membership_never_drops_below_a_majority() -> None:
    for nodes in (3, 4, 5):
        target = FakeTarget(nodes)
        rng = random.Random(nodes)
        nemesis = nem.by_name("membership")
        nemesis.schedule(target, rng)
        for _ in range(20):
            nemesis.inject(target, rng)
            assert nodes - len(target.removed) > nodes // 2


def test_unknown_and_unfit_nemeses_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown nemesis 'flood'"):
        nem.by_name("partition,flood")
    with pytest.raises(UnsupportedFault, match="needs at least 3 nodes"):
        nem.by_name("membership").schedule(FakeTarget(2), random.Random(0))
    with pytest.raises(UnsupportedFault, match="needs pause"):
        nem.by_name("kill,pause").schedule(FakeTarget(3, capabilities={"kill"}), random.Random(0))
    with pytest.raises(ValueError, match="unknown target kind"):
        make("galaxy")
