"""Scoring a trained model: the device, the model-ready inputs under a model card, batched inference.

:func:`prepare_inputs` selects the card's marks by name (a missing mark is an error, never a silent
reorder), checks the window and applies the card's input transform; :func:`predict_scores` gives one
score per gene. Every pass over genes runs in batches of :data:`EVAL_BATCH` in inference mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hmviz.card import ModelCard
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, HmvizError

# Genes per inference batch (validation, test, scoring). Measured on the 2-core CPU over 6,601 genes
# (`python bench/bench_models.py eval-batch`): AttentiveChrome is fastest at 128 (1.2 s per pass; larger
# batches were slower, 2.2 s at 1024); DeepChrome is flat from 128 to 1024.
EVAL_BATCH = 128


def choose_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, otherwise CPU. Asking for CUDA without a GPU is an error."""
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HmvizError("--device cuda was asked for but no CUDA GPU is available here; use --device auto or cpu.")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise HmvizError(f"Unknown device '{device}'; use auto, cpu or cuda.")


def _predict(
    model_fn: Callable, x: torch.Tensor, index: np.ndarray, device: torch.device, *more: torch.Tensor
) -> np.ndarray:
    """Model outputs for the genes in ``index``, in batches, in inference mode; float64 numpy."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(index), EVAL_BATCH):
            idx = torch.as_tensor(index[start : start + EVAL_BATCH], dtype=torch.long)
            args = [t[idx].to(device, non_blocking=True) for t in (x, *more)]
            out.append(model_fn(*args).float().cpu())
    if not out:
        return np.zeros(0)
    return torch.cat(out).numpy().astype(np.float64)


def _check_window(card: ModelCard, ds: HistoneDataset, what: str) -> None:
    if ds.n_bins != card.n_bins or ds.bin_size != card.bin_size:
        raise DataError(
            f"{what} has {ds.n_bins} bins of {ds.bin_size} bp but the model was trained on "
            f"{card.n_bins} bins of {card.bin_size} bp; rebuild the table with the model's window "
            "or train a model on this data."
        )
    if card.tss_bin is not None and ds.tss_bin != card.tss_bin:
        raise DataError(
            f"{what} has the TSS at bin {ds.tss_bin} but the model's card says bin {card.tss_bin}; the "
            "windows around the TSS differ (or the card was edited). Use data with the model's window."
        )


def _select_marks(ds, marks: Sequence[str] | None, what: str, expects: str = "the model"):
    """Marks by name; missing marks are an error naming them (never a silent reorder).

    ``what`` names the data (``the data``, ``cell X``), ``expects`` who asks for ``marks``."""
    if marks is None:
        return ds
    from hmviz.data.validation import check_marks

    missing = [m for m in marks if m not in ds.marks]
    if missing:
        try:
            check_marks(ds.marks, tuple(marks), what=expects)
        except DataError as exc:
            raise DataError(str(exc) if what == "the data" else f"{what}: {exc}") from None
    return ds.select_marks(list(marks))


def _fingerprint(dataset) -> str:
    if isinstance(dataset, MultiCellDataset):
        return "+".join(c.fingerprint() for c in dataset.cells.values())
    return dataset.fingerprint()


def prepare_inputs(card: ModelCard | dict, dataset: HistoneDataset, what: str = "the data") -> torch.Tensor:
    """The model-ready input tensor (genes, bins, marks) for ``dataset`` under ``card``:
    marks selected by name (missing marks are an error), window checked, the card's transform applied."""
    card = ModelCard.of(card)
    ds = _select_marks(dataset, card.marks, what)
    _check_window(card, ds, what)
    transform = SignalTransform.from_dict(dict(card.transform))
    return torch.from_numpy(transform.transform(ds.signal))


def predict_scores(
    model: nn.Module, card: ModelCard | dict, dataset: HistoneDataset, device: str = "cpu"
) -> np.ndarray:
    """One score per gene: the logit of 'high' for binary models, the ranking score for rankers."""
    x = prepare_inputs(card, dataset)
    fn = getattr(model, "score", model)
    return _predict(fn, x, np.arange(dataset.n_genes), torch.device(device))
