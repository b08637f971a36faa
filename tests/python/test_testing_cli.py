"""``python -m kiwi.testing``: the verdict is the last line and the exit code
(0 valid, 1 invalid, 2 unknown, 3 a usage or input error)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kiwi_only


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiwi.testing", *args], capture_output=True, text=True, timeout=120)


def write(path: Path, events: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def ev(process: int, type: str, f: str, value: Any, key: Any = None) -> dict[str, Any]:
    e = {"process": process, "type": type, "f": f, "value": value}
    if key is not None:
        e["key"] = key
    return e


SET_VALID = [ev(0, "invoke", "add", 1), ev(0, "ok", "add", 1), ev(1, "invoke", "read", None), ev(1, "ok", "read", [1])]
SET_LOST = [ev(0, "invoke", "add", 1), ev(0, "ok", "add", 1), ev(1, "invoke", "read", None), ev(1, "ok", "read", [])]
SET_NO_READ = [ev(0, "invoke", "add", 1), ev(0, "ok", "add", 1)]
TORN = [
    ev(0, "invoke", "mset", {"a": 1, "b": 1}),
    ev(0, "ok", "mset", {"a": 1, "b": 1}),
    ev(1, "invoke", "mget", ["a", "b"]),
    ev(1, "ok", "mget", {"a": 1, "b": None}),
]


@pytest.mark.parametrize(
    ("events", "last", "code"),
    [(SET_VALID, "valid", 0), (SET_LOST, "invalid", 1), (SET_NO_READ, "unknown", 2)],
    ids=["valid", "invalid", "unknown"],
)
def test_check_prints_the_verdict_last_and_exits_with_it(
    tmp_path: Path, events: list[dict[str, Any]], last: str, code: int
) -> None:
    out = cli("check", "--model", "set", write(tmp_path / "h.jsonl", events))
    assert out.returncode == code, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == last
    assert lines[0].endswith("h.jsonl: 4 events, 2 ops (2 ok, 0 fail, 0 info)") or len(events) == 2


def test_check_writes_the_timeline_of_a_violation(tmp_path: Path) -> None:
    html = tmp_path / "torn.html"
    out = cli("check", "--model", "multi-key", "--html", str(html), write(tmp_path / "h.jsonl", TORN))
    assert out.returncode == 1 and out.stdout.strip().splitlines()[-1] == "invalid"
    assert "saw {'a': 1, 'b': None}" in out.stdout
    page = html.read_text()
    assert "<svg" in page and "process 1" in page and "mget" in page


def test_check_a_workload_history(tmp_path: Path) -> None:
    out = cli(
        "check",
        "--workload",
        "counter",
        write(
            tmp_path / "h.jsonl",
            [
                ev(0, "invoke", "add", 1),
                ev(0, "ok", "add", 1),
                ev(1, "invoke", "read", None),
                ev(1, "ok", "read", 3),
            ],
        ),
    )
    assert out.returncode == 1 and out.stdout.strip().splitlines()[-1] == "invalid"
    assert "read saw 3, possible 1..1" in out.stdout


def test_check_linearizability_with_the_rust_checker(tmp_path: Path) -> None:
    good = [ev(0, "invoke", "write", 1), ev(0, "ok", "write", 1), ev(1, "invoke", "read", None), ev(1, "ok", "read", 1)]
    bad = good[:3] + [ev(1, "ok", "read", 2)]
    out = cli("check", "--model", "register", "--budget", "5", write(tmp_path / "good.jsonl", good))
    assert (out.returncode, out.stdout.strip().splitlines()[-1]) == (0, "valid"), out.stderr
    html = tmp_path / "bad.html"
    out = cli("check", "--model", "register", "--html", str(html), write(tmp_path / "bad.jsonl", bad))
    assert (out.returncode, out.stdout.strip().splitlines()[-1]) == (1, "invalid"), out.stderr
    assert html.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--model", "set", "/nonexistent/h.jsonl"], "cannot read"),
        (["check", "--model", "nonsense", "h.jsonl"], "invalid choice"),
        (["check", "h.jsonl"], "one of the arguments --model --workload is required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_and_input_errors_exit_3(args: list[str], message: str) -> None:
    out = cli(*args)
    assert out.returncode == 3
    assert message in out.stderr


def test_malformed_history_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"process": 0, "type": "invoke", "f": "add", "value": 1}\nnot json\n')
    out = cli("check", "--model", "set", str(path))
    assert out.returncode == 3 and "line 2: not JSON" in out.stderr


def test_run_a_standalone_server(tmp_path: Path) -> None:
    history = tmp_path / "run.jsonl"
    out = cli("run", "--standalone", "--workload", "counter", "--time", "1", "--seed", "2", "--history", str(history))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "valid"
    assert any(line.startswith("counter: valid") for line in lines)
    assert history.exists() and len(history.read_text().splitlines()) > 10
    again = cli("check", "--workload", "counter", str(history))
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "valid"
