"""kiwi.testing.run: clients, a nemesis on a seeded schedule, the final
heal, the result's views, and the ``kiwi_jepsen`` pytest fixture."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

import kiwi
import kiwi.testing
from kiwi.testing.checkers import Verdict
from kiwi.testing.history import History, Op
from kiwi.testing.runner import Fault, Result
from kiwitest import SingleServerTarget

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def target() -> Iterator[SingleServerTarget]:
    with kiwi.Server() as server:
        yield SingleServerTarget(server.port)


class RecordingNemesis:
    """A nemesis that breaks nothing and remembers what it was asked, with
    seeded descriptions (so the schedule's determinism shows)."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def schedule(self, target: Any, rng: random.Random) -> None:
        self.calls.append("schedule")

    def inject(self, target: Any, rng: random.Random) -> str:
        self.calls.append("inject")
        return f"fault {rng.randrange(1000)}"

    def heal(self, target: Any) -> None:
        self.calls.append("heal")


def per_client_ops(result: Result, clients: int) -> dict[int, list[tuple[str, Any, Any]]]:
    """Each logical client's ops in order (a client's process ids are i, i+clients...)."""
    assert result.final_line is not None
    out: dict[int, list[tuple[str, Any, Any]]] = {}
    for op in result.ops:
        if op.invoke < result.final_line:
            out.setdefault(op.process % clients, []).append((op.f, op.key, op.value))
    return out


def test_nemesis_schedule_faults_and_final_heal(target: SingleServerTarget) -> None:
    runs = []
    for _ in range(2):
        nemesis = RecordingNemesis()
        result = kiwi.testing.run(
            target, workload="counter", nemesis=nemesis, duration=1.0, interval=0.3, seed=11, clients=2
        )
        runs.append((nemesis, result))
    for nemesis, result in runs:
        assert result.valid is True, result.summary()
        injected = [f for f in result.faults if f.action == "inject"]
        assert 2 <= len(injected) <= 3, result.faults
        assert nemesis.calls[0] == "schedule" and nemesis.calls[-1] == "heal"
        assert result.faults[-1] == Fault(result.faults[-1].time, result.faults[-1].line, "heal", "final")
        lines = [f.line for f in result.faults]
        assert lines == sorted(lines) and all(0 <= line <= len(result.history) for line in lines)
        assert all(0 < f.time < 5 for f in result.faults)
        assert result.nemesis == "recording"
    a, b = ([f.description for f in r.faults if f.action == "inject"] for _, r in runs)
    n = min(len(a), len(b))
    assert a[:n] == b[:n], "same seed, same faults"


def test_same_seed_same_ops(target: SingleServerTarget) -> None:
    a, b = (kiwi.testing.run(target, workload="cas-register", duration=0.6, seed=4, clients=3) for _ in range(2))
    ca, cb = per_client_ops(a, 3), per_client_ops(b, 3)
    for client in range(3):
        n = min(len(ca[client]), len(cb[client]))
        assert n >= 10 and ca[client][:n] == cb[client][:n]
    c = kiwi.testing.run(target, workload="cas-register", duration=0.6, seed=5, clients=3)
    assert per_client_ops(c, 3)[0][:10] != ca[0][:10]


def test_history_is_saved(target: SingleServerTarget, tmp_path: Any) -> None:
    path = tmp_path / "h.jsonl"
    result = kiwi.testing.run(target, workload="set", duration=0.3, seed=1, clients=2, history_path=str(path))
    assert History.load(path).events == result.history.events


def test_a_crashing_nemesis_fails_the_run(target: SingleServerTarget) -> None:
    class Broken(RecordingNemesis):
        def inject(self, target: Any, rng: random.Random) -> str:
            raise NotImplementedError("pause is not possible in-process")

    with pytest.raises(NotImplementedError, match="pause"):
        kiwi.testing.run(target, workload="counter", nemesis=Broken(), duration=2, interval=0.1)


def test_arguments_are_checked(target: SingleServerTarget) -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        kiwi.testing.run(target, workload="bank")
    with pytest.raises(ValueError, match="at least one client"):
        kiwi.testing.run(target, clients=0)
    with pytest.raises(ValueError, match="unknown target"):
        kiwi.testing.run("mainframe")


def test_result_views() -> None:
    history = History(
        [
            {"process": 0, "type": "invoke", "f": "add", "value": 1},
            {"process": 0, "type": "ok", "f": "add", "value": 1},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 1, "type": "ok", "f": "read", "value": 5},
        ]
    )
    bad = kiwi.testing.counter_checker(history)
    result = Result(
        "counter", "partition", 3, 2, 1.0, history, {"counter": bad}, [Fault(0.5, 2, "inject", "partition [0] [1 2]")]
    )
    assert result.valid is False and result.verdict == "invalid"
    text = result.summary()
    assert text.splitlines()[-1] == "verdict: invalid"
    assert "line 3-4: read saw 5, possible 1..1" in text and "inject partition [0] [1 2]" in text
    page = result._repr_html_()
    assert "invalid" in page and "<svg" in page and "partition [0] [1 2]" in page
    good = Result("counter", "none", 3, 2, 1.0, history, {"x": Verdict("x", True)})
    assert good.valid is True and "<svg" not in good._repr_html_()
    assert kiwi.testing.assert_valid(good) is good
    with pytest.raises(AssertionError, match="verdict: invalid"):
        kiwi.testing.assert_valid(result)
    unknown = Result("counter", "none", 3, 2, 1.0, history, {"x": Verdict("x", None)})
    with pytest.raises(AssertionError, match="verdict: unknown"):
        kiwi.testing.assert_valid(unknown)


def test_result_timeline_uses_the_window() -> None:
    window = [Op(0, "write", "k", 1, 1, "ok", 0, 1), Op(1, "read", "k", None, 2, "ok", 2, 3)]
    v = Verdict("linearizable register", False, {}, "read 2", window)
    result = Result("cas-register", "none", 0, 2, 1.0, History(), {v.name: v})
    t = result.timeline()
    assert t is not None and [op.f for op in t.ops] == ["write", "read"]


FIXTURE_EXAMPLE = """
def test_counter_holds(kiwi_jepsen):
    result = kiwi_jepsen(workload="counter", duration=0.5, target="standalone", seed=2)
    assert result.valid is True
    assert result.counts()["ok"] > 10
"""


def test_kiwi_jepsen_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=FIXTURE_EXAMPLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
