"""BaseModel on your own warehouse: a project file and the commands that run it.

``config`` reads and validates ``basemodel.yml``; the commands (``basemodel init``, ``fit``,
``evaluate``, ``predict``, ``update``, ``explain``) run the dbt package and the recipe on it.
"""

from .config import Project, ProjectError, load_project

__all__ = ["Project", "ProjectError", "load_project"]
