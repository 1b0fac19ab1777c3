"""A dataset made ready for training: marks selected, split assigned, label threshold and input
transform fitted on the training genes only (:func:`_prepare`). Shared by the deep models
(:func:`hmviz.training.train`) and the scikit-learn baselines (:func:`hmviz.baselines.train_baseline`),
so both see exactly the same genes, labels and inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.splits import SplitHow, as_split_how, ensure_split, quantile_strata
from hmviz.data.targets import LabelRule
from hmviz.data.transforms import SignalTransform, as_scaling
from hmviz.errors import DataError
from hmviz.inference import _fingerprint, _select_marks
from hmviz.options import TrainOptions
from hmviz.tasks import _differential_cells


def _split_kind(dataset: HistoneDataset, split: str, chroms_given: bool = False) -> SplitHow:
    """``auto``: a chromosome hold-out when hold-out chromosomes are given, else the file's split when
    it has one, else a seeded random split by gene."""
    if split == "auto":
        return "chromosome" if chroms_given else "file" if dataset.split is not None else "random"
    if split == "file" and dataset.split is None:
        raise DataError(
            "--split file was asked for but the data has no split column; use --split random "
            "or --split chromosome, or add a 'split' column (train/valid/test)."
        )
    return as_split_how(split)


def _split(dataset: HistoneDataset, options: TrainOptions, strata, stratified_by: str | None) -> HistoneDataset:
    """``dataset`` with the split ``options`` ask for (the file's, a stratified random one, or chromosomes)."""
    chroms_given = options.valid_chroms is not None or options.test_chroms is not None
    return ensure_split(
        dataset,
        how=_split_kind(dataset, options.split, chroms_given),
        seed=options.seed,
        fractions=options.split_fractions,
        valid_chroms=options.valid_chroms,
        test_chroms=options.test_chroms,
        strata=strata,
        stratified_by=stratified_by,
    )


def _resolve_label_rule(dataset, options: TrainOptions) -> LabelRule | None:
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    if options.label_rule in (None, "file"):
        if first.labels is not None or options.label_rule == "file":
            if first.labels is None:
                raise DataError("--label file was asked for but the data has no label column.")
            return None
        if first.expression is None:
            return None
        return LabelRule.parse("median")
    if first.expression is None:
        raise DataError(
            f"The label rule '{options.label_rule}' needs expression values, but the data has none; "
            "add an expression table (--expression) or use the file's labels (--label file)."
        )
    return LabelRule.parse(options.label_rule)


@dataclass
class _Prepared:
    """A dataset made ready for one task: marks selected, split assigned, targets and transform fitted."""

    dataset: HistoneDataset | MultiCellDataset
    first: HistoneDataset  # the (first) cell, which carries the split
    rule: LabelRule | None
    threshold: float | None
    transform: SignalTransform
    fingerprint: str
    source: str


def _prepare(dataset, options: TrainOptions, spec) -> _Prepared:
    """Select marks, assign the split, fit the label threshold and the transform on training genes only."""
    fingerprint = _fingerprint(dataset)
    source = dataset.source

    if spec.task == "differential":
        if not isinstance(dataset, MultiCellDataset):
            _differential_cells(dataset, options.cells)  # raises the explanatory error
        dataset = _select_marks(dataset, options.marks, "the data", "--marks")
        a, b = _differential_cells(dataset, options.cells)
        strata, stratified_by = None, None
        if a.expression is not None and b.expression is not None:
            strata = quantile_strata(np.log2((b.expression + 1.0) / (a.expression + 1.0)))
            stratified_by = "log2 fold-change quantile"
        a = _split(a, options, strata, stratified_by)
        # One split for both cells: a gene is in the same split in every cell.
        cells = {n: dataclasses.replace(c, split=a.split, meta=dict(a.meta)) for n, c in dataset.cells.items()}
        dataset = MultiCellDataset(cells, source=source)
        first = a
        rule, threshold = None, None
    else:
        if isinstance(dataset, MultiCellDataset):
            raise DataError(
                f"{spec.name} models one cell type but the data has {len(dataset.cells)} cells "
                f"({', '.join(dataset.cell_names)}); choose one cell, or use deepdiff for the difference."
            )
        dataset = _select_marks(dataset, options.marks, "the data", "--marks")
        rule = _resolve_label_rule(dataset, options) if spec.task in ("binary", "ranking") else None
        strata, stratified_by = None, None
        if rule is None and dataset.labels is not None:
            strata, stratified_by = dataset.labels, "label"
        elif dataset.expression is not None:
            # The label threshold is fitted on the training genes after the split, so the split is
            # stratified on expression quantiles, which balances any threshold rule.
            strata, stratified_by = quantile_strata(dataset.expression), "expression quantile"
        dataset = _split(dataset, options, strata, stratified_by)
        first = dataset
        threshold = None
        if rule is not None:
            threshold = rule.fit(dataset.expression, dataset.split_indices("train"))

    train_idx = first.split_indices("train")
    if len(train_idx) == 0 or len(first.split_indices("valid")) == 0 or len(first.split_indices("test")) == 0:
        raise DataError("Every split (train, valid, test) needs at least one gene; use more genes or another split.")

    transform = SignalTransform(log1p=options.log1p, scaling=as_scaling(options.scaling))
    if spec.task == "differential":
        pair = list(dataset.cells.values())[:2]
        stacked = np.concatenate([c.signal[train_idx] for c in pair])
        transform.fit(stacked, np.arange(len(stacked)), marks=first.marks)
    else:
        transform.fit(first.signal, train_idx, marks=first.marks)

    return _Prepared(dataset, first, rule, threshold, transform, fingerprint, source)
