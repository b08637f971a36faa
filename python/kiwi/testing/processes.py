"""Real ``kiwi-server`` processes as targets: :class:`ProcessCluster` (one
process per Raft node) and :class:`ServerProcess` (one process: start,
``kill -9``, ``SIGSTOP``/``SIGCONT``, stop).

Every process started here is killed when its target closes, when the
target is garbage-collected, and at interpreter exit, whichever comes first.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, Optional, Union

import redis

from kiwi.testing.ports import free_ports
from kiwi.testing.raft import _RaftTarget
from kiwi.testing.targets import log, no_retry

#: Every server process started and not yet reaped, killed at interpreter exit.
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


#: How long :meth:`ProcessCluster.stop` waits for a clean exit before ``SIGKILL``
#: (a leader spends up to 5 s handing leadership over).
STOP_GRACE = 15.0


def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for proc in leftovers:
        proc.kill()


atexit.register(_kill_leftovers)


def server_command(binary: Union[str, Sequence[str], None] = None) -> list[str]:
    """The command that runs ``kiwi-server``: ``binary`` if given (a path or an
    argument list), else the ``kiwi-server`` script beside this Python, else
    ``python -m kiwi``.

    Example::

        >>> server_command("/opt/kiwi-server")
        ['/opt/kiwi-server']
    """
    if isinstance(binary, str):
        return [binary]
    if binary is not None:
        return list(binary)
    script = os.path.join(os.path.dirname(sys.executable), "kiwi-server")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "kiwi"]


class ServerProcess:
    """One ``kiwi-server`` process: start, kill -9, stop/continue, stop.

    Its output goes to ``log_path`` (appended across restarts).

    Example::

        >>> import os, tempfile
        >>> from kiwi.testing.processes import ServerProcess, server_command
        >>> from kiwi.testing.targets import free_ports
        >>> with tempfile.TemporaryDirectory() as d:
        ...     (port,) = free_ports(1)
        ...     args = ["--port", str(port), "--dir", d + "/data"]
        ...     proc = ServerProcess(server_command(), args, os.path.join(d, "log"))
        ...     proc.start()
        ...     proc.wait_ready("127.0.0.1", port, timeout=30)
        ...     proc.kill()
        ...     proc.running, proc.popen.returncode
        (False, -9)
    """

    def __init__(self, command: list[str], args: list[str], log_path: str) -> None:
        self.command = command
        self.args = args
        self.log_path = log_path
        self.popen: Optional[subprocess.Popen[bytes]] = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.popen.pid if self.running and self.popen is not None else None

    def start(self, extra: Sequence[str] = ()) -> None:
        with open(self.log_path, "ab") as out:
            out.write(f"== {time.strftime('%H:%M:%S')} start {' '.join(self.args + list(extra))}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.command + self.args + list(extra),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.paused = False
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL and reap (a paused process dies too)."""
        if self.popen is None:
            return
        self._signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not kill it
            log.error("process %d survived SIGKILL for 30 s", self.popen.pid)
        self.paused = False
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def stop(self, grace: float) -> None:
        """SIGTERM (after SIGCONT if paused), SIGKILL after ``grace`` seconds."""
        if self.popen is None:
            return
        if self.paused:
            self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def _state(self) -> str:
        """The process state letter from /proc ('T' = stopped), '' if unknown."""
        if self.popen is None:
            return ""
        try:
            with open(f"/proc/{self.popen.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return ""

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True
        # SIGSTOP takes effect asynchronously: wait (bounded) until /proc says so.
        deadline = time.monotonic() + 5
        while self._state() not in ("T", "t", "") and time.monotonic() < deadline:
            time.sleep(0.005)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, host: str, port: int, timeout: float) -> None:
        """Wait until it answers PING; ``RuntimeError`` with its log if it exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                code = self.popen.returncode if self.popen is not None else None
                raise RuntimeError(f"kiwi-server exited with {code}; its log ({self.log_path}):\n{self.log_tail()}")
            r = redis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1, retry=no_retry())
            try:
                if r.ping():
                    return
            except redis.RedisError:
                pass
            finally:
                r.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"kiwi-server on port {port} did not answer within {timeout:.0f}s; its log:\n{self.log_tail()}"
                )
            time.sleep(0.02)


def write_node_config(path: str, raft_secret: str) -> None:
    """Write the redis.conf-style file a cluster node starts with: the shared
    ``raft-secret`` (kept out of the command line, which other local users
    see) and ``enable-fault-injection yes``; readable by its owner only.

    Example::

        >>> import os, pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_node_config(os.path.join(d, "kiwi.conf"), "s3cret")
        ...     pathlib.Path(d, "kiwi.conf").read_text().splitlines()[-2:]
        ...     oct(os.stat(os.path.join(d, "kiwi.conf")).st_mode & 0o777)
        ['raft-secret "s3cret"', 'enable-fault-injection yes']
        '0o600'
    """
    quoted = '"' + raft_secret.replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = [
        "# Written by kiwi.testing.ProcessCluster: the secret the nodes share on",
        "# their Raft ports, and RAFT.FAULT switched on (faults are injected with it).",
    ]
    if raft_secret:
        lines.append(f"raft-secret {quoted}")
    lines.append("enable-fault-injection yes")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


def cleanup(procs: list[ServerProcess], tempdir: Optional[str]) -> None:
    for proc in procs:
        proc.kill()
    if tempdir is not None:
        shutil.rmtree(tempdir, ignore_errors=True)


class ProcessCluster(_RaftTarget):
    """``nodes`` real ``kiwi-server`` processes forming one Raft cluster on loopback.

    Node ``i`` (Raft id ``i + 1``) has its own directory ``<dir>/node<id>``
    holding its data (``data/``) and its output (``server.log``), its own
    RESP and Raft ports (kept across restarts) and the flags ``--node-id``,
    ``--raft-addr`` and ``--raft-peer`` for every other node; node 0 also
    gets ``--raft-init``. :meth:`kill` is ``kill -9``, :meth:`restart` runs
    the same command without ``--raft-init``, :meth:`pause`/:meth:`resume`
    are ``SIGSTOP``/``SIGCONT``; links are cut with ``RAFT.FAULT BLOCK``.
    Each node also reads ``<dir>/node<id>/kiwi.conf`` (see
    :func:`write_node_config`): the nodes share :attr:`raft_secret` (random
    unless given) and have fault injection switched on.

    :meth:`close` (also on ``with`` exit, garbage collection and interpreter
    exit) kills every process left and removes the directory if it was a
    temporary one. ``binary`` is the server command (see :func:`server_command`).

    Example::

        >>> from kiwi.testing.processes import ProcessCluster
        >>> with ProcessCluster(3, raft_timeout_ms=1000) as target:
        ...     target.client(target.leader()).set("k", "v")
        ...     target.pause(0)
        ...     target.resume(0)
        ...     target.wait_settled(timeout=30)
        ...     target.client(0).get("k")
        True
        b'v'
    """

    def __init__(
        self,
        nodes: int = 3,
        dir: Optional[str] = None,
        raft_timeout_ms: int = 2000,
        binary: Union[str, Sequence[str], None] = None,
        start_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        raft_secret: Optional[str] = None,
    ) -> None:
        super().__init__(nodes)
        #: The secret the nodes share on their Raft ports (``""``: none).
        self.raft_secret = raft_secret if raft_secret is not None else secrets.token_hex(32)
        self._requested_dir = os.fspath(dir) if dir is not None else None
        self.raft_timeout_ms = raft_timeout_ms
        self._command = server_command(binary)
        self._start_timeout = start_timeout
        self._extra_args = list(extra_args)
        self._procs: list[ServerProcess] = []
        self._ports: list[int] = []
        self._raft_ports: list[int] = []
        self._base: Optional[str] = None
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None

    def start(self) -> ProcessCluster:
        if self._procs:
            return self
        tempdir = None
        if self._requested_dir is None:
            tempdir = tempfile.mkdtemp(prefix="kiwi-processes-")
            self._base = tempdir
        else:
            self._base = self._requested_dir
        ports = free_ports(2 * self.nodes, self.host)
        self._ports, self._raft_ports = ports[: self.nodes], ports[self.nodes :]
        procs: list[ServerProcess] = []
        self._finalizer = weakref.finalize(self, cleanup, procs, tempdir)
        try:
            for i in range(self.nodes):
                node_dir = self.dir(i)
                os.makedirs(node_dir, exist_ok=True)
                peers = [f"{j + 1}={self.raft_address(j)}" for j in range(self.nodes) if j != i]
                config = os.path.join(node_dir, "kiwi.conf")
                write_node_config(config, self.raft_secret)
                args = [
                    config,
                    "--port", str(self._ports[i]),
                    "--bind", self.host,
                    "--dir", os.path.join(node_dir, "data"),
                    "--node-id", str(i + 1),
                    "--raft-addr", self.raft_address(i),
                    "--raft-timeout-ms", str(self.raft_timeout_ms),
                    "--logfile", os.path.join(node_dir, "server.log"),
                ] + (["--raft-peer", *peers] if peers else []) + self._extra_args  # fmt: skip
                procs.append(ServerProcess(self._command, args, os.path.join(node_dir, "server.log")))
            self._procs = procs
            for i, proc in enumerate(procs):
                proc.start(["--raft-init"] if i == 0 else [])
            for i, proc in enumerate(procs):
                proc.wait_ready(self.host, self._ports[i], self._start_timeout)
            self._wait_for_leader(self._start_timeout)
            self._detect_clock()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a few seconds) and
        remove the temporary directory."""
        procs, self._procs = self._procs, []
        deadline = time.monotonic() + 5
        for proc in procs:
            if proc.running and not proc.paused:
                proc._signal(signal.SIGTERM)
        for proc in procs:
            proc.stop(max(0.0, deadline - time.monotonic()))
        if self._finalizer is not None:
            self._finalizer()  # removes the temporary directory
            self._finalizer = None
        self._paused.clear()
        self._dirty.clear()

    def _quorum_timeout(self) -> float:
        return self.raft_timeout_ms / 1000.0

    # -- per node ----------------------------------------------------------

    def _proc(self, node: int) -> ServerProcess:
        self._check(node)
        if not self._procs:
            raise RuntimeError("the target is not started")
        return self._procs[node]

    def _running(self, node: int) -> bool:
        return bool(self._procs) and self._procs[node].running

    def port(self, node: int) -> int:
        self._check(node)
        if not self._ports:
            raise RuntimeError("the target is not started")
        return self._ports[node]

    def raft_address(self, node: int) -> str:
        self._check(node)
        if not self._raft_ports:
            raise RuntimeError("the target is not started")
        return f"{self.host}:{self._raft_ports[node]}"

    def dir(self, node: int) -> str:
        """Node ``node``'s directory (data in ``data/``, output in ``server.log``)."""
        self._check(node)
        if self._base is None:
            raise RuntimeError("the target is not started")
        return os.path.join(self._base, f"node{node + 1}")

    def log_path(self, node: int) -> str:
        """The file node ``node``'s output goes to."""
        return os.path.join(self.dir(node), "server.log")

    def pid(self, node: int) -> Optional[int]:
        """Node ``node``'s process id, ``None`` when killed."""
        return self._proc(node).pid

    def _kill(self, node: int) -> None:
        self._proc(node).kill()

    def _restart(self, node: int) -> None:
        proc = self._proc(node)
        proc.start()
        proc.wait_ready(self.host, self._ports[node], self._start_timeout)

    def pause(self, node: int) -> None:
        """``SIGSTOP`` node ``node`` (returns once it is stopped)."""
        with self._lock:
            proc = self._proc(node)
            if not proc.running:
                raise RuntimeError(f"node {node} is not running")
            proc.pause()
            self._paused.add(node)

    def resume(self, node: int) -> None:
        """``SIGCONT`` node ``node`` and push the faults it missed while paused."""
        with self._lock:
            proc = self._proc(node)
            proc.resume()
            self._paused.discard(node)
            if node in self._dirty:
                self._sync(node)

    def stop(self, node: int) -> None:
        """``SIGTERM`` node ``node`` and wait for it to exit (``SIGKILL`` after
        :data:`STOP_GRACE` seconds): a leader hands leadership over first."""
        self._check(node)
        with self._lock:
            proc = self._proc(node)
            proc.stop(STOP_GRACE)
            self._paused.discard(node)
            self._dirty.discard(node)

    @property
    def capabilities(self) -> frozenset[str]:
        return super().capabilities | {"pause", "stop"}

    def __repr__(self) -> str:
        if not self._procs:
            return f"<kiwi.testing.ProcessCluster nodes={self.nodes} stopped>"
        return f"<kiwi.testing.ProcessCluster nodes={self.nodes} dir={self._base!r}>"
