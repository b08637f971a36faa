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

The protocol and :func:`make` live here; each kind has its own module
(:mod:`kiwi.testing.inprocess`, :mod:`kiwi.testing.processes`,
:mod:`kiwi.testing.standalone`; what the Raft clusters share is in
:mod:`kiwi.testing.raft`), and is importable from here as well.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kiwi.testing.ports import free_ports
from kiwi.testing.raftinfo import parse_members, parse_raft_info

if TYPE_CHECKING:
    from kiwi.testing.inprocess import InProcessCluster
    from kiwi.testing.processes import ProcessCluster, server_command
    from kiwi.testing.standalone import Standalone

__all__ = [
    "ADMIN_TIMEOUT",
    "ALL_CAPABILITIES",
    "CLIENT_TIMEOUT",
    "KINDS",
    "MEMBERSHIP_TIMEOUT",
    "InProcessCluster",
    "Link",
    "ProcessCluster",
    "Standalone",
    "Target",
    "UnsupportedFault",
    "free_ports",
    "make",
    "no_retry",
    "parse_members",
    "parse_raft_info",
    "server_command",
]

log = logging.getLogger("kiwi.testing")

#: Socket timeout (seconds) of the clients a target hands out.
CLIENT_TIMEOUT = 3.0
#: Socket timeout of the short admin connections (RAFT.INFO, RAFT.FAULT).
ADMIN_TIMEOUT = 2.0
#: Socket timeout of RAFT.NODE ADD/REMOVE (adding waits for the node to catch up).
MEMBERSHIP_TIMEOUT = 10.0
#: Every capability a target may have.
ALL_CAPABILITIES = frozenset({"partition", "kill", "stop", "pause", "clock", "membership"})

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
        ``{"partition", "kill", "stop", "pause", "clock", "membership"}``."""
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
        """Start a killed (or stopped) node again on its data, ports and addresses."""
        raise self._unsupported("restart a node")

    def stop(self, node: int) -> None:
        """Stop node ``node`` cleanly (``SIGTERM``: a leader hands leadership
        over first); its data stays for :meth:`restart`."""
        raise self._unsupported("stop a node cleanly")

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
        from kiwi.testing.inprocess import InProcessCluster

        target = InProcessCluster(nodes, **kw)
    elif kind == "processes":
        from kiwi.testing.processes import ProcessCluster

        target = ProcessCluster(nodes, **kw)
    elif kind == "standalone":
        from kiwi.testing.standalone import Standalone

        target = Standalone(**kw)
    else:
        raise ValueError(f"unknown target kind {kind!r} (known: {', '.join(KINDS)})")
    return target.start()


#: Names importable from here that live in a module of their own (imported on
#: first use: those modules import this one).
_ELSEWHERE = {
    "InProcessCluster": "kiwi.testing.inprocess",
    "Standalone": "kiwi.testing.standalone",
    "ProcessCluster": "kiwi.testing.processes",
    "server_command": "kiwi.testing.processes",
}


def __getattr__(name: str) -> Any:
    """The target kinds, from their own modules."""
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_ELSEWHERE])
