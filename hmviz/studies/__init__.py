"""Studies: sweeps of training runs over cell types, mark subsets, models, settings and seeds.

* :mod:`~hmviz.studies.spec`: a study as data (:class:`StudySpec`, TOML via :func:`load_spec`) and
  its runs (:func:`expand`).
* :mod:`~hmviz.studies.runner`: :func:`run_study` trains the runs into a resumable results folder and
  writes one tidy table (Parquet and CSV).
* :mod:`~hmviz.studies.executors`: where runs execute: local processes (default) or Ray.
* :mod:`~hmviz.studies.summary` and :mod:`~hmviz.studies.figures`: the mark-subset table, the smallest
  subset chosen on validation, the cross-cell matrix, and their figures.
* :mod:`~hmviz.studies.ablation`: the retraining mark ablation as a study.
* :mod:`~hmviz.studies.marks`: subsets of marks and the published 2025 tables (pure).

The modules that train (runner, executors, ablation) are imported on first use, so that
``hmviz.studies.marks`` stays importable without the training engine.
"""

from __future__ import annotations

import importlib

from hmviz.studies.marks import (
    DEFAULT_MARGIN,
    mark_subsets,
    read_published_ablation,
    reference_row,
    smallest_within_margin,
    subset_name,
)
from hmviz.studies.spec import (
    DatasetSpec,
    ModelSpec,
    Resources,
    Run,
    StudySpec,
    expand,
    load_spec,
    spec_from_dict,
)

_LAZY = {
    "run_study": "runner",
    "StudyProgress": "runner",
    "StudyResult": "runner",
    "load_results": "runner",
    "make_executor": "executors",
    "StudyCancelled": "executors",
    "LocalExecutor": "executors",
    "InlineExecutor": "executors",
    "RayExecutor": "executors",
    "ablate_retrain": "ablation",
    "load_ablation": "ablation",
    "ablation_spec": "ablation",
    "subset_table": "summary",
    "subset_summary": "summary",
    "cross_cell_matrix": "summary",
    "subset_chart": "figures",
    "cross_cell_heatmap": "figures",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"hmviz.studies.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hmviz.studies' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MARGIN",
    "DatasetSpec",
    "ModelSpec",
    "Resources",
    "Run",
    "StudySpec",
    "expand",
    "load_spec",
    "mark_subsets",
    "read_published_ablation",
    "reference_row",
    "smallest_within_margin",
    "spec_from_dict",
    "subset_name",
    *_LAZY,
]
