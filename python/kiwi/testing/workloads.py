"""Workloads: what the clients do, and how their history is judged.

A workload makes the next op of a client (seeded, so the same seed gives
the same ops), carries it out on a redis-py connection, names the final
reads to take once the cluster is healed, and checks the history.

========================  ==========================================  =============================
name                      ops                                         checked by
========================  ==========================================  =============================
``cas-register``          GET / SET / WATCH-GET-MULTI-SET-EXEC on K    ``cas-register`` model per key
                          keys, small integer values
``set``                   SADD of unique elements, final SMEMBERS     :func:`~kiwi.testing.checkers.set_checker`
``counter``               INCR, some GETs, final GET                  :func:`~kiwi.testing.checkers.counter_checker`
``multi-key``             MSET / MULTI-SET-EXEC of a group to one      :func:`~kiwi.testing.checkers.multi_key_checker`
                          token; MGET / MULTI-GET-EXEC of a group      and ``register`` per key
``list-append``           MULTI, RPUSH k x / LRANGE k 0 -1, EXEC      ``list-append`` per key and
                                                                       :func:`~kiwi.testing.checkers.list_append_checker`
========================  ==========================================  =============================

Every key starts with the workload's ``prefix``; :meth:`Workload.setup`
deletes the keys under it first, so the models' initial states (nothing)
hold.

Example::

    >>> import random
    >>> w = make("cas-register", keys=2)
    >>> rng = random.Random(1)
    >>> [w.next_op(rng, client=0).f for _ in range(4)]
    ['cas', 'write', 'cas', 'write']
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import redis

from kiwi.testing import checkers
from kiwi.testing.checkers import Verdict
from kiwi.testing.history import FAIL, History, NotProposed, Outcome, error_text

#: Bound on WATCH/GET rounds of one cas whose EXEC was aborted by WATCH.
CAS_ROUNDS = 10


@dataclass(frozen=True)
class Invocation:
    """An op a client is about to run: ``f``, its ``value`` and its ``key`` (if one)."""

    f: str
    value: Any = None
    key: Optional[str] = None


class Workload:
    """Base class: subclasses define :meth:`next_op`, :meth:`apply`,
    :meth:`final_ops` and :meth:`check`."""

    #: The workload's name (the key in :data:`WORKLOADS`).
    name: ClassVar[str] = ""

    def __init__(self, prefix: Optional[str] = None) -> None:
        self.prefix = prefix if prefix is not None else f"jepsen:{self.name}:"

    def setup(self, conn: redis.Redis) -> None:
        """Delete every key under :attr:`prefix` (before the run; must succeed)."""
        keys = list(conn.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000))
        for start in range(0, len(keys), 500):
            conn.delete(*keys[start : start + 500])

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        """The next op of logical client ``client`` (``rng`` is that client's own)."""
        raise NotImplementedError

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        """Carry out ``op``: return its result, or an :class:`~kiwi.testing.history.Outcome`, or raise."""
        raise NotImplementedError

    def final_ops(self) -> list[Invocation]:
        """Reads to take once the run is over and the cluster healed."""
        return []

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        """Every verdict on ``history``, by checker name."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<kiwi.testing workload {self.name}>"


def _glob_escape(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


def _int(v: Any) -> Optional[int]:
    """A reply as an integer (``None`` stays ``None``)."""
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode()
    return int(v)


def _exec(pipe: Any) -> list[Any]:
    """EXEC a queued transaction; all replies, or the error if every reply is one.

    If some replies are errors and others not, part of the transaction ran:
    the op's outcome is unknown to the history's models, so it is ``info``.
    """
    replies = pipe.execute(raise_on_error=False)
    errors = [r for r in replies if isinstance(r, Exception)]
    if errors and len(errors) == len(replies):
        raise errors[0]
    if errors:
        raise PartialExec(error_text(errors[0]))
    return list(replies)


class PartialExec(redis.RedisError):
    """Some commands of a transaction answered errors, others did not."""


# -- cas-register --------------------------------------------------------------


class CasRegister(Workload):
    """Reads, writes and compare-and-sets of integer registers on ``keys`` keys.

    ``cas [expected, new]`` is WATCH k; GET k; if unequal, UNWATCH and the
    op fails (compared unequal: a read of another value); else MULTI; SET k
    new; EXEC. An EXEC aborted by WATCH (someone wrote k in between) starts
    over with the GET, up to :data:`CAS_ROUNDS` times (the op's interval
    covers them all); after that the op failed without happening.

    Example::

        >>> import random
        >>> w = CasRegister(keys=1, values=3)
        >>> w.next_op(random.Random(0), 0)
        Invocation(f='write', value=0, key='jepsen:cas-register:0')
    """

    name = "cas-register"

    def __init__(self, keys: int = 3, values: int = 5, prefix: Optional[str] = None) -> None:
        super().__init__(prefix)
        self.keys = [f"{self.prefix}{i}" for i in range(keys)]
        self.values = values

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        key = rng.choice(self.keys)
        f = rng.choice(("read", "write", "cas"))
        if f == "read":
            return Invocation("read", None, key)
        if f == "write":
            return Invocation("write", rng.randrange(self.values), key)
        return Invocation("cas", [rng.randrange(self.values), rng.randrange(self.values)], key)

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        assert op.key is not None
        if op.f == "read":
            return _int(conn.get(op.key))
        if op.f == "write":
            conn.set(op.key, op.value)
            return op.value
        return self._cas(conn, op.key, op.value)

    def _cas(self, conn: redis.Redis, key: str, value: list[int]) -> Any:
        expected, new = value
        for _ in range(CAS_ROUNDS):
            pipe = conn.pipeline(transaction=True)
            try:
                try:
                    pipe.watch(key)
                    current = _int(pipe.get(key))
                except redis.RedisError as e:
                    raise NotProposed(e) from e
                if current != expected:
                    return Outcome(FAIL, value)  # compared unequal: changed nothing
                pipe.multi()
                pipe.set(key, new)
                try:
                    pipe.execute()
                    return value
                except redis.WatchError:
                    continue  # someone wrote the key in between: read it again
            finally:
                _reset(pipe)
        return Outcome(FAIL, value, f"EXEC aborted by WATCH {CAS_ROUNDS} times")

    def final_ops(self) -> list[Invocation]:
        return [Invocation("read", None, k) for k in self.keys]

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        v = checkers.linearizable(history, "cas-register", budget_s)
        return {v.name: v}


def _reset(pipe: Any) -> None:
    """Reset a pipeline (UNWATCH); a broken connection is dropped by redis-py."""
    try:
        pipe.reset()
    except (redis.RedisError, OSError):
        try:
            if pipe.connection is not None:
                pipe.connection.disconnect()
        except Exception:
            pass


# -- set -----------------------------------------------------------------------


class SetWorkload(Workload):
    """SADD of unique integers to one key; a final SMEMBERS.

    Example::

        >>> import random
        >>> SetWorkload().next_op(random.Random(0), client=2)
        Invocation(f='add', value=2000000, key='jepsen:set:s')
    """

    name = "set"

    def __init__(self, prefix: Optional[str] = None) -> None:
        super().__init__(prefix)
        self.key = f"{self.prefix}s"
        self._next: dict[int, int] = {}

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        n = self._next.get(client, 0)
        self._next[client] = n + 1
        return Invocation("add", client * 1_000_000 + n, self.key)

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        if op.f == "add":
            conn.sadd(self.key, op.value)
            return op.value
        return sorted(_int(x) for x in conn.smembers(self.key))

    def final_ops(self) -> list[Invocation]:
        return [Invocation("read", None, self.key)]

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        v = checkers.set_checker(history)
        return {v.name: v}


# -- counter -------------------------------------------------------------------


class Counter(Workload):
    """INCR of one key, and now and then a GET; a final GET.

    Example::

        >>> import random
        >>> rng = random.Random(3)
        >>> [Counter(read_ratio=0.5).next_op(rng, 0).f for _ in range(5)]
        ['read', 'add', 'read', 'add', 'add']
    """

    name = "counter"

    def __init__(self, read_ratio: float = 0.2, prefix: Optional[str] = None) -> None:
        super().__init__(prefix)
        self.key = f"{self.prefix}n"
        self.read_ratio = read_ratio

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        if rng.random() < self.read_ratio:
            return Invocation("read", None, self.key)
        return Invocation("add", 1, self.key)

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        if op.f == "add":
            # INCR's answer is the counter just after it: an observation too.
            return int(conn.incr(self.key, op.value))
        return _int(conn.get(self.key)) or 0

    def final_ops(self) -> list[Invocation]:
        return [Invocation("read", None, self.key)]

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        v = checkers.counter_checker(history)
        return {v.name: v}


# -- multi-key -----------------------------------------------------------------


class MultiKey(Workload):
    """Groups of keys written together to one token and read together.

    Writes: ``mset`` (MSET) or ``txn-set`` (MULTI; SET ...; EXEC) of every
    key of a group to a token unique to the write. Reads: ``mget`` (MGET) or
    ``txn-get`` (MULTI; GET ...; EXEC) of a group. Values are ``{key:
    token}``; a read's invoke value is the list of keys.

    Example::

        >>> import random
        >>> w = MultiKey(groups=1, size=2)
        >>> w.next_op(random.Random(2), client=1)
        Invocation(f='mset', value={'jepsen:multi-key:0:0': 1000000, 'jepsen:multi-key:0:1': 1000000}, key=None)
    """

    name = "multi-key"

    def __init__(self, groups: int = 2, size: int = 3, prefix: Optional[str] = None) -> None:
        super().__init__(prefix)
        self.groups = [[f"{self.prefix}{g}:{i}" for i in range(size)] for g in range(groups)]
        self._next: dict[int, int] = {}

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        group = rng.choice(self.groups)
        f = rng.choice(("mset", "txn-set", "mget", "txn-get"))
        if f in checkers.MULTI_READS:
            return Invocation(f, list(group))
        n = self._next.get(client, 0)
        self._next[client] = n + 1
        token = client * 1_000_000 + n
        return Invocation(f, dict.fromkeys(group, token))

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        if op.f == "mset":
            conn.mset(op.value)
            return op.value
        if op.f == "txn-set":
            pipe = conn.pipeline(transaction=True)
            for k, v in op.value.items():
                pipe.set(k, v)
            _exec(pipe)
            return op.value
        if op.f == "mget":
            values = conn.mget(op.value)
        else:
            pipe = conn.pipeline(transaction=True)
            for k in op.value:
                pipe.get(k)
            values = _exec(pipe)
        return {k: _int(v) for k, v in zip(op.value, values)}

    def final_ops(self) -> list[Invocation]:
        return [Invocation("mget", list(g)) for g in self.groups]

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        atomic = checkers.multi_key_checker(history)
        per_key = checkers.linearizable_split(
            history, "register", checkers.multi_key_micro_ops, budget_s, name="linearizable register per key"
        )
        return {atomic.name: atomic, per_key.name: per_key}


# -- list-append ---------------------------------------------------------------


class ListAppend(Workload):
    """Transactions of RPUSH k x / LRANGE k 0 -1 over a few keys, in MULTI/EXEC.

    A txn has 1 to ``max_ops`` micro-ops ``["append", k, x]`` /
    ``["r", k, None]`` on ``keys`` keys; elements are unique integers. Keys
    rotate: after every ``per_key`` txns (counted over all clients) a new
    set of keys is used, so the lists stay short for the checker.

    Example::

        >>> import random
        >>> w = ListAppend(keys=2, max_ops=2)
        >>> w.next_op(random.Random(5), client=0)
        Invocation(f='txn', value=[['append', 'jepsen:list-append:1', 0], ['append', 'jepsen:list-append:0', 1]], key=None)
    """

    name = "list-append"

    def __init__(self, keys: int = 3, max_ops: int = 4, per_key: int = 200, prefix: Optional[str] = None) -> None:
        super().__init__(prefix)
        self.keys = keys
        self.max_ops = max_ops
        self.per_key = per_key
        self._lock = threading.Lock()
        self._txns = 0
        self._used: dict[str, None] = {}
        self._next: dict[int, int] = {}

    def next_op(self, rng: random.Random, client: int) -> Invocation:
        with self._lock:
            generation = self._txns // max(1, self.per_key)
            self._txns += 1
        micro: list[list[Any]] = []
        for _ in range(rng.randint(1, self.max_ops)):
            key = f"{self.prefix}{generation * self.keys + rng.randrange(self.keys)}"
            with self._lock:
                self._used.setdefault(key, None)
            if rng.random() < 0.5:
                micro.append(["r", key, None])
            else:
                n = self._next.get(client, 0)
                self._next[client] = n + 1
                micro.append(["append", key, client * 1_000_000 + n])
        return Invocation("txn", micro)

    def apply(self, conn: redis.Redis, op: Invocation) -> Any:
        pipe = conn.pipeline(transaction=True)
        for m in op.value:
            if m[0] == "append":
                pipe.rpush(m[1], m[2])
            else:
                pipe.lrange(m[1], 0, -1)
        replies = _exec(pipe)
        out = []
        for m, reply in zip(op.value, replies):
            if m[0] == "append":
                out.append(list(m))
            else:
                out.append(["r", m[1], [_int(x) for x in reply]])
        return out

    def final_ops(self) -> list[Invocation]:
        with self._lock:
            keys = list(self._used)
        return [Invocation("txn", [["r", k, None] for k in keys])] if keys else []

    def check(self, history: History, budget_s: float = 10.0) -> dict[str, Verdict]:
        order = checkers.list_append_checker(history)
        per_key = checkers.linearizable_split(
            history, "list-append", checkers.list_append_micro_ops, budget_s, name="linearizable list-append per key"
        )
        return {order.name: order, per_key.name: per_key}


#: Workloads by name.
WORKLOADS: dict[str, Callable[..., Workload]] = {
    CasRegister.name: CasRegister,
    SetWorkload.name: SetWorkload,
    Counter.name: Counter,
    MultiKey.name: MultiKey,
    ListAppend.name: ListAppend,
}


def make(name: str, **options: Any) -> Workload:
    """The workload called ``name`` (see :data:`WORKLOADS`), with its options.

    Example::

        >>> make("counter").name
        'counter'
        >>> make("bank")
        Traceback (most recent call last):
        ...
        ValueError: unknown workload 'bank' (cas-register, counter, list-append, multi-key, set)
    """
    try:
        factory = WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r} ({', '.join(sorted(WORKLOADS))})") from None
    return factory(**options)


__all__ = [
    "WORKLOADS",
    "CasRegister",
    "Counter",
    "Invocation",
    "ListAppend",
    "MultiKey",
    "SetWorkload",
    "Workload",
    "make",
]
