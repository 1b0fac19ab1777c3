"""Summaries of a study's results table that a paper needs (pure: pandas in, pandas out).

* :func:`subset_table`: per dataset and model, the test metric per subset of marks (mean and SD over
  seeds) with the validation mean beside it -- the mark-subset table of :mod:`hmviz.studies.marks`.
* :func:`subset_summary`: per dataset, model and setting, the smallest subset within a margin of all
  marks, **chosen on validation**, with its test value reported beside it.
* :func:`cross_cell_matrix`: train cell x test cell, mean test metric over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hmviz.errors import DataError
from hmviz.studies.marks import (
    DEFAULT_MARGIN,
    rank_desc,
    reference_row,
    smallest_within_margin,
)

GROUP = ["dataset", "model", "settings"]


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    if results.empty or "status" not in results.columns:
        raise DataError("The study has no finished runs yet.")
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise DataError("Every run of the study failed; see the 'error' column of results.csv.")
    return ok


def _pick(results: pd.DataFrame, **chosen) -> pd.DataFrame:
    """Rows of one (dataset, model, settings) group; an unspecified key must have a single value."""
    for key, value in chosen.items():
        options = sorted(results[key].astype(str).unique())
        if value is None:
            if len(options) > 1:
                raise DataError(f"The results hold several {key} values ({', '.join(options)}); choose one.")
            continue
        if str(value) not in options:
            raise DataError(f"No finished run has {key} {value!r}; the results have {', '.join(options)}.")
        results = results[results[key].astype(str) == str(value)]
    return results


def subset_table(
    results: pd.DataFrame, dataset: str | None = None, model: str | None = None, settings: str | None = None
) -> pd.DataFrame:
    """The mark-subset table of one dataset, model and setting (columns: see :mod:`hmviz.studies.marks`).

    One row per subset with finished runs: ``mean``/``std`` of the test value over seeds (``ddof=1``),
    ``valid_mean`` of the validation value, ``n_runs`` and one ``seed_<k>`` column per seed; ranked by
    the test mean (``rank`` 1 = best).
    """
    rows = _pick(_ok(results), dataset=dataset, model=model, settings=settings)
    seeds = sorted(int(s) for s in rows["seed"].unique())
    out = []
    for marks, g in rows.groupby("marks", sort=False):
        test = g["test_value"].to_numpy(dtype=np.float64)
        valid = g["valid_value"].to_numpy(dtype=np.float64)
        row = {
            "marks": marks,
            "n_marks": int(g["n_marks"].iloc[0]),
            "metric": f"test_{g['metric'].iloc[0]}",
            "mean": float(np.mean(test)),
            "std": float(np.std(test, ddof=1)) if test.size > 1 else np.nan,
            "n_runs": int(test.size),
            "valid_metric": str(g["valid_metric"].iloc[0]),
            "valid_mean": float(np.nanmean(valid)) if np.isfinite(valid).any() else np.nan,
        }
        by_seed = dict(zip(g["seed"].astype(int), g["test_value"]))
        row.update({f"seed_{s}": by_seed.get(s, np.nan) for s in seeds})
        out.append(row)
    table = pd.DataFrame(out)
    table["rank"] = rank_desc(table["mean"])
    table = table.sort_values(["rank", "n_marks"], kind="stable").reset_index(drop=True)
    table.attrs.update(
        {
            "dataset": str(rows["dataset"].iloc[0]),
            "model": str(rows["model"].iloc[0]),
            "settings": str(rows["settings"].iloc[0]),
        }
    )
    return table


def subset_summary(results: pd.DataFrame, margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """Per (dataset, model, settings): all marks' validation and test means, and the smallest subset within
    ``margin`` of all marks chosen on the validation mean, with its validation and test means."""
    rows = []
    ok = _ok(results)
    for (dataset, model, settings), _ in ok.groupby(GROUP, sort=False):
        table = subset_table(ok, dataset, model, settings)
        try:
            ref = reference_row(table)
        except DataError:
            continue  # the all-marks subset is not part of (or not finished in) this study
        best = smallest_within_margin(table, margin, on="valid")
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "settings": settings,
                "metric": ref["metric"],
                "all_marks": ref["marks"],
                "all_valid": ref["valid_mean"],
                "all_test": ref["mean"],
                "margin": margin,
                "chosen_marks": best["marks"],
                "chosen_n_marks": int(best["n_marks"]),
                "chosen_valid": best["valid_mean"],
                "chosen_test": best["mean"],
                "chosen_test_std": best["std"],
                "n_seeds": int(best["n_runs"]),
            }
        )
    return pd.DataFrame(rows)


def cross_cell_matrix(
    cross: pd.DataFrame, model: str | None = None, marks: str | None = None, settings: str | None = None
) -> pd.DataFrame:
    """Mean test metric over seeds: rows = the cell a model was trained on, columns = the cell it was
    scored on (the diagonal: its own test split; elsewhere: its test genes in that cell).

    ``attrs``: ``metric``, ``std`` (a frame of the SD over seeds, same shape), ``n_seeds``.
    """
    if cross is None or cross.empty:
        raise DataError("The study has no cross-cell results; set cross_cell = true in the spec and run it.")
    rows = _pick(cross, model=model, marks=marks, settings=settings)
    grouped = rows.groupby(["train_dataset", "test_dataset"])["value"]
    order = list(dict.fromkeys(rows["train_dataset"].tolist() + rows["test_dataset"].tolist()))
    matrix = grouped.mean().unstack().reindex(index=order, columns=order)
    matrix.index.name, matrix.columns.name = "trained on", "scored on"
    std = grouped.std(ddof=1).unstack().reindex(index=order, columns=order)
    matrix.attrs.update(
        {
            "metric": str(rows["metric"].iloc[0]),
            "std": std,
            "n_seeds": int(rows["seed"].nunique()),
            "model": str(rows["model"].iloc[0]),
            "marks": str(rows["marks"].iloc[0]),
        }
    )
    return matrix
