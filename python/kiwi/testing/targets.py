"""Targets: the Kiwi deployments ``kiwi.testing`` runs workloads against and
breaks on purpose.

A :class:`Target` is a set of nodes (``0 .. nodes-1``; node ``i`` has Raft id
``i + 1``) that hands out clients and takes faults: cut links
(:meth:`Target.partition`, :meth:`Target.block`, :meth:`Target.heal`), crashes
(:meth:`Target.kill`, :meth:`Target.restart`), freezes (:meth:`Target.pause`,
:meth:`Target.resume`), clock offsets and membership changes. Three kinds:

* :class:`InProcessCluster` — a :class:`kiwi.Cluster` in this process (fast; no
  pause, since its nodes share this process);
* :class:`ProcessCluster` — one real ``kiwi-server`` process per node: kill is
  ``kill -9``, pause is ``SIGSTOP``;
* :class:`Standalone` — one server without Raft (cluster faults are refused).

:func:`make` builds and starts one by name. A fault a target cannot inject
raises :class:`UnsupportedFault` (a ``NotImplementedError``) saying why::

    >>> from kiwi.testing.targets import make
    >>> with make("cluster", nodes=3) as target:
    ...     target.client(0).set("k", "v")
    ...     target.partition([0], [1, 2])
    ...     target.heal()
    ...     target.wait_settled(timeout=30)
    ...     target.client(2).get("k")
    True
    b'v'
"""

from __future__ import annotations

import abc
import logging
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Optional, TypeVar, Union

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("kiwi.testing")

#: Socket timeout (seconds) of the clients a target hands out.
CLIENT_TIMEOUT = 3.0
#: Socket timeout of the short admin connections (RAFT.INFO, RAFT.FAULT).
ADMIN_TIMEOUT = 2.0
#: Socket timeout of RAFT.NODE ADD/REMOVE (adding waits for the node to catch up).
MEMBERSHIP_TIMEOUT = 10.0
#: Every capability a target may have.
ALL_CAPABILITIES = frozenset({"partition", "kill", "pause", "clock", "membership"})

Link = tuple[int, int]
_T = TypeVar("_T", bound="Target")


class UnsupportedFault(NotImplementedError):
    """This target cannot inject this fault (the message says why)."""


def no_retry() -> Retry:
    """A redis-py retry policy that never retries: a command that failed is
    never sent again behind the caller's back.

    Example::

        >>> no_retry().get_retries()
        0
    """
    return Retry(NoBackoff(), 0)


def parse_raft_info(text: Union[str, bytes]) -> dict[str, str]:
    """``RAFT.INFO``'s ``field:value`` lines as a dict of strings.

    Example::

        >>> info = parse_raft_info("node_id:2\\r\\nrole:leader\\r\\nmembers:1=h:1,2=h:2\\r\\n")
        >>> info["role"], parse_members(info["members"])
        ('leader', {1: 'h:1', 2: 'h:2'})
    """
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def parse_members(value: str) -> dict[int, str]:
    """A ``members:``/``learners:`` value (``id=host:port,...``) as ``{id: address}``.

    Example::

        >>> parse_members(""), parse_members("3=127.0.0.1:9003")
        ({}, {3: '127.0.0.1:9003'})
    """
    out = {}
    for item in value.split(","):
        node, sep, addr = item.strip().partition("=")
        if sep:
            out[int(node)] = addr
    return out


def _index(value: str) -> Optional[int]:
    """A RAFT.INFO number, ``None`` for ``-``."""
    try:
        return int(value)
    except ValueError:
        return None


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that were free a moment ago.

    They are taken below the kernel's ephemeral range when there is room, so
    that the port of a killed server is not handed to some outgoing
    connection before the server restarts on it.

    Example::

        >>> a, b = free_ports(2)
        >>> a != b and a > 0
        True
    """
    low, _ = _ephemeral_range()
    pick = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(64 * count):  # bounded: collisions are rare
            if len(socks) == count or low <= 11000:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, pick.randrange(10000, low)))
                socks.append(s)
            except OSError:
                s.close()
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


# -- the protocol ---------------------------------------------------------------


class Target(abc.ABC):
    """The protocol every target implements (see the module docs).

    ``with target:`` starts it (:meth:`start` is idempotent) and closes it.
    Faults it cannot inject raise :class:`UnsupportedFault`; which ones it can
    is in :attr:`capabilities`.

    Example::

        >>> from kiwi.testing.targets import Standalone
        >>> with Standalone() as target:
        ...     target.nodes, target.leader(), sorted(target.capabilities)
        (1, 0, ['kill'])
    """

    #: Number of nodes.
    nodes: int

    @property
    def capabilities(self) -> frozenset[str]:
        """The faults this target can inject: a subset of
        ``{"partition", "kill", "pause", "clock", "membership"}``."""
        return frozenset()

    # lifecycle
    @abc.abstractmethod
    def start(self) -> Target:
        """Start every node and wait until it serves (idempotent); returns the target."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything and remove temporary directories (idempotent)."""

    def __enter__(self: _T) -> _T:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # clients and facts
    @abc.abstractmethod
    def client(self, node: int, **kw: Any) -> redis.Redis:
        """A new ``redis.Redis`` for node ``node``: socket timeouts of
        :data:`CLIENT_TIMEOUT` seconds and no retries unless ``kw`` says otherwise."""

    @abc.abstractmethod
    def leader(self) -> Optional[int]:
        """The index of the current leader, or ``None``."""

    @abc.abstractmethod
    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until the target serves and its nodes agree; ``TimeoutError`` after ``timeout``."""

    def running(self, node: int) -> bool:
        """Whether node ``node`` runs (not killed; a paused node runs)."""
        return True

    def paused(self, node: int) -> bool:
        """Whether node ``node`` is paused."""
        return False

    def members(self) -> set[int]:
        """Indexes of the nodes that are voting members (all of them, unless changed)."""
        return set(range(self.nodes))

    # faults; each default refuses
    def _unsupported(self, what: str) -> UnsupportedFault:
        return UnsupportedFault(f"{type(self).__name__} cannot {what}")

    def partition(self, *groups: Sequence[int]) -> None:
        """Let only nodes of the same group talk (both ways); a node in no
        group is alone. Replaces every link cut before."""
        raise self._unsupported("partition its network")

    def block(self, src: int, dst: int) -> None:
        """Lose every message from ``src`` to ``dst`` (one way), on top of the cuts in force."""
        raise self._unsupported("block a link")

    def set_cuts(self, cuts: Iterable[Link]) -> None:
        """Make exactly ``cuts`` (``(src, dst)`` pairs, one way each) the links that lose messages."""
        self.heal()
        for src, dst in cuts:
            self.block(src, dst)

    def heal(self) -> None:  # noqa: B027 - a target without links has nothing to restore
        """Restore every link."""

    def kill(self, node: int) -> None:
        """Crash node ``node`` (``kill -9`` for a process); its data stays."""
        raise self._unsupported("kill a node")

    def restart(self, node: int) -> None:
        """Start a killed node again on its data, ports and addresses."""
        raise self._unsupported("restart a node")

    def pause(self, node: int) -> None:
        """Freeze node ``node`` (``SIGSTOP``)."""
        raise self._unsupported("pause a node")

    def resume(self, node: int) -> None:
        """Let a paused node run again (``SIGCONT``)."""
        raise self._unsupported("resume a node")

    def clock_offset(self, node: int, ms: int) -> None:
        """Shift node ``node``'s clock by ``ms`` milliseconds (``0`` resets)."""
        raise self._unsupported("shift a clock")

    def remove(self, node: int) -> None:
        """Remove node ``node`` from the Raft membership (through another node)."""
        raise self._unsupported("change the membership")

    def add(self, node: int) -> None:
        """Add node ``node`` back to the membership (same id, same address)."""
        raise self._unsupported("change the membership")


# -- Raft clusters -----------------------------------------------------------------


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
            term = _index(info.get("term", "-"))
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
        target = max(_index(info.get("commit_index", "-")) or 0, _index(info.get("applied_index", "-")) or 0)
        for node in list(voters) + list(learners):
            i = node - 1
            if not 0 <= i < self.nodes or not self._reachable(i):
                continue
            applied = _index(infos.get(i, {}).get("applied_index", "-"))
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


class InProcessCluster(_RaftTarget):
    """A :class:`kiwi.Cluster` of ``nodes`` nodes in this process, as a target.

    Links are cut through the cluster's own fault tables, kill/restart stop
    and start a node on its data; there is no pause (the nodes share this
    process), so :meth:`pause` raises :class:`UnsupportedFault`.

    Example::

        >>> from kiwi.testing.targets import InProcessCluster
        >>> with InProcessCluster(3) as target:
        ...     leader = target.leader()
        ...     target.kill(leader)
        ...     target.restart(leader)
        ...     target.wait_settled(timeout=30)
        ...     "pause" in target.capabilities
        False
    """

    def __init__(self, nodes: int = 3, dir: Optional[str] = None, timeout: float = 10.0) -> None:
        super().__init__(nodes)
        self._dir = dir
        self._timeout = timeout
        self._cluster: Any = None

    def start(self) -> InProcessCluster:
        if self._cluster is not None:
            return self
        import kiwi

        cluster = kiwi.Cluster(self.nodes, dir=self._dir, timeout=self._timeout)
        cluster.start()
        self._cluster = cluster
        try:
            self._wait_for_leader(max(self._timeout, 10.0))
            self._detect_clock()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.stop()

    @property
    def cluster(self) -> Any:
        """The :class:`kiwi.Cluster` underneath."""
        if self._cluster is None:
            raise RuntimeError("the target is not started")
        return self._cluster

    def _running(self, node: int) -> bool:
        return self._cluster is not None and bool(self._cluster.nodes[node].running)

    def port(self, node: int) -> int:
        self._check(node)
        return int(self.cluster.nodes[node].port)

    def raft_address(self, node: int) -> str:
        self._check(node)
        return f"{self.host}:{self.cluster.nodes[node].raft_port}"

    def _push_links(self, node: int, both: set[int], out_only: set[int]) -> None:
        handle = self.cluster._live()
        handle.fault_clear(node)
        for j in sorted(both):
            handle.fault_block(node, j, True)
        for j in sorted(out_only):
            handle.fault_block(node, j, False)

    def _kill(self, node: int) -> None:
        self.cluster.kill(node)

    def _restart(self, node: int) -> None:
        self.cluster.restart(node)

    def pause(self, node: int) -> None:
        raise UnsupportedFault("in-process nodes share this process and cannot be paused; use ProcessCluster")

    def resume(self, node: int) -> None:
        raise UnsupportedFault("in-process nodes share this process and cannot be paused; use ProcessCluster")

    def __repr__(self) -> str:
        return f"<kiwi.testing.InProcessCluster nodes={self.nodes} {'running' if self._cluster else 'stopped'}>"


# -- one server -----------------------------------------------------------------------


class Standalone(Target):
    """One Kiwi server without Raft: a :class:`kiwi.Server` in this process, or
    (``process=True``) one ``kiwi-server`` process.

    It is node 0 and always its own leader. Killing and restarting keep its
    directory and port; a process can also be paused. Cluster faults
    (partitions, clocks, membership) raise :class:`UnsupportedFault`.

    Example::

        >>> from kiwi.testing.targets import Standalone, UnsupportedFault
        >>> with Standalone() as target:
        ...     try:
        ...         target.partition([0])
        ...     except UnsupportedFault as e:
        ...         print(e)
        Standalone cannot partition its network: it has one node (use make('cluster') or make('processes'))
    """

    nodes = 1
    host = "127.0.0.1"

    def __init__(
        self,
        process: bool = False,
        dir: Optional[str] = None,
        binary: Union[str, Sequence[str], None] = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.process = process
        self._requested_dir = os.fspath(dir) if dir is not None else None
        self._binary = binary
        self._start_timeout = start_timeout
        self._dir: Optional[str] = None
        self._tempdir: Optional[str] = None
        self._port: Optional[int] = None
        self._server: Any = None
        self._proc: Any = None
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"kill", "pause"} if self.process else {"kill"})

    def _unsupported(self, what: str) -> UnsupportedFault:
        return UnsupportedFault(f"Standalone cannot {what}: it has one node (use make('cluster') or make('processes'))")

    def start(self) -> Standalone:
        if self._port is not None:
            return self
        if self._requested_dir is None:
            self._tempdir = tempfile.mkdtemp(prefix="kiwi-standalone-")
        self._dir = self._requested_dir or self._tempdir
        assert self._dir is not None
        self._port = free_ports(1, self.host)[0]
        try:
            if self.process:
                os.makedirs(self._dir, exist_ok=True)
                log_path = os.path.join(self._dir, "server.log")
                args = ["--port", str(self._port), "--bind", self.host, "--dir", os.path.join(self._dir, "data")]
                args += ["--logfile", log_path]
                from kiwi.testing.processes import ServerProcess, cleanup, server_command

                self._proc = ServerProcess(server_command(self._binary), args, log_path)
                self._finalizer = weakref.finalize(self, cleanup, [self._proc], self._tempdir)
            self._start_server()
        except BaseException:
            self.close()
            raise
        return self

    def _start_server(self) -> None:
        if self._proc is not None:
            assert self._port is not None
            self._proc.start()
            self._proc.wait_ready(self.host, self._port, self._start_timeout)
        else:
            import kiwi

            self._server = kiwi.Server(port=self._port, dir=os.path.join(str(self._dir), "data")).start()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stop(5.0)
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        elif self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
        self._tempdir = None
        self._port = None

    def _check(self, node: int) -> None:
        if node != 0:
            raise ValueError(f"a standalone target has only node 0, not {node!r}")

    @property
    def port(self) -> int:
        """The server's RESP port (the same across restarts)."""
        if self._port is None:
            raise RuntimeError("the target is not started")
        return self._port

    def running(self, node: int = 0) -> bool:
        """Whether the server runs (paused counts as running)."""
        self._check(node)
        if self._proc is not None:
            return bool(self._proc.running)
        return self._server is not None

    def client(self, node: int = 0, **kw: Any) -> redis.Redis:
        self._check(node)
        options: dict[str, Any] = {
            "socket_timeout": CLIENT_TIMEOUT,
            "socket_connect_timeout": CLIENT_TIMEOUT,
            "retry": no_retry(),
        }
        options.update(kw)
        return redis.Redis(host=self.host, port=self.port, **options)

    def paused(self, node: int = 0) -> bool:
        """Whether the server process is paused."""
        self._check(node)
        return self._proc is not None and bool(self._proc.paused)

    def leader(self) -> Optional[int]:
        """0 while the server runs unpaused, else ``None``."""
        return 0 if self.running() and not self.paused() else None

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until the server answers PING."""
        deadline = time.monotonic() + timeout
        while True:
            if self.leader() == 0:
                r = self.client(0, socket_timeout=1, socket_connect_timeout=1)
                try:
                    if r.ping():
                        return
                except redis.RedisError:
                    pass
                finally:
                    r.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the standalone server did not answer within {timeout:.1f}s")
            time.sleep(0.05)

    def kill(self, node: int = 0) -> None:
        """``kill -9`` the process; in-process, stop the server (its data stays)."""
        self._check(node)
        if self._proc is not None:
            self._proc.kill()
        elif self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self, node: int = 0) -> None:
        self._check(node)
        if self.running():
            raise RuntimeError("the server is running; kill it first")
        self._start_server()

    def pause(self, node: int = 0) -> None:
        self._check(node)
        if self._proc is None:
            raise UnsupportedFault("an in-process server cannot be paused; use Standalone(process=True)")
        self._proc.pause()

    def resume(self, node: int = 0) -> None:
        self._check(node)
        if self._proc is None:
            raise UnsupportedFault("an in-process server cannot be paused; use Standalone(process=True)")
        self._proc.resume()

    def heal(self) -> None:
        """Nothing to restore: a single server has no links."""

    def __repr__(self) -> str:
        kind = "process" if self.process else "in-process"
        return f"<kiwi.testing.Standalone {kind} port={self._port}>"


#: The kinds :func:`make` knows.
KINDS = ("cluster", "processes", "standalone")


def make(kind: str, nodes: int = 3, **kw: Any) -> Target:
    """Build and start a target: ``"cluster"`` (:class:`InProcessCluster`),
    ``"processes"`` (:class:`ProcessCluster`) or ``"standalone"``
    (:class:`Standalone`, one node whatever ``nodes`` says). ``kw`` goes to
    the class. Close it (or use ``with``).

    Example::

        >>> with make("standalone") as target:
        ...     target.client(0).incr("n")
        1
        >>> make("galaxy")
        Traceback (most recent call last):
        ...
        ValueError: unknown target kind 'galaxy' (known: cluster, processes, standalone)
    """
    target: Target
    if kind == "cluster":
        target = InProcessCluster(nodes, **kw)
    elif kind == "processes":
        from kiwi.testing.processes import ProcessCluster

        target = ProcessCluster(nodes, **kw)
    elif kind == "standalone":
        target = Standalone(**kw)
    else:
        raise ValueError(f"unknown target kind {kind!r} (known: {', '.join(KINDS)})")
    return target.start()


def __getattr__(name: str) -> Any:
    """``ProcessCluster`` and ``server_command`` live in :mod:`kiwi.testing.processes`."""
    if name in ("ProcessCluster", "server_command"):
        from kiwi.testing import processes

        return getattr(processes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
