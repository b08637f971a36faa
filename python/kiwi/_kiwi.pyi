"""Type stubs for the compiled extension ``kiwi._kiwi``."""

import asyncio
from os import PathLike
from typing import Optional, Union

__version__: str
REDIS_VERSION: str

class ServerHandle:
    """A Kiwi server running on background threads of this process."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def dir(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...

def start_server(
    dir: Union[str, PathLike[str]],
    host: str = "127.0.0.1",
    port: int = 0,
    requirepass: Optional[str] = None,
) -> ServerHandle: ...
def run_server_cli(argv: list[str]) -> int: ...

class EmbeddedEngine:
    """An open data directory served in-process."""

    def __init__(self, path: Union[str, PathLike[str]]) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def open(self) -> bool: ...
    def connect(self) -> EmbeddedConnection: ...
    def close(self) -> None: ...

class EmbeddedConnection:
    """One client session of an EmbeddedEngine, driven like a socket."""

    def send(self, data: bytes) -> None: ...
    def execute_async(self, data: bytes) -> asyncio.Future[bytes]:
        """Run every complete request in ``data`` on tokio's blocking pool.

        Needs a running asyncio event loop; resolves to all pending RESP
        reply bytes (``ConnectionError`` once the session is closed).
        """
        ...
    def recv(self, max: int) -> Optional[bytes]: ...
    def close(self) -> None: ...
