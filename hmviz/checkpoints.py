"""Save and load trained models: safetensors weights plus a JSON model card.

A model directory holds

* ``model.safetensors``: the weights (a format that cannot execute code when loaded),
* ``model_card.json``: model name and config, mark order, bin size and TSS bin, the fitted input
  transform, the label rule and its threshold, the split, metrics, seed, versions and a
  fingerprint of the training data.

Saving is atomic and exclusive: everything is written to a hidden sibling directory that is then
exchanged with the target in one step, under a lock that refuses a second writer (see
:mod:`hmviz.atomic`), so an interrupted save leaves the previous model intact. Loading never unpickles: a
directory whose weights are a pickle (``.pt``/``.pth``/``.bin``/``.ckpt``) is refused.
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
from hmviz.errors import HmvizError, ModelError
from hmviz.model_size import check_model_size
from hmviz.resources import shipped_or_given

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
CARD_FORMAT = 1
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


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
    from hmviz.models import get_spec

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
    spec = get_spec(card["model"])
    marks, n_bins, bin_size = card["marks"], card["n_bins"], card["bin_size"]
    if not marks or not all(isinstance(m, str) and m for m in marks) or len(set(marks)) != len(marks):
        raise bad("marks", "must list distinct mark names")
    if n_bins < 1 or bin_size < 1:
        raise bad("n_bins' or 'bin_size", "must be at least 1")
    limits.check(limits.BINS_PER_GENE, n_bins, f"{where}: n_bins")
    if "task" in card and card["task"] != spec.task:
        raise bad("task", f"is {_short(card['task'])} but a {spec.name} model always has the task {spec.task!r}")
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
        pickles = [p.name for p in model_dir.glob("*") if p.suffix.lower() in _PICKLE_SUFFIXES]
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
