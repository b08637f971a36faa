"""Bulk loading through any redis-py client, in pipelined batches, with progress.

The functions here take any synchronous redis-py client: a :func:`kiwi.open`
database, :meth:`kiwi.Server.client`, :meth:`kiwi.Cluster.client` (or a
follower's :meth:`kiwi.ClusterNode.client`, which forwards to the leader), or
a plain ``redis.Redis`` on a real Redis. Each batch is one round trip: a
non-transactional pipeline (no MULTI/EXEC), so other clients' commands may
interleave between the commands of a batch.

Input is consumed lazily, one batch at a time: a generator of a billion pairs
never holds more than ``batch`` of them in memory.

``progress=None`` shows a progress display when stderr is a terminal or
inside a Jupyter/IPython kernel, ``True`` always, ``False`` never. It uses
``tqdm.auto`` when tqdm is installed, else a single line on stderr.

Example::

    >>> import kiwi
    >>> with kiwi.open() as db:
    ...     kiwi.bulk.load(db, ((f"user:{i}", i) for i in range(2500)), progress=False)
    ...     kiwi.bulk.execute(db, [("HSET", "h", "f", "v"), ("INCR", "n")], progress=False)
    ...     db.get("user:2499"), db.hget("h", "f"), db.get("n")
    2500
    2
    (b'2499', b'v', b'1')
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, Optional, Protocol, Union

from redis.exceptions import ResponseError

from kiwi import _progress

__all__ = ["Client", "Command", "Pairs", "execute", "load"]

#: Pairs per MSET command inside a batch: a batch of 1000 pairs goes as ten
#: MSETs in one round trip, so no single command holds the server (or makes a
#: Raft log entry) much larger than this.
MSET_PAIRS = 100

#: What :func:`load` takes: a mapping, or an iterable of ``(key, value)`` pairs.
Pairs = Union[Mapping[Any, Any], Iterable[tuple[Any, Any]]]
#: One command for :func:`execute`: its name and arguments, e.g. ``("SET", "k", "v")``.
Command = Sequence[Any]


class Client(Protocol):
    """What the functions need of a client: redis-py's ``pipeline(transaction=...)``."""

    def pipeline(self, transaction: Any = ..., shard_hint: Any = ...) -> Any: ...


def _chunks(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of up to ``size`` items, pulled from ``iterator`` as needed."""
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def _round_trip(client: Client, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` in one non-transactional pipeline; their replies,
    error replies included as exceptions rather than raised."""
    with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))


def _check_batch(batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, not {batch!r}")


def _render(command: Sequence[Any], limit: int = 80) -> str:
    """A command as text for an error message, cut to ``limit`` characters."""
    text = " ".join(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in command)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reraise(error: ResponseError, message: str) -> NoReturn:
    """Raise ``error``'s class with ``message`` (chained to ``error``)."""
    try:
        new = type(error)(message)
    except Exception:
        new = ResponseError(message)
    raise new from error


def _mset_commands(chunk: list[Any], first: int) -> list[list[Any]]:
    """``chunk``'s pairs as MSET commands of up to :data:`MSET_PAIRS` pairs; ``first`` is the position of ``chunk[0]``."""
    commands = []
    for start in range(0, len(chunk), MSET_PAIRS):
        args: list[Any] = ["MSET"]
        for offset, pair in enumerate(chunk[start : start + MSET_PAIRS]):
            try:
                if isinstance(pair, (str, bytes)):
                    raise TypeError("a string is not a pair")
                key, value = pair
            except (TypeError, ValueError):
                raise TypeError(f"item {first + start + offset} is not a (key, value) pair: {pair!r}") from None
            args += (key, value)
        commands.append(args)
    return commands


def load(client: Client, items: Pairs, *, batch: int = 1000, progress: Optional[bool] = None) -> int:
    """Set every key/value pair of ``items`` through ``client``; return how many pairs were sent.

    ``items`` is a mapping or an iterable of ``(key, value)`` pairs (a list,
    a generator, ``zip(keys, values)``...); it is read ``batch`` pairs at a
    time and never copied whole. Each batch is one round trip: a
    non-transactional pipeline of MSET commands of up to :data:`MSET_PAIRS`
    pairs each. Keys and values are anything redis-py encodes (str, bytes,
    int, float). A key given twice is set twice (the last value wins) and
    counted twice.

    A server error (e.g. ``CLUSTERDOWN`` on a cluster without quorum) raises
    its ``redis.exceptions.ResponseError`` class, naming the pairs of the
    failing MSET by position; the batches before it are written, later ones
    are not sent.

    Example::

        >>> import kiwi
        >>> with kiwi.open() as db:
        ...     kiwi.bulk.load(db, {"a": 1, "b": 2}, progress=False)
        ...     kiwi.bulk.load(db, ((f"k{i}", "v" * i) for i in range(10)), batch=3, progress=False)
        ...     db.mget("a", "b", "k9")
        2
        10
        [b'1', b'2', b'vvvvvvvvv']
    """
    _check_batch(batch)
    pairs: Iterable[Any] = items.items() if isinstance(items, Mapping) else items
    total = _progress.total_of(pairs)
    shown = _progress.bar(total, enabled=progress, desc="kiwi.bulk.load", unit="keys")
    written = 0
    try:
        for chunk in _chunks(iter(pairs), batch):
            msets = _mset_commands(chunk, written)
            replies = _round_trip(client, msets)
            starts = range(0, len(chunk), MSET_PAIRS)
            for start, reply in zip(starts, replies):
                if isinstance(reply, ResponseError):
                    first = written + start
                    last = written + min(start + MSET_PAIRS, len(chunk)) - 1
                    _reraise(reply, f"MSET of pairs {first} to {last} (counting from 0) failed: {reply}")
            written += len(chunk)
            shown.update(len(chunk))
    finally:
        shown.close()
    return written


def execute(client: Client, commands: Iterable[Command], *, batch: int = 1000, progress: Optional[bool] = None) -> int:
    """Run every command of ``commands`` through ``client``; return how many ran.

    Each command is a tuple (or list) of its name and arguments, like
    ``("HSET", "h", "f", "v")``. ``commands`` is read ``batch`` commands at a
    time (a generator is never materialised) and each batch is one round
    trip: a non-transactional pipeline.

    The replies are checked for errors and dropped, so memory stays flat for
    any number of commands; hence the count, not a list of replies (for the
    replies of a few commands, use ``client.pipeline()`` directly).

    The first error reply raises its ``redis.exceptions.ResponseError``
    class (``ResponseError`` for ``WRONGTYPE``), its message naming the
    command's position in ``commands`` (counting from 0) and the command,
    then Redis's text; the original is chained as ``__cause__``. Every
    command before it has been applied. Being pipelined, the rest of its
    batch was already sent and has been applied too; no later batch is sent.
    A lost connection is retried as the client's ``retry`` setting says
    (redis-py re-sends the whole batch): for commands that are not idempotent
    (INCR, RPUSH...) give a client without retries if a batch must never run
    twice.

    Example::

        >>> import kiwi
        >>> db = kiwi.open()
        >>> kiwi.bulk.execute(db, (("RPUSH", "list", i) for i in range(5)), progress=False)
        5
        >>> db.lrange("list", 0, -1)
        [b'0', b'1', b'2', b'3', b'4']
        >>> kiwi.bulk.execute(db, [("SET", "s", "x"), ("LPUSH", "s", "y")], progress=False)
        Traceback (most recent call last):
        ...
        redis.exceptions.ResponseError: command 1 (LPUSH s y) failed: WRONGTYPE Operation against a key holding the wrong kind of value
        >>> db.close()
    """
    _check_batch(batch)
    total = _progress.total_of(commands)
    shown = _progress.bar(total, enabled=progress, desc="kiwi.bulk.execute", unit="commands")
    done = 0
    try:
        for chunk in _chunks(iter(commands), batch):
            for offset, command in enumerate(chunk):
                if isinstance(command, (str, bytes)) or not isinstance(command, Sequence) or not command:
                    raise TypeError(
                        f"command {done + offset} must be a non-empty tuple like ('SET', 'k', 'v'), not {command!r}"
                    )
            replies = _round_trip(client, chunk)
            for offset, reply in enumerate(replies):
                if isinstance(reply, ResponseError):
                    position = done + offset
                    _reraise(reply, f"command {position} ({_render(chunk[offset])}) failed: {reply}")
            done += len(chunk)
            shown.update(len(chunk))
    finally:
        shown.close()
    return done
