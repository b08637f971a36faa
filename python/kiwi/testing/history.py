"""Histories: what every client asked, and what it learned, in real-time order.

A history is a list of events in the shared JSON-lines format
(``/work/shared/data/linearizability/README.md``)::

    {"process": 0, "type": "invoke", "f": "write", "key": "r0", "value": 3}
    {"process": 0, "type": "ok", "f": "write", "key": "r0", "value": 3}

``type`` is ``invoke``, then ``ok`` (it happened), ``fail`` (it certainly did
not happen) or ``info`` (unknown: it may have happened at any time after its
invoke). Extra fields are allowed: ``error`` (the error text of a ``fail`` or
``info``) and ``time`` (nanoseconds since the recording started).

:class:`Recorder` appends events from many threads: taking the timestamp and
appending happen under one lock, so the order of lines is the real-time order.
:class:`ProcessClient` wraps a redis-py connection for one logical client and
applies Jepsen's rule: after an ``info`` the op may still be in flight, so the
client takes a *new* process id (and a new connection) for its next op.

Example::

    >>> from kiwi.testing.history import History, Recorder
    >>> rec = Recorder()
    >>> rec.invoke(0, "write", 1, key="x")
    0
    >>> rec.complete(0, "ok", "write", 1, key="x")
    1
    >>> [op.type for op in rec.history.ops()]
    ['ok']
    >>> History.from_jsonl(rec.history.to_jsonl()).ops()[0].value
    1
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import redis

#: The event types; ``invoke`` opens an op, the others complete it.
INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
COMPLETIONS = (OK, FAIL, INFO)

Event = dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Op:
    """One operation: an invoke paired with its completion.

    ``value`` is what the invoke carried, ``result`` what the completion
    carried; ``invoke`` and ``complete`` are 0-based line numbers in the
    history (``complete`` is ``None`` for an op that never completed, whose
    ``type`` is then ``info``). The fields are those of the ``window`` that
    ``kiwi._kiwi.check_history`` reports.

    Example::

        >>> op = Op(process=1, f="read", key="x", value=None, result=3, type="ok", invoke=0, complete=1)
        >>> op.to_dict()["result"], op.pending
        (3, False)
    """

    process: int
    f: str
    key: Optional[str]
    value: Any
    result: Any
    type: str
    invoke: int
    complete: Optional[int]
    error: Optional[str] = None

    @property
    def pending(self) -> bool:
        """Whether the op never completed."""
        return self.complete is None

    def to_dict(self) -> dict[str, Any]:
        """The op as a plain dict (the ``window`` format, plus ``error``)."""
        out = {
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "result": self.result,
            "type": self.type,
            "invoke": self.invoke,
            "complete": self.complete,
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        """An op from a ``window`` entry (missing fields default to ``None``).

        Example::

            >>> Op.from_dict({"process": 2, "f": "write", "value": 5, "type": "info", "invoke": 3}).complete is None
            True
        """
        return cls(
            process=int(d["process"]),
            f=str(d["f"]),
            key=d.get("key"),
            value=d.get("value"),
            result=d.get("result"),
            type=str(d.get("type", INFO)),
            invoke=int(d.get("invoke", 0)),
            complete=None if d.get("complete") is None else int(d["complete"]),
            error=d.get("error"),
        )


class History:
    """A thread-safe, append-only list of events.

    Example::

        >>> h = History()
        >>> h.append({"process": 0, "type": "invoke", "f": "read", "value": None})
        >>> h.append({"process": 0, "type": "ok", "f": "read", "value": 7})
        >>> len(h), h.ops()[0].result
        (2, 7)
    """

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._events: list[Event] = [dict(e) for e in events]
        #: Held while an event is timestamped and appended (see :class:`Recorder`).
        self.lock = threading.Lock()

    # -- building ----------------------------------------------------------

    def append(self, event: Event) -> None:
        """Append one event (under the lock)."""
        with self.lock:
            self._events.append(event)

    # -- reading -----------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """A copy of the events so far."""
        with self.lock:
            return list(self._events)

    def __len__(self) -> int:
        with self.lock:
            return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __getitem__(self, index: int) -> Event:
        with self.lock:
            return self._events[index]

    def ops(self) -> list[Op]:
        """Every op, invokes paired with completions, in invoke order.

        An invoke that never completed becomes an ``info`` op with
        ``complete=None``. Raises ``ValueError`` when a process invokes while
        it has an op in flight, or completes without one.

        Example::

            >>> h = History([
            ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
            ...     {"process": 1, "type": "invoke", "f": "add", "value": 2},
            ...     {"process": 0, "type": "fail", "f": "add", "value": 1, "error": "CLUSTERDOWN no quorum"},
            ... ])
            >>> [(op.value, op.type, op.complete) for op in h.ops()]
            [(1, 'fail', 2), (2, 'info', None)]
        """
        events = self.events
        ops: list[Optional[Op]] = []
        open_: dict[int, tuple[int, int, Event]] = {}  # process -> (slot in ops, line, invoke)
        for line, e in enumerate(events):
            process, kind = _process_of(e, line), e.get("type")
            if kind == INVOKE:
                if process in open_:
                    raise ValueError(f"line {line + 1}: process {process} invokes with an op in flight")
                open_[process] = (len(ops), line, e)
                ops.append(None)
            elif kind in COMPLETIONS:
                if process not in open_:
                    raise ValueError(f"line {line + 1}: process {process} completes with no op in flight")
                slot, start, inv = open_.pop(process)
                ops[slot] = Op(
                    process=process,
                    f=str(inv.get("f")),
                    key=inv.get("key"),
                    value=inv.get("value"),
                    result=e.get("value"),
                    type=str(kind),
                    invoke=start,
                    complete=line,
                    error=e.get("error"),
                )
            else:
                raise ValueError(f"line {line + 1}: unknown event type {kind!r}")
        for process, (slot, start, inv) in open_.items():
            ops[slot] = Op(process, str(inv.get("f")), inv.get("key"), inv.get("value"), None, INFO, start, None)
        return [op for op in ops if op is not None]

    def keys(self) -> list[Optional[str]]:
        """The distinct ``key`` fields, in order of first appearance (``None`` for none)."""
        seen: dict[Optional[str], None] = {}
        for e in self.events:
            seen.setdefault(e.get("key"), None)
        return list(seen)

    def counts(self) -> dict[str, int]:
        """How many ops ended ``ok``, ``fail`` and ``info`` (never-completed ones count as ``info``).

        Example::

            >>> History([{"process": 0, "type": "invoke", "f": "r"}]).counts()
            {'ok': 0, 'fail': 0, 'info': 1}
        """
        out = {OK: 0, FAIL: 0, INFO: 0}
        for op in self.ops():
            out[op.type] += 1
        return out

    # -- JSON lines --------------------------------------------------------

    def to_jsonl(self) -> str:
        """The history as JSON lines (one event a line, trailing newline)."""
        return "".join(json.dumps(e) + "\n" for e in self.events)

    def save(self, path: PathLike) -> None:
        """Write the history to ``path`` as JSON lines."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_jsonl())

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        """Parse JSON lines; blank lines are skipped. ``ValueError`` names a bad line.

        Example::

            >>> History.from_jsonl('{"process": 0, "type": "invoke", "f": "read"}\\n\\n').events
            [{'process': 0, 'type': 'invoke', 'f': 'read'}]
            >>> History.from_jsonl('{"process": 0,')
            Traceback (most recent call last):
            ...
            ValueError: line 1: not JSON: ...
        """
        events = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"line {n}: not JSON: {err}") from None
            if not isinstance(e, dict) or "process" not in e or "type" not in e:
                raise ValueError(f"line {n}: an event needs 'process' and 'type': {line.strip()[:200]}")
            events.append(e)
        return cls(events)

    @classmethod
    def load(cls, path: PathLike) -> History:
        """Read a JSON-lines history from ``path``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_jsonl(f.read())

    def __repr__(self) -> str:
        return f"<kiwi.testing.History {len(self)} events>"


def _process_of(e: Event, line: int) -> int:
    p = e.get("process")
    if isinstance(p, bool) or not isinstance(p, int):
        raise ValueError(f"line {line + 1}: 'process' must be an integer, not {p!r}")
    return p


class Recorder:
    """Appends invokes and completions to a :class:`History`, from any thread.

    Each event gets a ``time`` field (nanoseconds since the recorder was
    made) taken under the history's lock, so line order is real-time order.

    Example::

        >>> rec = Recorder()
        >>> rec.invoke(3, "cas", [1, 2], key="r1")
        0
        >>> rec.complete(3, "fail", "cas", [1, 2], key="r1", error="CLUSTERDOWN no quorum")
        1
        >>> e = rec.history[-1]
        >>> (e["type"], e["error"], e["time"] >= rec.history[0]["time"])
        ('fail', 'CLUSTERDOWN no quorum', True)
    """

    def __init__(self, history: Optional[History] = None, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.history = history if history is not None else History()
        self._clock = clock
        self._start = clock()

    def _append(self, event: Event) -> int:
        with self.history.lock:
            event["time"] = self._clock() - self._start
            self.history._events.append(event)
            return len(self.history._events) - 1

    def now(self) -> int:
        """Nanoseconds since the recorder was made (the ``time`` scale)."""
        return self._clock() - self._start

    def invoke(self, process: int, f: str, value: Any = None, key: Optional[str] = None) -> int:
        """Record that ``process`` starts op ``f``; return the event's line number (0-based)."""
        return self._append(_event(process, INVOKE, f, value, key, None))

    def complete(
        self,
        process: int,
        type: str,
        f: str,
        value: Any = None,
        key: Optional[str] = None,
        error: Optional[str] = None,
    ) -> int:
        """Record that ``process``'s op ended ``ok``, ``fail`` or ``info``; return its line number."""
        if type not in COMPLETIONS:
            raise ValueError(f"a completion is ok, fail or info, not {type!r}")
        return self._append(_event(process, type, f, value, key, error))


def _event(process: int, type: str, f: str, value: Any, key: Optional[str], error: Optional[str]) -> Event:
    e: Event = {"process": process, "type": type, "f": f}
    if key is not None:
        e["key"] = key
    e["value"] = value
    if error is not None:
        e["error"] = error
    return e


# -- what an error means -------------------------------------------------------


def error_text(e: BaseException) -> str:
    """The error as the server sent it (redis-py strips a known code such as
    ``CLUSTERDOWN`` from the message; it is put back).

    Example::

        >>> from redis.exceptions import ClusterDownError
        >>> error_text(ClusterDownError("no quorum", status_code="CLUSTERDOWN"))
        'CLUSTERDOWN no quorum'
    """
    text = str(e)
    code = getattr(e, "status_code", None)
    if code and not text.startswith(str(code)):
        return f"{code} {text}" if text else str(code)
    return text


#: The one reply that proves a write was never proposed (Kiwi answers it when
#: no leader was reachable in time). ``CLUSTERDOWN no quorum (write not
#: confirmed: ...)`` is NOT it: that write was proposed and may commit.
NO_QUORUM = "CLUSTERDOWN no quorum"
#: Error codes whose command may or may not have taken effect.
UNKNOWN_CODES = ("CLUSTERDOWN", "TRYAGAIN")
#: Kiwi's error replies for commands whose Raft entry was applied anyway.
UNKNOWN_REPLIES = ("ERR no reply from the replicated entry",)


#: Texts of redis-py errors raised while connecting, before anything was sent
#: (``Error 111 connecting to ...``, ``Timeout connecting to server``, and
#: ``kiwi.Cluster``'s leader-following client finding no leader).
NOT_SENT = ("connecting to", "Timeout connecting", "no kiwi cluster leader")


def classify(e: BaseException) -> str:
    """Whether a failed command certainly did not happen (``fail``) or may have (``info``).

    A reply is proof: an error answer means the server refused the command
    (``-CLUSTERDOWN no quorum`` exactly, ``-ERR raft node is shutting down``,
    a syntax or type error...), except the replies that say the outcome is
    unknown (``-TRYAGAIN ...``, any other ``-CLUSTERDOWN ...``, and
    :data:`UNKNOWN_REPLIES`). A failure to
    connect (refused, timed out) sent nothing: ``fail``. A timeout, a lost
    connection or any other exception leaves the outcome unknown.

    Example::

        >>> from redis.exceptions import ClusterDownError, ResponseError, TryAgainError
        >>> classify(ClusterDownError("no quorum", status_code="CLUSTERDOWN"))
        'fail'
        >>> classify(ClusterDownError("no quorum (write not confirmed: x)", status_code="CLUSTERDOWN"))
        'info'
        >>> classify(TryAgainError("outcome unknown: lost", status_code="TRYAGAIN"))
        'info'
        >>> classify(ResponseError("raft node is shutting down")), classify(redis.TimeoutError("t"))
        ('fail', 'info')
        >>> classify(redis.ConnectionError("Error 111 connecting to 127.0.0.1:7001. Connection refused."))
        'fail'
    """
    if isinstance(e, redis.ResponseError):
        text = error_text(e)
        if text == NO_QUORUM:
            return FAIL
        if text.startswith(UNKNOWN_CODES) or text in UNKNOWN_REPLIES:
            return INFO
        return FAIL
    if isinstance(e, (redis.ConnectionError, redis.TimeoutError)) and any(m in str(e) for m in NOT_SENT):
        return FAIL
    if isinstance(e, ConnectionRefusedError):
        return FAIL
    return INFO


@dataclass(frozen=True)
class Outcome:
    """What an op's action learned, when it is not plain success.

    An action returns a value (the op is ``ok`` with that value) or an
    ``Outcome`` to say more: ``Outcome("fail", value)`` for a ``cas`` that
    compared unequal, ``Outcome("fail", value, error)`` for an op refused
    before it was proposed, ``Outcome("info", value, error)`` for an unknown
    one (a transaction with some replies in error, say).
    """

    type: str
    value: Any = None
    error: Optional[str] = None


class NotProposed(Exception):
    """Raised by an op's action when it failed before sending anything that
    could change state (a ``cas`` whose WATCH or GET failed): the op is
    ``fail`` with the cause's text as ``error``, whatever the cause.

    Example::

        >>> NotProposed(redis.TimeoutError("read timed out")).error
        'read timed out'
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(error_text(cause))
        self.cause = cause
        self.error = error_text(cause) or type(cause).__name__


class ProcessClient:
    """One logical client: a redis-py connection and its current process id.

    ``connect()`` makes a new ``redis.Redis``. :meth:`call` records the
    invoke, runs the action, records the completion (classifying errors with
    :func:`classify`) and, after an ``info``, moves to the next process id
    (``process + stride``) on a fresh connection: the op in flight may still
    land, and a process never has two ops in flight. After any connection
    error or timeout the connection is replaced too.

    Example::

        >>> class Flaky:
        ...     def close(self): pass
        >>> client = ProcessClient(Recorder(), connect=Flaky, process=1, stride=4)
        >>> def lost(conn): raise redis.ConnectionError("lost")
        >>> client.call("write", lost, value=5, key="x").type
        'info'
        >>> client.process, client.call("read", lambda conn: 5, key="x").result
        (5, 5)
    """

    def __init__(
        self,
        recorder: Recorder,
        connect: Callable[[], Any],
        process: int,
        stride: int = 1,
    ) -> None:
        self.recorder = recorder
        self._connect = connect
        self.process = process
        self.stride = stride
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        """The current connection, made on first use."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def reconnect(self) -> None:
        """Drop the connection; the next op makes a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                pass

    def close(self) -> None:
        """Close the connection."""
        self.reconnect()

    def call(
        self,
        f: str,
        action: Callable[[Any], Any],
        value: Any = None,
        key: Optional[str] = None,
    ) -> Op:
        """Record and run one op; return it as completed.

        ``action(conn)`` returns the ok value, or an :class:`Outcome`, or
        raises. A ``redis.RedisError`` or ``OSError`` is classified; any other
        exception is recorded as ``info`` and re-raised (a bug in the action
        must not pass silently).
        """
        process = self.process
        rec = self.recorder
        start = rec.invoke(process, f, value, key)
        try:
            conn = self.conn
            got = action(conn)
            outcome = got if isinstance(got, Outcome) else Outcome(OK, got)
        except NotProposed as e:
            outcome = Outcome(FAIL, value, e.error)
            if _connection_broken(e.cause):
                self.reconnect()
        except (redis.RedisError, OSError) as e:
            outcome = Outcome(classify(e), value, error_text(e) or type(e).__name__)
            if _connection_broken(e):
                self.reconnect()
        except BaseException as e:
            rec.complete(process, INFO, f, value, key, f"{type(e).__name__}: {e}")
            self._next_process()
            raise
        end = rec.complete(process, outcome.type, f, outcome.value, key, outcome.error)
        if outcome.type == INFO:
            self._next_process()
        return Op(process, f, key, value, outcome.value, outcome.type, start, end, outcome.error)

    def _next_process(self) -> None:
        self.process += self.stride
        self.reconnect()


def _connection_broken(e: BaseException) -> bool:
    return isinstance(e, (redis.ConnectionError, redis.TimeoutError, OSError))
