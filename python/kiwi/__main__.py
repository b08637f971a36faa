"""``python -m kiwi`` and the ``kiwi-server`` console script."""

from __future__ import annotations

import sys
from typing import Optional

from kiwi import _kiwi


def main(argv: Optional[list[str]] = None) -> int:
    """Run the Kiwi server with command-line arguments (see ``--help``).

    Example::

        $ kiwi-server --port 7379 --dir ./data
    """
    args = list(sys.argv if argv is None else argv)
    if not args:
        args = ["kiwi-server"]
    args[0] = "kiwi-server"
    try:
        return int(_kiwi.run_server_cli(args))
    except KeyboardInterrupt:
        # The server saw the same SIGINT and already shut down cleanly;
        # Python raises it once the call returns.
        return 0


if __name__ == "__main__":
    sys.exit(main())
