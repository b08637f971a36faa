"""Nemeses: seeded schedules of faults for a :class:`~kiwi.testing.targets.Target`.

A nemesis alternates a fault and its recovery: its first :meth:`Nemesis.inject`
breaks something (a partition, a killed node...), the next one repairs it,
the third breaks something new, and so on; :meth:`Nemesis.heal` repairs
whatever is still broken. Every random choice comes from the ``rng`` passed
in and never depends on what the cluster answers, so the same seed gives the
same schedule (a fault aimed at "the leader" names whichever node leads then).

=================  ===========================================================
name               fault (the recovery undoes it)
=================  ===========================================================
``partition``      random halves (``n // 2`` nodes against the rest)
``isolate-leader`` the leader alone against the rest
``ring``           majority ring: nodes on a random circle, each sees only its
                   neighbours (with 5 nodes each sees a majority, no two the
                   same; with 3 nothing is cut)
``bridge``         two halves that talk only through one bridge node
``kill``           ``kill -9`` a random node or the leader; restart it
``rolling-restart`` stop the nodes cleanly (``SIGTERM``) one after the other,
                   in a random order; restart each before the next stops
``pause``          ``SIGSTOP`` a random node or the leader; ``SIGCONT`` it
``clock``          shift one node's clock by up to ±4 s; reset it
``membership``     remove a node from the Raft membership; add it back (never
                   fewer voters than a majority of the original ones)
``none``           nothing (a baseline)
=================  ===========================================================

:func:`by_name` builds one from a spec; ``"partition,kill"`` composes parts,
each :meth:`inject` going to the next part in turn::

    >>> import random
    >>> from kiwi.testing.nemesis import by_name
    >>> from kiwi.testing.targets import InProcessCluster
    >>> with InProcessCluster(3) as target:
    ...     nemesis = by_name("partition,kill")
    ...     rng = random.Random(7)
    ...     nemesis.schedule(target, rng)
    ...     faults = [nemesis.inject(target, rng) for _ in range(3)]
    ...     nemesis.heal(target)
    ...     target.wait_settled(timeout=30)
    >>> faults[0]
    'partition [2] | [0, 1]'
"""

from __future__ import annotations

import abc
import random
import time
from collections.abc import Sequence
from typing import Optional

from kiwi.testing.targets import Target, UnsupportedFault

#: How long :meth:`Nemesis.heal` keeps retrying a repair that needs a quorum.
HEAL_TIMEOUT = 60.0


class Nemesis(abc.ABC):
    """The protocol: ``schedule`` once, ``inject`` every interval, ``heal`` at the end.

    Subclasses implement :meth:`_fault` (break something, using only ``rng``
    for choices) and :meth:`_recover` (repair it); ``inject`` alternates them.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Clock
        >>> Clock().name, sorted(Clock.requires)
        ('clock', ['clock'])
    """

    #: The name :func:`by_name` knows it by.
    name: str = ""
    #: Capabilities the target must have.
    requires: frozenset[str] = frozenset()
    #: Fewest nodes it makes sense on.
    min_nodes: int = 2
    #: Composed heals run in this order (processes back before links, links
    #: before membership changes, which need a quorum).
    heal_order: int = 50

    def __init__(self) -> None:
        self._broken = False

    def schedule(self, target: Target, rng: random.Random) -> None:
        """Check that ``target`` can take this nemesis (``UnsupportedFault``
        saying why not) and start a fresh schedule."""
        missing = set(self.requires) - set(target.capabilities)
        if missing:
            raise UnsupportedFault(
                f"nemesis {self.name!r} needs {', '.join(sorted(missing))}, which "
                f"{type(target).__name__} cannot do (it can: {', '.join(sorted(target.capabilities)) or 'nothing'})"
            )
        if target.nodes < self.min_nodes:
            raise UnsupportedFault(f"nemesis {self.name!r} needs at least {self.min_nodes} nodes, not {target.nodes}")
        self._broken = False

    def inject(self, target: Target, rng: random.Random) -> str:
        """The next step: a fault, or the recovery of the previous one. Returns what it did."""
        if self._broken:
            self._broken = False
            return self._recover(target)
        self._broken = True
        return self._fault(target, rng)

    def heal(self, target: Target) -> None:
        """Undo everything this nemesis did (idempotent)."""
        if self._broken:
            self._recover(target)
        self._broken = False

    @abc.abstractmethod
    def _fault(self, target: Target, rng: random.Random) -> str: ...

    @abc.abstractmethod
    def _recover(self, target: Target) -> str: ...

    def __repr__(self) -> str:
        return f"<nemesis {self.name}>"


def _leader_or(target: Target, rng: random.Random) -> tuple[int, str]:
    """The leader or a random node, half the time each: ``(node, label)``.

    Always draws the same two numbers, so the rng stream does not depend
    on the cluster.
    """
    want_leader = rng.random() < 0.5
    pick = rng.randrange(target.nodes)
    if want_leader:
        leader = target.leader()
        if leader is not None:
            return leader, f"node {leader} (leader)"
    return pick, f"node {pick}"


# -- the network ------------------------------------------------------------------


class _Network(Nemesis):
    requires = frozenset({"partition"})
    heal_order = 20

    def _recover(self, target: Target) -> str:
        target.heal()
        return "heal network"


class Partition(_Network):
    """Random halves: ``n // 2`` shuffled nodes against the rest.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Partition
        >>> Partition().groups(5, random.Random(1))
        ([2, 3], [0, 1, 4])
    """

    name = "partition"

    def groups(self, nodes: int, rng: random.Random) -> tuple[list[int], list[int]]:
        """The two halves (each sorted), smaller first."""
        order = list(range(nodes))
        rng.shuffle(order)
        return sorted(order[: nodes // 2]), sorted(order[nodes // 2 :])

    def _fault(self, target: Target, rng: random.Random) -> str:
        small, large = self.groups(target.nodes, rng)
        target.partition(small, large)
        return f"partition {small} | {large}"


class IsolateLeader(_Network):
    """The leader (or node 0 if none leads) alone against the rest.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import IsolateLeader
        >>> from kiwi.testing.targets import InProcessCluster
        >>> with InProcessCluster(3) as target:
        ...     nemesis, rng = IsolateLeader(), random.Random(1)
        ...     nemesis.schedule(target, rng)
        ...     print(nemesis.inject(target, rng))
        ...     print(nemesis.inject(target, rng))
        isolate leader ... from [...]
        heal network
    """

    name = "isolate-leader"

    def _fault(self, target: Target, rng: random.Random) -> str:
        leader = target.leader()
        node = 0 if leader is None else leader
        rest = [i for i in range(target.nodes) if i != node]
        target.partition([node], rest)
        return f"isolate {'leader ' if leader is not None else 'node '}{node} from {rest}"


class Ring(_Network):
    """Majority ring: the nodes on a random circle, each talking only to the
    ``k`` nearest on either side, ``k`` the least with ``2k + 1`` a majority.

    Example: with 5 nodes each sees itself and two others, a different
    majority each::

        >>> import random
        >>> from kiwi.testing.nemesis import Ring
        >>> order, cuts = Ring().cuts(5, random.Random(3))
        >>> order, sorted({frozenset(c) for c in cuts}, key=sorted)[:2]
        ([0, 2, 3, 4, 1], [frozenset({0, 3}), frozenset({0, 4})])
    """

    name = "ring"
    min_nodes = 3

    def cuts(self, nodes: int, rng: random.Random) -> tuple[list[int], set[tuple[int, int]]]:
        """The circle and the (both-way) cuts between nodes not near on it."""
        order = list(range(nodes))
        rng.shuffle(order)
        majority = nodes // 2 + 1
        k = majority // 2  # 2k + 1 >= majority
        cuts = set()
        for a in range(nodes):
            for b in range(nodes):
                distance = min((a - b) % nodes, (b - a) % nodes)
                if distance > k:
                    cuts.add((order[a], order[b]))
        return order, cuts

    def _fault(self, target: Target, rng: random.Random) -> str:
        order, cuts = self.cuts(target.nodes, rng)
        target.set_cuts(cuts)
        circle = "-".join(map(str, order))
        return f"ring {circle}" + ("" if cuts else " (every node adjacent: nothing cut)")


class Bridge(_Network):
    """Two halves that talk only through one bridge node (which sees all).

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Bridge
        >>> Bridge().halves(5, random.Random(2))
        ([1, 3], 2, [0, 4])
    """

    name = "bridge"
    min_nodes = 3

    def halves(self, nodes: int, rng: random.Random) -> tuple[list[int], int, list[int]]:
        """``(one half, bridge, other half)``."""
        order = list(range(nodes))
        rng.shuffle(order)
        bridge, rest = order[0], order[1:]
        half = len(rest) // 2
        return sorted(rest[:half]), bridge, sorted(rest[half:])

    def _fault(self, target: Target, rng: random.Random) -> str:
        a, bridge, b = self.halves(target.nodes, rng)
        target.set_cuts({(i, j) for i in a for j in b} | {(j, i) for i in a for j in b})
        return f"bridge {a} <-> {bridge} <-> {b}"


# -- processes ---------------------------------------------------------------------


class Kill(Nemesis):
    """``kill -9`` the leader or a random node; restart it at the next step or heal.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Kill
        >>> from kiwi.testing.targets import InProcessCluster
        >>> with InProcessCluster(3) as target:
        ...     nemesis, rng = Kill(), random.Random(4)
        ...     nemesis.schedule(target, rng)
        ...     print(nemesis.inject(target, rng))
        ...     nemesis.heal(target)
        ...     target.wait_settled(timeout=30)
        kill -9 node ...
    """

    name = "kill"
    requires = frozenset({"kill"})
    min_nodes = 1
    heal_order = 10

    def __init__(self) -> None:
        super().__init__()
        self._victim: Optional[int] = None

    def _fault(self, target: Target, rng: random.Random) -> str:
        node, label = _leader_or(target, rng)
        target.kill(node)
        self._victim = node
        return f"kill -9 {label}"

    def _recover(self, target: Target) -> str:
        node, self._victim = self._victim, None
        return _restart(target, node)


class RollingRestart(Nemesis):
    """Stop the nodes cleanly (``SIGTERM``; a leader hands leadership over
    first) one after the other, restarting each at the next step or heal: an
    operator's rolling restart. The order is a random permutation, repeated.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import RollingRestart
        >>> RollingRestart().name, sorted(RollingRestart.requires)
        ('rolling-restart', ['stop'])
    """

    name = "rolling-restart"
    requires = frozenset({"stop"})
    min_nodes = 1
    heal_order = 10

    def __init__(self) -> None:
        super().__init__()
        self._order: list[int] = []
        self._stopped: Optional[int] = None

    def _fault(self, target: Target, rng: random.Random) -> str:
        if not self._order:
            self._order = rng.sample(range(target.nodes), target.nodes)
        node = self._order.pop(0)
        leader = target.leader()
        target.stop(node)
        self._stopped = node
        return f"stop node {node}" + (" (leader)" if leader == node else "")

    def _recover(self, target: Target) -> str:
        node, self._stopped = self._stopped, None
        return _restart(target, node)


def _restart(target: Target, node: Optional[int]) -> str:
    """Start a killed or stopped node again, unless someone already did."""
    if node is None:
        return "restart nothing"
    if target.running(node):
        return f"restart node {node} skipped: it runs"
    target.restart(node)
    return f"restart node {node}"


class Pause(Nemesis):
    """``SIGSTOP`` the leader or a random node; ``SIGCONT`` it at the next step or heal.

    Only processes can be paused::

        >>> import random
        >>> from kiwi.testing.nemesis import Pause
        >>> from kiwi.testing.targets import Standalone
        >>> with Standalone() as target:
        ...     Pause().schedule(target, random.Random(1))
        Traceback (most recent call last):
        ...
        kiwi.testing.targets.UnsupportedFault: nemesis 'pause' needs pause, which Standalone cannot do (it can: kill)
    """

    name = "pause"
    requires = frozenset({"pause"})
    min_nodes = 1
    heal_order = 0

    def __init__(self) -> None:
        super().__init__()
        self._victim: Optional[int] = None

    def _fault(self, target: Target, rng: random.Random) -> str:
        node, label = _leader_or(target, rng)
        if not target.running(node):  # killed by another nemesis
            return f"pause {label} skipped: not running"
        target.pause(node)
        self._victim = node
        return f"pause {label}"

    def _recover(self, target: Target) -> str:
        node, self._victim = self._victim, None
        if node is None:
            return "resume nothing"
        target.resume(node)
        return f"resume node {node}"


class Clock(Nemesis):
    """Shift one random node's clock by 250 ms to 4 s, ahead or behind; reset it.

    It needs a server with ``RAFT.FAULT CLOCK`` (the ``clock`` capability)::

        >>> from kiwi.testing.nemesis import Clock
        >>> sorted(Clock.requires), Clock.max_ms
        (['clock'], 4000)
    """

    name = "clock"
    requires = frozenset({"clock"})
    min_nodes = 1
    heal_order = 30
    #: Largest offset, in ms.
    max_ms = 4000

    def __init__(self) -> None:
        super().__init__()
        self._shifted: set[int] = set()

    def _fault(self, target: Target, rng: random.Random) -> str:
        node = rng.randrange(target.nodes)
        ms = rng.choice((-1, 1)) * rng.randint(250, self.max_ms)
        target.clock_offset(node, ms)
        self._shifted.add(node)
        return f"clock node {node} {ms:+d} ms"

    def _recover(self, target: Target) -> str:
        nodes = sorted(self._shifted)
        for node in nodes:
            target.clock_offset(node, 0)
        self._shifted.clear()
        return f"reset clock of node {', '.join(map(str, nodes))}" if nodes else "reset no clock"


class Membership(Nemesis):
    """Remove a random voter from the membership; add it back at the next
    step. Never leaves fewer voters than a majority of the original ones.

    Nothing is removed while too few voters run (killed or paused by
    another nemesis) for the change to reach a quorum. A change that fails
    anyway (no quorum at the moment, say) is reported in the description;
    the node is still added back later, whether or not the removal happened.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Membership
        >>> from kiwi.testing.targets import InProcessCluster
        >>> with InProcessCluster(3) as target:
        ...     nemesis, rng = Membership(), random.Random(0)
        ...     nemesis.schedule(target, rng)
        ...     print(nemesis.inject(target, rng), len(target.members()))
        ...     print(nemesis.inject(target, rng), len(target.members()))
        remove node 1 2
        add node 1 3
    """

    name = "membership"
    requires = frozenset({"membership"})
    min_nodes = 3
    heal_order = 40

    def __init__(self) -> None:
        super().__init__()
        self._removed: list[int] = []

    def _fault(self, target: Target, rng: random.Random) -> str:
        candidates = [i for i in range(target.nodes) if i not in self._removed]
        node = rng.choice(candidates)
        if target.nodes - len(self._removed) - 1 < target.nodes // 2 + 1:
            return f"remove nothing (node {node} would leave no majority of {target.nodes})"
        # A change needs a quorum of the old and of the new voters; with
        # nodes down (another nemesis) it would only hang until it times out.
        voters = set(range(target.nodes)) - set(self._removed)
        up = {i for i in voters if target.running(i) and not target.paused(i)}
        if len(up) * 2 <= len(voters) or len(up - {node}) * 2 <= len(voters) - 1:
            return f"remove nothing (node {node}: too few voters up)"
        self._removed.append(node)
        try:
            target.remove(node)
        except (RuntimeError, OSError) as e:
            return f"remove node {node} failed: {e}"
        return f"remove node {node}"

    def _recover(self, target: Target) -> str:
        done = []
        for node in list(self._removed):
            try:
                if node not in target.members():
                    target.add(node)
            except (RuntimeError, OSError) as e:
                return f"add node {node} failed (retried later): {e}"
            self._removed.remove(node)
            done.append(node)
        return f"add node {', '.join(map(str, done))}" if done else "add nothing"

    def heal(self, target: Target) -> None:
        """Add every removed node back, retrying (a change needs a quorum)
        for up to :data:`HEAL_TIMEOUT` seconds."""
        deadline = time.monotonic() + HEAL_TIMEOUT
        last = ""
        while self._removed:
            last = self._recover(target)
            if not self._removed:
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"could not add back nodes {self._removed} within {HEAL_TIMEOUT:.0f}s: {last}")
            time.sleep(0.2)
        self._broken = False


class Nothing(Nemesis):
    """No fault at all: a baseline run with the same schedule of steps.

    Example::

        >>> import random
        >>> from kiwi.testing.nemesis import Nothing
        >>> Nothing().inject(None, random.Random(0))  # type: ignore[arg-type]
        'nothing'
    """

    name = "none"
    min_nodes = 1

    def _fault(self, target: Target, rng: random.Random) -> str:
        return "nothing"

    def _recover(self, target: Target) -> str:
        return "nothing"


#: Every nemesis by name.
NEMESES: dict[str, type[Nemesis]] = {
    cls.name: cls
    for cls in (Partition, IsolateLeader, Ring, Bridge, Kill, RollingRestart, Pause, Clock, Membership, Nothing)
}


class Composed(Nemesis):
    """Several nemeses taking turns: inject ``k`` goes to part ``k % len(parts)``.

    Example::

        >>> from kiwi.testing.nemesis import Composed, Kill, Partition
        >>> Composed([Partition(), Kill()]).name
        'partition,kill'
    """

    def __init__(self, parts: Sequence[Nemesis]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("compose needs at least one nemesis")
        self.parts = list(parts)
        self.name = ",".join(p.name for p in self.parts)
        self.requires = frozenset().union(*(p.requires for p in self.parts))
        self.min_nodes = max(p.min_nodes for p in self.parts)
        self._turn = 0

    def schedule(self, target: Target, rng: random.Random) -> None:
        for part in self.parts:
            part.schedule(target, rng)
        self._turn = 0

    def inject(self, target: Target, rng: random.Random) -> str:
        part = self.parts[self._turn % len(self.parts)]
        self._turn += 1
        return part.inject(target, rng)

    def heal(self, target: Target) -> None:
        """Heal every part: paused and killed nodes first, then links and
        clocks, membership last."""
        for part in sorted(self.parts, key=lambda p: p.heal_order):
            part.heal(target)

    def _fault(self, target: Target, rng: random.Random) -> str:  # pragma: no cover - inject is overridden
        raise NotImplementedError

    def _recover(self, target: Target) -> str:  # pragma: no cover - inject is overridden
        raise NotImplementedError


def by_name(spec: str) -> Nemesis:
    """A new nemesis from a spec: one name, or names separated by commas
    (composed). ``ValueError`` for an unknown name.

    Example::

        >>> by_name("kill").name, by_name("partition, clock").name
        ('kill', 'partition,clock')
        >>> by_name("flood")
        Traceback (most recent call last):
        ...
        ValueError: unknown nemesis 'flood' (known: bridge, clock, isolate-leader, kill, ...)
    """
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError("empty nemesis spec")
    parts = []
    for n in names:
        cls = NEMESES.get(n)
        if cls is None:
            raise ValueError(f"unknown nemesis {n!r} (known: {', '.join(sorted(NEMESES))})")
        parts.append(cls())
    return parts[0] if len(parts) == 1 else Composed(parts)


def compose(spec: str | Sequence[Nemesis]) -> Nemesis:
    """``by_name(spec)`` for a string; a :class:`Composed` of the given nemeses otherwise.

    Example::

        >>> compose("partition,kill").name
        'partition,kill'
    """
    if isinstance(spec, str):
        return by_name(spec)
    return spec[0] if len(spec) == 1 else Composed(spec)
