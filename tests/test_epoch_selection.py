"""Which epoch the engine keeps (issue 15, item 3): the validation metric by default, ties to the loss.

Scripted validation curves (``test_training._run_script``) replay what was seen on 600 real REMC
genes: the validation loss rises from epoch 1 while the validation AUROC climbs. Keeping the lowest
loss (the old default) kept epoch 1.
"""

from __future__ import annotations

from test_training import _run_script

from hmviz.options import TrainOptions


def _kept(script, **kw) -> int:
    options = {"select_on": TrainOptions.select_on, "patience": TrainOptions.patience, **kw}
    return _run_script(script, **options)[0]


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
    assert _kept(flat) == 8
    assert _kept(flat, patience=5) == 1
