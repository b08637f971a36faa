"""A :class:`kiwi.Cluster` in this process as a target: :class:`InProcessCluster`."""

from __future__ import annotations

from typing import Any, Optional

from kiwi.testing.raft import _RaftTarget
from kiwi.testing.targets import UnsupportedFault


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
