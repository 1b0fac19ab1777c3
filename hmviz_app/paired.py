"""Two models on the same test genes, for the pages: the test genes' truth and a model's scores on them
(the Evaluate page's interval and baselines), and the paired comparison of two models on the data in use
(the Train page's Compare models). The maths is :mod:`hmviz.comparison`."""

from __future__ import annotations

import numpy as np
import streamlit as st

from hmviz.comparison import Comparison, compare
from hmviz.errors import HmvizError
from hmviz_app import state


def test_truth_and_scores(entry: state.ModelEntry, data: state.DataEntry, session):
    """The genes the model is evaluated on in ``data`` (:meth:`ExplainSession.evaluation_rows`, never one it
    trained or validated on) with a known truth: ``(kind, truth, scores, gene ids)``, ``kind`` naming the
    interval metric (:data:`hmviz.comparison.INTERVAL_METRIC`): the model's task, or ``binary`` for a ranker
    on data with labels but no expression. None when the data has no truth (no labels for a binary model,
    nothing measured for a ranker, not both cells' expression for DeepDiff)."""
    rows = session.evaluation_rows()
    scores = state.scores(entry.cache_key, data.key, session)
    kind = "binary" if ranked_on_labels(entry, data) else entry.task  # a ranker's pairwise accuracy is then the AUROC
    truth = session.labels() if kind == "binary" else session.measured()
    if truth is None:
        return None
    if kind == "binary":
        rows = rows[truth[rows] >= 0]
    rows = rows[np.isfinite(truth[rows])]
    return kind, truth[rows], scores[rows], session.dataset.gene_ids[rows]


def ranked_on_labels(entry: state.ModelEntry, data: state.DataEntry) -> bool:
    """A ranker on data with no expression: it is scored, and its baselines are trained, on the labels."""
    return entry.task == "ranking" and data.first.expression is None


def same_target(a: state.ModelEntry, b: state.ModelEntry) -> bool:
    """Whether two models were trained for the same target: the task, the label rule and its threshold."""
    ca, cb = a.card, b.card
    return a.task == b.task and ca.label_rule == cb.label_rule and ca.label_threshold == cb.label_threshold


def versus(a: state.ModelEntry, b: state.ModelEntry, data: state.DataEntry) -> Comparison | str:
    """``a`` minus ``b`` on the test genes of ``data`` that neither trained or validated on, or why not (a
    sentence for the page)."""
    if not same_target(a, b):
        return (f"{a.label} and {b.label} were trained for different targets (task, label rule or threshold): "
                "their metrics are not comparable gene by gene.")
    if not (state.fits(a, data) and state.fits(b, data)):
        return f"{a.label} and {b.label} cannot both read the data in use ({data.name}): no shared test genes."
    try:
        mine = test_truth_scores_of(a, data)
        theirs = test_truth_scores_of(b, data)
    except HmvizError as exc:
        return f"{a.label} against {b.label}: {exc}"
    if mine is None or theirs is None:
        return f"The data in use ({data.name}) has no measured truth for {a.label}'s test metric."
    return _compare(a.cache_key, b.cache_key, data.key, mine[0], a.label, b.label, *mine[1:], theirs[3], theirs[2])


def test_truth_scores_of(entry: state.ModelEntry, data: state.DataEntry):
    """:func:`test_truth_and_scores` of a model that need not be the one in use."""
    return test_truth_and_scores(entry, data, state.explainer(entry, data))


@st.cache_data(max_entries=32, show_spinner="Comparing the two models on the same test genes (1,000 resamples)...")
def _compare(key_a: str, key_b: str, data_key: str, task: str, label_a: str, label_b: str, truth, scores, ids,
             other_ids, other_scores) -> Comparison | str:
    """Both models' scores on the genes both are evaluated on: a gene either trained or validated on is out."""
    try:
        return compare(task, truth, scores, ids, dict(zip(other_ids.tolist(), other_scores.tolist())),
                       model=label_a, other=label_b)
    except HmvizError as exc:
        return f"{label_a} against {label_b}: {exc}"
