"""A trained model and a dataset made ready for explanations: the glue the CLI and the app share.

:func:`prepare` checks that a model fits a dataset (one cell or two, marks by name, window) and
builds the model's inputs; the :class:`ExplainSession` it returns then answers, for genes named by id
or symbol:

* :meth:`ExplainSession.baseline`: a baseline by name, drawn from the model's **training genes**
  (rebuilt from the model card when the data is the training data; see :func:`reference_genes`);
* :meth:`ExplainSession.explain_pair`: why the model ranks gene A above gene B (or, for a two-cell
  model such as DeepDiff, why it predicts a gene's change between the two cells);
* :meth:`ExplainSession.explain_genes`: attributions for one gene or a set;
* :meth:`ExplainSession.scores` and :meth:`ExplainSession.evaluation_rows`, which
  :func:`suggest_pairs` turns into pairs worth a look (confidently ranked, surprisingly ranked, close
  call).

Example::

    session = prepare(model, card, dataset)
    pair = session.explain_pair("SIMG1", "SIMG2", "integrated_gradients", "train_mean")
    pair.explanation.probability, pair.explanation.sentence
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from hmviz.card import ModelCard
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.explain._baselines import DEFAULT_BASELINE, Baseline, make_baseline
from hmviz.explain._methods import METHODS, check_method, output_unit
from hmviz.explain._regions import PROMOTER_DOWNSTREAM_BP, PROMOTER_UPSTREAM_BP
from hmviz.explain.attributions import Attribution, explain
from hmviz.explain.pairs import PairExplanation, explain_pair

#: Pairs drawn at random by :func:`suggest_pairs` before picking the most telling ones.
SUGGESTION_PAIRS = 20_000
#: Measured expressions must differ by at least this much on the log1p scale (about 2.7-fold) for a
#: suggested pair to have a clear right answer.
CLEAR_DIFFERENCE = 1.0

SUGGESTION_KINDS: dict[str, str] = {
    "confident": "confidently ranked: the model is sure and the measured expression agrees",
    "surprising": "surprisingly ranked: the model is sure, but the measured expression says the opposite",
    "close": "close call: the model barely separates two genes whose expression differs clearly",
}


def reference_genes(card: ModelCard | dict, dataset: HistoneDataset) -> tuple[np.ndarray, str]:
    """Rows of the reference genes for baselines (the model's training genes when ``dataset`` is its
    training data, else the data's own training split, else every gene) and how they were chosen."""
    from hmviz.evaluation import training_split

    trained_on = training_split(card, dataset)
    if trained_on is not None:
        return trained_on.split_indices("train"), "the model's training genes"
    if dataset.split is not None and (dataset.split == "train").any():
        return dataset.split_indices("train"), "the training split of the data"
    return np.arange(dataset.n_genes), f"all {dataset.n_genes} genes of the data (it has no training split)"


def display_name(dataset: HistoneDataset, row: int) -> str:
    """The symbol of the gene in ``row`` when it has one, else its id."""
    gene_id = str(dataset.gene_ids[row])
    symbol = str(dataset.symbols[row]) if dataset.symbols is not None else ""
    return symbol if symbol and symbol not in ("nan", "None", gene_id) else gene_id


@dataclass
class PairResult:
    """An explained pair: the explanation plus the gene ids behind its two names.

    For a two-cell model ``names`` are the two cells, ``ids`` are ``GENE@CELL`` and ``gene`` names the
    gene; for a single-cell model ``names`` are the genes' symbols (ids when the symbols coincide)."""

    explanation: PairExplanation
    rows: tuple[int, int]
    names: tuple[str, str]
    ids: tuple[str, str]
    gene: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """Long table ``gene, bin, bin_start_bp, mark, attribution`` with gene ids (not display names)."""
        table = self.explanation.to_frame()
        table["gene"] = table["gene"].map({self.names[0]: self.ids[0], self.names[1]: self.ids[1]})
        return table


@dataclass
class ExplainSession:
    """A model, its card and a dataset, checked against each other, with the model's inputs.

    Attributes:
        dataset: the (first) cell's data: gene ids, symbols, expression, labels.
        x: ``(genes, bins, marks)`` model inputs of ``dataset`` (the card's marks and transform).
        x_other: a two-cell model's inputs of the second cell, else None.
        cells: a two-cell model's (cell A, cell B), else None.
        reference_rows, reference_note: the genes baselines are drawn from, and how they were chosen.
        split: the split to evaluate on: the model's own when the data is its training data, else
            the data's, else None.
        evaluated: the rows a saved model is evaluated on in this data
            (:func:`hmviz.evaluation.evaluation_genes`, the genes of its metrics), else None.
    """

    model: nn.Module
    card: ModelCard
    dataset: HistoneDataset
    x: torch.Tensor
    reference_rows: np.ndarray
    reference_note: str
    split: np.ndarray | None
    x_other: torch.Tensor | None = None
    other: HistoneDataset | None = None
    cells: tuple[str, str] | None = None
    evaluated: np.ndarray | None = None
    _baselines: dict = field(default_factory=dict, repr=False)

    @property
    def differential(self) -> bool:
        return self.cells is not None

    def _second_cell(self) -> tuple[torch.Tensor, HistoneDataset, tuple[str, str]]:
        """A two-cell model's inputs and data of cell B, and the names of (cell A, cell B)."""
        if self.x_other is None or self.other is None or self.cells is None:
            raise ModelError("This session has no second cell: x_other, other and cells come together.")
        return self.x_other, self.other, self.cells

    @property
    def marks(self) -> tuple[str, ...]:
        return self.card.marks

    @property
    def bin_starts_bp(self) -> np.ndarray:
        return self.dataset.bin_starts_bp()

    @property
    def strand_aware(self) -> bool | None:
        """Whether the bins follow each gene's strand (the data's record, else the model card's)."""
        known = self.dataset.strand_aware
        return known if known is not None else self.card.strand_aware

    @property
    def unit(self) -> str:
        """The unit of the model's output: logit, or log2 fold change for a two-cell model."""
        return output_unit(self.card.task)

    @property
    def kind(self) -> str:
        """``"differential"``, ``"ranking"`` or ``"binary"`` (the card's task)."""
        return self.card.task

    def row(self, gene: str | int) -> int:
        """Row of a gene given its id or symbol (an int row is passed through, range-checked)."""
        if isinstance(gene, (int, np.integer)):
            if not 0 <= int(gene) < self.dataset.n_genes:
                raise DataError(f"Gene row {gene} is outside 0..{self.dataset.n_genes - 1}.")
            return int(gene)
        return self.dataset.index_of(str(gene))

    def display(self, row: int) -> str:
        return display_name(self.dataset, row)

    # ------------------------------------------------------------------ baselines
    def reference_inputs(self) -> torch.Tensor:
        """Inputs of the reference genes (both cells stacked for a two-cell model)."""
        rows = torch.as_tensor(self.reference_rows, dtype=torch.long)
        if self.differential:
            x_other, _, _ = self._second_cell()
            return torch.cat([self.x[rows], x_other[rows]])
        return self.x[rows]

    def baseline(self, name: str, seed: int = 0) -> Baseline:
        """The baseline ``name`` (a key of :data:`hmviz.explain.BASELINES`) from the reference genes;
        built once per name and seed."""
        key = (name, seed)
        if key not in self._baselines:
            if self.differential and name == "low_expression_mean":
                raise HmvizError(
                    "low_expression_mean is defined for one cell type; for a two-cell model choose "
                    "zeros, train_mean or gene_sample (with gradient_shap)."
                )
            ds, rows = self.dataset, self.reference_rows
            labels = ds.labels[rows] if ds.labels is not None else None
            expression = ds.expression[rows] if ds.expression is not None and labels is None else None
            base = make_baseline(
                name,
                self.reference_inputs(),
                labels=labels,
                expression=expression,
                transform=dict(self.card.transform),
                seed=seed,
            )
            if self.differential and name == "train_mean":  # both cells' inputs are stacked: say so
                n = len(self.reference_rows)
                base = Baseline(
                    base.name,
                    base.description.replace(f"; {2 * n} genes", f"; {n} genes in each of the two cells"),
                    base.values,
                )
            self._baselines[key] = base
        return self._baselines[key]

    def _baseline_for(self, method: str, baseline: str | Baseline | None) -> Baseline | None:
        if method not in METHODS:
            raise HmvizError(f"Unknown attribution method '{method}'. Valid methods: {', '.join(METHODS)}.")
        if not METHODS[method].needs_baseline:
            return None
        if baseline is None:
            baseline = DEFAULT_BASELINE
        return self.baseline(baseline) if isinstance(baseline, str) else baseline

    # ------------------------------------------------------------- explanations
    def explain_pair(
        self,
        gene_a: str | int,
        gene_b: str | int | None = None,
        method: str = "integrated_gradients",
        baseline: str | Baseline | None = DEFAULT_BASELINE,
        *,
        promoter_bp: tuple[float, float] = (PROMOTER_UPSTREAM_BP, PROMOTER_DOWNSTREAM_BP),
        **options,
    ) -> PairResult:
        """Why the model ranks ``gene_a`` above or below ``gene_b`` (ids, symbols or rows).

        For a two-cell model give one gene: the pair is that gene in cell A and in cell B.
        """
        check_method(method, self.model)
        if self.differential:
            if gene_b is not None:
                raise HmvizError(f"{self.card.model} explains one gene between two cell types; give one gene.")
            row = self.row(gene_a)
            x_other, _, (cell_a, cell_b) = self._second_cell()
            gene = self.display(row)
            names = (str(cell_a), str(cell_b))
            ids = (f"{self.dataset.gene_ids[row]}@{cell_a}", f"{self.dataset.gene_ids[row]}@{cell_b}")
            inputs, rows = (self.x[row], x_other[row]), (row, row)
        else:
            if gene_b is None:
                raise HmvizError("Give two genes to compare (gene A and gene B).")
            rows = (self.row(gene_a), self.row(gene_b))
            if rows[0] == rows[1]:
                raise HmvizError(
                    f"Gene A and gene B are the same gene ({self.dataset.gene_ids[rows[0]]}); "
                    "choose two different genes."
                )
            gene = None
            names = (self.display(rows[0]), self.display(rows[1]))
            ids = (str(self.dataset.gene_ids[rows[0]]), str(self.dataset.gene_ids[rows[1]]))
            if names[0] == names[1]:
                names = ids
            inputs = (self.x[rows[0]], self.x[rows[1]])
        base = self._baseline_for(method, baseline)
        pe = explain_pair(
            self.model,
            *inputs,
            method,
            base,
            names=names,
            gene=gene,
            marks=self.marks,
            bin_starts_bp=self.bin_starts_bp,
            promoter_bp=promoter_bp,
            bin_size=self.dataset.bin_size,
            strand_aware=self.strand_aware,
            unit=self.unit,
            **options,
        )
        return PairResult(pe, rows, names, ids, gene)

    def explain_genes(
        self,
        genes,
        method: str = "integrated_gradients",
        baseline: str | Baseline | None = DEFAULT_BASELINE,
        progress=None,
        **options,
    ) -> Attribution:
        """Attributions of the model's output for each gene in ``genes`` (ids, symbols or rows).

        Single-cell models only; a two-cell model's genes are explained with :meth:`explain_pair`."""
        if self.differential:
            raise ModelError(
                f"{self.card.model} reads two cells per gene; explain one gene at a time "
                "(the gene-pair view), which attributes its predicted change to both cells."
            )
        rows = [self.row(g) for g in genes]
        if not rows:
            raise HmvizError("No genes to explain; choose at least one gene.")
        check_method(method, self.model)
        base = self._baseline_for(method, baseline)
        idx = torch.as_tensor(rows, dtype=torch.long)
        attr = explain(
            self.model,
            self.x[idx],
            method,
            baseline=base,
            marks=self.marks,
            gene_ids=[str(self.dataset.gene_ids[r]) for r in rows],
            bin_starts_bp=self.bin_starts_bp,
            progress=progress,
            **options,
        )
        attr.unit = self.unit
        return attr

    # --------------------------------------------------------------- predictions
    def scores(self) -> np.ndarray:
        """One number per gene: the logit of 'high' (binary), the ranking score (rankers), or the
        predicted log2 fold change of cell B over cell A (two-cell models). float64 ``(genes,)``."""
        from hmviz.explain._model_view import eval_view, model_device
        from hmviz.inference import EVAL_BATCH

        view = eval_view(self.model)
        device = model_device(view)
        fn = getattr(view, "score", view)
        x_other = self._second_cell()[0] if self.differential else None
        out = []
        with torch.inference_mode():
            for start in range(0, self.dataset.n_genes, EVAL_BATCH):
                xa = self.x[start : start + EVAL_BATCH].to(device)
                if x_other is not None:  # a two-cell model
                    out.append(view(xa, x_other[start : start + EVAL_BATCH].to(device)).float().cpu())
                else:
                    out.append(fn(xa).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def measured(self) -> np.ndarray | None:
        """What the scores are compared with, per gene: log1p expression (single cell; the labels when
        there is no expression), or the measured log2 fold change of B over A (two cells)."""
        if self.differential:
            _, other, _ = self._second_cell()
            if self.dataset.expression is None or other.expression is None:
                return None
            return np.log2((other.expression + 1.0) / (self.dataset.expression + 1.0))
        if self.dataset.expression is not None:
            return np.log1p(self.dataset.expression)
        if self.dataset.labels is not None:
            return self.dataset.labels.astype(np.float64)
        return None

    def labels(self) -> np.ndarray | None:
        """The class of every gene as the model defines it: the card's label rule and threshold applied
        to the expression, else the data's labels; -1 where unknown. None for two-cell models or when
        the data has neither expression nor labels."""
        if self.differential:
            return None
        ds, rule, threshold = self.dataset, self.card.label_rule, self.card.label_threshold
        if rule not in (None, "file") and ds.expression is not None and threshold is not None:
            from hmviz.data.targets import LabelRule

            return LabelRule.parse(rule).apply(ds.expression, threshold)
        return None if ds.labels is None else ds.labels.astype(np.int8)

    def evaluation_rows(self) -> np.ndarray:
        """The genes a model is judged on: those of its metrics (:attr:`evaluated`) when known, else its test
        split, else every gene."""
        if self.evaluated is not None:
            return self.evaluated
        if self.split is not None and (self.split == "test").any():
            return np.flatnonzero(self.split == "test")
        return np.arange(self.dataset.n_genes)


def prepare(model: nn.Module, card: ModelCard | dict, dataset: HistoneDataset | MultiCellDataset) -> ExplainSession:
    """Check ``model``/``card`` against ``dataset`` and build the inputs (see :class:`ExplainSession`).

    Raises :class:`DataError` when the data does not fit the model (one cell vs two, missing marks, a
    different window), naming what differs and what to do.
    """
    from hmviz.evaluation import training_split
    from hmviz.inference import prepare_inputs

    card = ModelCard.of(card)  # checked and typed once; the session keeps the typed card
    evaluated = _evaluated_rows(card, dataset)
    differential = card.task == "differential"
    if differential:
        if not isinstance(dataset, MultiCellDataset):
            raise DataError(
                f"{card.model} compares two cell types, but this dataset has one cell. Give a dataset with two "
                "cells over the same genes (a long table with a cell column)."
            )
        cell_a, cell_b = (card.cells or dataset.cell_names)[:2]
        missing = [c for c in (cell_a, cell_b) if c not in dataset.cells]
        if missing:
            raise DataError(
                f"{card.model} was trained on cells {cell_a} and {cell_b}, but the data has "
                f"{', '.join(dataset.cell_names)}. Load data with those two cells."
            )
        ds_a, ds_b = dataset.pair(cell_a, cell_b)
        xa, xb = prepare_inputs(card, ds_a, f"cell {cell_a}"), prepare_inputs(card, ds_b, f"cell {cell_b}")
        rows, note = reference_genes(card, ds_a)
        trained_on = training_split(card, dataset)
        split = trained_on.split if trained_on is not None else ds_a.split
        return ExplainSession(
            model,
            card,
            ds_a,
            xa,
            rows,
            note,
            split,
            x_other=xb,
            other=ds_b,
            cells=(str(cell_a), str(cell_b)),
            evaluated=evaluated,
        )
    if isinstance(dataset, MultiCellDataset):
        raise DataError(
            f"{card.model} models one cell type; the data has {len(dataset.cells)} "
            f"({', '.join(dataset.cell_names)}). Give the data of one cell."
        )
    x = prepare_inputs(card, dataset)
    rows, note = reference_genes(card, dataset)
    trained_on = training_split(card, dataset)
    split = trained_on.split if trained_on is not None else dataset.split
    return ExplainSession(model, card, dataset, x, rows, note, split, evaluated=evaluated)


def _evaluated_rows(card: ModelCard, dataset: HistoneDataset | MultiCellDataset) -> np.ndarray | None:
    """The rows of ``dataset`` a saved model is evaluated on (:func:`hmviz.evaluation.evaluation_genes`), so
    that pages pick and draw the genes of its metrics; None where it has none here (data of its training
    genes only: the pages still explain them)."""
    from hmviz.evaluation import evaluation_genes

    try:
        mask, _, _ = evaluation_genes(card, dataset)
    except DataError:
        return None
    return np.flatnonzero(mask)


def suggest_pairs(
    scores: np.ndarray,
    measured: np.ndarray,
    rows: np.ndarray,
    n: int = 5,
    seed: int = 0,
    clear_difference: float = CLEAR_DIFFERENCE,
    n_pairs: int = SUGGESTION_PAIRS,
) -> pd.DataFrame:
    """Gene pairs worth a look, from a model's scores and the measured values of the genes in ``rows``.

    Args:
        scores: ``(genes,)`` the model's score (or logit) per gene.
        measured: ``(genes,)`` log1p expression (or 0/1 labels); NaN genes are left out.
        rows: the genes to draw pairs from (normally the test split).
        n: pairs per kind; a gene appears in at most one pair of a kind.
        clear_difference: how far the measured values of a pair must differ (log1p units; 1 for labels)
            for the pair to have a clear right answer.

    Returns:
        One row per pair: ``kind`` (a key of :data:`SUGGESTION_KINDS`), ``row_a``, ``row_b`` (gene A is
        the one the model ranks higher), ``probability`` (P(A > B) = sigmoid(score_A - score_B)),
        ``measured_a``, ``measured_b``. Sorted by kind, most telling first; empty when there are too
        few genes.
    """
    scores, measured = np.asarray(scores, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[np.isfinite(measured[rows]) & np.isfinite(scores[rows])]
    columns = ["kind", "row_a", "row_b", "probability", "measured_a", "measured_b"]
    if rows.size < 2:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(seed)
    i = rows[rng.integers(0, rows.size, n_pairs)]
    j = rows[rng.integers(0, rows.size, n_pairs)]
    keep = i != j
    i, j = i[keep], j[keep]
    swap = scores[i] < scores[j]  # orient every pair so that the model ranks A (= i) above B
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    d = scores[i] - scores[j]
    truth = measured[i] - measured[j]
    clear = np.abs(truth) >= clear_difference
    picks = {
        "confident": np.flatnonzero(clear & (truth > 0))[np.argsort(-d[clear & (truth > 0)], kind="stable")],
        "surprising": np.flatnonzero(clear & (truth < 0))[np.argsort(-d[clear & (truth < 0)], kind="stable")],
        "close": np.flatnonzero(clear)[np.argsort(d[clear], kind="stable")],
    }
    out = []
    for kind, order in picks.items():
        used: set[int] = set()
        seen: set[tuple[int, int]] = set()
        for k in order:
            a, b = int(i[k]), int(j[k])
            if a in used or b in used or (a, b) in seen:
                continue
            seen.add((a, b))
            used.update((a, b))
            out.append((kind, a, b, 1.0 / (1.0 + math.exp(-float(d[k]))), float(measured[a]), float(measured[b])))
            if len(used) >= 2 * n:
                break
    return pd.DataFrame(out, columns=columns)


def suggest_genes(
    predicted: np.ndarray,
    measured: np.ndarray,
    rows: np.ndarray,
    n: int = 5,
    clear_difference: float = CLEAR_DIFFERENCE,
) -> pd.DataFrame:
    """Genes worth a look for a two-cell model, from its predicted and the measured log2 fold changes.

    ``kind``: ``confident`` (large predicted change, measured the same way), ``surprising`` (large
    predicted change, measured the other way) and ``close`` (predicted change near 0 although the
    measured change is at least ``clear_difference``). Columns ``kind, row, predicted, measured``.
    """
    predicted, measured = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[np.isfinite(measured[rows]) & np.isfinite(predicted[rows])]
    p, m = predicted[rows], measured[rows]
    clear = np.abs(m) >= clear_difference
    agree = np.sign(p) == np.sign(m)
    picks = {
        "confident": np.flatnonzero(clear & agree)[np.argsort(-np.abs(p[clear & agree]), kind="stable")],
        "surprising": np.flatnonzero(clear & ~agree)[np.argsort(-np.abs(p[clear & ~agree]), kind="stable")],
        "close": np.flatnonzero(clear)[np.argsort(np.abs(p[clear]), kind="stable")],
    }
    out = [(kind, int(rows[k]), float(p[k]), float(m[k])) for kind, order in picks.items() for k in order[:n]]
    return pd.DataFrame(out, columns=["kind", "row", "predicted", "measured"])


__all__ = [
    "SUGGESTION_KINDS",
    "ExplainSession",
    "PairResult",
    "display_name",
    "prepare",
    "reference_genes",
    "suggest_genes",
    "suggest_pairs",
]
