"""Fixtures for the Kiwi Python test suite.

Two ways to run:

* default: one in-process ``kiwi.Server()`` is started for the session;
* ``KIWI_TEST_EXTERNAL_PORT=6390``: tests talk to an already running server on
  127.0.0.1:6390 (e.g. the reference ``redis-server``). Deselect the tests
  that need a Kiwi of their own with ``-m "not kiwi_only"``.

Tests marked ``kiwi_only`` (persistence, requirepass, the server process)
always start their own Kiwi, whatever the mode.

Modules marked ``cluster_targets`` run each test that uses ``r``, ``raw`` or
``make_client`` three times (the ``target`` parameter): against the
standalone server, and against a three-node ``kiwi.Cluster`` (one per
module, emptied by ``r`` before each test) through its leader and through a
follower (writes forwarded, reads linearized). The cluster runs carry
``kiwi_only``, so ``-m "not kiwi_only"`` deselects them in external mode.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kiwitest import HOST, IO_TIMEOUT, RawConnection, no_retry

if TYPE_CHECKING:
    import kiwi

pytest_plugins = ["pytester"]

EXTERNAL_PORT_ENV = "KIWI_TEST_EXTERNAL_PORT"
KIWI_ONLY = "kiwi_only"
CLUSTER_TARGETS = "cluster_targets"
#: Where the ``r``/``raw``/``make_client`` fixtures connect.
STANDALONE, CLUSTER_LEADER, CLUSTER_FOLLOWER = "standalone", "cluster-leader", "cluster-follower"
#: Fixtures that imply a Kiwi of the test's own; tests using them get the marker.
KIWI_FIXTURES = frozenset({"kiwi_mod"})

ClientFactory = Callable[..., redis.Redis]
RawFactory = Callable[[], RawConnection]


@pytest.fixture(scope="module", autouse=True)
def collect_garbage_after_each_module() -> Iterator[None]:
    """A socket or file left open inside a reference cycle warns only when the
    cycle is collected: collect after each module, so that the warning (an
    error here: ``filterwarnings``) fails the module that leaked it, not
    whichever later test the collector happens to interrupt."""
    yield
    gc.collect()


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's marker."""
    config.addinivalue_line(
        "markers",
        f"{KIWI_ONLY}: starts a Kiwi server of its own (needs the kiwi package); "
        f'deselect with -m "not {KIWI_ONLY}" when testing another server',
    )
    config.addinivalue_line(
        "markers",
        f"{CLUSTER_TARGETS}: also run the test's clients against a three-node kiwi.Cluster, "
        "through its leader and through a follower (the `target` parameter)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``target`` for tests of modules marked ``cluster_targets``.

    Other tests are not parametrized (their ids stay as they are) and run
    against the standalone server only.
    """
    if "target" not in metafunc.fixturenames or metafunc.definition.get_closest_marker(CLUSTER_TARGETS) is None:
        return
    kiwi_only = getattr(pytest.mark, KIWI_ONLY)
    metafunc.parametrize(
        "target",
        [
            pytest.param(STANDALONE, id=STANDALONE),
            pytest.param(CLUSTER_LEADER, id=CLUSTER_LEADER, marks=kiwi_only),
            pytest.param(CLUSTER_FOLLOWER, id=CLUSTER_FOLLOWER, marks=kiwi_only),
        ],
        indirect=True,
        scope="function",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a Kiwi-only fixture, before ``-m`` filtering."""
    for item in items:
        if KIWI_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(KIWI_ONLY)


def external_port() -> int | None:
    """The port of an external server under test, if one was configured."""
    value = os.environ.get(EXTERNAL_PORT_ENV, "").strip()
    return int(value) if value else None


@pytest.fixture(scope="session")
def server_addr() -> Iterator[tuple[str, int]]:
    """(host, port) of the shared server under test."""
    port = external_port()
    if port is not None:
        yield HOST, port
        return
    import kiwi  # lazily: external mode must work without the package

    with kiwi.Server() as server:
        yield server.host, server.port


@pytest.fixture(scope="module")
def cluster_session() -> Iterator[kiwi.Cluster]:
    """One three-node ``kiwi.Cluster`` for the ``cluster_targets`` tests of a module.

    Per module rather than per session, so that no cluster keeps running
    (threads, ports, directories) through the modules that do not use it; it
    costs one cluster start per module (three modules). The WAL files that
    FLUSHALL once left behind on every node, which made a long-lived cluster
    slow to stop, are fixed (``test_cluster.py::
    test_flushall_does_not_pile_up_wal_files`` guards it).
    """
    import kiwi

    with kiwi.Cluster(3) as cluster:
        yield cluster


@pytest.fixture
def target(request: pytest.FixtureRequest) -> str:
    """Where the test's clients connect: ``standalone`` unless parametrized."""
    return str(getattr(request, "param", STANDALONE))


@pytest.fixture
def target_addr(target: str, request: pytest.FixtureRequest) -> tuple[str, int]:
    """(host, port) the test's clients use: the shared server, or a node of
    the module's cluster (its leader, or a follower) with every node up and no
    partition. The ``r`` fixture empties whichever it is."""
    if target == STANDALONE:
        return tuple(request.getfixturevalue("server_addr"))  # type: ignore[return-value]
    cluster = request.getfixturevalue("cluster_session")
    for node in cluster.nodes:
        if not node.running:
            cluster.restart(node.index)
    cluster.heal()
    leader = cluster.wait_for_leader(timeout=IO_TIMEOUT)
    index = leader if target == CLUSTER_LEADER else (leader + 1) % len(cluster.nodes)
    node = cluster.nodes[index]
    return node.host, node.port


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    """The RESP version the test's clients speak."""
    return int(request.param)


@pytest.fixture
def make_client(target_addr: tuple[str, int], protocol: int) -> Iterator[ClientFactory]:
    """Factory for extra clients on the shared server (or the test's cluster
    node, see ``target``), using the test's protocol.

    Every client made is closed at teardown.
    """
    host, port = target_addr
    clients: list[redis.Redis] = []

    def factory(**kwargs: Any) -> redis.Redis:
        options: dict[str, Any] = {
            "protocol": protocol,
            "socket_timeout": IO_TIMEOUT,
            "socket_connect_timeout": IO_TIMEOUT,
            "retry": no_retry(),
        }
        options.update(kwargs)
        client = redis.Redis(host=host, port=port, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def r(make_client: ClientFactory) -> redis.Redis:
    """A client on an empty server (FLUSHALL first), once per protocol."""
    client = make_client()
    client.flushall()
    return client


@pytest.fixture
def raw(target_addr: tuple[str, int]) -> Iterator[RawFactory]:
    """Factory for raw-socket connections to the shared server (or the test's
    cluster node, see ``target``); closed at teardown."""
    host, port = target_addr
    conns: list[RawConnection] = []

    def factory() -> RawConnection:
        conn = RawConnection(host, port)
        conns.append(conn)
        return conn

    yield factory
    for conn in conns:
        conn.close()


@pytest.fixture
def kiwi_mod() -> ModuleType:
    """The ``kiwi`` package, for tests that start servers of their own.

    Using this fixture marks the test ``kiwi_only``. A missing package is an
    error, not a skip: these tests must run wherever Kiwi is built.
    """
    import kiwi

    return kiwi
