"""``kiwi._kiwi.check_history``: the linearizability checker behind ``kiwi.testing``.

Every verdict Porcupine publishes for its test histories is reproduced
through the binding; malformed histories raise ValueError naming the line; a
violation comes with a non-empty window its text explains.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest

from kiwi._kiwi import check_history

pytestmark = pytest.mark.kiwi_only

DATA = Path(__file__).resolve().parents[1] / "data" / "linearizability"


def verdict_rows() -> list[tuple[str, str, bool]]:
    lines = (DATA / "verdicts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = []
    for line in lines:
        if line.strip():
            file, model, linearizable = line.split("\t")
            rows.append((file, model, linearizable == "true"))
    return rows


ROWS = verdict_rows()


def test_all_shared_histories_are_listed() -> None:
    assert len(ROWS) == 74
    assert {model for _, model, _ in ROWS} == {"cas-register", "kv"}


@pytest.mark.parametrize(("file", "model", "linearizable"), ROWS, ids=[r[0] for r in ROWS])
def test_published_verdict_is_reproduced(file: str, model: str, linearizable: bool) -> None:
    history = (DATA / file).read_text(encoding="utf-8")
    result = check_history(model, history, budget_s=60.0)
    assert result["valid"] is linearizable, result["text"]
    assert result["verdict"] == ("valid" if linearizable else "invalid")
    assert result["model"] == model
    assert result["operations"] == sum('"invoke"' in line for line in history.splitlines())
    if linearizable:
        assert result["window"] == [] and result["invalid_keys"] == []
    else:
        assert result["window"], "an invalid history has a failing window"
        for op in result["window"]:
            assert f"lines {op['invoke'] + 1}-{op['complete'] + 1}" in result["text"]


def test_result_has_the_contract_shape() -> None:
    history = (DATA / "kv" / "c01-bad.jsonl").read_text(encoding="utf-8")
    result = check_history("kv", history)
    assert set(result) == {
        "valid",
        "verdict",
        "model",
        "operations",
        "keys",
        "elapsed_s",
        "invalid_keys",
        "unknown_keys",
        "window",
        "text",
    }
    assert result["invalid_keys"] == ["7"] and result["unknown_keys"] == []
    assert result["keys"] == 8 and isinstance(result["elapsed_s"], float)
    lines = history.splitlines()
    for op in result["window"]:
        assert set(op) == {"process", "f", "key", "value", "result", "type", "invoke", "complete"}
        invoke = json.loads(lines[op["invoke"]])
        complete = json.loads(lines[op["complete"]])
        assert invoke["type"] == "invoke" and complete["type"] == op["type"]
        assert (invoke["process"], invoke["f"], invoke["key"]) == (op["process"], op["f"], op["key"])
        assert invoke["value"] == op["value"] and complete["value"] == op["result"]


def events(*lines: dict[str, object]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


STALE_READ = events(
    {"process": 0, "type": "invoke", "f": "write", "value": 1},
    {"process": 0, "type": "ok", "f": "write", "value": 1},
    {"process": 1, "type": "invoke", "f": "write", "value": 2},
    {"process": 1, "type": "ok", "f": "write", "value": 2},
    {"process": 2, "type": "invoke", "f": "read", "value": None},
    {"process": 2, "type": "ok", "f": "read", "value": 1},
)


def test_a_stale_read_is_explained() -> None:
    result = check_history("cas-register", STALE_READ)
    assert result["valid"] is False and result["invalid_keys"] == [None]
    # The write of 2 and the read suffice: whether or not the write of 1
    # took effect, it did before the write of 2 completed.
    assert [(op["process"], op["f"], op["invoke"], op["complete"]) for op in result["window"]] == [
        (1, "write", 2, 3),
        (2, "read", 4, 5),
    ]
    text = result["text"]
    for needle in ("process 1: write 2 -> ok, lines 3-4", "process 2: read -> 1, lines 5-6"):
        assert needle in text, text
    # How far an order gets, the write of 1 outside the window included.
    assert "process 0: write 1 -> ok, lines 1-2 (outside the window)" in text, text


def test_fail_and_info_follow_the_contract() -> None:
    write = {"process": 0, "f": "write", "value": 2}
    read_2 = [
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": 2},
    ]
    failed = events({**write, "type": "invoke"}, {**write, "type": "fail"}, *read_2)
    assert check_history("register", failed)["verdict"] == "invalid"
    unknown = events({**write, "type": "invoke"}, {**write, "type": "info"}, *read_2)
    assert check_history("register", unknown)["verdict"] == "valid"
    cas = {"process": 0, "f": "cas", "value": [None, 2]}
    unequal = events({**cas, "type": "invoke"}, {**cas, "type": "fail"})
    assert check_history("cas-register", unequal)["verdict"] == "invalid"
    refused = events({**cas, "type": "invoke"}, {**cas, "type": "fail", "error": "CLUSTERDOWN"})
    assert check_history("cas-register", refused)["verdict"] == "valid"


@pytest.mark.parametrize(
    ("history", "line"),
    [
        (STALE_READ.replace('"read"', "read", 1), 5),
        (events({"process": 3, "type": "ok", "f": "read", "value": 1}), 1),
        (STALE_READ.replace('"value": 2}', '"value": 2.5}', 1), 3),
        (STALE_READ + '{"process": 0, "type": "invoke", "f": "pop", "value": null}\n', 7),
        (STALE_READ.replace('"type": "ok"', '"type": "done"', 1), 2),
    ],
    ids=["bad-json", "completion-without-invoke", "float-value", "unknown-operation", "unknown-type"],
)
def test_a_malformed_history_raises_naming_the_line(history: str, line: int) -> None:
    with pytest.raises(ValueError, match=rf"\bline {line}\b"):
        check_history("cas-register", history)


def test_an_infinite_budget_means_no_limit() -> None:
    assert check_history("cas-register", STALE_READ, budget_s=math.inf)["verdict"] == "invalid"


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        check_history("queue", STALE_READ)
    for budget in (-1.0, math.nan):
        with pytest.raises(ValueError, match="budget_s"):
            check_history("register", STALE_READ, budget_s=budget)
    with pytest.raises(ValueError, match="line 1"):
        check_history("kv", events({"process": 0, "type": "invoke", "f": "put", "key": "k", "value": 3}))


def hard_history(writers: int) -> str:
    """Concurrent writes, then a read of a value none wrote: deciding it means trying every subset."""
    lines = [{"process": p, "type": "invoke", "f": "write", "value": p} for p in range(writers)]
    lines += [{"process": p, "type": "ok", "f": "write", "value": p} for p in range(writers)]
    lines += [
        {"process": 0, "type": "invoke", "f": "read", "value": None},
        {"process": 0, "type": "ok", "f": "read", "value": -1},
    ]
    return events(*lines)


def test_a_tiny_budget_gives_unknown() -> None:
    result = check_history("register", hard_history(40), budget_s=0.0)
    assert result["valid"] is None and result["verdict"] == "unknown"
    assert result["unknown_keys"] == [None] and result["window"] == []


def test_the_gil_is_released_while_checking() -> None:
    done = threading.Event()

    def check() -> None:
        check_history("register", hard_history(40), budget_s=2.0)
        done.set()

    thread = threading.Thread(target=check)
    longest_pause = 0.0
    # From before the start: holding the GIL, the check could stall
    # ``start()`` itself.
    last = time.monotonic()
    thread.start()
    while not done.is_set():
        now = time.monotonic()
        longest_pause = max(longest_pause, now - last)
        last = now
    # A stall can also end the loop: count the time since its last turn.
    longest_pause = max(longest_pause, time.monotonic() - last)
    thread.join(timeout=30)
    # Holding the GIL for its two seconds, the check would stall this loop.
    assert longest_pause < 1.0
