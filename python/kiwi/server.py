"""An in-process Kiwi server for tests, notebooks and scripts."""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Union

from kiwi import _html, _kiwi
from kiwi._resource import Resource

if TYPE_CHECKING:
    import redis
    import redis.asyncio

PathLike = Union[str, "os.PathLike[str]"]


class Server(Resource):
    """A Kiwi server running on background threads of this process.

    It speaks RESP2 and RESP3 on ``host:port`` and keeps its data in RocksDB
    under ``dir``. Without ``port`` a free port is picked; without ``dir`` a
    temporary directory is used and removed when the server stops.

    Example::

        >>> import kiwi
        >>> with kiwi.Server() as server:
        ...     client = server.client(decode_responses=True)
        ...     client.mset({"a": "1", "b": "2"})
        ...     client.mget("a", "b")
        True
        ['1', '2']

    In asyncio code, ``async with`` starts and stops it on a worker thread
    and :meth:`client_async` gives a ``redis.asyncio.Redis``::

        >>> import asyncio, kiwi
        >>> async def main() -> bytes:
        ...     async with kiwi.Server() as server:
        ...         client = server.client_async()
        ...         await client.set("k", "v")
        ...         value = await client.get("k")
        ...         await client.aclose()
        ...         return value
        >>> asyncio.run(main())
        b'v'
    """

    def __init__(
        self,
        port: Optional[int] = None,
        dir: Optional[PathLike] = None,
        host: str = "127.0.0.1",
        requirepass: Optional[str] = None,
    ) -> None:
        self._requested_port = port or 0
        self._requested_dir = os.fspath(dir) if dir is not None else None
        self._host = host
        self._requirepass = requirepass
        self._handle: Optional[_kiwi.ServerHandle] = None
        self._dir: Optional[str] = self._requested_dir

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Server:
        """Start serving (idempotent). Returns the server itself."""
        if self._handle is not None:
            return self
        if self._requested_dir is None:
            self._dir = self._make_tempdir("kiwi-")
        assert self._dir is not None
        try:
            self._handle = _kiwi.start_server(
                self._dir, host=self._host, port=self._requested_port, requirepass=self._requirepass
            )
        except BaseException:
            self._remove_tempdir()
            raise
        return self

    def stop(self) -> None:
        """Stop the server, close its connections and release its directory."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.stop()
        self._remove_tempdir()

    def _open(self) -> Server:
        return self.start()

    def _release(self) -> None:
        self.stop()

    async def __aenter__(self) -> Server:
        """Start the server on a worker thread, keeping the event loop free."""
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Stop the server on a worker thread, keeping the event loop free."""
        await asyncio.to_thread(self.stop)

    # -- facts -------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is serving now."""
        return self._handle is not None and self._handle.running

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The TCP port the server listens on (after :meth:`start`)."""
        if self._handle is None:
            raise RuntimeError("the server is not running")
        return int(self._handle.port)

    @property
    def dir(self) -> str:
        """The data directory."""
        if self._dir is None:
            raise RuntimeError("the server has not been started")
        return self._dir

    @property
    def url(self) -> str:
        """A ``redis://`` URL for this server."""
        return f"redis://{self.host}:{self.port}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` client connected to this server.

        Keyword arguments go to ``redis.Redis`` (``protocol=3``,
        ``decode_responses=True``, ``password=...``).
        """
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def client_async(self, **kwargs: Any) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` client for this server (connects lazily).

        Keyword arguments go to ``redis.asyncio.Redis``; close it with
        ``await client.aclose()``.

        Example::

            >>> import asyncio, kiwi
            >>> async def main() -> int:
            ...     async with kiwi.Server() as server:
            ...         client = server.client_async(decode_responses=True)
            ...         try:
            ...             return await client.incr("n")
            ...         finally:
            ...             await client.aclose()
            >>> asyncio.run(main())
            1
        """
        import redis.asyncio

        return redis.asyncio.Redis(host=self.host, port=self.port, **kwargs)

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<kiwi.Server stopped dir={self._dir!r}>"
        return f"<kiwi.Server {self.host}:{self.port} dir={self._dir!r}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: address, data dir, state, keys per db, clients, uptime.

        The figures come from the server's INFO (a short-lived connection).

        Example::

            >>> import kiwi
            >>> with kiwi.Server() as server:
            ...     ">running</td>" in server._repr_html_()
            True
        """
        if self._handle is None or not self._handle.running:
            rows: list[_html.Row] = [("address", "-"), ("data dir", self._dir or "-"), ("state", "stopped")]
            return _html.table("kiwi.Server", rows)
        rows = [("address", f"{self.host}:{self.port}"), ("data dir", self.dir), ("state", "running")]
        try:
            client = self.client(password=self._requirepass, socket_timeout=5, socket_connect_timeout=5)
            try:
                info = client.info("all")
            finally:
                client.close()
        except Exception as e:  # a status view must render, whatever went wrong
            rows.append(("status", f"unavailable: {e}"))
            return _html.table("kiwi.Server", rows)
        rows.extend(_html.keyspace_rows(info))
        rows.append(("connected clients", info.get("connected_clients", "?")))
        uptime = info.get("uptime_in_seconds")
        rows.append(("uptime", _html.duration(uptime) if isinstance(uptime, int) else "?"))
        return _html.table("kiwi.Server", rows)
