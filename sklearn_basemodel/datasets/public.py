"""Loaders for public event datasets from a local folder; nothing here downloads anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._compat import StrOptions, validate_params


def _dataset_folder(path, subfolder, files, dataset):
    """The folder holding `files`: `path` itself or its `subfolder` (path = the datasets root)."""
    path = Path(path)
    for folder in (path, path / subfolder):
        if all((folder / name).is_file() for name in files):
            return folder
    raise FileNotFoundError(
        f"{dataset} files not found: expected {', '.join(files)} in '{path}' or in "
        f"'{path / subfolder}'. Pass the folder that holds them (nothing is downloaded)."
    )


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_tafeng(path):
    """Load the preprocessed Ta-Feng grocery baskets (next-basket recommendation).

    Reads ``history.json``, ``future.json`` and ``keyset_0.json`` .. ``keyset_2.json`` (the
    files of "A Next Basket Recommendation Reality Check", Li et al. 2023) and drops the ``[-1]``
    sentinel baskets that open and close every user's list.

    Parameters
    ----------
    path : str or path-like
        The folder holding the files, or a folder with a ``tafeng/`` subfolder holding them.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``history``: DataFrame, one row per history basket, in time order per user:
          ``user_id`` (int64), ``basket_index`` (int64, 0 = oldest), ``items`` (list of int).
        - ``future``: DataFrame, one row per user: ``user_id``, ``items`` (the target basket).
        - ``keysets``: list of 3 dicts ``{"train", "val", "test"}`` -> int64 arrays of user ids.
        - ``n_items``: int, the number of item ids (items are 0 .. n_items - 1).

    Raises
    ------
    FileNotFoundError
        When the files are not there.

    Examples
    --------
    >>> data = load_tafeng("../shared/datasets")  # doctest: +SKIP
    >>> len(data.history), len(data.future), len(data.keysets[0]["test"])  # doctest: +SKIP
    (77369, 13858, 2772)
    """
    keyset_files = [f"keyset_{i}.json" for i in range(3)]
    files = ["history.json", "future.json", *keyset_files]
    folder = _dataset_folder(path, "tafeng", files, "Ta-Feng")

    def baskets(name):
        users = json.loads((folder / name).read_text())
        return [(int(user), [b for b in lists if b != [-1]]) for user, lists in users.items()]

    history = [
        (user, index, basket)
        for user, user_baskets in baskets("history.json")
        for index, basket in enumerate(user_baskets)
    ]
    history = pd.DataFrame(history, columns=["user_id", "basket_index", "items"])
    future = pd.DataFrame(
        [(user, user_baskets[0]) for user, user_baskets in baskets("future.json") if user_baskets],
        columns=["user_id", "items"],
    )
    keysets = [json.loads((folder / name).read_text()) for name in keyset_files]
    return Bunch(
        history=history.sort_values(["user_id", "basket_index"], ignore_index=True),
        future=future.sort_values("user_id", ignore_index=True),
        keysets=[
            {part: np.array(ks[part], dtype=np.int64) for part in ("train", "val", "test")}
            for ks in keysets
        ],
        n_items=int(keysets[0]["item_num"]),
    )


@validate_params(
    {"path": [str, os.PathLike], "version": [StrOptions({"sample", "master"})]},
    prefer_skip_nested_validation=True,
)
def load_cdnow(path, *, version="sample"):
    """Load the CDNOW purchase records (churn / repeat-purchase prediction).

    Parameters
    ----------
    path : str or path-like
        The folder holding the file, or a folder with a ``cdnow/`` subfolder holding it.

    version : {"sample", "master"}, default="sample"
        ``"sample"`` reads ``CDNOW_sample.txt`` (2,357 customers, no header, columns
        ``customer_id customer_index yyyymmdd number_of_cds dollar_value``); ``"master"`` reads
        ``CDNOW_master.txt`` (23,570 customers, a header line, no ``customer_index``).

    Returns
    -------
    purchases : pandas.DataFrame
        One row per transaction, in file order: ``customer_id`` (int64), ``date``
        (datetime64), ``number_of_cds`` (int64), ``dollar_value`` (float64). The sample's
        ``customer_index`` (a renumbering of ``customer_id``) is dropped.

    Raises
    ------
    FileNotFoundError
        When the file is not there.

    Examples
    --------
    >>> purchases = load_cdnow("../shared/datasets")  # doctest: +SKIP
    >>> purchases.shape, purchases["customer_id"].nunique()  # doctest: +SKIP
    ((6919, 4), 2357)
    """
    name = f"CDNOW_{version}.txt"
    folder = _dataset_folder(path, "cdnow", [name], "CDNOW")
    columns = ["customer_id", "date", "number_of_cds", "dollar_value"]
    if version == "sample":
        columns.insert(1, "customer_index")
    purchases = pd.read_csv(
        folder / name,
        sep=r"\s+",
        header=None,
        skiprows=int(version == "master"),
        names=columns,
        dtype={"customer_id": "int64", "date": "str", "number_of_cds": "int64",
               "dollar_value": "float64"},  # fmt: skip
    )
    purchases["date"] = pd.to_datetime(purchases["date"], format="%Y%m%d")
    return purchases[["customer_id", "date", "number_of_cds", "dollar_value"]]


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_yoochoose(path):
    """Load the YooChoose 100k-click sample (session-based next-item prediction).

    Parameters
    ----------
    path : str or path-like
        The folder holding ``train.tsv`` and ``test.tsv`` (tab-separated, header
        ``SessionId ItemId Time`` in unix seconds), or a folder with a ``yoochoose100k/``
        subfolder holding them.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``train`` and ``test``: DataFrames of clicks in file order, columns ``session_id``
        (int64), ``item_id`` (int64), ``time`` (datetime64[us]).

    Raises
    ------
    FileNotFoundError
        When the files are not there.

    Examples
    --------
    >>> data = load_yoochoose("../shared/datasets")  # doctest: +SKIP
    >>> len(data.train), data.train["session_id"].nunique()  # doctest: +SKIP
    (70278, 17794)
    """
    folder = _dataset_folder(path, "yoochoose100k", ["train.tsv", "test.tsv"], "YooChoose")

    def clicks(name):
        types = {"SessionId": "int64", "ItemId": "int64", "Time": "float64"}
        raw = pd.read_csv(folder / name, sep="\t", dtype=types)
        micros = np.round(raw["Time"].to_numpy() * 1e6).astype(np.int64)
        return pd.DataFrame(
            {
                "session_id": raw["SessionId"].to_numpy(),
                "item_id": raw["ItemId"].to_numpy(),
                "time": micros.view("M8[us]"),
            }
        )

    return Bunch(train=clicks("train.tsv"), test=clicks("test.tsv"))
