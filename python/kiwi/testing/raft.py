"""What Kiwi's Raft clusters share as targets (:class:`_RaftTarget`): the table
of cut links and clock offsets pushed to every node, ``RAFT.INFO`` and what it
says about leaders and settling, and membership changes. The clusters are
:class:`~kiwi.testing.inprocess.InProcessCluster` and
:class:`~kiwi.testing.processes.ProcessCluster`."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import redis

from kiwi.testing.raftinfo import parse_index, parse_members, parse_raft_info
from kiwi.testing.targets import (
    ADMIN_TIMEOUT,
    CLIENT_TIMEOUT,
    MEMBERSHIP_TIMEOUT,
    Link,
    Target,
    UnsupportedFault,
    log,
    no_retry,
)


class _RaftTarget(Target):
    """What both clusters share: the fault table, RAFT.INFO and membership.

    The table of cut links and clock offsets is what the caller asked for; it
    is pushed to every node that can be told, and again to a node that comes
    back (restarted: its table starts empty; resumed: it could not be told
    while paused).
    """

    host = "127.0.0.1"

    def __init__(self, nodes: int) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.nodes = nodes
        self._lock = threading.RLock()
        self._cuts: set[Link] = set()
        self._clock: dict[int, int] = {}
        self._paused: set[int] = set()
        #: Running nodes whose table may differ from the wanted one.
        self._dirty: set[int] = set()
        self._clock_supported = False

    # what a subclass provides
    @abc.abstractmethod
    def _running(self, node: int) -> bool: ...

    @abc.abstractmethod
    def port(self, node: int) -> int:
        """Node ``node``'s RESP port (the same across restarts)."""

    @abc.abstractmethod
    def raft_address(self, node: int) -> str:
        """Node ``node``'s Raft address, ``host:port`` (the same across restarts)."""

    @abc.abstractmethod
    def _kill(self, node: int) -> None: ...

    @abc.abstractmethod
    def _restart(self, node: int) -> None: ...

    def _push_links(self, node: int, both: set[int], out_only: set[int]) -> None:
        """Make node's link faults exactly these (peers by index), over RESP."""
        with self._admin(node) as r:
            pipe = r.pipeline(transaction=False)
            pipe.execute_command("RAFT.FAULT", "CLEAR")
            for j in sorted(both):
                pipe.execute_command("RAFT.FAULT", "BLOCK", j + 1, "BOTH")
            for j in sorted(out_only):
                pipe.execute_command("RAFT.FAULT", "BLOCK", j + 1)
            pipe.execute()

    # -- facts --------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        caps = {"partition", "kill", "membership"} if self.nodes > 1 else {"kill"}
        if self._clock_supported:
            caps.add("clock")
        return frozenset(caps)

    def running(self, node: int) -> bool:
        """Whether node ``node`` runs (paused counts as running)."""
        self._check(node)
        return self._running(node)

    def paused(self, node: int) -> bool:
        """Whether node ``node`` is paused."""
        self._check(node)
        return node in self._paused

    def _reachable(self, node: int) -> bool:
        return self._running(node) and node not in self._paused

    def _check(self, node: int) -> None:
        if not isinstance(node, int) or not 0 <= node < self.nodes:
            raise ValueError(f"no node {node!r} in a target of {self.nodes} nodes")

    def client(self, node: int, **kw: Any) -> redis.Redis:
        self._check(node)
        options: dict[str, Any] = {
            "socket_timeout": CLIENT_TIMEOUT,
            "socket_connect_timeout": CLIENT_TIMEOUT,
            "retry": no_retry(),
        }
        options.update(kw)
        return redis.Redis(host=self.host, port=self.port(node), **options)

    def _admin(self, node: int, timeout: float = ADMIN_TIMEOUT) -> redis.Redis:
        """A short-lived text client (``with`` closes it)."""
        return self.client(node, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)

    def raft_info(self, node: int, timeout: float = ADMIN_TIMEOUT) -> Optional[dict[str, str]]:
        """Node ``node``'s ``RAFT.INFO`` as a dict, ``None`` if it is killed,
        paused or does not answer within ``timeout`` seconds."""
        self._check(node)
        if not self._reachable(node):
            return None
        try:
            with self._admin(node, timeout) as r:
                return parse_raft_info(r.execute_command("RAFT.INFO"))
        except redis.RedisError:
            return None

    def _infos(self) -> dict[int, dict[str, str]]:
        out = {}
        for i in range(self.nodes):
            info = self.raft_info(i)
            if info is not None:
                out[i] = info
        return out

    @staticmethod
    def _best_leader(infos: dict[int, dict[str, str]]) -> Optional[int]:
        """The node saying it leads in the highest term, among its own voters
        (a leader just removed says it leads for a moment)."""
        best: Optional[tuple[int, int]] = None
        for i, info in infos.items():
            term = parse_index(info.get("term", "-"))
            if info.get("role") != "leader" or term is None or (best is not None and term <= best[1]):
                continue
            if i + 1 in parse_members(info.get("members", "")):
                best = (i, term)
        return None if best is None else best[0]

    def leader(self) -> Optional[int]:
        """The running node that says it leads in the highest term, or ``None``.

        A cut-off leader may still think it leads; :meth:`wait_settled`
        requires a majority to follow it.
        """
        return self._best_leader(self._infos())

    def members(self) -> set[int]:
        """Voting members (indexes) as the leader's ``RAFT.INFO`` lists them;
        ``RuntimeError`` when no node leads within the server's quorum timeout."""
        deadline = time.monotonic() + self._quorum_timeout()
        while True:
            infos = self._infos()
            leader = self._best_leader(infos)
            if leader is not None:
                return {node - 1 for node in parse_members(infos[leader].get("members", ""))}
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no leader to ask for the membership:\n{self._describe(infos)}")
            time.sleep(0.05)

    def _settled(self, infos: dict[int, dict[str, str]]) -> bool:
        leader = self._best_leader(infos)
        if leader is None:
            return False
        info = infos[leader]
        voters = parse_members(info.get("members", ""))
        learners = parse_members(info.get("learners", ""))
        term = info.get("term")
        following = [
            node
            for node in voters
            if 0 <= node - 1 < self.nodes
            and node - 1 in infos
            and infos[node - 1].get("term") == term
            and infos[node - 1].get("leader") == str(leader + 1)
        ]
        if len(following) * 2 <= len(voters):
            return False
        target = max(parse_index(info.get("commit_index", "-")) or 0, parse_index(info.get("applied_index", "-")) or 0)
        for node in list(voters) + list(learners):
            i = node - 1
            if not 0 <= i < self.nodes or not self._reachable(i):
                continue
            applied = parse_index(infos.get(i, {}).get("applied_index", "-"))
            if applied is None or applied < target:
                return False
        return True

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until one leader is followed by a majority of its voters in its
        term and every running, unpaused member (learners too) applied the
        leader's commit index. ``TimeoutError`` with every node's ``RAFT.INFO``
        after ``timeout`` seconds.

        It also pushes the fault table to nodes that could not be told before.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._sync_dirty()
            infos = self._infos()
            if self._settled(infos):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not settled within {timeout:.1f}s:\n{self._describe(infos)}")
            time.sleep(0.05)

    def _describe(self, infos: dict[int, dict[str, str]]) -> str:
        lines = []
        for i in range(self.nodes):
            if not self._running(i):
                state = "killed"
            elif i in self._paused:
                state = "paused"
            elif i not in infos:
                state = "no answer"
            else:
                state = " ".join(f"{k}={v}" for k, v in infos[i].items())
            lines.append(f"  node {i}: {state}")
        return "\n".join(lines)

    # -- the fault table ----------------------------------------------------

    def _sync(self, node: int) -> None:
        """Push node's wanted links and clock to it, or remember to later."""
        if not self._running(node):
            self._dirty.discard(node)  # it starts with an empty table
            return
        if node in self._paused:
            self._dirty.add(node)
            return
        both = {j for j in range(self.nodes) if (node, j) in self._cuts and (j, node) in self._cuts}
        out_only = {j for j in range(self.nodes) if (node, j) in self._cuts} - both
        try:
            self._push_links(node, both, out_only)
            if self._clock_supported:
                with self._admin(node) as r:
                    r.execute_command("RAFT.FAULT", "CLOCK", self._clock.get(node, 0))
        except redis.RedisError as e:
            log.warning("could not set node %d's faults (will retry): %s", node, e)
            self._dirty.add(node)
            return
        self._dirty.discard(node)

    def _sync_dirty(self) -> None:
        with self._lock:
            for node in sorted(self._dirty):
                self._sync(node)

    def set_cuts(self, cuts: Iterable[Link]) -> None:
        """Make exactly ``cuts`` (``(src, dst)``: messages from ``src`` to
        ``dst`` are lost) the faulty links, pushing only to the nodes whose
        table changes."""
        wanted = set()
        for src, dst in cuts:
            self._check(src)
            self._check(dst)
            if src != dst:
                wanted.add((src, dst))
        with self._lock:
            changed = {n for link in self._cuts ^ wanted for n in link}
            self._cuts = wanted
            for node in sorted(changed | self._dirty):
                self._sync(node)

    def partition(self, *groups: Sequence[int]) -> None:
        """Only nodes in the same group talk; a node named in no group is cut
        off from every other. Replaces the cuts in force.

        Example: ``target.partition([0], [1, 2])`` isolates node 0.
        """
        seen: dict[int, int] = {}
        for g, group in enumerate(groups):
            for node in group:
                self._check(node)
                if node in seen:
                    raise ValueError(f"node {node} is in two groups")
                seen[node] = g
        for node in range(self.nodes):
            seen.setdefault(node, -1 - node)
        self.set_cuts((i, j) for i in range(self.nodes) for j in range(self.nodes) if seen[i] != seen[j])

    def isolate(self, node: int) -> None:
        """Cut node ``node`` off from every other node, both ways."""
        self.partition([node], [j for j in range(self.nodes) if j != node])

    def block(self, src: int, dst: int) -> None:
        self.set_cuts(self._cuts | {(src, dst)})

    def heal(self) -> None:
        """Restore every link: clear the link faults of every node that can be
        told now; a paused one is told when it resumes. Clock offsets stay."""
        with self._lock:
            self._cuts = set()
            for node in range(self.nodes):
                self._sync(node)

    @property
    def cuts(self) -> frozenset[Link]:
        """The one-way cuts in force, ``(src, dst)``."""
        return frozenset(self._cuts)

    def kill(self, node: int) -> None:
        self._check(node)
        with self._lock:
            self._kill(node)
            self._paused.discard(node)
            self._dirty.discard(node)

    def restart(self, node: int) -> None:
        """Start killed node ``node`` again (same data, ports and flags, no
        re-init) and push its links and clock offset to it."""
        self._check(node)
        with self._lock:
            if self._running(node):
                raise RuntimeError(f"node {node} is running; kill it first")
            self._restart(node)
            self._sync(node)

    def clock_offset(self, node: int, ms: int) -> None:
        """Shift node ``node``'s clock by ``ms`` ms through ``RAFT.FAULT CLOCK``
        (kept across restarts; ``0`` resets)."""
        self._check(node)
        if not self._clock_supported:
            raise UnsupportedFault("this kiwi-server has no RAFT.FAULT CLOCK command")
        with self._lock:
            if ms:
                self._clock[node] = int(ms)
            else:
                self._clock.pop(node, None)
            self._sync(node)

    # -- membership -----------------------------------------------------------

    def _through(self, exclude: int) -> int:
        """A node to send a membership change to: the leader if it is not
        ``exclude`` (waiting up to the server's quorum timeout for one),
        else any reachable node but ``exclude``, which passes it on."""
        deadline = time.monotonic() + self._quorum_timeout()
        while True:
            leader = self.leader()
            if leader is not None and leader != exclude:
                return leader
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for i in range(self.nodes):
            if i != exclude and self._reachable(i):
                return i
        raise RuntimeError(f"no running node but node {exclude} to change the membership through")

    def _quorum_timeout(self) -> float:
        """Seconds the server waits for a quorum before CLUSTERDOWN."""
        return 2.0

    def _membership(self, node: int, *args: Any) -> None:
        through = self._through(node)
        try:
            with self._admin(through, MEMBERSHIP_TIMEOUT) as r:
                r.execute_command("RAFT.NODE", *args)
        except redis.RedisError as e:
            command = " ".join(map(str, args))
            raise RuntimeError(f"RAFT.NODE {command} (node {node}) through node {through}: {e}") from e

    def remove(self, node: int) -> None:
        """``RAFT.NODE REMOVE`` node ``node`` through the leader (or another
        running node). ``RuntimeError`` if refused or unanswered (the change
        may then have happened or not)."""
        self._check(node)
        self._membership(node, "REMOVE", node + 1)

    def add(self, node: int) -> None:
        """``RAFT.NODE ADD`` node ``node`` with its Raft address through the
        leader; it must be running (it is added as a learner, caught up, then
        made a voter)."""
        self._check(node)
        if not self._reachable(node):
            raise RuntimeError(f"node {node} is not running (or paused): it could not catch up")
        self._membership(node, "ADD", node + 1, self.raft_address(node))

    def _detect_clock(self) -> None:
        """Whether the server has ``RAFT.FAULT CLOCK`` (0 = no offset: harmless)."""
        node = next(i for i in range(self.nodes) if self._reachable(i))
        try:
            with self._admin(node) as r:
                r.execute_command("RAFT.FAULT", "CLOCK", 0)
            self._clock_supported = True
        except redis.ResponseError:
            self._clock_supported = False

    def _wait_for_leader(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            infos = self._infos()
            if self._settled(infos):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no leader within {timeout:.1f}s:\n{self._describe(infos)}")
            time.sleep(0.05)
