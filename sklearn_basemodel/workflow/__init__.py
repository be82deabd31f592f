"""BaseModel on your own warehouse: a project file and the commands that run it.

``config`` reads and validates ``basemodel.yml``; :func:`init_project` writes a starter one from
a DuckDB table; :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`update` and
:func:`explain` run the dbt package and the recipe on the project's warehouse (the ``basemodel``
command line calls the same functions); :func:`load_model` reads a saved model directory.
"""

from .._lazy import lazy_exports
from .config import Project, ProjectError, load_project

# Public name -> module, loaded on first use: validating a project file needs neither torch
# nor dbt.
_EXPORTS = {
    "evaluate": ".commands",
    "explain": ".commands",
    "fit": ".commands",
    "predict": ".commands",
    "update": ".commands",
    "load_model": ".model_dir",
    "guess_project": ".starter",
    "init_project": ".starter",
}

__all__ = ["Project", "ProjectError", "evaluate", "explain", "fit", "guess_project",
           "init_project", "load_model", "load_project", "predict", "update"]  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
