"""DeepDiff (Sekhon, Singh, Qi; Bioinformatics 2018): differential expression between two cells.

The model reads the same gene's marks in cell A and cell B and predicts the log2 fold change of
B over A::

    diff = log2((count_b + 1) / (count_a + 1)) = log2(count_b + 1) - log2(count_a + 1)

A positive prediction means "higher in cell B". Use :func:`log2_fold_change` to build the target
so the sign convention cannot drift.

Variants (``DeepDiffConfig.variant``), two of the paper code's seven, built from the AttentiveChrome
blocks:

* ``"raw_d"`` (default): one AttentiveChrome on the difference ``x_b - x_a``. (The paper feeds
  ``x_a - x_b``; hmviz uses ``x_b - x_a`` so that more signal in B points the same way as a
  positive ``diff``. A network learns either; only the sign of attributions is affected.)
* ``"aux"``: each cell has its own bin-level encoder (per-mark BiLSTM + attention) and
  mark-level encoder (BiLSTM + attention) giving a 32-d cell vector; an auxiliary
  ``Linear(32 -> 1)`` per cell predicts ``log2(count + 1)`` of that cell, and a joint MLP
  ``Linear(64 -> 32) -> ReLU -> Linear(32 -> 1)`` on ``[cell_a, cell_b]`` predicts ``diff``.
  With ``siamese=True`` both cells share one bin-level encoder and the loss adds
  ``gamma * contrastive(emb_a, emb_b)`` on the flattened bin-level mark embeddings.

**Deviation**: hmviz's first release defaulted to ``"aux"``. On real data, 600 REMC genes of E123
vs E003 (200 for training), it learned nothing that generalises at the paper's training settings
(test Pearson r 0.000 +/- 0.150 over 5 seeds; ridge and boosted-tree baselines 0.507 and 0.549),
while ``"raw_d"`` reached 0.594 +/- 0.007, above both. On the generated two-cell sample ``"aux"`` was
better (0.913 +/- 0.009 against 0.865 +/- 0.015; baselines 0.757 and 0.852). A default has to hold
up on real data, so it is ``"raw_d"``; ``variant="aux"`` (CLI ``--set variant=aux``) gives the
auxiliary heads and, with ``siamese=True``, the contrastive variant. Measured with
``python bench/bench_models.py accuracy-deepdiff --seeds 5 [--set variant=aux]``.

The loss (:meth:`DeepDiff.loss`) is ``MSE(pred, diff)`` + ``aux_weight * (MSE(pred_a, abs_a) +
MSE(pred_b, abs_b))`` (aux only) + ``contrastive_weight * contrastive`` (siamese only), each MSE
in units of its target's training standard deviation (see below).

**Target scale** (``target_scaling="standard"``, the default): the network's last layer sees
targets standardised on the training genes, ``(diff - center) / scale``, and the model outputs
``center + scale * head(...)``, so predictions are log2 fold changes on their own scale. Without
it (``target_scaling="none"``, the paper code's raw targets) the head starts from outputs of about
0.1 against log2 fold changes spread over +/-9, Adam at lr 1e-4 moves each weight by about 1e-4 a
step, and validation Pearson r (which ignores scale) peaks long before the scale is learned: the
first bundled DeepDiff predicted +0.15..+1.07 for changes of -8.9..+8.8 (test MSE 7.0, worse than
predicting 0). ``center``/``scale`` are buffers fitted by :meth:`DeepDiff.fit_target_scale` and
saved with the weights; a checkpoint from before they existed loads with the identity (0, 1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from hmviz.errors import ModelError
from hmviz.models._common import ModelConfig, OptimizerName, check_input
from hmviz.models._recurrent import BinLSTMImpl
from hmviz.models.attentivechrome import BinLevelEncoder, MarkLevelEncoder, init_uniform_


def log2_fold_change(count_a: torch.Tensor, count_b: torch.Tensor) -> torch.Tensor:
    """``log2((count_b + 1) / (count_a + 1))``: the DeepDiff target, positive when B is higher."""
    return torch.log2(count_b + 1.0) - torch.log2(count_a + 1.0)


@dataclass(kw_only=True)
class DeepDiffConfig(ModelConfig):
    """DeepDiff hyperparameters; defaults are the paper code's, except the variant.

    Attributes:
        variant: ``"raw_d"`` (AttentiveChrome on ``x_b - x_a``; default, see the module's
            **Deviation**) or ``"aux"`` (per-cell encoders + auxiliary heads + joint MLP).
        siamese: share the bin-level encoder between the two cells and add the contrastive term
            (``variant="aux"`` only).
        bin_hidden, mark_hidden: LSTM sizes per direction, as AttentiveChrome (32, 16).
        joint_hidden: hidden width of the joint MLP (32).
        aux_weight: weight of the two auxiliary MSE terms (paper: 1).
        contrastive_weight: gamma, weight of the contrastive term (paper: 4.0).
        contrastive_margin: margin of the contrastive loss (paper: 2.0).
        contrastive_threshold: a gene counts as a "different" pair (y = 1, pushed apart) when
            ``|diff| >= contrastive_threshold`` (paper: 2.0), else it is pulled together.
        dropout: dropout on LSTM outputs (0.0 = paper behaviour).
        init_range: every parameter from U(-init_range, init_range) (paper: 0.1).
        bin_lstm_impl: see :class:`~hmviz.models.attentivechrome.AttentiveChromeConfig`.
        target_scaling: ``"standard"`` (default): outputs and loss on targets standardised with the
            training genes' mean and standard deviation (see the module's **Target scale**);
            ``"none"``: raw log2 targets, as the paper code.
        Training: Adam, 90 epochs (a cap; early stopping ends most runs), clip-norm 1 (paper).
        batch_size 64, lr 1e-3: **Deviation** (paper: batch 10, lr 1e-4, as ``paper_defaults()``),
            the pair AttentiveChrome uses: at batch 10 an epoch costs several times more LSTM
            calls per gene on CPU. On ``sample_data/two_cells`` (seed 1) the validation R^2 was 0.62
            after 7 epochs at these settings.
    """

    variant: Literal["aux", "raw_d"] = "raw_d"
    siamese: bool = False
    bin_hidden: int = 32
    mark_hidden: int = 16
    joint_hidden: int = 32
    aux_weight: float = 1.0
    contrastive_weight: float = 4.0
    contrastive_margin: float = 2.0
    contrastive_threshold: float = 2.0
    dropout: float = 0.0
    init_range: float = 0.1
    bin_lstm_impl: BinLSTMImpl = "auto"
    target_scaling: Literal["standard", "none"] = "standard"
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 90
    grad_clip: float | None = 1.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target_scaling not in ("standard", "none"):
            raise ModelError(f"target_scaling must be 'standard' or 'none'; got {self.target_scaling!r}.")
        if self.siamese and self.variant != "aux":
            raise ModelError("siamese=True needs variant='aux' (raw_d has a single encoder to share).")
        # A setting the chosen variant never reads would be silently ignored: refuse it instead.
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        unused = [
            name
            for name, needs in (
                ("aux_weight", self.variant == "aux"),
                ("contrastive_weight", self.siamese),
                ("contrastive_margin", self.siamese),
                ("contrastive_threshold", self.siamese),
            )
            if not needs and getattr(self, name) != defaults[name]
        ]
        if unused:
            needs = (
                "variant='aux' and siamese=True"
                if any(n.startswith("contrastive") for n in unused)
                else "variant='aux'"
            )
            raise ModelError(
                f"{', '.join(unused)} {'acts' if len(unused) == 1 else 'act'} only with {needs}; this "
                f"DeepDiff has variant={self.variant!r}, siamese={self.siamese}. Set {needs} too, or "
                "leave the setting at its default."
            )

    @classmethod
    def paper_defaults(cls, n_marks: int, n_bins: int) -> DeepDiffConfig:
        """The paper code's ``aux`` variant (a separate encoder per cell and the two auxiliary heads)
        with its training settings and raw targets: hmviz's first default (see the module's
        **Deviation** and **Target scale**)."""
        return cls(n_marks=n_marks, n_bins=n_bins, variant="aux", target_scaling="none", lr=1e-4, batch_size=10)


class CellAttention(NamedTuple):
    """Attention weights for one input: ``bin`` (batch, marks, bins), ``mark`` (batch, marks)."""

    bin: torch.Tensor
    mark: torch.Tensor


class DeepDiffOutput(NamedTuple):
    """Everything DeepDiff computes (``forward(x_a, x_b, return_all=True)``).

    Attributes:
        pred: ``(batch,)`` predicted log2 fold change of B over A.
        pred_a, pred_b: ``(batch,)`` auxiliary predictions of ``log2(count + 1)`` per cell
            (``None`` for ``raw_d``).
        embeddings: ``(emb_a, emb_b)``, each ``(batch, marks * 2 * bin_hidden)``, the flattened
            bin-level mark embeddings used by the contrastive loss (``None`` for ``raw_d``).
        attention: ``{"a": CellAttention, "b": CellAttention}`` for ``aux``;
            ``{"b-a": CellAttention}`` for ``raw_d``.
    """

    pred: torch.Tensor
    pred_a: torch.Tensor | None
    pred_b: torch.Tensor | None
    embeddings: tuple[torch.Tensor, torch.Tensor] | None
    attention: dict[str, CellAttention]


def contrastive_loss(emb_a: torch.Tensor, emb_b: torch.Tensor, different: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell-style contrastive loss, mean over the batch.

    ``(1 - y) * d**2 + y * max(0, margin - d)**2`` with ``d = ||emb_a - emb_b||_2`` and
    ``y = different`` (1 = push apart, 0 = pull together).
    """
    d = torch.linalg.vector_norm(emb_a - emb_b, dim=-1)
    y = different.to(d.dtype)
    return ((1 - y) * d.pow(2) + y * torch.clamp(margin - d, min=0).pow(2)).mean()


class DeepDiff(nn.Module):
    """Two-cell model. ``forward(x_a, x_b)``, each ``(batch, bins, marks)`` -> ``(batch,)`` log2 FC (B over A).

    ``forward(x_a, x_b, return_all=True)`` returns a :class:`DeepDiffOutput`. The siamese
    variant runs its shared encoder once on both cells stacked along the batch axis, so every
    module runs once per forward (as Captum's DeepLift requires).
    """

    # target scale buffers (registered in __init__)
    diff_center: torch.Tensor
    diff_scale: torch.Tensor
    abs_center: torch.Tensor
    abs_scale: torch.Tensor

    def __init__(self, config: DeepDiffConfig) -> None:
        super().__init__()
        self.config = config
        c = config

        def bin_level_encoder() -> BinLevelEncoder:
            return BinLevelEncoder(
                c.n_marks, hidden=c.bin_hidden, dropout=c.dropout, impl=c.bin_lstm_impl, init_range=c.init_range
            )

        if c.variant == "raw_d":
            self.bin_encoder = bin_level_encoder()
            self.mark_encoder = MarkLevelEncoder(self.bin_encoder.out_dim, c.mark_hidden, c.dropout, c.init_range)
            self.head = nn.Linear(self.mark_encoder.out_dim, 1)
        else:
            if c.siamese:
                self.bin_encoder = bin_level_encoder()
            else:
                self.bin_encoder_a = bin_level_encoder()
                self.bin_encoder_b = bin_level_encoder()
            emb_dim = 2 * c.bin_hidden
            self.mark_encoder_a = MarkLevelEncoder(emb_dim, c.mark_hidden, c.dropout, c.init_range)
            self.mark_encoder_b = MarkLevelEncoder(emb_dim, c.mark_hidden, c.dropout, c.init_range)
            cell_dim = 2 * c.mark_hidden
            self.aux_head_a = nn.Linear(cell_dim, 1)
            self.aux_head_b = nn.Linear(cell_dim, 1)
            self.joint = nn.Sequential(nn.Linear(2 * cell_dim, c.joint_hidden), nn.ReLU(), nn.Linear(c.joint_hidden, 1))
        init_uniform_(self, c.init_range)
        # Target scale (buffers, saved with the weights): identity until fit_target_scale.
        for name, value in (("diff_center", 0.0), ("diff_scale", 1.0), ("abs_center", 0.0), ("abs_scale", 1.0)):
            self.register_buffer(name, torch.tensor(value))

    def fit_target_scale(self, diff: torch.Tensor, abs_values: torch.Tensor | None = None) -> None:
        """Set the target scale from training targets (``target_scaling="standard"``; else a no-op).

        Args:
            diff: training genes' log2 fold changes ``(n,)``.
            abs_values: training genes' ``log2(count + 1)`` of both cells ``(m,)`` (aux heads).
        """
        if self.config.target_scaling == "none":
            return
        for prefix, values in (("diff", diff), ("abs", abs_values)):
            if values is None or values.numel() < 2:
                continue
            values = values.detach().double()
            std = float(values.std())
            getattr(self, f"{prefix}_center").fill_(float(values.mean()))
            getattr(self, f"{prefix}_scale").fill_(std if math.isfinite(std) and std > 0 else 1.0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before the target scale existed predicted raw targets: identity scale.
        for name, value in (("diff_center", 0.0), ("diff_scale", 1.0), ("abs_center", 0.0), ("abs_scale", 1.0)):
            state_dict.setdefault(prefix + name, torch.tensor(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _diff(self, raw: torch.Tensor) -> torch.Tensor:
        return self.diff_center + self.diff_scale * raw.squeeze(-1)

    def _abs(self, raw: torch.Tensor) -> torch.Tensor:
        return self.abs_center + self.abs_scale * raw.squeeze(-1)

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor, return_all: bool = False) -> torch.Tensor | DeepDiffOutput:
        c = self.config
        check_input(x_a, c.n_bins, c.n_marks, "DeepDiff (cell A)")
        check_input(x_b, c.n_bins, c.n_marks, "DeepDiff (cell B)")
        if x_a.shape[0] != x_b.shape[0]:
            raise ModelError(
                f"DeepDiff needs the same genes in both cells, got {x_a.shape[0]} genes for A and {x_b.shape[0]} for B."
            )
        if c.variant == "raw_d":
            return self._forward_raw_d(x_b - x_a, return_all)
        return self._forward_aux(x_a, x_b, return_all)

    def _forward_raw_d(self, x_diff: torch.Tensor, return_all: bool) -> torch.Tensor | DeepDiffOutput:
        if not return_all:
            return self._diff(self.head(self.mark_encoder(self.bin_encoder(x_diff))))
        emb, alpha = self.bin_encoder(x_diff, return_attention=True)
        gene, beta = self.mark_encoder(emb, return_attention=True)
        pred = self._diff(self.head(gene))
        return DeepDiffOutput(pred, None, None, None, {"b-a": CellAttention(alpha, beta)})

    def _forward_aux(self, x_a: torch.Tensor, x_b: torch.Tensor, return_all: bool) -> torch.Tensor | DeepDiffOutput:
        batch = x_a.shape[0]
        if self.config.siamese:
            both = self.bin_encoder(torch.cat([x_a, x_b], dim=0), return_attention=return_all)
            if return_all:
                emb, alpha = both
                alpha_a, alpha_b = alpha[:batch], alpha[batch:]
            else:
                emb = both
            emb_a, emb_b = emb[:batch], emb[batch:]
        elif return_all:
            emb_a, alpha_a = self.bin_encoder_a(x_a, return_attention=True)
            emb_b, alpha_b = self.bin_encoder_b(x_b, return_attention=True)
        else:
            emb_a, emb_b = self.bin_encoder_a(x_a), self.bin_encoder_b(x_b)
        if return_all:
            cell_a, beta_a = self.mark_encoder_a(emb_a, return_attention=True)
            cell_b, beta_b = self.mark_encoder_b(emb_b, return_attention=True)
        else:
            cell_a, cell_b = self.mark_encoder_a(emb_a), self.mark_encoder_b(emb_b)
        pred = self._diff(self.joint(torch.cat([cell_a, cell_b], dim=-1)))
        if not return_all:
            return pred
        return DeepDiffOutput(
            pred=pred,
            pred_a=self._abs(self.aux_head_a(cell_a)),
            pred_b=self._abs(self.aux_head_b(cell_b)),
            embeddings=(emb_a.flatten(1), emb_b.flatten(1)),
            attention={"a": CellAttention(alpha_a, beta_a), "b": CellAttention(alpha_b, beta_b)},
        )

    def loss_terms(
        self,
        outputs: DeepDiffOutput,
        diff: torch.Tensor,
        abs_a: torch.Tensor | None = None,
        abs_b: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The weighted loss terms, keyed ``"mse"``, ``"aux"`` (aux variant), ``"contrastive"`` (siamese).

        The MSE terms are in units of the target scale (``MSE / scale**2``; plain MSE with
        ``target_scaling="none"`` or before :meth:`fit_target_scale`).

        Args:
            outputs: ``forward(x_a, x_b, return_all=True)``.
            diff: ``(batch,)`` target ``log2((count_b + 1) / (count_a + 1))`` (:func:`log2_fold_change`).
            abs_a, abs_b: ``(batch,)`` targets ``log2(count + 1)`` per cell (needed for ``aux``).
        """
        c = self.config
        terms = {"mse": F.mse_loss(outputs.pred, diff) / self.diff_scale.pow(2)}
        if c.variant == "aux":
            if abs_a is None or abs_b is None:
                raise ModelError("DeepDiff variant 'aux' needs abs_a and abs_b = log2(count + 1) for each cell.")
            if outputs.pred_a is None or outputs.pred_b is None:
                raise ModelError("DeepDiff variant 'aux' needs the outputs of forward(x_a, x_b, return_all=True).")
            terms["aux"] = (
                c.aux_weight
                * (F.mse_loss(outputs.pred_a, abs_a) + F.mse_loss(outputs.pred_b, abs_b))
                / self.abs_scale.pow(2)
            )
        if c.siamese:
            if outputs.embeddings is None:
                raise ModelError("A siamese DeepDiff needs the embeddings of forward(x_a, x_b, return_all=True).")
            emb_a, emb_b = outputs.embeddings
            different = diff.abs() >= c.contrastive_threshold
            terms["contrastive"] = c.contrastive_weight * contrastive_loss(
                emb_a, emb_b, different, c.contrastive_margin
            )
        return terms

    def loss(
        self,
        outputs: DeepDiffOutput,
        diff: torch.Tensor,
        abs_a: torch.Tensor | None = None,
        abs_b: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Total training loss: the sum of :meth:`loss_terms` (a scalar tensor)."""
        mse, *others = self.loss_terms(outputs, diff, abs_a, abs_b).values()
        total = mse
        for term in others:
            total = total + term
        return total
