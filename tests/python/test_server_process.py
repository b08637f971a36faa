"""The standalone ``kiwi-server`` process: flags, signals, restart on a dir.

Runs the console script (``kiwi-server`` on PATH or next to the Python
interpreter, else ``python -m kiwi``) as a subprocess on loopback.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from kiwitest import HOST, IO_TIMEOUT, RawConnection, free_port, no_retry, wait_until

pytestmark = pytest.mark.kiwi_only

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def server_command() -> list[str]:
    """How to launch the standalone server."""
    found = shutil.which("kiwi-server")
    if found:
        return [found]
    beside_python = Path(sys.executable).with_name("kiwi-server")
    if beside_python.is_file():
        return [str(beside_python)]
    return [sys.executable, "-m", "kiwi"]


@dataclass
class ServerProcess:
    """A running ``kiwi-server`` and where it listens."""

    proc: subprocess.Popen[bytes]
    port: int
    dir: Path
    log: Path

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client for this process."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=IO_TIMEOUT, **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` and return the exit code (bounded wait)."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"kiwi-server ignored {sig.name}; output:\n{self.output()}") from None


def wait_for_ping(server: ServerProcess, password: str | None = None) -> None:
    """Poll until the server answers PING, failing fast if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = server.proc.poll()
        if code is not None:
            raise AssertionError(f"kiwi-server exited with {code}; output:\n{server.output()}")
        client = server.client(password=password, socket_connect_timeout=1, retry=no_retry())
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            pass
        finally:
            client.close()
        if time.monotonic() >= deadline:
            raise AssertionError(f"kiwi-server not answering after {START_TIMEOUT}s:\n{server.output()}")
        time.sleep(0.05)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``kiwi-server`` processes; any still running at teardown are killed."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, *extra: str, password: str | None = None) -> ServerProcess:
        port = free_port()
        log = tmp_path / f"kiwi-server-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *server_command(),
                    "--port",
                    str(port),
                    "--dir",
                    str(data_dir),
                    "--bind",
                    HOST,
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = ServerProcess(proc, port, data_dir, log)
        started.append(server)
        wait_for_ping(server, password)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=STOP_TIMEOUT)


def test_help_lists_options() -> None:
    """``--help`` exits 0 and documents every flag."""
    result = subprocess.run(
        [*server_command(), "--help"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    text = result.stdout.decode(errors="replace")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    for flag in ("--port", "--dir", "--bind", "--requirepass"):
        assert flag in text, f"{flag} missing from --help"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_data_survives(
    spawn: Callable[..., ServerProcess], tmp_path: Path, sig: signal.Signals
) -> None:
    """Serve, stop with a signal (exit 0, port released), restart on the dir."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first = spawn(data_dir)
    client, db3 = first.client(), first.client(db=3)
    try:
        assert client.mset({"a": "1", "b": "2"}) is True
        assert client.set("ttl", "v", ex=3600) is True
        assert client.hset("h", "f", "v") == 1
        assert client.incrby("n", 41) == 41
        assert db3.set("other-db", "x") is True
        assert client.dbsize() == 5
    finally:
        client.close()
        db3.close()

    assert first.stop(sig) == 0, first.output()
    with pytest.raises(ConnectionRefusedError):
        RawConnection(HOST, first.port, timeout=2).close()

    second = spawn(data_dir)
    client, db3 = second.client(), second.client(db=3)
    try:
        assert client.mget("a", "b", "n") == [b"1", b"2", b"41"]
        assert client.hget("h", "f") == b"v"
        assert 3500 < client.ttl("ttl") <= 3600
        assert db3.get("other-db") == b"x"
    finally:
        client.close()
        db3.close()
    assert second.stop() == 0, second.output()


def test_requirepass_flag(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """``--requirepass`` guards every command until AUTH."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = spawn(data_dir, "--requirepass", "pw-123", password="pw-123")
    with RawConnection(HOST, server.port) as conn:
        assert conn.call_raw("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert conn.call_raw("AUTH", "nope") == (b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        assert conn.call_raw("AUTH", "pw-123") == b"+OK\r\n"
        assert conn.call_raw("SET", "k", "v") == b"+OK\r\n"
    assert server.stop() == 0, server.output()


def test_two_servers_side_by_side(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Two processes on different ports and dirs do not share data."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, two = spawn(tmp_path / "one"), spawn(tmp_path / "two")
    c1, c2 = one.client(), two.client()
    try:
        c1.set("k", "one")
        assert c2.get("k") is None
    finally:
        c1.close()
        c2.close()
    assert one.stop() == 0
    assert two.stop() == 0


def test_save_writes_a_checkpoint_a_server_starts_from(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """SAVE / BGSAVE leave a consistent copy in <dir>/checkpoint; a server
    started on a copy of it has every key written before the save."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first = spawn(data_dir)
    client = first.client()
    try:
        before = client.lastsave()
        client.mset({f"k{i}": str(i) for i in range(1000)})
        client.hset("h", mapping={"f1": "v1", "f2": "v2"})
        client.zadd("z", {"a": 1.5, "b": 2.5})
        assert client.info("persistence")["rdb_changes_since_last_save"] > 0
        assert client.save() is True
        assert client.info("persistence")["rdb_changes_since_last_save"] == 0
        assert client.lastsave() >= before
        client.set("after-save", "x")
        # BGSAVE replaces the checkpoint; LASTSAVE moves when it is done.
        assert client.bgsave() is True
        wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, timeout=30)
        assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
        client.set("after-bgsave", "y")
    finally:
        client.close()
    assert first.stop() == 0, first.output()
    copy = tmp_path / "restored"
    shutil.copytree(data_dir / "checkpoint", copy)
    second = spawn(copy)
    client = second.client()
    try:
        assert client.dbsize() == 1003
        assert client.get("k999") == b"999"
        assert client.hgetall("h") == {b"f1": b"v1", b"f2": b"v2"}
        assert client.zrange("z", 0, -1, withscores=True) == [(b"a", 1.5), (b"b", 2.5)]
        assert client.get("after-save") == b"x"
        assert client.get("after-bgsave") is None
    finally:
        client.close()
    assert second.stop() == 0, second.output()


def test_debug_is_refused_unless_enabled(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """DEBUG answers Redis's refusal by default; with enable-debug-command,
    SLEEP holds every other client's command and SET-ACTIVE-EXPIRE 0 keeps
    an expired key until it is read."""
    off = spawn(tmp_path / "off")
    with RawConnection(HOST, off.port) as conn:
        err = conn.call("DEBUG", "SLEEP", "0")
        assert str(err).startswith("ERR DEBUG command not allowed. If the enable-debug-command option")
    assert off.stop() == 0
    on = spawn(tmp_path / "on", "--enable-debug-command", "yes")
    with (
        RawConnection(HOST, on.port) as sleeper,
        RawConnection(HOST, on.port) as other,
        RawConnection(HOST, on.port) as watcher,
    ):
        assert other.call("SET", "k", "v") == "OK"
        sleeper_id = sleeper.call("CLIENT", "ID")
        sleeper.send_command("DEBUG", "SLEEP", "0.5")
        # Once the sleep holds the keyspace, a read waits for it.
        wait_until(
            lambda: b"cmd=debug" in watcher.call("CLIENT", "LIST", "ID", sleeper_id),
            timeout=10,
            message="DEBUG SLEEP never started",
        )
        started = time.monotonic()
        assert other.call("GET", "k") == b"v"
        assert time.monotonic() - started >= 0.2
        assert sleeper.read() == "OK"
        assert other.call("DEBUG", "OBJECT", "k").startswith("Value at:")
        assert other.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == "OK"
        other.call("SET", "short", "x", "PX", "50")
        # Three sweeps' time (hz 10): none may take the key.
        time.sleep(0.3)
        info = other.call("INFO", "stats").decode()
        assert "expired_keys:0" in info
        assert other.call("GET", "short") is None
        assert other.call("DEBUG", "SET-ACTIVE-EXPIRE", "1") == "OK"
    assert on.stop() == 0


def test_config_rewrite_updates_the_config_file(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """CONFIG REWRITE keeps the file's comments and unknown lines, rewrites
    the directives it has in place and appends the others that changed; a
    restart from the file has the values."""
    conf = tmp_path / "kiwi.conf"
    data_dir = tmp_path / "data"
    conf.write_text(f"# my settings\ndir {data_dir}\nhz 10\nhz 11\nmaxmemory-policy noeviction\n# the end\n")
    data_dir.mkdir()
    port = free_port()
    log = tmp_path / "rewrite.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*server_command(), str(conf), "--port", str(port), "--bind", HOST],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(proc, port, data_dir, log)
    try:
        wait_for_ping(server)
        client = server.client()
        try:
            assert client.config_get("hz") == {"hz": "11"}
            assert client.info("server")["config_file"] == str(conf)
            client.config_set("hz", "20")
            client.config_set("maxmemory-policy", "allkeys-lru")
            client.config_set("hash-max-listpack-entries", "64")
            client.config_set("save", "900 1 300 10")
            assert client.config_rewrite() in (True, b"OK")
        finally:
            client.close()
        text = conf.read_text()
        assert text.startswith("# my settings\n")
        assert "# the end\n" in text
        assert text.count("\nhz ") == 1 and "\nhz 20\n" in text
        assert "\nmaxmemory-policy allkeys-lru\n" in text
        assert "# Generated by CONFIG REWRITE\n" in text
        assert "\nhash-max-listpack-entries 64\n" in text
        assert "\nsave 900 1 300 10\n" in text
    finally:
        assert server.stop() == 0, server.output()
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*server_command(), str(conf), "--port", str(port), "--bind", HOST, "--dir", str(tmp_path / "other")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    restarted = ServerProcess(proc, port, tmp_path / "other", log)
    try:
        wait_for_ping(restarted)
        client = restarted.client()
        try:
            got = client.config_get("hz", "maxmemory-policy", "hash-max-listpack-entries", "save")
            assert got["hz"] == "20"
            assert got["maxmemory-policy"] == "allkeys-lru"
            assert got["hash-max-listpack-entries"] == "64"
            assert got["save"] == "900 1 300 10"
        finally:
            client.close()
    finally:
        assert restarted.stop() == 0, restarted.output()


def http_get(port: int, request: bytes) -> tuple[str, str]:
    """Send one raw HTTP request to the metrics port: (status line, body)."""
    import socket

    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def samples(exposition: str) -> dict[str, float]:
    """``metric{labels}`` → value, checking the text format on the way: one
    TYPE line per family, right before its samples."""
    import re

    out: dict[str, float] = {}
    typed: list[str] = []
    current = ""
    sample = re.compile(r'^([a-zA-Z_][a-zA-Z0-9_]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$')
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            current = line.split()[2]
            assert current not in typed, f"family {current} typed twice"
            typed.append(current)
            continue
        match = sample.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1) == current, f"{line!r} outside its family {current}"
        out[line.rsplit(" ", 1)[0]] = float(match.group(5))
    return out


def test_metrics_port_serves_info_in_prometheus_text(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    metrics_port = free_port()
    server = spawn(tmp_path / "data", "--metrics-port", str(metrics_port))
    client = server.client()
    client.set("a", "1")
    client.set("b", "2", px=100_000)
    client.get("a")
    errors_before = samples(http_get(metrics_port, b"GET /metrics HTTP/1.1\r\n\r\n")[1]).get(
        'kiwi_errors{error="ERR"}', 0
    )
    with pytest.raises(redis.ResponseError):
        client.execute_command("NOSUCH")
    status, body = http_get(metrics_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == "HTTP/1.1 200 OK"
    got = samples(body)
    assert got['kiwi_db_keys{db="0"}'] == 2
    assert got['kiwi_db_expires{db="0"}'] == 1
    assert got['kiwi_command_calls{cmd="set"}'] == 2
    assert got['kiwi_command_calls{cmd="get"}'] == 1
    assert got['kiwi_errors{error="ERR"}'] == errors_before + 1
    assert got["kiwi_connected_clients"] >= 1
    assert any(k.startswith("kiwi_info{") and 'redis_version="7.0.15"' in k for k in got)
    # A scrape is not a command: it shows in no statistic.
    http_get(metrics_port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert "cmdstat_info" not in client.info("commandstats")
    assert client.config_get("metrics-port") == {"metrics-port": str(metrics_port)}


def test_metrics_port_answers_only_scrapes_and_stays_up(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    import socket

    metrics_port = free_port()
    server = spawn(tmp_path / "data", "--metrics-port", str(metrics_port))
    assert http_get(metrics_port, b"POST /metrics HTTP/1.1\r\n\r\n")[0] == "HTTP/1.1 405 Method Not Allowed"
    assert http_get(metrics_port, b"GET /nope HTTP/1.1\r\n\r\n")[0] == "HTTP/1.1 404 Not Found"
    assert http_get(metrics_port, b"garbage\r\n\r\n")[0] == "HTTP/1.1 400 Bad Request"
    huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n"
    assert http_get(metrics_port, huge)[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    # Idle connections that never send a request do not hold up a scrape.
    idle = [socket.create_connection((HOST, metrics_port), timeout=IO_TIMEOUT) for _ in range(50)]
    try:
        assert http_get(metrics_port, b"GET / HTTP/1.1\r\n\r\n")[0] == "HTTP/1.1 200 OK"
    finally:
        for sock in idle:
            sock.close()
    assert server.client().ping() is True


@pytest.mark.parametrize(
    "flags", [(), ("NOSAVE",), ("SAVE",), ("NOW", "FORCE")], ids=["plain", "nosave", "save", "now-force"]
)
def test_shutdown_stops_cleanly_and_data_survives(
    spawn: Callable[..., ServerProcess], tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """SHUTDOWN is the same clean stop as SIGTERM: no reply (redis-py's
    ``shutdown()`` expects the connection to close), exit 0, port released,
    every acknowledged write there after a restart; SAVE also leaves a
    checkpoint, as SAVE does."""
    data_dir = tmp_path / "data"
    first = spawn(data_dir)
    client = first.client()
    assert client.mset({"a": "1", "b": "2"}) is True
    assert client.hset("h", "f", "v") == 1
    other = first.client()
    other.ping()
    client.shutdown(*[], nosave="NOSAVE" in flags, save="SAVE" in flags, now="NOW" in flags, force="FORCE" in flags)
    assert first.proc.wait(timeout=STOP_TIMEOUT) == 0, first.output()
    assert "SHUTDOWN" in first.output()
    with pytest.raises(redis.ConnectionError):
        other.ping()
    with pytest.raises(ConnectionRefusedError):
        RawConnection(HOST, first.port, timeout=2).close()
    assert (data_dir / "checkpoint").is_dir() == ("SAVE" in flags)
    second = spawn(data_dir)
    restarted = second.client()
    assert restarted.mget("a", "b") == [b"1", b"2"]
    assert restarted.hget("h", "f") == b"v"
    assert restarted.dbsize() == 3
    assert second.stop() == 0, second.output()


def test_shutdown_needs_auth(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = spawn(tmp_path / "data", "--requirepass", "pw", password="pw")
    anonymous = server.client()
    # (redis-py's shutdown() takes an auth error, a ConnectionError, for success.)
    with pytest.raises(redis.AuthenticationError):
        anonymous.execute_command("SHUTDOWN")
    assert server.proc.poll() is None
    server.client(password="pw").shutdown()
    assert server.proc.wait(timeout=STOP_TIMEOUT) == 0
