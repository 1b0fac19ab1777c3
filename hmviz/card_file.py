"""A model folder's files and its card, read and checked without PyTorch.

A model directory holds ``model.safetensors`` (:data:`WEIGHTS_FILE`, the weights) and ``model_card.json``
(:data:`CARD_FILE`, what the model is and what it was trained on). :func:`read_card` reads a card within
:data:`hmviz.limits.CARD_BYTES` and :func:`check_card` checks the fields hmviz uses, against the model
families of :mod:`hmviz.model_families`: listing models (the app's sidebar, ``hmviz.load_card``) needs no
model code. Loading the weights is :mod:`hmviz.checkpoints`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hmviz import limits
from hmviz.errors import ModelError
from hmviz.model_families import get_family
from hmviz.resources import shipped_or_given

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
#: The card format this hmviz writes (cards without the tag are format 1).
CARD_FORMAT = 1
#: Suffixes of pickled PyTorch files, refused (loading a pickle can run code).
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


def read_card(model_dir: str | Path) -> dict:
    """The model card of a model directory (or of the card file itself)."""
    path = shipped_or_given(model_dir)
    card_path = path if path.is_file() and path.suffix == ".json" else path / CARD_FILE
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            f"{path} is a pickled PyTorch file. hmviz does not load pickles because loading one can run "
            "arbitrary code; give a model directory with model.safetensors and model_card.json "
            "(made by 'python -m hmviz train')."
        )
    if not card_path.exists():
        raise ModelError(
            f"No model card at {card_path}. A model directory holds {WEIGHTS_FILE} and {CARD_FILE} "
            "(made by 'python -m hmviz train' or the app's Train page)."
        )
    try:
        text = limits.read_limited(card_path, limits.CARD_BYTES)
    except OSError as exc:
        raise ModelError(f"{card_path}: cannot be read ({exc.strerror}). Check its permissions.") from None
    try:
        card = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path} is not a valid JSON model card ({exc}).") from None
    except RecursionError:
        raise ModelError(f"{card_path} is not an hmviz model card (its JSON is nested too deeply).") from None
    if not isinstance(card, dict) or "model" not in card or "config" not in card:
        raise ModelError(f"{card_path} is not an hmviz model card (it lacks 'model' and 'config').")
    check_card(card, card_path)
    return card


#: Card fields every model needs, with their JSON types.
_CARD_FIELDS = {"model": str, "config": dict, "marks": list, "n_bins": int, "bin_size": int, "transform": dict}


def check_card(card: dict, where: str | Path) -> None:
    """The fields hmviz uses must be present, of the right type and consistent with each other.

    Raises :class:`ModelError` naming the card and the field (a damaged or hand-edited card).
    """

    def bad(field: str, problem: str) -> ModelError:
        return ModelError(
            f"{where}: the model card's {field!r} {problem}. The card is damaged or was edited; "
            "restore it from the model's original folder, or retrain the model."
        )

    fmt = card.get("card_format", CARD_FORMAT)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise bad("card_format", f"is {fmt!r}, not a card format number (1)")
    if fmt > CARD_FORMAT:
        raise ModelError(f"{where} was written by a newer hmviz (card format {fmt}); upgrade hmviz.")
    for field, kind in _CARD_FIELDS.items():
        if field not in card:
            raise bad(field, "is missing")
        value = card[field]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise bad(field, f"is {type(value).__name__} {_short(value)}, not {kind.__name__}")
    family = get_family(card["model"])
    marks, n_bins, bin_size = card["marks"], card["n_bins"], card["bin_size"]
    if not marks or not all(isinstance(m, str) and m for m in marks) or len(set(marks)) != len(marks):
        raise bad("marks", "must list distinct mark names")
    if n_bins < 1 or bin_size < 1:
        raise bad("n_bins' or 'bin_size", "must be at least 1")
    limits.check(limits.BINS_PER_GENE, n_bins, f"{where}: n_bins")
    if "task" in card and card["task"] != family.task:
        raise bad("task", f"is {_short(card['task'])} but a {family.name} model always has the task {family.task!r}")
    tss = card.get("tss_bin")
    if tss is not None and (isinstance(tss, bool) or not isinstance(tss, int) or not 0 <= tss < n_bins):
        raise bad("tss_bin", f"is {_short(tss)}, not a bin from 0 to {n_bins - 1}")
    config = card["config"]
    for key, want in (("n_marks", len(marks)), ("n_bins", n_bins)):
        if key in config and config[key] != want:
            raise bad(
                f"config.{key}",
                f"is {_short(config[key])} but the card lists {want} {'marks' if key == 'n_marks' else 'bins'}",
            )
    transform = card["transform"]
    if transform.get("marks") is not None and list(transform["marks"]) != list(marks):
        raise bad("transform.marks", "differ from its 'marks'")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
