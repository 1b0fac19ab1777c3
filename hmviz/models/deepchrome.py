"""DeepChrome (Singh et al., Bioinformatics 2016): a 1-D CNN over the binned mark signal.

Architecture (paper's ``convnet``), with shapes for 100 bins x 5 marks in brackets:

    x (batch, bins, marks) -> (batch, marks, bins)      Conv1d wants channels (marks) first
    Conv1d(marks -> 50, kernel 10, no padding)          [50 x 91]
    ReLU -> MaxPool1d(5)                                [50 x 18]
    Dropout(0.5) -> Flatten                             [900] = 50 * ((bins - 10 + 1) // 5)
    Linear(-> 625) -> ReLU -> Linear(625 -> 125) -> ReLU -> Linear(125 -> 1)

**One logit instead of two.** The paper ends in ``Linear(125 -> 2)`` + LogSoftmax + NLL (a 2-class
softmax). hmviz uses a single logit trained with ``BCEWithLogits``: a 2-class softmax depends only
on the difference of its two logits, ``p(high) = sigmoid(z_high - z_low)``, so one logit is the
same model family with one redundant output removed. The logit is also the ranking score and,
trained with MSE, the regression output. Attribute to this logit, not to a probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hmviz.errors import ModelError
from hmviz.models._common import Dropout, ModelConfig, OptimizerName, check_input


def fitting_kernel_and_pool(n_bins: int) -> tuple[int, int]:
    """A convolution width and pool that fit ``n_bins`` bins (the one DeepChrome error's suggestion): the
    kernel a third of the bins (at most the paper's 10), the pool a quarter of what the kernel leaves
    (at most 5); 10 bins give 3 and 2, which docs/training.md measured on E123 summed into 10 bins."""
    kernel = max(1, min(10, n_bins // 3))
    return kernel, max(1, min(5, (n_bins - kernel + 1) // 4))


@dataclass(kw_only=True)
class DeepChromeConfig(ModelConfig):
    """DeepChrome hyperparameters (architecture as in the paper).

    Attributes:
        n_filters: convolution filters (paper: 50).
        kernel_size: convolution width in bins (paper: 10), no padding.
        pool_size: max-pool width and stride in positions (paper: 5).
        dropout: dropout before the first linear layer (paper: 0.5).
        hidden1, hidden2: widths of the two hidden linear layers (paper: 625, 125).

    Training defaults deviate from the paper on purpose: the paper trains with plain SGD
    (lr 1e-3, learning-rate decay 1e-7, momentum 0, weight decay 0) on **one gene per step** for
    100 epochs, which is impractically slow. hmviz defaults to Adam, lr 1e-3, batch 64, 100 epochs
    (the engine stops early on validation AUROC). :meth:`paper_defaults` gives the paper's values;
    the Lua ``learningRateDecay`` (lr / (1 + step * 1e-7), under 0.1 % over a 6,601-gene run) has
    no counterpart in ``torch.optim.SGD`` and is not reproduced.
    """

    n_filters: int = 50
    kernel_size: int = 10
    pool_size: int = 5
    dropout: float = 0.5
    hidden1: int = 625
    hidden2: int = 125
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 100
    grad_clip: float | None = None
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooled_length < 1:
            kernel, pool = fitting_kernel_and_pool(self.n_bins)
            raise ModelError(
                f"DeepChrome with kernel_size={self.kernel_size} and pool_size={self.pool_size} needs at least "
                f"{self.kernel_size + self.pool_size - 1} bins per gene; this data has {self.n_bins}. Set a smaller "
                f"convolution and pool that fit, e.g. --set kernel_size={kernel} --set pool_size={pool}, use data "
                "with more bins, or choose another model family."
            )

    @property
    def pooled_length(self) -> int:
        """Positions left after the unpadded convolution and the max-pool."""
        return (self.n_bins - self.kernel_size + 1) // self.pool_size

    @classmethod
    def paper_defaults(cls, n_marks: int, n_bins: int) -> DeepChromeConfig:
        """The paper's training recipe: SGD, lr 1e-3, one gene per step, 100 epochs."""
        return cls(n_marks=n_marks, n_bins=n_bins, optimizer="sgd", lr=1e-3, batch_size=1, epochs=100)


class DeepChrome(nn.Module):
    """CNN classifier: ``forward(x)`` with ``x`` ``(batch, bins, marks)`` -> logits ``(batch,)``."""

    def __init__(self, config: DeepChromeConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.conv = nn.Conv1d(c.n_marks, c.n_filters, kernel_size=c.kernel_size)
        self.conv_relu = nn.ReLU()
        self.pool = nn.MaxPool1d(c.pool_size)
        self.dropout = Dropout(c.dropout)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c.n_filters * c.pooled_length, c.hidden1)
        self.fc1_relu = nn.ReLU()
        self.fc2 = nn.Linear(c.hidden1, c.hidden2)
        self.fc2_relu = nn.ReLU()
        self.out = nn.Linear(c.hidden2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.config.n_bins, self.config.n_marks, "DeepChrome")
        h = x.transpose(1, 2)  # (batch, bins, marks) -> (batch, marks, bins)
        h = self.pool(self.conv_relu(self.conv(h)))  # (batch, filters, pooled_length)
        h = self.flatten(self.dropout(h))
        h = self.fc2_relu(self.fc2(self.fc1_relu(self.fc1(h))))
        return self.out(h).squeeze(-1)
