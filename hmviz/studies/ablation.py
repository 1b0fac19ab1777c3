"""The retraining mark ablation, as a study: retrain a model on every non-empty subset of marks
(``2^m - 1``, 31 for 5 marks) over seeds, and tabulate the test metric per subset.

This says what the *data* allows (a subset that loses nothing carries all the information); the
masking ablation (:func:`hmviz.explain.ablate_mask`) says what one trained model relies on.
The smallest subset within a margin of all marks is chosen on the **validation** metric and its
test metric is reported beside it (:func:`hmviz.studies.marks.smallest_within_margin`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.studies.runner import StudyProgress, load_results, run_study
from hmviz.studies.spec import DEFAULT_METRIC, DatasetSpec, ModelSpec, StudySpec
from hmviz.studies.summary import subset_table

#: Retraining defaults: short runs with early stopping. Measured on the sample data (docs/studies.md):
#: DeepChrome's validation AUROC peaks within 2-6 epochs, so 10 epochs with patience 2 keep the
#: 31 subsets of the README example within two minutes on 2 cores.
DEFAULT_EPOCHS = 10
DEFAULT_PATIENCE = 2
DEFAULT_SEEDS = (1,)
DATASET_NAME = "data"


def ablation_spec(
    model: str = "deepchrome",
    seeds: Sequence[int] = DEFAULT_SEEDS,
    epochs: int = DEFAULT_EPOCHS,
    *,
    marks: Sequence[str] | None = None,
    patience: int = DEFAULT_PATIENCE,
    settings: Mapping | None = None,
    metric: str | None = None,
    split: str = "auto",
    label_rule: str | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    select_on: str = "loss",
    dataset: DatasetSpec = DatasetSpec(DATASET_NAME),
) -> StudySpec:
    """The study of a retraining ablation: one dataset, one model, every subset of ``marks``."""
    from hmviz.models import get_spec

    spec = get_spec(model)
    if spec.task not in DEFAULT_METRIC:
        raise ModelError(
            f"Mark ablation retrains single-cell models (binary or ranking); {spec.name} is a {spec.task} model."
        )
    if metric is not None:
        metric = metric.removeprefix("test_").removeprefix("valid_")
    return StudySpec(
        datasets=(dataset,),
        models=(ModelSpec(spec.name, tuple(sorted((settings or {}).items()))),),
        marks=("every-subset",),
        seeds=tuple(int(s) for s in seeds),
        mark_universe=tuple(marks) if marks else None,
        split=split,
        metric=metric,
        epochs=int(epochs),
        patience=int(patience),
        select_on=select_on,
        label_rule=label_rule,
        batch_size=batch_size,
        lr=lr,
        name=f"ablation-{spec.name}",
    )


def ablate_retrain(
    dataset: HistoneDataset,
    model: str = "deepchrome",
    seeds: Sequence[int] = DEFAULT_SEEDS,
    epochs: int = DEFAULT_EPOCHS,
    out_dir: str | Path | None = None,
    executor=None,
    progress: Callable[[StudyProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **kw,
) -> pd.DataFrame:
    """Retrain ``model`` on every non-empty subset of marks for every seed; one row per subset.

    Args:
        dataset: one cell's data; its split is used when it has one (``split="auto"``).
        out_dir: the study folder (resumable: a rerun only trains what is missing); None: a temporary
            folder deleted afterwards.
        executor: :func:`hmviz.studies.make_executor` (default: local processes on every core).
        progress, should_stop: as :func:`hmviz.studies.run_study`.
        **kw: ``marks`` (to ablate over; default all of the data's), ``patience``, ``settings`` (model
            config overrides, e.g. ``{"kernel_size": 3}``), ``metric``, ``split``, ``label_rule``,
            ``batch_size``, ``lr``, ``select_on`` (see :func:`ablation_spec`).

    Returns:
        The mark-subset table (:func:`hmviz.studies.subset_table`), ``attrs``: ``model``, ``out_dir``,
        ``computed``, ``reused``, ``failed``, ``seconds``.
    """
    if isinstance(dataset, MultiCellDataset):
        raise DataError(f"{model} models one cell type; give the data of one cell.")
    spec = ablation_spec(model, seeds, epochs, **kw)
    with tempfile.TemporaryDirectory(prefix="hmviz-ablation-") as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp)
        result = run_study(
            spec, out, executor=executor, progress=progress, should_stop=should_stop, data={DATASET_NAME: dataset}
        )
        table = _table(result.table, spec)
    table.attrs.update(
        {
            "model": spec.models[0].name,
            "out_dir": None if out_dir is None else str(out),
            "computed": result.computed,
            "reused": result.reused,
            "failed": result.failed,
            "seconds": result.seconds,
        }
    )
    return table


def _table(results: pd.DataFrame, spec: StudySpec | None, metric: str | None = None) -> pd.DataFrame:
    if not results.empty and (results["status"] != "ok").all():
        raise HmvizError(f"Every ablation run failed; the first error: {results['error'].iloc[0]}")
    if metric is not None:
        metric = metric if metric.startswith("test_") else f"test_{metric}"
        if metric not in results.columns:
            have = ", ".join(sorted(c for c in results.columns if c.startswith("test_")))
            raise DataError(f"The runs have no '{metric}'; choose one of: {have}.")
        results = results.assign(test_value=results[metric], metric=metric.removeprefix("test_"))
    return subset_table(results)


def load_ablation(out_dir: str | Path, metric: str | None = None) -> pd.DataFrame:
    """The mark-subset table of the finished runs of an ablation in ``out_dir``, for ``metric`` (default:
    the one it was run with; any test metric the runs recorded, e.g. ``test_auprc``), without training."""
    return _table(load_results(out_dir), None, metric)
