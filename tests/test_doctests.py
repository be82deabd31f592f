"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import sklearn_basemodel

_MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(sklearn_basemodel.__path__, "sklearn_basemodel.")
    if ".dbt_package" not in m.name
)


@pytest.mark.parametrize("name", _MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
