"""Kiwi's pytest plugin, registered through the ``pytest11`` entry point.

Installing kiwi is enough; these fixtures are then available everywhere:

``kiwi_server``
    One Kiwi server for the whole session (``host``, ``port``, ``client()``).
``kiwi_client``
    A ``redis.Redis`` on ``kiwi_server`` with a freshly flushed database, per test.
``kiwi_db``
    An embedded engine (``kiwi.open()``) on a temporary directory, per test.
``kiwi_cluster``
    A three-node ``kiwi.Cluster`` for the session; before each test every
    killed node is restarted, every partition healed and the data flushed.
``kiwi_jepsen``
    A function that runs a :mod:`kiwi.testing` workload (by default for ten
    seconds against a fresh in-process three-node cluster), saves its
    history under the test's ``tmp_path`` and fails the test unless every
    checker finds the history valid.

Options: ``--kiwi-port PORT`` (and ``--kiwi-host``) runs the fixtures against
an already running server instead of starting one; ``--kiwi-dir DIR`` keeps
the session server's data in DIR.

Example test module::

    def test_counter(kiwi_client):
        kiwi_client.incr("hits")
        assert kiwi_client.get("hits") == b"1"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest


class ExternalServer:
    """A server that runs outside the test session (``--kiwi-port``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.dir: Optional[str] = None

    def client(self, **kwargs: Any) -> redis.Redis:  # type: ignore[name-defined]  # noqa: F821
        """A ``redis.Redis`` connected to the server."""
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        return f"<kiwi external server {self.host}:{self.port}>"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kiwi", "Kiwi fixtures")
    group.addoption(
        "--kiwi-port",
        type=int,
        default=None,
        help="run the kiwi fixtures against an already running server on this port",
    )
    group.addoption(
        "--kiwi-host",
        default="127.0.0.1",
        help="host of the server given with --kiwi-port (default 127.0.0.1)",
    )
    group.addoption(
        "--kiwi-dir",
        default=None,
        help="data directory of the session's kiwi server (default: a temporary one)",
    )


@pytest.fixture(scope="session")
def kiwi_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One Kiwi server for the test session (or the one given by --kiwi-port)."""
    port = request.config.getoption("--kiwi-port")
    if port is not None:
        yield ExternalServer(request.config.getoption("--kiwi-host"), port)
        return
    import kiwi

    with kiwi.Server(dir=request.config.getoption("--kiwi-dir")) as server:
        yield server


@pytest.fixture
def kiwi_client(kiwi_server: Any) -> Iterator[Any]:
    """A ``redis.Redis`` on the session's server, database 0 flushed first."""
    client = kiwi_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def kiwi_db() -> Iterator[Any]:
    """An embedded Kiwi database on a temporary directory, closed after the test."""
    import kiwi

    with kiwi.open() as db:
        yield db


@pytest.fixture(scope="session")
def _kiwi_cluster_session() -> Iterator[Any]:
    import kiwi

    with kiwi.Cluster(3) as cluster:
        yield cluster


@pytest.fixture
def kiwi_cluster(_kiwi_cluster_session: Any) -> Iterator[Any]:
    """A three-node in-process cluster: all nodes up, no partition, no data."""
    cluster = _kiwi_cluster_session
    for node in cluster.nodes:
        if not node.running:
            cluster.restart(node.index)
    cluster.heal()
    client = cluster.client()
    try:
        client.flushall()
    finally:
        client.close()
    yield cluster


@pytest.fixture
def kiwi_jepsen(tmp_path: Any) -> Callable[..., Any]:
    """Run a Jepsen-style test and assert its history valid.

    ``kiwi_jepsen(workload="cas-register", nemesis=None, duration=10.0,
    target="cluster", nodes=3, **options)`` calls :func:`kiwi.testing.run`
    (``options`` go to it: ``seed``, ``clients``, ``interval``...), saves the
    history as ``tmp_path/<workload>.jsonl`` (and, on a violation, its
    timeline as ``.html``) and raises ``AssertionError`` with the summary
    unless the verdict is valid; it returns the ``kiwi.testing.Result``::

        def test_register_under_partitions(kiwi_jepsen):
            kiwi_jepsen(workload="cas-register", nemesis="partition", duration=10)
    """
    import kiwi.testing

    def run_workload(
        workload: str = "cas-register",
        nemesis: Optional[str] = None,
        duration: float = 10.0,
        target: Any = "cluster",
        nodes: int = 3,
        **options: Any,
    ) -> Any:
        history = tmp_path / f"{workload}.jsonl"
        result = kiwi.testing.run(
            target,
            workload=workload,
            nemesis=nemesis,
            duration=duration,
            nodes=nodes,
            history_path=str(history),
            **options,
        )
        if result.valid is not True:
            timeline = result.timeline()
            where = f"history: {history}"
            if timeline is not None:
                timeline.save(str(history.with_suffix(".html")))
                where += f", timeline: {history.with_suffix('.html')}"
            raise AssertionError(f"{result.summary()}\n{where}")
        return result

    return run_workload
