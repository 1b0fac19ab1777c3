"""scikit-learn baselines (logistic, ridge, boosted trees) trained on exactly what a deep model gets.

The estimators themselves are :mod:`hmviz.models.baselines`; this module fits one on the split, labels,
marks and input transform of :func:`hmviz.preparation._prepare` and scores it with the deep model's task.
"""

from __future__ import annotations

import numpy as np
import torch

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.options import TrainOptions
from hmviz.preparation import _prepare
from hmviz.tasks import _make_task


class _FittedBaseline:
    """A fitted scikit-learn baseline that scores genes like a deep model (``score``)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def score(self, x: torch.Tensor) -> torch.Tensor:
        from hmviz.models.baselines import baseline_scores

        return torch.as_tensor(baseline_scores(self.estimator, x.cpu().numpy()))


class _BaselineScorer(_FittedBaseline):
    """A single-cell baseline behind the scorer interface the tasks use (score, pair logit)."""

    def __call__(self, x_a: torch.Tensor, x_b: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(x_a) if x_b is None else self.score(x_a) - self.score(x_b)


class _DifferentialBaselineScorer(_FittedBaseline):
    """A regressor fitted on both cells' features side by side (marks of A, then marks of B)."""

    def __call__(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.score(torch.cat([x_a, x_b], dim=-1))


def train_baseline(
    dataset: HistoneDataset | MultiCellDataset, name: str, options: TrainOptions, scores_by_gene: bool = False
) -> dict:
    """Test metrics of the scikit-learn baseline ``name`` (``logistic`` or ``boosted-trees``) trained on
    exactly the split, labels, marks and input transform that ``options`` gives a deep model; the
    result's ``model`` names what was fitted (``logistic``, ``ridge`` for the linear regressor, or
    ``boosted-trees``, which stop early on the split's validation genes above 10,000 training genes).

    ``options.model`` names the deep model it is compared with: a binary model's baseline is a
    classifier on the labels; a ranker's baseline is a regressor on log1p expression (a classifier
    when only labels exist); DeepDiff's is a regressor (ridge or boosted trees) of the same log2 fold
    change on both cells' binned features side by side.

    With ``scores_by_gene``, the result also holds ``scores_by_gene``: each test gene's id and its
    score (the predicted log2 fold change for DeepDiff's), for a paired comparison with the deep model
    on the same genes (:func:`hmviz.comparison.compare`).
    """
    from hmviz.models import get_spec
    from hmviz.models.baselines import BaselineTask, baseline_label, fit_baseline

    spec = get_spec(options.model)
    prep = _prepare(dataset, options, spec)  # every draw takes options.seed; nothing global is reseeded
    task = _make_task(prep.dataset, options, spec, torch.device("cpu"), prep.transform, prep.rule, prep.threshold)
    idx, vidx = torch.as_tensor(task.train_idx), torch.as_tensor(task.valid_idx)
    kind: BaselineTask
    scorer_type: type[_FittedBaseline]
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
    est = fit_baseline(
        name,
        features(idx),
        target[task.train_idx],
        task=kind,
        seed=options.seed,
        X_val=features(vidx),
        y_val=target[task.valid_idx],
    )
    scorer = scorer_type(est)
    out = task.test_metrics(scorer)
    out = {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}
    result = {"model": baseline_label(name, kind), "compared_with": spec.name, **out}
    if scores_by_gene:
        test = task.test_idx
        scores = task.predict(scorer, test) if spec.task == "differential" else task.scores(scorer, test)
        result["scores_by_gene"] = dict(zip(prep.dataset.gene_ids[test].tolist(), np.asarray(scores, float).tolist()))
    return result
