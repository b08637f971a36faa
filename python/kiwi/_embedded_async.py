"""redis.asyncio on the embedded engine: an asyncio transport over one session.

``Database.client_async()`` returns a ``redis.asyncio.Redis`` whose
connections are :class:`AsyncEmbeddedConnection`. Each one wraps an engine
session in a real ``asyncio.StreamReader``/``StreamWriter`` pair, so
redis.asyncio's own parser, pipelines, ``PubSub`` and ``Lock`` run
unchanged. Requests run on tokio's blocking pool in order (one send at a
time per session); replies, pub/sub messages and tracking pushes come out of
the session's single output, in the order a socket would carry them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from redis.asyncio.connection import AbstractConnection

from kiwi import _kiwi

# How much one read takes from the session's output.
_READ_SIZE = 65536


class _EngineTransport(asyncio.Transport):
    """The transport under a StreamReaderProtocol: writes go to the engine,
    the session's output is fed to the protocol."""

    def __init__(
        self, session: _kiwi.EmbeddedConnection, protocol: asyncio.Protocol, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._session = session
        self._protocol = protocol
        self._loop = loop
        self._outgoing = bytearray()
        self._has_outgoing = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False
        self._lost = False
        self._tasks = [loop.create_task(self._send_loop()), loop.create_task(self._read_loop())]

    async def _send_loop(self) -> None:
        while True:
            await self._has_outgoing.wait()
            self._has_outgoing.clear()
            requests = bytes(self._outgoing)
            self._outgoing.clear()
            try:
                await self._session.send_async(requests)
            except (ConnectionError, RuntimeError) as e:
                self._connection_lost(e)
                return

    async def _read_loop(self) -> None:
        while True:
            await self._reading.wait()
            try:
                chunk = await self._session.recv_async(_READ_SIZE)
            except (ConnectionError, RuntimeError) as e:
                self._connection_lost(e)
                return
            if not chunk:
                # The session ended (QUIT, a protocol error, close).
                self._protocol.eof_received()
                self._connection_lost(None)
                return
            self._protocol.data_received(chunk)

    def _connection_lost(self, error: Optional[Exception]) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._protocol.connection_lost(error)

    def write(self, data: Any) -> None:
        if self._closing:
            return
        self._outgoing += data
        self._has_outgoing.set()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return len(self._outgoing)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        pass

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def close(self) -> None:
        if self._closing and self._lost:
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        # Ends the session (its subscriptions, its tracking) at once.
        self._session.close()
        self._loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        self.close()


class AsyncEmbeddedConnection(AbstractConnection):
    """A redis.asyncio connection to an in-process Kiwi engine."""

    def __init__(self, *, engine: _kiwi.EmbeddedEngine, **kwargs: Any) -> None:
        self._engine = engine
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        super().__init__(**kwargs)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        session = self._engine.connect()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport = _EngineTransport(session, protocol, loop)
        protocol.connection_made(transport)
        self._reader = reader
        self._writer = asyncio.StreamWriter(transport, protocol, reader, loop)

    def _host_error(self) -> str:
        return f"kiwi embedded database at {self._engine.path}"

    def repr_pieces(self) -> list[tuple[str, Any]]:
        return [("path", self._engine.path), ("db", self.db)]
