"""Which epoch the engine keeps (issue 15, item 3): the validation metric by default, ties to the loss.

A scripted task replays the validation curves seen on 600 real REMC genes: the validation loss
rises from epoch 1 while the validation AUROC climbs. Keeping the lowest loss kept epoch 1.
"""

from __future__ import annotations

import torch

from hmviz.training import TrainOptions, _run_epochs, _Task


class _Scripted(_Task):
    """One training batch per epoch; validation returns the next (metric, loss) of the script."""

    metric_name = "valid_auroc"

    def __init__(self, script):
        super().__init__(torch.device("cpu"))
        self.script = list(script)
        self.epoch = 0

    def train_batches(self, rng, batch_size):
        yield (torch.ones(2, 1),)

    def loss(self, model, batch):
        return model(batch[0]).pow(2).mean()

    def validate(self, model):
        self.epoch += 1
        return self.script[self.epoch - 1]


def _kept(script, **kw) -> int:
    model = torch.nn.Linear(1, 1)
    task = _Scripted(script)
    options = {"select_on": TrainOptions.select_on, "patience": TrainOptions.patience, **kw}
    best_epoch, _ = _run_epochs(model, task, params=list(model.parameters()), lr=1e-3, weight_decay=0.0,
                                epochs=len(script), batch_size=2, grad_clip=None, seed=0, device=torch.device("cpu"),
                                amp=False, stage="train", progress=None, should_stop=None, **options)
    return best_epoch


# (valid AUROC, valid loss) per epoch: loss lowest at epoch 1, AUROC best at epoch 6.
RISING_LOSS = [(0.70, 0.66), (0.74, 0.67), (0.78, 0.69), (0.83, 0.70), (0.86, 0.71), (0.88, 0.73), (0.87, 0.74)]


def test_default_keeps_the_best_validation_metric_not_the_first_epoch() -> None:
    assert _kept(RISING_LOSS) == 6
    assert _kept(RISING_LOSS, select_on="loss") == 1  # the old default's choice, still available


def test_equal_metric_goes_to_the_lower_loss() -> None:
    script = [(0.80, 0.60), (0.85, 0.55), (0.85, 0.50), (0.85, 0.52)]
    assert _kept(script) == 3


def test_patience_waits_for_a_slow_metric() -> None:
    """Six flat epochs before the metric improves again: patience 5 stopped there, the default waits."""
    flat = [(0.80, 0.50)] + [(0.80, 0.51 + 0.01 * i) for i in range(6)] + [(0.84, 0.60)]
    assert TrainOptions.patience >= 7
    assert _kept(flat) == 8
    assert _kept(flat, patience=5) == 1
