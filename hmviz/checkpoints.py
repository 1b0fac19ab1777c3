"""Save and load trained models: safetensors weights plus a JSON model card.

A model directory holds

* ``model.safetensors``: the weights (a format that cannot execute code when loaded),
* ``model_card.json``: model name and config, mark order, bin size and TSS bin, the fitted input
  transform, the label rule and its threshold, the split, metrics, seed, versions and a
  fingerprint of the training data.

Saving is atomic: everything is written to a temporary sibling directory that then replaces the
target, so an interrupted save leaves the previous model intact. Loading never unpickles: a
directory whose weights are a pickle (``.pt``/``.pth``/``.bin``/``.ckpt``) is refused.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hmviz.errors import ModelError
from hmviz.resources import shipped_or_given

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
CARD_FORMAT = 1
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


def versions() -> dict[str, str]:
    """Versions of the software that trained a model (recorded in its card)."""
    import hmviz

    return {
        "hmviz": hmviz.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def save_model(model: torch.nn.Module, card: dict, out_dir: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``model``'s weights and ``card`` to ``out_dir`` atomically; returns the directory.

    With ``overwrite=False`` an existing non-empty ``out_dir`` is an error. Other files that
    already sit in ``out_dir`` (plots, logs) are carried over unchanged.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"{out_dir} exists and is not a directory; choose another --out.")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ModelError(f"{out_dir} already holds files; choose an empty or new directory.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    card = {"card_format": CARD_FORMAT, **card}
    card.setdefault("versions", versions())
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        if out_dir.is_dir():  # keep extra files the user put there
            for item in out_dir.iterdir():
                if item.name not in (WEIGHTS_FILE, CARD_FILE):
                    dest = tmp / item.name
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, dest)
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"model": str(card.get("model", ""))})
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, default=_json_default, sort_keys=False) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def read_card(model_dir: str | Path) -> dict:
    """The model card of a model directory (or of the card file itself)."""
    path = shipped_or_given(model_dir)
    card_path = path if path.is_file() and path.suffix == ".json" else path / CARD_FILE
    if path.is_file() and path.suffix.lower() in _PICKLE_SUFFIXES:
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
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path} is not a valid JSON model card ({exc}).") from None
    if not isinstance(card, dict) or "model" not in card or "config" not in card:
        raise ModelError(f"{card_path} is not an hmviz model card (it lacks 'model' and 'config').")
    if card.get("card_format", CARD_FORMAT) > CARD_FORMAT:
        raise ModelError(
            f"{card_path} was written by a newer hmviz (card format {card['card_format']}); upgrade hmviz."
        )
    return card


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from its directory: ``(module in eval mode, card)``.

    Refuses pickled weights and weights that do not fit the card's architecture.
    """
    from hmviz.models import build_from_config

    model_dir = shipped_or_given(model_dir)  # `models/<name>` names a bundled model from any folder
    card = read_card(model_dir)
    if model_dir.is_file():
        model_dir = model_dir.parent
    weights = model_dir / WEIGHTS_FILE
    if not weights.exists():
        pickles = [p.name for p in model_dir.glob("*") if p.suffix.lower() in _PICKLE_SUFFIXES]
        hint = (f" Found {', '.join(pickles)}: pickled weights are refused because loading them can run "
                "arbitrary code; retrain with hmviz or convert the state dict to safetensors." if pickles else "")
        raise ModelError(f"No {WEIGHTS_FILE} in {model_dir}.{hint}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights} is not a readable safetensors file ({exc}); the file may be truncated.") from None
    model = build_from_config(card["model"], card["config"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(
            f"The weights in {weights} do not fit the {card['model']} architecture in its card ({first}). "
            "The card and weights come from different models; retrain or restore the matching pair."
        ) from None
    model.to(device).eval()
    return model, card
