"""The ``>>>`` examples in the kiwi package's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.kiwi_only

#: Modules whose docstrings carry runnable examples, with the least each must have.
MODULES = {"kiwi": 1, "kiwi.cluster": 4, "kiwi.embedded": 5, "kiwi.server": 3, "kiwi._html": 3}


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
