"""``python -m kiwi.testing``: check a recorded history, or run a test.

::

    python -m kiwi.testing check --model cas-register [--budget 10] [--html OUT.html] HISTORY.jsonl
    python -m kiwi.testing check --workload set HISTORY.jsonl
    python -m kiwi.testing run --nodes 3 --workload cas-register --nemesis partition,kill \\
        --time 60 --seed 1 [--clients 5] [--processes | --in-process | --standalone] \\
        [--history OUT.jsonl] [--html OUT.html]

Both print a summary, then ``valid``, ``invalid`` or ``unknown`` as the last
line, and exit 0, 1 or 2 accordingly. A usage error, an unreadable history
or a failed run exits 3.

``check --model`` takes a model of the Rust checker (``register``,
``cas-register``, ``kv``, ``list-append``) or one of the other checkers
(``set``, ``counter``, ``multi-key``); ``check --workload`` runs every check
of a workload on a history that workload recorded. ``--html`` writes the
timeline of a violation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import NoReturn, Optional

from kiwi.testing import checkers
from kiwi.testing import workloads as workloads_mod
from kiwi.testing.checkers import Verdict, compose, verdict_word
from kiwi.testing.history import History

#: Exit codes.
EXIT = {True: 0, False: 1, None: 2}
EXIT_ERROR = 3
#: ``check --model`` names that are not Rust models.
OTHER_CHECKERS = {
    "set": checkers.set_checker,
    "counter": checkers.counter_checker,
    "multi-key": checkers.multi_key_checker,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 3 (2 means ``unknown`` here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    p = _Parser(prog="python -m kiwi.testing", description="Jepsen-style tests of Kiwi (and any Redis).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check a JSON-lines history")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", choices=[*checkers.MODELS, *OTHER_CHECKERS], help="the model or checker")
    what.add_argument("--workload", choices=sorted(workloads_mod.WORKLOADS), help="every check of this workload")
    c.add_argument("--budget", type=float, default=10.0, help="seconds per linearizability search (default 10)")
    c.add_argument("--html", metavar="OUT", help="write the timeline of a violation to this HTML file")
    c.add_argument("history", help="the history (JSON lines)")

    r = sub.add_parser("run", help="run a workload under a nemesis and check it")
    r.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    r.add_argument("--workload", choices=sorted(workloads_mod.WORKLOADS), default="cas-register")
    r.add_argument("--nemesis", default="none", help="comma-separated faults, e.g. partition,kill (default none)")
    r.add_argument("--time", type=float, default=60.0, help="seconds of client ops (default 60)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--clients", type=int, default=5)
    r.add_argument("--interval", type=float, default=3.0, help="seconds between faults (default 3)")
    r.add_argument("--rate", type=float, default=100.0, help="ops a second, all clients together (default 100)")
    r.add_argument("--budget", type=float, default=10.0, help="seconds per linearizability search (default 10)")
    kind = r.add_mutually_exclusive_group()
    kind.add_argument(
        "--processes",
        dest="target",
        action="store_const",
        const="processes",
        help="kiwi-server processes (the default)",
    )
    kind.add_argument(
        "--in-process", dest="target", action="store_const", const="cluster", help="an in-process kiwi.Cluster"
    )
    kind.add_argument(
        "--standalone", dest="target", action="store_const", const="standalone", help="one standalone server"
    )
    r.set_defaults(target="processes")
    r.add_argument("--history", metavar="OUT", help="save the history as JSON lines")
    r.add_argument("--html", metavar="OUT", help="write the timeline of a violation to this HTML file")
    return p


def _check(args: argparse.Namespace) -> int:
    try:
        history = History.load(args.history)
    except (OSError, ValueError) as e:
        print(f"cannot read {args.history}: {e}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.workload:
            verdicts = workloads_mod.make(args.workload).check(history, args.budget)
        elif args.model in OTHER_CHECKERS:
            v = OTHER_CHECKERS[args.model](history)
            verdicts = {v.name: v}
        else:
            v = checkers.linearizable(history, args.model, args.budget)
            verdicts = {v.name: v}
    except (ValueError, RuntimeError) as e:
        print(f"cannot check {args.history}: {e}", file=sys.stderr)
        return EXIT_ERROR
    counts = history.counts()
    print(
        f"{args.history}: {len(history)} events, {sum(counts.values())} ops "
        f"({counts['ok']} ok, {counts['fail']} fail, {counts['info']} info)"
    )
    for v in verdicts.values():
        print(v.summary())
        for line in v.text.strip().splitlines()[1:]:
            print("    " + line)
    valid = compose(verdicts.values())
    _write_timeline(args.html, verdicts.values(), history)
    print(verdict_word(valid))
    return EXIT[valid]


def _write_timeline(path: Optional[str], verdicts: Iterable[Verdict], history: History) -> None:
    if not path:
        return
    for v in verdicts:
        if v.valid is False:
            t = v.timeline(history)
            if t is not None:
                t.save(path)
                print(f"timeline of the violation: {path}")
                return


def _run(args: argparse.Namespace) -> int:
    from kiwi.testing.runner import run

    try:
        result = run(
            args.target,
            workload=args.workload,
            nemesis=None if args.nemesis in ("", "none") else args.nemesis,
            clients=args.clients,
            duration=args.time,
            seed=args.seed,
            interval=args.interval,
            history_path=args.history,
            nodes=args.nodes,
            rate=args.rate,
            budget_s=args.budget,
        )
    except Exception as e:
        print(f"the run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(result.summary())
    if args.html:
        t = result.timeline()
        if t is not None:
            t.save(args.html)
            print(f"timeline of the violation: {args.html}")
    print(result.verdict)
    return EXIT[result.valid]


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; return the exit code.

    Example::

        >>> import os, pathlib, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "h.jsonl")
        >>> _ = pathlib.Path(path).write_text(
        ...     '{"process": 0, "type": "invoke", "f": "add", "value": 1}\\n'
        ...     '{"process": 0, "type": "ok", "f": "add", "value": 1}\\n'
        ...     '{"process": 1, "type": "invoke", "f": "read", "value": null}\\n'
        ...     '{"process": 1, "type": "ok", "f": "read", "value": [1]}\\n')
        >>> main(["check", "--model", "set", path])  # doctest: +ELLIPSIS
        /...h.jsonl: 4 events, 2 ops (2 ok, 0 fail, 0 info)
        set: valid — 1 adds (1 ok, 0 failed, 0 unknown); final read has 1: 0 lost, 0 unexpected, 0 recovered
        valid
        0
    """
    args = parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
