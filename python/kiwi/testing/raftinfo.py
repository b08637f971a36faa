"""``RAFT.INFO``'s text: the ``field:value`` lines Kiwi's Raft nodes report, and
the member lists and indexes inside them."""

from __future__ import annotations

from typing import Optional, Union


def parse_raft_info(text: Union[str, bytes]) -> dict[str, str]:
    """``RAFT.INFO``'s ``field:value`` lines as a dict of strings.

    Example::

        >>> info = parse_raft_info("node_id:2\\r\\nrole:leader\\r\\nmembers:1=h:1,2=h:2\\r\\n")
        >>> info["role"], parse_members(info["members"])
        ('leader', {1: 'h:1', 2: 'h:2'})
    """
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def parse_members(value: str) -> dict[int, str]:
    """A ``members:``/``learners:`` value (``id=host:port,...``) as ``{id: address}``.

    Example::

        >>> parse_members(""), parse_members("3=127.0.0.1:9003")
        ({}, {3: '127.0.0.1:9003'})
    """
    out = {}
    for item in value.split(","):
        node, sep, addr = item.strip().partition("=")
        if sep:
            out[int(node)] = addr
    return out


def parse_index(value: str) -> Optional[int]:
    """A RAFT.INFO number, ``None`` for ``-``."""
    try:
        return int(value)
    except ValueError:
        return None
