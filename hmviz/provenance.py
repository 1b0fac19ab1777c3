"""Where a model comes from, in words: the data it was trained on, and whether it is being applied to
other data. Every page (and report) that shows a model's output says this, from the model card alone.

The card records ``data.source`` (what the reader said it read), ``data.fingerprint`` (a hash of the
training data's signal, genes, marks, labels and expression: :meth:`HistoneDataset.fingerprint`,
joined by ``+`` over cells), ``data.genes``, ``cells`` (two-cell models) and, for the models bundled
with hmviz, ``bundled`` (they are trained on hmviz's generated sample data). The functions here read
them through :class:`TrainingData` (from a :class:`~hmviz.card.ModelCard`, or built directly for a card
known only in part).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hmviz.published import ATTENTIVECHROME_2017, DEEPCHROME_2016, PUBLISHED, PublishedResult

if TYPE_CHECKING:
    from hmviz.card import ModelCard

_NAME = r"[^\s,;:/()\[\]\"']"  # a path's characters: not brackets or quotes around it
_PATH = re.compile(rf"(?:[A-Za-z]:)?(?:\.{{0,2}}/)?(?:{_NAME}+/)+{_NAME}*|/(?:{_NAME}|/)+")


def shown_source(source: str) -> str:
    """``source`` with every file path cut to its last part (no server path reaches a reader):
    ``"long format /srv/x/sample_data"`` -> ``"long format sample_data"``.

    >>> shown_source("deepchrome format (/home/me/E123/), upload: C:/Users/me/x.csv")
    'deepchrome format (E123), upload: x.csv'
    """

    def last(m: re.Match) -> str:
        parts = [p for p in m.group(0).split("/") if p not in ("", ".", "..")]
        return parts[-1] if parts else m.group(0)

    return _PATH.sub(last, str(source)).strip()


@dataclass(frozen=True)
class TrainingData:
    """What a model card says about the data the model was trained on: all the sentences below need.

    Built from a :class:`~hmviz.card.ModelCard` (:meth:`of`), or directly for a card known only in part
    (every field may be missing; the sentences then leave that detail out).

    Attributes:
        model: the model family (``deepchrome``...); None: "This model".
        marks: the marks it reads; cells: DeepDiff's two cells.
        source: what the reader said it read (may hold a server path: never shown as it is).
        fingerprint: the training data's fingerprint; genes: its number of genes.
        bundled: whether the model is bundled with hmviz (trained on the generated sample data).
    """

    model: str | None = None
    marks: tuple[str, ...] = ()
    cells: tuple[str, ...] | None = None
    source: str | None = None
    fingerprint: str | None = None
    genes: int | None = None
    bundled: bool = False

    @classmethod
    def of(cls, card: ModelCard | TrainingData) -> TrainingData:
        """``card``'s training data (``card`` itself when it is a :class:`TrainingData`)."""
        if isinstance(card, TrainingData):
            return card
        return cls(
            model=card.model,
            marks=tuple(card.marks),
            cells=card.cells,
            source=card.data_source,
            fingerprint=card.fingerprint,
            genes=card.n_genes,
            bundled=card.bundled is not None,
        )


def generated(card: ModelCard | TrainingData) -> bool:
    """Whether the card's training data was generated (hmviz's synthetic sample), not measured."""
    data = TrainingData.of(card)
    source = (data.source or "").lower()
    return data.bundled or "synthetic" in source or "generated" in source


def training_data(card: ModelCard | TrainingData) -> str:
    """The model's training data in a few words, for captions: no folder path, only a file or folder name.

    >>> training_data(TrainingData(source="long format (/srv/hmviz/sample_data)", bundled=True))
    "hmviz's generated sample data"
    >>> training_data(TrainingData(source="deepchrome format (/home/me/E123/)"))
    'deepchrome format (E123)'
    """
    if generated(card):
        return "hmviz's generated sample data"
    return shown_source(TrainingData.of(card).source or "data of unknown origin")


def trained_on(card: ModelCard | TrainingData) -> str:
    """One sentence naming the data a model was trained on: source, genes, cells, marks.

    >>> trained_on(TrainingData(model="deepchrome", marks=("H3K4me3",), source="upload: E003.csv", genes=600))
    'deepchrome was trained on upload: E003.csv (600 genes; marks H3K4me3).'
    """
    data = TrainingData.of(card)
    details = [f"{data.genes:,} genes" if data.genes is not None else None]
    if data.cells:
        details.append(f"cells {' and '.join(data.cells)}")
    if data.marks:
        details.append(f"marks {', '.join(data.marks)}")
    detail = "; ".join(d for d in details if d)
    model = data.model or "This model"
    if generated(data):
        what = "hmviz's generated sample data, synthetic genes with planted rules rather than measurements"
        if data.bundled:
            return f"{model} is bundled with hmviz: it was trained on {what}" + (f" ({detail})." if detail else ".")
        return f"{model} was trained on {what}" + (f" ({detail})." if detail else ".")
    source = shown_source(data.source or "data of unknown origin")
    return f"{model} was trained on {source}" + (f" ({detail})." if detail else ".")


def applied_elsewhere(card: ModelCard | TrainingData, fingerprint: str, data_name: str) -> str | None:
    """A notice when the data in use (``fingerprint``, shown as ``data_name``) is not the data the model
    was trained on; None when it is (same fingerprint)."""
    if TrainingData.of(card).fingerprint == fingerprint:
        return None
    tail = (
        " A model trained on generated data has learnt the planted rules of that data, not measured biology."
        if generated(card)
        else ""
    )
    return (
        f"Applied to other data: {data_name} is not the data this model was trained on. Its scores and "
        "explanations here say what this model does with these genes, not what they were learnt from; check "
        f"its test metrics on these genes on the Evaluate page before trusting them.{tail}"
    )


def shown_card(card: ModelCard) -> dict:
    """The card as a page shows it (the Train page's "Model card"): every field but the per-epoch history,
    with the training data's source through :func:`shown_source` (no server path)."""
    data = {**card.data, "source": shown_source(card.data_source or "")} if card.data else card.data
    shown = dataclasses.replace(card, history=(), data=data).to_dict()
    shown.pop("history", None)
    return shown


@dataclass(frozen=True)
class PublishedRow:
    """A published number with what it was measured on, for a table beside one's own."""

    result: PublishedResult
    gene_set: str
    split: str


#: The genes and the test split behind each source's numbers (from the papers' data description:
#: the REMC data of DeepChrome, 19,802 genes split 6,601 / 6,601 / 6,600).
GENE_SETS = {
    DEEPCHROME_2016: ("DeepChrome's REMC genes (19,802)", "test split of 6,600 genes"),
    ATTENTIVECHROME_2017: ("DeepChrome's REMC genes (19,802)", "test split of 6,600 genes per cell type"),
}

_EID = re.compile(r"(?<![A-Za-z0-9])(E\d{3})(?!\d)")


def roadmap_ids(*texts: str) -> set[str]:
    """Roadmap epigenome ids (``E003``, ``E123``...) named in ``texts`` (a cell label, file names)."""
    return {m.group(1).upper() for t in texts if t for m in _EID.finditer(str(t).upper())}


def published_matching(model: str, cell_ids: set[str]) -> list[PublishedRow]:
    """Published numbers of ``model`` measured on one of ``cell_ids`` (Roadmap ids): only these are
    comparable with a model evaluated on that cell type. Averages over many cell types never match."""
    rows = []
    for r in PUBLISHED:
        if r.model != model:
            continue
        ids = roadmap_ids(r.data)
        if len(ids) == 1 and ids <= cell_ids:
            gene_set, split = GENE_SETS.get(r.source, ("genes not stated", "split not stated"))
            rows.append(PublishedRow(r, gene_set, split))
    return rows


__all__ = [
    "GENE_SETS",
    "PublishedRow",
    "TrainingData",
    "applied_elsewhere",
    "generated",
    "published_matching",
    "roadmap_ids",
    "shown_card",
    "shown_source",
    "trained_on",
    "training_data",
]
