"""The training engine: every family trains, cards reload to identical models, science is honest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hmviz.checkpoints import load_model, save_model
from hmviz.data.dataset import MultiCellDataset
from hmviz.data.synthetic import make_sample_dataset
from hmviz.errors import DataError, HmvizError
from hmviz.baselines import train_baseline
from hmviz.engine import _run_epochs, seed_everything, TrainingCancelled
from hmviz.evaluation import evaluate
from hmviz.inference import choose_device, predict_scores
from hmviz.options import TrainOptions
from hmviz.tasks import _Task
from hmviz.training import train


@pytest.fixture(scope="module")
def small():
    """400 synthetic genes with planted rules, expression, labels and a 70/15/15 split."""
    ds, _ = make_sample_dataset(n_genes=400, seed=3)
    return ds


FAST = {"epochs": 2, "batch_size": 64}


@pytest.mark.parametrize("name", ["deepchrome", "attentivechrome", "simplechrome", "ranker-deepchrome",
                                  "ranker-attentivechrome"])
def test_every_single_cell_family_trains_and_reloads_identically(small, tmp_path, name):
    result = train(small, TrainOptions(model=name, seed=7, **FAST))
    card = result.card
    assert card["marks"] == list(small.marks) and card["n_bins"] == small.n_bins
    assert card["seed"] == 7 and card["data"]["fingerprint"] == small.fingerprint()
    key = "test_auroc" if card["task"] == "binary" else "test_pairwise_accuracy"
    assert 0.0 <= result.metrics[key] <= 1.0
    save_model(result.model, card, tmp_path / name)
    loaded, loaded_card = load_model(tmp_path / name)
    np.testing.assert_array_equal(predict_scores(result.model, card, small), predict_scores(loaded, loaded_card, small))


@pytest.mark.parametrize("name", ["deepchrome", "attentivechrome"])  # attentivechrome: the grouped LSTM's own backward
def test_same_seed_same_model_and_metrics(small, name):
    a = train(small, TrainOptions(model=name, seed=11, **FAST))
    b = train(small, TrainOptions(model=name, seed=11, **FAST))
    assert a.metrics == b.metrics
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_transform_and_threshold_fitted_on_training_genes_only(small):
    """Changing the test genes' signal and expression changes neither the transform nor the label threshold."""
    opts = TrainOptions(model="deepchrome", seed=1, label_rule="median", epochs=1)
    base = train(small, opts).card
    test = small.split == "test"
    signal = small.signal.copy()
    signal[test] *= 50
    expression = small.expression.copy()
    expression[test] = np.random.default_rng(0).permutation(expression[test]) * 3.0
    changed = dataclasses.replace(small, signal=signal, expression=expression, meta=dict(small.meta))
    card = train(changed, opts).card
    assert card["transform"] == base["transform"]
    assert card["label_threshold"] == base["label_threshold"]


def test_ranker_antisymmetry_is_exact(small):
    result = train(small, TrainOptions(model="ranker-deepchrome", seed=2, **FAST))
    assert result.metrics["test_antisymmetry_error"] == 0.0


def _ranking_task(ds, pair_sampling):
    from hmviz.data.transforms import SignalTransform
    from hmviz.models import get_spec
    from hmviz.tasks import _make_task

    options = TrainOptions(model="ranker-deepchrome", pair_sampling=pair_sampling)
    transform = SignalTransform().fit(ds.signal, ds.split == "train")
    return _make_task(ds, options, get_spec(options.model), torch.device("cpu"), transform, None, None)


def test_within_batch_pairs_score_every_training_gene_once_and_never_leave_the_batch(small):
    task = _ranking_task(small, "within-batch")
    train_rows = set(np.flatnonzero(small.split == "train"))
    seen, n_pairs = [], 0
    for x, i, j, t in task.train_batches(np.random.default_rng(0), batch_size=64):
        assert len(x) <= 64 and 0 <= int(i.min()) and int(max(i.max(), j.max())) < len(x)
        rows = [int(np.flatnonzero((task.x == xi).all(-1).all(-1))[0]) for xi in x]
        seen += rows
        truth = np.log1p(small.expression[rows])
        # every pair is two genes of this batch, ordered by expression as its target says
        assert np.all((truth[i.numpy()] > truth[j.numpy()]) == (t.numpy() == 1))
        n_pairs += len(t)
    assert sorted(seen) == sorted(train_rows)  # each training gene once per epoch, no other gene
    assert n_pairs == pytest.approx(task.pairs_per_gene * len(train_rows), rel=0.02)


def test_within_batch_loss_is_the_ranknet_loss_of_score_differences(small):
    from hmviz.models import build_model

    torch.manual_seed(0)
    model = build_model("ranker-deepchrome", n_marks=len(small.marks), n_bins=small.n_bins)[0].eval()
    task = _ranking_task(small, "within-batch")
    x, i, j, t = next(iter(task.train_batches(np.random.default_rng(1), batch_size=32)))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(model(x[i], x[j]), t)
    assert task.loss(model, (x, i, j, t)).item() == pytest.approx(expected.item(), rel=1e-6)


def test_pair_sampling_is_recorded_and_checked(small):
    card = train(small, TrainOptions(model="ranker-deepchrome", seed=2, pair_sampling="global", **FAST)).card
    assert card["training"]["pair_sampling"] == "global" and card["training"]["pairs_per_gene"] == 4
    assert "pair_sampling" not in train(small, TrainOptions(model="deepchrome", seed=2, epochs=1)).card["training"]
    with pytest.raises(HmvizError, match="pair_sampling must be one of within-batch, global"):
        train(small, TrainOptions(model="ranker-deepchrome", pair_sampling="all", epochs=1))


def test_deepdiff_trains_on_two_cells(small):
    rng = np.random.default_rng(0)
    other = dataclasses.replace(small, cell="B", signal=small.signal[:, :, ::-1].copy(),
                                expression=small.expression * rng.uniform(0.2, 5, small.n_genes), meta={})
    multi = MultiCellDataset({"A": dataclasses.replace(small, cell="A", meta=dict(small.meta)), "B": other})
    result = train(multi, TrainOptions(model="deepdiff", seed=1, epochs=1, batch_size=64))
    assert -1 <= result.metrics["test_pearson_r"] <= 1
    assert result.card["cells"] == ["A", "B"]


def test_deepdiff_on_one_cell_explains_what_it_needs(small):
    with pytest.raises(DataError, match="two cell"):
        train(small, TrainOptions(model="deepdiff", epochs=1))


def test_progress_and_cancel(small):
    events = []
    train(small, TrainOptions(model="deepchrome", **FAST), progress=events.append)
    ends = [e for e in events if e.epoch_end]
    assert [e.epoch for e in ends] == [1, 2] and all(e.valid_metric is not None for e in ends)
    assert any(not e.epoch_end for e in events)
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(TrainingCancelled):
        train(small, TrainOptions(model="deepchrome", **FAST), should_stop=stop_after_three)


def test_marks_subset_and_missing_mark(small):
    result = train(small, TrainOptions(model="deepchrome", marks=("H3K4me3", "H3K36me3"), epochs=1))
    assert result.card["marks"] == ["H3K4me3", "H3K36me3"]
    with pytest.raises(DataError, match="H3K27ac"):
        train(small, TrainOptions(model="deepchrome", marks=("H3K27ac",), epochs=1))


def test_label_rule_needs_expression(small):
    no_expr = dataclasses.replace(small, expression=None, meta={})
    with pytest.raises(DataError, match="needs expression"):
        train(no_expr, TrainOptions(model="deepchrome", label_rule="quantile:0.75", epochs=1))


def test_evaluate_on_training_data_uses_the_same_test_split(small, tmp_path):
    result = train(small, TrainOptions(model="deepchrome", seed=5, split="random", **FAST))
    save_model(result.model, result.card, tmp_path / "m")
    metrics = evaluate(tmp_path / "m", small, device="cpu")
    assert metrics["evaluated_on"].startswith("test split of the training data")
    assert metrics["genes_evaluated"] == result.card["split"]["counts"]["test"] == metrics["model_test_genes"]
    assert metrics["test_auroc"] == pytest.approx(result.metrics["test_auroc"])


def test_evaluate_refuses_data_with_other_marks_or_window(small, tmp_path):
    result = train(small, TrainOptions(model="deepchrome", epochs=1))
    save_model(result.model, result.card, tmp_path / "m")
    renamed = dataclasses.replace(small, marks=("a", "b", "c", "d", "e"), meta={})
    with pytest.raises(DataError, match="H3K4me3"):
        evaluate(tmp_path / "m", renamed, device="cpu")
    shorter = small.subset(slice(None))
    shorter = dataclasses.replace(shorter, signal=shorter.signal[:, :60], tss_bin=30, meta={})
    with pytest.raises(DataError, match="60 bins"):
        evaluate(tmp_path / "m", shorter, device="cpu")


def test_baselines_share_the_split(small):
    out = train_baseline(small, "logistic", TrainOptions(model="deepchrome"))
    assert out["model"] == "logistic" and 0.5 < out["test_auroc"] <= 1.0
    assert "scores_by_gene" not in out


def test_baseline_scores_by_gene_are_its_test_genes_and_give_its_test_metric(small):
    """The scores a paired comparison uses are the ones the baseline's own test metric was computed from."""
    from hmviz import metrics as M

    from hmviz.models import get_spec
    from hmviz.preparation import _prepare

    options = TrainOptions(model="deepchrome")
    out = train_baseline(small, "logistic", options, scores_by_gene=True)
    prepared = _prepare(small, options, get_spec("deepchrome")).dataset
    test = prepared.split_indices("test")
    assert sorted(out["scores_by_gene"]) == sorted(prepared.gene_ids[test].tolist())
    scores = np.array([out["scores_by_gene"][g] for g in prepared.gene_ids[test]])
    assert M.auroc(prepared.labels[test], scores) == pytest.approx(out["test_auroc"], abs=1e-6)


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert choose_device("auto").type == "cpu"
        with pytest.raises(HmvizError, match="no CUDA"):
            choose_device("cuda")
    with pytest.raises(HmvizError, match="Unknown device"):
        choose_device("tpu")


def test_seed_everything_repeats_torch_and_numpy():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_history_names_the_validation_metric(small):
    result = train(small, TrainOptions(model="deepchrome", **FAST))
    assert all("valid_auroc" in h for h in result.history if h["stage"] == "train")


def test_ranker_evaluates_on_new_data_without_a_split(small, tmp_path):
    result = train(small, TrainOptions(model="ranker-deepchrome", **FAST))
    save_model(result.model, result.card, tmp_path / "r")
    other, _ = make_sample_dataset(n_genes=120, seed=99)
    other = dataclasses.replace(other, gene_ids=np.array([f"OTHER{k}" for k in range(120)]), split=None, meta={})
    metrics = evaluate(tmp_path / "r", other, device="cpu")
    assert metrics["evaluated_on"].startswith("all genes of this data") and metrics["genes_evaluated"] == 120
    assert 0.5 < metrics["test_pairwise_accuracy"] <= 1.0


class _ScriptedTask(_Task):
    """A task whose validation (metric, loss) per epoch is scripted; training is one tiny real step."""

    metric_name = "valid_auroc"
    higher_is_better = True

    def __init__(self, script):
        super().__init__(torch.device("cpu"))
        self.script = list(script)
        self.epoch = 0

    def train_batches(self, rng, batch_size):
        return [(torch.ones(2),)]

    def loss(self, model, batch):
        return (model(batch[0][:, None]) ** 2).mean()

    def validate(self, model):
        self.epoch += 1
        return self.script[self.epoch - 1]


def _run_script(script, select_on, patience=3, min_steps=0):
    model = torch.nn.Linear(1, 1)
    task = _ScriptedTask(script)
    best_epoch, _ = _run_epochs(model, task, params=list(model.parameters()), lr=1e-3, weight_decay=0.0,
                                epochs=len(script), batch_size=2, patience=patience, grad_clip=None, seed=0,
                                device=torch.device("cpu"), amp=False, stage="train", progress=None,
                                should_stop=None, select_on=select_on, min_steps=min_steps)
    return best_epoch, task.epoch


# (validation AUROC, validation loss) per epoch
LOSS_FLAT_AT_FIRST = [(0.90, 0.693), (0.91, 0.694), (0.92, 0.694), (0.93, 0.695), (0.94, 0.60), (0.94, 0.50),
                      (0.93, 0.51), (0.93, 0.52), (0.92, 0.53), (0.92, 0.54)]
AUROC_PEAKS_FIRST = [(0.95, 0.69), (0.90, 0.50), (0.91, 0.45), (0.92, 0.40), (0.93, 0.38), (0.94, 0.37),
                     (0.94, 0.38), (0.93, 0.39), (0.93, 0.40), (0.92, 0.41)]


@pytest.mark.parametrize("script, select_on, kept, ran", [
    # the loss sits at log 2 while the AUROC climbs: training goes on until the loss falls, keeps its best
    (LOSS_FLAT_AT_FIRST, "loss", 6, 9),
    (LOSS_FLAT_AT_FIRST, "metric", 6, 9),  # epochs 5 and 6 tie on AUROC 0.94: the lower loss (6) is kept
    # the AUROC peaks at an untrained first epoch while the loss falls: loss selection goes on; metric
    # selection watches only what it keeps (no later epoch can be kept), so it stops after patience 3
    (AUROC_PEAKS_FIRST, "loss", 6, 9),
    (AUROC_PEAKS_FIRST, "metric", 1, 4),
])
def test_early_stopping_watches_what_the_epoch_is_kept_on(script, select_on, kept, ran):
    assert _run_script(script, select_on) == (kept, ran)


def test_no_early_stop_before_min_steps_but_every_epoch_can_be_kept():
    # one training step per epoch: patience 3 alone stops at epoch 4; 7 steps of warm-up hold it to epoch 7
    assert _run_script(AUROC_PEAKS_FIRST, "metric", min_steps=7) == (1, 7)
    late_peak = [(0.90, 0.6)] + [(0.80, 0.6)] * 5 + [(0.95, 0.5)] + [(0.90, 0.5)] * 3
    assert _run_script(late_peak, "metric") == (1, 4)  # stopped before the model got better
    assert _run_script(late_peak, "metric", min_steps=7) == (7, 10)  # the warm-up lets it reach epoch 7


def test_early_stopping_stops_when_neither_improves_and_patience_zero_never_stops():
    stuck = [(0.9, 0.5)] + [(0.8, 0.6)] * 9
    assert _run_script(stuck, "loss", patience=3) == (1, 4)
    assert _run_script(stuck, "loss", patience=0) == (1, 10)


def test_negative_patience_and_unknown_selection_are_refused(small):
    with pytest.raises(HmvizError, match="--patience"):
        train(small, TrainOptions(model="deepchrome", patience=-1, **FAST))
    with pytest.raises(HmvizError, match="--select-on"):
        train(small, TrainOptions(model="deepchrome", select_on="auc", **FAST))


class _RisingTask(_ScriptedTask):
    """Three real steps per epoch on different batches; the validation metric rises every epoch (the
    last epoch is kept)."""

    def __init__(self, epochs):
        super().__init__([(0.5 + 0.01 * e, 1.0) for e in range(epochs)])

    def train_batches(self, rng, batch_size):
        return [(torch.full((2,), float(k)),) for k in (1, 2, 3)]

    def loss(self, model, batch):
        return ((model(batch[0][:, None]) - 1.0) ** 2).mean()


def _train_recording(ema_decay, epochs=3):
    """(weights returned by the engine, the live weights after every step) for a 1-d linear model."""
    seed_everything(0)
    model = torch.nn.Linear(1, 1)
    steps = []
    _run_epochs(model, _RisingTask(epochs), params=list(model.parameters()), lr=0.05, weight_decay=0.0,
                epochs=epochs, batch_size=2, patience=0, grad_clip=None, seed=0, device=torch.device("cpu"),
                amp=False, stage="train", should_stop=None, ema_decay=ema_decay,
                progress=lambda event: steps.append(torch.cat([p.detach().clone().ravel()
                                                                 for p in model.parameters()])))
    return torch.cat([p.detach().ravel() for p in model.parameters()]), steps


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9])
def test_weight_average_is_the_moving_average_of_the_steps(decay):
    # the steps themselves do not depend on the average (same seed, same trajectory) ...
    plain, plain_steps = _train_recording(None)
    averaged, steps = _train_recording(decay)
    live_steps = [s for i, s in enumerate(steps) if (i + 1) % 4]  # each epoch: 3 step events, then its end event
    torch.testing.assert_close(torch.stack(live_steps), torch.stack([s for i, s in enumerate(plain_steps) if (i + 1) % 4]))
    torch.testing.assert_close(plain, live_steps[-1])  # without an average the last epoch's weights are kept
    # ... and the model kept is the exponential moving average of the weights after every step
    expected = live_steps[0]
    for w in live_steps[1:]:
        expected = decay * expected + (1 - decay) * w
    torch.testing.assert_close(averaged, expected)
    if decay:
        assert not torch.allclose(averaged, plain)


def test_settings_added_since_a_card_was_written_read_as_what_its_model_trained_with():
    from hmviz.models import build_model
    from hmviz.models.attentivechrome import AttentiveChromeConfig

    new = build_model("attentivechrome", 5, 100)[1]
    assert new.min_steps == 300 and new.ema_decay is None  # a new model takes today's defaults
    old_card = {k: v for k, v in new.to_dict().items() if k not in ("min_steps", "ema_decay")}
    old = AttentiveChromeConfig.from_dict(old_card)
    assert old.min_steps is None  # written before the warm-up existed: its model trained without one
    assert AttentiveChromeConfig.from_dict(new.to_dict()) == new
