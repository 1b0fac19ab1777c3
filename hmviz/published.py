"""Published test metrics of the model families hmviz re-implements, to show beside your own.

They were measured on the real REMC data (Roadmap Epigenomics, 5 marks, 100 bins of 100 bp, label =
expression above the cell's median), not on hmviz's synthetic sample, so they are a point of
reference, not a target for the sample data.

Sources:

* DeepChrome: Singh, Lanchantin, Robins and Qi (2016), "DeepChrome: deep-learning for predicting gene
  expression from histone modifications", Bioinformatics 32(17): i639-i648; test AUROC per REMC cell
  type (supplementary table of the 56 cell types).
* AttentiveChrome: Singh, Lanchantin, Sekhon and Qi (2017), "Attend and Predict: Understanding Gene
  Regulation by Selective Attention on Chromatin", NeurIPS 2017; mean test AUROC over the same 56 cell
  types, with DeepChrome re-run beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEEPCHROME_2016 = "Singh et al. 2016, DeepChrome (Bioinformatics 32(17):i639)"
ATTENTIVECHROME_2017 = "Singh et al. 2017, AttentiveChrome (NeurIPS 2017)"


@dataclass(frozen=True)
class PublishedResult:
    """One published number: a model family, the data, the metric and its value, and the source."""

    model: str
    data: str
    metric: str
    value: float
    source: str


PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult("deepchrome", "REMC E123 (K562)", "test_auroc", 0.92, DEEPCHROME_2016),
    PublishedResult("deepchrome", "REMC E003 (H1)", "test_auroc", 0.77, DEEPCHROME_2016),
    PublishedResult("deepchrome", "REMC E066 (adult liver)", "test_auroc", 0.80, DEEPCHROME_2016),
    PublishedResult("deepchrome", "REMC, mean of 56 cell types", "test_auroc", 0.8008, ATTENTIVECHROME_2017),
    PublishedResult("attentivechrome", "REMC, mean of 56 cell types", "test_auroc", 0.8115, ATTENTIVECHROME_2017),
)


def published_for(model: str) -> list[PublishedResult]:
    """The published results of a model family (a ranker built on it has none of its own)."""
    return [r for r in PUBLISHED if r.model == model]


__all__ = ["PUBLISHED", "PublishedResult", "published_for"]
