"""One Kiwi server without Raft as a target: :class:`Standalone`."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from typing import Any, Optional, Union

import redis

from kiwi.testing.ports import free_ports
from kiwi.testing.targets import CLIENT_TIMEOUT, Target, UnsupportedFault, no_retry


class Standalone(Target):
    """One Kiwi server without Raft: a :class:`kiwi.Server` in this process, or
    (``process=True``) one ``kiwi-server`` process.

    It is node 0 and always its own leader. Killing and restarting keep its
    directory and port; a process can also be paused. Cluster faults
    (partitions, clocks, membership) raise :class:`UnsupportedFault`.

    Example::

        >>> from kiwi.testing.targets import Standalone, UnsupportedFault
        >>> with Standalone() as target:
        ...     try:
        ...         target.partition([0])
        ...     except UnsupportedFault as e:
        ...         print(e)
        Standalone cannot partition its network: it has one node (use make('cluster') or make('processes'))
    """

    nodes = 1
    host = "127.0.0.1"

    def __init__(
        self,
        process: bool = False,
        dir: Optional[str] = None,
        binary: Union[str, Sequence[str], None] = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.process = process
        self._requested_dir = os.fspath(dir) if dir is not None else None
        self._binary = binary
        self._start_timeout = start_timeout
        self._dir: Optional[str] = None
        self._tempdir: Optional[str] = None
        self._port: Optional[int] = None
        self._server: Any = None
        self._proc: Any = None
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"kill", "pause"} if self.process else {"kill"})

    def _unsupported(self, what: str) -> UnsupportedFault:
        return UnsupportedFault(f"Standalone cannot {what}: it has one node (use make('cluster') or make('processes'))")

    def start(self) -> Standalone:
        if self._port is not None:
            return self
        if self._requested_dir is None:
            self._tempdir = tempfile.mkdtemp(prefix="kiwi-standalone-")
        self._dir = self._requested_dir or self._tempdir
        assert self._dir is not None
        self._port = free_ports(1, self.host)[0]
        try:
            if self.process:
                os.makedirs(self._dir, exist_ok=True)
                log_path = os.path.join(self._dir, "server.log")
                args = ["--port", str(self._port), "--bind", self.host, "--dir", os.path.join(self._dir, "data")]
                args += ["--logfile", log_path]
                from kiwi.testing.processes import ServerProcess, cleanup, server_command

                self._proc = ServerProcess(server_command(self._binary), args, log_path)
                self._finalizer = weakref.finalize(self, cleanup, [self._proc], self._tempdir)
            self._start_server()
        except BaseException:
            self.close()
            raise
        return self

    def _start_server(self) -> None:
        if self._proc is not None:
            assert self._port is not None
            self._proc.start()
            self._proc.wait_ready(self.host, self._port, self._start_timeout)
        else:
            import kiwi

            self._server = kiwi.Server(port=self._port, dir=os.path.join(str(self._dir), "data")).start()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stop(5.0)
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        elif self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
        self._tempdir = None
        self._port = None

    def _check(self, node: int) -> None:
        if node != 0:
            raise ValueError(f"a standalone target has only node 0, not {node!r}")

    @property
    def port(self) -> int:
        """The server's RESP port (the same across restarts)."""
        if self._port is None:
            raise RuntimeError("the target is not started")
        return self._port

    def running(self, node: int = 0) -> bool:
        """Whether the server runs (paused counts as running)."""
        self._check(node)
        if self._proc is not None:
            return bool(self._proc.running)
        return self._server is not None

    def client(self, node: int = 0, **kw: Any) -> redis.Redis:
        self._check(node)
        options: dict[str, Any] = {
            "socket_timeout": CLIENT_TIMEOUT,
            "socket_connect_timeout": CLIENT_TIMEOUT,
            "retry": no_retry(),
        }
        options.update(kw)
        return redis.Redis(host=self.host, port=self.port, **options)

    def paused(self, node: int = 0) -> bool:
        """Whether the server process is paused."""
        self._check(node)
        return self._proc is not None and bool(self._proc.paused)

    def leader(self) -> Optional[int]:
        """0 while the server runs unpaused, else ``None``."""
        return 0 if self.running() and not self.paused() else None

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Wait until the server answers PING."""
        deadline = time.monotonic() + timeout
        while True:
            if self.leader() == 0:
                r = self.client(0, socket_timeout=1, socket_connect_timeout=1)
                try:
                    if r.ping():
                        return
                except redis.RedisError:
                    pass
                finally:
                    r.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the standalone server did not answer within {timeout:.1f}s")
            time.sleep(0.05)

    def kill(self, node: int = 0) -> None:
        """``kill -9`` the process; in-process, stop the server (its data stays)."""
        self._check(node)
        if self._proc is not None:
            self._proc.kill()
        elif self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self, node: int = 0) -> None:
        self._check(node)
        if self.running():
            raise RuntimeError("the server is running; kill it first")
        self._start_server()

    def pause(self, node: int = 0) -> None:
        self._check(node)
        if self._proc is None:
            raise UnsupportedFault("an in-process server cannot be paused; use Standalone(process=True)")
        self._proc.pause()

    def resume(self, node: int = 0) -> None:
        self._check(node)
        if self._proc is None:
            raise UnsupportedFault("an in-process server cannot be paused; use Standalone(process=True)")
        self._proc.resume()

    def heal(self) -> None:
        """Nothing to restore: a single server has no links."""

    def __repr__(self) -> str:
        kind = "process" if self.process else "in-process"
        return f"<kiwi.testing.Standalone {kind} port={self._port}>"
