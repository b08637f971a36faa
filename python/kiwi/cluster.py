"""An in-process Kiwi Raft cluster for tests, notebooks and scripts.

Every node is a full Kiwi server with its own RocksDB directory, RESP port
and raft port on loopback; the nodes talk Raft over real TCP. The network
between them can be cut (:meth:`Cluster.partition`, :meth:`Cluster.isolate`)
and mended (:meth:`Cluster.heal`), and nodes can be killed and restarted on
their data::

    >>> import kiwi
    >>> with kiwi.Cluster(3) as cluster:
    ...     cluster.client().set("k", "v")
    ...     cluster.nodes[2].client().get("k")
    True
    b'v'
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.retry import Retry

from kiwi import _html, _kiwi
from kiwi._resource import Resource

#: Error codes after which a connection is dropped so that the next command
#: finds the current leader: the node lost its quorum (``CLUSTERDOWN``), the
#: outcome is unknown (``TRYAGAIN``), or the node sends the client elsewhere.
LEADER_ERRORS = ("CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY")


class ClusterNode:
    """One member of a :class:`Cluster`.

    ``id`` is the node's Raft id (``index + 1``); ``index`` its position in
    :attr:`Cluster.nodes`. Its ports stay the same across
    :meth:`Cluster.kill` / :meth:`Cluster.restart`.

    Example::

        >>> import kiwi
        >>> with kiwi.Cluster(3) as cluster:
        ...     node = cluster.nodes[1]
        ...     (node.id, node.index, node.running)
        (2, 1, True)
    """

    def __init__(self, cluster: Cluster, index: int) -> None:
        self._cluster = cluster
        self.index = index

    @property
    def id(self) -> int:
        """The Raft node id (``index + 1``)."""
        return self.index + 1

    @property
    def host(self) -> str:
        """The address the node listens on."""
        return self._cluster.host

    @property
    def port(self) -> int:
        """The node's RESP port."""
        return self._cluster._live().port(self.index)

    @property
    def raft_port(self) -> int:
        """The node's Raft port."""
        return self._cluster._live().raft_port(self.index)

    @property
    def dir(self) -> str:
        """The node's data directory."""
        return self._cluster._live().dir(self.index)

    @property
    def running(self) -> bool:
        """Whether the node runs (it does until :meth:`Cluster.kill`)."""
        handle = self._cluster._handle
        return handle is not None and handle.running(self.index)

    def status(self) -> Optional[dict[str, Any]]:
        """The node's Raft state (see :meth:`Cluster.status`), ``None`` when killed."""
        return self._cluster._live().status(self.index)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` client for this node; keyword arguments go to it."""
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        if self._cluster._handle is None:
            return f"<kiwi.ClusterNode id={self.id} stopped>"
        state = "running" if self.running else "killed"
        return f"<kiwi.ClusterNode id={self.id} {self.host}:{self.port} {state}>"


class Cluster(Resource):
    """``n`` Kiwi nodes replicating one keyspace through Raft, in this process.

    Starting initialises the cluster from node 0 with every member and waits
    (up to ``timeout`` seconds) for a leader. Writes sent to a follower are
    forwarded to the leader; a node cut off from the majority answers
    ``CLUSTERDOWN``/``TRYAGAIN`` within about two seconds. Without ``dir``
    each node's data lives in a temporary directory removed on stop.

    The nodes authenticate each other on their Raft ports with
    ``raft_secret`` (a random one per cluster unless given; see
    :attr:`raft_secret`), and accept ``RAFT.FAULT`` (fault injection is on).

    Example::

        >>> import kiwi
        >>> with kiwi.Cluster(n=3) as cluster:
        ...     leader = cluster.leader()
        ...     cluster.isolate(leader)
        ...     new = cluster.wait_for_leader(exclude=[leader])
        ...     cluster.client().set("after", "failover")
        ...     cluster.heal()
        ...     new != leader
        True
        True
    """

    def __init__(
        self,
        n: int = 3,
        dir: Optional[str] = None,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        raft_secret: Optional[str] = None,
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        self._raft_secret = raft_secret if raft_secret is not None else secrets.token_hex(32)
        self._n = n
        self._requested_dir = dir
        self._host = host
        self._timeout = timeout
        self._handle: Optional[_kiwi.ClusterHandle] = None
        # Links cut by partition()/isolate(), as (from, to) node indexes.
        self._cut: set[tuple[int, int]] = set()
        self.nodes: list[ClusterNode] = [ClusterNode(self, i) for i in range(n)]

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Cluster:
        """Start every node, initialise the cluster and wait for a leader (idempotent)."""
        if self._handle is not None:
            return self
        base = self._requested_dir if self._requested_dir is not None else self._make_tempdir("kiwi-cluster-")
        dirs = [f"{base}/node{i + 1}" for i in range(self._n)]
        try:
            self._handle = _kiwi.start_cluster(dirs, host=self._host, raft_secret=self._raft_secret)
            self.wait_for_leader(self._timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node and remove the temporary directory, if any."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.stop_all()
        self._remove_tempdir()

    def _open(self) -> Cluster:
        return self.start()

    def _release(self) -> None:
        self.stop()

    def _live(self) -> _kiwi.ClusterHandle:
        if self._handle is None:
            raise RuntimeError("the cluster is not running")
        return self._handle

    # -- facts -------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address every node listens on."""
        return self._host

    @property
    def raft_secret(self) -> str:
        """The secret the nodes share on their Raft ports (``raft-secret``):
        give it to any other node that is to join (``--raft-secret``).
        ``""`` means none (possible on loopback only).

        Example::

            >>> import kiwi
            >>> len(kiwi.Cluster(3).raft_secret), kiwi.Cluster(1, raft_secret="s3cret").raft_secret
            (64, 's3cret')
        """
        return self._raft_secret

    def status(self) -> list[dict[str, Any]]:
        """Each node's Raft state: a dict of ``id``, ``role``, ``term``,
        ``leader`` (the Raft id it follows), ``commit`` and ``applied``.

        A killed node reports ``role`` ``"stopped"`` and ``None`` elsewhere.
        ``commit`` is a lower bound of the node's commit index (the larger of
        the one it last persisted and ``applied``).

        Example::

            >>> import kiwi
            >>> with kiwi.Cluster(3) as cluster:
            ...     sorted(s["role"] for s in cluster.status())
            ['follower', 'follower', 'leader']
        """
        handle = self._live()
        out = []
        for i in range(self._n):
            s = handle.status(i)
            if s is None:
                s = {"id": i + 1, "role": "stopped", "term": None, "leader": None, "commit": None, "applied": None}
            out.append(s)
        return out

    def leader(self) -> Optional[int]:
        """The index in :attr:`nodes` of the leader a majority follows, or ``None``.

        A leader cut off from the others still believes it leads; it is not
        counted until a majority (itself included) names it in its term.
        """
        statuses = self.status()
        best: Optional[tuple[int, int]] = None
        for i, s in enumerate(statuses):
            if s["role"] != "leader":
                continue
            followers = sum(1 for t in statuses if t["leader"] == s["id"] and t["term"] == s["term"])
            if followers * 2 > self._n and (best is None or s["term"] > best[1]):
                best = (i, s["term"])
        return None if best is None else best[0]

    def wait_for_leader(self, timeout: float = 10.0, exclude: Iterable[int] = ()) -> int:
        """Wait until :meth:`leader` names a node not in ``exclude``; return its index.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        excluded = set(exclude)
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None and leader not in excluded:
                return leader
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no leader within {timeout:.1f}s: {self.status()}")
            time.sleep(0.02)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` client that follows the leader.

        Each of its connections connects to the node a majority follows at
        connect time (waiting up to ``socket_connect_timeout``, else the
        cluster's ``timeout``, for one; ``ConnectionError`` if none). A
        connection that fails, or that is answered ``CLUSTERDOWN``,
        ``TRYAGAIN``, ``MOVED``, ``ASK`` or ``READONLY``, is dropped, so the
        *next* command connects to whoever leads then. The failed command
        itself is never sent again: a write that errored may or may not
        have been committed, and only the caller can decide whether to
        repeat it. For that reason the client does not retry by default
        (``retry`` defaults to no retries; pass one to opt in).
        ``single_connection_client`` is not supported. Other keyword
        arguments go to ``redis.Redis``.

        Example: the client outlives the leader it first talked to; at most
        one command fails in between::

            >>> import kiwi, redis
            >>> with kiwi.Cluster(3) as cluster:
            ...     r = cluster.client(socket_timeout=10)
            ...     r.set("k", "v")
            ...     old = cluster.leader()
            ...     cluster.isolate(old)
            ...     try:
            ...         r.set("k", "w")  # the cut-off leader cannot commit
            ...     except redis.RedisError as e:
            ...         print(type(e).__name__)
            ...         r.set("k", "w")  # the next command goes to the new leader
            ...     r.get("k")
            True
            ClusterDownError
            True
            b'w'
        """
        if kwargs.pop("single_connection_client", False):
            raise ValueError("Cluster.client() does not support single_connection_client")
        return _leader_client(self, **kwargs)

    # -- faults ------------------------------------------------------------

    def partition(self, *groups: Sequence[int]) -> None:
        """Cut the Raft links, both ways, between every two of ``groups``.

        ``cluster.partition([0], [1, 2])`` leaves node 0 alone and nodes 1
        and 2 together. Links inside a group are left as they are.
        """
        handle = self._live()
        for a, group in enumerate(groups):
            for other in groups[a + 1 :]:
                for i in group:
                    for j in other:
                        if handle.running(i):
                            handle.fault_block(i, j, True)
                        if handle.running(j):
                            handle.fault_block(j, i, True)
                        self._cut.update({(i, j), (j, i)})

    def isolate(self, i: int) -> None:
        """Cut node ``i`` off from every other node, both ways."""
        self.partition([i], [j for j in range(self._n) if j != i])

    def heal(self) -> None:
        """Mend every link cut by :meth:`partition` or :meth:`isolate`."""
        self._live().heal()
        self._cut.clear()

    def kill(self, i: int) -> None:
        """Stop node ``i``; its data stays for :meth:`restart`."""
        self._live().stop(i)

    def restart(self, i: int) -> None:
        """Start a killed node ``i`` again on its data and its ports."""
        self._live().restart(i)

    def _repr_html_(self) -> str:
        """Jupyter's view: one row per node (address, role, term, leader,
        commit and applied index) and the partitions in force.

        Example::

            >>> import kiwi
            >>> with kiwi.Cluster(n=3) as cluster:
            ...     cluster.isolate(0)
            ...     "node 1 cut off from 2, 3" in cluster._repr_html_()
            True
        """
        if self._handle is None:
            return _html.table("kiwi.Cluster", [("state", "stopped")])
        rows: list[_html.Row] = []
        for node, st in zip(self.nodes, self.status()):
            if st["role"] == "stopped":
                rows.append((f"node {node.id}", f"{node.host}:{node.port} killed"))
                continue
            rows.append(
                (
                    f"node {node.id}",
                    f"{node.host}:{node.port} {st['role']}, term {st['term']}, leader {st['leader']}, "
                    f"commit {st['commit']}, applied {st['applied']}",
                )
            )
        cut_off: dict[int, list[str]] = {}
        for i, j in sorted(self._cut):
            cut_off.setdefault(i, []).append(str(j + 1))
        for i, others in sorted(cut_off.items()):
            rows.append(("partition", f"node {i + 1} cut off from {', '.join(others)}"))
        if not cut_off:
            rows.append(("partitions", "none"))
        return _html.table("kiwi.Cluster", rows)

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<kiwi.Cluster n={self._n} stopped>"
        running = sum(1 for node in self.nodes if node.running)
        return f"<kiwi.Cluster n={self._n} {running} running leader={self.leader()}>"


def is_leader_error(error: BaseException) -> bool:
    """Whether ``error`` is a reply after which the leader should be looked up again.

    Example::

        >>> from redis.exceptions import ClusterDownError, ResponseError
        >>> is_leader_error(ClusterDownError("no quorum")), is_leader_error(ResponseError("WRONGTYPE x"))
        (True, False)
    """
    if not isinstance(error, redis.ResponseError):
        return False
    code = getattr(error, "status_code", None)
    if code in LEADER_ERRORS:
        return True
    # redis-py strips a known code from the message; older versions keep the
    # class only, and unknown codes stay in the text.
    known = (
        redis.exceptions.ClusterDownError,
        redis.exceptions.TryAgainError,
        redis.exceptions.AskError,
        redis.exceptions.ReadOnlyError,
    )
    return isinstance(error, known) or str(error).startswith(LEADER_ERRORS)


class LeaderConnection(Connection):
    """A redis-py TCP connection whose address is the cluster's leader.

    ``leader_address`` is asked for ``(host, port)`` each time the socket
    is opened. After an error reply that names the leadership
    (:func:`is_leader_error`) the connection marks itself stale and is
    closed before it sends anything more, so the following command opens a
    socket to the leader of that moment. Nothing is ever sent twice.
    """

    def __init__(
        self,
        *args: Any,
        leader_address: Callable[[Optional[float]], tuple[str, int]],
        **kwargs: Any,
    ) -> None:
        self._leader_address = leader_address
        self._stale = False
        super().__init__(*args, **kwargs)

    def _connect(self) -> Any:
        self.host, self.port = self._leader_address(self.socket_connect_timeout)
        self._stale = False
        return super()._connect()

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self._stale:
            self.disconnect()
        super().send_packed_command(command, check_health)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as e:
            # Not dropped here: a pipeline may still have replies to read.
            if is_leader_error(e):
                self._stale = True
            raise


def _leader_client(cluster: Cluster, **kwargs: Any) -> redis.Redis:
    """A ``redis.Redis`` whose connection pool makes :class:`LeaderConnection`\\ s."""

    def leader_address(wait: Optional[float]) -> tuple[str, int]:
        timeout = cluster._timeout if wait is None else wait
        try:
            index = cluster.wait_for_leader(timeout)
        except (TimeoutError, RuntimeError) as e:
            raise redis.ConnectionError(f"no kiwi cluster leader: {e}") from None
        return cluster.host, cluster.nodes[index].port

    kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    first = cluster.nodes[cluster.wait_for_leader(cluster._timeout)]
    client = redis.Redis(host=first.host, port=first.port, **kwargs)
    pool = client.connection_pool
    # No connection exists yet (the pool makes them on demand): from now on
    # every one is a LeaderConnection.
    pool.connection_class = LeaderConnection
    pool.connection_kwargs["leader_address"] = leader_address
    return client
