"""The embedded engine: Kiwi's storage and commands in this process, no network.

``kiwi.open()`` returns a :class:`Database`, which *is* a ``redis.Redis``:
every redis-py method (``get``, ``set(..., ex=)``, ``mset``, ``lpush``,
``hset``, ``zadd``, pipelines, transactions, ...) works with redis-py's own
signatures and reply types. Underneath, redis-py's connections write their
requests into the engine through an in-memory socket instead of TCP.

``await db.aexecute(...)`` is the asyncio face: the command runs on tokio's
blocking pool inside the extension (the GIL and the event loop stay free) and
its RESP reply is parsed by the connection's own redis-py parser and the
client's response callbacks, exactly as ``db.execute(...)`` parses it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import socket
import weakref
from collections.abc import Iterable
from typing import Any, Optional, Union

import redis
import redis.asyncio
from redis.connection import Connection
from redis.exceptions import ResponseError

from kiwi import _html, _kiwi, bulk
from kiwi._resource import Resource

PathLike = Union[str, "os.PathLike[str]"]


class _EngineSocket:
    """The socket-shaped end of one engine session, as redis-py uses a socket."""

    def __init__(self, session: _kiwi.EmbeddedConnection) -> None:
        self._session = session
        # Reply bytes produced by execute_async, read before the session's own.
        self._fed = bytearray()
        # How long a read waits for a pub/sub message (None: until one comes).
        self._timeout: Optional[float] = None

    def sendall(self, data: Any) -> None:
        self._session.send(bytes(data))

    def execute_async(self, request: bytes) -> asyncio.Future[bytes]:
        """Hand ``request`` to the engine's blocking pool; resolves to the reply bytes."""
        return self._session.execute_async(request)

    def feed(self, replies: bytes) -> None:
        """Make reply bytes (from :meth:`execute_async`) readable, before the session's own."""
        self._fed += replies

    def recv(self, size: int) -> bytes:
        if self._fed:
            fed = bytes(self._fed[: max(1, size)])
            del self._fed[: len(fed)]
            return fed
        chunk = self._session.recv(size, self._timeout)
        if chunk is None:
            # Replies are produced synchronously by sendall: nothing pending
            # means nothing is coming (redis-py reads this as a timeout); a
            # subscribed session waited for a message up to the timeout.
            raise socket.timeout("no reply pending")
        return chunk

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        view = memoryview(buffer)
        size = nbytes or len(view)
        chunk = self.recv(size)
        view[: len(chunk)] = chunk
        return len(chunk)

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setsockopt(self, *args: Any) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        self._fed.clear()
        self._session.close()


def _release_after_engine(
    pool: redis.ConnectionPool, conn: Connection, slots: asyncio.Semaphore, in_engine: asyncio.Future[bytes]
) -> None:
    """Done-callback of a cancelled ``aexecute``: return its connection to the pool."""
    if in_engine.cancelled() or in_engine.exception() is not None:
        conn.disconnect()
    pool.release(conn)
    slots.release()


def _get_connection(pool: redis.ConnectionPool, command_name: str) -> Connection:
    """``pool.get_connection()``, across redis-py versions (5.0 needs the name)."""
    if _GET_CONNECTION_NEEDS_NAME:
        return pool.get_connection(command_name)
    return pool.get_connection()


_COMMAND_NAME_PARAM = inspect.signature(redis.ConnectionPool.get_connection).parameters.get("command_name")
_GET_CONNECTION_NEEDS_NAME = _COMMAND_NAME_PARAM is not None and _COMMAND_NAME_PARAM.default is inspect.Parameter.empty


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

    def repr_pieces(self) -> list[tuple[str, Any]]:
        return [("path", self._engine.path), ("db", self.db)]


class Database(Resource, redis.Redis):
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
        if path is None:
            path = self._make_tempdir("kiwi-")
        self._path = os.fspath(path)
        try:
            self._engine = _kiwi.EmbeddedEngine(self._path)
        except BaseException:
            self._remove_tempdir()
            raise
        pool = redis.ConnectionPool(connection_class=EmbeddedConnection, engine=self._engine, **kwargs)
        super().__init__(connection_pool=pool)
        self._client_kwargs = dict(kwargs)
        # Per event loop: how many aexecute calls may hold a pool connection.
        self._async_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

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

    def load(self, items: bulk.Pairs, *, batch: int = 1000, progress: Optional[bool] = None) -> int:
        """Set many key/value pairs, ``batch`` per round trip; return how many.

        ``items`` is a mapping or an iterable of ``(key, value)`` pairs (a
        generator is read lazily). ``progress``: ``None`` shows progress on a
        terminal or in Jupyter, ``True``/``False`` force it. This is
        :func:`kiwi.bulk.load` on this database, which says the rest.

        Example::

            >>> import kiwi
            >>> with kiwi.open() as db:
            ...     db.load(((f"item:{i}", i * i) for i in range(5000)), progress=False)
            ...     db.get("item:4999"), db.dbsize()
            5000
            (b'24990001', 5000)
        """
        return bulk.load(self, items, batch=batch, progress=progress)

    def execute_many(
        self, commands: Iterable[bulk.Command], *, batch: int = 1000, progress: Optional[bool] = None
    ) -> int:
        """Run many commands, ``batch`` per round trip; return how many ran.

        Each command is a tuple like ``("HSET", "h", "f", "v")``. The first
        error reply raises (``kiwi.ResponseError``, with the failing command's
        position). This is :func:`kiwi.bulk.execute` on this database, which
        says the rest.

        Example::

            >>> import kiwi
            >>> with kiwi.open(decode_responses=True) as db:
            ...     db.execute_many([("HSET", "user:1", "name", "ada"), ("SADD", "users", 1)], progress=False)
            ...     db.hgetall("user:1"), db.smembers("users")
            2
            ({'name': 'ada'}, {'1'})
        """
        return bulk.execute(self, commands, batch=batch, progress=progress)

    async def aexecute(self, *args: Any, **options: Any) -> Any:
        """Run any command without blocking the asyncio event loop.

        Returns exactly what :meth:`execute` returns for the same arguments
        (redis-py's parser and response callbacks type the reply) and raises
        the same exceptions, e.g. ``kiwi.ResponseError`` with Redis's text.
        The command runs on a tokio blocking thread with the GIL released;
        concurrent calls use separate connections from the pool and run in
        parallel, at most the pool's ``max_connections`` at a time (redis-py's
        default is 100; further calls wait for a free connection instead of
        raising ``MaxConnectionsError``). Cancelling the awaiting task does not
        take back a command already handed to the engine: it runs to the end,
        its reply is dropped and its connection then returns to the pool.

        Example::

            >>> import asyncio, kiwi
            >>> async def main() -> list:
            ...     with kiwi.open() as db:
            ...         await db.aexecute("SET", "k", "v")
            ...         return await asyncio.gather(*(db.aexecute("INCR", "n") for _ in range(3)))
            >>> sorted(asyncio.run(main()))
            [1, 2, 3]
        """
        if not args:
            raise TypeError("aexecute() needs a command name")
        slots = self._async_slot()
        await slots.acquire()
        pool = self.connection_pool
        command_name = args[0]
        try:
            conn = _get_connection(pool, command_name)
        except BaseException:
            slots.release()
            raise
        finish_later = False
        try:
            sock: object = conn._sock  # checked below: a pool may hand out any connection
            if not isinstance(sock, _EngineSocket):
                raise redis.ConnectionError(f"not an embedded Kiwi connection: {conn!r}")
            in_engine = sock.execute_async(b"".join(conn.pack_command(*args)))
            try:
                replies = await asyncio.shield(in_engine)
            except asyncio.CancelledError:
                if not in_engine.done():
                    # The engine finishes the command; the connection is
                    # released once it has (its session is clean then).
                    finish_later = True
                    in_engine.add_done_callback(functools.partial(_release_after_engine, pool, conn, slots))
                raise
            sock.feed(replies)
            return self.parse_response(conn, command_name, **options)
        except ResponseError:
            # A Redis error reply: the connection is in a clean state, as in execute().
            raise
        except BaseException:
            # Failed half way: don't hand a session with a reply possibly
            # in flight to the next user.
            if not finish_later:
                conn.disconnect()
            raise
        finally:
            if not finish_later:
                pool.release(conn)
                slots.release()

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` on this database holding one connection of its
        own, as redis-py's ``Redis.client()`` gives: for commands whose state
        lives in the connection (``SELECT``, ``CLIENT SETNAME``, ``WATCH``).
        Keyword arguments are those :func:`kiwi.open` got, updated by these.

        Example::

            >>> import kiwi
            >>> with kiwi.open(decode_responses=True) as db:
            ...     one = db.client()
            ...     one.select(2)
            ...     one.set("k", "in db 2")
            ...     db.get("k"), one.get("k")
            ...     one.close()
            True
            True
            (None, 'in db 2')
        """
        # A pool of its own: what its connection selects never leaks into
        # the database's shared pool; closing the client ends its session.
        options = {**self._client_kwargs, **kwargs}
        pool = redis.ConnectionPool(connection_class=EmbeddedConnection, engine=self._engine, **options)
        client = redis.Redis(connection_pool=pool, single_connection_client=True)
        client.auto_close_connection_pool = True
        return client

    def client_async(self, **kwargs: Any) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` on this database (no network).

        Everything redis.asyncio does works on it: pipelines, transactions,
        ``PubSub`` (messages wake the awaiting task), ``Lock``, scripts, RESP3
        pushes. Keyword arguments are those :func:`kiwi.open` got, updated by
        these (``decode_responses=True``, ``protocol=3``...). Close it with
        ``await client.aclose()`` before closing the database.

        Example::

            >>> import asyncio, kiwi
            >>> async def main() -> tuple:
            ...     with kiwi.open(decode_responses=True) as db:
            ...         client = db.client_async()
            ...         try:
            ...             async with client.pubsub() as p:
            ...                 await p.subscribe("news")
            ...                 await client.publish("news", "hello")
            ...                 confirmation = await p.get_message(timeout=5)
            ...                 message = await p.get_message(timeout=5)
            ...             return confirmation["type"], message["data"], await client.incr("n")
            ...         finally:
            ...             await client.aclose()
            >>> asyncio.run(main())
            ('subscribe', 'hello', 1)
        """
        import redis.asyncio

        from kiwi._embedded_async import AsyncEmbeddedConnection

        options = {**self._client_kwargs, **kwargs}
        pool = redis.asyncio.ConnectionPool(connection_class=AsyncEmbeddedConnection, engine=self._engine, **options)
        return redis.asyncio.Redis.from_pool(pool)

    def _async_slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._async_slots.get(loop)
        if slots is None:
            slots = asyncio.Semaphore(max(1, int(self.connection_pool.max_connections)))
            self._async_slots[loop] = slots
        return slots

    def close(self) -> None:
        """Close the connections and the storage, releasing the directory."""
        try:
            super().close()
            self.connection_pool.disconnect()
        finally:
            self._engine.close()
            self._remove_tempdir()

    def _release(self) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._engine.open else "closed"
        return f"<kiwi.Database {self._path!r} {state}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: a table of the path, open/closed and keys per database.

        Example::

            >>> import kiwi
            >>> with kiwi.open() as db:
            ...     db.set("k", "v")
            ...     "1 (0 with expiry)" in db._repr_html_()
            True
            True
        """
        rows: list[_html.Row] = [("path", self._path)]
        if not self._engine.open:
            rows.append(("state", "closed"))
            return _html.table("kiwi.Database", rows)
        rows.append(("state", "open"))
        try:
            rows.extend(_html.keyspace_rows(self.info("keyspace")))
        except (redis.RedisError, OSError) as e:
            rows.append(("keys", f"unavailable: {e}"))
        return _html.table("kiwi.Database", rows)


def open(path: Optional[PathLike] = None, **kwargs: Any) -> Database:  # mirrors the builtin on purpose
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
