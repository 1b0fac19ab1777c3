"""The typed model card: what a model was trained on and how, checked once when it is read.

``card_format`` tags its version: format 1 is the only one so far, and a card without the tag (or
without the fields added later: ``task``, ``tss_bin``, ``genes``, ``cells``) still loads, with the
defaults hmviz used before them. :meth:`ModelCard.train_options` is the one place a card becomes
:class:`~hmviz.options.TrainOptions`.

The records inside a card (``training``, ``split``, ``data``) are read here only: :attr:`ModelCard.run`,
:attr:`ModelCard.split_record` and the data properties (:attr:`~ModelCard.data_source`,
:attr:`~ModelCard.fingerprint`, :attr:`~ModelCard.n_genes`) give their fields as attributes, None where an
older card lacks one; the card's dicts stay as they were, so :meth:`ModelCard.to_dict` writes them back
unchanged. Nothing outside this module, :mod:`hmviz.card_file` (which reads and checks the card, without
PyTorch) and :mod:`hmviz.checkpoints` reads a card key by string (a test scans the code for it).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmviz.card_file import CARD_FORMAT, check_card, read_card
from hmviz.errors import ModelError
from hmviz.model_families import get_family
from hmviz.options import TrainOptions

if TYPE_CHECKING:
    from hmviz.data.transforms import SignalTransform

#: The test metric that sums up a model of each task (the one a table of models shows).
MAIN_METRIC = {"binary": "test_auroc", "ranking": "test_pairwise_accuracy", "differential": "test_r2"}


def _record(cls, mapping: Mapping[str, Any]):
    """``cls`` (a record dataclass of optional fields) from the keys of ``mapping`` it has fields for."""
    return cls(**{f.name: mapping[f.name] for f in dataclasses.fields(cls) if f.name in mapping})


@dataclass(frozen=True)
class TrainingRun:
    """How the model was trained (the card's ``training`` record); None where the card lacks a field.

    Attributes:
        epochs_max, epochs_run, best_epoch: the epoch budget, the epochs run (early stopping) and the epoch
            whose weights were kept (selected on validation).
        batch_size, lr, patience, optimizer: the optimisation settings.
        selected_on: what chose the best epoch (``validation loss`` or ``validation metric``).
        device: where it trained (``cpu``, ``cuda``); mixed_precision: whether autocast was on.
        seconds: the training time (wall clock).
        pairs_per_gene, pair_sampling: rankers' pair sampling.
        bin_lstm_impl: which LSTM implementation ran (models with per-bin LSTMs).
        attention_impl: how grouped attention pooling ran, ``compiled`` or ``eager`` (AttentiveChrome-based
            models); the two agree up to float rounding, so a seed reproduces exactly only with the same one.
        early_stopping: what ends training early (:data:`hmviz.engine.EARLY_STOPPING`).
    """

    epochs_max: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    patience: int | None = None
    optimizer: str | None = None
    selected_on: str | None = None
    early_stopping: str | None = None
    device: str | None = None
    mixed_precision: bool | None = None
    seconds: float | None = None
    pairs_per_gene: int | None = None
    pair_sampling: str | None = None
    bin_lstm_impl: str | None = None
    attention_impl: str | None = None


@dataclass(frozen=True)
class SplitRecord:
    """How the genes were split (the card's ``split`` record); the defaults are those of cards without one.

    Attributes:
        kind: ``file`` (the data's split column), ``random``, ``stratified`` or ``chromosome``.
        fractions: train/valid/test fractions of a random split.
        seed: the split's seed (None: the card's ``seed``).
        valid_chroms, test_chroms: a chromosome hold-out's chromosomes.
        stratified_by: what a stratified split kept balanced.
        counts: genes per split (``train``, ``valid``, ``test``).
        class_balance: the share of positives per split and ``what`` a positive is (binary targets).
    """

    kind: str = "file"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int | None = None
    valid_chroms: tuple[str, ...] | None = None
    test_chroms: tuple[str, ...] | None = None
    stratified_by: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    class_balance: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(self.fractions))
        for name in ("valid_chroms", "test_chroms"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if value else None)

    def positive_share(self, split: str) -> float | None:
        """The share of positive genes in ``split`` (``train``, ``valid``, ``test``); None without a record."""
        return (self.class_balance or {}).get(split)

    @property
    def positive(self) -> str | None:
        """What a positive gene is in :meth:`positive_share` (e.g. ``label 1 (high)``)."""
        return (self.class_balance or {}).get("what")


@dataclass(frozen=True)
class ModelCard:
    """What a model was trained on and how: read from ``model_card.json``, checked once (:meth:`from_dict`).

    Attributes:
        model: the family's registry name (``deepchrome``, ``ranker-attentivechrome``, ``deepdiff``, ...).
        task: ``binary``, ``ranking`` or ``differential``.
        marks: the marks in the model's input order; data is matched to them by name.
        n_bins, bin_size, tss_bin: the window: bins of ``bin_size`` bp, the TSS in bin ``tss_bin``
            (None on cards that predate it).
        config: the model config (every hyperparameter, with ``n_marks`` and ``n_bins``).
        transform: the input transform fitted on the training genes (:class:`SignalTransform` dict).
        label_rule, label_threshold: how expression became high/low labels (``"file"``: the file's labels;
            None for differential models) and the threshold fitted on the training genes.
        cells: DeepDiff's (cell A, cell B); None for one-cell models.
        seed: the seed of the run (split, initial weights, batch order).
        split: how the split was made (``kind``, ``fractions``, ``seed``, chromosomes, ``counts``).
        genes: the record of the genes per split (:func:`hmviz.data.gene_sets.record_split`); None on cards
            that predate it.
        metrics, history, training: test metrics, the per-epoch record, and the training settings.
        data: ``source``, ``fingerprint`` and ``genes`` of the training data.
        card_format: the card's format version (:data:`hmviz.card_file.CARD_FORMAT`).
        extra: every other key of the card (``versions``, ``bundled``, ...), kept as it was.
        absent: the fields the card did not have (an older card); :meth:`to_dict` leaves them out again.
    """

    model: str
    task: str
    marks: tuple[str, ...]
    n_bins: int
    bin_size: int
    tss_bin: int | None
    config: Mapping[str, Any]
    transform: Mapping[str, Any]
    label_rule: str | None = None
    label_threshold: float | None = None
    cells: tuple[str, str] | None = None
    seed: int = 1
    description: str = ""
    strand_aware: bool | None = None
    split: Mapping[str, Any] = field(default_factory=dict)
    genes: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    history: Sequence[Mapping[str, Any]] = ()
    training: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    card_format: int = CARD_FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, card: Mapping[str, Any], where: str | Path = "the model card") -> ModelCard:
        """Check ``card`` (a model card as JSON gives it) and type it. Raises :class:`ModelError` naming
        ``where`` and the field for a damaged or hand-edited card."""
        if not isinstance(card, Mapping) or "model" not in card or "config" not in card:
            raise ModelError(f"{where} is not an hmviz model card (it lacks 'model' and 'config').")
        checked = dict(card)  # nested values are shared: treat a card as read-only
        check_card(checked, where)
        return cls._typed(checked)

    @classmethod
    def _typed(cls, card: dict) -> ModelCard:
        """A card dict as a :class:`ModelCard`, without the checks of :meth:`from_dict` (it needs ``model``,
        ``marks``, ``n_bins``, ``bin_size``, ``transform``, and ``task`` unless the model family is known)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "absent"}
        cells = card.get("cells")
        return cls(
            model=card["model"],
            task=card.get("task") or get_family(card["model"]).task,  # cards before 'task': the family's task
            marks=tuple(card["marks"]),
            n_bins=card["n_bins"],
            bin_size=card["bin_size"],
            tss_bin=card.get("tss_bin"),
            config=card.get("config") or {},
            transform=card["transform"],
            label_rule=card.get("label_rule"),
            label_threshold=card.get("label_threshold"),
            cells=(str(cells[0]), str(cells[1])) if cells else None,
            seed=int(card.get("seed", 1)),
            description=card.get("description", ""),
            strand_aware=card.get("strand_aware"),
            split=card.get("split") or {},
            genes=card.get("genes"),
            metrics=card.get("metrics") or {},
            history=tuple(card.get("history") or ()),
            training=card.get("training") or {},
            data=card.get("data") or {},
            card_format=card.get("card_format", CARD_FORMAT),
            extra={k: v for k, v in card.items() if k not in names},
            absent=frozenset(names - set(card)),
        )

    def to_dict(self) -> dict:
        """The card as JSON holds it (what the library functions that take a card dict read)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("extra", "absent") and f.name not in self.absent
        }
        out.update(marks=list(self.marks), history=list(self.history))
        if "cells" in out:
            out["cells"] = list(self.cells) if self.cells else None
        out.update(self.extra)
        return copy.deepcopy(out)

    @property
    def fingerprint(self) -> str | None:
        """The training data's fingerprint (is a dataset the one the model was trained on?)."""
        return self.data.get("fingerprint")

    @property
    def data_source(self) -> str | None:
        """What the reader said it read for training (``long format /path``, ``upload: x.csv``); may hold a
        server path: show it through :func:`hmviz.provenance.shown_source`."""
        source = self.data.get("source")
        return str(source) if source else None

    @property
    def n_genes(self) -> int | None:
        """Genes in the training data (all splits); None on a card without the count."""
        genes = self.data.get("genes")
        return genes if isinstance(genes, int) and not isinstance(genes, bool) else None

    @property
    def bundled(self) -> Mapping[str, Any] | None:
        """The recipe of a model bundled with hmviz (``recipe``, ``remake``); None for other models."""
        return self.extra.get("bundled") or None

    @property
    def run(self) -> TrainingRun:
        """How the model was trained (:class:`TrainingRun`, from the ``training`` record)."""
        return _record(TrainingRun, self.training)

    @property
    def split_record(self) -> SplitRecord:
        """How the genes were split (:class:`SplitRecord`, from the ``split`` record)."""
        return _record(SplitRecord, self.split)

    @property
    def main_metric(self) -> str:
        """The name of the test metric that sums up a model of this task (:data:`MAIN_METRIC`)."""
        return MAIN_METRIC[self.task]

    @property
    def input_transform(self) -> SignalTransform:
        """The input transform fitted on the training genes, as a :class:`SignalTransform`."""
        from hmviz.data.transforms import SignalTransform

        return SignalTransform.from_dict(dict(self.transform))

    def train_options(self, same_data: bool = True) -> TrainOptions:
        """The :class:`TrainOptions` that treat data as this model's run did: its model, seed, marks, input
        transform settings, cells and (``same_data``: the data is the training data) its label rule and
        split. On other data the split and label rule are left to the defaults (``auto``).

        The one place a card becomes options: evaluation (:func:`hmviz.evaluation.evaluation_set`) and
        the baselines the Evaluate page fits beside a model use it.
        """
        split, run = self.split_record, self.run
        ranking = {k: getattr(run, k) for k in ("pairs_per_gene", "pair_sampling") if getattr(run, k) is not None}
        return TrainOptions(
            model=self.model,
            seed=self.seed,
            marks=self.marks,
            label_rule=self.label_rule if same_data else None,
            split=self.split.get("kind", "auto") if same_data else "auto",
            split_fractions=split.fractions,
            valid_chroms=split.valid_chroms,
            test_chroms=split.test_chroms,
            log1p=bool(self.transform.get("log1p", True)),
            scaling=str(self.transform.get("scaling", "standard")),
            cells=self.cells if self.task == "differential" else None,
            **ranking,
        )

    @classmethod
    def of(cls, card: ModelCard | Mapping[str, Any]) -> ModelCard:
        """``card`` itself when it is a :class:`ModelCard`, else the card dict typed (not checked again).

        For cards already in memory: made by :func:`hmviz.training.train` or read (and checked) by
        :mod:`hmviz.checkpoints`. A card from a file or a user goes through :meth:`from_dict`."""
        if isinstance(card, ModelCard):
            return card
        try:
            return cls._typed(dict(card))
        except (KeyError, TypeError) as exc:
            raise ModelError(f"Not a model card: it lacks {exc} (a model card from hmviz has it).") from None


def load_card(path: str | Path) -> ModelCard:
    """The :class:`ModelCard` of a model folder (or of a card file), checked, without loading the weights or
    PyTorch (:func:`hmviz.card_file.read_card`)."""
    return ModelCard._typed(read_card(path))  # read_card checked it (once)
