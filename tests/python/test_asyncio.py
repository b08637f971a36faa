"""The asyncio face: ``Database.aexecute``, ``async with kiwi.Server()``, ``client_async``.

Every await is bounded with ``asyncio.wait_for`` so a hang fails the test
instead of waiting for pytest-timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import kiwi

pytestmark = [pytest.mark.kiwi_only, pytest.mark.asyncio]

#: Bound for any single await in this module.
WAIT = 30.0


async def bounded(awaitable: Any, timeout: float = WAIT) -> Any:
    """Await with a deadline."""
    return await asyncio.wait_for(awaitable, timeout)


async def wait_for_condition(predicate: Any, timeout: float = WAIT) -> None:
    """Poll an async predicate until true, yielding to the loop; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.01)


@pytest.fixture
def db() -> Iterator[kiwi.Database]:
    database = kiwi.open()
    try:
        yield database
    finally:
        database.close()


# -- aexecute returns what execute returns -------------------------------------

#: Commands whose replies exercise redis-py's typing: bools, ints, floats,
#: bulk/nil, arrays, maps (HGETALL, CONFIG GET), parsed INFO, scan tuples.
TYPED_COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "s", "v"),
    ("SET", "s", "v", "NX"),
    ("GET", "s"),
    ("GET", "missing"),
    ("MSET", "a", 1, "b", 2),
    ("MGET", "a", "b", "missing"),
    ("INCR", "a"),
    ("INCRBYFLOAT", "f", 1.5),
    ("EXPIRE", "s", 100),
    ("TTL", "s"),
    ("EXISTS", "a", "b", "missing"),
    ("TYPE", "a"),
    ("HSET", "h", "f1", "v1", "f2", "v2"),
    ("HGETALL", "h"),
    ("HGET", "h", "f1"),
    ("HEXISTS", "h", "nope"),
    ("PING",),
    ("ECHO", "hello"),
    ("DBSIZE",),
    ("CONFIG GET", "maxmemory"),
    ("DEL", "b", "missing"),
]


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "str"])
async def test_aexecute_returns_exactly_what_execute_returns(tmp_path: Path, protocol: int, decode: bool) -> None:
    with (
        kiwi.open(tmp_path / "sync", protocol=protocol, decode_responses=decode) as sync_db,
        kiwi.open(tmp_path / "async", protocol=protocol, decode_responses=decode) as async_db,
    ):
        for command in TYPED_COMMANDS:
            expected = sync_db.execute(*command)
            got = await bounded(async_db.aexecute(*command))
            assert got == expected, command
            assert type(got) is type(expected), command
            if isinstance(expected, (list, dict)):
                inner_expected = list(expected.values() if isinstance(expected, dict) else expected)
                inner_got = list(got.values() if isinstance(got, dict) else got)
                assert [type(x) for x in inner_got] == [type(x) for x in inner_expected], command
        # INFO goes through redis-py's INFO parser either way.
        info = await bounded(async_db.aexecute("INFO"))
        assert isinstance(info, dict)
        assert info["redis_version"] == sync_db.info()["redis_version"]
    # Connection options (db=) apply to aexecute's connections too.
    with kiwi.open(tmp_path / "db3", db=3, protocol=protocol) as db3:
        assert await bounded(db3.aexecute("SET", "only-in-3", "x")) is True
    with kiwi.open(tmp_path / "db3") as db0:
        assert db0.get("only-in-3") is None
    with kiwi.open(tmp_path / "db3", db=3) as db3:
        assert await bounded(db3.aexecute("GET", "only-in-3")) == b"x"


async def test_aexecute_accepts_execute_options(db: kiwi.Database) -> None:
    """``execute_command`` options (NEVER_DECODE, EMPTY_RESPONSE) behave identically."""
    from redis.client import EMPTY_RESPONSE, NEVER_DECODE

    db.set("k", "v")
    assert await bounded(db.aexecute("GET", "k", **{NEVER_DECODE: True})) == db.execute(
        "GET", "k", **{NEVER_DECODE: True}
    )
    db.set("text", "abc")
    options = {EMPTY_RESPONSE: "fallback"}
    assert db.execute("INCR", "text", **options) == "fallback"
    assert await bounded(db.aexecute("INCR", "text", **options)) == "fallback"


# -- concurrency ------------------------------------------------------------------


async def test_concurrent_aexecute_incrs_sum_exactly(db: kiwi.Database) -> None:
    tasks, per_task = 64, 25

    async def worker() -> list[int]:
        return [await db.aexecute("INCR", "counter") for _ in range(per_task)]

    results = await bounded(asyncio.gather(*(worker() for _ in range(tasks))))
    replies = sorted(r for chunk in results for r in chunk)
    # Every INCR saw a distinct value: no reply was lost, duplicated or swapped.
    assert replies == list(range(1, tasks * per_task + 1))
    assert db.get("counter") == str(tasks * per_task).encode()
    assert await bounded(db.aexecute("GET", "counter")) == str(tasks * per_task).encode()


async def test_many_single_shot_tasks_and_sync_calls_interleave(db: kiwi.Database) -> None:
    n = 500
    results = await bounded(asyncio.gather(*(db.aexecute("INCRBY", "c", 2) for _ in range(n))))
    assert sorted(results) == list(range(2, 2 * n + 1, 2))
    # The pool's connections are clean afterwards: sync calls on them see their own replies.
    for i in range(50):
        assert db.incr("c") == 2 * n + i + 1


async def test_event_loop_keeps_running_while_the_engine_works(db: kiwi.Database) -> None:
    """A ticking task keeps ticking while a big command runs in the engine."""
    state = {"in_flight": False, "ticks_in_flight": 0, "stop": False}

    async def ticker() -> None:
        while not state["stop"]:
            if state["in_flight"]:
                state["ticks_in_flight"] += 1
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())
    pairs = 50_000
    args: list[Any] = ["MSET"]
    for i in range(pairs):
        args += [f"key:{i}", "x" * 20]
    try:
        state["in_flight"] = True
        started = time.monotonic()
        assert await bounded(db.aexecute(*args)) is True
        elapsed = time.monotonic() - started
        state["in_flight"] = False
    finally:
        state["stop"] = True
        await bounded(tick_task)
    assert db.dbsize() == pairs
    # Blocking the loop (or holding the GIL in the engine) would allow one or two
    # ticks at most; a free loop ticks thousands of times in that time.
    assert state["ticks_in_flight"] >= 20, (state, elapsed)


async def test_engine_work_runs_off_the_event_loop_thread() -> None:
    """The extension's awaitable resolves from tokio's blocking pool, not inline."""
    with kiwi.open() as database:
        engine = database._engine
        session = engine.connect()
        try:
            fut = session.execute_async(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            assert asyncio.isfuture(fut)
            # One batch, every reply, byte for byte.
            assert await bounded(fut) == b"+OK\r\n$1\r\nv\r\n"
            # Incomplete input waits for the rest, like a socket.
            assert await bounded(session.execute_async(b"*1\r\n$4\r\nPI")) == b""
            assert await bounded(session.execute_async(b"NG\r\n")) == b"+PONG\r\n"
        finally:
            session.close()
        with pytest.raises(ConnectionError, match="the connection is closed"):
            await bounded(session.execute_async(b"*1\r\n$4\r\nPING\r\n"))


# -- errors -----------------------------------------------------------------------


async def test_errors_raise_response_error_with_redis_text(db: kiwi.Database) -> None:
    db.set("s", "text")
    with pytest.raises(kiwi.ResponseError, match=r"^value is not an integer or out of range$"):
        await bounded(db.aexecute("INCR", "s"))
    db.hset("h", "f", "v")
    with pytest.raises(
        kiwi.ResponseError, match=r"^WRONGTYPE Operation against a key holding the wrong kind of value$"
    ):
        await bounded(db.aexecute("GET", "h"))
    with pytest.raises(kiwi.ResponseError, match="unknown command 'NOSUCH'"):
        await bounded(db.aexecute("NOSUCH", "x"))
    with pytest.raises(kiwi.ResponseError, match="wrong number of arguments for 'get' command"):
        await bounded(db.aexecute("GET"))
    # The same exception type and text as the synchronous path.
    with pytest.raises(kiwi.ResponseError) as sync_error:
        db.execute("INCR", "s")
    with pytest.raises(kiwi.ResponseError) as async_error:
        await bounded(db.aexecute("INCR", "s"))
    assert type(async_error.value) is type(sync_error.value)
    assert str(async_error.value) == str(sync_error.value)
    # Errors leave the connections usable.
    assert await bounded(db.aexecute("GET", "s")) == b"text"


async def test_aexecute_without_a_command_is_a_type_error(db: kiwi.Database) -> None:
    with pytest.raises(TypeError, match="needs a command name"):
        await bounded(db.aexecute())


async def test_closed_database_raises_like_execute() -> None:
    database = kiwi.open()
    database.close()
    with pytest.raises(redis.ConnectionError) as sync_error:
        database.execute("GET", "k")
    with pytest.raises(redis.ConnectionError) as async_error:
        await bounded(database.aexecute("GET", "k"))
    assert type(async_error.value) is type(sync_error.value)


async def test_cancelled_aexecute_leaves_no_stale_reply(db: kiwi.Database) -> None:
    """A cancelled call completes in the engine; later calls get their own replies.

    Its connection goes back to the pool once the engine is done with it, so
    a pool of one connection keeps working.
    """
    args: list[Any] = ["MSET"]
    for i in range(20_000):
        args += [f"c:{i}", "v"]
    task = asyncio.create_task(db.aexecute(*args))
    await asyncio.sleep(0)  # one loop turn: the task hands its batch to the engine, then awaits
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(task)
    for i in range(20):
        assert await bounded(db.aexecute("ECHO", f"mine-{i}")) == f"mine-{i}".encode()
        assert db.echo(f"sync-{i}") == f"sync-{i}".encode()

    async def mset_landed() -> bool:
        return await db.aexecute("EXISTS", "c:19999") == 1

    # The MSET was handed over before the cancel, so it lands, atomically.
    await wait_for_condition(mset_landed)
    assert db.dbsize() == 20_000


async def test_cancelled_call_returns_its_connection_to_a_pool_of_one(tmp_path: Path) -> None:
    with kiwi.open(tmp_path / "one", max_connections=1) as db:
        args: list[Any] = ["MSET"]
        for i in range(20_000):
            args += [f"c:{i}", "v"]
        task = asyncio.create_task(db.aexecute(*args))
        await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task)
        # Waits for the one connection (the MSET's), then sees the MSET done.
        assert await bounded(db.aexecute("EXISTS", "c:19999")) == 1
        results = await bounded(asyncio.gather(*(db.aexecute("INCR", "n") for _ in range(50))))
        assert sorted(results) == list(range(1, 51))


# -- the server under asyncio ----------------------------------------------------------


async def test_async_with_server_and_redis_asyncio_round_trip() -> None:
    async with kiwi.Server() as server:
        assert server.running
        client = server.client_async(decode_responses=True)
        try:
            assert isinstance(client, redis.asyncio.Redis)
            assert await bounded(client.set("greeting", "hello")) is True
            assert await bounded(client.get("greeting")) == "hello"
            results = await bounded(asyncio.gather(*(client.incr("n") for _ in range(100))))
            assert sorted(results) == list(range(1, 101))
            async with client.pipeline(transaction=True) as pipe:
                pipe.set("x", 1).incr("x").get("x")
                assert await bounded(pipe.execute()) == [True, 2, "2"]
            # The sync client sees the same data.
            sync_client = server.client()
            try:
                assert sync_client.get("greeting") == b"hello"
            finally:
                sync_client.close()
            port = server.port
        finally:
            await client.aclose()
    assert not server.running
    refused = redis.asyncio.Redis(port=port, socket_connect_timeout=2, retry=None)
    try:
        with pytest.raises(redis.ConnectionError):
            await bounded(refused.ping())
    finally:
        await refused.aclose()


async def test_async_with_server_starts_and_stops_off_the_loop_thread(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    class RecordingServer(kiwi.Server):
        def start(self) -> kiwi.Server:
            seen["start"] = threading.get_ident()
            return super().start()

        def stop(self) -> None:
            seen["stop"] = threading.get_ident()
            super().stop()

    server = RecordingServer(dir=tmp_path / "data", requirepass="s3cret")
    async with server as entered:
        assert entered is server
        client = server.client_async(password="s3cret")
        try:
            assert await bounded(client.ping()) is True
        finally:
            await client.aclose()
    assert seen["start"] != loop_thread
    assert seen["stop"] != loop_thread
    assert not server.running
    # Data persisted under the given directory.
    assert (tmp_path / "data").is_dir()


async def test_async_with_server_stops_on_error() -> None:
    server = kiwi.Server()
    with pytest.raises(RuntimeError, match="boom"):
        async with server:
            assert server.running
            raise RuntimeError("boom")
    assert not server.running
