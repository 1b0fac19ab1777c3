"""Save and load trained models: safetensors weights plus a JSON model card.

A model directory holds

* ``model.safetensors``: the weights (a format that cannot execute code when loaded),
* ``model_card.json``: model name and config, mark order, bin size and TSS bin, the fitted input
  transform, the label rule and its threshold, the split, metrics, seed, versions and a
  fingerprint of the training data.

Saving is atomic and exclusive: everything is written to a hidden sibling directory that is then
exchanged with the target in one step, under a lock that refuses a second writer (see
:mod:`hmviz.atomic`), so an interrupted save leaves the previous model intact. Loading never unpickles: a
directory whose weights are a pickle (``.pt``/``.pth``/``.bin``/``.ckpt``) is refused. Reading and checking
the card alone is :mod:`hmviz.card_file` (no PyTorch).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hmviz import limits
from hmviz.atomic import clean_leftovers, kill_point, output_lock, replace_dir, temp_sibling
from hmviz.card_file import CARD_FILE, CARD_FORMAT, PICKLE_SUFFIXES, WEIGHTS_FILE, read_card
from hmviz.errors import HmvizError, ModelError
from hmviz.model_size import check_model_size
from hmviz.resources import shipped_or_given


def versions() -> dict[str, str]:
    """Versions of the software that trained a model (recorded in its card)."""
    from hmviz._version import __version__

    return {
        "hmviz": __version__,
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

    The new folder is written beside ``out_dir`` under a hidden name, then exchanged with the old
    one in one atomic step (:func:`hmviz.atomic.replace_dir`): a kill at any point leaves either the
    old or the new model at ``out_dir``, never neither. One writer at a time: a second save to the
    same ``out_dir`` (another process, or another thread) is refused at once. The folder's
    permissions follow the umask.
    """
    out_dir = Path(out_dir)
    with output_lock(out_dir, f"model folder {out_dir}"):
        kill_point("locked")
        try:
            clean_leftovers(out_dir)
            if out_dir.exists() and not out_dir.is_dir():
                raise ModelError(f"{out_dir} exists and is not a directory; choose another --out.")
            if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
                raise ModelError(f"{out_dir} already holds files; choose an empty or new directory.")
            card = {"card_format": CARD_FORMAT, **card}
            card.setdefault("versions", versions())
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
            tmp = temp_sibling(out_dir)
            os.mkdir(tmp, 0o777)  # the umask applies (tempfile.mkdtemp would make it 0700)
            try:
                kill_point("tmp_created")
                if out_dir.is_dir():  # keep extra files the user put there
                    for item in out_dir.iterdir():
                        if item.name not in (WEIGHTS_FILE, CARD_FILE):
                            dest = tmp / item.name
                            (shutil.copytree if item.is_dir() else shutil.copy2)(item, dest)
                save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"model": str(card.get("model", ""))})
                os.chmod(tmp / WEIGHTS_FILE, tmp.stat().st_mode & 0o666)  # safetensors writes 0600; use the umask
                kill_point("weights_written")
                _write_synced(
                    tmp / CARD_FILE,
                    (json.dumps(card, indent=2, default=_json_default, sort_keys=False) + "\n").encode(),
                )
                _fsync(tmp / WEIGHTS_FILE)
                kill_point("before_swap")
                replace_dir(tmp, out_dir)
                kill_point("done")
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError as exc:
            raise ModelError(
                f"{out_dir}: cannot write the model there ({exc.strerror}: {exc.filename}). "
                "Check the folder's permissions, or choose another --out."
            ) from None
    return out_dir


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header (the tensors themselves are not read)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights} is not a readable safetensors file ({exc}); the file may be truncated.") from None


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
        pickles = [p.name for p in model_dir.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
        hint = (
            f" Found {', '.join(pickles)}: pickled weights are refused because loading them can run "
            "arbitrary code; retrain with hmviz or convert the state dict to safetensors."
            if pickles
            else ""
        )
        raise ModelError(f"No {WEIGHTS_FILE} in {model_dir}.{hint}")
    limits.check_regular_file(weights)
    # The card's architecture, on the meta device (no memory), against the shapes in the weights'
    # header: an edited card (n_filters: 200000) is refused before anything large is allocated.
    try:
        expected = {
            k: tuple(v.shape)
            for k, v in check_model_size(card["model"], card["config"], str(model_dir / CARD_FILE)).state_dict().items()
        }
    except (TypeError, ValueError) as exc:
        if isinstance(exc, HmvizError):
            raise
        raise ModelError(
            f"{model_dir / CARD_FILE}: its 'config' cannot build a {card['model']} model ({exc}). "
            "The card is damaged or was edited; restore it or retrain."
        ) from None
    stored = _header_shapes(weights)
    if stored != expected:
        diff = sorted(set(stored) ^ set(expected)) or [k for k in expected if stored[k] != expected[k]]
        k = diff[0]
        raise ModelError(
            f"The weights in {weights} do not fit the {card['model']} architecture in its card ({len(diff)} "
            f"tensor(s) differ, e.g. {k}: {stored.get(k, 'absent')} in the weights, {expected.get(k, 'absent')} "
            "in the card). The card and weights come from different models; retrain or restore the matching pair."
        )
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
