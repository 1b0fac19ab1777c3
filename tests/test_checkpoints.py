"""Checkpoints: safe loading (no pickles), atomic saves, cards that rebuild identical models."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hmviz.checkpoints import CARD_FILE, WEIGHTS_FILE, load_model, read_card, save_model
from hmviz.errors import ModelError
from hmviz.models import build_model


def _card(name: str, config) -> dict:
    import dataclasses

    return {"model": name, "config": dataclasses.asdict(config), "marks": ["a", "b", "c"], "n_bins": 20,
            "bin_size": 100, "tss_bin": 10,
            "transform": {"log1p": True, "scaling": "standard", "marks": ["a", "b", "c"], "center": [0.0] * 3,
                          "scale": [1.0] * 3}}


@pytest.mark.parametrize("name", ["deepchrome", "attentivechrome", "simplechrome", "ranker-deepchrome"])
def test_save_then_load_gives_identical_predictions(tmp_path, name):
    torch.manual_seed(0)
    model, config = build_model(name, n_marks=3, n_bins=20)
    model.eval()
    x = torch.randn(7, 20, 3)
    fn = getattr(model, "score", model)
    before = fn(x)
    save_model(model, _card(name, config), tmp_path / "m")
    loaded, card = load_model(tmp_path / "m")
    assert card["model"] == name
    assert not loaded.training
    assert torch.equal(getattr(loaded, "score", loaded)(x), before)


class _RunsCommand:
    """Unpickling this object runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "PWNED"
    bad_dir = tmp_path / "bad_model"
    bad_dir.mkdir()
    with open(bad_dir / "model.pt", "wb") as fh:
        pickle.dump({"state_dict": _RunsCommand(marker)}, fh)
    (bad_dir / CARD_FILE).write_text(json.dumps({"model": "deepchrome", "config": {"n_marks": 5, "n_bins": 100}}))
    with pytest.raises(ModelError, match="pickle"):
        load_model(bad_dir)
    with pytest.raises(ModelError, match="pickle"):
        read_card(bad_dir / "model.pt")
    assert not marker.exists(), "loading a pickle executed code"


def test_pickle_disguised_as_safetensors_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    model, config = build_model("deepchrome", n_marks=3, n_bins=20)
    save_model(model, _card("deepchrome", config), tmp_path / "m")
    with open(tmp_path / "m" / WEIGHTS_FILE, "wb") as fh:
        pickle.dump(_RunsCommand(marker), fh)
    with pytest.raises(ModelError, match="safetensors"):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_failed_save_leaves_previous_model_intact(tmp_path, monkeypatch):
    model, config = build_model("deepchrome", n_marks=3, n_bins=20)
    save_model(model, _card("deepchrome", config), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}

    import hmviz.checkpoints as ck

    def broken_save_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", broken_save_file)
    other, other_config = build_model("deepchrome", n_marks=3, n_bins=20)
    with pytest.raises(OSError):
        save_model(other, _card("deepchrome", other_config), tmp_path / "m")
    after = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "a temporary directory was left behind"


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path):
    model, config = build_model("deepchrome", n_marks=3, n_bins=20)
    save_model(model, _card("deepchrome", config), tmp_path / "m")
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    card["config"]["n_filters"] += 1
    (tmp_path / "m" / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit"):
        load_model(tmp_path / "m")


def test_missing_directory_and_bad_card_messages(tmp_path):
    with pytest.raises(ModelError, match="No model card"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="not a valid JSON model card"):
        read_card(tmp_path / "x")


def test_extra_files_in_model_dir_survive_resave(tmp_path):
    model, config = build_model("deepchrome", n_marks=3, n_bins=20)
    save_model(model, _card("deepchrome", config), tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("keep me")
    save_model(model, _card("deepchrome", config), tmp_path / "m")
    assert (tmp_path / "m" / "notes.txt").read_text() == "keep me"
    assert np.isfinite(read_card(tmp_path / "m")["config"]["n_bins"])
