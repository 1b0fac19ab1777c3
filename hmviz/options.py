"""What decides a training run: :class:`TrainOptions` (all of it is written into the model card)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hmviz.errors import HmvizError


@dataclass
class TrainOptions:
    """Everything that decides a training run (all of it is written into the model card)."""

    model: str
    epochs: int | None = None  # None: the model config's default
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 1
    device: str = "auto"
    marks: tuple[str, ...] | None = None  # None: every mark in the data, in its order
    label_rule: str | None = None  # None: the file's labels if present, else "median"
    split: str = "auto"  # auto (file's split, else random) | file | random | chromosome
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    valid_chroms: tuple[str, ...] | None = None
    test_chroms: tuple[str, ...] | None = None
    patience: int = 10  # epochs in which neither validation loss nor metric improved: stop
    select_on: str = "metric"  # keep the epoch with the best validation "metric" (ties: loss) or "loss"
    log1p: bool = True
    scaling: str = "standard"
    pairs_per_gene: int = 4  # ranking: training pairs drawn per training gene and epoch
    # ranking: "within-batch": batches of batch_size genes, pairs_per_gene x genes pairs drawn among each
    # batch's genes, every gene scored once per epoch; "global": pairs drawn from all training genes,
    # batches of batch_size pairs, both genes of every pair scored (pairs_per_gene x 2 scorings per gene).
    pair_sampling: str = "within-batch"
    cells: tuple[str, str] | None = None  # differential: (cell A, cell B); target log2((B+1)/(A+1))
    amp: bool | None = None  # mixed precision: None = on for CUDA
    model_overrides: dict = field(default_factory=dict)

    def validate(self) -> TrainOptions:
        """Refuse out-of-range numbers before any work: each message names the option (and its flag)."""
        from hmviz import limits

        def whole(flag: str, value, low: int, high: int, meaning: str = "") -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise HmvizError(f"{flag} must be a whole number{meaning}; got {value!r}.")
            if value < low:
                at_least = f"0{meaning} or more" if low == 0 else f"at least {low}{meaning}"
                raise HmvizError(f"{flag} must be {at_least}; got {value}.")
            if value > high:
                raise HmvizError(f"{flag} must be at most {high:,}{meaning}; got {value:,}.")

        whole("--epochs", self.epochs, 1, limits.EPOCHS.value())
        whole("--batch-size", self.batch_size, 1, limits.BATCH_SIZE.value(), " (genes per batch)")
        whole("--seed", self.seed, 0, 2**32 - 1)
        whole("--patience", self.patience, 0, limits.EPOCHS.value(), " (never stop early)")
        if self.lr is not None and (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float, np.floating))
            or not np.isfinite(self.lr)
            or not self.lr > 0
        ):
            raise HmvizError(
                f"--lr (the learning rate) must be a finite number above 0 (typically 1e-4 to 1e-2); got {self.lr!r}."
            )
        return self
