"""The embedded engine: Kiwi's storage and commands in this process, no network.

``kiwi.open()`` returns a :class:`Database`, which *is* a ``redis.Redis``:
every redis-py method (``get``, ``set(..., ex=)``, ``mset``, ``lpush``,
``hset``, ``zadd``, pipelines, transactions, ...) works with redis-py's own
signatures and reply types. Underneath, redis-py's connections write their
requests into the engine through an in-memory socket instead of TCP.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from types import TracebackType
from typing import Any, Optional, Union

import redis
from redis.connection import Connection

from kiwi import _kiwi

PathLike = Union[str, "os.PathLike[str]"]


class _EngineSocket:
    """The socket-shaped end of one engine session, as redis-py uses a socket."""

    def __init__(self, session: _kiwi.EmbeddedConnection) -> None:
        self._session = session

    def sendall(self, data: Any) -> None:
        self._session.send(bytes(data))

    def recv(self, size: int) -> bytes:
        chunk = self._session.recv(size)
        if chunk is None:
            # Replies are produced synchronously by sendall: nothing pending
            # means nothing is coming (redis-py reads this as a timeout).
            raise socket.timeout("no reply pending")
        return chunk

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        view = memoryview(buffer)
        size = nbytes or len(view)
        chunk = self.recv(size)
        view[: len(chunk)] = chunk
        return len(chunk)

    def settimeout(self, timeout: Optional[float]) -> None:
        pass

    def gettimeout(self) -> Optional[float]:
        return None

    def setsockopt(self, *args: Any) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        self._session.close()


class EmbeddedConnection(Connection):
    """A redis-py connection to an in-process Kiwi engine."""

    def __init__(self, engine: _kiwi.EmbeddedEngine, **kwargs: Any) -> None:
        self._engine = engine
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        super().__init__(**kwargs)

    def _connect(self) -> _EngineSocket:
        return _EngineSocket(self._engine.connect())

    def _host_error(self) -> str:
        return f"kiwi embedded database at {self._engine.path}"

    def repr_pieces(self) -> list:
        return [("path", self._engine.path), ("db", self.db)]


class Database(redis.Redis):
    """An embedded Kiwi database: a ``redis.Redis`` with no server behind it.

    Open it with :func:`kiwi.open`. It is safe to use from many threads
    (each gets a connection from the pool; the engine releases the GIL while
    it works). The data directory can later be served by ``kiwi-server
    --dir`` and vice versa, one process at a time.

    Example::

        >>> import kiwi
        >>> with kiwi.open() as db:
        ...     db.execute("MSET", "a", 1, "b", 2)
        ...     db.mget("a", "b")
        ...     db.incr("a")
        True
        [b'1', b'2']
        2
    """

    def __init__(self, path: Optional[PathLike] = None, **kwargs: Any) -> None:
        self._tempdir: Optional[str] = None
        if path is None:
            self._tempdir = tempfile.mkdtemp(prefix="kiwi-")
            path = self._tempdir
        self._path = os.fspath(path)
        try:
            self._engine = _kiwi.EmbeddedEngine(self._path)
        except BaseException:
            self._remove_tempdir()
            raise
        pool = redis.ConnectionPool(connection_class=EmbeddedConnection, engine=self._engine, **kwargs)
        super().__init__(connection_pool=pool)

    @property
    def path(self) -> str:
        """The data directory."""
        return self._path

    def execute(self, *args: Any, **options: Any) -> Any:
        """Run any command, e.g. ``db.execute("MSET", "a", 1, "b", 2)``.

        The reply is typed as redis-py types it; errors raise
        ``kiwi.ResponseError`` (``redis.exceptions.ResponseError``) with
        Redis's message.
        """
        return self.execute_command(*args, **options)

    def close(self) -> None:
        """Close the connections and the storage, releasing the directory."""
        try:
            super().close()
            self.connection_pool.disconnect()
        finally:
            self._engine.close()
            self._remove_tempdir()

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def __enter__(self) -> "Database":
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._engine.open else "closed"
        return f"<kiwi.Database {self._path!r} {state}>"


def open(path: Optional[PathLike] = None, **kwargs: Any) -> Database:  # noqa: A001 - mirrors the builtin on purpose
    """Open an embedded Kiwi database at ``path`` (a temporary one if None).

    Keyword arguments go to redis-py (``decode_responses=True``,
    ``protocol=2``...). A directory already open in another process raises
    ``RuntimeError``.

    Example::

        >>> import kiwi
        >>> db = kiwi.open()
        >>> db.set("k", "v", ex=60)
        True
        >>> db.get("k")
        b'v'
        >>> db.close()
    """
    return Database(path, **kwargs)
