"""redis.asyncio on an embedded database: ``kiwi.open().client_async()``.

The same replies as the sync face, pub/sub messages that wake an awaiting
task (RESP2 and RESP3), MONITOR, redis.asyncio's ``Lock`` keeping a counter
exact, and sessions that end when the client closes. Every await is bounded
so a hang fails the test instead of waiting for pytest-timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio

import kiwi
from test_asyncio import TYPED_COMMANDS, bounded, wait_for_condition

pytestmark = [pytest.mark.kiwi_only, pytest.mark.asyncio]

PROTOCOLS = pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])


@pytest.fixture
def db() -> Iterator[kiwi.Database]:
    database = kiwi.open()
    try:
        yield database
    finally:
        database.close()


@pytest_asyncio.fixture
async def client(db: kiwi.Database) -> AsyncIterator[redis.asyncio.Redis]:
    c = db.client_async()
    try:
        yield c
    finally:
        await c.aclose()


async def next_message(p: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of a PubSub, failing after ``timeout`` seconds."""
    message = await bounded(p.get_message(ignore_subscribe_messages=False, timeout=timeout))
    assert message is not None, f"no message within {timeout}s"
    return message


@PROTOCOLS
@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "str"])
async def test_client_async_replies_as_the_sync_database(tmp_path: Path, protocol: int, decode: bool) -> None:
    with (
        kiwi.open(tmp_path / "sync", protocol=protocol, decode_responses=decode) as sync_db,
        kiwi.open(tmp_path / "async", protocol=protocol, decode_responses=decode) as async_db,
    ):
        client = async_db.client_async()
        try:
            for command in TYPED_COMMANDS:
                expected = sync_db.execute(*command)
                got = await bounded(client.execute_command(*command))
                assert got == expected, command
                assert type(got) is type(expected), command
            with pytest.raises(redis.ResponseError, match=r"^WRONGTYPE Operation against a key"):
                await bounded(client.lpush("h", "x"))
            async with client.pipeline(transaction=True) as pipe:
                pipe.set("p", 1).incr("p").get("p")
                assert await bounded(pipe.execute()) == [True, 2, "2" if decode else b"2"]
        finally:
            await client.aclose()
        # Options given to client_async override kiwi.open's.
        plain = async_db.client_async(decode_responses=False)
        try:
            assert await bounded(plain.get("p")) == b"2"
        finally:
            await plain.aclose()


@PROTOCOLS
async def test_pubsub_messages_wake_the_awaiting_task(db: kiwi.Database, protocol: int) -> None:
    client = db.client_async(protocol=protocol)
    try:
        async with client.pubsub() as p:
            await bounded(p.subscribe("news"))
            await bounded(p.psubscribe("n*"))
            assert [(await next_message(p))["type"] for _ in range(2)] == ["subscribe", "psubscribe"]
            # Nothing published: get_message waits its timeout, and the
            # event loop keeps running other tasks meanwhile.
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            assert await bounded(p.get_message(timeout=0.3)) is None
            assert time.monotonic() - started >= 0.25, "get_message returned before its timeout"
            ticker.cancel()
            assert ticks >= 5, "the event loop was blocked while waiting for a message"
            # A publish from another thread (the sync face) wakes the task.
            publisher = threading.Timer(0.2, lambda: db.publish("news", "late"))
            publisher.start()
            try:
                got = [await next_message(p) for _ in range(2)]
            finally:
                publisher.join()
            assert sorted((m["type"], m["data"]) for m in got) == [("message", b"late"), ("pmessage", b"late")]
            # One from the async client itself, counted as Redis counts receivers.
            assert await bounded(client.publish("news", "own")) == 2
            assert {(await next_message(p))["data"] for _ in range(2)} == {b"own"}
            await bounded(p.unsubscribe("news"))
            await bounded(p.punsubscribe())
            assert [(await next_message(p))["type"] for _ in range(2)] == ["unsubscribe", "punsubscribe"]
            assert await bounded(client.publish("news", "gone")) == 0
    finally:
        await client.aclose()


async def test_listen_yields_messages_in_publish_order(db: kiwi.Database, client: redis.asyncio.Redis) -> None:
    async with client.pubsub() as p:
        await bounded(p.subscribe("seq"))
        await next_message(p)
        count = 200

        def publish_all() -> None:
            for i in range(count):
                db.publish("seq", str(i))

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        got: list[bytes] = []

        async def listen() -> None:
            async for message in p.listen():
                if message["type"] == "message":
                    got.append(message["data"])
                    if len(got) == count:
                        return

        try:
            await bounded(listen())
        finally:
            publisher.join()
        assert got == [str(i).encode() for i in range(count)]


@PROTOCOLS
async def test_subscribe_confirmation_comes_before_messages_under_load(db: kiwi.Database, protocol: int) -> None:
    """Replies and messages leave the session in one order, as on a socket."""
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            db.publish("busy", "m")

    flooder = threading.Thread(target=flood)
    flooder.start()
    client = db.client_async(protocol=protocol)
    try:
        for _ in range(20):
            async with client.pubsub() as p:
                await bounded(p.subscribe("busy"))
                first = await next_message(p)
                assert first["type"] == "subscribe", first
                await bounded(p.unsubscribe("busy"))
                while (message := await next_message(p))["type"] != "unsubscribe":
                    assert message["type"] == "message"
    finally:
        stop.set()
        flooder.join()
        await client.aclose()


async def test_closing_the_client_ends_its_subscriptions(db: kiwi.Database) -> None:
    client = db.client_async()
    p = client.pubsub()
    await bounded(p.subscribe("c1", "c2"))
    await next_message(p)
    assert db.pubsub_numsub("c1", "c2") == [(b"c1", 1), (b"c2", 1)]
    await bounded(p.aclose())
    await bounded(client.aclose())

    async def unsubscribed() -> bool:
        return db.pubsub_numsub("c1") == [(b"c1", 0)]

    await wait_for_condition(unsubscribed)
    assert db.publish("c2", "x") == 0


async def test_cancelled_wait_for_a_message_leaves_the_client_usable(client: redis.asyncio.Redis) -> None:
    async with client.pubsub() as p:
        await bounded(p.subscribe("quiet"))
        await next_message(p)
        waiter = asyncio.create_task(p.get_message(timeout=60))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert await bounded(client.incr("after")) == 1
    assert await bounded(client.publish("quiet", "x")) == 0


async def test_monitor_sees_other_clients_commands(db: kiwi.Database, client: redis.asyncio.Redis) -> None:
    async with client.monitor() as m:
        db.set("watched", "v")
        # redis-py's next_command reads the OK first, then the monitored lines.
        for _ in range(5):
            command = await bounded(m.next_command())
            if command["command"] == "SET watched v":
                break
        else:
            pytest.fail("MONITOR did not report the SET")


async def test_lock_keeps_a_counter_exact(db: kiwi.Database) -> None:
    """redis.asyncio's Lock (Lua scripts through EVALSHA) on the embedded engine."""
    tasks, rounds = 8, 25
    clients = [db.client_async() for _ in range(2)]
    try:

        async def worker(c: redis.asyncio.Redis) -> None:
            for _ in range(rounds):
                async with c.lock("counter-lock", timeout=30, blocking_timeout=60, sleep=0.001):
                    value = int(await c.get("counter") or 0)
                    # Let the other tasks run inside the critical section.
                    await asyncio.sleep(0)
                    await c.set("counter", value + 1)

        await bounded(asyncio.gather(*(worker(clients[i % 2]) for i in range(tasks))), 120)
    finally:
        for c in clients:
            await c.aclose()
    assert db.get("counter") == str(tasks * rounds).encode()


async def test_closing_the_database_ends_async_sessions(tmp_path: Path) -> None:
    """db.close() ends the sessions of its async clients too: a waiting
    subscriber is told, later commands raise, the directory is released."""
    db = kiwi.open(tmp_path / "db")
    client = db.client_async()
    try:
        assert await bounded(client.set("k", "v")) is True
        p = client.pubsub()
        await bounded(p.subscribe("c"))
        await next_message(p)
        waiter = asyncio.create_task(p.get_message(timeout=60))
        await asyncio.sleep(0.05)
        db.close()
        with pytest.raises(redis.ConnectionError):
            await bounded(waiter)
        with pytest.raises(redis.ConnectionError):
            await bounded(client.get("k"))
        with kiwi.open(tmp_path / "db") as again:
            assert again.get("k") == b"v"
        await bounded(p.aclose())
    finally:
        await client.aclose()
        db.close()
