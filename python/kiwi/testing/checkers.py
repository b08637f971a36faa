"""Checkers: does a history show a correct system?

Each checker takes a :class:`~kiwi.testing.history.History` and returns a
:class:`Verdict` whose ``valid`` is ``True`` (correct), ``False`` (a
violation, with details) or ``None`` (unknown: the search ran out of time,
or the history lacks what the checker needs, such as a final read).

* :func:`linearizable` — Wing–Gong–Lowe search in Rust
  (``kiwi._kiwi.check_history``), per key, for the models ``register``,
  ``cas-register``, ``kv`` and ``list-append``.
* :func:`set_checker` — Jepsen's set checker: every acknowledged add is in
  the final read, nothing is there that was never (or certainly not) added.
* :func:`counter_checker` — every read of a counter lies between what was
  surely added before it began and what may have been added before it ended.
* :func:`multi_key_checker` — no read sees part of a group written together.
* :func:`list_append_checker` — reads of an append-only list agree with each
  other and with the order each process appended in.

:func:`compose` folds many verdicts into one: all valid → valid, any
invalid → invalid, else unknown.

Example::

    >>> from kiwi.testing.history import History
    >>> h = History([
    ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "add", "value": 1},
    ...     {"process": 1, "type": "invoke", "f": "read", "value": None},
    ...     {"process": 1, "type": "ok", "f": "read", "value": []},
    ... ])
    >>> v = set_checker(h)
    >>> v.valid, v.details["lost"]
    (False, [1])
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from kiwi.testing.history import FAIL, INFO, INVOKE, OK, Event, History, Op

if TYPE_CHECKING:
    from kiwi.testing.timeline import Timeline

#: Models the Rust checker knows.
MODELS = ("register", "cas-register", "kv", "list-append")

HistoryLike = Union[History, Sequence[Event], str]


@dataclass
class Verdict:
    """What one checker found.

    ``valid`` is ``True``, ``False`` or ``None`` (unknown); ``details`` holds
    the checker's figures and the offending ops; ``window`` the smallest set
    of ops that cannot be linearized (for :func:`linearizable`), as
    :class:`~kiwi.testing.history.Op`\\ s; ``text`` a human explanation.
    A verdict also reads like a dict: ``v["valid"]``, ``v["lost"]``.

    Example::

        >>> v = Verdict("demo", False, {"lost": [3]}, "element 3 was lost")
        >>> v.verdict, v["valid"], v["lost"]
        ('invalid', False, [3])
    """

    name: str
    valid: Optional[bool]
    details: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    window: list[Op] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``"valid"``, ``"invalid"`` or ``"unknown"``."""
        return verdict_word(self.valid)

    def __getitem__(self, name: str) -> Any:
        if name == "valid":
            return self.valid
        if name == "verdict":
            return self.verdict
        if name == "text":
            return self.text
        if name == "window":
            return self.window
        return self.details[name]

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain data (ops as dicts)."""
        return {
            "name": self.name,
            "valid": self.valid,
            "verdict": self.verdict,
            "details": self.details,
            "text": self.text,
            "window": [op.to_dict() for op in self.window],
        }

    def timeline(self, history: Optional[History] = None) -> Optional[Timeline]:
        """A :class:`~kiwi.testing.timeline.Timeline` of the violation's ops, if any.

        With the ``history`` checked, the other ops running meanwhile are
        drawn too, faintly (on the window's key, if it has one).

        Example::

            >>> v = Verdict("demo", False, {}, "", [Op(0, "read", "k", None, 2, "info", 1, None)])
            >>> h = History([{"process": 1, "type": "invoke", "f": "write", "key": "k", "value": 1},
            ...              {"process": 0, "type": "invoke", "f": "read", "key": "k", "value": None}])
            >>> [op.f for op in v.timeline(h).context]
            ['write']
        """
        from kiwi.testing.timeline import Timeline

        ops = self.window or [op for op in self.details.get("ops", []) if isinstance(op, Op)]
        if not ops:
            return None
        context: list[Op] = []
        if history is not None:
            context = _context(history, ops)
        return Timeline(ops, title=f"{self.name}: {self.verdict}", context=context)

    def summary(self) -> str:
        """One line: name, verdict and the explanation's first line."""
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"{self.name}: {self.verdict}" + (f" — {first}" if first else "")

    def _repr_html_(self) -> str:
        colour = {True: "#2e7d32", False: "#c62828", None: "#ef6c00"}[self.valid]
        body = f"<b>{html.escape(self.name)}</b>: <span style='color:{colour}'>{self.verdict}</span>"
        if self.text:
            body += f"<pre>{html.escape(self.text)}</pre>"
        tl = self.timeline() if self.valid is False else None
        return body + (tl.to_html() if tl is not None else "")


#: At most this many ops of context around a violation's window.
CONTEXT_OPS = 60


def _context(history: History, window: Sequence[Op]) -> list[Op]:
    """Ops of ``history`` running while ``window``'s ops ran (on their key,
    if they share one), other than the window's own."""
    first = min(op.invoke for op in window)
    last = max(op.complete if op.complete is not None else op.invoke for op in window)
    keys = {op.key for op in window}
    own = {(op.process, op.invoke) for op in window}
    out = []
    for op in history.ops():
        end = op.complete if op.complete is not None else len(history)
        if op.invoke > last or end < first or (op.process, op.invoke) in own:
            continue
        if len(keys) == 1 and None not in keys and op.key not in keys:
            continue
        out.append(op)
        if len(out) >= CONTEXT_OPS:
            break
    return out


def verdict_word(valid: Optional[bool]) -> str:
    """``True``/``False``/``None`` as ``valid``/``invalid``/``unknown``.

    Example::

        >>> [verdict_word(v) for v in (True, False, None)]
        ['valid', 'invalid', 'unknown']
    """
    return {True: "valid", False: "invalid", None: "unknown"}[valid]


def compose(verdicts: Iterable[Union[Verdict, Optional[bool]]]) -> Optional[bool]:
    """All valid → ``True``; any invalid → ``False``; else ``None``.

    Example::

        >>> compose([True, True]), compose([True, None]), compose([None, False]), compose([])
        (True, None, False, True)
    """
    result: Optional[bool] = True
    for v in verdicts:
        valid = v.valid if isinstance(v, Verdict) else v
        if valid is False:
            return False
        if valid is None:
            result = None
    return result


def _history(history: HistoryLike) -> History:
    if isinstance(history, History):
        return history
    if isinstance(history, str):
        return History.from_jsonl(history)
    return History(history)


# -- linearizability (the Rust checker) ----------------------------------------


def check_history(model: str, history: str, budget_s: float = 10.0) -> dict[str, Any]:
    """The Rust linearizability checker, ``kiwi._kiwi.check_history``.

    A thin wrapper: it finds the function in the extension at call time and
    raises ``RuntimeError`` if this build of kiwi has none.
    """
    from kiwi import _kiwi

    native = getattr(_kiwi, "check_history", None)
    if native is None:
        raise RuntimeError("this build of kiwi has no linearizability checker (kiwi._kiwi.check_history)")
    result = native(model, history, budget_s)
    if not isinstance(result, dict) or "valid" not in result:
        raise RuntimeError(f"kiwi._kiwi.check_history returned {type(result).__name__}, not a verdict dict")
    return result


def linearizable(history: HistoryLike, model: str, budget_s: float = 10.0, name: Optional[str] = None) -> Verdict:
    """Check ``history`` for linearizability against ``model``, per key.

    ``model`` is one of :data:`MODELS`. The search gives up after
    ``budget_s`` seconds (``valid`` is then ``None``). On a violation,
    ``window`` holds the smallest failing set of ops of the first invalid key.

    Example (needs the Rust checker)::

        >>> from kiwi.testing.history import History
        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "write", "value": 1},
        ...     {"process": 0, "type": "ok", "f": "write", "value": 1},
        ...     {"process": 1, "type": "invoke", "f": "read", "value": None},
        ...     {"process": 1, "type": "ok", "f": "read", "value": 2},
        ... ])
        >>> linearizable(h, "register").verdict
        'invalid'
    """
    h = _history(history)
    raw = check_history(model, h.to_jsonl(), budget_s)
    return _verdict_from_native(name or f"linearizable {model}", raw)


def _verdict_from_native(
    name: str,
    raw: dict[str, Any],
    remap: Optional[Callable[[Op], Op]] = None,
) -> Verdict:
    window = [Op.from_dict(d) for d in raw.get("window") or []]
    if remap is not None:
        window = [remap(op) for op in window]
    details = {k: v for k, v in raw.items() if k not in ("valid", "verdict", "window", "text")}
    return Verdict(name, raw.get("valid"), details, str(raw.get("text") or ""), window)


@dataclass
class Split:
    """A history whose multi-key ops were split into single-key micro-ops.

    ``events`` is the new history; ``lines[i]`` is the line of the original
    event that produced line ``i``; ``processes[p]`` the original process of
    synthetic process ``p``. Every micro-op gets a process of its own, so
    micro-ops of one op (in flight together) never share one.
    """

    events: list[Event]
    lines: list[int]
    processes: dict[int, int]

    def remap(self, op: Op) -> Op:
        """An op of the split history, with the original's lines and process."""

        def line(n: Optional[int]) -> Optional[int]:
            return None if n is None or not 0 <= n < len(self.lines) else self.lines[n]

        return Op(
            process=self.processes.get(op.process, op.process),
            f=op.f,
            key=op.key,
            value=op.value,
            result=op.result,
            type=op.type,
            invoke=line(op.invoke) if op.invoke is not None else op.invoke,  # type: ignore[arg-type]
            complete=line(op.complete),
            error=op.error,
        )


#: What an op becomes: ``(key, f, invoke value, completion value)`` per micro-op.
MicroOps = list[tuple[str, str, Any, Any]]


def split_history(history: HistoryLike, micro: Callable[[Op], MicroOps]) -> Split:
    """Split every op of ``history`` into the single-key micro-ops ``micro(op)`` gives.

    Failed ops are left out (they did not happen); an ``info`` op's
    micro-ops are ``info``; a never-completed op's micro-ops never complete.
    Each micro-op keeps the op's interval: it is invoked where the op was
    invoked and completes where the op completed.

    Example::

        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "mset", "value": {"a": 1, "b": 1}},
        ...     {"process": 0, "type": "ok", "f": "mset", "value": {"a": 1, "b": 1}},
        ... ])
        >>> s = split_history(h, lambda op: [(k, "write", v, v) for k, v in op.value.items()])
        >>> [(e["process"], e["type"], e["key"]) for e in s.events], s.lines
        ([(0, 'invoke', 'a'), (1, 'invoke', 'b'), (0, 'ok', 'a'), (1, 'ok', 'b')], [0, 0, 1, 1])
    """
    h = _history(history)
    at_invoke: dict[int, list[Op]] = {}
    at_complete: dict[int, list[Op]] = {}
    for op in h.ops():
        if op.type == FAIL:
            continue
        at_invoke.setdefault(op.invoke, []).append(op)
        if op.complete is not None:
            at_complete.setdefault(op.complete, []).append(op)
    events: list[Event] = []
    lines: list[int] = []
    processes: dict[int, int] = {}
    synthetic: dict[int, list[tuple[int, str, str, Any]]] = {}  # op invoke line -> (process, key, f, result)
    for line in range(len(h)):
        for op in at_invoke.get(line, []):
            parts = []
            for key, f, value, result in micro(op):
                p = len(processes)
                processes[p] = op.process
                events.append({"process": p, "type": INVOKE, "f": f, "key": key, "value": value})
                lines.append(line)
                parts.append((p, key, f, result))
            synthetic[op.invoke] = parts
        for op in at_complete.get(line, []):
            for p, key, f, result in synthetic.get(op.invoke, []):
                e: Event = {"process": p, "type": op.type, "f": f, "key": key, "value": result}
                if op.error is not None:
                    e["error"] = op.error
                events.append(e)
                lines.append(line)
    return Split(events, lines, processes)


def linearizable_split(
    history: HistoryLike,
    model: str,
    micro: Callable[[Op], MicroOps],
    budget_s: float = 10.0,
    name: Optional[str] = None,
) -> Verdict:
    """:func:`linearizable` on the history :func:`split_history` makes; the
    window is reported with the original lines and processes."""
    split = split_history(history, micro)
    text = "".join(json.dumps(e) + "\n" for e in split.events)
    raw = check_history(model, text, budget_s)
    v = _verdict_from_native(name or f"linearizable {model} per key", raw, split.remap)
    if v.valid is False:
        v.details["note"] = (
            "the window's lines and processes are the recorded history's; the text's are of the split one"
        )
    return v


# -- sets ----------------------------------------------------------------------


def set_checker(history: HistoryLike, name: str = "set") -> Verdict:
    """Jepsen's set checker over ``add`` ops (value: the element) and a final ``read``
    (result: the elements).

    The final read is the last ``ok`` read. ``lost``: acknowledged adds that
    completed before it began but are missing. ``unexpected``: elements read
    that no add which could have happened by then put there (never
    attempted, or ``fail``). ``recovered``: ``info`` adds that are present.
    Valid when nothing is lost or unexpected; unknown without a final read.

    Example::

        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
        ...     {"process": 0, "type": "info", "f": "add", "value": 1, "error": "timeout"},
        ...     {"process": 1, "type": "invoke", "f": "read", "value": None},
        ...     {"process": 1, "type": "ok", "f": "read", "value": [1, 9]},
        ... ])
        >>> v = set_checker(h)
        >>> v.valid, v["recovered"], v["unexpected"]
        (False, [1], [9])
    """
    ops = _history(history).ops()
    reads = [op for op in ops if op.f == "read" and op.type == OK]
    adds = [op for op in ops if op.f == "add"]
    counts = {t: sum(1 for op in adds if op.type == t) for t in (OK, FAIL, INFO)}
    if not reads:
        return Verdict(name, None, {"attempts": len(adds), **counts}, "no final read")
    final = max(reads, key=lambda op: op.complete or 0)
    assert final.complete is not None
    try:
        present = set(final.result or [])
    except TypeError:
        return Verdict(name, False, {"read": final.result}, f"the final read is not a list: {final.result!r}")
    must = {op.value for op in adds if op.type == OK and op.complete is not None and op.complete < final.invoke}
    could = {op.value for op in adds if op.type in (OK, INFO) and op.invoke < final.complete}
    info = {op.value for op in adds if op.type == INFO}
    lost = sorted(must - present, key=_order)
    unexpected = sorted(present - could, key=_order)
    recovered = sorted(present & info, key=_order)
    shown = set(lost[:10]) | set(unexpected[:10])
    details = {
        "attempts": len(adds),
        "acknowledged": counts[OK],
        "failed": counts[FAIL],
        "unknown": counts[INFO],
        "read": len(present),
        "ok": len(present & must),
        "lost": lost,
        "unexpected": unexpected,
        "recovered": recovered,
        "final_read_line": final.invoke,
        # For a timeline: the adds of what was lost or unexpected, then the read.
        "ops": [op for op in adds if op.value in shown] + [final],
    }
    valid = not lost and not unexpected
    text = (
        f"{len(adds)} adds ({counts[OK]} ok, {counts[FAIL]} failed, {counts[INFO]} unknown); final read has "
        f"{len(present)}: {len(lost)} lost, {len(unexpected)} unexpected, {len(recovered)} recovered"
    )
    if lost:
        text += f"\nlost (acknowledged, missing): {_short(lost)}"
    if unexpected:
        text += f"\nunexpected (never successfully attempted): {_short(unexpected)}"
    return Verdict(name, valid, details, text)


def _order(x: Any) -> tuple[str, str]:
    return (type(x).__name__, f"{x:>20}" if isinstance(x, int) else str(x))


def _short(items: Sequence[Any], n: int = 20) -> str:
    shown = ", ".join(repr(x) for x in items[:n])
    return shown + (f", … ({len(items)} in all)" if len(items) > n else "")


# -- counters ------------------------------------------------------------------


def counter_checker(history: HistoryLike, name: str = "counter") -> Verdict:
    """Every counter value seen lies within what the adds allow.

    ``add`` ops (value: the increment, non-negative; an ``ok`` add's result,
    if an integer, is the counter just after it, as INCR answers) and
    ``read`` ops (result: the value). A value observed by an op from line
    ``i`` to line ``j`` must be at least the sum of the adds acknowledged
    before ``i`` and at most the sum of the adds invoked before ``j`` that did
    not fail. In particular the final read lies in [acknowledged,
    acknowledged + unknown].

    Example::

        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
        ...     {"process": 0, "type": "ok", "f": "add", "value": 1},
        ...     {"process": 1, "type": "invoke", "f": "read", "value": None},
        ...     {"process": 1, "type": "ok", "f": "read", "value": 2},
        ... ])
        >>> v = counter_checker(h)
        >>> v.valid, v["errors"][0]["bounds"]
        (False, [1, 1])
    """
    ops = _history(history).ops()
    adds = [op for op in ops if op.f == "add" and op.type != FAIL]
    for op in adds:
        if not isinstance(op.value, int) or op.value < 0:
            raise ValueError(f"line {op.invoke + 1}: counter adds must be non-negative integers, not {op.value!r}")
    # Prefix sums: acknowledged adds by completion line, possible adds by invoke line.
    acked = sorted((op.complete, op.value) for op in adds if op.type == OK and op.complete is not None)
    attempted = sorted((op.invoke, op.value) for op in adds)
    observations: list[tuple[Op, int, int]] = []  # (op, value, own increment)
    for op in ops:
        if op.type != OK:
            continue
        if (op.f == "read" and isinstance(op.result, int) and not isinstance(op.result, bool)) or (
            op.f == "add" and isinstance(op.result, int) and not isinstance(op.result, bool)
        ):
            observations.append((op, op.result, 0))
    errors: list[dict[str, Any]] = []
    for op, value, _ in observations:
        assert op.complete is not None
        lower = _sum_before(acked, op.invoke)
        if op.f == "add":
            lower += op.value  # its own increment is in what it answers
        upper = _sum_before(attempted, op.complete)
        if not lower <= value <= upper:
            errors.append({"op": op, "value": value, "bounds": [lower, upper]})
    reads = [op for op in ops if op.f == "read" and op.type == OK]
    final = max(reads, key=lambda op: op.complete or 0) if reads else None
    n_ok = sum(1 for op in adds if op.type == OK)
    details: dict[str, Any] = {
        "reads": len(observations),
        "acknowledged": sum(op.value for op in adds if op.type == OK),
        "unknown": sum(op.value for op in adds if op.type == INFO),
        "final": None if final is None else final.result,
        "errors": errors,
        "ops": [e["op"] for e in errors[:20]],
    }
    text = (
        f"{len(adds)} adds not failed ({n_ok} ok), {len(observations)} values observed; "
        f"acknowledged {details['acknowledged']}, unknown {details['unknown']}, final read {details['final']}"
    )
    for e in errors[:10]:
        o = e["op"]
        text += f"\nline {o.invoke + 1}-{o.complete + 1}: {o.f} saw {e['value']}, possible {e['bounds'][0]}..{e['bounds'][1]}"
    if errors:
        return Verdict(name, False, details, text)
    if final is None:
        return Verdict(name, None, details, text + "\nno final read")
    return Verdict(name, True, details, text)


def _sum_before(points: list[tuple[int, int]], line: int) -> int:
    return sum(v for at, v in points if at < line)


# -- multi-key atomicity -------------------------------------------------------

#: Op names of the multi-key workload: writes carry ``{key: token}``, reads
#: complete with ``{key: token or None}``.
MULTI_WRITES = ("mset", "txn-set")
MULTI_READS = ("mget", "txn-get")


def multi_key_checker(history: HistoryLike, name: str = "multi-key atomicity") -> Verdict:
    """No read sees part of a group of keys written together.

    Writes (``mset``/``txn-set``, value ``{key: token}``) put one token on
    every key of their group; reads (``mget``/``txn-get``) complete with
    ``{key: token or None}``. For every token a read saw, every other key
    the read covers that the token's write also wrote must show the same
    token (tokens are unique per write, and every write covers its whole
    group). A read of a token no write could have put there (never written,
    or its write failed) is reported too.

    Example::

        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "mset", "value": {"a": 1, "b": 1}},
        ...     {"process": 0, "type": "ok", "f": "mset", "value": {"a": 1, "b": 1}},
        ...     {"process": 1, "type": "invoke", "f": "mget", "value": None},
        ...     {"process": 1, "type": "ok", "f": "mget", "value": {"a": 1, "b": None}},
        ... ])
        >>> v = multi_key_checker(h)
        >>> v.valid, v["torn"][0]["read"]
        (False, {'a': 1, 'b': None})
    """
    ops = _history(history).ops()
    writes: dict[Any, Op] = {}
    for op in ops:
        if op.f in MULTI_WRITES and isinstance(op.value, dict):
            for token in set(op.value.values()):
                writes[token] = op
    torn: list[dict[str, Any]] = []
    unexpected: list[dict[str, Any]] = []
    reads = 0
    for op in ops:
        if op.f not in MULTI_READS or op.type != OK or not isinstance(op.result, dict):
            continue
        reads += 1
        seen = op.result
        for token in {t for t in seen.values() if t is not None}:
            w = writes.get(token)
            if w is None or w.type == FAIL:
                unexpected.append({"op": op, "token": token, "write": w})
                continue
            together = [k for k in seen if k in w.value]
            if any(seen[k] != token for k in together):
                torn.append({"op": op, "read": dict(seen), "token": token, "write": w})
                break
    details = {
        "reads": reads,
        "writes": len({id(w) for w in writes.values()}),
        "torn": torn,
        "unexpected": unexpected,
        "ops": [x for t in torn[:10] for x in (t["write"], t["op"])],
    }
    text = f"{reads} reads of {details['writes']} write groups: {len(torn)} torn, {len(unexpected)} unexpected tokens"
    for t in torn[:10]:
        o = t["op"]
        text += f"\nline {o.invoke + 1}: {o.f} saw {t['read']}; token {t['token']} was written to {t['write'].value}"
    for u in unexpected[:10]:
        o = u["op"]
        why = "never written" if u["write"] is None else "its write failed"
        text += f"\nline {o.invoke + 1}: {o.f} saw token {u['token']} ({why})"
    return Verdict(name, not torn and not unexpected, details, text)


# -- append-only lists ---------------------------------------------------------


def list_append_checker(history: HistoryLike, name: str = "list-append order") -> Verdict:
    """Reads of append-only lists agree with each other and with the appenders.

    Ops are ``txn`` ops whose value is a list of micro-ops
    ``["append", key, element]`` / ``["r", key, None]``; an ``ok`` txn's
    result has the reads filled in. For every key:

    * no read has an element twice, or one no non-failed txn appended;
    * every read is a prefix of the longest read (appends only ever add at
      the end, so the lists seen must agree);
    * the elements one process appended appear, in every read, as a prefix
      of what that process appended, in its order (a process's earlier,
      acknowledged appends precede its later ones).

    Example::

        >>> h = History([
        ...     {"process": 0, "type": "invoke", "f": "txn", "value": [["append", "k", 1], ["append", "k", 2]]},
        ...     {"process": 0, "type": "ok", "f": "txn", "value": [["append", "k", 1], ["append", "k", 2]]},
        ...     {"process": 1, "type": "invoke", "f": "txn", "value": [["r", "k", None]]},
        ...     {"process": 1, "type": "ok", "f": "txn", "value": [["r", "k", [2, 1]]]},
        ... ])
        >>> v = list_append_checker(h)
        >>> v.valid, v["errors"][0]["problem"]
        (False, 'process 0 appended [1, 2] but the read has [2, 1]')
    """
    ops = _history(history).ops()
    appended: dict[tuple[str, Any], tuple[Op, int]] = {}  # (key, element) -> (op, process)
    by_process: dict[tuple[int, str], list[Any]] = {}
    failed: set[tuple[str, Any]] = set()
    reads: list[tuple[Op, str, list[Any]]] = []
    for op in ops:
        if op.f != "txn" or not isinstance(op.value, list):
            continue
        for m in op.value:
            if len(m) == 3 and m[0] == "append":
                if op.type == FAIL:
                    failed.add((m[1], m[2]))
                else:
                    appended[(m[1], m[2])] = (op, op.process)
                    by_process.setdefault((op.process, m[1]), []).append(m[2])
        if op.type == OK and isinstance(op.result, list):
            for m in op.result:
                if len(m) == 3 and m[0] == "r" and isinstance(m[2], list):
                    reads.append((op, m[1], m[2]))
    errors: list[dict[str, Any]] = []

    def problem(op: Op, key: str, read: list[Any], text: str) -> None:
        errors.append({"op": op, "key": key, "read": read, "problem": text})

    longest: dict[str, list[Any]] = {}
    for _, key, read in reads:
        if key not in longest or len(read) > len(longest[key]):
            longest[key] = read
    for op, key, read in reads:
        if len(set(map(_hashable, read))) != len(read):
            problem(op, key, read, "an element appears twice")
            continue
        stray = [x for x in read if (key, x) not in appended]
        if stray:
            why = "failed" if all((key, x) in failed for x in stray) else "never"
            problem(op, key, read, f"elements {_short(stray, 5)} were {why} appended")
            continue
        if read != longest[key][: len(read)]:
            problem(op, key, read, f"not a prefix of another read of {key}: {_short(longest[key], 8)}")
            continue
        mine: dict[int, list[Any]] = {}
        for x in read:
            mine.setdefault(appended[(key, x)][1], []).append(x)
        for process, seq in mine.items():
            own = by_process.get((process, key), [])
            if seq != own[: len(seq)]:
                problem(op, key, read, f"process {process} appended {own} but the read has {seq}")
                break
    details = {
        "reads": len(reads),
        "keys": len({k for k, _ in appended} | {k for _, k, _ in reads}),
        "appends": len(appended),
        "errors": errors,
        "ops": [e["op"] for e in errors[:20]],
    }
    text = f"{len(reads)} reads of {details['keys']} keys, {len(appended)} appends: {len(errors)} bad reads"
    for e in errors[:10]:
        text += f"\nline {e['op'].invoke + 1}: read of {e['key']}: {e['problem']}"
    return Verdict(name, not errors, details, text)


def _hashable(x: Any) -> Any:
    return json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x


def list_append_micro_ops(op: Op) -> MicroOps:
    """A ``txn`` op as per-key micro-ops of the ``list-append`` model."""
    out: MicroOps = []
    results = op.result if op.type == OK and isinstance(op.result, list) else [None] * len(op.value or [])
    for m, r in zip(op.value or [], results):
        if m[0] == "append":
            out.append((m[1], "append", m[2], m[2]))
        else:
            out.append((m[1], "read", None, r[2] if isinstance(r, list) and len(r) == 3 else None))
    return out


def multi_key_micro_ops(op: Op) -> MicroOps:
    """A multi-key op as per-key micro-ops of the ``register`` model."""
    if op.f in MULTI_WRITES:
        return [(k, "write", v, v) for k, v in (op.value or {}).items()]
    if op.f in MULTI_READS:
        result = op.result if op.type == OK and isinstance(op.result, dict) else {}
        return [(k, "read", None, result.get(k)) for k in (op.value or [])]
    return []
