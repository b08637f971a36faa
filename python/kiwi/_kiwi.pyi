"""Type stubs for the compiled extension ``kiwi._kiwi``."""

import asyncio
from collections.abc import Sequence
from os import PathLike
from typing import Any, Optional, Union, final

__all__ = [
    "REDIS_VERSION",
    "ClusterHandle",
    "EmbeddedConnection",
    "EmbeddedEngine",
    "ServerHandle",
    "__version__",
    "check_history",
    "run_server_cli",
    "start_cluster",
    "start_server",
]

__version__: str
REDIS_VERSION: str

@final
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
def check_history(model: str, history: str, budget_s: float = 10.0) -> dict[str, Any]:
    """Check a JSON-lines history for linearizability against a model.

    Returns {valid, verdict, model, operations, keys, elapsed_s,
    invalid_keys, unknown_keys, window, text}; raises ValueError on a
    malformed history or an unknown model.
    """

@final
class ClusterHandle:
    """Raft nodes running on background threads of this process, on loopback."""

    @property
    def host(self) -> str: ...
    @property
    def size(self) -> int: ...
    def port(self, i: int) -> int: ...
    def raft_port(self, i: int) -> int: ...
    def dir(self, i: int) -> str: ...
    def running(self, i: int) -> bool: ...
    def status(self, i: int) -> Optional[dict[str, Any]]: ...
    def leader(self) -> Optional[int]: ...
    def fault_block(self, i: int, j: int, both: bool = True) -> None: ...
    def fault_clear(self, i: int) -> None: ...
    def isolate(self, i: int) -> None: ...
    def heal(self) -> None: ...
    def stop(self, i: int) -> None: ...
    def restart(self, i: int) -> None: ...
    def stop_all(self) -> None: ...

def start_cluster(
    dirs: Sequence[Union[str, PathLike[str]]],
    host: str = "127.0.0.1",
    raft_secret: Optional[str] = None,
) -> ClusterHandle: ...

@final
class EmbeddedEngine:
    """An open data directory served in-process."""

    def __new__(cls, path: Union[str, PathLike[str]]) -> EmbeddedEngine: ...
    @property
    def path(self) -> str: ...
    @property
    def open(self) -> bool: ...
    def connect(self) -> EmbeddedConnection: ...
    def close(self) -> None: ...

@final
class EmbeddedConnection:
    """One client session of an EmbeddedEngine, driven like a socket."""

    def send(self, data: bytes) -> None: ...
    def execute_async(self, data: bytes) -> asyncio.Future[bytes]:
        """Run every complete request in ``data`` on tokio's blocking pool.

        Needs a running asyncio event loop; resolves to all pending RESP
        reply bytes (``ConnectionError`` once the session is closed).
        """
    def send_async(self, data: bytes) -> asyncio.Future[None]:
        """Run every complete request in ``data`` on tokio's blocking pool;
        the replies join the output :meth:`recv_async` reads."""
    def recv_async(self, max: int) -> asyncio.Future[bytes]:
        """The next output bytes (replies and messages, in order), at most
        ``max``; empty once the session ended."""
    def recv(self, max: int, timeout: Optional[float] = 0.0) -> Optional[bytes]: ...
    def close(self) -> None: ...
