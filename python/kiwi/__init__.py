"""Kiwi: a Redis-compatible key-value engine on RocksDB.

Run a real Redis-compatible server inside your Python process::

    >>> import kiwi
    >>> with kiwi.Server() as server:
    ...     r = server.client()
    ...     r.set("greeting", "hello")
    ...     r.get("greeting")
    True
    b'hello'
"""

from __future__ import annotations

from redis.exceptions import ResponseError

from kiwi import bulk
from kiwi._kiwi import REDIS_VERSION, __version__
from kiwi.cluster import Cluster, ClusterNode
from kiwi.embedded import Database, open
from kiwi.server import Server

__all__ = [
    "REDIS_VERSION",
    "Cluster",
    "ClusterNode",
    "Database",
    "ResponseError",
    "Server",
    "__version__",
    "bulk",
    "open",
]
