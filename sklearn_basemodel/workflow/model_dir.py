"""The saved model directory: everything ``predict``, ``update`` and ``explain`` need.

A model directory holds

* ``model.joblib``: the fitted models (:class:`~sklearn_basemodel.workflow.training.Models`)
  and the validated project they were fitted for;
* ``basemodel.yml``: a copy of the project file, for people;
* ``versions.json``: the library, Python and dependency versions, the fit time and the model
  version (the first 12 hex digits of the SHA-256 of ``model.joblib``);
* ``metrics.json``: what the fit measured (validation scores, which candidate each task kept,
  row counts);
* ``profiles.pkl`` and ``profiles.json``, after ``predict``: the customers' profiles as of the
  last scored cut-off, which ``update`` folds new events into.

Loading checks the library version and says when it differs.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = ["SavedModel", "load_model", "save_model", "save_profiles"]

_DEPENDENCIES = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "skorch", "dbt-core",
                 "duckdb")  # fmt: skip


def _versions():
    versions = {"sklearn-basemodel": _library_version(), "python": platform.python_version()}
    for name in _DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _library_version():
    from .. import __version__

    return __version__


@dataclass
class SavedModel:
    """A model directory, loaded."""

    directory: Path
    project: object
    models: object
    version: str
    info: dict
    metrics: dict

    def profiles(self):
        """The stored profiles and their cut-off, or (None, None) before the first predict."""
        path = self.directory / "profiles.pkl"
        if not path.is_file():
            return None, None
        state = json.loads((self.directory / "profiles.json").read_text())
        return pd.read_pickle(path), pd.Timestamp(state["as_of"])


def save_model(directory, project, models, metrics):
    """Write a model directory (replacing one there); returns the model version."""
    import joblib
    import yaml

    directory = Path(directory)
    if directory.exists():
        if not (directory / "model.joblib").is_file():
            raise FileExistsError(
                f"{directory} exists and is not a model directory; choose another --model path."
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    joblib.dump({"project": project, "models": models}, directory / "model.joblib")
    version = hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()[:12]
    (directory / "basemodel.yml").write_text(yaml.safe_dump(project.to_dict(), sort_keys=False))
    info = {"model_version": version, "fitted_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "versions": _versions()}  # fmt: skip
    (directory / "versions.json").write_text(json.dumps(info, indent=2))
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return version


def load_model(directory):
    """Read a model directory written by :func:`save_model`."""
    import joblib

    directory = Path(directory)
    path = directory / "model.joblib"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a model directory (no model.joblib); "
                                "create one with `basemodel fit`.")  # fmt: skip
    info = json.loads((directory / "versions.json").read_text())
    saved = info["versions"]["sklearn-basemodel"]
    if saved != _library_version():
        warnings.warn(f"{directory} was saved by sklearn-basemodel {saved}, this is "
                      f"{_library_version()}; refit if scores look wrong.", stacklevel=2)  # fmt: skip
    try:
        content = joblib.load(path)
    except (AttributeError, ImportError) as exc:  # a class the saving code had, renamed since
        raise ValueError(f"{directory} holds objects this sklearn-basemodel cannot read ({exc}); "
                         f"it was saved by version {saved}: refit it with `basemodel fit`.") from exc
    metrics = json.loads((directory / "metrics.json").read_text())
    return SavedModel(directory, content["project"], content["models"], info["model_version"],
                      info, metrics)  # fmt: skip


def save_profiles(model, profiles, as_of):
    """Store the profiles as of ``as_of`` in the model directory (for ``update``)."""
    profiles.to_pickle(model.directory / "profiles.pkl")
    state = {"as_of": pd.Timestamp(as_of).isoformat(), "rows": len(profiles)}
    (model.directory / "profiles.json").write_text(json.dumps(state))
