"""Jepsen's workflow for Kiwi (and any Redis): record, break, check.

Clients run a *workload* against a *target* (an in-process cluster,
kiwi-server processes, a standalone server) while a *nemesis* injects
faults (partitions, kills, pauses, clock offsets, membership changes).
Every invoke and completion goes into a :class:`History` (JSON lines);
*checkers* then decide whether the history shows a correct system:
linearizability per key (in Rust), or the set, counter, multi-key and
list-append checkers. A violation comes with its smallest failing window,
drawn as a :class:`Timeline`.

Run a test (``python -m kiwi.testing run ...`` does the same)::

    result = kiwi.testing.run("cluster", nodes=3, workload="cas-register",
                              nemesis="partition,kill", duration=60, seed=1)
    print(result.summary())          # ops, faults, every verdict
    result.valid                     # True, False, or None (unknown)
    result                           # in Jupyter: verdicts, and the timeline if invalid

Check a history by hand::

    >>> import kiwi.testing as kt
    >>> h = kt.History([
    ...     {"process": 0, "type": "invoke", "f": "add", "value": 1},
    ...     {"process": 0, "type": "ok", "f": "add", "value": 1},
    ...     {"process": 1, "type": "invoke", "f": "add", "value": 1},
    ...     {"process": 1, "type": "info", "f": "add", "value": 1, "error": "timeout"},
    ...     {"process": 2, "type": "invoke", "f": "read", "value": None},
    ...     {"process": 2, "type": "ok", "f": "read", "value": 2},
    ... ])
    >>> v = kt.counter_checker(h)    # 1 acknowledged + 1 unknown: reading 2 is possible
    >>> v.valid, v["acknowledged"], v["unknown"]
    (True, 1, 1)
    >>> kt.History.from_jsonl(h.to_jsonl()).ops()[1].type
    'info'

In a test of your own (the ``kiwi_jepsen`` pytest fixture does this)::

    def test_register_survives_partitions(kiwi_jepsen):
        kiwi_jepsen(workload="cas-register", nemesis="partition", duration=10)
"""

from __future__ import annotations

from kiwi.testing import workloads
from kiwi.testing.checkers import (
    MODELS,
    Verdict,
    compose,
    counter_checker,
    linearizable,
    list_append_checker,
    multi_key_checker,
    set_checker,
)
from kiwi.testing.history import History, NotProposed, Op, Outcome, ProcessClient, Recorder, classify
from kiwi.testing.runner import Fault, Result, make_nemesis, make_target, run
from kiwi.testing.timeline import Timeline
from kiwi.testing.workloads import WORKLOADS, Workload


def assert_valid(result: Result) -> Result:
    """Raise ``AssertionError`` with the summary unless ``result`` is valid; return it.

    An unknown verdict fails too: a test should not pass without an answer.

    Example::

        >>> from kiwi.testing import History, Result, Verdict
        >>> r = Result("set", "none", 0, 1, 1.0, History(), {"set": Verdict("set", False, {}, "1 lost")})
        >>> assert_valid(r)
        Traceback (most recent call last):
        ...
        AssertionError: workload set, nemesis none, 1 clients, 1.0s, seed 0
        ...
    """
    if result.valid is not True:
        raise AssertionError(result.summary())
    return result


__all__ = [
    "MODELS",
    "WORKLOADS",
    "Fault",
    "History",
    "NotProposed",
    "Op",
    "Outcome",
    "ProcessClient",
    "Recorder",
    "Result",
    "Timeline",
    "Verdict",
    "Workload",
    "assert_valid",
    "classify",
    "compose",
    "counter_checker",
    "linearizable",
    "list_append_checker",
    "make_nemesis",
    "make_target",
    "multi_key_checker",
    "run",
    "set_checker",
    "workloads",
]
