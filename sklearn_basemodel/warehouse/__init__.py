"""The warehouse side: run the ``basemodel`` dbt package, read its tables, write codes back.

* :mod:`~sklearn_basemodel.warehouse.dbt`: :func:`run_dbt` (a dbt command in-process, failures
  named in :class:`DbtRunError`), :func:`dbt_package_path`, and a minimal project that installs
  the package (:func:`write_dbt_project`, :func:`dbt_vars`, :func:`split_times`,
  :func:`run_dbt_package`).
* :mod:`~sklearn_basemodel.warehouse.tables`: :func:`read_relation` (list columns as Python
  lists), histories as sketcher-ready mappings (:func:`read_histories`,
  :func:`history_rows`), SQL sketches as a matrix (:func:`sketch_matrix`) and
  :func:`write_entity_codes`.
* :mod:`~sklearn_basemodel.warehouse.connections`: DuckDB connections and quoted identifiers.
"""

from .._lazy import lazy_exports

# Public name -> module, loaded on first use: `basemodel dbt-path` needs only dbt.py, not
# DuckDB or Arrow (the [dbt] extra).
_EXPORTS = {
    "DbtRunError": ".dbt",
    "dbt_package_path": ".dbt",
    "dbt_vars": ".dbt",
    "node_counts": ".dbt",
    "run_dbt": ".dbt",
    "run_dbt_package": ".dbt",
    "split_times": ".dbt",
    "write_dbt_project": ".dbt",
    "history_rows": ".tables",
    "read_histories": ".tables",
    "read_relation": ".tables",
    "sketch_matrix": ".tables",
    "write_entity_codes": ".tables",
    "Warehouse": ".store",
    "read_dbt_profile": ".store",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
