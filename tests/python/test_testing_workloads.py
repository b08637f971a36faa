"""kiwi.testing's workloads: each one, run for a moment against a standalone
Kiwi and against Debian's redis-server (a known-good system), must give a
valid history with real work in it; and the cas op's corner cases (compared
unequal, EXEC aborted by WATCH, refused before proposing) are recorded as
the cas-register model needs them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import WatchError

import kiwi
import kiwi.testing
from kiwi.testing import workloads
from kiwi.testing.history import FAIL, INFO, OK, ProcessClient, Recorder
from kiwitest import SingleServerTarget, reference_redis_server

pytestmark = pytest.mark.kiwi_only

#: Seconds of client ops per run: enough for a few hundred ops at the default rate.
DURATION = 1.5


@pytest.fixture(scope="module")
def kiwi_target() -> Iterator[SingleServerTarget]:
    with kiwi.Server() as server:
        yield SingleServerTarget(server.port)


@pytest.fixture(scope="module")
def redis_target() -> Iterator[SingleServerTarget]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-testing-redis-") as port:
        yield SingleServerTarget(port)


#: The checkers each workload's verdicts come from.
CHECKERS = {
    "cas-register": {"linearizable cas-register"},
    "set": {"set"},
    "counter": {"counter"},
    "multi-key": {"multi-key atomicity", "linearizable register per key"},
    "list-append": {"list-append order", "linearizable list-append per key"},
}


@pytest.mark.parametrize("server", ["kiwi", "redis"])
@pytest.mark.parametrize("name", sorted(workloads.WORKLOADS))
def test_workload_is_valid_on_a_healthy_server(name: str, server: str, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue(f"{server}_target")
    workload = workloads.make(name)
    result = kiwi.testing.run(target, workload=workload, duration=DURATION, seed=3, clients=4, rate=200)
    assert result.valid is True, result.summary()
    assert set(result.verdicts) == CHECKERS[name]
    counts = result.counts()
    assert counts["ok"] >= 100, result.summary()
    assert counts["info"] == 0, "a healthy server leaves no outcome unknown"
    # The final reads ran last, and succeeded.
    finals = workload.final_ops()
    assert finals
    last = result.ops[-len(finals) :]
    assert [(op.f, op.key, op.type) for op in last] == [(f.f, f.key, OK) for f in finals]


def test_the_workloads_see_the_other_clients_writes(kiwi_target: SingleServerTarget) -> None:
    """The runs above are not trivially valid: reads see concurrent writes."""
    result = kiwi.testing.run(kiwi_target, workload="cas-register", duration=DURATION, seed=5, clients=4, rate=200)
    ops = result.history.ops()
    read_values = {op.result for op in ops if op.f == "read" and op.type == OK}
    assert len(read_values - {None}) >= 2
    assert any(op.f == "cas" and op.type == OK for op in ops)
    assert any(op.f == "cas" and op.type == FAIL and op.error is None for op in ops)


# -- the cas op, up close --------------------------------------------------------


def cas(conn: Any, expected: int, new: int, key: str = "jepsen:cas-register:0") -> Any:
    w = workloads.CasRegister(keys=1)
    client = ProcessClient(Recorder(), lambda: conn, process=0)
    return client.call(
        "cas", lambda c: w.apply(c, workloads.Invocation("cas", [expected, new], key)), [expected, new], key
    )


def test_cas_on_a_real_server(kiwi_target: SingleServerTarget) -> None:
    conn = kiwi_target.client(0, decode_responses=True)
    try:
        conn.set("jepsen:cas-register:0", 1)
        unequal = cas(conn, 2, 3)
        assert (unequal.type, unequal.error) == (FAIL, None), "compared unequal: fail without an error"
        assert conn.get("jepsen:cas-register:0") == "1"
        swapped = cas(conn, 1, 3)
        assert swapped.type == OK and conn.get("jepsen:cas-register:0") == "3"
    finally:
        conn.close()


class FakePipeline:
    """Scripted WATCH/GET/MULTI/EXEC: ``values`` are what GET returns in turn,
    ``aborts`` how many EXECs WATCH aborts first, ``get_error`` raised by GET."""

    def __init__(self, owner: FakeConn) -> None:
        self.owner = owner
        self.connection = None

    def watch(self, key: str) -> None:
        self.owner.log.append("WATCH")

    def get(self, key: str) -> Any:
        self.owner.log.append("GET")
        if self.owner.get_error is not None:
            raise self.owner.get_error
        return self.owner.values.pop(0)

    def multi(self) -> None:
        self.owner.log.append("MULTI")

    def set(self, key: str, value: Any) -> None:
        self.owner.log.append(f"SET {value}")

    def execute(self) -> list[Any]:
        self.owner.log.append("EXEC")
        if self.owner.exec_error is not None:
            raise self.owner.exec_error
        if self.owner.aborts:
            self.owner.aborts -= 1
            raise WatchError("Watched variable changed.")
        return [True]

    def reset(self) -> None:
        self.owner.log.append("RESET")


class FakeConn:
    def __init__(self, values: list[Any], aborts: int = 0, get_error: Any = None, exec_error: Any = None) -> None:
        self.values = values
        self.aborts = aborts
        self.get_error = get_error
        self.exec_error = exec_error
        self.log: list[str] = []

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    def close(self) -> None:
        pass


def test_cas_rereads_after_watch_aborts_exec() -> None:
    conn = FakeConn(["1", "1", "1"], aborts=2)
    op = cas(conn, 1, 2)
    assert op.type == OK
    assert conn.log == ["WATCH", "GET", "MULTI", "SET 2", "EXEC", "RESET"] * 3


def test_cas_rereads_and_then_compares_unequal() -> None:
    conn = FakeConn(["1", "5"], aborts=1)
    op = cas(conn, 1, 2)
    assert (op.type, op.error) == (FAIL, None)
    assert conn.log[-3:] == ["WATCH", "GET", "RESET"]


def test_cas_gives_up_after_bounded_aborts() -> None:
    conn = FakeConn(["1"] * workloads.CAS_ROUNDS, aborts=workloads.CAS_ROUNDS)
    op = cas(conn, 1, 2)
    assert op.type == FAIL and op.error == f"EXEC aborted by WATCH {workloads.CAS_ROUNDS} times"
    assert conn.log.count("EXEC") == workloads.CAS_ROUNDS


@pytest.mark.parametrize(
    ("get_error", "exec_error", "expected"),
    [
        (redis.TimeoutError("Timeout reading from socket"), None, (FAIL, "Timeout reading from socket")),
        (
            redis.exceptions.ClusterDownError("no quorum", status_code="CLUSTERDOWN"),
            None,
            (FAIL, "CLUSTERDOWN no quorum"),
        ),
        (
            None,
            redis.exceptions.ClusterDownError("no quorum", status_code="CLUSTERDOWN"),
            (FAIL, "CLUSTERDOWN no quorum"),
        ),
        (
            None,
            redis.exceptions.TryAgainError("outcome unknown: x", status_code="TRYAGAIN"),
            (INFO, "TRYAGAIN outcome unknown: x"),
        ),
        (None, redis.ConnectionError("Connection closed by server."), (INFO, "Connection closed by server.")),
    ],
)
def test_cas_errors_before_and_after_proposing(get_error: Any, exec_error: Any, expected: tuple[str, str]) -> None:
    op = cas(FakeConn(["1"], get_error=get_error, exec_error=exec_error), 1, 2)
    assert (op.type, op.error) == expected


def test_a_transaction_with_some_errors_is_unknown() -> None:
    class Pipe:
        def execute(self, raise_on_error: bool = True) -> list[Any]:
            return [True, redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")]

    with pytest.raises(workloads.PartialExec):
        workloads._exec(Pipe())
    assert kiwi.testing.classify(workloads.PartialExec("x")) == INFO


def test_same_seed_same_ops() -> None:
    import random

    for name in workloads.WORKLOADS:
        a, b = workloads.make(name), workloads.make(name)
        ra, rb = random.Random("7:client:1"), random.Random("7:client:1")
        assert [a.next_op(ra, 1) for _ in range(50)] == [b.next_op(rb, 1) for _ in range(50)], name
