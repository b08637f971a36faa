"""The runner: clients and a nemesis against a target, then the checkers.

:func:`run` follows Jepsen's workflow:

1. the workload deletes its keys (the models start from nothing);
2. ``clients`` threads, spread over the target's nodes, run the workload's
   ops for ``duration`` seconds at about ``rate`` ops a second in all,
   recording every invoke and completion in one :class:`History`;
3. meanwhile a nemesis thread calls the nemesis's ``inject`` every
   ``interval`` seconds (Kiwi's nemeses alternate a fault and its repair);
4. at the end the nemesis heals, the runner waits for the cluster to settle
   (a leader, every member caught up), and a fresh process takes the
   workload's final reads (retrying until one succeeds);
5. the workload's checkers judge the history.

The same ``seed`` gives each client the same ops and the nemesis the same
faults (how the threads interleave aside).

Targets follow the Target protocol (``kiwi/testing/targets.py``): a string
``"cluster"`` (in-process ``kiwi.Cluster``), ``"processes"`` (kiwi-server
processes) or ``"standalone"`` is made with ``nodes=`` and closed after the
run; a Target object is used as it is and left open.
"""

from __future__ import annotations

import functools
import html
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Union, runtime_checkable

from kiwi.testing import workloads as workloads_mod
from kiwi.testing.checkers import Verdict, compose, verdict_word
from kiwi.testing.history import OK, History, Op, ProcessClient, Recorder
from kiwi.testing.timeline import Timeline

#: Target kinds a string may name (``"in-process"`` is ``"cluster"``).
TARGET_KINDS = ("cluster", "processes", "standalone")


@runtime_checkable
class Target(Protocol):
    """What the runner needs of a target (the full protocol is in TESTING_API.md)."""

    nodes: int

    def client(self, node: int, **kw: Any) -> Any: ...

    def heal(self) -> None: ...

    def wait_settled(self, timeout: float) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Nemesis(Protocol):
    """What the runner needs of a nemesis (see TESTING_API.md)."""

    name: str

    def schedule(self, target: Any, rng: random.Random) -> None: ...

    def inject(self, target: Any, rng: random.Random) -> str: ...

    def heal(self, target: Any) -> None: ...


@dataclass(frozen=True)
class Fault:
    """Something the nemesis did: ``action`` is ``inject`` or ``heal``;
    ``time`` is seconds since the clients started, ``line`` the history line
    the next event got (so a timeline can mark it)."""

    time: float
    line: int
    action: str
    description: str


@dataclass
class Result:
    """What :func:`run` found.

    ``verdicts`` maps each checker's name to its
    :class:`~kiwi.testing.checkers.Verdict`; ``valid`` composes them
    (``True``, ``False`` or ``None`` for unknown). ``notes`` lists what went
    wrong around the test itself (a cluster that did not settle, a final
    read that never succeeded). ``faults`` lists what the nemesis did, when.
    """

    workload: str
    nemesis: str
    seed: int
    clients: int
    duration: float
    history: History
    verdicts: dict[str, Verdict]
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The history line where the final reads begin (every client op is before it).
    final_line: Optional[int] = None

    @property
    def valid(self) -> Optional[bool]:
        """All verdicts valid → ``True``; any invalid → ``False``; else ``None``."""
        return compose(self.verdicts.values())

    @property
    def verdict(self) -> str:
        """``"valid"``, ``"invalid"`` or ``"unknown"``."""
        return verdict_word(self.valid)

    @property
    def ops(self) -> list[Op]:
        """Every op of the history, invokes paired with completions."""
        return self.history.ops()

    def counts(self) -> dict[str, int]:
        """Ops by outcome: ``ok``, ``fail``, ``info``."""
        return self.history.counts()

    def summary(self) -> str:
        """A few lines: the run, the ops, the faults, each verdict, the verdict."""
        c = self.counts()
        lines = [
            f"workload {self.workload}, nemesis {self.nemesis}, {self.clients} clients, "
            f"{self.duration:.1f}s, seed {self.seed}",
            f"ops: {sum(c.values())} ({c['ok']} ok, {c['fail']} fail, {c['info']} info)",
        ]
        injected = [f for f in self.faults if f.action == "inject"]
        lines.append(f"faults: {len(injected)} injected")
        for f in self.faults[:20]:
            lines.append(f"  {f.time:6.1f}s line {f.line + 1}: {f.action} {f.description}")
        if len(self.faults) > 20:
            lines.append(f"  … {len(self.faults) - 20} more")
        for note in self.notes:
            lines.append(f"note: {note}")
        for v in self.verdicts.values():
            lines.append(v.summary())
            if v.valid is not True:
                lines.extend("    " + t for t in v.text.strip().splitlines()[1:12])
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)

    def timeline(self) -> Optional[Timeline]:
        """The first invalid verdict's ops as a timeline (faults marked), if any."""
        for v in self.verdicts.values():
            if v.valid is False:
                t = v.timeline(self.history)
                if t is not None:
                    t.marks = [(f.line, f"{f.action} {f.description}") for f in self.faults]
                    return t
        return None

    def _repr_html_(self) -> str:
        colour = {True: "#2e7d32", False: "#c62828", None: "#ef6c00"}[self.valid]
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td style='color:{colour_of(v.valid)}'>{v.verdict}</td>"
            f"<td><pre style='margin:0'>{html.escape(v.text)}</pre></td></tr>"
            for name, v in self.verdicts.items()
        )
        c = self.counts()
        head = (
            f"<b>kiwi.testing</b> {html.escape(self.workload)} / {html.escape(self.nemesis)}: "
            f"<b style='color:{colour}'>{self.verdict}</b> — {sum(c.values())} ops "
            f"({c['ok']} ok, {c['fail']} fail, {c['info']} info), "
            f"{sum(1 for f in self.faults if f.action == 'inject')} faults"
        )
        out = f"<div>{head}<table>{rows}</table>"
        tl = self.timeline() if self.valid is False else None
        if tl is not None:
            out += tl.to_html()
        return out + "</div>"

    def __repr__(self) -> str:
        return f"<kiwi.testing.Result {self.workload}/{self.nemesis} {self.verdict}>"


def colour_of(valid: Optional[bool]) -> str:
    """The colour a verdict is shown in."""
    return {True: "#2e7d32", False: "#c62828", None: "#ef6c00"}[valid]


# -- making targets and nemeses ------------------------------------------------


def make_target(kind: str, nodes: int = 3, **options: Any) -> Any:
    """A started Target of ``kind`` through helper C's factory (``kiwi.testing.targets``).

    ``kind`` is ``"cluster"`` (or ``"in-process"``), ``"processes"`` or
    ``"standalone"``.
    """
    kind = {"in-process": "cluster", "process": "processes"}.get(kind, kind)
    if kind not in TARGET_KINDS:
        raise ValueError(f"unknown target {kind!r} (one of {', '.join(TARGET_KINDS)})")
    from kiwi.testing import targets

    return targets.make(kind, nodes=nodes, **options)


def make_nemesis(spec: Union[str, Sequence[str]]) -> Any:
    """A Nemesis from names such as ``"partition,kill"`` (see ``kiwi.testing.nemesis``)."""
    from kiwi.testing import nemesis

    names = spec if isinstance(spec, str) else ",".join(spec)
    return nemesis.compose(names)


def _no_nemesis(spec: Any) -> bool:
    return spec is None or spec == "" or spec == "none" or spec == [] or spec == ()


# -- the run -------------------------------------------------------------------


def run(
    target: Union[str, Any] = "cluster",
    workload: Union[str, workloads_mod.Workload] = "cas-register",
    nemesis: Union[str, Sequence[str], Any, None] = None,
    clients: int = 5,
    duration: float = 10.0,
    seed: int = 0,
    interval: float = 3.0,
    history_path: Optional[str] = None,
    *,
    nodes: int = 3,
    rate: Optional[float] = 100.0,
    budget_s: float = 10.0,
    settle_timeout: float = 60.0,
    final_timeout: float = 30.0,
    workload_options: Optional[dict[str, Any]] = None,
    target_options: Optional[dict[str, Any]] = None,
) -> Result:
    """Run ``workload`` against ``target`` under ``nemesis`` and check the history.

    ``target``: a Target, or ``"cluster"`` / ``"processes"`` /
    ``"standalone"`` (made with ``nodes`` nodes, closed afterwards).
    ``workload``: a name of :data:`~kiwi.testing.workloads.WORKLOADS` (with
    ``workload_options``) or a Workload. ``nemesis``: ``None``, names such as
    ``"partition,kill"``, or a Nemesis. ``rate`` bounds the ops a second of
    all clients together (``None``: as fast as they go); ``budget_s`` bounds
    each linearizability search. ``history_path`` saves the history as JSON
    lines.

    Example: a counter against a standalone server for half a second::

        >>> import kiwi.testing
        >>> result = kiwi.testing.run("standalone", workload="counter", duration=0.5, seed=7)
        >>> result.valid, result.verdicts["counter"].verdict
        (True, 'valid')
    """
    if clients < 1:
        raise ValueError("run() needs at least one client")
    if duration < 0 or interval <= 0:
        raise ValueError("duration must be >= 0 and interval > 0")
    wl = workloads_mod.make(workload, **(workload_options or {})) if isinstance(workload, str) else workload
    nem = (
        None
        if _no_nemesis(nemesis)
        else (make_nemesis(nemesis) if isinstance(nemesis, (str, list, tuple)) else nemesis)
    )
    owned = isinstance(target, str)
    tgt = make_target(target, nodes=nodes, **(target_options or {})) if isinstance(target, str) else target
    try:
        return _Run(tgt, wl, nem, clients, duration, seed, interval, rate).go(
            history_path, budget_s, settle_timeout, final_timeout
        )
    finally:
        if owned:
            tgt.close()


class _Run:
    """One run's threads and bookkeeping (see :func:`run`)."""

    def __init__(
        self,
        target: Any,
        workload: workloads_mod.Workload,
        nemesis: Any,
        clients: int,
        duration: float,
        seed: int,
        interval: float,
        rate: Optional[float],
    ) -> None:
        self.target = target
        self.workload = workload
        self.nemesis = nemesis
        self.clients = clients
        self.duration = duration
        self.seed = seed
        self.interval = interval
        self.rate = rate
        self.recorder = Recorder()
        self.stop = threading.Event()
        self.faults: list[Fault] = []
        self.notes: list[str] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()

    # -- helpers -----------------------------------------------------------

    def connect(self, node: int) -> Any:
        return self.target.client(node, decode_responses=True)

    def fault(self, action: str, description: str) -> None:
        with self._lock:
            self.faults.append(
                Fault(time.monotonic() - self._started, len(self.recorder.history), action, str(description))
            )

    def _guard(self, work: Any, *args: Any) -> None:
        try:
            work(*args)
        except BaseException as e:  # handed to the main thread
            with self._lock:
                self.errors.append(e)
            self.stop.set()

    # -- phases ------------------------------------------------------------

    def go(self, history_path: Optional[str], budget_s: float, settle_timeout: float, final_timeout: float) -> Result:
        self.setup()
        if self.nemesis is not None:
            self.nemesis.schedule(self.target, random.Random(f"{self.seed}:nemesis"))
        self._started = time.monotonic()
        threads = [
            threading.Thread(
                target=self._guard, args=(self.client_loop, i), name=f"kiwi-testing-client-{i}", daemon=True
            )
            for i in range(self.clients)
        ]
        if self.nemesis is not None:
            threads.append(
                threading.Thread(
                    target=self._guard, args=(self.nemesis_loop,), name="kiwi-testing-nemesis", daemon=True
                )
            )
        try:
            for t in threads:
                t.start()
            self.stop.wait(self.duration)
        finally:
            self.stop.set()  # also on Ctrl-C: the threads stop after their op
        for t in threads:
            t.join(timeout=120)
        stragglers = [t.name for t in threads if t.is_alive()]
        if stragglers:
            self.notes.append(f"threads still running after the run: {', '.join(stragglers)}")
        self.heal_and_settle(settle_timeout)
        if self.errors:
            raise self.errors[0]
        final_line = len(self.recorder.history)
        self.final_reads(final_timeout)
        history = History(self.recorder.history.events)
        if history_path is not None:
            history.save(history_path)
        verdicts = self.workload.check(history, budget_s)
        return Result(
            workload=self.workload.name,
            nemesis=getattr(self.nemesis, "name", "none") if self.nemesis is not None else "none",
            seed=self.seed,
            clients=self.clients,
            duration=self.duration,
            history=history,
            verdicts=verdicts,
            faults=list(self.faults),
            notes=self.notes,
            final_line=final_line,
        )

    def setup(self) -> None:
        """The workload's clean-up, through the first node, retried for a while
        (a cluster may still be electing)."""
        deadline = time.monotonic() + 30
        while True:
            conn = self.connect(0)
            try:
                self.workload.setup(conn)
                return
            except Exception as e:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"the workload's setup failed for 30s: {e}") from e
            finally:
                conn.close()
            time.sleep(0.2)  # back off before trying again; the target is recovering

    def client_loop(self, i: int) -> None:
        rng = random.Random(f"{self.seed}:client:{i}")
        node = i % max(1, int(self.target.nodes))
        client = ProcessClient(self.recorder, lambda: self.connect(node), process=i, stride=self.clients)
        pause = self.clients / self.rate if self.rate else 0.0
        wl = self.workload
        try:
            while not self.stop.is_set():
                op = wl.next_op(rng, i)
                client.call(op.f, functools.partial(wl.apply, op=op), op.value, op.key)
                if pause:
                    self.stop.wait(rng.uniform(0, 2 * pause))
        finally:
            client.close()

    def nemesis_loop(self) -> None:
        rng = random.Random(f"{self.seed}:nemesis:faults")
        while not self.stop.wait(self.interval):
            self.fault("inject", self.nemesis.inject(self.target, rng))

    def heal_and_settle(self, timeout: float) -> None:
        if self.nemesis is not None:
            try:
                self.nemesis.heal(self.target)
                self.fault("heal", "final")
            except Exception as e:
                self.notes.append(f"the nemesis failed to heal: {type(e).__name__}: {e}")
        try:
            self.target.heal()
        except Exception as e:
            self.notes.append(f"the target failed to heal: {type(e).__name__}: {e}")
        try:
            self.target.wait_settled(timeout)
        except Exception as e:
            self.notes.append(f"the target did not settle: {type(e).__name__}: {e}")

    def final_reads(self, timeout: float) -> None:
        """Each final read, retried (by a new process, on the next node) until one is ``ok``."""
        ops = self.workload.final_ops()
        if not ops:
            return
        first = 1 + max((int(e["process"]) for e in self.recorder.history.events), default=-1)
        nodes = max(1, int(self.target.nodes))
        leader = getattr(self.target, "leader", None)
        try:
            start = leader() if callable(leader) else None
        except Exception:
            start = None
        node = [start if isinstance(start, int) else 0]
        client = ProcessClient(self.recorder, lambda: self.connect(node[0] % nodes), process=first, stride=1)
        try:
            for op in ops:
                deadline = time.monotonic() + timeout
                while True:
                    done = client.call(op.f, functools.partial(self.workload.apply, op=op), op.value, op.key)
                    if done.type == OK:
                        break
                    if time.monotonic() >= deadline:
                        self.notes.append(f"final {op.f} did not succeed within {timeout:.0f}s: {done.error}")
                        break
                    node[0] += 1  # try another node (an info already moved to a new process)
                    client.reconnect()
                    time.sleep(0.1)  # back off between attempts while the cluster recovers
        finally:
            client.close()
