"""A trained model and its typed model card: the user's workflow over the library (the scvi-tools shape).

``hmviz.load(path)`` gives a :class:`TrainedModel`: the network (``.module``, a plain ``nn.Module``) with
its :class:`ModelCard` (``.card``), and the workflow: :meth:`~TrainedModel.predict`,
:meth:`~TrainedModel.evaluate`, :meth:`~TrainedModel.explain`, :meth:`~TrainedModel.explain_pair`,
:meth:`~TrainedModel.save`. Each is built on the library functions (:mod:`hmviz.checkpoints`,
:mod:`hmviz.inference`, :mod:`hmviz.evaluation`, :mod:`hmviz.explain`), so the command line, the app and a
script get the same answers.

The card is validated once, on load (:func:`hmviz.card_file.check_card`: present fields of the right
types, consistent with each other and with the model family); after that its fields are attributes
(:class:`hmviz.card.ModelCard`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hmviz.card import ModelCard
from hmviz.checkpoints import load_model, save_model
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import ModelError


class TrainedModel:
    """A trained network with its :class:`ModelCard`. Make one with :func:`load` (or from
    :func:`hmviz.training.train`'s result: ``TrainedModel(result.model, result.card)``)."""

    def __init__(self, module: nn.Module, card: ModelCard | Mapping[str, Any]):
        self.module = module
        self.card = card if isinstance(card, ModelCard) else ModelCard.from_dict(card)

    def __repr__(self) -> str:
        return (
            f"TrainedModel({self.card.model}, {self.card.task}, marks={list(self.card.marks)}, "
            f"{self.card.n_bins} bins of {self.card.bin_size} bp)"
        )

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def predict(self, dataset: HistoneDataset) -> np.ndarray:
        """One score per gene of ``dataset`` ``(genes,)``: the logit of 'high' (binary models) or the ranking
        score (rankers), with the card's marks (by name), window check and input transform."""
        from hmviz.inference import predict_scores

        if self.card.task == "differential":
            raise ModelError(f"{self.card.model} predicts a change between two cells; use evaluate() or explain().")
        return predict_scores(self.module, self.card, dataset, device=str(self.device))

    def evaluate(self, dataset: HistoneDataset | MultiCellDataset) -> dict:
        """Test metrics on ``dataset``, never on a gene the model trained or validated on; ``evaluated_on``
        and the gene counts say which genes (:func:`hmviz.evaluation.evaluate`)."""
        from hmviz.evaluation import evaluate_model

        return evaluate_model(self.module, self.card, dataset, self.device)

    def against_baselines(self, dataset: HistoneDataset | MultiCellDataset):
        """Both baselines trained beside this model on ``dataset``, each with the paired comparison of this
        model minus it on the same test genes (:func:`hmviz.comparison.against_baselines`)."""
        from hmviz.comparison import against_baselines

        return against_baselines(self.module, self.card, dataset, str(self.device))

    def session(self, dataset: HistoneDataset | MultiCellDataset):
        """The data checked against the model and made into inputs (:class:`hmviz.explain.session.ExplainSession`)."""
        from hmviz.explain.session import prepare

        return prepare(self.module, self.card, dataset)

    def explain(
        self,
        dataset: HistoneDataset,
        genes: Sequence[str | int],
        method: str = "integrated_gradients",
        baseline: str | None = None,
        **options,
    ):
        """Attributions of the model's output for ``genes`` (ids or rows) to their bins and marks
        (:class:`hmviz.explain.Attribution`, values ``(genes, bins, marks)``)."""
        from hmviz.explain import DEFAULT_BASELINE

        session = self.session(dataset)
        return session.explain_genes([session.row(g) for g in genes], method, baseline or DEFAULT_BASELINE, **options)

    def explain_pair(
        self,
        dataset: HistoneDataset | MultiCellDataset,
        a: str | int,
        b: str | int | None = None,
        method: str = "integrated_gradients",
        baseline: str | None = None,
        **options,
    ):
        """Why gene ``a`` is ranked above or below gene ``b`` (rankers, classifiers), or why gene ``a`` changes
        between the two cells (DeepDiff, ``b`` None): :meth:`ExplainSession.explain_pair`."""
        from hmviz.explain import DEFAULT_BASELINE

        return self.session(dataset).explain_pair(a, b, method, baseline or DEFAULT_BASELINE, **options)

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the weights and the card to the folder ``path`` (atomic; :func:`hmviz.checkpoints.save_model`)."""
        return save_model(self.module, self.card.to_dict(), path, overwrite=overwrite)


def load(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The model in folder ``path`` (``models/<name>`` names a bundled one): weights checked against the
    card's architecture, card validated once. Loading never unpickles."""
    from hmviz.inference import choose_device

    module, card = load_model(path, device=choose_device(device))
    return TrainedModel(module, ModelCard._typed(card))  # load_model checked the card (once)
