"""Non-deep baselines (scikit-learn) on the flattened binned signal.

Each gene's ``(bins, marks)`` matrix is flattened to ``bins * marks`` features. A deep model that
cannot beat these is not learning anything the raw features do not already show.

* ``"logistic"``: StandardScaler + LogisticRegression (binary); StandardScaler + Ridge
  (regression / ranking), reported as ``"ridge"`` (:func:`baseline_label`).
* ``"boosted-trees"``: HistGradientBoostingClassifier (binary) / HistGradientBoostingRegressor
  (regression / ranking). Above 10,000 training genes scikit-learn stops boosting early on a
  validation set; by default it would hold out a random 10 % of the training genes drawn from
  ``random_state``, so the result would change with the seed for one split. :func:`fit_baseline`
  takes the split's own validation genes (``X_val``, ``y_val``) for that instead: boosted trees are
  deterministic for a given split, whatever the seed.

``fit_baseline`` returns the fitted scikit-learn estimator; ``baseline_scores`` returns one
continuous score per gene (log-odds for classifiers, the predicted value for regressors), usable
for AUROC, pairwise accuracy and the concordance index.
"""

from __future__ import annotations

import difflib
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from hmviz.errors import ModelError

BASELINES = ("logistic", "boosted-trees")
BaselineTask = Literal["binary", "regression", "ranking"]


def flatten_features(X: np.ndarray) -> np.ndarray:
    """``(genes, bins, marks)`` -> ``(genes, bins * marks)`` float64 (bin-major, marks fastest)."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ModelError(f"Baselines expect the signal as (genes, bins, marks), got an array of shape {X.shape}.")
    return X.reshape(X.shape[0], -1).astype(np.float64, copy=False)


#: What each baseline label (:func:`baseline_label`) is, in words.
BASELINE_WORDS = {"logistic": "logistic regression", "ridge": "ridge regression", "boosted-trees": "boosted trees"}


def baseline_label(name: str, task: BaselineTask = "binary") -> str:
    """What baseline ``name`` is for ``task``: ``logistic`` (classifier), ``ridge`` (the linear
    regressor) or ``boosted-trees``."""
    return "ridge" if name == "logistic" and task != "binary" else name


def make_baseline(name: str, task: BaselineTask = "binary", seed: int = 0) -> BaseEstimator:
    """An unfitted estimator for ``name`` and ``task`` (``"ranking"`` uses the regressors)."""
    if name not in BASELINES:
        close = difflib.get_close_matches(name, BASELINES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"Unknown baseline {name!r}. Valid baselines: {', '.join(BASELINES)}.{hint}")
    if task not in ("binary", "regression", "ranking"):
        raise ModelError(f"Baseline task must be 'binary', 'regression' or 'ranking', got {task!r}.")
    if name == "logistic":
        if task == "binary":
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if task == "binary":
        return HistGradientBoostingClassifier(random_state=seed)
    return HistGradientBoostingRegressor(random_state=seed)


def fit_baseline(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    task: BaselineTask = "binary",
    seed: int = 0,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> BaseEstimator:
    """Fit baseline ``name`` on ``X`` ``(genes, bins, marks)`` and targets ``y`` ``(genes,)``.

    ``task="binary"`` needs 0/1 labels with both classes present; ``"regression"`` and
    ``"ranking"`` fit a regressor to continuous ``y`` (e.g. log expression).

    ``X_val``/``y_val`` (the validation genes): boosted trees use them for early stopping, which
    scikit-learn turns on above 10,000 training genes, instead of a random internal hold-out of the
    training genes; below that there is no early stopping (as without them).
    """
    features = flatten_features(X)
    y = np.asarray(y)
    if y.shape != (features.shape[0],):
        raise ModelError(f"Baseline needs one target per gene: X has {features.shape[0]} genes, y has shape {y.shape}.")
    if task == "binary" and np.unique(y).size != 2:
        raise ModelError(
            f"Binary baseline needs labels from both classes, got {np.unique(y).size} distinct value(s). "
            "Check the label rule and the split."
        )
    estimator = make_baseline(name, task, seed)
    if isinstance(estimator, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        early = features.shape[0] > 10_000
        estimator.set_params(early_stopping=early)
        if early and X_val is not None and y_val is not None and len(y_val):
            estimator.fit(features, y, X_val=flatten_features(X_val), y_val=np.asarray(y_val))
            return estimator
        if early:
            raise ModelError(
                "Boosted trees on more than 10,000 genes stop early on validation genes; give them "
                "(X_val, y_val) so that the result does not depend on a random internal split."
            )
    estimator.fit(features, y)
    return estimator


def baseline_scores(estimator: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """One float score per gene: log-odds (``decision_function``) for classifiers, prediction for regressors."""
    features = flatten_features(X)
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if hasattr(final, "decision_function"):
        return np.asarray(estimator.decision_function(features), dtype=np.float64)
    return np.asarray(estimator.predict(features), dtype=np.float64)
