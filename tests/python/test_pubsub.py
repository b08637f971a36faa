"""Pub/sub through redis-py: its ``PubSub`` (get_message, listen,
run_in_thread, patterns), its asyncio client, RESP2 and RESP3, against the
shared server; across a three-node ``kiwi.Cluster`` (a message published
on any node reaches the subscribers of every node, in the log's order);
and a subscriber that does not read is disconnected at its
``client-output-buffer-limit pubsub``. The wire bytes themselves are
compared with Redis's in ``test_pubsub_wire.py``."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from conftest import ClientFactory
from kiwitest import HOST, IO_TIMEOUT, RawConnection, no_retry, node_client, reference_redis_server, wait_until


def next_message(pubsub: Any, timeout: float = IO_TIMEOUT) -> dict[str, Any]:
    """The next message (not a confirmation) ``pubsub`` receives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            return dict(message)
    raise AssertionError(f"no message within {timeout}s")


def confirmations(pubsub: Any, n: int) -> list[dict[str, Any]]:
    """The next ``n`` confirmations ``pubsub`` receives."""
    out = []
    deadline = time.monotonic() + IO_TIMEOUT
    while len(out) < n and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            out.append(dict(message))
    assert len(out) == n, out
    return out


def test_get_message(make_client: ClientFactory) -> None:
    subscriber, publisher = make_client(), make_client()
    with subscriber.pubsub() as p:
        p.subscribe("news", "sport")
        assert [(m["type"], m["channel"], m["data"]) for m in confirmations(p, 2)] == [
            ("subscribe", b"news", 1),
            ("subscribe", b"sport", 2),
        ]
        assert publisher.publish("news", "hello") == 1
        assert publisher.publish("elsewhere", "x") == 0
        assert next_message(p) == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}
        assert publisher.pubsub_numsub("news", "sport", "none") == [(b"news", 1), (b"sport", 1), (b"none", 0)]
        assert sorted(publisher.pubsub_channels()) >= [b"news", b"sport"]
        p.unsubscribe("news")
        assert confirmations(p, 1)[0]["type"] == "unsubscribe"
        assert publisher.publish("news", "gone") == 0
        assert p.get_message(timeout=0.05) is None


def test_patterns(make_client: ClientFactory) -> None:
    subscriber, publisher = make_client(), make_client()
    with subscriber.pubsub() as p:
        p.psubscribe("user:*")
        confirmations(p, 1)
        assert publisher.pubsub_numpat() >= 1
        assert publisher.publish("user:42", "joined") == 1
        assert next_message(p) == {
            "type": "pmessage",
            "pattern": b"user:*",
            "channel": b"user:42",
            "data": b"joined",
        }
        p.punsubscribe("user:*")
        confirmations(p, 1)
        assert publisher.publish("user:42", "left") == 0


def test_listen_in_order(make_client: ClientFactory) -> None:
    subscriber, publisher = make_client(decode_responses=True), make_client()
    with subscriber.pubsub() as p:
        p.subscribe("feed")
        confirmations(p, 1)
        for i in range(200):
            publisher.publish("feed", str(i))
        received = []
        for message in p.listen():
            if message["type"] == "message":
                received.append(message["data"])
            if len(received) == 200:
                break
        assert received == [str(i) for i in range(200)]


def test_run_in_thread(make_client: ClientFactory) -> None:
    subscriber, publisher = make_client(), make_client()
    got: list[bytes] = []
    done = threading.Event()

    def handler(message: dict[str, Any]) -> None:
        got.append(message["data"])
        if len(got) == 3:
            done.set()

    p = subscriber.pubsub()
    p.subscribe(events=handler)
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        wait_until(lambda: publisher.pubsub_numsub("events")[0][1] == 1, timeout=IO_TIMEOUT, interval=0.01)
        for word in (b"a", b"b", b"c"):
            publisher.publish("events", word)
        assert done.wait(IO_TIMEOUT)
        assert got == [b"a", b"b", b"c"]
    finally:
        worker.stop()
        worker.join(IO_TIMEOUT)
        p.close()


def test_resp3_subscriber_runs_commands_between_messages(server_addr: tuple[str, int]) -> None:
    host, port = server_addr
    client = redis.Redis(host=host, port=port, protocol=3, socket_timeout=IO_TIMEOUT, retry=no_retry())
    publisher = redis.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT, retry=no_retry())
    try:
        with client.pubsub() as p:
            p.subscribe("r3")
            confirmations(p, 1)
            publisher.publish("r3", "one")
            assert next_message(p)["data"] == b"one"
            # The connection still answers anything in RESP3.
            p.ping()
            pong = p.get_message(timeout=IO_TIMEOUT)
            assert pong is not None and pong["type"] == "pong"
    finally:
        client.close()
        publisher.close()


@pytest.mark.asyncio
async def test_asyncio_pubsub(server_addr: tuple[str, int]) -> None:
    host, port = server_addr
    for protocol in (2, 3):
        subscriber = redis.asyncio.Redis(host=host, port=port, protocol=protocol, socket_timeout=IO_TIMEOUT)
        publisher = redis.asyncio.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT)
        try:
            async with subscriber.pubsub() as p:
                await p.subscribe("aio")
                await p.psubscribe("ai*")
                confirmed = 0
                while confirmed < 2:
                    message = await p.get_message(timeout=IO_TIMEOUT)
                    assert message is not None
                    confirmed += 1
                assert await publisher.publish("aio", "x") == 2
                kinds = []
                while len(kinds) < 2:
                    message = await p.get_message(ignore_subscribe_messages=True, timeout=IO_TIMEOUT)
                    assert message is not None
                    kinds.append((message["type"], message["data"]))
                assert kinds == [("message", b"x"), ("pmessage", b"x")]
        finally:
            await subscriber.aclose()
            await publisher.aclose()


# --------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    """A throwaway Debian redis-server on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-ref-pubsub-limit-") as port:
        yield port


@pytest.fixture(params=["kiwi", "redis"])
def limited_addr(request: pytest.FixtureRequest, server_addr: tuple[str, int]) -> Iterator[tuple[str, int]]:
    """The shared server, or a reference redis-server, with
    ``pubsub 1mb 256kb 60`` (put back after)."""
    host, port = server_addr
    if request.param == "redis":
        host, port = HOST, request.getfixturevalue("reference_port")
    admin = redis.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT, retry=no_retry())
    before = admin.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    admin.config_set("client-output-buffer-limit", "pubsub 1mb 256kb 60")
    try:
        yield host, port
    finally:
        admin.config_set("client-output-buffer-limit", before)
        admin.close()


def test_a_subscriber_that_does_not_read_is_disconnected(limited_addr: tuple[str, int]) -> None:
    host, port = limited_addr
    payload = b"x" * 65536
    publisher = redis.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT, retry=no_retry())
    with publisher, RawConnection(host, port) as slow, RawConnection(host, port) as reader:
        slow.call("SUBSCRIBE", "firehose")
        reader.call("SUBSCRIBE", "firehose")
        # The reader keeps up: it reads each message as it is published.
        # Bounded: the kernel's socket buffers take some megabytes before
        # anything waits in the server.
        published = 0
        while publisher.publish("firehose", payload) == 2:
            assert reader.read() == [b"message", b"firehose", payload]
            published += 1
            assert published < 2000, "the slow subscriber was never disconnected"
        assert reader.read() == [b"message", b"firehose", payload]
        assert publisher.publish("firehose", b"still here") == 1
        assert reader.read() == [b"message", b"firehose", b"still here"]
        # The slow one gets what the kernel held, then the end.
        slow.sock.settimeout(IO_TIMEOUT)
        received = 0
        while True:
            chunk = slow.sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        assert received < published * len(payload)
        # Far below what the kernel could hold, the limit is what closed it.
        assert published * len(payload) < 64 << 20


# -------------------------------------------------------------- cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import kiwi

    with kiwi.Cluster(3) as c:
        yield c


@pytest.mark.kiwi_only
def test_cluster_delivers_to_every_node_in_log_order(cluster: Any) -> None:
    leader = cluster.wait_for_leader(timeout=IO_TIMEOUT)
    follower = (leader + 1) % 3
    subscribers = [node_client(cluster, i, decode_responses=False) for i in range(3)]
    publishers = [node_client(cluster, i) for i in (leader, follower)]
    pubsubs = [s.pubsub() for s in subscribers]
    try:
        for p in pubsubs:
            p.subscribe("everywhere")
            confirmations(p, 1)
        # Published on one node, each node's reply counts its own subscribers.
        for publisher in publishers:
            assert publisher.publish("everywhere", "hello") == 1
        for p in pubsubs:
            assert [next_message(p)["data"] for _ in range(2)] == [b"hello", b"hello"]

        def publish_all(node: int) -> None:
            client = node_client(cluster, node)
            try:
                if node == leader:
                    for i in range(50):
                        client.publish("everywhere", f"{node}:{i}")
                else:
                    # Pipelined: proposed together, one entry.
                    pipe = client.pipeline(transaction=False)
                    for i in range(50):
                        pipe.publish("everywhere", f"{node}:{i}")
                    assert pipe.execute() == [1] * 50
            finally:
                client.close()

        threads = [threading.Thread(target=publish_all, args=(node,)) for node in (leader, follower)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT * 3)
        seen = [[next_message(p)["data"].decode() for _ in range(100)] for p in pubsubs]
        # Every node delivers in the log's order: the same order everywhere,
        # each publisher's messages in the order it sent them.
        assert seen[0] == seen[1] == seen[2]
        for node in (leader, follower):
            mine = [m for m in seen[0] if m.startswith(f"{node}:")]
            assert mine == [f"{node}:{i}" for i in range(50)]
    finally:
        for p in pubsubs:
            p.close()
        for c in subscribers + publishers:
            c.close()


@pytest.mark.kiwi_only
def test_cluster_publish_counts_the_receiving_node(cluster: Any) -> None:
    leader = cluster.wait_for_leader(timeout=IO_TIMEOUT)
    follower = (leader + 1) % 3
    subscriber = node_client(cluster, follower, decode_responses=False)
    publisher = node_client(cluster, leader)
    try:
        with subscriber.pubsub() as p:
            p.psubscribe("far*")
            confirmations(p, 1)
            assert publisher.publish("faraway", "m") == 0
            assert next_message(p)["data"] == b"m"
            assert publisher.spublish("faraway", "s") == 0
            assert p.get_message(timeout=0.05) is None
            # Inside MULTI/EXEC too (the transaction is one entry).
            pipe = publisher.pipeline(transaction=True)
            pipe.publish("far1", "t1")
            pipe.set("k", "v")
            pipe.publish("far2", "t2")
            assert pipe.execute() == [0, True, 0]
            assert [next_message(p)["data"] for _ in range(2)] == [b"t1", b"t2"]
    finally:
        subscriber.close()
        publisher.close()


def test_the_embedded_database_delivers_messages(tmp_path: Any) -> None:
    """redis-py's PubSub on kiwi.open(): get_message waits up to its
    timeout, listen() in another thread wakes for a publish."""
    import kiwi

    with kiwi.open(tmp_path / "db") as db:
        p = db.pubsub()
        try:
            p.subscribe("x")
            p.psubscribe("y*")
            confirmations = [p.get_message(timeout=5) for _ in range(2)]
            assert [c["type"] for c in confirmations if c] == ["subscribe", "psubscribe"]
            started = time.monotonic()
            assert p.get_message(timeout=0.2) is None
            assert time.monotonic() - started >= 0.15, "get_message returned before its timeout"
            assert db.publish("x", "m") == 1
            message = p.get_message(timeout=5)
            assert message is not None and message["data"] == b"m"
            got: list[bytes] = []

            def listen() -> None:
                for m in p.listen():
                    if m["type"] == "pmessage":
                        got.append(m["data"])
                        return

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            assert db.publish("yes", "late") == 1
            listener.join(10)
            assert got == [b"late"]
        finally:
            p.close()


def test_reset_leaves_the_context(server_addr: tuple[str, int]) -> None:
    host, port = server_addr
    with RawConnection(HOST if host == HOST else host, port) as conn:
        conn.call("SUBSCRIBE", "r")
        assert conn.call("RESET") == "RESET"
        assert conn.call("PING") == "PONG"


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_confirmation_precedes_messages_under_load(server_addr: tuple[str, int], protocol: int) -> None:
    """With a publisher busy on the channel, a SUBSCRIBE's confirmation is
    always the first frame its client reads, and an UNSUBSCRIBE's is the
    last one about the channel (any message comes before it)."""
    host, port = server_addr
    stop = threading.Event()

    def flood() -> None:
        client = redis.Redis(host=host, port=port, socket_timeout=IO_TIMEOUT, retry=no_retry())
        try:
            while not stop.is_set():
                client.publish("busy", "m")
        finally:
            client.close()

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        with RawConnection(host, port) as conn:
            if protocol == 3:
                conn.call("HELLO", "3")
            messages = 0
            # Until messages did arrive in between (bounded).
            for _ in range(2000):
                assert conn.call("SUBSCRIBE", "busy") == [b"subscribe", b"busy", 1]
                conn.send_command("UNSUBSCRIBE", "busy")
                while True:
                    frame = conn.read()
                    if frame[0] == b"unsubscribe":
                        assert frame == [b"unsubscribe", b"busy", 0]
                        break
                    assert frame == [b"message", b"busy", b"m"]
                    messages += 1
                assert conn.call("PING") == "PONG"
                if messages >= 20:
                    break
            assert messages >= 20
    finally:
        stop.set()
        flooder.join(IO_TIMEOUT)
