"""Run a study into a results folder: resumable, one writer, one tidy table.

Folder layout::

    out/study.json                    the spec, its hash and each dataset's fingerprint
    out/runs/<run_id>/result.json     one finished run: identity, status, metrics, time, device, versions
    out/runs/<run_id>/model_card.json its model card (successful runs)
    out/log.jsonl                     one line per run computed (append-only): what ran when, where
    out/results.parquet, results.csv  the tidy table: one row per run of the spec
    out/cross_cell.parquet, .csv      cross-cell studies: one row per (run, other dataset)

A run's ``result.json`` is written atomically (temporary file, then rename) by this process when the
run finishes, after its model card; a run counts as done only when that file exists with status
``ok``. Rerunning skips done runs (resume after any crash), retries failed ones, and refuses a folder
made by another spec (a different spec hash). No lock file: two drivers on one folder would at worst
both compute a run and write identical files, never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hmviz.atomic import atomic_output
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError
from hmviz.studies.executors import Job, make_executor
from hmviz.studies.spec import DEFAULT_METRIC, Run, StudySpec, expand

log = logging.getLogger(__name__)

STUDY_FILE = "study.json"
RUNS_DIR = "runs"
RESULT_FILE = "result.json"
CARD_FILE = "model_card.json"
LOG_FILE = "log.jsonl"
RESULTS = "results"
CROSS_CELL = "cross_cell"
STUDY_FORMAT = 1


@dataclass(frozen=True)
class StudyProgress:
    """What the progress callback receives once per run: done (finished runs, those found in the folder
    first, ``from_cache=True``), the run, its status, and its test metric ``value`` (None if failed)."""

    done: int
    total: int
    run: Run
    status: str
    metric: str
    value: float | None
    seconds: float
    from_cache: bool
    error: str | None = None

    @property
    def marks(self) -> tuple[str, ...]:
        return self.run.marks

    @property
    def seed(self) -> int:
        return self.run.seed


@dataclass
class StudyResult:
    """The results table (one row per run of the spec, finished or failed) and what this call did."""

    table: pd.DataFrame
    out_dir: Path
    computed: int
    reused: int
    failed: int
    seconds: float
    cross_cell: pd.DataFrame | None = None
    runs: list[Run] = field(default_factory=list)


# ------------------------------------------------------------------------------ files
def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` all at once (:func:`hmviz.atomic.atomic_output`: a temporary
    file, fsync, rename; permissions of a new file under the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True, default=_json_default)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _write_table_atomic(table: pd.DataFrame, out_dir: Path, stem: str) -> None:
    for suffix, write in (
        (".parquet", lambda t, p: t.to_parquet(p, index=False)),
        (".csv", lambda t, p: t.to_csv(p, index=False)),
    ):
        with atomic_output(out_dir / f"{stem}{suffix}") as tmp:
            write(table, tmp)


def read_records(out_dir: Path) -> dict[str, dict]:
    """Every readable ``runs/*/result.json`` in ``out_dir``, by run id (unreadable ones are recomputed)."""
    records = {}
    for path in sorted((Path(out_dir) / RUNS_DIR).glob(f"*/{RESULT_FILE}")):
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("Ignoring %s (%s); that run will be recomputed.", path, exc)
            continue
        if isinstance(r, dict) and isinstance(r.get("run_id"), str) and r.get("status") in ("ok", "failed"):
            records[r["run_id"]] = r
    return records


# ------------------------------------------------------------------------------ data
def read_datasets(spec: StudySpec, given: Mapping[str, HistoneDataset] | None = None) -> dict[str, HistoneDataset]:
    """Each dataset of ``spec``: from ``given`` (in memory) or read from its path."""
    from hmviz.data import read_dataset

    out = {}
    for d in spec.datasets:
        ds: HistoneDataset | MultiCellDataset
        if given is not None and d.name in given:
            ds = given[d.name]
        elif d.path is None:
            raise HmvizError(f"Dataset {d.name} has no path; give its path in the spec.")
        else:
            ds = read_dataset(d.path, format=d.format, expression=d.expression)
        if isinstance(ds, MultiCellDataset):
            raise DataError(
                f"Dataset {d.name} ({d.path}) holds {len(ds.cells)} cells; a study dataset is one cell "
                "type. List each cell as its own [[datasets]] entry."
            )
        out[d.name] = ds
    return out


def _split_fingerprint(ds: HistoneDataset) -> str:
    import hashlib

    split = "" if ds.split is None else "\x1f".join(ds.split.tolist())
    return f"{ds.fingerprint()}:{hashlib.sha256(split.encode()).hexdigest()[:8]}"


def _claim_folder(out: Path, spec: StudySpec, fingerprints: dict[str, str]) -> str:
    """Write ``study.json``, or refuse when the folder holds another spec's results."""
    digest = spec.hash(fingerprints)
    path = out / STUDY_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HmvizError(
                f"{path} is not a readable study file ({exc}); choose another --out or delete that "
                "folder to start over."
            ) from None
        if old.get("spec_hash") != digest:
            mine, theirs = spec.identity(fingerprints), old.get("identity", {})
            diffs = [f"{k}: {theirs.get(k)!r} there, {mine[k]!r} now" for k in mine if theirs.get(k) != mine[k]]
            raise HmvizError(
                f"{out} holds the results of another study spec (hash {old.get('spec_hash')}; this one is "
                f"{digest}): {'; '.join(diffs)[:600]}. Results of different specs cannot be mixed: choose "
                "another --out, rerun the same spec to resume, or delete that folder to start over."
            )
        return digest
    write_json_atomic(
        path,
        {
            "format": STUDY_FORMAT,
            "spec_hash": digest,
            "identity": spec.identity(fingerprints),
            "paths": {d.name: d.path for d in spec.datasets},
        },
    )
    return digest


# ----------------------------------------------------------------------------- table
def metric_names(spec: StudySpec, model: str) -> tuple[str, str]:
    """(validation, test) metric names of ``model`` in ``spec``: e.g. (``valid_auroc``, ``test_auroc``)."""
    from hmviz.models import get_spec

    base = spec.metric or DEFAULT_METRIC[get_spec(model).task]
    base = base.removeprefix("test_").removeprefix("valid_")
    return f"valid_{base}", f"test_{base}"


def results_table(spec: StudySpec, runs: list[Run], records: Mapping[str, dict], digest: str) -> pd.DataFrame:
    """One row per run of the spec that has a record: identity, status, the chosen metric on
    validation and test, every other metric, time, device, host and versions."""
    rows = []
    for run in runs:
        r = records.get(run.run_id)
        if r is None:
            continue
        valid_name, test_name = metric_names(spec, run.model)
        metrics = r.get("metrics") or {}
        row = {
            "study": spec.name,
            "spec_hash": digest,
            "run_id": run.run_id,
            "dataset": run.dataset,
            "model": run.model,
            "marks": run.marks_name,
            "n_marks": len(run.marks),
            "seed": run.seed,
            "settings": run.settings_json,
            "status": r.get("status"),
            "error": r.get("error"),
            "metric": test_name.removeprefix("test_"),
            "valid_metric": valid_name
            if valid_name in metrics
            else next((k for k in metrics if k.startswith("valid_")), None),
            "valid_value": metrics.get(
                valid_name, next((v for k, v in metrics.items() if k.startswith("valid_")), None)
            ),
            "test_value": metrics.get(test_name),
            "best_epoch": r.get("best_epoch"),
            "epochs_run": r.get("epochs_run"),
            "seconds": r.get("seconds"),
            "device": r.get("device"),
            "host": r.get("host"),
            "node": r.get("node"),
            "finished_at": r.get("finished_at"),
        }
        row.update({f"{k}_version": v for k, v in (r.get("versions") or {}).items()})
        row.update({k: v for k, v in metrics.items() if k.startswith(("valid_", "test_"))})
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        for col in ("valid_value", "test_value"):
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def cross_cell_table(spec: StudySpec, runs: list[Run], records: Mapping[str, dict]) -> pd.DataFrame:
    """One row per (finished run, dataset it was scored on), the diagonal (its own test split) included."""
    rows = []
    for run in runs:
        r = records.get(run.run_id)
        if r is None or r.get("status") != "ok":
            continue
        _, test_name = metric_names(spec, run.model)
        base = {
            "run_id": run.run_id,
            "train_dataset": run.dataset,
            "model": run.model,
            "marks": run.marks_name,
            "seed": run.seed,
            "settings": run.settings_json,
            "metric": test_name,
        }
        rows.append(
            {
                **base,
                "test_dataset": run.dataset,
                "value": r["metrics"].get(test_name),
                "genes": (r.get("card") or {}).get("split", {}).get("counts", {}).get("test"),
                "genes_are": "its own test split",
            }
        )
        for other, m in (r.get("cross_cell") or {}).items():
            rows.append(
                {
                    **base,
                    "test_dataset": other,
                    "value": m.get(test_name),
                    "genes": m.get("genes"),
                    "genes_are": m.get("genes_are"),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- runner
def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    executor=None,
    progress: Callable[[StudyProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: Mapping[str, HistoneDataset] | None = None,
) -> StudyResult:
    """Train every run of ``spec`` that ``out_dir`` does not hold yet, and write the results table.

    Args:
        spec: the study.
        out_dir: the results folder (created; resumable; refused if it holds another spec's results).
        executor: from :func:`hmviz.studies.make_executor` (default: every CPU core, local processes).
        progress: called in this process once per run (:class:`StudyProgress`), cached runs first.
        should_stop: polled; True cancels (:class:`~hmviz.studies.executors.StudyCancelled`; finished
            runs stay saved and the table is written).
        data: datasets already in memory, by the spec's dataset name (their path is then not read).

    Returns:
        :class:`StudyResult`; its ``table`` has one row per run of the spec, ``status`` ok or failed.
    """
    t0 = time.perf_counter()
    datasets = read_datasets(spec, data)
    runs = expand(spec, {n: ds.marks for n, ds in datasets.items()})
    fingerprints = {n: _split_fingerprint(ds) for n, ds in datasets.items()}
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise HmvizError(f"{out} exists and is not a folder; choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    digest = _claim_folder(out, spec, fingerprints)
    executor = executor if executor is not None else make_executor("local")

    records = read_records(out)
    wanted = {run.run_id for run in runs}
    done_ids = [run.run_id for run in runs if records.get(run.run_id, {}).get("status") == "ok"]
    pending = [run for run in runs if run.run_id not in set(done_ids)]
    by_id = {run.run_id: run for run in runs}
    counts = {"done": 0, "computed": 0, "failed": 0}

    def report(record: dict, from_cache: bool) -> None:
        counts["done"] += 1
        if progress is None:
            return
        run = by_id[record["run_id"]]
        _, test_name = metric_names(spec, run.model)
        value = (record.get("metrics") or {}).get(test_name)
        progress(
            StudyProgress(
                counts["done"],
                len(runs),
                run,
                record["status"],
                test_name,
                None if value is None else float(value),
                float(record.get("seconds") or 0.0),
                from_cache,
                record.get("error"),
            )
        )

    def finished(record: dict) -> None:
        if record.get("run_id") not in wanted:
            raise HmvizError(f"An executor returned a run this study does not have ({record.get('run_id')}).")
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        folder = out / RUNS_DIR / record["run_id"]
        card = record.pop("card", None)
        if card is not None:  # the card first: a result.json always has its card beside it
            write_json_atomic(folder / CARD_FILE, card)
        write_json_atomic(folder / RESULT_FILE, record)
        records[record["run_id"]] = record
        with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "run_id": record["run_id"],
                        "status": record["status"],
                        "at": record["finished_at"],
                        "host": record.get("host"),
                        "node": record.get("node"),
                        "pid": record.get("pid"),
                        "seconds": record.get("seconds"),
                    }
                )
                + "\n"
            )
        counts["computed"] += 1
        counts["failed"] += record["status"] != "ok"
        report(record, False)

    for run_id in done_ids:
        report(records[run_id], True)
    try:
        if pending:
            log.info(
                "study %s: %d of %d runs to train (%d found in %s) with the %s executor",
                spec.name,
                len(pending),
                len(runs),
                len(done_ids),
                out,
                executor.name,
            )
            job = Job(spec.train_options(), datasets, spec.cross_cell)
            executor.map(pending, job, finished, should_stop)
    finally:  # a table of whatever finished, also after a crash or Ctrl-C
        table = results_table(spec, runs, records, digest)
        _write_table_atomic(table, out, RESULTS)
        cross = cross_cell_table(spec, runs, records) if spec.cross_cell else None
        if cross is not None:
            _write_table_atomic(cross, out, CROSS_CELL)
    return StudyResult(
        table, out, counts["computed"], len(done_ids), counts["failed"], round(time.perf_counter() - t0, 2), cross, runs
    )


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The results table a study wrote in ``out_dir`` (``results.parquet``), without training anything."""
    path = Path(out_dir) / f"{RESULTS}.parquet"
    if not path.exists():
        raise DataError(f"{out_dir} holds no study results (no {path.name}); run 'hmviz study run' there first.")
    return pd.read_parquet(path)
