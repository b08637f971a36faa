"""The ``>>>`` examples in the kiwi package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.kiwi_only

#: Modules whose docstrings carry runnable examples, with the least each must have.
MODULES = {
    "kiwi": 1,
    "kiwi.bulk": 10,
    "kiwi.cluster": 4,
    "kiwi.embedded": 16,
    "kiwi.server": 3,
    "kiwi._html": 3,
    "kiwi._progress": 12,
    "kiwi._resource": 3,
    "kiwi.testing.nemesis": 10,
    "kiwi.testing.processes": 3,
    "kiwi.testing.targets": 7,
    "kiwi.testing.inprocess": 2,
    "kiwi.testing.ports": 2,
    "kiwi.testing.raftinfo": 3,
    "kiwi.testing.standalone": 2,
    "kiwi.testing": 4,
    "kiwi.testing.__main__": 3,
    "kiwi.testing.checkers": 20,
    "kiwi.testing.history": 25,
    "kiwi.testing.runner": 2,
    "kiwi.testing.timeline": 8,
    "kiwi.testing.workloads": 12,
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for test in finder.find(module, name):
        runner.run(test)
        examples += len(test.examples)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) failed in {name}"
    assert examples >= MODULES[name], f"{name} has {examples} examples, expected at least {MODULES[name]}"


#: Public API whose docstring must itself carry an example (not only its module's).
WITH_OWN_EXAMPLE = [
    ("kiwi.bulk", "kiwi.bulk.execute"),
    ("kiwi.bulk", "kiwi.bulk.load"),
    ("kiwi.embedded", "kiwi.embedded.Database.execute_many"),
    ("kiwi.embedded", "kiwi.embedded.Database.load"),
    ("kiwi.testing.nemesis", "kiwi.testing.nemesis.by_name"),
    ("kiwi.testing.processes", "kiwi.testing.processes.ProcessCluster"),
    ("kiwi.testing.inprocess", "kiwi.testing.inprocess.InProcessCluster"),
    ("kiwi.testing.standalone", "kiwi.testing.standalone.Standalone"),
    ("kiwi.testing.targets", "kiwi.testing.targets.make"),
    ("kiwi.testing.runner", "kiwi.testing.runner.run"),
    ("kiwi.testing.checkers", "kiwi.testing.checkers.linearizable"),
    ("kiwi.testing.checkers", "kiwi.testing.checkers.set_checker"),
    ("kiwi.testing.checkers", "kiwi.testing.checkers.counter_checker"),
    ("kiwi.testing.checkers", "kiwi.testing.checkers.multi_key_checker"),
    ("kiwi.testing.checkers", "kiwi.testing.checkers.list_append_checker"),
    ("kiwi.testing.history", "kiwi.testing.history.Recorder"),
    ("kiwi.testing.history", "kiwi.testing.history.ProcessClient"),
    ("kiwi.testing.history", "kiwi.testing.history.classify"),
    ("kiwi.testing.timeline", "kiwi.testing.timeline.Timeline"),
    ("kiwi.testing", "kiwi.testing.assert_valid"),
]


@pytest.mark.parametrize(("module_name", "qualname"), WITH_OWN_EXAMPLE, ids=[q for _, q in WITH_OWN_EXAMPLE])
def test_public_api_has_its_own_example(module_name: str, qualname: str) -> None:
    module = importlib.import_module(module_name)
    found = {test.name: len(test.examples) for test in doctest.DocTestFinder().find(module, module_name)}
    assert found.get(qualname, 0) > 0, f"{qualname} has no >>> example in its docstring"
