"""Client limits as Redis has them, each driven to its edge against a
kiwi-server process whose memory the test watches: maxclients (exact under
simultaneous connections), timeout, tcp-keepalive, client-query-buffer-limit,
client-output-buffer-limit and protected-mode.

The settings' CONFIG GET/SET texts are compared with Redis in
tests/redis-diff/limits.txt; the disconnections below were checked against
Debian's redis-server 7.0 by hand (same outcome, same reply where there is
one).
"""

from __future__ import annotations

import fcntl
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

from kiwi.testing.processes import ServerProcess, server_command
from kiwitest import HOST, RawConnection, encode_command, free_port, run_threads, wait_until

pytestmark = pytest.mark.kiwi_only

MB = 1024 * 1024


class LimitedServer:
    """A kiwi-server process started with extra directives."""

    def __init__(self, tmp: Path, args: list[str], bind: str = HOST) -> None:
        self.port = free_port()
        self.proc = ServerProcess(
            server_command(),
            ["--port", str(self.port), "--bind", bind, "--dir", str(tmp / "data"), *args],
            str(tmp / "log"),
        )
        self.proc.start()
        self.proc.wait_ready(HOST, self.port, timeout=30)

    def raw(self, host: str = HOST) -> RawConnection:
        return RawConnection(host, self.port)

    def status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` size field (VmRSS, VmSize) in bytes."""
        pid = self.proc.pid
        assert pid is not None, "kiwi-server is not running"
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{pid}/status")

    def healthy(self) -> None:
        with self.raw() as conn:
            assert conn.call_raw("PING") == b"+PONG\r\n"

    def stop(self) -> None:
        self.proc.stop(grace=10)


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    servers: list[LimitedServer] = []

    def starter(*args: str, bind: str = HOST) -> LimitedServer:
        home = tmp_path / f"s{len(servers)}"
        home.mkdir()
        server = LimitedServer(home, list(args), bind=bind)
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.stop()


def closed_without_reply(conn: RawConnection, timeout: float = 10.0) -> bool:
    """Read until the server closes; True if it sent nothing at all."""
    conn.sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = conn.sock.recv(65536)
            if not chunk:
                return got == b""
            got += chunk
    except ConnectionResetError:
        return got == b""


# -- maxclients ----------------------------------------------------------------------


def test_maxclients_is_exact_under_simultaneous_connections(start) -> None:
    """Twenty clients connect at once to a server allowing five: exactly
    five are served, the others get Redis's refusal and are closed."""
    server = start("--maxclients", "5")
    barrier = threading.Barrier(20)
    held: list[RawConnection] = []
    lock = threading.Lock()

    def connect() -> bytes:
        barrier.wait(timeout=10)
        conn = server.raw()
        with lock:
            held.append(conn)
        conn.send(b"PING\r\n")
        return conn.read_raw()

    try:
        replies = run_threads([connect] * 20)
    finally:
        for conn in held:
            conn.close()
    assert replies.count(b"+PONG\r\n") == 5, replies
    assert replies.count(b"-ERR max number of clients reached\r\n") == 15, replies
    probes = []

    def all_gone() -> bool:
        probes.append(_connected(server))
        return probes[-1] == 0

    wait_until(all_gone, message="the served clients are gone")
    with server.raw() as conn:
        stats = conn.call("INFO", "stats").decode()
    # Every refusal counted: the fifteen, and any probe that came too early.
    assert f"rejected_connections:{15 + probes.count(-1)}\r\n" in stats


def _connected(server: LimitedServer) -> int:
    """Clients connected besides the one asking (-1 while it is refused)."""
    with server.raw() as conn:
        info = conn.call("INFO", "clients")
        if not isinstance(info, bytes):
            return -1
        info = info.decode()
    line = next(row for row in info.splitlines() if row.startswith("connected_clients:"))
    return int(line.split(":")[1]) - 1


# -- timeout -------------------------------------------------------------------------


def test_idle_clients_are_closed_after_timeout_but_busy_and_blocked_ones_stay(start) -> None:
    server = start("--timeout", "1")
    idle = server.raw()
    busy = server.raw()
    blocked = server.raw()
    blocked.send(encode_command("BLPOP", "nothing", "3"))
    began = time.monotonic()
    # The busy client talks every 0.3 s for 2.5 s: never idle for 1 s.
    while time.monotonic() - began < 2.5:
        assert busy.call_raw("PING") == b"+PONG\r\n"
        time.sleep(0.3)
    idle.assert_closed(timeout=5)
    # BLPOP has its own timeout; the idle one does not cut it short.
    assert blocked.read_raw() == b"*-1\r\n"
    assert busy.call_raw("PING") == b"+PONG\r\n"
    for conn in (idle, busy, blocked):
        conn.close()


# -- tcp-keepalive -------------------------------------------------------------------


def _keepalive_timer_on(server_port: int, client_port: int) -> Optional[bool]:
    """Whether the server's end of a connection has the keepalive timer
    armed (``tr`` 2 in /proc/net/tcp); None if the socket is not listed."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, timer = fields[1], fields[2], fields[5]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return timer.split(":")[0] == "02"
    return None


@pytest.mark.parametrize(("seconds", "armed"), [("300", True), ("0", False)])
def test_tcp_keepalive_arms_the_kernel_timer(start, seconds: str, armed: bool) -> None:
    server = start("--tcp-keepalive", seconds)
    with server.raw() as conn:
        assert conn.call_raw("PING") == b"+PONG\r\n"
        client_port = conn.sock.getsockname()[1]
        assert _keepalive_timer_on(server.port, client_port) is armed


# -- client-query-buffer-limit -------------------------------------------------------


def test_query_buffer_limit_closes_the_client_and_memory_stays_bounded(start) -> None:
    """An argument growing past the limit: the client is closed without a
    reply when its unprocessed input passes 1 MB, and the server did not
    keep the bytes."""
    server = start("--client-query-buffer-limit", "1mb")
    before = server.status("VmRSS")
    conns = []
    for _ in range(20):
        conn = server.raw()
        conn.send(b"*1\r\n$100000000\r\n")
        conns.append(conn)
    chunk = b"x" * (64 * 1024)
    for conn in conns:
        with pytest.raises(OSError):
            # The server closes the connection somewhere past 1 MB.
            for _ in range(200):
                conn.sock.sendall(chunk)
        conn.close()
    server.healthy()
    assert server.status("VmRSS") - before < 64 * MB


def test_a_blocked_client_cannot_pile_up_input(start) -> None:
    server = start("--client-query-buffer-limit", "1mb")
    conn = server.raw()
    conn.send(encode_command("BLPOP", "nothing", "0"))
    wait_until(lambda: _blocked(server) == 1, message="the client blocks")
    with pytest.raises(OSError):
        for _ in range(400):
            conn.sock.sendall(encode_command("PING") * 4096)
    conn.close()
    server.healthy()


def _blocked(server: LimitedServer) -> int:
    with server.raw() as conn:
        info = conn.call("INFO", "clients").decode()
    line = next(row for row in info.splitlines() if row.startswith("blocked_clients:"))
    return int(line.split(":")[1])


def test_a_huge_bulk_header_reserves_nothing_near_its_claim(start) -> None:
    """Two hundred 20-byte requests each announcing a 512 MB argument: the
    server must not set aside 100 GB for bytes that never come."""
    server = start()
    before = server.status("VmSize")
    conns = [server.raw() for _ in range(200)]
    for conn in conns:
        conn.send(b"*1\r\n$536870000\r\n")
    server.healthy()
    grew = server.status("VmSize") - before
    for conn in conns:
        conn.close()
    assert grew < 2 * 1024 * MB, f"address space grew by {grew // MB} MB"


# -- client-output-buffer-limit ------------------------------------------------------


def test_a_reply_past_the_hard_limit_closes_the_client(start) -> None:
    server = start("--client-output-buffer-limit", "normal", "1mb", "0", "0")
    with server.raw() as conn:
        assert conn.call_raw("SET", "big", b"x" * (2 * MB)) == b"+OK\r\n"
        assert conn.call_raw("GETRANGE", "big", "0", "9") == b"$10\r\nxxxxxxxxxx\r\n"
    with server.raw() as conn:
        conn.send(encode_command("GET", "big"))
        assert closed_without_reply(conn)
    server.healthy()
    # Logged as Redis logs it.
    wait_until(
        lambda: "Client scheduled to be closed ASAP for overcoming of output buffer limits" in server.proc.log_tail(50),
        message="the overrun is logged",
    )


def test_a_client_that_never_reads_is_dropped_after_the_soft_limit(start) -> None:
    """Pipelined 100 KB replies to a client that reads nothing: above 256 KB
    for more than a second, it is disconnected."""
    server = start("--client-output-buffer-limit", "normal", "0", "256kb", "1")
    with server.raw() as conn:
        assert conn.call_raw("SET", "big", b"x" * (2 * MB)) == b"+OK\r\n"
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sink.connect((HOST, server.port))
    sink.settimeout(10)
    request = encode_command("GETRANGE", "big", "0", "99999") * 200
    sink.sendall(request)

    def dropped() -> bool:
        try:
            while True:
                chunk = sink.recv(1 << 20)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True

    wait_until(lambda: _connected(server) == 1, message="the client is served")
    wait_until(lambda: _connected(server) == 0, timeout=15, message="the client is dropped")
    assert dropped()
    sink.close()
    server.healthy()


def test_memory_stays_bounded_when_clients_never_read(start) -> None:
    """With no output limit (the default), ten clients pipelining 20 MB of
    replies each and reading nothing: Kiwi stops reading from them instead
    of buffering 200 MB."""
    server = start()
    request = encode_command("GETRANGE", "big", "0", "99999") * 200
    with server.raw() as conn:
        assert conn.call_raw("SET", "big", b"x" * MB) == b"+OK\r\n"
        # The same work once by a client that reads: caches warm up.
        conn.send(request)
        for _ in range(200):
            assert len(conn.read()) == 100_000
    before = server.status("VmRSS")
    sinks = []
    for _ in range(10):
        sink = socket.create_connection((HOST, server.port))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sink.setblocking(False)
        try:
            sink.send(request)
        except BlockingIOError:
            pass
        sinks.append(sink)
    server.healthy()
    grew = server.status("VmRSS") - before
    for sink in sinks:
        sink.close()
    assert grew < 64 * MB, f"RSS grew by {grew // MB} MB"


# -- protected-mode ------------------------------------------------------------------


def _non_loopback_ipv4() -> Optional[str]:
    """An IPv4 address of this machine that is not on the loopback interface."""
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                packed = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            return socket.inet_ntoa(packed[20:24])
    return None


PROTECTED_PREFIX = b"-DENIED Redis is running in protected mode because protected mode is enabled"


@pytest.mark.skipif(_non_loopback_ipv4() is None, reason="this machine has no non-loopback IPv4 address")
def test_protected_mode_refuses_non_loopback_clients_without_a_password(start) -> None:
    """Bound beyond loopback with no password: a client arriving on another
    interface gets Redis's DENIED text and is closed; loopback is served;
    with protected-mode off, or a password set, the outside client is served."""
    address = _non_loopback_ipv4()
    assert address is not None
    server = start(bind="0.0.0.0")
    with server.raw(address) as outside:
        outside.send(b"PING\r\n")
        line = outside.sock.recv(4096)
        assert line.startswith(PROTECTED_PREFIX) and line.endswith(b"outside.\r\n"), line
    server.healthy()
    with server.raw() as local:
        assert local.call_raw("CONFIG", "SET", "protected-mode", "no") == b"+OK\r\n"
    with server.raw(address) as outside:
        assert outside.call_raw("PING") == b"+PONG\r\n"
    with server.raw() as local:
        assert local.call_raw("CONFIG", "SET", "protected-mode", "yes") == b"+OK\r\n"
        assert local.call_raw("CONFIG", "SET", "requirepass", "secret") == b"+OK\r\n"
    with server.raw(address) as outside:
        assert outside.call_raw("PING").startswith(b"-NOAUTH")
