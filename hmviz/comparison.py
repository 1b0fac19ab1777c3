"""Is one model better than another on the same test genes? A paired bootstrap of the difference.

Two models' test metrics each carry a wide interval on a few hundred genes (an AUROC on 200 genes,
about ±0.03), and two such intervals overlap even when one model is ahead on nearly every resample.
:func:`compare` scores both on the genes they share and resamples those genes once for both
(:func:`hmviz.metrics.paired_bootstrap_ci`), so that what the interval measures is the difference.
Its :meth:`Comparison.sentence` says what the interval allows one to say, and no more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hmviz import metrics as M
from hmviz.data.dataset import MultiCellDataset
from hmviz.errors import HmvizError

#: The test metric of each task that intervals and comparisons are computed for, from per-gene scores
#: alone (higher is better for all three): the card's main metric (:data:`hmviz.card.MAIN_METRIC`), except
#: for rankers, whose pairwise accuracy draws pairs; their concordance index is the same accuracy over
#: every comparable pair.
INTERVAL_METRIC = {
    "binary": ("test_auroc", M.auroc),
    "ranking": ("test_concordance_index", M.concordance_index),
    "differential": ("test_r2", M.r2),
}

#: Differences are shown to 3 decimals; one that rounds to 0 is called equal.
DECIMALS = 3


@dataclass(frozen=True)
class Comparison:
    """``model``'s metric minus ``other``'s on the same ``n_genes`` genes, with its bootstrap interval."""

    metric: str
    model: str
    other: str
    n_genes: int
    difference: float
    low: float
    high: float
    level: float
    n_resamples: int

    @property
    def verdict(self) -> Literal["ahead", "behind", "not told apart"]:
        """``ahead`` / ``behind`` when the whole interval is above / below 0, else ``not told apart``."""
        if self.low > 0:
            return "ahead"
        if self.high < 0:
            return "behind"
        return "not told apart"

    def as_dict(self) -> dict:
        """For JSON: the metric, the difference (model minus other), its interval, the genes, the verdict and
        the sentence."""
        return {
            "metric": self.metric,
            "model_minus_baseline": round(self.difference, 6),
            "ci95": [round(self.low, 6), round(self.high, 6)],
            "genes": self.n_genes,
            "verdict": self.verdict,
            "sentence": self.sentence(),
        }

    def cell(self) -> str:
        """The difference and its interval for a table: ``+0.012 (-0.010 to +0.034)``."""
        return f"{_signed(self.difference)} ({_signed(self.low)} to {_signed(self.high)})"

    def sentence(self) -> str:
        """What the comparison shows, in words: the difference, its interval, and what the interval allows."""
        words = M.metric_label(self.metric)
        size = abs(round(self.difference, DECIMALS))
        if size == 0:
            head = f"{self.model} and {self.other} have the same {words} to {DECIMALS} decimals"
        else:
            side = "above" if self.difference > 0 else "below"
            head = f"the {words} of {self.model} is {size:.{DECIMALS}f} {side} that of {self.other}"
        interval = (
            f"the {self.level:.0%} interval of the difference (paired bootstrap over these genes, "
            f"{self.n_resamples:,} resamples) runs from {_signed(self.low)} to {_signed(self.high)}"
        )
        if self.verdict == "ahead":
            tail = f"{self.model} is ahead beyond the resampling noise of these genes"
        elif self.verdict == "behind":
            tail = f"{self.other} is ahead beyond the resampling noise of these genes"
        else:
            tail = "these genes do not tell the two apart"
        return f"On the {self.n_genes:,} test genes both were scored on, {head}; {interval}: {tail}."


def _signed(value: float) -> str:
    return f"{value:+.{DECIMALS}f}"


def compare(
    task: str,
    truth: np.ndarray,
    model_scores: np.ndarray,
    gene_ids,
    other_scores: dict[str, float],
    *,
    model: str,
    other: str,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """The interval metric of ``task`` (:data:`INTERVAL_METRIC`) of a model (``model_scores`` on the genes ``gene_ids``, with their
    ``truth``) minus that of another (``other_scores``, by gene id), on the genes both scored.

    Raises:
        HmvizError: fewer than 2 shared genes, or a metric undefined on them (one class only).
    """
    name, fn = INTERVAL_METRIC[task]
    ids = np.asarray(gene_ids, dtype=object)
    shared = np.flatnonzero([g in other_scores for g in ids])
    if shared.size < 2:
        raise HmvizError(f"{model} and {other} share {shared.size} scored test gene(s): nothing to compare.")
    theirs = np.array([other_scores[g] for g in ids[shared]], dtype=np.float64)
    diff, low, high = M.paired_bootstrap_ci(
        fn, np.asarray(truth)[shared], np.asarray(model_scores)[shared], theirs, n=n, seed=seed, level=level
    )
    return Comparison(name, model, other, int(shared.size), diff, low, high, level, n)


def model_test_scores(
    model, card, dataset, device: str = "cpu"
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(kind, truth, scores, gene ids)`` on the genes :func:`hmviz.evaluate` scores ``model`` on
    (:func:`hmviz.evaluation.evaluation_set`), for the interval metric of ``kind`` (:data:`INTERVAL_METRIC`):
    the model's task, except a ranker on data with labels but no expression, which is scored as the
    binary task (its pairwise accuracy over high/low pairs is the AUROC). None where the data has no truth."""
    from hmviz.evaluation import evaluation_set
    from hmviz.tasks import _DifferentialTask, _RankingTask, _SingleCellTask

    task = evaluation_set(card, dataset, device).task
    rows = task.test_idx
    ids = np.asarray(dataset.gene_ids)[rows]
    if isinstance(task, _DifferentialTask):
        return "differential", task.diff[rows], task.predict(model, rows), ids
    assert isinstance(task, _SingleCellTask)
    kind, truth = ("ranking", task.expression) if isinstance(task, _RankingTask) else ("binary", task.labels)
    if truth is None and kind == "ranking":
        kind, truth = "binary", task.labels
    if truth is None:
        return None
    return kind, truth[rows], task.scores(model, rows), ids


def baselines_like(card, dataset, report: Callable[[str], None] | None = None) -> list[dict]:
    """Both baselines (:data:`hmviz.models.baselines.BASELINES`) trained and tested on ``dataset`` as the
    model of ``card`` was, each with its test genes' scores (``scores_by_gene``); ``report(name)`` after each.

    On the model's own data (:func:`hmviz.evaluation.training_split`) they train on its training genes,
    select on its validation genes and are tested on its test genes, from the card's record of them,
    even when the data has lost its split column; with its labels, marks and transform. On other data
    the split and label rule are the defaults."""
    from hmviz.baselines import train_baseline
    from hmviz.card import ModelCard
    from hmviz.evaluation import training_split
    from hmviz.models.baselines import BASELINES

    card = ModelCard.of(card)
    own = training_split(card, dataset)
    options = card.train_options(own is not None)
    if own is not None:  # the model's own genes in train, valid and test, whatever split column the data has
        split = own.split
        dataset = (
            MultiCellDataset({k: dataclasses.replace(c, split=split) for k, c in dataset.cells.items()}, dataset.source)
            if isinstance(dataset, MultiCellDataset)
            else dataclasses.replace(dataset, split=split)
        )
        options = dataclasses.replace(options, split="file")
    results = []
    for name in BASELINES:
        results.append(train_baseline(dataset, name, options, scores_by_gene=True))
        if report is not None:
            report(name)
    return results


def against_baselines(
    model, card, dataset, device: str = "cpu", *, label: str | None = None, n: int = 1000, seed: int = 0
) -> list[tuple[dict, Comparison | None]]:
    """:func:`baselines_like` the model of ``card``, each with the paired comparison of ``model`` minus it
    on the test genes both scored (None where undefined), as ``evaluate --baselines`` prints it and the
    Evaluate page shows it. ``label`` names the model in the sentences (default: its family)."""
    from hmviz.card import ModelCard
    from hmviz.models.baselines import BASELINE_WORDS

    card = ModelCard.of(card)
    mine = model_test_scores(model, card, dataset, device)
    out: list[tuple[dict, Comparison | None]] = []
    for result in baselines_like(card, dataset):
        by_gene = result.pop("scores_by_gene")
        comparison = None
        if mine is not None:
            try:
                comparison = compare(
                    mine[0],
                    *mine[1:],
                    by_gene,
                    model=label or card.model,
                    other=BASELINE_WORDS.get(result["model"], result["model"]),
                    n=n,
                    seed=seed,
                )
            except HmvizError:
                pass
        out.append((result, comparison))
    return out
