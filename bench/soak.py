"""A long kiwi.testing soak: workloads and nemeses in turn against fresh
kiwi-server process clusters, every run checked; a line per run and totals.

    python bench/soak.py --minutes 30 --nodes 3 [--seed 1] [--out soak-histories/]

Each run takes one workload (cas-register, set, counter, multi-key,
list-append, in turn) under a mix of nemeses drawn from the seed, for
``--run-seconds`` of client ops; a failed or unknown verdict keeps that run's
history in ``--out`` and the script exits 1 at the end (2 if only unknowns).
The numbers go in bench/RESULTS.md and the session note.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import kiwi.testing
from kiwi.testing import workloads

NEMESES = ["partition", "isolate-leader", "ring", "bridge", "kill", "pause", "clock", "membership"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--run-seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", default="processes", choices=["processes", "cluster"])
    parser.add_argument("--out", default="soak-histories")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    names = sorted(workloads.WORKLOADS)
    deadline = time.monotonic() + args.minutes * 60
    totals = {"runs": 0, "ops": 0, "faults": 0, "valid": 0, "invalid": 0, "unknown": 0}
    n = 0
    while time.monotonic() < deadline:
        workload = names[n % len(names)]
        mix = ",".join(rng.sample(NEMESES, rng.randint(1, 3)))
        seed = rng.randrange(1 << 30)
        history = Path(args.out) / f"run{n:03d}-{workload}-{mix.replace(',', '+')}.jsonl"
        history.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = kiwi.testing.run(
            args.target,
            nodes=args.nodes,
            workload=workload,
            nemesis=mix,
            clients=args.clients,
            duration=args.run_seconds,
            interval=args.interval,
            seed=seed,
            history_path=str(history),
        )
        counts = result.counts()
        ops = sum(counts.values())
        injected = sum(1 for f in result.faults if f.action == "inject")
        verdict = {True: "valid", False: "invalid", None: "unknown"}[result.valid]
        totals["runs"] += 1
        totals["ops"] += ops
        totals["faults"] += injected
        totals[verdict] += 1
        if result.valid is True:
            history.unlink(missing_ok=True)
        print(
            f"run {n}: {workload} under {mix} seed {seed}: {verdict}, {ops} ops {counts}, "
            f"{injected} faults, {time.monotonic() - started:.0f} s",
            flush=True,
        )
        if result.valid is not True:
            print(result.summary(), flush=True)
        n += 1
    print(
        f"soak: {totals['runs']} runs, {totals['ops']} ops, {totals['faults']} faults injected, "
        f"{totals['valid']} valid, {totals['invalid']} invalid, {totals['unknown']} unknown",
        flush=True,
    )
    if totals["invalid"]:
        return 1
    return 2 if totals["unknown"] else 0


if __name__ == "__main__":
    sys.exit(main())
