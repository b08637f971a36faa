"""CLIENT KILL, UNBLOCK, PAUSE/UNPAUSE and NO-EVICT between connections,
run the same way on Debian's redis-server and on Kiwi: the replies, who gets
closed, what a blocked client receives and when paused commands run must
agree.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import kiwi
from kiwitest import (
    HOST,
    ConnectionClosed,
    RawConnection,
    RespError,
    encode_command,
    reference_redis_server,
    wait_until,
)

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-client-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def kiwi_port() -> Iterator[int]:
    with kiwi.Server() as server:
        yield server.port


@pytest.fixture(params=["redis", "kiwi"])
def port(request: Any, reference_port: int, kiwi_port: int) -> int:
    return reference_port if request.param == "redis" else kiwi_port


def connect(port: int) -> RawConnection:
    return RawConnection(HOST, port)


def closed(conn: RawConnection) -> bool:
    """Whether the server closed this connection (a PING gets no answer)."""
    try:
        conn.call("PING")
    except (ConnectionClosed, OSError):
        return True
    return False


def field(line: bytes, name: str) -> str:
    m = re.search(rf"(?:^| ){name}=(\S*)", line.decode())
    assert m, f"{name} missing in {line!r}"
    return m.group(1)


def test_kill_by_id_addr_laddr_and_type(port: int) -> None:
    me, a, b, sub = (connect(port) for _ in range(4))
    try:
        a_id = a.call("CLIENT", "ID")
        assert me.call("CLIENT", "KILL", "ID", a_id) == 1
        assert closed(a)
        assert me.call("CLIENT", "KILL", "ID", a_id) == 0
        info = b.call("CLIENT", "INFO")
        assert me.call("CLIENT", "KILL", "ADDR", field(info, "addr"), "LADDR", field(info, "laddr")) == 1
        assert closed(b)
        assert sub.call("SUBSCRIBE", "ch")[0] in (b"subscribe", "subscribe")
        assert me.call("CLIENT", "KILL", "TYPE", "pubsub") == 1
        assert closed(sub)
        # The caller is skipped unless SKIPME no.
        assert me.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", "ID", me.call("CLIENT", "ID")) == 0
        assert not closed(me)
    finally:
        for c in (me, a, b, sub):
            c.close()


def test_killing_oneself_answers_first(port: int) -> None:
    with connect(port) as me:
        assert me.call("CLIENT", "KILL", "ID", me.call("CLIENT", "ID"), "SKIPME", "no") == 1
        assert closed(me)
    with connect(port) as me:
        # The old form kills its own connection too, after its OK.
        assert me.call("CLIENT", "KILL", field(me.call("CLIENT", "INFO"), "addr")) == "OK"
        assert closed(me)
    with connect(port) as me:
        err = me.call("CLIENT", "KILL", "127.0.0.1:1")
        assert isinstance(err, RespError) and str(err) == "ERR No such client"


@pytest.mark.parametrize("how", ["TIMEOUT", "ERROR", None])
def test_unblock_a_blocked_pop(port: int, how: str | None) -> None:
    with connect(port) as blocked, connect(port) as other:
        other.call("DEL", "unblock-list")
        blocked_id = blocked.call("CLIENT", "ID")
        assert other.call("CLIENT", "UNBLOCK", blocked_id) == 0
        blocked.send_command("BLPOP", "unblock-list", 0)

        def waiting() -> bool:
            return "flags=b" in other.call("CLIENT", "LIST", "ID", blocked_id).decode()

        wait_until(waiting, timeout=10, message="the BLPOP never showed as blocked")
        args = ["CLIENT", "UNBLOCK", blocked_id] + ([how] if how else [])
        assert other.call(*args) == 1
        reply = blocked.read()
        if how == "ERROR":
            assert isinstance(reply, RespError)
            assert str(reply) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
        else:
            assert reply is None
        assert "flags=N" in other.call("CLIENT", "LIST", "ID", blocked_id).decode()
        assert other.call("CLIENT", "UNBLOCK", blocked_id, "ERROR") == 0
        # The connection goes on as usual.
        assert blocked.call("PING") == "PONG"


def timed(conn: RawConnection, *args: str) -> tuple[Any, float]:
    started = time.monotonic()
    reply = conn.call(*args)
    return reply, time.monotonic() - started


def test_pause_write_holds_writes_until_unpause(port: int) -> None:
    with connect(port) as admin, connect(port) as writer, connect(port) as reader:
        assert admin.call("CLIENT", "PAUSE", 60_000, "WRITE") == "OK"
        try:
            assert reader.call("GET", "paused-key") is None
            writer.send_command("SET", "paused-key", "v")
            # The write waits while reads go on.
            writer.sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                writer.sock.recv(1, socket.MSG_PEEK)  # nothing arrives while paused
            writer.sock.settimeout(writer.timeout)
            assert reader.call("GET", "paused-key") is None
        finally:
            assert admin.call("CLIENT", "UNPAUSE") == "OK"
        assert writer.read() == "OK"
        assert reader.call("GET", "paused-key") == b"v"


def test_pause_all_holds_every_command_until_it_ends(port: int) -> None:
    with connect(port) as admin, connect(port) as other:
        assert admin.call("CLIENT", "PAUSE", 400, "ALL") == "OK"
        reply, waited = timed(other, "PING")
        assert reply == "PONG"
        assert waited >= 0.2, f"PING ran {waited:.3f}s into a 400 ms pause"
        # A shorter pause does not shorten one in force; it ended by now.
        assert admin.call("CLIENT", "PAUSE", 0) == "OK"
        assert timed(other, "PING")[1] < 5


def test_no_evict_flag(port: int) -> None:
    with connect(port) as conn:
        assert conn.call("CLIENT", "NO-EVICT", "on") == "OK"
        assert field(conn.call("CLIENT", "INFO"), "flags") == "e"
        assert conn.call("CLIENT", "NO-EVICT", "off") == "OK"
        assert field(conn.call("CLIENT", "INFO"), "flags") == "N"


def test_kill_while_paused_and_blocked_leaves_the_server_serving(port: int) -> None:
    """A killed blocked client is gone from CLIENT LIST; the rest go on."""
    with connect(port) as blocked, connect(port) as admin:
        blocked_id = blocked.call("CLIENT", "ID")
        blocked.send_command("BLPOP", "never-pushed", 0)
        wait_until(
            lambda: "flags=b" in admin.call("CLIENT", "LIST", "ID", blocked_id).decode(),
            timeout=10,
            message="the BLPOP never showed as blocked",
        )
        assert admin.call("CLIENT", "KILL", "ID", blocked_id) == 1
        wait_until(
            lambda: admin.call("CLIENT", "LIST", "ID", blocked_id) == b"",
            timeout=10,
            message="the killed client is still listed",
        )
        assert closed(blocked)
        done = threading.Event()

        def push() -> None:
            with connect(port) as pusher:
                pusher.call("RPUSH", "never-pushed", "x")
                done.set()

        t = threading.Thread(target=push)
        t.start()
        t.join(10)
        assert done.is_set()
        assert admin.call("LPOP", "never-pushed") == b"x"


#: A pipeline exercising CLIENT REPLY; PING at the end marks where to stop.
REPLY_PIPELINE: list[list[str]] = [
    ["SET", "r", "1"],
    ["CLIENT", "REPLY", "OFF"],
    ["INCR", "r"],
    ["GET", "nosuch"],
    ["LPUSH", "r", "x"],
    ["CLIENT", "REPLY", "ON"],
    ["GET", "r"],
    ["CLIENT", "REPLY", "SKIP"],
    ["INCR", "r"],
    ["INCR", "r"],
    ["CLIENT", "REPLY", "SKIP"],
    ["CLIENT", "REPLY", "OFF"],
    ["GET", "r"],
    ["RESET"],
    ["CLIENT", "REPLY", "maybe"],
    ["ECHO", "done"],
]


def test_client_reply_drops_what_redis_drops(reference_port: int, kiwi_port: int) -> None:
    """The same pipeline sent at once: the reply bytes must be identical."""

    def replies(port: int) -> bytes:
        with connect(port) as conn:
            conn.call("DEL", "r")
            conn.send(b"".join(encode_command(*args) for args in REPLY_PIPELINE))
            out = []
            while True:
                raw = conn.read_raw()
                out.append(raw)
                if raw == b"$4\r\ndone\r\n":
                    return b"".join(out)

    assert replies(kiwi_port) == replies(reference_port)
