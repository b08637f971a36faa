"""kiwi.open(): the embedded engine through redis-py's API, no network."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis

import kiwi
from kiwitest import run_threads

pytestmark = pytest.mark.kiwi_only


@pytest.fixture
def db():
    database = kiwi.open()
    yield database
    database.close()


def test_execute_and_methods_are_typed_like_redis_py(db: kiwi.Database) -> None:
    assert db.execute("MSET", "a", 1, "b", 2) is True
    assert db.mget("a", "b") == [b"1", b"2"]
    assert db.get("missing") is None
    assert db.incr("a") == 2
    assert db.incrbyfloat("f", 1.5) == 1.5
    assert db.set("k", "v", ex=60) is True
    assert db.ttl("k") == 60
    assert db.exists("a", "b", "nope") == 2
    assert db.execute("PING") is True
    assert db.type("k") in (b"string", "string")


def test_decode_responses_and_protocol_options(tmp_path: Path) -> None:
    for protocol in (2, 3):
        with kiwi.open(tmp_path / f"p{protocol}", decode_responses=True, protocol=protocol) as db:
            db.set("k", "v")
            assert db.get("k") == "v"
            assert str(db.client_info()["resp"]) == str(protocol)


def test_errors_raise_response_error_with_redis_text(db: kiwi.Database) -> None:
    db.set("s", "text")
    with pytest.raises(kiwi.ResponseError, match=r"^value is not an integer or out of range$"):
        db.incr("s")
    db.hset("h", "f", "v")
    with pytest.raises(
        kiwi.ResponseError, match=r"^WRONGTYPE Operation against a key holding the wrong kind of value$"
    ):
        db.get("h")
    with pytest.raises(kiwi.ResponseError, match="unknown command 'NOSUCH'"):
        db.execute("NOSUCH", "x")
    assert kiwi.ResponseError is redis.exceptions.ResponseError


def test_pipelines_and_transactions(db: kiwi.Database) -> None:
    pipe = db.pipeline(transaction=True)
    pipe.set("x", 1).incr("x").get("x")
    assert pipe.execute() == [True, 2, b"2"]
    with db.pipeline(transaction=False) as pipe:
        for i in range(100):
            pipe.set(f"k{i}", i)
        assert pipe.execute() == [True] * 100
    assert db.dbsize() == 101


def test_many_threads_share_one_database(db: kiwi.Database) -> None:
    threads, per_thread = 8, 200

    def work() -> None:
        for _ in range(per_thread):
            db.incr("counter")

    run_threads([work] * threads, timeout=60)
    assert int(db.get("counter")) == threads * per_thread


def test_gil_is_released_while_the_engine_works(db: kiwi.Database) -> None:
    """A Python thread keeps running while others hammer the engine."""
    stop = threading.Event()
    ticks = []

    def spin() -> None:
        while not stop.is_set():
            ticks.append(1)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        for i in range(2000):
            db.set(f"key{i}", "x" * 100)
    finally:
        stop.set()
        spinner.join(10)
    assert ticks, "the spinning thread never ran"


def test_data_persists_and_moves_between_embedded_and_server(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with kiwi.open(path) as db:
        db.mset({"a": "1", "b": "2"})
        db.set("ttl", "v", ex=3600)
        db.hset("h", "f", "v")
    with kiwi.Server(dir=path) as server:
        client = server.client()
        try:
            assert client.mget("a", "b") == [b"1", b"2"]
            assert 3590 < client.ttl("ttl") <= 3600
            assert client.hget("h", "f") == b"v"
            client.set("from-server", "yes")
        finally:
            client.close()
    with kiwi.open(path) as db:
        assert db.get("from-server") == b"yes"


def test_a_second_opener_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with kiwi.open(path):
        with pytest.raises(RuntimeError, match="cannot open data directory"):
            kiwi.open(path)
        with pytest.raises(RuntimeError, match="cannot open data directory"):
            kiwi.Server(dir=path).start()


def test_closed_database_raises_and_temp_dir_is_removed() -> None:
    db = kiwi.open()
    path = Path(db.path)
    assert path.is_dir()
    db.set("k", "v")
    db.close()
    assert not path.exists()
    with pytest.raises(redis.ConnectionError):
        db.get("k")


def test_client_holds_one_connection_of_its_own(db: kiwi.Database) -> None:
    # redis-py's Redis.client() built a Database from the pool, which failed
    # (TypeError: unexpected keyword argument 'connection_pool').
    one = db.client(decode_responses=True)
    try:
        assert one.select(3) is True
        assert one.client_setname("solo") is True
        one.set("k", "in db 3")
        for _ in range(5):
            assert one.client_getname() == "solo"
            assert one.get("k") == "in db 3"
        assert db.get("k") is None
    finally:
        one.close()
    with db.client() as other:
        assert other.get("k") is None
        assert other.client_getname() is None
