"""Mark ablation by masking: which marks does one trained model rely on?

:func:`ablate_mask` replaces marks of a trained model's input by a baseline and reports the drop in
its test metric. Fast (no training), but it says what *this model* relies on, which is not what the
data allows: a model may lean on a mark that another mark could stand in for. Retraining on every
subset of marks is a study (:func:`hmviz.studies.ablate_retrain`), not an explanation, so it lives in
:mod:`hmviz.studies`.

The table has the columns of a mark-subset table (:mod:`hmviz.studies.marks`) with ``value`` (the
test metric with those marks masked), ``masked_marks`` and ``drop`` (reference - value). The names
re-exported here (:func:`smallest_within_margin`, :func:`reference_row`, ...) keep old imports working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch

from hmviz.card import ModelCard
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.explain._baselines import Baseline, make_baseline
from hmviz.studies.marks import (
    DEFAULT_MARGIN,
    mark_subsets,
    rank_desc,
    read_published_ablation,
    reference_row,
    smallest_within_margin,
    subset_name,
    value_column,
)

NONE_MASKED = "(none)"
MaskSubsets = Literal["single", "leave-one-out", "all"]
MASK_SUBSETS: tuple[str, ...] = ("single", "leave-one-out", "all")
MASK_BASELINES: tuple[str, ...] = ("train_mean", "zeros")

#: The metric reported by default, per model task (the family of its early-stopping metric).
DEFAULT_METRIC = {"binary": "test_auroc", "ranking": "test_pairwise_accuracy"}

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_METRIC",
    "MASK_BASELINES",
    "MASK_SUBSETS",
    "NONE_MASKED",
    "ablate_mask",
    "mark_subsets",
    "read_published_ablation",
    "reference_row",
    "smallest_within_margin",
    "subset_name",
    "value_column",
]


def _mask_sets(marks: tuple[str, ...], subsets) -> list[tuple[str, ...]]:
    """The sets of marks to mask, the empty set (nothing masked, the reference) first."""
    if isinstance(subsets, str):
        if subsets == "single":  # keep one mark, mask the others
            masked = [tuple(m for m in marks if m != keep) for keep in marks]
        elif subsets == "leave-one-out":  # mask one mark, keep the others
            masked = [(m,) for m in marks]
        elif subsets == "all":  # every non-empty kept subset, like retraining
            masked = [tuple(m for m in marks if m not in keep) for keep in mark_subsets(marks)]
        else:
            raise HmvizError(
                f"Unknown subsets '{subsets}'; use one of {', '.join(MASK_SUBSETS)}, or give the sets of marks to mask."
            )
    else:
        masked = []
        for group in subsets:
            group = (group,) if isinstance(group, str) else tuple(group)
            missing = [m for m in group if m not in marks]
            if missing:
                raise DataError(f"Cannot mask {', '.join(missing)}: the model uses {', '.join(marks)}.")
            masked.append(tuple(m for m in marks if m in group))
    if any(len(m) == len(marks) for m in masked):
        raise HmvizError("Masking every mark leaves the model nothing to see; keep at least one mark.")
    out: list[tuple[str, ...]] = [()]
    for m in masked:
        if m not in out:
            out.append(m)
    return out


# --------------------------------------------------------------------------- masking
def _mask_baseline(
    baseline: str | Baseline, card: ModelCard | dict, x: torch.Tensor, train_rows: np.ndarray | None
) -> Baseline:
    card = ModelCard.of(card)
    n_bins, n_marks = x.shape[1:]
    if isinstance(baseline, Baseline):
        if baseline.is_distribution or baseline.values.shape != (n_bins, n_marks):
            raise HmvizError(
                f"A masking baseline is one input shaped ({n_bins}, {n_marks}); got {baseline.values.shape}."
            )
        return baseline
    if baseline == "zeros":
        return make_baseline("zeros", transform=dict(card.transform), shape=(n_bins, n_marks))
    if baseline != "train_mean":
        raise HmvizError(f"Unknown masking baseline '{baseline}'; use one of {', '.join(MASK_BASELINES)}.")
    if train_rows is not None:
        return make_baseline("train_mean", reference_inputs=x[torch.as_tensor(train_rows)])
    scaling = card.input_transform.scaling
    if scaling == "standard":
        # Standardised per mark on the training genes: their mean of every mark is 0 in the input space.
        return Baseline(
            "train_mean",
            "per-mark mean of the model's training genes over all bins (0 after the model card's standardisation)",
            np.zeros((n_bins, n_marks), dtype=np.float32),
        )
    raise DataError(
        "This is not the model's training data and its card does not store the training genes' "
        f"mean (scaling '{scaling}'); mask with baseline 'zeros' instead, or "
        "give the training data."
    )


def ablate_mask(
    model: torch.nn.Module,
    card: ModelCard | dict,
    dataset: HistoneDataset,
    subsets: MaskSubsets | Sequence[Sequence[str]] = "single",
    baseline: str | Baseline = "train_mean",
    metric: str | None = None,
) -> pd.DataFrame:
    """Replace marks of a trained model's input by a baseline and measure the metric; no retraining.

    Args:
        model, card: a trained single-cell model and its model card (``load_model``). Never modified.
        dataset: the data to evaluate on (must hold the card's marks, by name, and its window).
        subsets: which marks to mask: ``"single"`` keeps one mark at a time (the others masked),
            ``"leave-one-out"`` masks one mark at a time, ``"all"`` keeps every non-empty subset
            (``2^m - 1`` rows, as retraining); or explicit sets of marks to mask. The row with nothing
            masked is always included (its metric is the model's own).
        baseline: what a masked mark is replaced by, in the model's input space:
            ``"train_mean"``: the per-bin, per-mark mean of the model's training genes
            (:func:`hmviz.explain.make_baseline`); when the data is not the training data, the
            per-mark training mean from the card's transform statistics (0 after standardisation).
            ``"zeros"``: no reads, i.e. the card's transform applied to 0 (not 0 itself).
            Or a :class:`~hmviz.explain.Baseline` shaped (bins, marks).
        metric: default ``test_auroc`` (binary) or ``test_pairwise_accuracy`` (rankers).

    Genes evaluated: those :func:`hmviz.evaluation.evaluate` scores (:func:`hmviz.evaluation.evaluation_set`),
    so the unmasked row equals ``evaluate``'s metric: the model's **test split** when ``dataset`` is its
    training data (same fingerprint as the card's ``data.fingerprint``; the split is rebuilt from
    the card's ``split``), otherwise the dataset's own test split when it has one, otherwise **all genes**
    of ``dataset``. ``attrs["evaluated_on"]`` says which.

    Returns:
        One row per masked set: ``marks`` (kept), ``masked_marks`` (``"(none)"`` for the reference),
        ``n_marks``, ``metric``, ``value``, ``drop`` (reference - value), ``rank``; sorted best
        first. ``attrs``: ``evaluated_on``, ``genes_evaluated``, ``baseline`` (its description).
    """
    from hmviz.evaluation import evaluation_set
    from hmviz.explain._model_view import eval_view, model_device, require_module
    from hmviz.models import get_spec

    card = ModelCard.of(card)
    spec = get_spec(card.model)
    if spec.task not in DEFAULT_METRIC:
        raise ModelError(
            f"Masking is implemented for single-cell models (binary or ranking); {spec.name} is a {spec.task} model."
        )
    if isinstance(dataset, MultiCellDataset):
        raise DataError(f"{spec.name} models one cell type; give the data of one cell.")
    model = eval_view(require_module(model))
    marks = card.marks
    mask_sets = _mask_sets(marks, subsets)
    chosen = evaluation_set(card, dataset, model_device(model))  # the genes `evaluate` scores
    x = chosen.inputs  # marks selected by name, window checked, the card's transform applied
    train_rows = chosen.train_index
    base = _mask_baseline(baseline, card, x, train_rows)
    base_values = torch.as_tensor(base.values, dtype=x.dtype)
    metric = metric or DEFAULT_METRIC[spec.task]

    rows = []
    for masked in mask_sets:
        cols = [marks.index(m) for m in masked]
        xm = x
        if cols:
            xm = x.clone()
            xm[:, :, cols] = base_values[:, cols]
        metrics = chosen.metrics(model, xm)
        if metric not in metrics:
            raise HmvizError(
                f"Unknown metric '{metric}' for this model and data; choose one of: {', '.join(sorted(metrics))}."
            )
        kept = tuple(m for m in marks if m not in masked)
        rows.append(
            {
                "marks": subset_name(kept),
                "masked_marks": subset_name(masked) if masked else NONE_MASKED,
                "n_marks": len(kept),
                "metric": metric,
                "value": float(metrics[metric]),
            }
        )
    table = pd.DataFrame(rows)
    table["drop"] = table["value"].iloc[0] - table["value"]
    table["rank"] = rank_desc(table["value"])
    table = table.sort_values(["rank", "n_marks"], ascending=[True, False], kind="stable").reset_index(drop=True)
    table.attrs.update(
        {
            "evaluated_on": chosen.evaluated_on,
            "genes_evaluated": chosen.n_genes,
            "baseline": f"{base.label} ({base.name}): {base.description}",
            "model": spec.name,
        }
    )
    return table
