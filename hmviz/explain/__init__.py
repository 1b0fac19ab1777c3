"""Explanations: which bins and marks drive a prediction, and why gene A ranks above gene B.

One contract: :func:`explain` ``(model, inputs (genes, bins, marks), method, target, baseline)
-> Attribution`` with values shaped like the inputs, attributing the model's logit (or, for
DeepDiff, its log2 fold change; never a probability). The methods the app lists are
:data:`METHODS`, each with its Captum class and its kind (:data:`KINDS`: additive, sensitivity,
removal), which decides the words used for its numbers; the baselines are :data:`BASELINES`.

* :mod:`~hmviz.explain.attributions`: :func:`explain`, :class:`Attribution`.
* :mod:`~hmviz.explain.pairs`: :func:`explain_pair` for gene pairs (rankers, classifiers, DeepDiff).
* :mod:`~hmviz.explain.attention`: AttentiveChrome's alpha/beta, per class, agreement with attributions.
* :mod:`~hmviz.explain.class_optimization`: DeepChrome's class-optimisation map.

Inputs live in the model's input space (``hmviz.inference.prepare_inputs``); the ``zeros``
baseline means zero reads there only when built with the model card's transform.
"""

from hmviz.explain._baselines import (
    BASELINES,
    DEFAULT_BASELINE,
    DEFAULT_BASELINE_WHY,
    Baseline,
    BaselineSpec,
    make_baseline,
)
from hmviz.explain._methods import COMMON_OPTIONS, KINDS, METHODS, MethodKind, MethodSpec, output_unit
from hmviz.explain._regions import Region, data_regions, orientation_note, tss_regions
from hmviz.explain.attention import (
    AttentionAgreement,
    ClassAttention,
    attention_attribution_agreement,
    attention_by_class,
    attention_maps,
    attention_maps_per_cell,
    has_attention,
)
from hmviz.explain.attributions import Attribution, explain
from hmviz.explain.class_optimization import ClassOptimizationMap, class_optimization_map
from hmviz.explain.pairs import PairExplanation, explain_pair, pair_sentence

__all__ = [
    "BASELINES",
    "COMMON_OPTIONS",
    "DEFAULT_BASELINE",
    "DEFAULT_BASELINE_WHY",
    "KINDS",
    "METHODS",
    "MethodKind",
    "AttentionAgreement",
    "Attribution",
    "Baseline",
    "BaselineSpec",
    "ClassAttention",
    "ClassOptimizationMap",
    "MethodSpec",
    "PairExplanation",
    "Region",
    "attention_attribution_agreement",
    "attention_by_class",
    "attention_maps",
    "attention_maps_per_cell",
    "class_optimization_map",
    "data_regions",
    "explain",
    "explain_pair",
    "has_attention",
    "make_baseline",
    "orientation_note",
    "output_unit",
    "pair_sentence",
    "tss_regions",
]
