"""Free TCP ports on loopback for the servers a test starts, chosen so that a
killed server's port is not taken by an outgoing connection before it restarts."""

from __future__ import annotations

import random
import socket


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that were free a moment ago.

    They are taken below the kernel's ephemeral range when there is room, so
    that the port of a killed server is not handed to some outgoing
    connection before the server restarts on it.

    Example::

        >>> a, b = free_ports(2)
        >>> a != b and a > 0
        True
    """
    low, _ = _ephemeral_range()
    pick = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(64 * count):  # bounded: collisions are rare
            if len(socks) == count or low <= 11000:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, pick.randrange(10000, low)))
                socks.append(s)
            except OSError:
                s.close()
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
