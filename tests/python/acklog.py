"""Writers that log what the server acknowledged, and the check of a keyspace
against those logs: the tool of the crash and full-disk tests.

A :class:`Writer` thread writes keys of its own (``*:{wid}``) with unique,
checkable content — SET, RPUSH, HSET, SADD, INCR, and MULTI/INCR/INCR/EXEC on a
pair of counters — through whatever client ``connect`` hands it, and logs each
operation as

* ``OK``: acknowledged — it must be there, whatever happened since;
* ``UNKNOWN``: the connection dropped or the cluster could not say (it may or
  may not have happened);
* ``REFUSED``: answered an error that says it was not done (``MISCONF``) — it
  must not be there.

:func:`violations` compares a keyspace with a writer's log per key: every
acknowledged value present and intact, nothing refused or never attempted
present, list elements in push order, counters between what was acknowledged
and what may have happened, the two counters of a transaction equal.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import redis
from redis.exceptions import ExecAbortError

from kiwitest import is_cluster_error

OK, UNKNOWN, REFUSED = "ok", "unknown", "refused"

#: Error replies that leave the outcome unknown: the cluster could not
#: confirm, or the node was going down.
UNKNOWN_REPLIES = ("LOADING", "ERR raft node is shutting down")
#: Error replies that say the write was not done.
REFUSED_REPLIES = ("MISCONF", "EXECABORT")


@dataclass
class Log:
    """What one writer did: per key (or element) the value and its outcome."""

    strings: dict[str, tuple[str, str]] = field(default_factory=dict)
    pushed: list[tuple[int, str]] = field(default_factory=list)
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)
    incrs: list[str] = field(default_factory=list)
    pairs: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=lambda: {OK: 0, UNKNOWN: 0, REFUSED: 0})
    #: The first errors that left an outcome unknown, for diagnosis.
    unknown_errors: list[str] = field(default_factory=list)


class Writer(threading.Thread):
    """Writes keys ``*:{wid}`` through ``connect(attempt)`` (a client, or
    ``None`` when nothing is reachable now) until :attr:`stop` is set.
    ``value_size`` pads SET values (to fill a disk)."""

    def __init__(
        self,
        wid: int,
        connect: Callable[[int], Optional[redis.Redis]],
        seed: int,
        value_size: int = 0,
    ) -> None:
        super().__init__(name=f"writer-{wid}", daemon=True)
        self.wid = wid
        self.connect = connect
        self.rng = random.Random(seed)
        self.value_size = value_size
        self.log = Log()
        self.stop = threading.Event()
        self.failure: Optional[BaseException] = None
        self.n = 0
        self._record: Callable[[str], None] = lambda outcome: None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by check_writers
            self.failure = e

    def _run(self) -> None:
        client: Optional[redis.Redis] = None
        attempt = 0
        ops = (self._set, self._rpush, self._hset, self._sadd, self._incr, self._pair)
        while not self.stop.is_set():
            if client is None:
                client = self.connect(attempt)
                attempt += 1
                if client is None:
                    self.stop.wait(0.02)  # nothing up: back off a little
                    continue
            self.n += 1
            outcome = UNKNOWN
            try:
                # An op logs its attempt (UNKNOWN) before sending it and sets
                # self._record to update that entry.
                self.rng.choice(ops)(client)
                outcome = OK
            except (redis.ConnectionError, redis.TimeoutError) as e:
                self._note(e)
                client.close()
                client = None  # reconnect, to another node in a cluster
            except redis.ResponseError as e:
                text = str(e)
                # redis-py strips EXECABORT from its ExecAbortError and puts
                # "Command # 1 (...) of pipeline caused error: " before the
                # error of a queued command.
                if any(code in text for code in REFUSED_REPLIES) or isinstance(e, ExecAbortError):
                    outcome = REFUSED
                elif is_cluster_error(e) or text.startswith(UNKNOWN_REPLIES):
                    self._note(e)
                    client.close()
                    client = None
                else:
                    raise
            self._record(outcome)
            self.log.outcomes[outcome] += 1
        if client is not None:
            client.close()

    def _note(self, e: BaseException) -> None:
        if len(self.log.unknown_errors) < 10:
            self.log.unknown_errors.append(f"{type(e).__name__}: {e}")

    def _set(self, r: redis.Redis) -> None:
        key = f"s:{self.wid}:{self.n}"
        value = f"v:{self.wid}:{self.n}:{self.rng.getrandbits(32):08x}:".ljust(self.value_size, "x")
        self.log.strings[key] = (value, UNKNOWN)
        self._record = lambda outcome: self.log.strings.__setitem__(key, (value, outcome))
        assert r.set(key, value) is True

    def _rpush(self, r: redis.Redis) -> None:
        n = self.n
        self.log.pushed.append((n, UNKNOWN))
        self._record = lambda outcome: self.log.pushed.__setitem__(-1, (n, outcome))
        assert isinstance(r.rpush(f"l:{self.wid}", f"e:{n}"), int)

    def _hset(self, r: redis.Redis) -> None:
        name, value = f"f:{self.n}", f"h:{self.n}:{self.rng.getrandbits(32):08x}"
        self.log.fields[name] = (value, UNKNOWN)
        self._record = lambda outcome: self.log.fields.__setitem__(name, (value, outcome))
        assert r.hset(f"h:{self.wid}", name, value) == 1

    def _sadd(self, r: redis.Redis) -> None:
        member = f"m:{self.n}"
        self.log.members[member] = UNKNOWN
        self._record = lambda outcome: self.log.members.__setitem__(member, outcome)
        assert r.sadd(f"set:{self.wid}", member) == 1

    def _incr(self, r: redis.Redis) -> None:
        lo, hi = counter_bounds(self.log.incrs)
        self.log.incrs.append(UNKNOWN)
        self._record = lambda outcome: self.log.incrs.__setitem__(-1, outcome)
        value = r.incr(f"c:{self.wid}")
        # Every acknowledged INCR before this one is in the value.
        assert lo < value <= hi + 1, f"INCR c:{self.wid} = {value}, expected {lo + 1}..{hi + 1}"

    def _pair(self, r: redis.Redis) -> None:
        """INCR two counters in one MULTI/EXEC: they must stay equal."""
        self.log.pairs.append(UNKNOWN)
        self._record = lambda outcome: self.log.pairs.__setitem__(-1, outcome)
        pipe = r.pipeline(transaction=True)
        pipe.incr(f"pa:{self.wid}")
        pipe.incr(f"pb:{self.wid}")
        a, b = pipe.execute()
        assert a == b, f"EXEC of INCR pa:{self.wid} and INCR pb:{self.wid} answered {a} and {b}"


def counter_bounds(outcomes: list[str]) -> tuple[int, int]:
    """The least and the most a counter may hold after these increments."""
    acked = outcomes.count(OK)
    return acked, acked + outcomes.count(UNKNOWN)


def _check(bad: list[str], what: str, outcome: str, present: bool, intact: bool = True) -> None:
    if outcome == OK and not present:
        bad.append(f"{what}: acknowledged, lost")
    elif present and not intact:
        bad.append(f"{what}: holds another value than written")
    elif outcome == REFUSED and present:
        bad.append(f"{what}: refused with an error, yet stored")


def violations(log: Log, wid: int, r: redis.Redis) -> list[str]:
    """Every way the keyspace seen through ``r`` contradicts writer ``wid``'s log."""
    bad: list[str] = []
    for key, (value, outcome) in log.strings.items():
        got = r.get(key)
        _check(bad, f"SET {key}", outcome, got is not None, got is None or got.decode() == value)
    bad += [
        f"{k!r}: never written" for k in r.scan_iter(match=f"s:{wid}:*", count=1000) if k.decode() not in log.strings
    ]
    pushed = dict(log.pushed)
    seen = [int(e.decode().split(":")[1]) for e in r.lrange(f"l:{wid}", 0, -1)]
    if seen != sorted(set(seen)):
        bad.append(f"l:{wid}: elements out of push order or repeated")
    for n, outcome in pushed.items():
        _check(bad, f"RPUSH l:{wid} e:{n}", outcome, n in set(seen))
    bad += [f"l:{wid}: e:{n} never pushed" for n in seen if n not in pushed]
    stored = {k.decode(): v.decode() for k, v in r.hgetall(f"h:{wid}").items()}
    for name, (value, outcome) in log.fields.items():
        _check(bad, f"HSET h:{wid} {name}", outcome, name in stored, stored.get(name, value) == value)
    bad += [f"h:{wid} {name}: never written" for name in stored if name not in log.fields]
    members = {m.decode() for m in r.smembers(f"set:{wid}")}
    for member, outcome in log.members.items():
        _check(bad, f"SADD set:{wid} {member}", outcome, member in members)
    bad += [f"set:{wid} {m}: never added" for m in members if m not in log.members]
    counter = int(r.get(f"c:{wid}") or 0)
    lo, hi = counter_bounds(log.incrs)
    if not lo <= counter <= hi:
        bad.append(f"c:{wid} = {counter}, expected {lo}..{hi}")
    a, b = int(r.get(f"pa:{wid}") or 0), int(r.get(f"pb:{wid}") or 0)
    if a != b:
        bad.append(f"pa:{wid} = {a} but pb:{wid} = {b}: half a transaction")
    lo, hi = counter_bounds(log.pairs)
    if not lo <= a <= hi:
        bad.append(f"pa:{wid} = {a}, expected {lo}..{hi}")
    return bad


def total(writers: list[Writer], outcome: str = OK) -> int:
    return sum(w.log.outcomes[outcome] for w in writers)


def check_writers(writers: list[Writer]) -> None:
    """Raise the first failure of a writer thread."""
    for w in writers:
        if w.failure is not None:
            failure = w.failure
            raise AssertionError(f"{w.name} failed: {type(failure).__name__}: {failure}") from failure


def stop_writers(writers: list[Writer]) -> None:
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(timeout=30)
        assert not w.is_alive(), f"{w.name} did not stop"
    check_writers(writers)


def all_violations(writers: list[Writer], r: redis.Redis) -> list[str]:
    return [v for w in writers for v in violations(w.log, w.wid, r)]
