"""The signal transform (hmviz.data.transforms)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmviz.data.dataset import HistoneDataset
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, ModelError

MARKS = ("H3K27me3", "H3K36me3", "H3K4me3")


@pytest.fixture
def signal():
    rng = np.random.default_rng(0)
    return rng.poisson(rng.gamma(1.0, 3.0, size=(60, 20, 3))).astype(np.float32)


TRAIN = np.arange(40)


@pytest.mark.parametrize("scaling", ["standard", "max", "none"])
@pytest.mark.parametrize("log1p", [True, False])
def test_statistics_come_from_training_genes_only(signal, scaling, log1p):
    t = SignalTransform(log1p=log1p, scaling=scaling).fit(signal, TRAIN, marks=MARKS)
    changed = signal.copy()
    changed[40:] = 1000.0  # test genes only
    t2 = SignalTransform(log1p=log1p, scaling=scaling).fit(changed, TRAIN, marks=MARKS)
    np.testing.assert_array_equal(t.center, t2.center)
    np.testing.assert_array_equal(t.scale, t2.scale)


def test_standard_scaling_values(signal):
    t = SignalTransform().fit(signal, TRAIN, marks=MARKS)
    x = np.log1p(signal[TRAIN].astype(np.float64)).reshape(-1, 3)
    np.testing.assert_allclose(t.center, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(t.scale, x.std(axis=0), rtol=1e-6)
    out = t.transform(signal, marks=MARKS)
    z = out[TRAIN].reshape(-1, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)


def test_max_scaling_values(signal):
    out = SignalTransform(log1p=False, scaling="max").fit(signal, TRAIN).transform(signal)
    np.testing.assert_allclose(out[TRAIN].max(axis=(0, 1)), 1.0)
    np.testing.assert_allclose(out, signal / signal[TRAIN].max(axis=(0, 1)), rtol=1e-6)


def test_transform_returns_new_float32_array(signal):
    before = signal.copy()
    t = SignalTransform(log1p=False, scaling="none").fit(signal, TRAIN)
    out = t.transform(signal)
    assert out.dtype == np.float32 and out.shape == signal.shape
    assert not np.shares_memory(out, signal)
    out += 1
    np.testing.assert_array_equal(signal, before)
    SignalTransform().fit(signal, TRAIN).transform(signal)
    np.testing.assert_array_equal(signal, before)


def test_constant_mark_is_not_divided_by_zero(signal, caplog):
    signal = signal.copy()
    signal[:, :, 1] = 4.0
    for scaling in ("standard", "max"):
        t = SignalTransform(scaling=scaling).fit(signal, TRAIN, marks=MARKS)
        out = t.transform(signal)
        assert np.isfinite(out).all()
    signal[:, :, 1] = 0.0
    out = SignalTransform(scaling="max").fit(signal, TRAIN, marks=MARKS).transform(signal)
    assert np.isfinite(out).all() and (out[:, :, 1] == 0).all()
    assert "H3K36me3" in caplog.text


@pytest.mark.parametrize("scaling", ["standard", "max", "none"])
def test_json_round_trip_gives_identical_output(signal, scaling):
    t = SignalTransform(scaling=scaling).fit(signal, TRAIN, marks=MARKS)
    loaded = SignalTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    assert loaded.marks == MARKS
    np.testing.assert_array_equal(loaded.transform(signal, marks=MARKS), t.transform(signal, marks=MARKS))


def test_mark_mismatch_is_an_error(signal):
    t = SignalTransform().fit(signal, TRAIN, marks=MARKS)
    with pytest.raises(DataError, match="2 marks but the transform was fitted on 3"):
        t.transform(signal[:, :, :2])
    with pytest.raises(DataError, match="fitted on H3K27me3, H3K36me3, H3K4me3 in that order"):
        t.transform(signal, marks=("H3K36me3", "H3K27me3", "H3K4me3"))


def test_bad_input_errors(signal):
    with pytest.raises(DataError, match="scaling"):
        SignalTransform(scaling="zscore")
    with pytest.raises(DataError, match="negative"):
        SignalTransform().fit(signal - 10, TRAIN)
    with pytest.raises(DataError, match="No training genes"):
        SignalTransform().fit(signal, np.array([], dtype=int))
    with pytest.raises(ModelError, match="keys"):
        SignalTransform.from_dict({"log1p": True})
    with pytest.raises(RuntimeError):
        SignalTransform().transform(signal)


def test_dataset_helpers(signal):
    ds = HistoneDataset(signal, [f"G{k}" for k in range(60)], MARKS, split=["train"] * 40 + ["test"] * 20)
    t = SignalTransform().fit_dataset(ds)
    out = t.transform_dataset(ds)
    np.testing.assert_array_equal(out.signal, t.transform(signal, marks=MARKS))
    assert out.meta["transform"] == t.to_dict()
    with pytest.raises(DataError, match="select_marks"):
        t.transform_dataset(ds.select_marks(["H3K4me3", "H3K27me3", "H3K36me3"]))
