"""What a model is asked to predict: binary labels, a continuous target, or ranked gene pairs.

* :class:`LabelRule` turns expression into 0/1 labels. The threshold is fitted on the **training
  genes only** and then applied to every gene (DeepChrome's rule: 1 = RPKM above the median).
* :func:`log1p_expression` is the continuous (regression) target.
* :func:`sample_pairs` draws gene pairs within one split for pairwise ranking models
  (target 1 when the first gene is more highly expressed than the second).

Genes without an expression value (NaN) are never labelled: they get :data:`NO_LABEL` from
:meth:`LabelRule.apply`, are dropped (and listed) by :func:`label_dataset`, and are left out of
pairs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hmviz.data.dataset import HistoneDataset
from hmviz.errors import DataError

log = logging.getLogger(__name__)

LabelKind = Literal["median", "quantile", "threshold"]
LABEL_KINDS: tuple[str, ...] = ("median", "quantile", "threshold")

#: Label given by :meth:`LabelRule.apply` to genes whose expression is NaN (not a class).
NO_LABEL: int = -1

#: Default for :func:`sample_pairs`: pairs whose expression differs by at most this much on the
#: log1p scale count as ties and are skipped. 0.1 is a fold change of about 1.1 in (expression + 1),
#: below the replicate noise of RNA-seq, and it removes the many exact ties between unexpressed genes.
DEFAULT_TIE_TOLERANCE: float = 0.1

_ACCEPTED = "'median', 'quantile:Q' with 0 < Q < 1 (e.g. 'quantile:0.75') or 'threshold:T' (e.g. 'threshold:5.0')"


def _as_expression(expression: np.ndarray | Sequence[float]) -> np.ndarray:
    expr = np.asarray(expression, dtype=np.float64)
    if expr.ndim != 1:
        raise DataError(f"expression must be one value per gene (1-D); got shape {expr.shape}.")
    return expr


def _as_index(index: np.ndarray | Sequence[int], n: int, what: str) -> np.ndarray:
    idx = np.asarray(index)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise DataError(f"The {what} mask has {idx.shape[0]} entries but there are {n} genes.")
        return np.flatnonzero(idx)
    idx = idx.astype(np.int64, copy=False).ravel()
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise DataError(f"The {what} index refers to gene rows outside 0..{n - 1}.")
    return np.unique(np.where(idx < 0, idx + n, idx))


@dataclass(frozen=True)
class LabelRule:
    """How expression becomes a binary label: 1 (high) when expression > threshold.

    * ``median``: threshold = median expression of the training genes (DeepChrome's rule).
    * ``quantile`` with ``value`` q in (0, 1): threshold = the q-quantile of the training genes,
      so about ``1 - q`` of them are labelled high.
    * ``threshold`` with ``value`` t: a fixed threshold in the units of the expression column.

    ``str(rule)`` gives the text form accepted by :meth:`parse` (``median``, ``quantile:0.75``,
    ``threshold:5.0``); that text is what model cards store.
    """

    kind: LabelKind = "median"
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LABEL_KINDS:
            raise DataError(f"Unknown label rule '{self.kind}'; use {_ACCEPTED}.")
        if self.kind == "median":
            if self.value is not None:
                raise DataError(f"The median rule takes no value (got {self.value}); use 'median'.")
            return
        if self.value is None:
            raise DataError(f"The {self.kind} rule needs a value; use {_ACCEPTED}.")
        value = float(self.value)
        if not math.isfinite(value):
            raise DataError(f"The {self.kind} rule needs a finite value; got {self.value}.")
        if self.kind == "quantile" and not 0.0 < value < 1.0:
            raise DataError(f"A quantile must lie strictly between 0 and 1; got {value}. Use e.g. 'quantile:0.75'.")
        object.__setattr__(self, "value", value)

    @classmethod
    def parse(cls, text: str | LabelRule) -> LabelRule:
        """Read ``median``, ``quantile:Q`` or ``threshold:T`` (spaces and case are ignored)."""
        if isinstance(text, LabelRule):
            return text
        raw = str(text)
        s = raw.strip().lower().replace(" ", "")
        kind, sep, rest = s.partition(":")
        if kind == "median" and not sep:
            return cls("median")
        if kind in ("quantile", "threshold") and sep:
            try:
                value = float(rest)
            except ValueError:
                raise DataError(f"Label rule '{raw}': '{rest}' is not a number; use {_ACCEPTED}.") from None
            return cls(kind, value)  # type: ignore[arg-type]
        raise DataError(f"Label rule '{raw}' is not understood; use {_ACCEPTED}.")

    def __str__(self) -> str:
        return self.kind if self.kind == "median" else f"{self.kind}:{self.value!r}"

    def fit(self, expression: np.ndarray | Sequence[float], train_index: np.ndarray | Sequence[int]) -> float:
        """The threshold, computed from the training genes only.

        ``expression``: shape (genes,), any non-negative unit (RPKM, TPM, counts).
        ``train_index``: integer rows (or a boolean mask) of the training genes.
        Training genes with NaN expression are left out (and logged). Raises :class:`DataError`
        when no training gene has a value or when the rule puts every training gene in one class.
        """
        expr = _as_expression(expression)
        train = _as_index(train_index, expr.size, "training")
        values = expr[train]
        finite = np.isfinite(values)
        if not finite.any():
            raise DataError(
                f"None of the {train.size} training genes has an expression value; "
                "check the expression column and that the split assigns genes to 'train'."
            )
        if not finite.all():
            log.warning(
                "%d of %d training genes have no expression value and are left out of the %s threshold.",
                int((~finite).sum()),
                train.size,
                self,
            )
        values = values[finite]
        if self.kind == "median":
            threshold = float(np.median(values))
        elif self.value is None:  # __post_init__ refuses this; a rule changed after it was made
            raise DataError(f"The {self.kind} rule needs a value; use {_ACCEPTED}.")
        elif self.kind == "quantile":
            threshold = float(np.quantile(values, self.value))
        else:
            threshold = float(self.value)
        high = int((values > threshold).sum())
        if high == 0 or high == values.size:
            cls_name = "high" if high else "low"
            raise DataError(
                f"Label rule '{self}' (threshold {threshold:.4g}) puts all {values.size} training genes "
                f"in the '{cls_name}' class, so there is nothing to learn. The training expression ranges "
                f"{values.min():.4g}..{values.max():.4g} with {int((values == threshold).sum())} genes tied "
                f"at the threshold; choose another rule, e.g. 'median', 'quantile:0.75' or a threshold "
                "inside that range."
            )
        return threshold

    def apply(self, expression: np.ndarray | Sequence[float], threshold: float) -> np.ndarray:
        """Labels shape (genes,) int8: 1 when expression > threshold, else 0.

        Genes with NaN expression get :data:`NO_LABEL` (-1), which is not a class: drop them
        (:func:`label_dataset` does) before training or evaluating.
        """
        expr = _as_expression(expression)
        labels = (expr > float(threshold)).astype(np.int8)
        missing = ~np.isfinite(expr)
        if missing.any():
            labels[missing] = NO_LABEL
            log.warning("%d genes have no expression value and get no label.", int(missing.sum()))
        return labels


def label_dataset(
    dataset: HistoneDataset, rule: LabelRule | str = "median", train_index: np.ndarray | None = None
) -> HistoneDataset:
    """A new dataset with ``labels`` from ``rule`` fitted on its training genes.

    ``train_index`` defaults to the dataset's ``train`` split. Genes without an expression value
    are dropped, and their ids are logged and recorded in ``meta["labels"]["excluded_genes"]``;
    ``meta["labels"]`` also records the rule and the threshold (for the model card).
    """
    rule = LabelRule.parse(rule)
    if dataset.expression is None:
        raise DataError(
            "The dataset has no expression values to label from. Add an expression column "
            "(or join an expression table by gene_id), or use a file that already has labels."
        )
    if train_index is None:
        train_index = dataset.split_indices("train")
        if train_index.size == 0:
            raise DataError("The dataset's split has no 'train' genes to fit the label threshold on.")
    threshold = rule.fit(dataset.expression, train_index)
    labels = rule.apply(dataset.expression, threshold)
    keep = labels != NO_LABEL
    excluded = dataset.gene_ids[~keep].tolist()
    if excluded:
        shown = ", ".join(excluded[:5]) + (", ..." if len(excluded) > 5 else "")
        log.warning("Dropped %d genes without an expression value: %s", len(excluded), shown)
    kept = dataset.subset(keep) if excluded else dataset
    out = dataclasses.replace(kept, labels=labels[keep], meta=dict(kept.meta))
    out.meta["labels"] = {"rule": str(rule), "threshold": threshold, "excluded_genes": excluded}
    return out


def log1p_expression(expression: np.ndarray | Sequence[float]) -> np.ndarray:
    """The continuous target: ``log(1 + expression)``, shape (genes,) float64; NaN stays NaN.

    Negative expression is an error (RPKM, TPM and counts are never negative).
    """
    expr = _as_expression(expression)
    if (expr < 0).any():
        bad = int((expr < 0).sum())
        raise DataError(
            f"{bad} genes have negative expression (minimum {np.nanmin(expr):.4g}); log1p needs "
            "non-negative values such as RPKM, TPM or counts. Is the column already log-transformed?"
        )
    return np.log1p(expr)


def sample_pairs(
    expression: np.ndarray | Sequence[float],
    index: np.ndarray | Sequence[int],
    n_pairs: int,
    seed: int,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random gene pairs for pairwise ranking, drawn within one split.

    ``expression``: shape (genes,), all genes; ``index``: the rows (or a boolean mask) of one
    split. Both genes of every pair come from ``index``, so pairs never mix splits. Pairs whose
    ``|log1p(e_i) - log1p(e_j)| <= tie_tolerance`` (default :data:`DEFAULT_TIE_TOLERANCE`) are
    never drawn; genes with NaN expression are skipped.

    Returns ``(i, j, target)``, each shape (n_pairs,): ``i`` and ``j`` int64 rows into
    ``expression``, ``target`` int8 = 1 when ``e_i > e_j``. Pairs are drawn uniformly (with
    replacement) from all distinguishable ordered pairs, and the order within each pair is then set so
    that exactly ``n_pairs - n_pairs // 2`` targets are 1: the classes are balanced. The same seed
    gives the same pairs.
    """
    expr = _as_expression(expression)
    rows = _as_index(index, expr.size, "split")
    n_pairs = int(n_pairs)
    if n_pairs < 1:
        raise DataError(f"n_pairs must be at least 1; got {n_pairs}.")
    tie_tolerance = float(tie_tolerance)
    if not tie_tolerance >= 0:
        raise DataError(f"tie_tolerance must be >= 0 (log1p units); got {tie_tolerance}.")
    rows = rows[np.isfinite(expr[rows])]
    y = log1p_expression(expr[rows])
    order = np.argsort(y, kind="stable")
    rows, y = rows[order], y[order]
    m = y.size
    # For the gene at sorted position p, partners are positions [0, below[p]) and [above[p], m).
    below = np.searchsorted(y, y - tie_tolerance, side="left")
    above = np.searchsorted(y, y + tie_tolerance, side="right")
    n_partners = below + (m - above)
    if m < 2 or n_partners.sum() == 0:
        raise DataError(
            f"This split has {m} genes with an expression value and no two of them differ by more than "
            f"{tie_tolerance} on the log1p scale, so no gene pairs can be formed. Use a larger split or "
            "a smaller tie_tolerance."
        )
    rng = np.random.default_rng(seed)
    weights = n_partners / n_partners.sum()
    first = np.empty(0, dtype=np.int64)
    second = np.empty(0, dtype=np.int64)
    while first.size < n_pairs:
        need = n_pairs - first.size
        a = rng.choice(m, size=need, p=weights)
        u = rng.integers(0, n_partners[a])
        b = np.where(u < below[a], u, above[a] + (u - below[a]))
        # Float rounding at the tolerance edge is settled by the exact test used everywhere else.
        ok = np.abs(y[a] - y[b]) > tie_tolerance
        first = np.concatenate([first, a[ok]])
        second = np.concatenate([second, b[ok]])
    hi = np.where(y[first] > y[second], first, second)
    lo = np.where(y[first] > y[second], second, first)
    target = (rng.permutation(n_pairs) >= n_pairs // 2).astype(np.int8)
    i = np.where(target == 1, rows[hi], rows[lo])
    j = np.where(target == 1, rows[lo], rows[hi])
    return i.astype(np.int64), j.astype(np.int64), target
