"""The examples in the docstrings of the data layer, the datasets and plotting run as written."""

import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import neuralsde.data
import neuralsde.datasets
import neuralsde.models

matplotlib.use("Agg")


def _modules():
    names = ["neuralsde.plotting"]
    for pkg in (neuralsde.data, neuralsde.datasets, neuralsde.models):
        names += [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
