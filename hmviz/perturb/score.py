"""Score edited signal through a model and its card's transform: the prediction before and after.

:class:`Editor` wraps an :class:`hmviz.explain.session.ExplainSession` (a model checked against a
dataset): it keeps the raw signal of the edited cell in the model's mark order, scores any raw
``(genes, bins, marks)`` batch through the card's transform (``SignalTransform`` applied exactly as
:func:`hmviz.inference.prepare_inputs` does) and the model, and answers :meth:`Editor.perturb`.

Units of the score (``Editor.unit``): the logit of high expression (binary models; the probability is
its sigmoid), the ranking score (rankers), the predicted log2 fold change of cell B over cell A
(two-cell models such as DeepDiff). For a pair, ``P(A above B) = sigmoid(score_A - score_B)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from hmviz.data.dataset import HistoneDataset
from hmviz.data.transforms import SignalTransform
from hmviz.errors import HmvizError
from hmviz.explain._model_view import PairDifference, ScalarOutput, eval_view, grad_context, model_device
from hmviz.explain.session import ExplainSession
from hmviz.perturb.apply import apply_edits, reference_profiles
from hmviz.perturb.edits import Edit, Window, resolve

log = logging.getLogger(__name__)

#: Genes scored per forward pass when scoring many inputs.
BATCH = 256


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def torch_transform(raw: torch.Tensor, transform: SignalTransform) -> torch.Tensor:
    """:meth:`SignalTransform.transform` in torch (differentiable in ``raw``); ``raw`` ``(..., marks)``."""
    z = torch.log1p(raw) if transform.log1p else raw
    if transform.scaling != "none":
        center = torch.as_tensor(transform.center, dtype=raw.dtype, device=raw.device)
        scale = torch.as_tensor(transform.scale, dtype=raw.dtype, device=raw.device)
        z = (z - center) / scale
    return z


@dataclass
class PerturbResult:
    """The prediction for a gene before and after edits (``score_*`` in :attr:`unit`).

    ``probability_*``: sigmoid of the logit (binary models), else None. ``p_*``: P(A above B) for a
    pair, else None. ``rank_*``: 1 + the number of other genes scored higher (their scores unedited).
    ``raw_before``/``raw_after``: ``(bins, marks)`` reads per bin of the edited gene (cell).
    """

    gene: str
    gene_id: str
    unit: str
    score_before: float
    score_after: float
    rank_before: int
    rank_after: int
    n_genes: int
    raw_before: np.ndarray
    raw_after: np.ndarray
    marks: tuple[str, ...]
    bin_starts_bp: np.ndarray
    edits: list[str] = field(default_factory=list)
    probability_before: float | None = None
    probability_after: float | None = None
    vs: str | None = None
    vs_id: str | None = None
    score_vs: float | None = None
    p_before: float | None = None
    p_after: float | None = None
    cell: str | None = None

    @property
    def delta(self) -> float:
        return self.score_after - self.score_before

    def to_frame(self) -> pd.DataFrame:
        """Long table ``gene_id, bin, bin_start_bp, mark, reads_before, reads_after, delta_reads``."""
        n_bins, n_marks = self.raw_before.shape
        table = pd.DataFrame(
            {
                "gene_id": self.gene_id,
                "bin": np.repeat(np.arange(n_bins), n_marks),
                "bin_start_bp": np.repeat(self.bin_starts_bp, n_marks),
                "mark": np.tile(self.marks, n_bins),
                "reads_before": self.raw_before.reshape(-1).astype(np.float64),
                "reads_after": self.raw_after.reshape(-1).astype(np.float64),
            }
        )
        table["delta_reads"] = table["reads_after"] - table["reads_before"]
        if self.cell is not None:
            table.insert(1, "cell", self.cell)
        return table

    def summary(self) -> dict:
        """The JSON contract: ``score_before``, ``score_after``, ``unit`` (+ ``p_before``/``p_after`` for a pair)."""
        out = {
            "gene": self.gene_id,
            "unit": self.unit,
            "score_before": self.score_before,
            "score_after": self.score_after,
            "delta": self.delta,
            "rank_before": self.rank_before,
            "rank_after": self.rank_after,
            "n_genes": self.n_genes,
            "edits": list(self.edits),
        }
        if self.probability_before is not None:
            out["probability_before"], out["probability_after"] = self.probability_before, self.probability_after
        if self.vs_id is not None:
            out.update(vs=self.vs_id, score_vs=self.score_vs, p_before=self.p_before, p_after=self.p_after)
        if self.cell is not None:
            out["cell_edited"] = self.cell
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}

    def lines(self) -> list[str]:
        """Before/after in words, one line each."""
        where = f" in cell {self.cell}" if self.cell else ""
        out = [
            f"{self.gene}{where}: {', '.join(self.edits)}" if self.edits else self.gene,
            f"{self.unit}: {self.score_before:+.4g} -> {self.score_after:+.4g} (change {self.delta:+.4g})",
        ]
        if self.probability_before is not None:
            out.append(f"P(high): {self.probability_before:.3f} -> {self.probability_after:.3f}")
        out.append(f"rank among {self.n_genes} genes (1 = highest): {self.rank_before} -> {self.rank_after}")
        if self.p_before is not None:
            out.append(f"P({self.gene} above {self.vs}): {self.p_before:.3f} -> {self.p_after:.3f}")
        return out


def _cells(session: ExplainSession) -> tuple[str, str]:
    """The two cells of a two-cell session (callers check ``session.differential`` first)."""
    assert session.cells is not None, "a two-cell model's session names its cells"
    return session.cells


def _other_cell(session: ExplainSession) -> HistoneDataset:
    assert session.other is not None, "a two-cell model's session holds the second cell"
    return session.other


@dataclass
class Editor:
    """A model and a dataset made ready for edits (see the module docstring).

    Attributes:
        session: the model checked against the data, with its inputs.
        raw: ``(genes, bins, marks)`` reads per bin of the edited cell, in the model's mark order.
        window: the model's marks, bins, bin size and TSS bin.
        cell: for a two-cell model, the name of the edited cell; else None.
    """

    session: ExplainSession
    raw: np.ndarray
    window: Window
    transform: SignalTransform
    cell: str | None = None
    _scores: np.ndarray | None = field(default=None, repr=False)
    _profiles: dict | None = field(default=None, repr=False)

    @classmethod
    def from_session(cls, session: ExplainSession, cell: str | None = None) -> Editor:
        """Edits act on ``cell`` (two-cell models; default the second cell, B) or on the one cell."""
        window = Window.from_card(session.card)
        dataset = session.dataset
        if session.differential:
            cell = _cells(session)[1] if cell is None else str(cell)
            if cell not in _cells(session):
                raise HmvizError(f"Cell '{cell}' is not one the model compares; choose {' or '.join(_cells(session))}.")
            dataset = session.dataset if cell == _cells(session)[0] else _other_cell(session)
        elif cell is not None:
            raise HmvizError(f"{session.card.model} models one cell type; drop the cell choice.")
        cols = [dataset.marks.index(m) for m in window.marks]
        raw = np.ascontiguousarray(dataset.signal[:, :, cols], dtype=np.float32)
        return cls(session, raw, window, SignalTransform.from_dict(dict(session.card.transform)), cell)

    # ------------------------------------------------------------------- basics
    @property
    def kind(self) -> str:
        return self.session.kind

    @property
    def unit(self) -> str:
        if self.session.differential:
            a, b = _cells(self.session)
            return f"predicted log2 fold change ({b} over {a})"
        return "ranking score" if self.kind == "ranking" else "logit of high expression"

    @property
    def marks(self) -> tuple[str, ...]:
        return self.window.marks

    def row(self, gene) -> int:
        return self.session.row(gene)

    def _view(self):
        view = eval_view(self.session.model)
        return view, model_device(view)

    def _fn(self, view):
        return PairDifference(view) if self.session.differential else ScalarOutput(view)

    def _other(self, rows: torch.Tensor) -> torch.Tensor:
        """A two-cell model's fixed input (the cell not edited) for ``rows``."""
        s = self.session
        x = s.x if self.cell == _cells(s)[1] else s.x_other
        assert x is not None  # a two-cell session has both cells' inputs
        return x[rows]

    def _call(self, fn, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if not self.session.differential:
            return fn(x)
        other = self._other(rows).to(x.device)
        return fn(other, x) if self.cell == _cells(self.session)[1] else fn(x, other)

    def score_raw(self, raw: np.ndarray, row: int | np.ndarray) -> np.ndarray:
        """Scores of raw ``(genes, bins, marks)`` signal (or one ``(bins, marks)``) in :attr:`unit`, float64.

        ``row``: the gene (or one per input) whose other cell a two-cell model reads; ignored otherwise."""
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 2:
            raw = raw[None]
        rows = torch.as_tensor(np.broadcast_to(np.asarray(row), (raw.shape[0],)).astype(np.int64))
        view, device = self._view()
        fn = self._fn(view)
        out = []
        with torch.inference_mode():
            for s in range(0, raw.shape[0], BATCH):
                x = torch.from_numpy(self.transform.transform(raw[s : s + BATCH], marks=self.marks)).to(device)
                out.append(self._call(fn, x, rows[s : s + BATCH]).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def score_and_grad(self, raw: np.ndarray, row: int) -> tuple[float, np.ndarray]:
        """The score of one gene's raw ``(bins, marks)`` signal and its gradient in reads per bin."""
        view, device = self._view()
        fn = self._fn(view)
        with grad_context(view):
            x = torch.as_tensor(np.asarray(raw, dtype=np.float32)[None], device=device).requires_grad_(True)
            score = self._call(fn, torch_transform(x, self.transform), torch.as_tensor([row]))[0]
            (grad,) = torch.autograd.grad(score, x)
        return float(score.detach()), grad[0].cpu().numpy().astype(np.float64)

    def all_scores(self) -> np.ndarray:
        """Every gene's score, unedited (computed once; the app passes its cached copy via :meth:`use_scores`)."""
        if self._scores is None:
            log.info("scoring all %d genes for ranks", self.raw.shape[0])
            self._scores = self.session.scores()
        return self._scores

    def use_scores(self, scores: np.ndarray) -> Editor:
        """Reuse scores already computed for every gene (e.g. the app's cache)."""
        self._scores = np.asarray(scores, dtype=np.float64)
        return self

    def labels(self) -> np.ndarray | None:
        """Class per gene (1 high, 0 low, -1 unknown) as the model defines it; for a two-cell model the
        edited cell's expression above the median of the training genes. None when unknown."""
        s = self.session
        if not s.differential:
            return s.labels()
        ds = s.dataset if self.cell == _cells(s)[0] else _other_cell(s)
        if ds.expression is None:
            return None
        from hmviz.data.targets import LabelRule

        threshold = LabelRule.parse("median").fit(ds.expression, s.reference_rows)
        return LabelRule.parse("median").apply(ds.expression, threshold)

    def training_rows(self) -> np.ndarray:
        return self.session.reference_rows

    def profiles(self) -> dict[str, np.ndarray]:
        """Per-bin median reads of the high and low expression training genes (for ``like=`` edits)."""
        if self._profiles is None:
            self._profiles = reference_profiles(self.raw, self.training_rows(), self.labels())
        return self._profiles

    def rank(self, score: float, row: int) -> int:
        """1 + the number of other genes whose (unedited) score is higher than ``score``."""
        scores = self.all_scores()
        others = np.delete(scores, row)
        return int(1 + np.count_nonzero(others > score))

    # ------------------------------------------------------------------ perturb
    def edited(self, row: int, edits) -> np.ndarray:
        """The raw ``(bins, marks)`` signal of gene ``row`` after ``edits`` (texts or :class:`Edit`)."""
        resolved = resolve(edits, self.window)
        needs = {r.edit.value for r in resolved if r.edit.op == "like"}
        return apply_edits(self.raw[row], resolved, self.profiles() if needs else None)

    def result(
        self,
        row: int,
        raw_after: np.ndarray,
        edits: list[str],
        vs: int | None = None,
        score_before: float | None = None,
        score_after: float | None = None,
    ) -> PerturbResult:
        """A :class:`PerturbResult` for gene ``row`` whose signal becomes ``raw_after``."""
        s = self.session
        if vs is not None and s.differential:
            raise HmvizError(f"{s.card.model} compares one gene between two cells; drop the second gene.")
        if vs is not None and vs == row:
            raise HmvizError(f"Gene A and gene B are the same gene ({s.dataset.gene_ids[row]}); choose two genes.")
        if score_before is None:  # the unedited score, as scored for every gene (same inputs, same model)
            score_before = float(self.all_scores()[row])
        if score_after is None:
            score_after = float(self.score_raw(raw_after, row)[0])
        binary = self.kind == "binary" and not s.differential
        out = PerturbResult(
            gene=s.display(row),
            gene_id=str(s.dataset.gene_ids[row]),
            unit=self.unit,
            score_before=float(score_before),
            score_after=float(score_after),
            rank_before=self.rank(score_before, row),
            rank_after=self.rank(score_after, row),
            n_genes=int(self.raw.shape[0]),
            raw_before=self.raw[row].copy(),
            raw_after=np.asarray(raw_after),
            marks=self.marks,
            bin_starts_bp=self.window.bin_starts_bp(),
            edits=list(edits),
            probability_before=sigmoid(score_before) if binary else None,
            probability_after=sigmoid(score_after) if binary else None,
            cell=self.cell,
        )
        if vs is not None:
            score_b = float(self.all_scores()[vs])
            out.vs, out.vs_id, out.score_vs = s.display(vs), str(s.dataset.gene_ids[vs]), score_b
            out.p_before, out.p_after = sigmoid(score_before - score_b), sigmoid(score_after - score_b)
        return out

    def perturb(self, gene, edits, vs=None) -> PerturbResult:
        """The prediction for ``gene`` (id, symbol or row) before and after ``edits`` (texts such as
        ``H3K27me3:promoter:remove`` or :class:`Edit` objects); with ``vs``, also P(gene above vs).

        Edits act on ``gene`` (for a two-cell model, on :attr:`cell`); ``vs`` is left as it is."""
        row = self.row(gene)
        vs_row = None if vs is None else self.row(vs)
        edits = list(edits)
        if not edits:
            raise HmvizError("No edit given; write one as MARK:REGION:OP[:VALUE], e.g. H3K27me3:promoter:remove.")
        raw_after = self.edited(row, edits)
        return self.result(row, raw_after, [str(e) for e in edits], vs_row)


def perturb(session: ExplainSession, gene, edits, vs=None, cell: str | None = None) -> dict:
    """One call with the CLI's contract: the :meth:`PerturbResult.summary` dict (``score_before``,
    ``score_after``, ``unit``; ``p_before``/``p_after`` for a pair)."""
    return Editor.from_session(session, cell).perturb(gene, edits, vs).summary()


__all__ = ["Edit", "Editor", "PerturbResult", "perturb", "sigmoid", "torch_transform"]
