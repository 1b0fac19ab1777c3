"""Subsets of marks and the mark-subset table (pure: pandas and NumPy only, no training).

Shared by the retraining ablation (a study, :mod:`hmviz.studies.ablation`), the masking ablation
(:mod:`hmviz.explain.ablation`) and the published 2025 tables (:func:`read_published_ablation`).

A mark-subset table has one row per subset of marks the model sees:

==================  ==============================================================================
``marks``           the marks used, joined by ``+`` in the dataset's order ("H3K4me3+H3K36me3")
``n_marks``         how many
``metric``          the test metric's name, e.g. ``test_auroc``
``mean``/``std``    test metric over seeds (``ddof=1``; empty for one seed) -- or ``value`` (masking)
``valid_metric``    the validation metric's name (``valid_auroc``), when the rows were trained
``valid_mean``      its mean over seeds: what :func:`smallest_within_margin` chooses on
``rank``            1 = best test value
==================  ==============================================================================
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hmviz.errors import DataError, HmvizError

SUBSET_SEP = "+"
DEFAULT_MARGIN = 0.01


def subset_name(marks: Sequence[str]) -> str:
    """``("H3K4me3", "H3K36me3") -> "H3K4me3+H3K36me3"``."""
    return SUBSET_SEP.join(marks)


def check_mark_names(marks: Sequence[str]) -> tuple[str, ...]:
    """``marks`` as a tuple of unique names that can be joined into a subset name."""
    marks = tuple(str(m) for m in marks)
    if not marks:
        raise DataError("A mark subset needs at least one mark.")
    if len(set(marks)) != len(marks):
        raise DataError(f"Mark names must be unique; got {', '.join(marks)}.")
    bad = [m for m in marks if SUBSET_SEP in m]
    if bad:
        raise DataError(f"Mark names may not contain '{SUBSET_SEP}' (it joins subset names); rename {', '.join(bad)}.")
    return marks


def mark_subsets(marks: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``marks`` (``2^m - 1``): all marks first, then smaller and smaller.

    Within a size, subsets follow :func:`itertools.combinations`, and each subset keeps the order of
    ``marks``, so names are stable for a given mark order.
    """
    marks = check_mark_names(marks)
    return [c for k in range(len(marks), 0, -1) for c in itertools.combinations(marks, k)]


def rank_desc(values: pd.Series) -> pd.Series:
    """1 = the largest value (ties share the better rank)."""
    return values.rank(ascending=False, method="min").astype("Int64")


def value_column(table: pd.DataFrame) -> str:
    """The column holding a table's test metric: ``mean`` (retraining, published) or ``value`` (masking)."""
    for col in ("mean", "value"):
        if col in table.columns:
            return col
    raise DataError("This is not an ablation table: it has neither a 'mean' nor a 'value' column.")


def selection_column(table: pd.DataFrame, on: str = "auto") -> str:
    """The column a subset is chosen on: ``valid_mean`` (``on="valid"``), the test column (``on="test"``),
    or ``auto``: validation where every row has it, else the test column (masking tables have no validation)."""
    if on not in ("auto", "valid", "test"):
        raise HmvizError(f"Choose subsets on 'valid', 'test' or 'auto'; got {on!r}.")
    has_valid = "valid_mean" in table.columns and table["valid_mean"].notna().all() and not table.empty
    if on == "valid" and not has_valid:
        raise DataError(
            "This table has no validation metric for every subset ('valid_mean'); choose on 'test' "
            "or rerun the subsets that lack it."
        )
    return "valid_mean" if on == "valid" or (on == "auto" and has_valid) else value_column(table)


def reference_row(table: pd.DataFrame) -> pd.Series:
    """The row with every mark (the most marks; for a masking table, nothing masked)."""
    if table.empty:
        raise DataError("The ablation table is empty; no subset has a finished run yet.")
    top = table[table["n_marks"] == table["n_marks"].max()]
    if len(top) != 1:
        raise DataError(
            "The ablation table has no single all-marks row to compare with; run (or finish) "
            "the subset with every mark."
        )
    return top.iloc[0]


def smallest_within_margin(table: pd.DataFrame, margin: float = DEFAULT_MARGIN, on: str = "auto") -> pd.Series:
    """The row of the smallest subset whose metric is at least (all marks' metric - ``margin``).

    The comparison uses the column :func:`selection_column` names: the **validation** mean where the
    table has one (model selection on validation; the test value is reported beside it, never used to
    choose), else the test value. ``margin`` is in the metric's units (0.01 = one point of AUROC).
    Among subsets of the same size the best (on the same column) wins. The all-marks row qualifies
    itself, so there is always an answer. The returned row carries ``chosen_on`` (the column used).
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise HmvizError(f"The margin must be a number >= 0 in the metric's units (e.g. 0.01); got {margin!r}.")
    col = selection_column(table, on)
    reference = reference_row(table)
    ok = table[table[col] >= reference[col] - margin - 1e-12]
    ok = ok.sort_values(["n_marks", col], ascending=[True, False], kind="stable")
    row = ok.iloc[0].copy()
    row["chosen_on"] = col
    return row


def read_published_ablation(path: str | Path, cell: str | None = None, model: str | None = None) -> pd.DataFrame:
    """A published mark-subset table (``../shared/data/published/pairwise_*.csv``) as a mark-subset table.

    The pairwise-ranking work reports pairwise accuracy in percent; here it becomes a fraction under
    ``metric = "test_pairwise_accuracy"``. Mark names joined by ``-`` there are joined by ``+`` here.
    ``cell`` picks the cell of a table with per-cell columns (``E066``, ``HepG2``); ``model`` the model
    of a table with a ``model`` column.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as a CSV table ({exc}).") from None
    name_col = next((c for c in ("histone_marks", "histone_marker") if c in raw.columns), None)
    if name_col is None:
        raise DataError(f"{path} has no 'histone_marks' or 'histone_marker' column; is it a published ablation table?")
    if "model" in raw.columns:
        models = sorted(raw["model"].astype(str).unique())
        if model not in models:
            raise DataError(f"{path.name} holds several models; choose one with model=: {', '.join(models)}.")
        raw = raw[raw["model"].astype(str) == model]
    cells = sorted(
        c[: -len("_test_acc")]
        for c in raw.columns
        if c.endswith("_test_acc") and f"{c[: -len('_test_acc')]}_val_acc" in raw.columns
    )
    if cells:
        if cell not in cells:
            raise DataError(f"{path.name} holds several cells; choose one with cell=: {', '.join(cells)}.")
        test, valid, std = raw[f"{cell}_test_acc"], raw[f"{cell}_val_acc"], None
    elif "test_accuracy_mean" in raw.columns:
        test, valid, std = raw["test_accuracy_mean"], raw["val_accuracy_mean"], raw["test_accuracy_std"]
    elif "test_accuracy" in raw.columns:
        test, valid, std = raw["test_accuracy"], raw.get("val_accuracy_avg"), None
    else:
        raise DataError(f"{path.name} has no test accuracy column this reader knows.")
    names = raw[name_col].astype(str).str.split("-")
    table = pd.DataFrame(
        {
            "marks": names.map(subset_name),
            "n_marks": names.map(len),
            "metric": "test_pairwise_accuracy",
            "mean": test.to_numpy(dtype=float) / 100.0,
            "std": std.to_numpy(dtype=float) / 100.0 if std is not None else np.nan,
            "n_runs": np.nan,
            "valid_metric": "valid_pairwise_accuracy",
            "valid_mean": valid.to_numpy(dtype=float) / 100.0 if valid is not None else np.nan,
        }
    )
    table["rank"] = rank_desc(table["mean"])
    table = table.sort_values(["rank", "n_marks"], kind="stable").reset_index(drop=True)
    table.attrs["source"] = (
        f"published: {path.name}" + (f" ({cell})" if cell else "") + (f" ({model})" if model else "")
    )
    return table
