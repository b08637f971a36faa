"""kiwi.testing's checkers on hand-made histories, valid and invalid: the set,
counter, multi-key and list-append checkers, the linearizability checker
(through its wrapper, and end to end), splitting multi-key ops per key,
composing verdicts and drawing timelines."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from kiwi import _kiwi
from kiwi.testing import checkers
from kiwi.testing.checkers import (
    Verdict,
    compose,
    counter_checker,
    linearizable,
    list_append_checker,
    multi_key_checker,
    set_checker,
    split_history,
)
from kiwi.testing.history import History, Op
from kiwi.testing.timeline import Timeline

pytestmark = pytest.mark.kiwi_only


def hist(*events: tuple[Any, ...]) -> History:
    """Events as ``(process, type, f, value[, key])``; ``type`` ``i`` means invoke."""
    out = []
    for e in events:
        process, kind, f, value = e[:4]
        event: dict[str, Any] = {"process": process, "type": "invoke" if kind == "i" else kind, "f": f, "value": value}
        if len(e) > 4:
            event["key"] = e[4]
        out.append(event)
    return History(out)


def add(p: int, x: Any, outcome: str = "ok") -> list[tuple[Any, ...]]:
    return [(p, "i", "add", x), (p, outcome, "add", x)]


def read(p: int, result: Any, f: str = "read") -> list[tuple[Any, ...]]:
    return [(p, "i", f, None), (p, "ok", f, result)]


# -- set -----------------------------------------------------------------------


def test_set_valid_with_recovered_and_absent_unknowns() -> None:
    h = hist(*add(0, 1), *add(1, 2, "info"), *add(2, 3, "info"), *add(3, 4, "fail"), *read(4, [1, 2]))
    v = set_checker(h)
    assert v.valid is True
    assert (v["lost"], v["unexpected"], v["recovered"], v["ok"]) == ([], [], [2], 1)
    assert (v["acknowledged"], v["failed"], v["unknown"]) == (1, 1, 2)


def test_set_lost_element() -> None:
    h = hist(*add(0, 1), *add(1, 2), *read(2, [2]))
    v = set_checker(h)
    assert (v.valid, v["lost"]) == (False, [1])
    assert "lost (acknowledged, missing): 1" in v.text


@pytest.mark.parametrize("why", ["never attempted", "failed"])
def test_set_unexpected_element(why: str) -> None:
    attempts = add(1, 9, "fail") if why == "failed" else []
    h = hist(*add(0, 1), *attempts, *read(2, [1, 9]))
    v = set_checker(h)
    assert (v.valid, v["unexpected"], v["lost"]) == (False, [9], [])


def test_set_add_concurrent_with_the_read_may_be_either_way() -> None:
    h = hist((0, "i", "add", 1), (1, "i", "read", None), (0, "ok", "add", 1), (1, "ok", "read", []))
    assert set_checker(h).valid is True
    h = hist((0, "i", "add", 1), (1, "i", "read", None), (0, "ok", "add", 1), (1, "ok", "read", [1]))
    assert set_checker(h).valid is True


def test_set_add_invoked_after_the_read_cannot_be_in_it() -> None:
    h = hist(*read(1, [1]), *add(0, 1))
    assert set_checker(h)["unexpected"] == [1]


def test_set_without_final_read_is_unknown() -> None:
    v = set_checker(hist(*add(0, 1), (1, "i", "read", None), (1, "info", "read", None)))
    assert v.valid is None and v.verdict == "unknown"


# -- counter -------------------------------------------------------------------


def test_counter_valid_with_unknowns() -> None:
    h = hist(*add(0, 1), *add(1, 1, "info"), *add(2, 1, "fail"), *read(3, 2), *read(4, 1))
    v = counter_checker(h)
    assert v.valid is True and (v["acknowledged"], v["unknown"], v["final"]) == (1, 1, 1)


def test_counter_too_high() -> None:
    h = hist(*add(0, 1), *add(1, 1, "fail"), *read(2, 2))
    v = counter_checker(h)
    assert v.valid is False and v["errors"][0]["bounds"] == [1, 1] and v["errors"][0]["value"] == 2


def test_counter_too_low() -> None:
    h = hist(*add(0, 1), *add(1, 1), *read(2, 1))
    v = counter_checker(h)
    assert v.valid is False and v["errors"][0]["bounds"] == [2, 2]


def test_counter_read_concurrent_with_add_may_see_it() -> None:
    h = hist((0, "i", "add", 1), (1, "i", "read", None), (1, "ok", "read", 1), (0, "ok", "add", 1), *read(1, 1))
    assert counter_checker(h).valid is True
    h = hist((0, "i", "add", 1), (1, "i", "read", None), (1, "ok", "read", 0), (0, "ok", "add", 1), *read(1, 1))
    assert counter_checker(h).valid is True


def test_counter_checks_what_incr_answered() -> None:
    # INCR's answer (the result of an ok add) is checked like a read.
    h = History(
        [
            {"process": 0, "type": "invoke", "f": "add", "value": 1},
            {"process": 0, "type": "ok", "f": "add", "value": 5},
            {"process": 1, "type": "invoke", "f": "read", "value": None},
            {"process": 1, "type": "ok", "f": "read", "value": 1},
        ]
    )
    v = counter_checker(h)
    assert v.valid is False and v["errors"][0]["value"] == 5


def test_counter_without_a_read_is_unknown_and_negative_adds_are_refused() -> None:
    assert counter_checker(hist(*add(0, 1))).valid is None
    with pytest.raises(ValueError, match="non-negative"):
        counter_checker(hist(*add(0, -1)))


# -- multi-key -----------------------------------------------------------------

A, B = "g:a", "g:b"


def mset(p: int, token: int, outcome: str = "ok", f: str = "mset") -> list[tuple[Any, ...]]:
    return [(p, "i", f, {A: token, B: token}), (p, outcome, f, {A: token, B: token})]


def mget(p: int, a: Optional[int], b: Optional[int], f: str = "mget") -> list[tuple[Any, ...]]:
    return [(p, "i", f, [A, B]), (p, "ok", f, {A: a, B: b})]


def test_multi_key_valid() -> None:
    h = hist(
        *mget(1, None, None), *mset(0, 1), *mget(1, 1, 1, "txn-get"), *mset(0, 2, "info", "txn-set"), *mget(1, 2, 2)
    )
    v = multi_key_checker(h)
    assert v.valid is True and (v["reads"], v["writes"]) == (3, 2)


@pytest.mark.parametrize(("a", "b"), [(1, None), (1, 2), (None, 2)])
def test_multi_key_torn_read(a: Optional[int], b: Optional[int]) -> None:
    h = hist(*mset(0, 1), *mset(0, 2), *mget(1, a, b))
    v = multi_key_checker(h)
    assert v.valid is False and v["torn"][0]["read"] == {A: a, B: b}
    assert len(v["ops"]) == 2  # the write and the torn read, for the timeline


def test_multi_key_unexpected_tokens() -> None:
    v = multi_key_checker(hist(*mset(0, 1, "fail"), *mget(1, 1, 1), *mget(1, 7, 7)))
    assert v.valid is False and sorted(u["token"] for u in v["unexpected"]) == [1, 7]


# -- list-append ---------------------------------------------------------------


def txn(
    p: int, micro: list[list[Any]], result: Optional[list[list[Any]]] = None, outcome: str = "ok"
) -> list[tuple[Any, ...]]:
    return [(p, "i", "txn", micro), (p, outcome, "txn", result if result is not None else micro)]


def test_list_append_valid() -> None:
    h = hist(
        *txn(0, [["append", "x", 1], ["r", "x", None]], [["append", "x", 1], ["r", "x", [1]]]),
        *txn(1, [["append", "x", 2], ["append", "y", 3]], outcome="info"),
        *txn(0, [["append", "x", 4]], outcome="fail"),
        *txn(2, [["r", "x", None], ["r", "y", None]], [["r", "x", [1, 2]], ["r", "y", []]]),
    )
    v = list_append_checker(h)
    assert v.valid is True and (v["reads"], v["appends"]) == (3, 3)


@pytest.mark.parametrize(
    ("reads", "problem"),
    [
        ([[1, 1]], "an element appears twice"),
        ([[1, 9]], "were never appended"),
        ([[1, 4]], "were failed appended"),
        ([[1, 2], [2]], "not a prefix of another read"),
        ([[2, 1]], "process 0 appended [1, 2] but the read has [2, 1]"),
    ],
)
def test_list_append_bad_reads(reads: list[list[int]], problem: str) -> None:
    events = [
        *txn(0, [["append", "x", 1]]),
        *txn(0, [["append", "x", 2]]),
        *txn(3, [["append", "x", 4]], outcome="fail"),
    ]
    for r in reads:
        events += txn(1, [["r", "x", None]], [["r", "x", r]])
    v = list_append_checker(hist(*events))
    assert v.valid is False
    assert problem in v["errors"][0]["problem"]


# -- splitting multi-key ops per key -------------------------------------------


def test_split_keeps_intervals_and_maps_back() -> None:
    h = hist(
        (0, "i", "mset", {A: 1, B: 1}),
        (1, "i", "mget", [A, B]),
        (0, "ok", "mset", {A: 1, B: 1}),
        (2, "i", "mset", {A: 2, B: 2}),
        (1, "ok", "mget", {A: 1, B: None}),
        (2, "fail", "mset", {A: 2, B: 2}),
        (3, "i", "mset", {A: 3, B: 3}),
    )
    s = split_history(h, checkers.multi_key_micro_ops)
    assert [(e["process"], e["type"], e["f"], e["key"], e["value"]) for e in s.events] == [
        (0, "invoke", "write", A, 1),
        (1, "invoke", "write", B, 1),
        (2, "invoke", "read", A, None),
        (3, "invoke", "read", B, None),
        (0, "ok", "write", A, 1),
        (1, "ok", "write", B, 1),
        (2, "ok", "read", A, 1),
        (3, "ok", "read", B, None),
        (4, "invoke", "write", A, 3),  # never completes: unknown
        (5, "invoke", "write", B, 3),
    ]
    assert s.lines == [0, 0, 1, 1, 2, 2, 4, 4, 6, 6]
    assert s.processes == {0: 0, 1: 0, 2: 1, 3: 1, 4: 3, 5: 3}
    op = History(s.events).ops()[3]  # the read of B
    back = s.remap(op)
    assert (back.process, back.invoke, back.complete, back.key) == (1, 1, 4, B)


def test_list_append_micro_ops() -> None:
    op = Op(0, "txn", None, [["append", "x", 1], ["r", "x", None]], [["append", "x", 1], ["r", "x", [1]]], "ok", 0, 1)
    assert checkers.list_append_micro_ops(op) == [("x", "append", 1, 1), ("x", "read", None, [1])]
    unknown = Op(0, "txn", None, [["append", "x", 1], ["r", "x", None]], None, "info", 0, None)
    assert checkers.list_append_micro_ops(unknown) == [("x", "append", 1, 1), ("x", "read", None, None)]


# -- the linearizability checker -------------------------------------------------

WINDOW = [
    {"process": 0, "f": "write", "key": None, "value": 1, "result": 1, "type": "ok", "invoke": 0, "complete": 1},
    {"process": 1, "f": "read", "key": None, "value": None, "result": 2, "type": "ok", "invoke": 2, "complete": 3},
]


def fake_native(calls: list[tuple[str, str, float]], valid: Optional[bool]) -> Any:
    def check_history(model: str, history: str, budget_s: float = 10.0) -> dict[str, Any]:
        calls.append((model, history, budget_s))
        return {
            "valid": valid,
            "verdict": {True: "valid", False: "invalid", None: "unknown"}[valid],
            "model": model,
            "operations": history.count('"invoke"'),
            "keys": 1,
            "elapsed_s": 0.01,
            "invalid_keys": [None] if valid is False else [],
            "unknown_keys": [None] if valid is None else [],
            "window": WINDOW if valid is False else [],
            "text": "read 2 but the register held 1" if valid is False else "",
        }

    return check_history


REGISTER_BAD = hist((0, "i", "write", 1), (0, "ok", "write", 1), (1, "i", "read", None), (1, "ok", "read", 2))


@pytest.mark.parametrize("valid", [True, False, None])
def test_linearizable_wrapper_passes_jsonl_and_maps_the_answer(
    monkeypatch: pytest.MonkeyPatch, valid: Optional[bool]
) -> None:
    calls: list[tuple[str, str, float]] = []
    monkeypatch.setattr(_kiwi, "check_history", fake_native(calls, valid), raising=False)
    v = linearizable(REGISTER_BAD, "register", budget_s=2.5)
    ((model, text, budget),) = calls
    assert (model, budget) == ("register", 2.5)
    assert [json.loads(line) for line in text.splitlines()] == REGISTER_BAD.events
    assert v.valid is valid and v.name == "linearizable register"
    assert v["operations"] == 2 and v["model"] == "register"
    if valid is False:
        assert [op.to_dict() for op in v.window] == WINDOW
        assert "read 2" in v.text
        t = v.timeline()
        assert t is not None and "read → 2" in t.to_svg()


def test_linearizable_wrapper_without_the_native_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(_kiwi, "check_history", raising=False)
    with pytest.raises(RuntimeError, match="no linearizability checker"):
        linearizable(REGISTER_BAD, "register")


def test_split_windows_come_back_in_recorded_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, float]] = []
    monkeypatch.setattr(_kiwi, "check_history", fake_native(calls, False), raising=False)
    h = hist((0, "i", "mset", {A: 1, B: 1}), (0, "ok", "mset", {A: 1, B: 1}), *mget(1, 2, 2))
    v = checkers.linearizable_split(h, "register", checkers.multi_key_micro_ops)
    # Split lines 0, 1 are the mset's invoke (recorded line 0), 2, 3 its ok
    # (line 1); split processes 0 and 1 are both the mset's process 0.
    assert [(op.process, op.invoke, op.complete) for op in v.window] == [(0, 0, 0), (0, 1, 1)]
    assert "note" in v.details


# The real checker (kiwi._kiwi.check_history, in Rust), end to end.


def test_real_checker_register_valid_and_invalid() -> None:
    good = hist((0, "i", "write", 1), (1, "i", "read", None), (0, "ok", "write", 1), (1, "ok", "read", 1))
    assert linearizable(good, "register").valid is True
    # Nothing ever wrote 2: the read alone is the failing window.
    bad = linearizable(REGISTER_BAD, "register")
    assert bad.valid is False and [(op.f, op.result) for op in bad.window] == [("read", 2)], bad
    # A stale read: the write and the read together fail.
    stale = hist((0, "i", "write", 1), (0, "ok", "write", 1), (1, "i", "read", None), (1, "ok", "read", None))
    v = linearizable(stale, "register")
    assert v.valid is False and sorted(op.f for op in v.window) == ["read", "write"], v
    assert [(op.invoke, op.complete) for op in sorted(v.window, key=lambda op: op.invoke)] == [(0, 1), (2, 3)]


def test_real_checker_cas_register_per_key() -> None:
    h = hist(
        (0, "i", "write", 1, "a"),
        (0, "ok", "write", 1, "a"),
        (1, "i", "cas", [1, 2], "a"),
        (1, "ok", "cas", [1, 2], "a"),
        (2, "i", "cas", [1, 3], "b"),
        (2, "fail", "cas", [1, 3], "b"),  # compared unequal: b is still null
        (3, "i", "read", None, "a"),
        (3, "ok", "read", 2, "a"),
    )
    assert linearizable(h, "cas-register").valid is True
    lost = hist(
        (0, "i", "write", 1, "a"), (0, "ok", "write", 1, "a"), (3, "i", "read", None, "a"), (3, "ok", "read", None, "a")
    )
    v = linearizable(lost, "cas-register")
    assert v.valid is False and v["invalid_keys"] == ["a"]


def test_real_checker_list_append_split() -> None:
    ok = hist(
        *txn(0, [["append", "x", 1], ["r", "x", None]], [["append", "x", 1], ["r", "x", [1]]]),
        *txn(1, [["r", "x", None]], [["r", "x", [1]]]),
    )
    assert checkers.linearizable_split(ok, "list-append", checkers.list_append_micro_ops).valid is True
    stale = hist(
        *txn(0, [["append", "x", 1]]),
        *txn(1, [["r", "x", None]], [["r", "x", []]]),
    )
    v = checkers.linearizable_split(stale, "list-append", checkers.list_append_micro_ops)
    assert v.valid is False and {op.process for op in v.window} == {0, 1}


# -- composing and drawing ------------------------------------------------------


def test_compose() -> None:
    T, F, U = (Verdict("t", True), Verdict("f", False), Verdict("u", None))
    assert compose([T, T]) is True
    assert compose([T, U]) is None
    assert compose([U, F, T]) is False
    assert compose([]) is True


def test_timeline_lanes_colours_and_escaping(tmp_path: Any) -> None:
    ops = [
        Op(0, "write", "k", "<script>", "<script>", "ok", 0, 3),
        Op(0, "write", "k", 2, 2, "fail", 4, 5),
        Op(7, "read", "k", None, None, "info", 1, None),
    ]
    t = Timeline(ops, title="a & b", marks=[(2, "partition [0] [1 2]")])
    svg = t.to_svg()
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "process 0" in svg and "process 7" in svg
    for colour in ("#a5d6a7", "#ef9a9a", "#ffcc80"):  # ok, fail, info
        assert colour in svg
    assert 'stroke-dasharray="4,2"' in svg, "a never-completed op is dashed"
    assert "partition [0] [1 2]" in svg and "a &amp; b" in svg
    path = tmp_path / "t.html"
    t.save(path)
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and page.count("<svg") == 1
    assert t._repr_html_() == t.to_html()


def test_timeline_overlapping_ops_of_one_process_stack() -> None:
    # Micro-ops of one transaction share the process and the interval.
    ops = [Op(0, "append", "x", 1, 1, "ok", 0, 1), Op(0, "read", "y", None, [], "ok", 0, 1)]
    rows = dict(Timeline(ops)._rows())
    assert len(rows[0]) == 2


def test_timeline_draws_the_ops_around_a_window_faintly() -> None:
    h = hist(
        (0, "i", "write", 1, "k"),
        (2, "i", "write", 9, "other"),
        (0, "ok", "write", 1, "k"),
        (3, "i", "write", 5, "k"),
        (1, "i", "read", None, "k"),
        (1, "ok", "read", None, "k"),
        (4, "i", "read", None, "k"),  # after the window: left out
    )
    window = [op for op in h.ops() if op.process in (0, 1)]
    t = Verdict("linearizable register", False, {}, "", window).timeline(h)
    assert t is not None
    # The write to another key is left out; the unknown write of k is context.
    assert [(op.process, op.f) for op in t.context] == [(3, "write")]
    svg = t.to_svg()
    assert svg.count('opacity="0.35"') == 1 and "write 5 ?" in svg
    assert "faint: other ops" in t.to_html()
