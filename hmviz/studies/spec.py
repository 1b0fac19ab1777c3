"""A study as data: which datasets, models, mark subsets, seeds and settings to train, and how.

A study is a :class:`StudySpec` (a TOML file read by :func:`load_spec`, or built in Python).
:func:`expand` turns it into :class:`Run` s, one training run each (dataset x model x mark subset x
seed x setting). The runner (:func:`hmviz.studies.run_study`) trains them with the one training
engine (:func:`hmviz.training.train`).

TOML, every key but ``datasets`` and ``models`` optional::

    name = "marks-across-cells"
    seeds = [1, 2, 3]
    marks = ["all-marks", "singles", "leave-one-out", "H3K4me3+H3K36me3"]  # or ["every-subset"]
    mark_universe = ["H3K4me3", "H3K36me3", "H3K27me3"]  # marks the keywords range over (default: the data's)
    split = "auto"            # auto | file | random | chromosome (as `train --split`)
    metric = "auroc"          # default: the model's validation metric (auroc; pairwise_accuracy for rankers)
    epochs = 20               # default: the model's
    patience = 3
    select_on = "loss"        # or "metric" (as `train --select-on`)
    label_rule = "median"     # as `train --label`
    cross_cell = true         # also score every run's model on every other dataset

    [[datasets]]
    name = "E123"
    path = "data/E123"        # relative to the spec file
    format = "auto"

    [[models]]
    name = "deepchrome"
    set = { kernel_size = 5, pool_size = 2 }   # fixed settings, as `train --set`

    [vary]                    # settings to vary: every combination is a separate run
    dropout = [0.2, 0.5]

    [resources]               # per run; used by `--executor ray` (fractional GPUs allowed)
    num_cpus = 1
    num_gpus = 0
    device = "cpu"            # cpu | cuda | auto

Mark-subset keywords: ``all-marks`` (one run with every mark), ``singles`` (each mark alone),
``leave-one-out`` (all but one), ``every-subset`` (all ``2^m - 1`` non-empty subsets); anything
else is an explicit subset, marks joined by ``+``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmviz.errors import HmvizError
from hmviz.studies.marks import check_mark_names, mark_subsets, subset_name

MARK_KEYWORDS = ("all-marks", "singles", "leave-one-out", "every-subset")
SPLITS = ("auto", "file", "random", "chromosome")
#: The metric a study reports by default, per model task: the family of the model's validation metric.
DEFAULT_METRIC = {"binary": "auroc", "ranking": "pairwise_accuracy"}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a study: a short name (used in tables) and where to read it."""

    name: str
    path: str | None = None  # None: the data is given to the runner in memory
    format: str = "auto"
    expression: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model family and its fixed settings (model config overrides, as ``train --set KEY=VALUE``)."""

    name: str
    settings: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Resources:
    """What one run needs: CPUs and GPUs declared to Ray (fractions allowed), and the torch device."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    device: str = "cpu"


@dataclass(frozen=True)
class StudySpec:
    """Everything that decides a study's results (see the module docstring for the TOML form)."""

    datasets: tuple[DatasetSpec, ...]
    models: tuple[ModelSpec, ...]
    marks: tuple[str, ...] = ("all-marks",)
    seeds: tuple[int, ...] = (1,)
    vary: tuple[tuple[str, tuple], ...] = ()
    mark_universe: tuple[str, ...] | None = None
    split: str = "auto"
    metric: str | None = None
    epochs: int | None = None
    patience: int = 5
    select_on: str = "loss"
    label_rule: str | None = None
    batch_size: int | None = None
    lr: float | None = None
    cross_cell: bool = False
    name: str = "study"
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        _check_spec(self)

    def train_options(self) -> dict:
        """Keyword arguments of :class:`hmviz.options.TrainOptions` shared by every run."""
        return {
            "epochs": self.epochs,
            "patience": self.patience,
            "select_on": self.select_on,
            "label_rule": self.label_rule,
            "split": self.split,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "device": self.resources.device,
        }

    def identity(self, fingerprints: Mapping[str, str]) -> dict:
        """What decides the results, as plain data: the spec without paths or resources, and each
        dataset's content fingerprint (so moved data resumes and changed data is refused)."""
        d = dataclasses.asdict(self)
        d.pop("resources")
        d["datasets"] = [
            {"name": ds.name, "format": ds.format, "fingerprint": fingerprints.get(ds.name)} for ds in self.datasets
        ]
        return json.loads(json.dumps(d, default=str))

    def hash(self, fingerprints: Mapping[str, str]) -> str:
        """A short hash of :meth:`identity`: a results folder belongs to exactly one spec hash."""
        return _digest(self.identity(fingerprints))


@dataclass(frozen=True)
class Run:
    """One training run of a study."""

    dataset: str
    model: str
    marks: tuple[str, ...]
    seed: int
    settings: tuple[tuple[str, Any], ...] = ()  # model config overrides, sorted by key

    @property
    def run_id(self) -> str:
        """A stable, file-safe id: ``<dataset>.<model>.<n>marks.seed<k>.<hash of everything>``."""
        digest = _digest([self.dataset, self.model, list(self.marks), self.seed, [list(s) for s in self.settings]])
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{self.dataset}.{self.model}")[:60]
        return f"{safe}.{len(self.marks)}marks.seed{self.seed}.{digest[:10]}"

    @property
    def marks_name(self) -> str:
        return subset_name(self.marks)

    @property
    def settings_json(self) -> str:
        return json.dumps(dict(self.settings), sort_keys=True)

    def record(self, **fields) -> dict:
        """A results row for this run: its identity (id, dataset, model, marks, seed, settings), then ``fields``."""
        identity = {"run_id": self.run_id, "dataset": self.dataset, "model": self.model, "marks": list(self.marks)}
        return {**identity, "seed": self.seed, "settings": dict(self.settings), **fields}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_spec(spec: StudySpec) -> None:
    if not spec.datasets:
        raise HmvizError("A study needs at least one dataset ([[datasets]] with a name and a path).")
    names = [d.name for d in spec.datasets]
    if len(set(names)) != len(names) or not all(names):
        raise HmvizError(f"Dataset names must be non-empty and unique; got {', '.join(map(repr, names))}.")
    if not spec.models:
        raise HmvizError("A study needs at least one model ([[models]] with a name, e.g. deepchrome).")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise HmvizError(f"Give one or more distinct seeds; got {list(spec.seeds)}.")
    if spec.split not in SPLITS:
        raise HmvizError(f"split must be one of {', '.join(SPLITS)}; got {spec.split!r}.")
    if spec.select_on not in ("loss", "metric"):
        raise HmvizError(f"select_on must be 'loss' or 'metric'; got {spec.select_on!r}.")
    if spec.epochs is not None and spec.epochs < 1:
        raise HmvizError(f"epochs must be at least 1; got {spec.epochs}.")
    if spec.patience < 0:
        raise HmvizError(f"patience must be 0 (never stop early) or more; got {spec.patience}.")
    if not spec.marks:
        raise HmvizError(f"marks lists no subsets; use one or more of {', '.join(MARK_KEYWORDS)}, or 'A+B'.")
    if spec.resources.num_cpus <= 0 or spec.resources.num_gpus < 0:
        raise HmvizError("resources: num_cpus must be > 0 and num_gpus >= 0 (fractions such as 0.25 are allowed).")
    if spec.resources.device not in ("cpu", "cuda", "auto"):
        raise HmvizError(f"resources.device must be cpu, cuda or auto; got {spec.resources.device!r}.")
    if spec.resources.num_gpus > 0 and spec.resources.device == "cpu":
        raise HmvizError(
            "resources.num_gpus reserves GPU share for each run but resources.device is 'cpu'; set "
            'device = "cuda" (or "auto") to train on it, or num_gpus = 0.'
        )
    for key, values in spec.vary:
        if not values:
            raise HmvizError(f"vary.{key} lists no values; give one or more, e.g. {key} = [0.2, 0.5].")


def _subsets(entry: str, universe: tuple[str, ...]) -> list[tuple[str, ...]]:
    if entry == "all-marks":
        return [universe]
    if entry == "singles":
        return [(m,) for m in universe]
    if entry == "leave-one-out":
        return [tuple(x for x in universe if x != m) for m in universe] if len(universe) > 1 else []
    if entry == "every-subset":
        return mark_subsets(universe)
    subset = check_mark_names([m.strip() for m in entry.split("+") if m.strip()] or [entry])
    unknown = [m for m in subset if m not in universe]
    if unknown:
        raise HmvizError(
            f"marks: '{entry}' names {', '.join(unknown)}, which the study's marks "
            f"({', '.join(universe)}) do not include; use {', '.join(MARK_KEYWORDS)} or marks joined by '+'."
        )
    return [tuple(m for m in universe if m in subset)]  # the data's order


def expand(spec: StudySpec, data_marks: Mapping[str, Sequence[str]]) -> list[Run]:
    """Every run of ``spec``, dataset-major and seed-minor (so a cancelled study has whole seeds done first
    within each dataset and model). ``data_marks``: each dataset's marks, in file order.

    Each subset keeps the marks' order in the data; duplicates (a single that is also ``all-marks``
    for a one-mark universe) are run once.
    """
    from hmviz.models import get_spec, parse_settings

    runs: list[Run] = []
    grid_keys = [k for k, _ in spec.vary]
    grid = list(itertools.product(*(v for _, v in spec.vary))) or [()]
    for ds in spec.datasets:
        have = tuple(data_marks[ds.name])
        universe = tuple(spec.mark_universe) if spec.mark_universe else have
        missing = [m for m in universe if m not in have]
        if missing:
            raise HmvizError(
                f"Dataset {ds.name} has no mark {', '.join(missing)} (it has {', '.join(have)}); "
                "fix mark_universe in the spec, or the data."
            )
        universe = check_mark_names(universe)
        subsets: list[tuple[str, ...]] = []
        for entry in spec.marks:
            for s in _subsets(entry, universe):
                if s not in subsets:
                    subsets.append(s)
        for m in spec.models:
            task = get_spec(m.name).task
            if task not in DEFAULT_METRIC:
                raise HmvizError(f"Studies train single-cell models (binary or ranking); {m.name} is a {task} model.")
            for values in grid:
                pairs = [f"{k}={_setting_text(v)}" for k, v in (*m.settings, *zip(grid_keys, values))]
                settings = tuple(sorted(parse_settings(m.name, pairs).items()))
                for subset in subsets:
                    for seed in spec.seeds:
                        runs.append(Run(ds.name, m.name, subset, int(seed), settings))
    return runs


def _setting_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_KEYS = {f.name for f in dataclasses.fields(StudySpec)} - {"datasets", "models", "resources", "vary"}


def spec_from_dict(raw: Mapping[str, Any], base: Path | None = None, where: str = "the study spec") -> StudySpec:
    """A :class:`StudySpec` from plain data (a parsed TOML file); dataset paths relative to ``base``."""
    unknown = sorted(set(raw) - _KEYS - {"datasets", "models", "resources", "vary"})
    if unknown:
        raise HmvizError(
            f"{where}: unknown key(s) {', '.join(unknown)}; the keys are "
            f"{', '.join(sorted(_KEYS | {'datasets', 'models', 'resources', 'vary'}))}."
        )
    datasets = []
    for i, d in enumerate(raw.get("datasets") or []):
        if not isinstance(d, Mapping) or "name" not in d or "path" not in d:
            raise HmvizError(f"{where}: datasets[{i}] needs a name and a path ([[datasets]] name = ..., path = ...).")
        path = Path(str(d["path"]))
        if base is not None and not path.is_absolute():
            path = base / path
        datasets.append(DatasetSpec(str(d["name"]), str(path), str(d.get("format", "auto")), d.get("expression")))
    models = []
    for i, m in enumerate(raw.get("models") or []):
        if isinstance(m, str):
            m = {"name": m}
        if not isinstance(m, Mapping) or "name" not in m:
            raise HmvizError(f'{where}: models[{i}] needs a name ([[models]] name = "deepchrome").')
        models.append(ModelSpec(str(m["name"]), tuple(sorted(dict(m.get("set") or {}).items()))))
    vary = raw.get("vary") or {}
    if not isinstance(vary, Mapping):
        raise HmvizError(f"{where}: vary is a table of setting = [values], e.g. [vary] dropout = [0.2, 0.5].")
    res = raw.get("resources") or {}
    try:
        resources = Resources(**res)
    except TypeError:
        raise HmvizError(f"{where}: resources takes num_cpus, num_gpus and device; got {', '.join(res)}.") from None
    kw = {k: raw[k] for k in _KEYS if k in raw}
    for key in ("marks", "seeds", "mark_universe"):
        if key in kw and kw[key] is not None:
            if isinstance(kw[key], (str, int)):
                kw[key] = [kw[key]]
            kw[key] = tuple(kw[key])
    return StudySpec(
        datasets=tuple(datasets),
        models=tuple(models),
        vary=tuple((str(k), tuple(v if isinstance(v, list) else [v])) for k, v in vary.items()),
        resources=resources,
        **kw,
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read a study spec from a TOML file (dataset paths are relative to the file)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HmvizError(f"Cannot read the study spec {path} ({exc.strerror or exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise HmvizError(f"{path} is not valid TOML ({exc}); see docs/studies.md for the format.") from None
    return spec_from_dict(raw, base=path.parent, where=str(path))
