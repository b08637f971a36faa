"""``appendfsync always | everysec | no``: the setting as Redis has it (redis.conf,
``--appendfsync``, CONFIG GET/SET with Redis's replies byte for byte), and what
it does, seen from outside: the ``fdatasync``/``fsync`` calls of a
``kiwi-server`` process traced with ``strace``.

* ``always``: one sync per acknowledged write (each waits for the one before);
* ``everysec``: none while writing, one within about a second after;
* ``no``: none at all, the OS writes back when it likes.

The sync thread of ``everysec`` stops with its server: ``kiwi.Server``
started and stopped many times leaves no ``kiwi-fsync`` thread behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import redis

from kiwi.testing.processes import server_command
from kiwi.testing.targets import free_ports
from kiwitest import HOST, IO_TIMEOUT, RawConnection, no_retry, reference_redis_server, wait_until

pytestmark = pytest.mark.kiwi_only

START_TIMEOUT = 30.0
WRITES = 200


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """Debian's redis-server, the reference."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-appendfsync-redis-") as port:
        yield port


CONFIG_SESSION: list[tuple[str, ...]] = [
    ("CONFIG", "GET", "appendfsync"),
    ("CONFIG", "SET", "appendfsync", "always"),
    ("CONFIG", "GET", "appendfsync"),
    ("CONFIG", "SET", "appendfsync", "NO"),
    ("CONFIG", "GET", "append*"),
    ("CONFIG", "SET", "appendfsync", "sometimes"),
    ("CONFIG", "SET", "appendfsync", ""),
    ("CONFIG", "SET", "appendfsync", "1"),
    ("CONFIG", "SET", "appendfsync"),
    ("CONFIG", "SET", "appendfsync", "everysec", "hz", "nope"),
    ("CONFIG", "GET", "appendfsync"),
    ("CONFIG", "SET", "appendfsync", "EverySec"),
    ("CONFIG", "GET", "appendfsync"),
]


def test_config_appendfsync_answers_as_redis(kiwi_mod: ModuleType, redis_port: int) -> None:
    """Every reply byte for byte as Debian's redis-server (CONFIG GET append*
    only for appendfsync: Redis has more append* settings)."""
    with kiwi_mod.Server() as server:
        with RawConnection(HOST, server.port) as kiwi_conn, RawConnection(HOST, redis_port) as redis_conn:
            for command in CONFIG_SESSION:
                theirs, ours = redis_conn.call_raw(*command), kiwi_conn.call_raw(*command)
                if command[-1] == "append*":
                    assert b"$11\r\nappendfsync\r\n$2\r\nno\r\n" in theirs
                    assert b"$11\r\nappendfsync\r\n$2\r\nno\r\n" in ours
                    continue
                assert ours == theirs, f"{command}: Kiwi {ours!r}, Redis {theirs!r}"


@dataclass
class Started:
    """What CONFIG GET appendfsync answered (None: it did not start), how the
    process ended, and what it printed on stderr."""

    answer: str | None
    returncode: int
    stderr: str


def run_server(workdir: Path, *args: str, config: str | None = None) -> Started:
    """Start kiwi-server with ``args`` (and a config file), ask CONFIG GET
    appendfsync and stop it, or collect its output if it refuses to start."""
    (port,) = free_ports(1)
    command = server_command()
    if config is not None:
        path = workdir / "redis.conf"
        path.write_text(config)
        command.append(str(path))
    command += ["--port", str(port), "--dir", str(workdir / "data"), *args]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    r = redis.Redis(host=HOST, port=port, socket_timeout=IO_TIMEOUT, retry=no_retry(), decode_responses=True)
    try:

        def answered() -> str | bool:
            if proc.poll() is not None:
                return True  # exited
            try:
                return str(r.config_get("appendfsync")["appendfsync"])
            except redis.ConnectionError:
                return False

        answer = wait_until(answered, timeout=START_TIMEOUT, interval=0.02, message="kiwi-server answers or exits")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=START_TIMEOUT)
        return Started(answer if isinstance(answer, str) else None, proc.returncode, err)
    finally:
        r.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_appendfsync_from_the_command_line_and_redis_conf(tmp_path: Path, policy: str) -> None:
    assert run_server(tmp_path, "--appendfsync", policy).answer == policy
    assert run_server(tmp_path, config=f"appendfsync {policy}\n").answer == policy


def test_appendfsync_default_is_everysec_as_in_redis(tmp_path: Path) -> None:
    assert run_server(tmp_path).answer == "everysec"


def test_a_wrong_appendfsync_stops_the_start_with_redis_text(tmp_path: Path) -> None:
    done = run_server(tmp_path, "--appendfsync", "sometimes")
    assert (done.answer, done.returncode) == (None, 2)
    assert (
        "command line option '--appendfsync': 'appendfsync sometimes': "
        "argument(s) must be one of the following: everysec, always, no"
    ) in done.stderr
    done = run_server(tmp_path, config="appendfsync\n")
    assert (done.answer, done.returncode) == (None, 2)
    assert "redis.conf:1 'appendfsync'" in done.stderr


# -- what each policy does, traced --------------------------------------------------


class Traced:
    """A kiwi-server process under ``strace -f -e trace=fsync,fdatasync``."""

    def __init__(self, workdir: Path, policy: str) -> None:
        (self.port,) = free_ports(1)
        self.trace = workdir / "trace"
        command = server_command() + ["--port", str(self.port), "--dir", str(workdir / "data")]
        command += ["--appendfsync", policy]
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(self.trace), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(host=HOST, port=self.port, socket_timeout=IO_TIMEOUT, retry=no_retry())

        def up() -> bool:
            assert self.proc.poll() is None, "kiwi-server under strace exited"
            try:
                return bool(self.client.ping())
            except redis.ConnectionError:
                return False

        wait_until(up, timeout=START_TIMEOUT, interval=0.05, message="kiwi-server under strace answers")

    def syncs(self) -> int:
        """fsync/fdatasync calls so far (strace writes each line at once)."""
        text = self.trace.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if ("fdatasync(" in line or "fsync(" in line) and "= 0" in line)

    def write(self, n: int) -> None:
        for i in range(n):
            assert self.client.set(f"k{i}", "v") is True

    def close(self) -> None:
        """SIGTERM to kiwi-server (strace's child), then wait for both."""
        self.client.close()
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(pid) for pid in f.read().split()]
        except OSError:
            children = []
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_traced() -> Iterator[Callable[[str], Traced]]:
    """Start kiwi-server processes under strace; all stopped and their
    directories removed afterwards."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (apt-get install strace)")
    workdir = Path(tempfile.mkdtemp(prefix="kiwi-fsync-"))
    started: list[Traced] = []

    def start(policy: str) -> Traced:
        path = workdir / str(len(started))
        path.mkdir()
        t = Traced(path, policy)
        started.append(t)
        return t

    try:
        yield start
    finally:
        for t in started:
            t.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_always_syncs_before_every_reply(start_traced: Callable[[str], Traced]) -> None:
    t = start_traced("always")
    before = t.syncs()
    t.write(WRITES)
    assert t.syncs() - before >= WRITES


def test_no_never_syncs_while_writing(start_traced: Callable[[str], Traced]) -> None:
    t = start_traced("no")
    before = t.syncs()
    t.write(WRITES)
    after_writes = t.syncs()
    assert after_writes - before <= 2, "appendfsync no synced the WAL while writing"
    # And no second-by-second sync either: a write of everysec's would show
    # within about a second (the everysec test waits for that).
    t.client.set("one-more", "v")
    with pytest.raises(AssertionError):
        wait_until(lambda: t.syncs() > after_writes, timeout=2.5, interval=0.1)


def test_everysec_syncs_once_a_second_not_per_write(start_traced: Callable[[str], Traced]) -> None:
    t = start_traced("everysec")
    before = t.syncs()
    t.write(WRITES)
    during = t.syncs() - before
    assert during < WRITES // 4, f"{during} syncs for {WRITES} writes"
    after_writes = t.syncs()
    wait_until(lambda: t.syncs() > after_writes, timeout=3, interval=0.05, message="the once-a-second sync")


def test_config_set_changes_the_policy_of_a_running_server(start_traced: Callable[[str], Traced]) -> None:
    t = start_traced("no")
    t.write(20)
    assert t.client.config_set("appendfsync", "always") is True
    before = t.syncs()
    t.write(WRITES)
    assert t.syncs() - before >= WRITES


def fsync_threads() -> int:
    """Threads of this process named kiwi-fsync."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                count += f.read().strip() == "kiwi-fsync"
        except OSError:
            pass  # the thread ended meanwhile
    return count


def test_the_sync_thread_stops_with_the_server(kiwi_mod: ModuleType) -> None:
    baseline = fsync_threads()
    for _ in range(20):
        with kiwi_mod.Server() as server:
            # A new thread takes its name once it runs.
            wait_until(lambda: fsync_threads() == baseline + 1, message="one kiwi-fsync thread")
            client = server.client()
            try:
                assert client.set("k", "v") is True
            finally:
                client.close()
        assert fsync_threads() == baseline, "the kiwi-fsync thread outlived its server"
