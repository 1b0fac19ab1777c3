"""How one kind of target becomes batches, a loss, predictions and metrics.

* :class:`_BinaryTask`: high/low labels per gene (AUROC on validation);
* :class:`_RankingTask`: RankNet on gene pairs (pairwise accuracy on validation);
* :class:`_DifferentialTask`: DeepDiff's log2 fold change between two cells (R^2 on validation).

:func:`_make_task` builds the task a model's ``spec.task`` names from a dataset whose split is assigned.
The loop that trains on a task is :mod:`hmviz.engine`; scoring a saved model on one, :mod:`hmviz.evaluation`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from hmviz import metrics as M
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.targets import LabelRule, sample_pairs
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.inference import _predict
from hmviz.options import TrainOptions

log = logging.getLogger(__name__)


class _Task:
    """How one kind of target becomes batches, a loss, predictions and metrics."""

    metric_name = ""
    higher_is_better = True
    #: rows of the train, validation and test genes (every task sets them)
    train_idx: np.ndarray
    valid_idx: np.ndarray
    test_idx: np.ndarray

    def __init__(self, device: torch.device):
        self.device = device

    def train_batches(self, rng: np.random.Generator, batch_size: int) -> Iterator[tuple]:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        raise NotImplementedError

    def prepare_model(self, model: nn.Module) -> None:
        """Fit whatever the model learns from training targets before the first epoch (default: nothing)."""

    def valid_metric(self, model: nn.Module) -> float:
        return self.validate(model)[0]

    def validate(self, model: nn.Module) -> tuple[float, float | None]:
        """(validation metric, validation loss or None) from one pass over the validation genes."""
        raise NotImplementedError

    def test_metrics(self, model: nn.Module) -> dict:
        raise NotImplementedError


def _bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against 0/1 targets (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


class _SingleCellTask(_Task):
    def __init__(
        self,
        device,
        x: torch.Tensor,
        split: np.ndarray,
        expression: np.ndarray | None,
        labels: np.ndarray | None,
        seed: int,
    ):
        super().__init__(device)
        self.x = x
        self.train_idx = np.flatnonzero(split == "train")
        self.valid_idx = np.flatnonzero(split == "valid")
        self.test_idx = np.flatnonzero(split == "test")
        self.expression = expression
        self.labels = labels
        self.seed = seed

    def scores(self, model, index) -> np.ndarray:
        fn = getattr(model, "score", model)
        return _predict(fn, self.x, index, self.device)

    def _ranking_metrics(self, scores: np.ndarray, index: np.ndarray, prefix: str) -> dict:
        out: dict = {}
        truth = self.expression[index] if self.expression is not None else None
        if truth is not None and np.isfinite(truth).all():
            out[f"{prefix}concordance_index"] = M.concordance_index(truth, scores)
            try:
                i, j, _ = sample_pairs(
                    truth, np.arange(len(index)), n_pairs=min(20000, 10 * len(index)), seed=self.seed
                )
                out[f"{prefix}pairwise_accuracy"] = M.pairwise_accuracy(truth, scores, np.stack([i, j], 1))
            except DataError:
                pass
            out[f"{prefix}spearman_r"] = M.spearman_r(truth, scores)
        elif self.labels is not None:
            # Only classes are known: pairs are (high, low) genes, i.e. pairwise accuracy == AUROC.
            out[f"{prefix}pairwise_accuracy"] = M.auroc(self.labels[index], scores)
        return out


class _BinaryTask(_SingleCellTask):
    metric_name = "valid_auroc"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.y = torch.as_tensor(self.labels, dtype=torch.float32)
        self.loss_fn = nn.BCEWithLogitsLoss()

    def train_batches(self, rng, batch_size):
        order = rng.permutation(self.train_idx)
        for start in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[start : start + batch_size], dtype=torch.long)
            yield self.x[idx].to(self.device, non_blocking=True), self.y[idx].to(self.device, non_blocking=True)

    def loss(self, model, batch):
        x, y = batch
        return self.loss_fn(model(x).float(), y)

    def validate(self, model):
        s = self.scores(model, self.valid_idx)
        y = self.labels[self.valid_idx]
        return M.auroc(y, s), _bce_with_logits(s, y)

    def test_metrics(self, model):
        s = self.scores(model, self.test_idx)
        y = self.labels[self.test_idx]
        out = {
            "test_auroc": M.auroc(y, s),
            "test_auprc": M.auprc(y, s),
            "test_accuracy": M.accuracy(y, s),  # logits: class high when the logit > 0
            "test_balanced_accuracy": M.balanced_accuracy(y, s),
        }
        # A cut chosen on the validation genes (best balanced accuracy there), for models whose logits are
        # shifted: at logit 0 such a model may call every test gene one class (accuracy = the class prior).
        valid_y = self.labels[self.valid_idx]
        if len(np.unique(valid_y)) == 2:
            cut = M.balanced_threshold(valid_y, self.scores(model, self.valid_idx))
            out["valid_decision_threshold"] = cut
            out["test_accuracy_at_valid_threshold"] = M.accuracy(y, s, threshold=cut)
            out["test_balanced_accuracy_at_valid_threshold"] = M.balanced_accuracy(y, s, threshold=cut)
        out.update(self._ranking_metrics(s, self.test_idx, "test_"))
        return out


PAIR_SAMPLING = ("within-batch", "global")


class _RankingTask(_SingleCellTask):
    """RankNet on gene pairs: P(A above B) = sigmoid(s_A - s_B); pairs never cross splits."""

    metric_name = "valid_pairwise_accuracy"

    def __init__(self, *args, pairs_per_gene: int = 4, pair_sampling: str = "within-batch", **kw):
        super().__init__(*args, **kw)
        if pair_sampling not in PAIR_SAMPLING:
            raise HmvizError(f"pair_sampling must be one of {', '.join(PAIR_SAMPLING)}; got '{pair_sampling}'.")
        self.pair_sampling = pair_sampling
        if self.expression is not None:
            self.order_value = np.log1p(self.expression)
        elif self.labels is not None:
            self.order_value = self.labels.astype(np.float64)  # pairs only between classes
        else:
            raise DataError("The ranker needs expression values (or at least high/low labels) per gene.")
        self.pairs_per_gene = pairs_per_gene
        self.loss_fn = nn.BCEWithLogitsLoss()
        self._valid_pairs = None  # drawn on first use: evaluation on new data has no validation genes

    def _pairs(self, index, seed, n=None):
        n = n or max(1, self.pairs_per_gene * len(index))
        i, j, t = sample_pairs(self.order_value, index, n_pairs=n, seed=seed)
        return i, j, t

    def train_batches(self, rng, batch_size):
        if self.pair_sampling == "within-batch":
            yield from self._within_batch(rng, batch_size)
            return
        i, j, t = self._pairs(self.train_idx, seed=int(rng.integers(2**31)))
        tt = torch.as_tensor(t, dtype=torch.float32)
        for start in range(0, len(i), batch_size):
            a = torch.as_tensor(i[start : start + batch_size], dtype=torch.long)
            b = torch.as_tensor(j[start : start + batch_size], dtype=torch.long)
            yield (self.x[a].to(self.device), self.x[b].to(self.device), tt[start : start + batch_size].to(self.device))

    def _within_batch(self, rng, batch_size):
        """Shuffle the training genes into batches of ``batch_size`` genes; draw ``pairs_per_gene`` x
        genes pairs among each batch's genes. Every gene is scored once per epoch, not once per pair."""
        order = rng.permutation(self.train_idx)
        for start in range(0, len(order), batch_size):
            genes = order[start : start + batch_size]
            try:
                i, j, t = self._pairs(genes, seed=int(rng.integers(2**31)))
            except DataError:  # every gene of this batch ties with every other: nothing to learn from it
                continue
            local = np.full(len(self.order_value), -1, dtype=np.int64)
            local[genes] = np.arange(len(genes))
            yield (
                self.x[torch.as_tensor(genes, dtype=torch.long)].to(self.device),
                torch.as_tensor(local[i]).to(self.device),
                torch.as_tensor(local[j]).to(self.device),
                torch.as_tensor(t, dtype=torch.float32).to(self.device),
            )

    def loss(self, model, batch):
        if self.pair_sampling == "within-batch":  # batch = (genes, pair rows i, j, targets): score each gene once
            x, i, j, t = batch
            s = model.score(x).float()
            return self.loss_fn(s[i] - s[j], t)
        xa, xb, t = batch
        return self.loss_fn(model(xa, xb).float(), t)

    def validate(self, model):
        if self._valid_pairs is None:
            self._valid_pairs = self._pairs(self.valid_idx, seed=self.seed + 1)
        i, j, t = self._valid_pairs
        s = np.zeros(len(self.order_value))
        s[self.valid_idx] = self.scores(model, self.valid_idx)
        return float(np.mean((s[i] > s[j]) == (t == 1))), _bce_with_logits(s[i] - s[j], t)

    def test_metrics(self, model):
        s = self.scores(model, self.test_idx)
        out = self._ranking_metrics(s, self.test_idx, "test_")
        if "test_pairwise_accuracy" not in out:
            i, j, t = self._pairs(self.test_idx, seed=self.seed + 2, n=10 * len(self.test_idx))
            sa = self.scores(model, np.arange(len(self.order_value)))
            out["test_pairwise_accuracy"] = float(np.mean((sa[i] > sa[j]) == (t == 1)))
        if self.labels is not None and len(np.unique(self.labels[self.test_idx])) == 2:
            out["test_auroc"] = M.auroc(self.labels[self.test_idx], s)
        # Antisymmetry: P(A>B) + P(B>A) must be exactly 1.
        i, j, _ = self._pairs(self.test_idx, seed=self.seed + 3, n=min(2000, 10 * len(self.test_idx)))
        idx_i = torch.as_tensor(i, dtype=torch.long)
        idx_j = torch.as_tensor(j, dtype=torch.long)
        with torch.inference_mode():
            xa, xb = self.x[idx_i].to(self.device), self.x[idx_j].to(self.device)
            p_ab = torch.sigmoid(model(xa, xb).float()).cpu().numpy()
            p_ba = torch.sigmoid(model(xb, xa).float()).cpu().numpy()
        out["test_antisymmetry_error"] = M.antisymmetry_error(p_ab, p_ba)
        return out


class _DifferentialTask(_Task):
    """DeepDiff: two cells' marks -> log2((count_B + 1) / (count_A + 1)).

    The validation metric is R^2 (coefficient of determination), not Pearson r: Pearson r ignores
    the scale and offset of the predictions, so an epoch whose predictions are all small and
    positive can look best while its MSE is worse than predicting 0. The validation loss is the MSE.
    """

    metric_name = "valid_r2"

    def __init__(self, device, xa, xb, split, expr_a, expr_b):
        super().__init__(device)
        self.xa, self.xb = xa, xb
        self.train_idx = np.flatnonzero(split == "train")
        self.valid_idx = np.flatnonzero(split == "valid")
        self.test_idx = np.flatnonzero(split == "test")
        self.diff = np.log2((expr_b + 1.0) / (expr_a + 1.0))
        self.abs_a = np.log2(expr_a + 1.0)
        self.abs_b = np.log2(expr_b + 1.0)
        self.t = [torch.as_tensor(v, dtype=torch.float32) for v in (self.diff, self.abs_a, self.abs_b)]

    def prepare_model(self, model):
        """Fit the model's target scale on the training genes only (DeepDiff.fit_target_scale)."""
        if hasattr(model, "fit_target_scale"):
            idx = self.train_idx
            model.fit_target_scale(
                torch.as_tensor(self.diff[idx]), torch.as_tensor(np.concatenate([self.abs_a[idx], self.abs_b[idx]]))
            )

    def train_batches(self, rng, batch_size):
        order = rng.permutation(self.train_idx)
        for start in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[start : start + batch_size], dtype=torch.long)
            yield tuple(t[idx].to(self.device) for t in (self.xa, self.xb, *self.t))

    def loss(self, model, batch):
        xa, xb, diff, abs_a, abs_b = batch
        out = model(xa, xb, return_all=True)
        return model.loss(out, diff, abs_a, abs_b)

    def predict(self, model, index):
        return _predict(lambda a, b: model(a, b), self.xa, index, self.device, self.xb)

    def validate(self, model):
        p = self.predict(model, self.valid_idx)
        d = self.diff[self.valid_idx]
        return M.r2(d, p), M.mean_squared_error(d, p)

    def test_metrics(self, model):
        p = self.predict(model, self.test_idx)
        d = self.diff[self.test_idx]
        out = {}
        try:
            out["test_pearson_r"] = M.pearson_r(d, p)
            out["test_spearman_r"] = M.spearman_r(d, p)
        except HmvizError as exc:  # constant predictions: correlation undefined, R^2 and MSE still say it
            log.warning("correlation not computed: %s", exc)
        out["test_r2"] = M.r2(d, p)
        out["test_mse"] = M.mean_squared_error(d, p)
        out["test_slope"] = M.regression_slope(d, p)
        try:
            out["test_direction_auroc"] = M.direction_auroc(d, p)
        except HmvizError as exc:
            log.warning("direction AUROC not computed: %s", exc)
        return out


def _make_task(
    dataset,
    options: TrainOptions,
    spec,
    device,
    transform: SignalTransform,
    rule: LabelRule | None,
    threshold: float | None,
):
    """Build the task for ``spec.task`` from a dataset whose split is already assigned."""
    if spec.task == "differential":
        a, b = _differential_cells(dataset, options.cells)
        if a.expression is None or b.expression is None:
            raise DataError("DeepDiff needs expression counts for both cells (an expression table per cell).")
        ok = np.isfinite(a.expression) & np.isfinite(b.expression)
        split = np.where(ok, a.require_split(), "none")
        xa = torch.from_numpy(transform.transform(a.signal))
        xb = torch.from_numpy(transform.transform(b.signal))
        return _DifferentialTask(device, xa, xb, split, np.nan_to_num(a.expression), np.nan_to_num(b.expression))
    x = torch.from_numpy(transform.transform(dataset.signal))
    split = dataset.split.copy()
    expression = dataset.expression
    if expression is not None:
        missing = ~np.isfinite(expression)
        if missing.any():
            log.warning(
                "%d genes have no expression value and are left out of training and evaluation.", int(missing.sum())
            )
            split[missing] = "none"
    labels = dataset.labels
    if spec.task == "binary":
        if rule is not None:
            labels = _rule_labels(rule, threshold, expression)
        if labels is None:
            raise DataError("A binary model needs labels or expression values; this dataset has neither.")
        return _BinaryTask(device, x, split, expression, labels, options.seed)
    if spec.task == "ranking":
        if rule is not None and labels is None:
            labels = _rule_labels(rule, threshold, expression)
        return _RankingTask(
            device,
            x,
            split,
            expression,
            labels,
            options.seed,
            pairs_per_gene=options.pairs_per_gene,
            pair_sampling=options.pair_sampling,
        )
    raise ModelError(f"Unknown task '{spec.task}'.")


def _rule_labels(rule: LabelRule, threshold: float | None, expression: np.ndarray | None) -> np.ndarray:
    """Labels from ``rule`` at ``threshold`` (genes without expression get none)."""
    if threshold is None:
        raise HmvizError(
            f"The label rule {rule} has no threshold: it is fitted on the training genes when a model is "
            "trained and kept in the model card (label_threshold); a card with a rule and no threshold is damaged."
        )
    if expression is None:
        raise DataError(
            f"The label rule {rule} labels genes by their expression values, but the data has none; "
            "add an expression column or table, or give labels (label rule 'file')."
        )
    return rule.apply(np.nan_to_num(expression, nan=-np.inf), threshold)


def _multi_cell(dataset: HistoneDataset | MultiCellDataset) -> MultiCellDataset:
    """``dataset`` when it holds several cells; raises the error that DeepDiff needs two cells."""
    if not isinstance(dataset, MultiCellDataset):
        raise DataError(
            "DeepDiff compares two cell types: give a dataset with two cells over the same genes "
            "(a DeepDiff folder, or a long-format table with a 'cell' column)."
        )
    return dataset


def _differential_cells(dataset, cells) -> tuple[HistoneDataset, HistoneDataset]:
    dataset = _multi_cell(dataset)
    names = dataset.cell_names
    a, b = cells if cells else (names[0], names[1])
    return dataset.pair(a, b)


def class_balance(task: _Task) -> dict | None:
    """Share of positive targets per split: genes labelled high (binary and ranking models with labels)
    or genes whose expression rises from cell A to cell B (differential). ``what`` says which; None
    when the task has no such target. Rounded to 4 decimals; a split without genes gives None."""
    if isinstance(task, _DifferentialTask):
        positive, what = task.diff > 0, "fraction of genes with log2 fold change > 0 (higher in cell B)"
    elif isinstance(task, _SingleCellTask) and task.labels is not None:
        positive, what = np.asarray(task.labels) == 1, "fraction of genes labelled high (label 1)"
    else:
        return None
    out: dict = {"what": what}
    for name, idx in (("train", task.train_idx), ("valid", task.valid_idx), ("test", task.test_idx)):
        out[name] = round(float(positive[idx].mean()), 4) if len(idx) else None
    return out
