"""Which epoch the engine keeps (issue 15, item 3): the validation metric by default, ties to the loss.

Scripted validation curves (``test_training._run_script``) replay what was seen on 600 real REMC
genes: the validation loss rises from epoch 1 while the validation AUROC climbs. Keeping the lowest
loss (the old default) kept epoch 1.
"""

from __future__ import annotations

import pytest

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


# AttentiveChrome on 600 REMC genes (E123, file split), seed 5, default settings but 60 epochs and no
# early stopping: (validation AUROC, validation loss) per epoch, from `python bench/bench_epochs.py
# --models attentivechrome --first-seed 5 --seeds 1 --cap 60`. The AUROC peaks at epoch 39 while the
# loss still reaches new lows at epoch 52.
ATTENTIVECHROME_E123_SEED5 = [
    (0.9178, 0.6923), (0.9205, 0.6926), (0.9222, 0.6928), (0.9236, 0.6930), (0.9233, 0.6930), (0.9236, 0.6927),
    (0.9237, 0.6920), (0.9257, 0.6903), (0.9278, 0.6890), (0.9307, 0.6977), (0.9289, 0.7010), (0.9325, 0.6696),
    (0.9356, 0.6382), (0.9373, 0.6155), (0.9382, 0.5982), (0.9371, 0.5882), (0.9339, 0.5871), (0.9357, 0.5857),
    (0.9368, 0.5657), (0.9369, 0.5382), (0.9392, 0.5136), (0.9419, 0.4974), (0.9431, 0.4882), (0.9413, 0.4834),
    (0.9387, 0.4764), (0.9387, 0.4671), (0.9374, 0.4548), (0.9395, 0.4490), (0.9454, 0.4425), (0.9405, 0.4286),
    (0.9432, 0.4132), (0.9448, 0.4113), (0.9451, 0.4087), (0.9435, 0.4102), (0.9444, 0.3837), (0.9437, 0.3691),
    (0.9445, 0.3638), (0.9460, 0.3691), (0.9462, 0.3738), (0.9457, 0.3648), (0.9435, 0.3641), (0.9435, 0.3688),
    (0.9429, 0.3603), (0.9385, 0.3554), (0.9332, 0.3555), (0.9339, 0.3601), (0.9360, 0.3569), (0.9383, 0.3671),
    (0.9389, 0.3704), (0.9384, 0.3651), (0.9354, 0.3568), (0.9333, 0.3478), (0.9298, 0.3512), (0.9320, 0.3581),
    (0.9304, 0.3644), (0.9307, 0.3643), (0.9333, 0.3577), (0.9328, 0.3515), (0.9323, 0.3572), (0.9293, 0.3558),
]


def test_the_epoch_cap_is_a_safety_net_on_a_measured_curve() -> None:
    """Watching the loss too (the old rule) ran this curve to any cap; the default stops 10 epochs after
    the best validation AUROC, and the old 30-epoch cap cut the run before its best epoch."""
    assert _kept(ATTENTIVECHROME_E123_SEED5) == 39
    assert _run_script(ATTENTIVECHROME_E123_SEED5, "metric", patience=10) == (39, 49)
    assert _run_script(ATTENTIVECHROME_E123_SEED5[:30], "metric", patience=10) == (29, 30)  # the old cap
    assert _run_script(ATTENTIVECHROME_E123_SEED5, "loss", patience=10)[1] == 60  # loss keeps improving


def test_the_card_says_what_ended_training_and_which_attention_ran() -> None:
    """The card's early-stopping sentence follows the rule that ran (it named the loss after the rule
    stopped watching it); AttentiveChrome's card says how its attention pooling ran."""
    from hmviz.data.synthetic import make_sample_dataset
    from hmviz.engine import EARLY_STOPPING
    from hmviz.training import train

    data, _ = make_sample_dataset(n_genes=60, seed=0)
    for select_on in ("metric", "loss"):
        card = train(data, TrainOptions(model="deepchrome", epochs=1, device="cpu", select_on=select_on)).model_card
        assert card.run.early_stopping == EARLY_STOPPING[select_on]
    assert "loss" not in EARLY_STOPPING["metric"].split("(")[0]
    training = train(data, TrainOptions(model="attentivechrome", epochs=1, device="cpu")).card["training"]
    assert training["attention_impl"] in ("compiled", "eager")
    assert "attention_impl" not in train(data, TrainOptions(model="deepchrome", epochs=1, device="cpu")).card["training"]


@pytest.mark.parametrize("task, metric", [("binary", "AUROC"), ("ranking", "pairwise accuracy"), ("differential", "R²")])
def test_the_train_pages_rule_names_the_metric_the_engine_keeps_and_the_warm_up(task, metric):
    from hmviz.engine import epoch_rule
    from hmviz.models import build_model
    from hmviz_app.text import in_page_words

    rule = epoch_rule(task)
    assert f"best validation {metric}" in rule and "lower validation loss" in rule and "steps" not in rule
    assert "300 training steps" in epoch_rule(task, build_model("attentivechrome", 5, 100)[1].min_steps)
    by_loss = epoch_rule(task, select_on="loss")
    assert "lowest validation loss" in by_loss and f"best validation {metric}" not in by_loss
    page = in_page_words(epoch_rule(task, 300))
    assert "--" not in page and "Patience (epochs)" in page and "Epochs (at most)" in page
