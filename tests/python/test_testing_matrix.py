"""Every kiwi.testing workload under every nemesis, briefly, on a fresh
three-node cluster: the history must be valid (an unknown verdict fails
too), and faults must really have been injected.

In-process clusters (``kiwi.Cluster``) serve every nemesis but ``pause`` and
``rolling-restart``, which need processes to SIGSTOP or SIGTERM; those run on
kiwi-server processes.
Each case takes about ``DURATION`` + 5 seconds (start, settle, final reads,
checks): the 40 cases take a few minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kiwi.testing
from kiwi.testing import workloads

pytestmark = pytest.mark.kiwi_only

NEMESES = ["partition", "isolate-leader", "ring", "bridge", "kill", "rolling-restart", "pause", "clock", "membership"]
#: Nemeses the in-process cluster cannot serve.
NEEDS_PROCESSES = {"pause", "rolling-restart"}
#: Seconds of client ops per case, and between faults.
DURATION = 4.0
INTERVAL = 1.0


@pytest.mark.parametrize("nemesis", NEMESES)
@pytest.mark.parametrize("workload", sorted(workloads.WORKLOADS))
def test_workload_under_nemesis(workload: str, nemesis: str, tmp_path: Path) -> None:
    target = "processes" if nemesis in NEEDS_PROCESSES else "cluster"
    history = tmp_path / f"{workload}-{nemesis}.jsonl"
    result = kiwi.testing.run(
        target,
        nodes=3,
        workload=workload,
        nemesis=nemesis,
        duration=DURATION,
        interval=INTERVAL,
        seed=1,
        clients=5,
        history_path=str(history),
    )
    assert result.valid is True, f"{result.summary()}\nhistory: {history}"
    assert any(f.action == "inject" for f in result.faults), result.summary()
    assert result.counts()["ok"] > 0, result.summary()
