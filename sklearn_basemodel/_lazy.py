"""Lazily exported names: a package's public names, imported on first use.

A package lists ``name -> submodule`` and gets the module-level ``__getattr__`` and
``__dir__`` (PEP 562) from :func:`lazy_exports`, so importing it stays cheap: ``basemodel
dbt-path`` needs neither torch nor DuckDB, validating a project file neither dbt nor torch.
"""

from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(package, exports, namespace, names):
    """``(__getattr__, __dir__)`` for a package whose names in ``exports`` load on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (the relative submodules are imported from it).
    exports : mapping of str to str
        Public name -> relative submodule that defines it, e.g. ``{"run_dbt": ".dbt"}``.
    namespace : dict
        The package's ``globals()``: a name, once loaded, is kept there.
    names : list of str
        The package's ``__all__``.

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("json", {"JSONDecoder": ".decoder"}, {}, ["JSONDecoder"])
    >>> getattr_("JSONDecoder").__name__, dir_()
    ('JSONDecoder', ['JSONDecoder'])
    """

    def __getattr__(name):
        if name in exports:
            value = getattr(import_module(exports[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
