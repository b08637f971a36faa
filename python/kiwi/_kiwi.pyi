"""Type stubs for the compiled extension ``kiwi._kiwi``."""

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
