"""Every evaluation metric once, named for what it is.

All functions take array-likes (numpy arrays, lists, CPU tensors) and return a Python ``float``.
Inputs that make a metric undefined (one class only, a constant vector, no comparable pair, NaN)
raise :class:`~hmviz.errors.HmvizError` with the reason instead of returning NaN.

Naming: :func:`pearson_r` is the Pearson correlation; :func:`r2` is the coefficient of
determination ``1 - SS_res / SS_tot``. They are different numbers (DeepDiff's "R2" was Pearson r).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score

from hmviz.errors import HmvizError

_WORDS = {
    "valid": "validation",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "pearson": "Pearson",
    "spearman": "Spearman",
    "r2": "R²",
    "mse": "MSE",
}


def metric_label(metric: str) -> str:
    """A metric's name in words: ``test_auroc -> 'test AUROC'``, ``test_r2 -> 'test R²'``,
    ``test_pairwise_accuracy -> 'test pairwise accuracy'``, ``valid_loss -> 'validation loss'``."""
    return " ".join(_WORDS.get(w, w) for w in str(metric).split("_"))


ArrayLike = Any


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise HmvizError(f"{name} must be one value per gene (a 1-D array), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise HmvizError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite value(s).")
    return arr


def _pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _vector(a, name_a), _vector(b, name_b)
    if x.shape != y.shape:
        raise HmvizError(f"{name_a} and {name_b} must have one value per gene each, got {x.size} and {y.size}.")
    if x.size == 0:
        raise HmvizError("No genes to evaluate: the arrays are empty.")
    return x, y


def _binary_labels(y_true: ArrayLike, metric: str) -> np.ndarray:
    y = _vector(y_true, "y_true")
    values = np.unique(y)
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise HmvizError(f"{metric} needs 0/1 labels, got values {values[:5].tolist()}.")
    if values.size < 2:
        raise HmvizError(
            f"{metric} needs both classes in the test split, but every gene is labelled {int(values[0])}. "
            "Use a larger or stratified split."
        )
    return y


# -- binary classification ---------------------------------------------------------------------


def auroc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve for 0/1 labels and any monotone score (logit or probability)."""
    y = _binary_labels(y_true, "AUROC")
    _, s = _pair(y, scores, "y_true", "scores")
    return float(roc_auc_score(y, s))


def auprc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve, computed as **average precision** (sklearn's
    ``average_precision_score``: sum over thresholds of precision x recall increment, no
    trapezoidal interpolation). A random classifier scores the positive fraction."""
    y = _binary_labels(y_true, "AUPRC")
    _, s = _pair(y, scores, "y_true", "scores")
    return float(average_precision_score(y, s))


def accuracy(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.0) -> float:
    """Fraction of genes whose predicted class (``score > threshold``) equals the 0/1 label.

    The default ``threshold=0.0`` is for logits (hmviz models output logits; sigmoid(0) = 0.5).
    Pass ``threshold=0.5`` when ``scores`` are probabilities.
    """
    y, s = _pair(y_true, scores, "y_true", "scores")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise HmvizError(f"Accuracy needs 0/1 labels, got values {np.unique(y)[:5].tolist()}.")
    return float(np.mean((s > threshold) == (y == 1.0)))


def balanced_accuracy(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.0) -> float:
    """Mean of the recall of each class at ``score > threshold`` (0.5 means no better than one class for
    every gene, whatever the class balance): scikit-learn's ``balanced_accuracy_score``."""
    from sklearn.metrics import balanced_accuracy_score

    y, s = _pair(y_true, scores, "y_true", "scores")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise HmvizError(f"Balanced accuracy needs 0/1 labels, got values {np.unique(y)[:5].tolist()}.")
    return float(balanced_accuracy_score(y == 1.0, s > threshold))


def balanced_threshold(y_true: ArrayLike, scores: ArrayLike) -> float:
    """The threshold (class high when ``score > threshold``) with the highest balanced accuracy on these
    genes, i.e. Youden's J = TPR - FPR on scikit-learn's ROC curve; halfway between the two scores it
    separates (the highest of equally good cuts). Meant for validation genes: a model
    whose logits are shifted (every gene on one side of 0) still gets a useful cut."""
    from sklearn.metrics import roc_curve

    y, s = _pair(y_true, scores, "y_true", "scores")
    if len(np.unique(y)) < 2:
        raise HmvizError("A decision threshold needs genes of both classes.")
    fpr, tpr, cuts = roc_curve(y == 1.0, s)  # class high when score >= cuts[k]; cuts fall
    k = int(np.argmax(tpr - fpr))
    lower = s[s < cuts[k]]
    below = float(lower.max()) if lower.size else float(cuts[k]) - 1.0
    return float((float(cuts[k]) + below) / 2) if np.isfinite(cuts[k]) else float(s.max())


# -- regression --------------------------------------------------------------------------------


def _check_not_constant(x: np.ndarray, name: str, metric: str) -> None:
    if x.size < 2 or np.all(x == x[0]):
        raise HmvizError(f"{metric} is undefined when {name} is constant (or has fewer than 2 genes).")


def pearson_r(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Pearson correlation coefficient between truth and prediction (not R^2; see :func:`r2`)."""
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    _check_not_constant(y, "y_true", "Pearson r")
    _check_not_constant(p, "y_pred", "Pearson r")
    return float(stats.pearsonr(y, p)[0])


def spearman_r(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman rank correlation (Pearson r of the average ranks; ties get their mean rank)."""
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    _check_not_constant(y, "y_true", "Spearman r")
    _check_not_constant(p, "y_pred", "Spearman r")
    return float(stats.spearmanr(y, p)[0])


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 - sum((y - p)^2) / sum((y - mean(y))^2)``; can be negative."""
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    _check_not_constant(y, "y_true", "R^2")
    return float(r2_score(y, p))


def regression_slope(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Least-squares slope of ``y_pred`` regressed on ``y_true``: ``cov(y, p) / var(y)``.

    1 when predictions follow the measured values on their scale; below 1 when they are shrunk
    toward a constant (0 for constant predictions). Pearson r is blind to this; R^2 is not.
    """
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    _check_not_constant(y, "y_true", "the regression slope")
    yc = y - y.mean()
    return float(np.dot(yc, p - p.mean()) / np.dot(yc, yc))


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean of ``(y_true - y_pred)^2``."""
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    return float(np.mean((y - p) ** 2))


# -- ranking -----------------------------------------------------------------------------------


def pairwise_accuracy(y_true: ArrayLike, scores: ArrayLike, pairs: ArrayLike) -> float:
    """Fraction of the given gene pairs ordered correctly by ``scores``.

    Args:
        y_true: ``(genes,)`` true expression.
        scores: ``(genes,)`` predicted scores.
        pairs: ``(n_pairs, 2)`` integer gene indices ``(i, j)``.

    Pairs with tied truth are excluded; a pair with tied scores counts 1/2.
    """
    y, s = _pair(y_true, scores, "y_true", "scores")
    idx = np.asarray(pairs)
    if idx.ndim != 2 or idx.shape[1] != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise HmvizError(f"pairs must be an (n_pairs, 2) integer array of gene indices, got shape {idx.shape}.")
    if idx.size and (idx.min() < -y.size or idx.max() >= y.size):
        raise HmvizError(f"pairs refer to gene indices outside 0..{y.size - 1}.")
    true_sign = np.sign(y[idx[:, 0]] - y[idx[:, 1]])
    comparable = true_sign != 0
    if not np.any(comparable):
        raise HmvizError("Pairwise accuracy needs at least one pair whose true expression differs.")
    score_sign = np.sign(s[idx[comparable, 0]] - s[idx[comparable, 1]])
    credit = np.where(score_sign == 0, 0.5, (score_sign == true_sign[comparable]).astype(np.float64))
    return float(np.mean(credit))


def _tied_pairs(values: np.ndarray) -> int:
    counts = np.unique(values, return_counts=True)[1].astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))


def concordance_index(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Harrell's concordance index over all gene pairs, in O(n log n).

    ``(concordant + 0.5 * tied_scores) / comparable`` over pairs with different truth (pairs with
    tied truth are not comparable). Equal to the pairwise accuracy over all comparable pairs.

    It follows from Kendall's tau-b (computed by scipy in O(n log n)): with ``P - Q =
    tau_b * sqrt((n0 - ties_truth) * (n0 - ties_scores))`` and ``comparable = n0 - ties_truth``,
    ``C = 0.5 + (P - Q) / (2 * comparable)``.
    """
    y, s = _pair(y_true, scores, "y_true", "scores")
    n0 = y.size * (y.size - 1) // 2
    comparable = n0 - _tied_pairs(y)
    if comparable == 0:
        raise HmvizError("The concordance index needs at least two genes with different true expression.")
    untied_scores = n0 - _tied_pairs(s)
    if untied_scores == 0:
        return 0.5  # every score tied: every comparable pair counts 1/2
    tau_b = stats.kendalltau(y, s, variant="b")[0]
    concordant_minus_discordant = tau_b * np.sqrt(float(comparable) * float(untied_scores))
    return float(0.5 + concordant_minus_discordant / (2.0 * comparable))


def antisymmetry_error(p_ab: ArrayLike, p_ba: ArrayLike) -> float:
    """``max |p_ab + p_ba - 1|`` over pairs: 0 for a ranker whose P(b above a) = 1 - P(a above b)."""
    a, b = _pair(p_ab, p_ba, "p_ab", "p_ba")
    return float(np.max(np.abs(a + b - 1.0)))


# -- differential expression -------------------------------------------------------------------


def direction_auroc(true_logfc: ArrayLike, pred_logfc: ArrayLike) -> float:
    """AUROC for the direction of change: up (true log fold change > 0) vs down (< 0).

    Genes whose true log fold change is exactly 0 are excluded; the predicted log fold change is
    the score.
    """
    t, p = _pair(true_logfc, pred_logfc, "true_logfc", "pred_logfc")
    keep = t != 0
    up = (t[keep] > 0).astype(np.float64)
    if up.size == 0 or np.all(up == up[0]):
        raise HmvizError(
            "Direction AUROC needs genes that go up and genes that go down between the two cells; "
            f"this split has {int(up.sum())} up and {int(up.size - up.sum())} down (unchanged genes are excluded)."
        )
    return float(roc_auc_score(up, p[keep]))


# -- bundles -----------------------------------------------------------------------------------


def binary_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.0) -> dict[str, float]:
    """Binary-task metrics: ``{"auroc", "auprc", "accuracy", "n_genes", "positive_fraction"}``.

    ``scores`` are logits by default; see :func:`accuracy` for ``threshold``.
    """
    y, s = _pair(y_true, scores, "y_true", "scores")
    return {
        "auroc": auroc(y, s),
        "auprc": auprc(y, s),
        "accuracy": accuracy(y, s, threshold),
        "n_genes": float(y.size),
        "positive_fraction": float(np.mean(y)),
    }


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Regression metrics: ``{"pearson_r", "spearman_r", "r2", "mse", "concordance_index", "n_genes"}``."""
    y, p = _pair(y_true, y_pred, "y_true", "y_pred")
    return {
        "pearson_r": pearson_r(y, p),
        "spearman_r": spearman_r(y, p),
        "r2": r2(y, p),
        "mse": mean_squared_error(y, p),
        "concordance_index": concordance_index(y, p),
        "n_genes": float(y.size),
    }


# -- uncertainty -------------------------------------------------------------------------------


def _auroc_rows(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`auroc` of every row of ``(resamples, genes)`` label and score matrices, NaN where a row
    has one class. The Mann-Whitney form ``(rank sum of positives - P(P+1)/2) / (P N)`` with mid-ranks,
    so that a tied positive/negative pair counts 1/2, as in :func:`auroc`."""
    ranks = stats.rankdata(s, axis=1)
    pos = y.sum(axis=1)
    neg = y.shape[1] - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((ranks * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)


def _pearson_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`pearson_r` of every row of two ``(resamples, genes)`` matrices, NaN where a row is constant."""
    y = y - y.mean(axis=1, keepdims=True)
    p = p - p.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (y * p).sum(axis=1) / np.sqrt((y * y).sum(axis=1) * (p * p).sum(axis=1))
    constant = (np.ptp(y, axis=1) == 0) | (np.ptp(p, axis=1) == 0)  # exact: not a rounding-noise r
    return np.where(constant, np.nan, r)


#: Metrics computed for many resamples at once (one row each); the others are called once per resample.
_ROWWISE = {auroc: _auroc_rows, pearson_r: _pearson_rows}

#: Resampled values held at once by :func:`bootstrap_ci` (bounds its memory on genome-wide test sets).
_BOOTSTRAP_CHUNK = 2_000_000


def _resampled(one, rows, values: list[np.ndarray], n: int, seed: int, level: float) -> tuple[float, float]:
    """The central ``level`` interval of a statistic over ``n`` bootstrap resamples of genes (the rows of
    every array in ``values``, drawn with replacement); ``one(*arrays)`` computes it once (raising
    :class:`HmvizError` where undefined), ``rows(*matrices)`` for many resamples at once (NaN where
    undefined) or is None. Undefined resamples are skipped; more than half undefined is an error."""
    size = len(values[0])
    if rows is not None:
        values = [v.astype(np.float64) for v in values]
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    chunk = max(1, _BOOTSTRAP_CHUNK // size) if rows is not None else 1
    for start in range(0, n, chunk):
        idx = rng.integers(0, size, (min(chunk, n - start), size))  # the stream of one draw per resample
        if rows is not None:
            got = rows(*(v[idx] for v in values))
            draws.extend(got[np.isfinite(got)].tolist())
            continue
        try:
            draws.append(float(one(*(v[idx[0]] for v in values))))
        except HmvizError:
            continue
    if len(draws) * 2 < n:
        raise HmvizError(
            f"The metric is undefined in {n - len(draws)} of {n} bootstrap resamples of {size} genes: "
            "too few genes (or one class only) for an interval."
        )
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _checked(name: str, arrays: tuple, n: int, level: float) -> list[np.ndarray]:
    if not arrays:
        raise HmvizError(f"{name} needs at least one array of per-gene values.")
    values = [np.asarray(a) for a in arrays]
    size = len(values[0])
    if any(len(v) != size for v in values):
        raise HmvizError(f"{name} needs arrays of one length, got {[len(v) for v in values]}.")
    if size < 2 or n < 1 or not 0 < level < 1:
        raise HmvizError(f"{name} needs at least 2 genes, n >= 1 and 0 < level < 1 (got {size}, {n}, {level}).")
    return values


def bootstrap_ci(
    metric_fn, *arrays: ArrayLike, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric_fn(*arrays)`` over genes.

    Each of the ``n`` resamples draws as many genes as there are, with replacement (the same rows
    of every array), and recomputes the metric; the interval holds the central ``level`` of those
    values. Resamples where the metric is undefined (one class only, a constant vector) are
    skipped; when more than half are, the interval is undefined and :class:`HmvizError` says so.
    :func:`auroc` and :func:`pearson_r` are computed for many resamples at once (the same draws and
    values as one call per resample; ``bench/bench_metrics.py`` times both).

    Args:
        metric_fn: a metric of this module, e.g. :func:`auroc` (``(y_true, scores) -> float``).
        arrays: ``(genes,)`` arrays of equal length, passed to ``metric_fn`` in this order.
        n: number of resamples; ``seed`` seeds them (same seed, same interval).
    """
    values = _checked("bootstrap_ci", arrays, n, level)
    rows = _ROWWISE.get(metric_fn)
    if rows is not None:
        metric_fn(*values)  # the whole set's checks (label values, finiteness) and messages
    return _resampled(metric_fn, rows, values, n, seed, level)


def paired_bootstrap_ci(
    metric_fn,
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``metric_fn(y, a) - metric_fn(y, b)`` on the same genes, with its percentile bootstrap interval.

    Two models scored on the same genes are compared on the same resamples (each draws the genes once,
    with replacement, and both models' metric is recomputed on that draw), so the interval is of the
    *difference*: the genes' own difficulty, shared by both, cancels, and when the two models err on the
    same genes it is much narrower than either model's own interval. Undefined resamples are skipped as
    in :func:`bootstrap_ci`, with the same seed giving the same draws.

    Returns:
        ``(difference on all genes, low, high)``.
    """
    values = _checked("paired_bootstrap_ci", (y_true, scores_a, scores_b), n, level)
    y, a, b = values
    whole = metric_fn(y, a) - metric_fn(y, b)  # the whole set's checks and messages

    def one(y, a, b):
        return metric_fn(y, a) - metric_fn(y, b)

    vec = _ROWWISE.get(metric_fn)
    rows = None if vec is None else (lambda y, a, b: vec(y, a) - vec(y, b))
    return (float(whole), *_resampled(one, rows, values, n, seed, level))
