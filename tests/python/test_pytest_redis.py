"""Tools built for redis-server drive kiwi-server unchanged."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis

from kiwitest import free_port, wait_until

pytestmark = pytest.mark.kiwi_only


def kiwi_server_exe() -> str:
    exe = shutil.which("kiwi-server")
    assert exe, "the kiwi-server console script is not installed"
    return exe


def test_pytest_redis_runs_on_kiwi_server(pytester: pytest.Pytester) -> None:
    """pytest-redis's redis_proc/redisdb fixtures with kiwi-server as redis_exec."""
    pytester.makepyfile(
        test_with_pytest_redis="""
def test_redis_proc(redis_proc, redisdb):
    redisdb.set("k", "v")
    assert redisdb.get("k") == b"v"
    assert redis_proc.version
"""
    )
    # pytest-redis puts a unix socket in its temp dir: keep the path short.
    basetemp = tempfile.mkdtemp(prefix="kpr-")
    try:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-q", f"--basetemp={basetemp}", f"--redis-exec={kiwi_server_exe()}"
        )
        result.assert_outcomes(passed=1)
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)


def test_version_line_parses_like_redis_server() -> None:
    out = subprocess.run([kiwi_server_exe(), "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.startswith("Redis server v=7.")


def test_unix_socket_config_file_and_pidfile(tmp_path: Path) -> None:
    sock = tmp_path / "kiwi.sock"
    pidfile = tmp_path / "kiwi.pid"
    conf = tmp_path / "redis.conf"
    port = free_port()
    conf.write_text(f"port {port}\ndir {tmp_path / 'data'}\nunixsocket {sock}\nsave 900 1\nappendonly no\n")
    proc = subprocess.Popen(
        [kiwi_server_exe(), str(conf), "--pidfile", str(pidfile), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: sock.exists() and pidfile.exists(), timeout=20, message="socket and pid file")
        assert int(pidfile.read_text()) == proc.pid
        over_unix = redis.Redis(unix_socket_path=str(sock), protocol=3)
        over_tcp = redis.Redis(port=port, protocol=2)
        try:
            over_unix.set("via", "unix")
            assert over_tcp.get("via") == b"unix"
            assert "kiwi.sock" in over_unix.client_info()["addr"]
        finally:
            over_unix.close()
            over_tcp.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert not pidfile.exists(), "the pid file is removed at exit"


def test_unknown_flags_are_refused_clearly() -> None:
    out = subprocess.run([kiwi_server_exe(), "--no-such-flag", "1"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "unknown directive 'no-such-flag'" in out.stderr


def test_python_dash_m_kiwi_mirrors_the_server() -> None:
    out = subprocess.run([sys.executable, "-m", "kiwi", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "--unixsocket" in out.stdout
