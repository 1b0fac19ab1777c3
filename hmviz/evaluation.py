"""Scoring a saved model on data: which genes (never one it trained or validated on) and its metrics.

:func:`evaluation_genes` decides the genes from the card's record of its split; :func:`evaluation_set`
builds the task that scores them with the card's marks, transform and label rule; :func:`evaluate` loads a
saved model and returns its metrics. Mark masking (:func:`hmviz.explain.ablation.ablate_mask`) scores the
same genes.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hmviz.card import ModelCard
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.gene_sets import recorded_counts, split_of_genes
from hmviz.data.splits import as_split_how, ensure_split
from hmviz.data.targets import LabelRule
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, ModelError
from hmviz.inference import _check_window, _fingerprint, _select_marks, choose_device
from hmviz.tasks import _differential_cells, _make_task, _multi_cell, _SingleCellTask, _Task


def training_split(card: ModelCard | dict, dataset: HistoneDataset | MultiCellDataset) -> HistoneDataset | None:
    """When ``dataset`` is the data the model was trained on (same fingerprint), its first cell with the
    model's train/valid/test split; otherwise None.

    The split is read from the card's record of its genes (exact, whatever split column the data
    has or lacks). A card that predates gene records has its split rebuilt from ``card.split_record``;
    when that split was the file's and this data has no split column, it cannot be rebuilt (a new
    split would put training genes in the test split) and the answer is None.

    Use it to keep the test split for evaluation and to draw baselines from training genes only.
    """
    card = ModelCard.of(card)
    if _fingerprint(dataset) != card.fingerprint:
        return None
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    if card.genes:
        split = split_of_genes(card.genes, first.gene_ids)
        if (split == "").any():  # cannot happen for the same fingerprint, unless the card was edited
            return None
        return dataclasses.replace(first, split=split, meta={**first.meta, "split": dict(card.split)})
    meta = card.split_record
    if meta.kind == "file" and first.split is None:
        return None
    return ensure_split(
        first,
        how=as_split_how(meta.kind),
        seed=meta.seed if meta.seed is not None else card.seed,
        fractions=meta.fractions,
        valid_chroms=meta.valid_chroms,
        test_chroms=meta.test_chroms,
    )


def evaluation_genes(
    card: ModelCard | dict, dataset: HistoneDataset | MultiCellDataset
) -> tuple[np.ndarray, str, dict]:
    """Which genes of ``dataset`` a saved model is scored on: never one it was trained or validated on.

    With the card's record of its genes (:func:`hmviz.data.gene_sets.record_split`):

    * data that holds none of the model's training or validation genes is evaluated whole;
    * otherwise the genes the model did not train or validate on are evaluated: its test genes that
      are in the data, and genes it never saw; its training and validation genes are left out;
    * data that holds only training or validation genes of the model is refused (:class:`DataError`).

    A card without gene records (written before they existed) keeps the earlier rule: the card's
    split rebuilt when the data is the training data, else the data's own test split, else every gene;
    the sentence says so, and a file split that cannot be rebuilt is refused.

    Returns ``(evaluate, evaluated_on, counts)``: a boolean mask over the genes of ``dataset`` (of its
    first cell), the sentence shown next to the metrics, and the JSON-safe gene counts behind it.
    """
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    n = first.n_genes
    card = ModelCard.of(card)
    if not card.genes:
        return _evaluation_genes_without_records(card, dataset)
    model_split = split_of_genes(card.genes, first.gene_ids)
    seen = (model_split == "train") | (model_split == "valid")
    theirs, new = model_split == "test", model_split == ""
    n_test, k, u, s = recorded_counts(card.genes)["test"], int(theirs.sum()), int(new.sum()), int(seen.sum())
    counts = {
        "model_test_genes": n_test,
        "model_test_genes_in_data": k,
        "unseen_genes_in_data": u,
        "model_train_valid_genes_left_out": s,
    }
    if s == 0:
        also = f"; {k} of them are its test genes" if k else ""
        return (
            np.ones(n, dtype=bool),
            (f"all genes of this data ({n}): the model never trained or validated on any of them{also}"),
            counts,
        )
    if k + u == 0:
        raise DataError(
            f"Every gene of this data ({n}) was a training or validation gene of the model, and none of its "
            f"{n_test} test genes is here, so there is nothing it has not learned from to evaluate on. "
            "Evaluate on data that holds the model's test genes (e.g. the full table it was trained on) "
            "or genes it never saw."
        )
    if _fingerprint(dataset) == card.fingerprint:
        evaluated_on = f"test split of the training data: the model's {n_test} test genes (from its card)"
    else:
        parts = ([f"{k} of the model's {n_test} test genes"] if k else []) + (
            [f"{u} genes the model never saw"] if u else []
        )
        evaluated_on = f"{' and '.join(parts)} ({s} training/validation genes of the model in this data left out)"
    return theirs | new, evaluated_on, counts


def _evaluation_genes_without_records(card: ModelCard, dataset) -> tuple[np.ndarray, str, dict]:
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    note = "; the model card predates gene records"
    trained_on = training_split(card, dataset)
    if trained_on is not None:
        return (
            trained_on.require_split() == "test",
            f"test split of the training data (rebuilt from the card's split settings{note})",
            {},
        )
    if _fingerprint(dataset) == card.fingerprint:
        raise DataError(
            "This is the data the model was trained on, but without the split column it was trained with, and "
            "the model card predates gene records, so its test genes cannot be told apart from its training "
            "genes. Evaluate on the file with its split column, or retrain the model (new cards record their genes)."
        )
    if first.split is not None and (first.split == "test").any():
        return first.split == "test", f"test split of this data (its training genes are unknown{note})", {}
    return np.ones(first.n_genes, dtype=bool), f"all genes of this data (its training genes are unknown{note})", {}


@dataclass
class EvaluationSet:
    """The genes a saved model is scored on, and the task that scores them (see :func:`evaluation_set`).

    Attributes:
        task: the task built for the card (internal; use :attr:`inputs` and :meth:`metrics`).
        evaluated_on: which genes those are, in words (shown to users next to the metrics).
        train_index: rows of the model's training genes when the data is its training data, else None.
        gene_counts: the counts behind ``evaluated_on`` (see :func:`evaluation_genes`); empty for a card
            without gene records.
    """

    task: _Task
    evaluated_on: str
    train_index: np.ndarray | None
    gene_counts: dict = field(default_factory=dict)

    @property
    def n_genes(self) -> int:
        return len(self.task.test_idx)

    @property
    def inputs(self) -> torch.Tensor:
        """Model inputs ``(genes, bins, marks)`` for every gene of the data (single-cell models), with
        the card's marks and transform applied; the evaluated genes are a subset of these rows."""
        return self._single_cell_task().x

    def _single_cell_task(self) -> _SingleCellTask:
        if not isinstance(self.task, _SingleCellTask):
            raise ModelError("inputs are defined for single-cell models only.")
        return self.task

    def metrics(self, model: nn.Module, inputs: torch.Tensor | None = None) -> dict:
        """Every test metric of ``model`` on the evaluated genes.

        ``inputs`` (single-cell models) replaces :attr:`inputs` for this call only, e.g. with some
        marks masked; it must have the same shape. The set itself is left unchanged.
        """
        if inputs is None:
            return self.task.test_metrics(model)
        if tuple(inputs.shape) != tuple(self.inputs.shape):
            raise ModelError(f"inputs must have shape {tuple(self.inputs.shape)}, got {tuple(inputs.shape)}.")
        task = copy.copy(self._single_cell_task())
        task.x = inputs
        return task.test_metrics(model)


def evaluation_set(
    card: ModelCard | dict, dataset: HistoneDataset | MultiCellDataset, device: str | torch.device = "cpu"
) -> EvaluationSet:
    """What a saved model (its ``card``) is evaluated on in ``dataset``, with the card's marks, transform and label rule.

    Genes evaluated: :func:`evaluation_genes` (never a gene the model trained or validated on). Shared by
    :func:`evaluate` and mark masking (:func:`hmviz.explain.ablate_mask`), so both score the same genes.
    """
    from hmviz.models import get_spec

    dev = choose_device(device)
    card = ModelCard.of(card)
    spec = get_spec(card.model)
    chosen, evaluated_on, counts = evaluation_genes(card, dataset)
    split = np.full(len(chosen), "test", dtype=object)  # narrowed to the chosen genes once the task is built
    training_data = training_split(card, dataset)
    train_index = np.flatnonzero(training_data.split == "train") if training_data is not None else None
    transform = SignalTransform.from_dict(dict(card.transform))
    options = card.train_options()  # the card's seed and cells (DeepDiff) for the task
    rule = LabelRule.parse(card.label_rule) if card.label_rule not in (None, "file") else None
    if spec.task == "differential":
        multi = _multi_cell(dataset)  # raises the explanatory error for one-cell data
        _differential_cells(multi, options.cells)  # and for cells not in the data
        cells = {}
        for name, c in multi.cells.items():
            c = _select_marks(c, card.marks, f"cell {name}")
            _check_window(card, c, f"cell {name}")
            cells[name] = dataclasses.replace(c, split=split)
        ds = MultiCellDataset(cells, source=multi.source)
    else:
        if isinstance(dataset, MultiCellDataset):
            raise DataError(f"{spec.name} models one cell type; give the data of one cell.")
        ds = _select_marks(dataset, card.marks, "the data")
        _check_window(card, ds, "the data")
        ds = dataclasses.replace(ds, split=split)
        if ds.expression is None and ds.labels is None:
            raise DataError("The data has neither expression values nor labels to evaluate against.")
        if rule is not None and ds.expression is None:
            rule = None  # fall back to the file's labels
        if rule is None and ds.labels is None and spec.task == "binary":
            raise DataError(
                "The model was trained on the labels of its data file (label rule 'file': no threshold that could "
                "be applied to expression values), and this data has expression values but no labels. Add a label "
                "column (1 high, 0 low) to the data, or train a model with a label rule (e.g. --label median), "
                "whose card records the threshold to apply."
            )
    task = _make_task(ds, options, spec, dev, transform, rule, card.label_threshold)
    task.test_idx = task.test_idx[chosen[task.test_idx]]  # genes without a target are already left out
    task.train_idx = task.valid_idx = np.zeros(0, dtype=np.int64)
    if len(task.test_idx) == 0:
        raise DataError("No genes to evaluate on: the genes chosen have no expression value to compare with.")
    return EvaluationSet(task, evaluated_on, train_index, counts)


def evaluate(model_dir, dataset: HistoneDataset | MultiCellDataset, device: str = "auto") -> dict:
    """Metrics of the saved model in ``model_dir`` on ``dataset``: :func:`evaluate_model` after loading it."""
    from hmviz.checkpoints import load_model

    dev = choose_device(device)
    model, card = load_model(model_dir, device=dev)
    return evaluate_model(model, card, dataset, dev)


def evaluate_model(
    model: nn.Module,
    card: ModelCard | dict,
    dataset: HistoneDataset | MultiCellDataset,
    device: str | torch.device = "cpu",
) -> dict:
    """Metrics of ``model`` (with its ``card``) on ``dataset`` (the genes of :func:`evaluation_set`), one flat dict.

    Adds ``evaluated_on``, ``genes_evaluated``, the gene counts of :func:`evaluation_genes`
    (``model_test_genes``, ``model_test_genes_in_data``, ``unseen_genes_in_data``,
    ``model_train_valid_genes_left_out``; absent for cards without gene records) and ``model``.
    """
    card = ModelCard.of(card)
    chosen = evaluation_set(card, dataset, device)
    out = {
        k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in chosen.metrics(model).items()
    }
    out["evaluated_on"] = chosen.evaluated_on
    out["genes_evaluated"] = chosen.n_genes
    out.update(chosen.gene_counts)
    out["model"] = card.model
    return out
