"""The Examples sections of abkit's docstrings run as written (numpydoc examples are
documentation that must not rot)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import abkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(abkit.__path__, "abkit."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures, _ = doctest.testmod(module, optionflags=flags, verbose=False)
    assert failures == 0, f"{failures} docstring example(s) of {name} failed (see above)"


def test_examples_exist():
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name))
    )
    assert examples >= 8, examples


def test_plot_docstring_names_every_kind():
    from abkit.api import AnalysisResult
    from abkit.plots import PLOT_KINDS

    doc = AnalysisResult.plot.__doc__ or ""
    assert [k for k in PLOT_KINDS if f"``{k}``" not in doc] == []
