"""Every kiwi.testing workload under every nemesis, round after round, on
fresh kiwi-server process clusters: the long form of
tests/python/test_testing_matrix.py (which CI runs once, briefly).

    python bench/matrix.py --rounds 10 --nodes 3 [--seconds 4] [--out matrix-histories/]

A round runs all workload x nemesis pairs once, each on a new cluster with
its own seed. A failed or unknown verdict keeps that run's history in
``--out``; the script prints a line per run, a total, and exits 1 if any run
was invalid (2 if only unknowns). The numbers go in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import kiwi.testing
from kiwi.testing import workloads

NEMESES = ["partition", "isolate-leader", "ring", "bridge", "kill", "pause", "clock", "membership"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of client ops per run")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--out", default="matrix-histories")
    args = parser.parse_args()

    totals = {"runs": 0, "ops": 0, "faults": 0, "valid": 0, "invalid": 0, "unknown": 0}
    began = time.monotonic()
    for round_no in range(args.rounds):
        for workload in sorted(workloads.WORKLOADS):
            for nemesis in NEMESES:
                seed = 1000 * round_no + totals["runs"] % 1000
                history = Path(args.out) / f"n{args.nodes}-r{round_no}-{workload}-{nemesis}.jsonl"
                history.parent.mkdir(parents=True, exist_ok=True)
                started = time.monotonic()
                result = kiwi.testing.run(
                    "processes",
                    nodes=args.nodes,
                    workload=workload,
                    nemesis=nemesis,
                    clients=args.clients,
                    duration=args.seconds,
                    interval=args.interval,
                    seed=seed,
                    history_path=str(history),
                )
                counts = result.counts()
                injected = sum(1 for f in result.faults if f.action == "inject")
                verdict = {True: "valid", False: "invalid", None: "unknown"}[result.valid]
                totals["runs"] += 1
                totals["ops"] += sum(counts.values())
                totals["faults"] += injected
                totals[verdict] += 1
                if result.valid is True:
                    history.unlink(missing_ok=True)
                print(
                    f"round {round_no} {workload} under {nemesis} (seed {seed}, {args.nodes} nodes): {verdict}, "
                    f"{counts}, {injected} faults, {time.monotonic() - started:.0f} s",
                    flush=True,
                )
                if result.valid is not True:
                    print(result.summary(), flush=True)
    print(
        f"matrix: {args.nodes} nodes, {args.rounds} rounds, {totals['runs']} runs, {totals['ops']} ops, "
        f"{totals['faults']} faults injected, {totals['valid']} valid, {totals['invalid']} invalid, "
        f"{totals['unknown']} unknown, {time.monotonic() - began:.0f} s",
        flush=True,
    )
    if totals["invalid"]:
        return 1
    return 2 if totals["unknown"] else 0


if __name__ == "__main__":
    sys.exit(main())
