"""kiwi.testing's histories: what an error means (fail or info), Jepsen's
new-process rule after an unknown outcome, real-time order from many
threads, and the JSON-lines format."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis
from redis._parsers.base import BaseParser
from redis.exceptions import WatchError

import kiwi
from kiwi.testing.history import (
    FAIL,
    INFO,
    OK,
    History,
    NotProposed,
    Outcome,
    ProcessClient,
    Recorder,
    classify,
    error_text,
)
from kiwitest import HOST, no_retry, node_client, run_threads

pytestmark = pytest.mark.kiwi_only


# -- classification of what the server (or the network) said -----------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("CLUSTERDOWN no quorum", FAIL),
        ("CLUSTERDOWN no quorum (write not confirmed: not committed within 2s)", INFO),
        ("TRYAGAIN outcome unknown: raft node stopped before the outcome was known", INFO),
        ("ERR raft node is shutting down", FAIL),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", FAIL),
        ("EXECABORT Transaction discarded because of previous errors.", FAIL),
        ("ERR unknown command 'FROB', with args beginning with: ", FAIL),
        ("ERR no reply from the replicated entry", INFO),
    ],
)
def test_error_replies_are_classified_as_parsed_off_the_wire(wire: str, expected: str) -> None:
    # The exception redis-py raises for this error line, code stripped or not.
    e = BaseParser.parse_error(wire)
    assert error_text(e) == wire
    assert classify(e) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.TimeoutError("Timeout reading from socket"), INFO),
        (redis.ConnectionError("Connection closed by server."), INFO),
        (redis.ConnectionError("Error while reading from 127.0.0.1:7001 : (104, 'Connection reset by peer')"), INFO),
        (redis.ConnectionError("Error 111 connecting to 127.0.0.1:7001. Connection refused."), FAIL),
        (redis.TimeoutError("Timeout connecting to server"), FAIL),
        (ConnectionResetError(104, "reset"), INFO),
        (ConnectionRefusedError(111, "refused"), FAIL),
    ],
)
def test_network_errors_are_unknown_unless_nothing_was_sent(error: BaseException, expected: str) -> None:
    assert classify(error) == expected


def test_a_refused_command_and_a_dead_server_fail_on_a_real_server() -> None:
    with kiwi.Server() as server:
        rec = Recorder()
        client = ProcessClient(rec, lambda: server.client(socket_timeout=5), process=0, stride=3)
        client.call("write", lambda c: c.lpush("k", "x"), value="x", key="k")
        wrong = client.call("read", lambda c: c.get("k"), key="k")
        client.close()
        port = server.port
    assert (wrong.type, wrong.error) == (FAIL, "WRONGTYPE Operation against a key holding the wrong kind of value")
    # Nothing listens on the port any more: the connection is refused, nothing sent.
    gone = ProcessClient(
        rec, lambda: redis.Redis(host=HOST, port=port, socket_connect_timeout=5, retry=no_retry()), process=1, stride=3
    )
    dead = gone.call("write", lambda c: c.set("k", 1), value=1, key="k")
    assert dead.type == FAIL and "connecting to" in (dead.error or "")
    assert gone.process == 1


def test_a_minority_write_is_refused_and_recorded_as_fail() -> None:
    """Kiwi's own refusal (no leader reachable) is a ``fail`` with its error text."""
    with kiwi.Cluster(3) as cluster:
        leader = cluster.leader()
        assert leader is not None
        follower = (leader + 1) % 3
        cluster.isolate(follower)
        rec = Recorder()
        client = ProcessClient(rec, lambda: node_client(cluster, follower), process=0, stride=1)
        op = client.call("write", lambda c: c.set("k", 1), value=1, key="k")
        cluster.heal()
    # A cut-off follower cannot even reach the leader to forward the write.
    assert (op.type, op.error) == (FAIL, "CLUSTERDOWN no quorum"), op
    assert client.process == 0


# -- the process rule ----------------------------------------------------------


class FakeConnection:
    """Counts how often it was made and closed."""

    made = 0

    def __init__(self) -> None:
        FakeConnection.made += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_after_info_a_client_moves_to_a_new_process_and_connection() -> None:
    FakeConnection.made = 0
    rec = Recorder()
    client = ProcessClient(rec, FakeConnection, process=2, stride=5)

    def timeout(conn: Any) -> Any:
        raise redis.TimeoutError("Timeout reading from socket")

    def refused(conn: Any) -> Any:
        raise BaseParser.parse_error("CLUSTERDOWN no quorum")

    assert client.call("read", lambda c: 1).type == OK
    assert client.call("write", refused, value=4).type == FAIL
    assert client.process == 2 and FakeConnection.made == 1, "a refusal keeps the process and the connection"
    first = client.conn
    op = client.call("write", timeout, value=5)
    assert (op.type, op.process, op.error) == (INFO, 2, "Timeout reading from socket")
    assert client.process == 7 and first.closed
    assert client.call("read", lambda c: 5).process == 7
    assert FakeConnection.made == 2
    ops = rec.history.ops()
    assert [(o.process, o.f, o.type) for o in ops] == [
        (2, "read", OK),
        (2, "write", FAIL),
        (2, "write", INFO),
        (7, "read", OK),
    ]


def test_outcomes_and_not_proposed() -> None:
    rec = Recorder()
    client = ProcessClient(rec, FakeConnection, process=0, stride=1)

    def unequal(conn: Any) -> Outcome:
        return Outcome(FAIL, [1, 2])

    def watch_lost(conn: Any) -> Any:
        raise NotProposed(redis.ConnectionError("Connection closed by server."))

    a = client.call("cas", unequal, value=[1, 2], key="k")
    b = client.call("cas", watch_lost, value=[1, 2], key="k")
    assert (a.type, a.error) == (FAIL, None), "compared unequal: fail without an error"
    assert (b.type, b.error) == (FAIL, "Connection closed by server."), "never proposed: fail with the error"
    assert client.process == 0


def test_a_bug_in_an_action_is_recorded_as_info_and_raised() -> None:
    rec = Recorder()
    client = ProcessClient(rec, FakeConnection, process=0, stride=2)
    with pytest.raises(ZeroDivisionError):
        client.call("read", lambda c: 1 // 0)
    assert rec.history[-1]["type"] == INFO and "ZeroDivisionError" in rec.history[-1]["error"]
    assert client.process == 2


def test_watch_error_is_not_an_error_reply() -> None:
    # An EXEC aborted by WATCH is handled by the cas workload; reaching the
    # recorder it is still a redis error, and proves nothing happened.
    assert classify(WatchError("Watched variable changed.")) == INFO


# -- order and format ----------------------------------------------------------


def test_events_from_many_threads_are_in_real_time_order() -> None:
    rec = Recorder()
    threads, per_thread = 8, 300

    def worker(p: int) -> None:
        client = ProcessClient(rec, FakeConnection, process=p, stride=threads)
        for i in range(per_thread):
            client.call("write", lambda c, i=i: i, value=i, key=f"k{p % 3}")

    run_threads([lambda p=p: worker(p) for p in range(threads)], timeout=60)
    events = rec.history.events
    assert len(events) == 2 * threads * per_thread
    times = [e["time"] for e in events]
    assert times == sorted(times), "line order must be the order of the timestamps"
    ops = rec.history.ops()
    assert len(ops) == threads * per_thread and all(op.type == OK for op in ops)
    for p in range(threads):
        mine = [op.value for op in ops if op.process == p]
        assert mine == list(range(per_thread))


def test_jsonl_round_trip(tmp_path: Any) -> None:
    rec = Recorder()
    rec.invoke(0, "cas", [1, 2], key="r")
    rec.invoke(1, "txn", [["append", "k", 3], ["r", "k", None]])
    rec.complete(0, FAIL, "cas", [1, 2], key="r", error="CLUSTERDOWN no quorum")
    rec.complete(1, OK, "txn", [["append", "k", 3], ["r", "k", [3]]])
    rec.invoke(2, "read", None, key="r")
    path = tmp_path / "h.jsonl"
    rec.history.save(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["process"] in (0, 1, 2) for line in lines)
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("process", "type", "f", "key", "value")} == {
        "process": 0,
        "type": "invoke",
        "f": "cas",
        "key": "r",
        "value": [1, 2],
    }
    back = History.load(path)
    assert back.events == rec.history.events
    ops = back.ops()
    assert [(op.process, op.type, op.invoke, op.complete) for op in ops] == [
        (0, FAIL, 0, 2),
        (1, OK, 1, 3),
        (2, INFO, 4, None),
    ]
    assert ops[0].error == "CLUSTERDOWN no quorum" and ops[1].result == [["append", "k", 3], ["r", "k", [3]]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"process": 0, "type": "invoke", "f": "r"}\n{"process": 0', "line 2: not JSON"),
        ('{"type": "invoke", "f": "r"}', "line 1: an event needs 'process' and 'type'"),
    ],
)
def test_malformed_jsonl_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        History.from_jsonl(text)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (
            [{"process": 0, "type": "invoke", "f": "r"}, {"process": 0, "type": "invoke", "f": "r"}],
            "line 2: process 0 invokes",
        ),
        ([{"process": 0, "type": "ok", "f": "r"}], "line 1: process 0 completes with no op"),
        ([{"process": "a", "type": "ok", "f": "r"}], "line 1: 'process' must be an integer"),
        ([{"process": 0, "type": "maybe", "f": "r"}], "line 1: unknown event type"),
    ],
)
def test_inconsistent_histories_are_refused(events: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        History(events).ops()


def test_history_is_safe_to_read_while_written() -> None:
    h = History()
    pairs = 20_000

    def writer() -> None:
        for p in range(pairs):
            h.append({"process": p, "type": "invoke", "f": "r"})
            h.append({"process": p, "type": "ok", "f": "r", "value": 1})

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    snapshots = 0
    while t.is_alive() and snapshots < 1000:
        ops = h.ops()
        # A snapshot may end between an invoke and its completion.
        assert all(op.type == OK for op in ops[:-1])
        snapshots += 1
    t.join(30)
    assert not t.is_alive() and len(h.ops()) == pairs
