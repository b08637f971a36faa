"""Kiwi's own servers: persistence across restarts, requirepass, and
start/stop hygiene of ``kiwi.Server``.

These always start a Kiwi of their own (marker ``kiwi_only``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
import redis

from kiwitest import HOST, RawConnection, free_port, no_retry, wait_until

pytestmark = pytest.mark.kiwi_only

PASSWORD = "s3cret-pass"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    b"HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    b"the RESP protocol version at the same time\r\n"
)
DATABASES = (0, 1, 7, 15)
BINARY_KEY = b"bin\x00\r\n\xff"
BINARY_VALUE = bytes(range(256))


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return int(time.time() * 1000)


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def os_thread_count() -> int:
    """OS threads of this process (Python and native)."""
    return len(os.listdir("/proc/self/task"))


# -- kiwi.Server basics ------------------------------------------------------------


def test_server_attributes_and_client(kiwi_mod: ModuleType) -> None:
    """host/port/dir are exposed and ``client()`` talks to that server."""
    with kiwi_mod.Server() as server:
        assert server.host == HOST
        assert isinstance(server.port, int)
        assert server.port > 0
        assert Path(server.dir).is_dir()
        client = server.client()
        try:
            assert isinstance(client, redis.Redis)
            assert client.ping() is True
            assert client.config_get("port") == {"port": str(server.port)}
        finally:
            client.close()


def test_server_client_passes_kwargs(kiwi_mod: ModuleType) -> None:
    """``client(**kwargs)`` forwards options such as db and protocol."""
    with kiwi_mod.Server() as server:
        c3 = server.client(db=3, protocol=3)
        c0 = server.client()
        try:
            c3.set("k", "in-db-3")
            assert c0.get("k") is None
            assert c3.get("k") == b"in-db-3"
            assert c3.execute_command("HELLO")[b"proto"] == 3
        finally:
            c3.close()
            c0.close()


def test_server_on_requested_port(kiwi_mod: ModuleType) -> None:
    """An explicit port is honoured."""
    port = free_port()
    with kiwi_mod.Server(port=port) as server:
        assert server.port == port
        with RawConnection(HOST, port) as conn:
            assert conn.call_raw("PING") == b"+PONG\r\n"


def test_temporary_dir_removed_but_given_dir_kept(kiwi_mod: ModuleType, tmp_path: Path) -> None:
    """A temp dir is cleaned up on exit; a caller's dir is left in place."""
    with kiwi_mod.Server() as server:
        temp_dir = Path(server.dir)
        assert temp_dir.is_dir()
    assert not temp_dir.exists()

    given = tmp_path / "kept"
    given.mkdir()
    with kiwi_mod.Server(dir=str(given)) as server:
        assert Path(server.dir).resolve() == given.resolve()
        client = server.client()
        client.set("k", "v")
        client.close()
    assert given.is_dir()
    assert any(given.iterdir())


def test_server_is_stopped_after_with_block(kiwi_mod: ModuleType) -> None:
    """Leaving the ``with`` closes the listener."""
    with kiwi_mod.Server() as server:
        port = server.port
    with pytest.raises(ConnectionRefusedError):
        RawConnection(HOST, port, timeout=2).close()


def test_shutdown_stops_an_in_process_server(kiwi_mod: ModuleType, tmp_path: Path) -> None:
    """A client's SHUTDOWN stops a ``kiwi.Server``: ``running`` says so, the
    port is released, ``stop()`` still works and the data is kept."""
    server = kiwi_mod.Server(dir=str(tmp_path / "d")).start()
    client = server.client()
    client.set("k", "v")
    assert server.running
    client.shutdown()
    wait_until(lambda: not server.running, message="running after SHUTDOWN")
    with pytest.raises(ConnectionRefusedError):
        wait_until(lambda: RawConnection(HOST, server.port, timeout=2).close(), timeout=5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    server.stop()
    with kiwi_mod.Server(dir=str(tmp_path / "d")) as again:
        assert again.client().get("k") == b"v"


def test_shutdown_is_refused_by_an_embedded_database(kiwi_mod: ModuleType) -> None:
    with kiwi_mod.open() as db:
        with pytest.raises(redis.ResponseError, match="close an embedded database instead"):
            db.execute_command("SHUTDOWN")
        assert db.ping() is True


# -- persistence -----------------------------------------------------------------


def write_dataset(server: object, deadline_ms: int) -> None:
    """Strings with and without TTLs, a hash and some churn, in several DBs."""
    for db in DATABASES:
        client = server.client(db=db)  # type: ignore[attr-defined]
        try:
            client.set("plain", f"db{db}")
            client.set("ttl", f"t{db}", pxat=deadline_ms + db)
            client.set("ex", "v", ex=3600)
            client.set(BINARY_KEY, BINARY_VALUE)
            client.set("empty", "")
            client.hset("hash", mapping={"f": f"h{db}", "g": "2"})
            client.set("deleted", "x")
            client.delete("deleted")
            client.set("overwritten", "old", ex=3600)
            client.set("overwritten", "new")
            client.set("persisted", "v", ex=3600)
            client.persist("persisted")
            client.incrby("counter", 5 + db)
            client.append("appended", "ab")
            client.append("appended", "cd")
            client.mset({f"bulk:{i}": f"{db}:{i}" for i in range(500)})
        finally:
            client.close()


def check_dataset(server: object, deadline_ms: int) -> None:
    """Everything written by :func:`write_dataset` is back, TTLs exactly."""
    for db in DATABASES:
        client = server.client(db=db)  # type: ignore[attr-defined]
        try:
            assert client.get("plain") == f"db{db}".encode()
            assert client.get("ttl") == f"t{db}".encode()
            assert client.execute_command("PEXPIRETIME", "ttl") == deadline_ms + db
            assert 3500 < client.ttl("ex") <= 3600
            assert client.get(BINARY_KEY) == BINARY_VALUE
            assert client.get("empty") == b""
            assert client.type("hash") == b"hash"
            assert client.hget("hash", "f") == f"h{db}".encode()
            assert client.exists("deleted") == 0
            assert client.get("overwritten") == b"new"
            assert client.ttl("overwritten") == -1
            assert client.ttl("persisted") == -1
            assert client.get("counter") == str(5 + db).encode()
            assert client.get("appended") == b"abcd"
            assert client.mget([f"bulk:{i}" for i in range(500)]) == [f"{db}:{i}".encode() for i in range(500)]
            assert client.dbsize() == 10 + 500
        finally:
            client.close()
    other = server.client(db=2)  # type: ignore[attr-defined]
    try:
        assert other.dbsize() == 0
    finally:
        other.close()


def test_data_and_ttls_survive_restart(kiwi_mod: ModuleType, tmp_path: Path) -> None:
    """Stop, start a new server on the same dir: all data and deadlines are back."""
    data_dir = str(tmp_path / "data")
    Path(data_dir).mkdir()
    deadline_ms = now_ms() + 3_600_000
    with kiwi_mod.Server(dir=data_dir) as server:
        write_dataset(server, deadline_ms)
        check_dataset(server, deadline_ms)
    with kiwi_mod.Server(dir=data_dir) as server:
        check_dataset(server, deadline_ms)
    with kiwi_mod.Server(dir=data_dir) as server:
        check_dataset(server, deadline_ms)


def test_changes_after_restart_persist_too(kiwi_mod: ModuleType, tmp_path: Path) -> None:
    """Deletes, overwrites and FLUSHDB done on a restarted server stick."""
    data_dir = str(tmp_path / "data")
    Path(data_dir).mkdir()
    with kiwi_mod.Server(dir=data_dir) as server:
        db0, db1 = server.client(), server.client(db=1)
        db0.mset({"a": "1", "b": "2", "c": "3"})
        db1.set("x", "1")
        db0.close()
        db1.close()
    with kiwi_mod.Server(dir=data_dir) as server:
        db0, db1 = server.client(), server.client(db=1)
        assert db1.get("x") == b"1"
        db0.delete("a")
        db0.set("b", "two", ex=3600)
        db1.flushdb()
        db0.close()
        db1.close()
    with kiwi_mod.Server(dir=data_dir) as server:
        db0, db1 = server.client(), server.client(db=1)
        try:
            assert db0.mget("a", "b", "c") == [None, b"two", b"3"]
            assert 3500 < db0.ttl("b") <= 3600
            assert db1.dbsize() == 0
        finally:
            db0.close()
            db1.close()


def test_key_expiring_while_stopped_is_gone(kiwi_mod: ModuleType, tmp_path: Path) -> None:
    """A deadline that passes while the server is down is honoured on start."""
    data_dir = str(tmp_path / "data")
    Path(data_dir).mkdir()
    deadline_ms = now_ms() + 300
    with kiwi_mod.Server(dir=data_dir) as server:
        client = server.client()
        client.set("short", "v", pxat=deadline_ms)
        client.set("long", "v")
        client.close()
    wait_until(lambda: now_ms() > deadline_ms + 50, timeout=5)
    with kiwi_mod.Server(dir=data_dir) as server:
        client = server.client()
        try:
            assert client.get("short") is None
            assert client.keys("*") == [b"long"]
            wait_until(lambda: client.dbsize() == 1, timeout=5)
        finally:
            client.close()


# -- requirepass --------------------------------------------------------------------


def test_requirepass_exact_replies(kiwi_mod: ModuleType) -> None:
    """NOAUTH before AUTH; WRONGPASS for a bad password; AUTH unlocks."""
    with (
        kiwi_mod.Server(requirepass=PASSWORD) as server,
        RawConnection(server.host, server.port) as conn,
    ):
        assert conn.call_raw("PING") == NOAUTH
        assert conn.call_raw("GET", "k") == NOAUTH
        assert conn.call_raw("SET", "k", "v") == NOAUTH
        assert conn.call_raw("HELLO", 3) == HELLO_NOAUTH
        assert conn.call_raw("AUTH", "wrong") == WRONGPASS
        assert conn.call_raw("AUTH", "default", "wrong") == WRONGPASS
        assert conn.call_raw("HELLO", 3, "AUTH", "default", "wrong") == WRONGPASS
        assert conn.call_raw("AUTH", "a", "b", "c") == b"-ERR syntax error\r\n"
        assert conn.call_raw("PING") == NOAUTH
        assert conn.call_raw("AUTH", PASSWORD) == b"+OK\r\n"
        assert conn.call_raw("SET", "k", "v") == b"+OK\r\n"
        assert conn.call_raw("GET", "k") == b"$1\r\nv\r\n"


def test_requirepass_two_argument_auth_and_hello_auth(kiwi_mod: ModuleType) -> None:
    """``AUTH default <pw>`` and ``HELLO 3 AUTH default <pw>`` both log in."""
    with kiwi_mod.Server(requirepass=PASSWORD) as server:
        with RawConnection(server.host, server.port) as conn:
            assert conn.call_raw("AUTH", "default", PASSWORD) == b"+OK\r\n"
            assert conn.call_raw("PING") == b"+PONG\r\n"
        with RawConnection(server.host, server.port) as conn:
            hello = conn.call("HELLO", 3, "AUTH", "default", PASSWORD)
            assert hello[b"proto"] == 3
            assert conn.call_raw("PING") == b"+PONG\r\n"


def test_requirepass_quit_works_unauthenticated(kiwi_mod: ModuleType) -> None:
    """QUIT needs no authentication."""
    with (
        kiwi_mod.Server(requirepass=PASSWORD) as server,
        RawConnection(server.host, server.port) as conn,
    ):
        assert conn.call_raw("QUIT") == b"+OK\r\n"
        conn.assert_closed()


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        pytest.param(
            b"*11\r\n",
            b"-ERR Protocol error: unauthenticated multibulk length\r\n",
            id="multibulk-over-10",
        ),
        pytest.param(
            b"*1\r\n$16385\r\n",
            b"-ERR Protocol error: unauthenticated bulk length\r\n",
            id="bulk-over-16k",
        ),
    ],
)
def test_requirepass_limits_unauthenticated_requests(kiwi_mod: ModuleType, request_bytes: bytes, reply: bytes) -> None:
    """Before AUTH, big requests are refused outright and the link closed."""
    with (
        kiwi_mod.Server(requirepass=PASSWORD) as server,
        RawConnection(server.host, server.port) as conn,
    ):
        conn.send(request_bytes)
        assert conn.read_raw() == reply
        conn.assert_closed()


def test_requirepass_limits_lifted_after_auth(kiwi_mod: ModuleType) -> None:
    """After AUTH, an 11-argument command and a 20 kB argument are fine."""
    with (
        kiwi_mod.Server(requirepass=PASSWORD) as server,
        RawConnection(server.host, server.port) as conn,
    ):
        assert conn.call_raw("AUTH", PASSWORD) == b"+OK\r\n"
        pairs = [x for i in range(5) for x in (f"k{i}", f"v{i}")]
        assert conn.call_raw("MSET", *pairs) == b"+OK\r\n"
        assert conn.call_raw("SET", "big", "x" * 20_000) == b"+OK\r\n"
        assert conn.call("STRLEN", "big") == 20_000


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_requirepass_with_redis_py(kiwi_mod: ModuleType, protocol: int) -> None:
    """redis-py logs in with ``password=`` under both protocols; without it fails."""
    with kiwi_mod.Server(requirepass=PASSWORD) as server:
        good = server.client(password=PASSWORD, protocol=protocol)
        bad = server.client(password="wrong", protocol=protocol, retry=no_retry())
        anonymous = server.client(protocol=2, retry=no_retry())
        try:
            assert good.set("k", "v") is True
            assert good.get("k") == b"v"
            with pytest.raises(redis.AuthenticationError):
                bad.ping()
            with pytest.raises(redis.AuthenticationError):
                anonymous.get("k")
        finally:
            for client in (good, bad, anonymous):
                client.close()


# -- start/stop hygiene ---------------------------------------------------------------


def test_start_stop_cycles_leak_nothing(kiwi_mod: ModuleType) -> None:
    """100 start/use/stop cycles: no leaked threads, fds or temp dirs."""
    used_dirs: list[Path] = []

    def cycle() -> None:
        with kiwi_mod.Server() as server:
            used_dirs.append(Path(server.dir))
            client = server.client()
            try:
                assert client.set("k", "v") is True
                assert client.get("k") == b"v"
            finally:
                client.close()

    cycle()  # warm-up: one-time lazy initialisation is not a leak
    base_py_threads = threading.active_count()
    base_os_threads = os_thread_count()
    base_fds = fd_count()

    for _ in range(100):
        cycle()

    wait_until(
        lambda: threading.active_count() <= base_py_threads,
        timeout=10,
        message=f"python threads {threading.active_count()} > baseline {base_py_threads}",
    )
    wait_until(
        lambda: os_thread_count() <= base_os_threads,
        timeout=10,
        message=f"OS threads {os_thread_count()} > baseline {base_os_threads}",
    )
    wait_until(
        lambda: fd_count() <= base_fds,
        timeout=10,
        message=f"fds {fd_count()} > baseline {base_fds}",
    )
    assert len(used_dirs) == 101
    assert not [d for d in used_dirs if d.exists()]
