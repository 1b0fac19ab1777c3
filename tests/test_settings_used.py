"""Every model setting is used or refused (issue 15, item 6): SimpleChrome's ``vae_batch_size`` and
``training_scheme`` were listed and recorded in cards but training never read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hmviz.cli.main import main
from hmviz.errors import ModelError
from hmviz.models import SimpleChromeConfig, build_model, parse_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("pair, reason", [
    ("vae_batch_size=128", "set batch_size"),
    ("training_scheme=joint", "always trains in two stages"),
    ("training_scheme=two-stage", "always trains in two stages"),
])
def test_set_of_an_unread_simplechrome_setting_is_refused_with_the_reason(pair, reason):
    with pytest.raises(ModelError, match=reason):
        parse_settings("simplechrome", [pair])


def test_unread_settings_are_not_fields_so_a_card_never_records_them():
    _, config = build_model("simplechrome", n_marks=5, n_bins=100)
    assert "vae_batch_size" not in config.to_dict() and "training_scheme" not in config.to_dict()


def test_a_card_saved_before_loads_and_a_value_that_was_silently_ignored_is_refused():
    # A card written before these settings were retired: today's bundled config plus their old defaults.
    card = json.loads((ROOT / "models" / "simplechrome" / "model_card.json").read_text())["config"]
    card = {**card, "vae_batch_size": 64, "training_scheme": "two-stage"}
    config = SimpleChromeConfig.from_dict(card)
    assert config.batch_size == card["batch_size"]
    with pytest.raises(ModelError, match="vae_batch_size is not a setting"):
        SimpleChromeConfig.from_dict({**card, "vae_batch_size": 128})
    with pytest.raises(ModelError, match="training_scheme is not a setting"):
        build_model("simplechrome", n_marks=5, n_bins=100, training_scheme="joint")


def test_cli_refuses_the_setting_with_one_error_line_and_exit_2(tmp_path, capsys):
    rc = main(["train", "--data", str(ROOT / "sample_data"), "--model", "simplechrome", "--out", str(tmp_path / "m"),
               "--set", "vae_batch_size=16", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "batch_size" in err[0], err
    assert not (tmp_path / "m").exists()
