"""One training engine for every model family.

:func:`train` takes a dataset and :class:`TrainOptions`, and

1. seeds everything from one seed (:func:`seed_everything`),
2. selects the marks, assigns the split (the file's, a seeded random one, or a chromosome hold-out),
3. builds the target on the training genes only (labels by a rule, ranking pairs, or log fold change),
4. fits the input transform (log1p + per-mark scaling) on the training genes only,
5. trains on the train split with early stopping on the validation metric, reporting progress
   through a callback and checking a cancel flag between batches,
6. evaluates the best model once on the test split,

and returns the model with its model card. :func:`evaluate` applies a saved model to new data with
the transform, marks and label rule recorded in its card.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hmviz import metrics as M
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.gene_sets import record_split, split_of_genes
from hmviz.data.splits import ensure_split, quantile_strata
from hmviz.data.targets import LabelRule, sample_pairs
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, HmvizError, ModelError

log = logging.getLogger(__name__)

# Genes per inference batch (validation, test, scoring). Measured on the 2-core CPU over 6,601 genes
# (`python bench/bench_models.py eval-batch`): AttentiveChrome is fastest at 128 (1.2 s per pass; larger
# batches were slower, 2.2 s at 1024); DeepChrome is flat from 128 to 1024.
EVAL_BATCH = 128


# --------------------------------------------------------------------------- basics
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number; cuDNN made deterministic.

    For scripts only: it reseeds the whole process. :func:`train` does not call it; a run draws
    from its own generators (:func:`hmviz.models._common.seeded_init`), so runs in threads of one
    process are independent."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    _deterministic_kernels()


def _deterministic_kernels() -> None:
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def choose_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, otherwise CPU. Asking for CUDA without a GPU is an error."""
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HmvizError("--device cuda was asked for but no CUDA GPU is available here; use --device auto or cpu.")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise HmvizError(f"Unknown device '{device}'; use auto, cpu or cuda.")


class TrainingCancelled(HmvizError):
    """Training was cancelled by the user; nothing was saved."""


@dataclass
class TrainOptions:
    """Everything that decides a training run (all of it is written into the model card)."""

    model: str
    epochs: int | None = None            # None: the model config's default
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 1
    device: str = "auto"
    marks: tuple[str, ...] | None = None  # None: every mark in the data, in its order
    label_rule: str | None = None        # None: the file's labels if present, else "median"
    split: str = "auto"                  # auto (file's split, else random) | file | random | chromosome
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    valid_chroms: tuple[str, ...] | None = None
    test_chroms: tuple[str, ...] | None = None
    patience: int = 10                   # epochs in which neither validation loss nor metric improved: stop
    select_on: str = "metric"            # keep the epoch with the best validation "metric" (ties: loss) or "loss"
    log1p: bool = True
    scaling: str = "standard"
    pairs_per_gene: int = 4              # ranking: training pairs drawn per training gene and epoch
    # ranking: "within-batch": batches of batch_size genes, pairs_per_gene x genes pairs drawn among each
    # batch's genes, every gene scored once per epoch; "global": pairs drawn from all training genes,
    # batches of batch_size pairs, both genes of every pair scored (pairs_per_gene x 2 scorings per gene).
    pair_sampling: str = "within-batch"
    cells: tuple[str, str] | None = None  # differential: (cell A, cell B); target log2((B+1)/(A+1))
    amp: bool | None = None              # mixed precision: None = on for CUDA
    model_overrides: dict = field(default_factory=dict)

    def validate(self) -> "TrainOptions":
        """Refuse out-of-range numbers before any work: each message names the option (and its flag)."""
        from hmviz import limits

        def whole(flag: str, value, low: int, high: int, meaning: str = "") -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise HmvizError(f"{flag} must be a whole number{meaning}; got {value!r}.")
            if value < low:
                at_least = f"0{meaning} or more" if low == 0 else f"at least {low}{meaning}"
                raise HmvizError(f"{flag} must be {at_least}; got {value}.")
            if value > high:
                raise HmvizError(f"{flag} must be at most {high:,}{meaning}; got {value:,}.")

        whole("--epochs", self.epochs, 1, limits.EPOCHS.value())
        whole("--batch-size", self.batch_size, 1, limits.BATCH_SIZE.value(), " (genes per batch)")
        whole("--seed", self.seed, 0, 2**32 - 1)
        whole("--patience", self.patience, 0, limits.EPOCHS.value(), " (never stop early)")
        if self.lr is not None and (isinstance(self.lr, bool) or not isinstance(self.lr, (int, float, np.floating))
                                    or not np.isfinite(self.lr) or not self.lr > 0):
            raise HmvizError(f"--lr (the learning rate) must be a finite number above 0 (typically 1e-4 to 1e-2); "
                             f"got {self.lr!r}.")
        return self


@dataclass
class ProgressEvent:
    """What the progress callback receives, after every batch and at the end of every epoch."""

    stage: str                  # "pretrain" (unsupervised stage of SimpleChrome) or "train"
    epoch: int                  # 1-based
    epochs: int
    step: int                   # batches done in this epoch
    steps: int
    train_loss: float | None
    valid_metric: float | None = None
    metric_name: str = ""
    epoch_end: bool = False
    seconds: float = 0.0


@dataclass
class TrainResult:
    model: nn.Module
    card: dict
    history: list[dict]

    @property
    def metrics(self) -> dict:
        return self.card["metrics"]


# ------------------------------------------------------------------------ tasks
class _Task:
    """How one kind of target becomes batches, a loss, predictions and metrics."""

    metric_name = ""
    higher_is_better = True

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


def _predict(model_fn: Callable, x: torch.Tensor, index: np.ndarray, device: torch.device, *more: torch.Tensor) -> np.ndarray:
    """Model outputs for the genes in ``index``, in batches, in inference mode; float64 numpy."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(index), EVAL_BATCH):
            idx = torch.as_tensor(index[start:start + EVAL_BATCH], dtype=torch.long)
            args = [t[idx].to(device, non_blocking=True) for t in (x, *more)]
            out.append(model_fn(*args).float().cpu())
    if not out:
        return np.zeros(0)
    return torch.cat(out).numpy().astype(np.float64)


def _bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against 0/1 targets (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


class _SingleCellTask(_Task):
    def __init__(self, device, x: torch.Tensor, split: np.ndarray, expression: np.ndarray | None,
                 labels: np.ndarray | None, seed: int):
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
                i, j, _ = sample_pairs(truth, np.arange(len(index)), n_pairs=min(20000, 10 * len(index)),
                                       seed=self.seed)
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
            idx = torch.as_tensor(order[start:start + batch_size], dtype=torch.long)
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
        }
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
            a = torch.as_tensor(i[start:start + batch_size], dtype=torch.long)
            b = torch.as_tensor(j[start:start + batch_size], dtype=torch.long)
            yield (self.x[a].to(self.device), self.x[b].to(self.device), tt[start:start + batch_size].to(self.device))

    def _within_batch(self, rng, batch_size):
        """Shuffle the training genes into batches of ``batch_size`` genes; draw ``pairs_per_gene`` x
        genes pairs among each batch's genes. Every gene is scored once per epoch, not once per pair."""
        order = rng.permutation(self.train_idx)
        for start in range(0, len(order), batch_size):
            genes = order[start:start + batch_size]
            try:
                i, j, t = self._pairs(genes, seed=int(rng.integers(2**31)))
            except DataError:  # every gene of this batch ties with every other: nothing to learn from it
                continue
            local = np.full(len(self.order_value), -1, dtype=np.int64)
            local[genes] = np.arange(len(genes))
            yield (self.x[torch.as_tensor(genes, dtype=torch.long)].to(self.device),
                   torch.as_tensor(local[i]).to(self.device), torch.as_tensor(local[j]).to(self.device),
                   torch.as_tensor(t, dtype=torch.float32).to(self.device))

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
            model.fit_target_scale(torch.as_tensor(self.diff[idx]),
                                   torch.as_tensor(np.concatenate([self.abs_a[idx], self.abs_b[idx]])))

    def train_batches(self, rng, batch_size):
        order = rng.permutation(self.train_idx)
        for start in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[start:start + batch_size], dtype=torch.long)
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


# ------------------------------------------------------------------ preparation
def _check_window(card: dict, ds: HistoneDataset, what: str) -> None:
    if ds.n_bins != card["n_bins"] or ds.bin_size != card["bin_size"]:
        raise DataError(
            f"{what} has {ds.n_bins} bins of {ds.bin_size} bp but the model was trained on "
            f"{card['n_bins']} bins of {card['bin_size']} bp; rebuild the table with the model's window "
            "or train a model on this data."
        )
    if card.get("tss_bin") is not None and ds.tss_bin != card["tss_bin"]:
        raise DataError(
            f"{what} has the TSS at bin {ds.tss_bin} but the model's card says bin {card['tss_bin']}; the "
            "windows around the TSS differ (or the card was edited). Use data with the model's window."
        )


def _select_marks(ds, marks: Sequence[str] | None, what: str, expects: str = "the model"):
    """Marks by name; missing marks are an error naming them (never a silent reorder).

    ``what`` names the data (``the data``, ``cell X``), ``expects`` who asks for ``marks``."""
    if marks is None:
        return ds
    from hmviz.data.validation import check_marks

    missing = [m for m in marks if m not in ds.marks]
    if missing:
        try:
            check_marks(ds.marks, tuple(marks), what=expects)
        except DataError as exc:
            raise DataError(str(exc) if what == "the data" else f"{what}: {exc}") from None
    return ds.select_marks(list(marks))


def _make_task(dataset, options: TrainOptions, spec, device, transform: SignalTransform | None,
               rule: LabelRule | None, threshold: float | None):
    """Build the task for ``spec.task`` from a dataset whose split is already assigned."""
    if spec.task == "differential":
        a, b = _differential_cells(dataset, options.cells)
        if a.expression is None or b.expression is None:
            raise DataError("DeepDiff needs expression counts for both cells (an expression table per cell).")
        ok = np.isfinite(a.expression) & np.isfinite(b.expression)
        split = np.where(ok, a.split, "none")
        xa = torch.from_numpy(transform.transform(a.signal))
        xb = torch.from_numpy(transform.transform(b.signal))
        return _DifferentialTask(device, xa, xb, split, np.nan_to_num(a.expression), np.nan_to_num(b.expression))
    x = torch.from_numpy(transform.transform(dataset.signal))
    split = dataset.split.copy()
    expression = dataset.expression
    if expression is not None:
        missing = ~np.isfinite(expression)
        if missing.any():
            log.warning("%d genes have no expression value and are left out of training and evaluation.",
                        int(missing.sum()))
            split[missing] = "none"
    labels = dataset.labels
    if spec.task == "binary":
        if rule is not None:
            labels = rule.apply(np.nan_to_num(expression, nan=-np.inf), threshold)
        if labels is None:
            raise DataError("A binary model needs labels or expression values; this dataset has neither.")
        return _BinaryTask(device, x, split, expression, labels, options.seed)
    if spec.task == "ranking":
        if rule is not None and labels is None:
            labels = rule.apply(np.nan_to_num(expression, nan=-np.inf), threshold)
        return _RankingTask(device, x, split, expression, labels, options.seed, pairs_per_gene=options.pairs_per_gene,
                            pair_sampling=options.pair_sampling)
    raise ModelError(f"Unknown task '{spec.task}'.")


def _differential_cells(dataset, cells) -> tuple[HistoneDataset, HistoneDataset]:
    if not isinstance(dataset, MultiCellDataset):
        raise DataError(
            "DeepDiff compares two cell types: give a dataset with two cells over the same genes "
            "(a DeepDiff folder, or a long-format table with a 'cell' column)."
        )
    names = dataset.cell_names
    a, b = cells if cells else (names[0], names[1])
    return dataset.pair(a, b)


def _split_kind(dataset: HistoneDataset, split: str, chroms_given: bool = False) -> str:
    """``auto``: a chromosome hold-out when hold-out chromosomes are given, else the file's split when
    it has one, else a seeded random split by gene."""
    if split == "auto":
        return "chromosome" if chroms_given else "file" if dataset.split is not None else "random"
    if split == "file" and dataset.split is None:
        raise DataError("--split file was asked for but the data has no split column; use --split random "
                        "or --split chromosome, or add a 'split' column (train/valid/test).")
    return split


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


# ------------------------------------------------------------------------- loop
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser a model config names (``config.optimizer``): Adam, AdamW or plain SGD (momentum 0)."""
    if name not in OPTIMIZERS:
        raise ModelError(f"Unknown optimizer '{name}'; use one of {', '.join(OPTIMIZERS)} (--set optimizer=...).")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)


def _run_epochs(model, task: _Task, *, params, lr, weight_decay, epochs, batch_size, patience, grad_clip,
                seed, device, amp, stage, progress, should_stop, loss_fn=None, metric_fn=None, history=None,
                select_on="metric", optimizer="adam"):
    """Train ``params`` of ``model``; keep the state with the best validation metric (or loss).

    ``select_on="metric"``: the epoch with the best validation metric (AUROC, pairwise accuracy,
    R^2) is kept; among epochs with the same metric, the one with the lower validation loss. On
    real data the validation loss and the ranking can disagree for many epochs either way (600
    REMC genes: loss-selection kept epoch 1 in issue 15's runs and ran to the epoch cap in ours;
    docs/training.md).
    ``select_on="loss"``: the lowest validation loss.
    ``metric_fn(model) -> float`` (higher is better) replaces the task's validation when given.
    Early stopping: training ends after ``patience`` epochs in which neither the validation loss nor
    the validation metric reached a new best. Watching only the quantity the epoch is kept on fails
    both ways: the loss can sit at log 2 for several epochs while the ranking already improves (a
    small set, few steps per epoch), and the AUROC can peak at an untrained, uncalibrated first epoch
    while the loss is still falling steeply.
    """
    optimizer = make_optimizer(optimizer, params, lr, weight_decay)
    rng = np.random.default_rng(seed)
    loss_fn = loss_fn or task.loss
    own_metric = metric_fn is None  # the task's validation metric (named, higher or lower is better)
    metric_fn = task.valid_metric if own_metric else metric_fn
    best, best_state, best_epoch, bad = (-math.inf, -math.inf), None, 0, 0
    watched_best = {"loss": math.inf, "metric": -math.inf}  # for early stopping, whichever is kept
    use_amp = bool(amp) and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    history = history if history is not None else []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        batches = list(task.train_batches(rng, batch_size))
        total, count = 0.0, 0
        for step, batch in enumerate(batches, 1):
            if should_stop is not None and should_stop():
                raise TrainingCancelled("Training was cancelled; nothing was saved.")
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise ModelError(
                    f"The training loss became {loss.item()} at epoch {epoch}; lower the learning rate "
                    "(--lr) or check the input values."
                )
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(batch[0])
            count += len(batch[0])
            if progress is not None:
                progress(ProgressEvent(stage, epoch, epochs, step, len(batches), total / max(count, 1)))
        model.eval()
        valid_loss = None
        if own_metric:
            metric, valid_loss = task.validate(model)
            metric = float(metric)
        else:
            metric = float(metric_fn(model))
        seconds = time.perf_counter() - t0
        record = {"stage": stage, "epoch": epoch, "train_loss": total / max(count, 1),
                  task.metric_name if own_metric else "valid_metric": metric, "seconds": round(seconds, 3)}
        if valid_loss is not None:
            record["valid_loss"] = valid_loss
        history.append(record)
        if progress is not None:
            progress(ProgressEvent(stage, epoch, epochs, len(batches), len(batches), total / max(count, 1),
                                   metric, task.metric_name if own_metric else "valid_metric",
                                   epoch_end=True, seconds=seconds))
        metric_score = metric if task.higher_is_better or not own_metric else -metric
        tie_break = -valid_loss if valid_loss is not None and math.isfinite(valid_loss) else -math.inf
        score = (-valid_loss, metric_score) if select_on == "loss" and valid_loss is not None \
            else (metric_score, tie_break)
        score = tuple(v if math.isfinite(v) else -math.inf for v in score)
        if best_state is None or score > best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        improved = False
        if valid_loss is not None and valid_loss < watched_best["loss"]:
            watched_best["loss"], improved = valid_loss, True
        if math.isfinite(metric_score) and metric_score > watched_best["metric"]:
            watched_best["metric"], improved = metric_score, True
        bad = 0 if improved or best_epoch == epoch else bad + 1
        if patience and bad >= patience:
            log.info("early stop at epoch %d (best epoch %d)", epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    model.eval()
    return best_epoch, best[0]


@dataclass
class _Prepared:
    """A dataset made ready for one task: marks selected, split assigned, targets and transform fitted."""

    dataset: HistoneDataset | MultiCellDataset
    first: HistoneDataset                # the (first) cell, which carries the split
    rule: LabelRule | None
    threshold: float | None
    transform: SignalTransform
    fingerprint: str
    source: str


def _prepare(dataset, options: TrainOptions, spec) -> _Prepared:
    """Select marks, assign the split, fit the label threshold and the transform on training genes only."""
    fingerprint = _fingerprint(dataset)
    source = dataset.source
    chroms_given = options.valid_chroms is not None or options.test_chroms is not None

    if spec.task == "differential":
        if not isinstance(dataset, MultiCellDataset):
            _differential_cells(dataset, options.cells)  # raises the explanatory error
        dataset = _select_marks(dataset, options.marks, "the data", "--marks")
        a, b = _differential_cells(dataset, options.cells)
        strata, stratified_by = None, None
        if a.expression is not None and b.expression is not None:
            strata = quantile_strata(np.log2((b.expression + 1.0) / (a.expression + 1.0)))
            stratified_by = "log2 fold-change quantile"
        a = ensure_split(a, how=_split_kind(a, options.split, chroms_given), seed=options.seed,
                         fractions=options.split_fractions, valid_chroms=options.valid_chroms,
                         test_chroms=options.test_chroms, strata=strata, stratified_by=stratified_by)
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
        dataset = ensure_split(dataset, how=_split_kind(dataset, options.split, chroms_given), seed=options.seed,
                               fractions=options.split_fractions, valid_chroms=options.valid_chroms,
                               test_chroms=options.test_chroms, strata=strata, stratified_by=stratified_by)
        first = dataset
        threshold = None
        if rule is not None:
            threshold = rule.fit(dataset.expression, dataset.split_indices("train"))

    train_idx = first.split_indices("train")
    if len(train_idx) == 0 or len(first.split_indices("valid")) == 0 or len(first.split_indices("test")) == 0:
        raise DataError("Every split (train, valid, test) needs at least one gene; use more genes or another split.")

    transform = SignalTransform(log1p=options.log1p, scaling=options.scaling)
    if spec.task == "differential":
        cells = list(dataset.cells.values())
        stacked = np.concatenate([c.signal[train_idx] for c in cells[:2]])
        transform.fit(stacked, np.arange(len(stacked)), marks=first.marks)
    else:
        transform.fit(first.signal, train_idx, marks=first.marks)

    return _Prepared(dataset, first, rule, threshold, transform, fingerprint, source)


def train(
    dataset: HistoneDataset | MultiCellDataset,
    options: TrainOptions,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``options.model`` on ``dataset``; see the module docstring for the steps."""
    from hmviz.model_size import check_model_size
    from hmviz.models import build_model, get_spec
    from hmviz.models._common import lstm_impl_used, seeded_init, use_generator

    spec = get_spec(options.model)
    options.validate()
    device = choose_device(options.device)
    _deterministic_kernels()
    prep = _prepare(dataset, options, spec)
    dataset, first, rule, threshold, transform = prep.dataset, prep.first, prep.rule, prep.threshold, prep.transform
    fingerprint, source = prep.fingerprint, prep.source

    check_model_size(options.model, {"n_marks": first.n_marks, "n_bins": first.n_bins, **options.model_overrides},
                     "the model settings (--set)")
    # This run's randomness only (weights from its seed, then its own generator): see hmviz.models._common.
    with seeded_init(options.seed, device) as generator:
        model, config = build_model(options.model, n_marks=first.n_marks, n_bins=first.n_bins, **options.model_overrides)
    use_generator(model, generator[0])
    model.to(device)
    task = _make_task(dataset, options, spec, device, transform, rule, threshold)

    epochs = options.epochs if options.epochs is not None else config.epochs
    batch_size = options.batch_size or config.batch_size
    lr = options.lr or config.lr
    if epochs < 1:
        raise HmvizError(f"--epochs must be at least 1; got {epochs}.")
    if options.patience < 0:
        raise HmvizError(f"--patience must be 0 (never stop early) or a positive number of epochs; got {options.patience}.")
    if options.select_on not in ("loss", "metric"):
        raise HmvizError(f"--select-on must be 'loss' or 'metric'; got '{options.select_on}'.")
    amp = options.amp if options.amp is not None else device.type == "cuda"
    history: list[dict] = []
    common = dict(batch_size=batch_size, patience=options.patience, seed=options.seed, device=device, amp=amp,
                  progress=progress, should_stop=should_stop, history=history,
                  grad_clip=getattr(config, "grad_clip", None), weight_decay=getattr(config, "weight_decay", 0.0))
    t_start = time.perf_counter()
    if hasattr(model, "vae_loss"):
        # SimpleChrome stage 1: the VAE learns from the training genes' signal only, without labels.
        vae_epochs = getattr(config, "vae_epochs", epochs)
        _run_epochs(model, task, params=list(model.vae_parameters()), lr=getattr(config, "vae_lr", lr),
                    epochs=vae_epochs, stage="pretrain",
                    loss_fn=lambda m, batch: m.vae_loss(batch[0]),
                    metric_fn=lambda m: -_vae_valid_loss(m, task), **common)
        for p in model.vae_parameters():
            p.requires_grad_(False)
        params = list(model.head_parameters())
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    task.prepare_model(model)
    select_on = options.select_on
    best_epoch, _ = _run_epochs(model, task, params=params, lr=lr, epochs=epochs, stage="train",
                                select_on=select_on, optimizer=getattr(config, "optimizer", "adam"), **common)
    best_record = next(h for h in history if h["stage"] == "train" and h["epoch"] == best_epoch)
    best_metric = best_record[task.metric_name]
    train_seconds = time.perf_counter() - t_start
    for p in model.parameters():
        p.requires_grad_(True)
    use_generator(model, None)

    metrics = {task.metric_name: best_metric, "best_epoch": best_epoch}
    metrics.update(task.test_metrics(model))
    metrics = {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()}
    split_counts = {s: int(len(first.split_indices(s))) for s in ("train", "valid", "test")}
    balance = class_balance(task)
    genes = record_split(first.gene_ids, first.split)
    card = {
        "model": spec.name,
        "task": spec.task,
        "description": spec.description,
        "config": dataclasses.asdict(config),
        "marks": list(first.marks),
        "n_bins": first.n_bins,
        "bin_size": first.bin_size,
        "tss_bin": first.tss_bin,
        "strand_aware": first.strand_aware,
        "transform": transform.to_dict(),
        "label_rule": str(rule) if rule is not None else ("file" if spec.task != "differential" else None),
        "label_threshold": threshold,
        "cells": list(options.cells) if options.cells else (
            dataset.cell_names[:2] if isinstance(dataset, MultiCellDataset) else None),
        "split": {**first.meta.get("split", {}), "counts": split_counts,
                  **({"class_balance": balance} if balance else {})},
        "genes": genes,
        "training": {
            "epochs_max": epochs, "epochs_run": len([h for h in history if h["stage"] == "train"]),
            "best_epoch": best_epoch, "selected_on": f"validation {select_on}",
            "optimizer": getattr(config, "optimizer", "adam"), "batch_size": batch_size, "lr": lr,
            "patience": options.patience,
            "early_stopping": "no new best validation loss or metric for `patience` epochs",
            "device": str(device), "mixed_precision": bool(amp), "seconds": round(train_seconds, 2),
            **({"bin_lstm_impl": impl} if (impl := lstm_impl_used(model, device)) else {}),
            **({"pairs_per_gene": options.pairs_per_gene, "pair_sampling": options.pair_sampling}
               if spec.task == "ranking" else {}),
        },
        "seed": options.seed,
        "metrics": metrics,
        "history": history,
        "data": {"source": source, "fingerprint": fingerprint, "genes": first.n_genes,
                 "split_fingerprint": genes["split_fingerprint"]},
    }
    return TrainResult(model=model, card=card, history=history)


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


class _BaselineScorer:
    """A fitted scikit-learn baseline behind the scorer interface the tasks use (score, pair logit)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def score(self, x: torch.Tensor) -> torch.Tensor:
        from hmviz.models.baselines import baseline_scores

        return torch.as_tensor(baseline_scores(self.estimator, x.cpu().numpy()))

    def __call__(self, x_a: torch.Tensor, x_b: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(x_a) if x_b is None else self.score(x_a) - self.score(x_b)


class _DifferentialBaselineScorer(_BaselineScorer):
    """A regressor fitted on both cells' features side by side (marks of A, then marks of B)."""

    def __call__(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.score(torch.cat([x_a, x_b], dim=-1))


def train_baseline(dataset: HistoneDataset | MultiCellDataset, name: str, options: TrainOptions) -> dict:
    """Test metrics of the scikit-learn baseline ``name`` (``logistic`` or ``boosted-trees``) trained on
    exactly the split, labels, marks and input transform that ``options`` gives a deep model; the
    result's ``model`` names what was fitted (``logistic``, ``ridge`` for the linear regressor, or
    ``boosted-trees``, which stop early on the split's validation genes above 10,000 training genes).

    ``options.model`` names the deep model it is compared with: a binary model's baseline is a
    classifier on the labels; a ranker's baseline is a regressor on log1p expression (a classifier
    when only labels exist); DeepDiff's is a regressor (ridge or boosted trees) of the same log2 fold
    change on both cells' binned features side by side.
    """
    from hmviz.models import get_spec
    from hmviz.models.baselines import baseline_label, fit_baseline

    spec = get_spec(options.model)
    prep = _prepare(dataset, options, spec)  # every draw takes options.seed; nothing global is reseeded
    task = _make_task(prep.dataset, options, spec, torch.device("cpu"), prep.transform, prep.rule, prep.threshold)
    idx, vidx = torch.as_tensor(task.train_idx), torch.as_tensor(task.valid_idx)
    if spec.task == "differential":
        def features(i):
            return torch.cat([task.xa[i], task.xb[i]], dim=-1).numpy()

        kind, target, scorer_type = "regression", task.diff, _DifferentialBaselineScorer
    elif spec.task == "ranking" and task.expression is not None:
        def features(i):
            return task.x[i].numpy()

        kind, target, scorer_type = "ranking", np.log1p(task.expression), _BaselineScorer
    else:
        def features(i):
            return task.x[i].numpy()

        kind, target, scorer_type = "binary", task.labels, _BaselineScorer
    est = fit_baseline(name, features(idx), target[task.train_idx], task=kind, seed=options.seed,
                       X_val=features(vidx), y_val=target[task.valid_idx])
    out = task.test_metrics(scorer_type(est))
    out = {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}
    return {"model": baseline_label(name, kind), "compared_with": spec.name, **out}


def _vae_valid_loss(model, task) -> float:
    idx = task.valid_idx
    x = task.x if hasattr(task, "x") else task.xa
    with torch.inference_mode():
        losses = [float(model.vae_loss(x[torch.as_tensor(idx[s:s + EVAL_BATCH])].to(task.device)))
                  for s in range(0, len(idx), EVAL_BATCH)]
    return float(np.mean(losses)) if losses else 0.0


def _fingerprint(dataset) -> str:
    if isinstance(dataset, MultiCellDataset):
        return "+".join(c.fingerprint() for c in dataset.cells.values())
    return dataset.fingerprint()


# --------------------------------------------------------------------- inference
def prepare_inputs(card: dict, dataset: HistoneDataset, what: str = "the data") -> torch.Tensor:
    """The model-ready input tensor (genes, bins, marks) for ``dataset`` under ``card``:
    marks selected by name (missing marks are an error), window checked, the card's transform applied."""
    ds = _select_marks(dataset, card["marks"], what)
    _check_window(card, ds, what)
    transform = SignalTransform.from_dict(card["transform"])
    return torch.from_numpy(transform.transform(ds.signal))


def predict_scores(model: nn.Module, card: dict, dataset: HistoneDataset, device: str = "cpu") -> np.ndarray:
    """One score per gene: the logit of 'high' for binary models, the ranking score for rankers."""
    x = prepare_inputs(card, dataset)
    fn = getattr(model, "score", model)
    return _predict(fn, x, np.arange(dataset.n_genes), torch.device(device))


def training_split(card: dict, dataset: HistoneDataset | MultiCellDataset) -> HistoneDataset | None:
    """When ``dataset`` is the data the model was trained on (same fingerprint), its first cell with the
    model's train/valid/test split; otherwise None.

    The split is read from the card's record of its genes (exact, whatever split column the data
    has or lacks). A card that predates gene records has its split rebuilt from ``card["split"]``;
    when that split was the file's and this data has no split column, it cannot be rebuilt (a new
    split would put training genes in the test split) and the answer is None.

    Use it to keep the test split for evaluation and to draw baselines from training genes only.
    """
    if _fingerprint(dataset) != card.get("data", {}).get("fingerprint"):
        return None
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    meta = card.get("split", {})
    if card.get("genes"):
        split = split_of_genes(card["genes"], first.gene_ids)
        if (split == "").any():  # cannot happen for the same fingerprint, unless the card was edited
            return None
        return dataclasses.replace(first, split=split, meta={**first.meta, "split": dict(meta)})
    kind = meta.get("kind", "file")
    if kind == "file" and first.split is None:
        return None
    return ensure_split(first, how=kind, seed=meta.get("seed", card.get("seed", 1)),
                        fractions=tuple(meta.get("fractions", (0.7, 0.15, 0.15))),
                        valid_chroms=meta.get("valid_chroms"), test_chroms=meta.get("test_chroms"))


def evaluation_genes(card: dict, dataset: HistoneDataset | MultiCellDataset) -> tuple[np.ndarray, str, dict]:
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
    record = card.get("genes")
    if not record:
        return _evaluation_genes_without_records(card, dataset)
    model_split = split_of_genes(record, first.gene_ids)
    seen = (model_split == "train") | (model_split == "valid")
    theirs, new = model_split == "test", model_split == ""
    n_test, k, u, s = int(record["test"]["count"]), int(theirs.sum()), int(new.sum()), int(seen.sum())
    counts = {"model_test_genes": n_test, "model_test_genes_in_data": k, "unseen_genes_in_data": u,
              "model_train_valid_genes_left_out": s}
    if s == 0:
        also = f"; {k} of them are its test genes" if k else ""
        return np.ones(n, dtype=bool), (f"all genes of this data ({n}): the model never trained or validated "
                                        f"on any of them{also}"), counts
    if k + u == 0:
        raise DataError(
            f"Every gene of this data ({n}) was a training or validation gene of the model, and none of its "
            f"{n_test} test genes is here, so there is nothing it has not learned from to evaluate on. "
            "Evaluate on data that holds the model's test genes (e.g. the full table it was trained on) "
            "or genes it never saw."
        )
    if _fingerprint(dataset) == card.get("data", {}).get("fingerprint"):
        evaluated_on = f"test split of the training data: the model's {n_test} test genes (from its card)"
    else:
        parts = ([f"{k} of the model's {n_test} test genes"] if k else []) + (
            [f"{u} genes the model never saw"] if u else [])
        evaluated_on = f"{' and '.join(parts)} ({s} training/validation genes of the model in this data left out)"
    return theirs | new, evaluated_on, counts


def _evaluation_genes_without_records(card: dict, dataset) -> tuple[np.ndarray, str, dict]:
    first = dataset.first if isinstance(dataset, MultiCellDataset) else dataset
    note = "; the model card predates gene records"
    trained_on = training_split(card, dataset)
    if trained_on is not None:
        return trained_on.split == "test", f"test split of the training data (rebuilt from the card's split " \
                                           f"settings{note})", {}
    if _fingerprint(dataset) == card.get("data", {}).get("fingerprint"):
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
        if not isinstance(self.task, _SingleCellTask):
            raise ModelError("inputs are defined for single-cell models only.")
        return self.task.x

    def metrics(self, model: nn.Module, inputs: torch.Tensor | None = None) -> dict:
        """Every test metric of ``model`` on the evaluated genes.

        ``inputs`` (single-cell models) replaces :attr:`inputs` for this call only, e.g. with some
        marks masked; it must have the same shape. The set itself is left unchanged.
        """
        if inputs is None:
            return self.task.test_metrics(model)
        if tuple(inputs.shape) != tuple(self.inputs.shape):
            raise ModelError(f"inputs must have shape {tuple(self.inputs.shape)}, got {tuple(inputs.shape)}.")
        task = copy.copy(self.task)
        task.x = inputs
        return task.test_metrics(model)


def evaluation_set(card: dict, dataset: HistoneDataset | MultiCellDataset, device: str | torch.device = "cpu"
                   ) -> EvaluationSet:
    """What a saved model (its ``card``) is evaluated on in ``dataset``, with the card's marks, transform and label rule.

    Genes evaluated: :func:`evaluation_genes` (never a gene the model trained or validated on). Shared by
    :func:`evaluate` and mark masking (:func:`hmviz.explain.ablate_mask`), so both score the same genes.
    """
    from hmviz.models import get_spec

    dev = choose_device(device)
    spec = get_spec(card["model"])
    chosen, evaluated_on, counts = evaluation_genes(card, dataset)
    split = np.full(len(chosen), "test", dtype=object)  # narrowed to the chosen genes once the task is built
    training_data = training_split(card, dataset)
    train_index = np.flatnonzero(training_data.split == "train") if training_data is not None else None
    transform = SignalTransform.from_dict(card["transform"])
    options = TrainOptions(model=card["model"], seed=card.get("seed", 1),
                           cells=tuple(card["cells"]) if card.get("cells") and spec.task == "differential" else None)
    rule = LabelRule.parse(card["label_rule"]) if card.get("label_rule") not in (None, "file") else None
    if spec.task == "differential":
        _differential_cells(dataset, options.cells)  # raises the explanatory error for one-cell data
        cells = {}
        for name, c in dataset.cells.items():
            c = _select_marks(c, card["marks"], f"cell {name}")
            _check_window(card, c, f"cell {name}")
            cells[name] = dataclasses.replace(c, split=split)
        ds = MultiCellDataset(cells, source=dataset.source)
    else:
        if isinstance(dataset, MultiCellDataset):
            raise DataError(f"{spec.name} models one cell type; give the data of one cell.")
        ds = _select_marks(dataset, card["marks"], "the data")
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
    task = _make_task(ds, options, spec, dev, transform, rule, card.get("label_threshold"))
    task.test_idx = task.test_idx[chosen[task.test_idx]]  # genes without a target are already left out
    task.train_idx = task.valid_idx = np.zeros(0, dtype=np.int64)
    if len(task.test_idx) == 0:
        raise DataError("No genes to evaluate on: the genes chosen have no expression value to compare with.")
    return EvaluationSet(task, evaluated_on, train_index, counts)


def evaluate(model_dir, dataset: HistoneDataset | MultiCellDataset, device: str = "auto") -> dict:
    """Metrics of a saved model on ``dataset`` (the genes of :func:`evaluation_set`), one flat dict.

    Adds ``evaluated_on``, ``genes_evaluated``, the gene counts of :func:`evaluation_genes`
    (``model_test_genes``, ``model_test_genes_in_data``, ``unseen_genes_in_data``,
    ``model_train_valid_genes_left_out``; absent for cards without gene records) and ``model``.
    """
    from hmviz.checkpoints import load_model

    dev = choose_device(device)
    model, card = load_model(model_dir, device=dev)
    chosen = evaluation_set(card, dataset, dev)
    out = {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v)
           for k, v in chosen.metrics(model).items()}
    out["evaluated_on"] = chosen.evaluated_on
    out["genes_evaluated"] = chosen.n_genes
    out.update(chosen.gene_counts)
    out["model"] = card["model"]
    return out
