"""Generated sample data with planted, documented rules (the ``sample_data/`` folder).

:func:`make_sample_dataset` simulates read counts of five histone marks in bins around each gene's
TSS and an expression value that follows known rules of those counts, so that later checks can
ask whether a model's explanations recover the rules.

Signal. Every gene is in one chromatin state (active, weakly active, bivalent, Polycomb-repressed,
heterochromatin, silent) that sets the amplitude of each mark's profile; amplitudes vary
log-normally within a state. Counts per bin are negative binomial (gamma-Poisson) around
``background + amplitude * profile``: H3K4me3 is a promoter peak with a dip at the TSS (the
nucleosome-depleted region), H3K36me3 covers the gene body downstream of the TSS, H3K27me3 and
H3K9me3 form broad domains (plus a focal H3K27me3 peak at bivalent promoters), H3K4me1 flanks the
promoter and is drawn independently of everything else. Profiles are made in transcript
coordinates, so bins run in the direction of transcription on both strands (``strand_aware=True``).

Expression. ``log1p(expression)`` is :data:`PLANTED_RULES` applied to the generated counts (see
:func:`planted_terms`) plus Gaussian noise; the noiseless part is the "oracle". Labels follow the
median rule fitted on the training genes.

Run ``python -m hmviz.data.synthetic --out sample_data --seed 0`` to regenerate the folder; the
same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gzip
import io
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.splits import ensure_split
from hmviz.data.targets import LabelRule, label_dataset
from hmviz.errors import DataError, HmvizError

log = logging.getLogger(__name__)

MARKS: tuple[str, ...] = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")  # DeepChrome order
GENERATOR = "hmviz.data.synthetic v1"
DEFAULT_N_GENES = 3000
TWO_CELL_GENES = 1000  # genes in sample_data/two_cells/ (cells "synthetic" and "synthetic-B")
SAMPLE_CELL = "synthetic"  # the cell of make_sample_dataset
SECOND_CELL = "synthetic-B"  # the default cell of make_second_cell

# Chromosomes with weights roughly proportional to their number of protein-coding genes.
CHROM_WEIGHTS: dict[str, int] = {
    "chr1": 2050,
    "chr2": 1300,
    "chr3": 1080,
    "chr4": 750,
    "chr5": 880,
    "chr6": 1040,
    "chr7": 990,
    "chr8": 680,
    "chr9": 780,
    "chr10": 730,
    "chr11": 1300,
    "chr12": 1030,
    "chr13": 320,
    "chr14": 820,
    "chr15": 610,
    "chr16": 850,
    "chr17": 1190,
    "chr18": 270,
    "chr19": 1470,
    "chr20": 540,
    "chr21": 230,
    "chr22": 440,
    "chrX": 840,
}

# Mean reads per 100-bp bin without any enrichment.
BACKGROUND: dict[str, float] = {"H3K27me3": 0.7, "H3K36me3": 0.5, "H3K4me1": 0.8, "H3K4me3": 0.4, "H3K9me3": 0.8}
#: Gamma-Poisson shape: variance = mean + mean^2 / DISPERSION_SHAPE (smaller = more over-dispersed).
DISPERSION_SHAPE = 1.5

# Chromatin states: share of genes and (median, log-sd) of each profile's peak height in reads per
# 100-bp bin. "K27_focal" is the promoter H3K27me3 peak of bivalent genes; "K27_domain" and
# "K9_domain" are broad domains. H3K4me1 is not here: it is drawn the same way for every gene.
STATES: dict[str, dict] = {
    "active": {"share": 0.38, "H3K4me3": (22, 0.5), "H3K36me3": (7, 0.5)},
    "weak": {"share": 0.17, "H3K4me3": (6, 0.6), "H3K36me3": (2, 0.6)},
    "bivalent": {"share": 0.12, "H3K4me3": (16, 0.5), "H3K36me3": (0.4, 0.6), "K27_focal": (7, 0.4)},
    "polycomb": {"share": 0.13, "H3K4me3": (1.0, 0.8), "K27_domain": (4, 0.5)},
    "heterochromatin": {"share": 0.10, "K9_domain": (4, 0.5)},
    "silent": {"share": 0.10},
}
H3K4ME1_PEAK = (3.0, 0.7)

#: The planted rules, exactly as written to ``ground_truth.json`` (plus the run's facts).
PLANTED_RULES: dict = {
    "feature_definition": (
        "mean over the bins whose start lies in [start, end) bp relative to the TSS (downstream "
        "positive, in the direction of transcription) of log1p(read count)"
    ),
    "intercept": 0.5,
    "terms": [
        {
            "name": "promoter_H3K4me3",
            "mark": "H3K4me3",
            "region_bp": [-1000, 1000],
            "weight": 1.2,
            "direction": "raises",
            "multiplied_by": "1 - bivalent_gate",
        },
        {
            "name": "gene_body_H3K36me3",
            "mark": "H3K36me3",
            "region_bp": [1000, 5000],
            "weight": 1.0,
            "direction": "raises",
        },
        {
            "name": "broad_H3K27me3",
            "mark": "H3K27me3",
            "region_bp": [-5000, 5000],
            "weight": -1.0,
            "direction": "lowers",
        },
        {"name": "broad_H3K9me3", "mark": "H3K9me3", "region_bp": [-5000, 5000], "weight": -1.0, "direction": "lowers"},
    ],
    "interaction": {
        "name": "bivalent_gate",
        "marks": ["H3K27me3", "H3K4me3"],
        "gate_mark": "H3K27me3",
        "gate_region_bp": [-1000, 1000],
        "gate": "1 / (1 + exp(-(feature - midpoint) / width))",
        "midpoint": 1.2,
        "width": 0.15,
        "effect": (
            "H3K27me3 over the promoter cancels the effect of promoter H3K4me3: the promoter_H3K4me3 "
            "term is multiplied by (1 - bivalent_gate), so bivalent promoters stay low"
        ),
    },
    "decoy_marks": ["H3K4me1"],
    "expected_sign": {"H3K27me3": -1, "H3K36me3": 1, "H3K4me1": 0, "H3K4me3": 1, "H3K9me3": -1},
    "noise": {"distribution": "normal", "sd": 1.75, "scale": "log1p(expression)"},
    "expression_formula": (
        "log_expression = intercept + sum(terms) + noise; "
        "expression = max(0, expm1(log_expression)), rounded to 3 decimals (RPKM-like)"
    ),
    "label_rule": "median",
}


# ------------------------------------------------------------------ the planted rules
def _region_mean(log_signal: np.ndarray, bin_starts: np.ndarray, mark_col: int, region: Sequence[int]) -> np.ndarray:
    start, end = region
    bins = np.flatnonzero((bin_starts >= start) & (bin_starts < end))
    if bins.size == 0:
        raise DataError(
            f"No bin starts in [{start}, {end}) bp, which a planted rule needs; "
            f"the window covers {int(bin_starts.min())}..{int(bin_starts.max())} bp."
        )
    return log_signal[:, bins, mark_col].mean(axis=1)


def planted_terms(dataset: HistoneDataset, rules: dict = PLANTED_RULES) -> dict[str, np.ndarray]:
    """Each planted term's contribution to log1p(expression) per gene, from the dataset's signal.

    Returns ``{term name: (genes,) float64}`` with every term of ``rules["terms"]`` (the H3K4me3
    term already multiplied by ``1 - bivalent_gate``) plus ``"bivalent_gate"`` itself (in [0, 1],
    not an additive term). ``rules`` is :data:`PLANTED_RULES` or a loaded ``ground_truth.json``.
    """
    log_signal = np.log1p(dataset.signal.astype(np.float64))
    starts = dataset.bin_starts_bp()

    def feature(mark: str, region: Sequence[int]) -> np.ndarray:
        if mark not in dataset.marks:
            raise DataError(f"The planted rules need mark {mark}; the data has {', '.join(dataset.marks)}.")
        return _region_mean(log_signal, starts, dataset.marks.index(mark), region)

    inter = rules["interaction"]
    gate = 1.0 / (
        1.0 + np.exp(-(feature(inter["gate_mark"], inter["gate_region_bp"]) - inter["midpoint"]) / inter["width"])
    )
    out: dict[str, np.ndarray] = {}
    for term in rules["terms"]:
        value = term["weight"] * feature(term["mark"], term["region_bp"])
        if term.get("multiplied_by") == f"1 - {inter['name']}":
            value = value * (1.0 - gate)
        out[term["name"]] = value
    out[inter["name"]] = gate
    return out


def oracle_log_expression(dataset: HistoneDataset, rules: dict = PLANTED_RULES) -> np.ndarray:
    """The noiseless planted log1p(expression) of every gene, shape (genes,) float64."""
    terms = planted_terms(dataset, rules)
    gate_name = rules["interaction"]["name"]
    return rules["intercept"] + sum(v for k, v in terms.items() if k != gate_name)


# ------------------------------------------------------------------ the signal
def _profiles(x: np.ndarray) -> dict[str, np.ndarray]:
    """Shapes (max 1) along bin centres ``x`` in bp, downstream positive."""

    def bump(mu: float, sd: float) -> np.ndarray:
        return np.exp(-0.5 * ((x - mu) / sd) ** 2)

    def norm(p: np.ndarray) -> np.ndarray:
        return p / p.max()

    # -1 and +1 nucleosomes flanking a nucleosome-depleted region just upstream of the TSS.
    k4me3 = (0.7 * bump(-350, 350) + bump(450, 450)) * (1 - 0.5 * bump(-25, 100))
    body = 1 / (1 + np.exp(-(x - 1200) / 400)) * (0.5 + 0.5 * np.clip(x, 0, 5000) / 5000)
    k4me1 = bump(-1500, 700) + bump(1800, 900)
    return {"H3K4me3": norm(k4me3), "H3K36me3": norm(body), "H3K4me1": norm(k4me1), "K27_focal": bump(0, 1200)}


def _domains(rng: np.random.Generator, x: np.ndarray, n: int) -> np.ndarray:
    """Broad domains with soft edges, one per gene, shape (genes, bins) in [0, 1]."""
    start = rng.uniform(-9000, -1000, size=(n, 1))
    end = rng.uniform(1000, 9000, size=(n, 1))
    return 1 / (1 + np.exp(-(x - start) / 300)) / (1 + np.exp(-(end - x) / 300))


def _lognormal(rng: np.random.Generator, median_sd: tuple[float, float], n: int) -> np.ndarray:
    median, sd = median_sd
    return median * np.exp(sd * rng.standard_normal(n))


def _simulate_counts(
    rng: np.random.Generator, n_genes: int, n_bins: int, bin_size: int, tss_bin: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counts (genes, bins, marks) float32 and each gene's state index into :data:`STATES`."""
    names = list(STATES)
    shares = np.array([STATES[s]["share"] for s in names])
    state = rng.choice(len(names), size=n_genes, p=shares / shares.sum())
    x = (np.arange(n_bins) - tss_bin + 0.5) * bin_size
    shape = _profiles(x)

    amp = {key: np.zeros(n_genes) for key in ("H3K4me3", "H3K36me3", "K27_focal", "K27_domain", "K9_domain")}
    for k, s in enumerate(names):
        genes = np.flatnonzero(state == k)
        for key in amp:
            if key in STATES[s]:
                amp[key][genes] = _lognormal(rng, STATES[s][key], genes.size)
    k4me1 = _lognormal(rng, H3K4ME1_PEAK, n_genes)
    k27_domain = _domains(rng, x, n_genes)
    k9_domain = _domains(rng, x, n_genes)

    enrich = {
        "H3K27me3": amp["K27_domain"][:, None] * k27_domain + amp["K27_focal"][:, None] * shape["K27_focal"],
        "H3K36me3": amp["H3K36me3"][:, None] * shape["H3K36me3"],
        "H3K4me1": k4me1[:, None] * shape["H3K4me1"],
        "H3K4me3": amp["H3K4me3"][:, None] * shape["H3K4me3"],
        "H3K9me3": amp["K9_domain"][:, None] * k9_domain,
    }
    mean = np.stack([BACKGROUND[m] + enrich[m] for m in MARKS], axis=2) * (bin_size / 100)
    rate = mean * rng.gamma(DISPERSION_SHAPE, 1 / DISPERSION_SHAPE, size=mean.shape)
    return rng.poisson(rate).astype(np.float32), state


def _gene_annotation(rng: np.random.Generator, n_genes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gene ids, symbols, chromosomes (genes ordered by chromosome) and strands."""
    chroms = list(CHROM_WEIGHTS)
    weights = np.array(list(CHROM_WEIGHTS.values()), dtype=float)
    base = 1 if n_genes >= len(chroms) else 0  # every chromosome present when there are enough genes
    counts = base + rng.multinomial(n_genes - base * len(chroms), weights / weights.sum())
    chrom = np.repeat(np.array(chroms, dtype=object), counts)
    width = max(5, len(str(n_genes)))
    gene_ids = np.array([f"SIM{k:0{width}d}" for k in range(1, n_genes + 1)], dtype=object)
    symbols = np.array([f"SIMG{k}" for k in range(1, n_genes + 1)], dtype=object)
    strand = np.where(rng.random(n_genes) < 0.5, "+", "-").astype(object)
    return gene_ids, symbols, chrom, strand


# ------------------------------------------------------------------ the dataset
def make_sample_dataset(
    n_genes: int = DEFAULT_N_GENES, seed: int = 0, n_bins: int = 100, bin_size: int = 100
) -> tuple[HistoneDataset, dict]:
    """The synthetic dataset and its ground truth.

    Returns ``(dataset, ground_truth)``. ``dataset``: signal (n_genes, n_bins, 5) float32 read
    counts, marks in DeepChrome order (:data:`MARKS`), TSS at bin ``n_bins // 2``, strand-aware,
    with ids, symbols, chromosomes, strands, RPKM-like ``expression``, a seeded random 70/15/15
    ``split`` and median-rule ``labels`` fitted on the training genes. ``ground_truth``: the
    JSON-safe dict written to ``ground_truth.json`` (:data:`PLANTED_RULES` plus this run's seed,
    sizes, state counts and oracle AUROC). Everything follows from ``seed`` alone.

    The window must cover -5 kb..+5 kb (the planted regions): ``n_bins * bin_size >= 10000``.
    """
    from sklearn.metrics import roc_auc_score

    n_genes, n_bins, bin_size = int(n_genes), int(n_bins), int(bin_size)
    if n_genes < 10:
        raise DataError(f"n_genes must be at least 10; got {n_genes}.")
    tss_bin = n_bins // 2
    if tss_bin * bin_size < 5000 or (n_bins - tss_bin) * bin_size < 5000:
        raise DataError(
            f"{n_bins} bins of {bin_size} bp do not cover -5 kb..+5 kb around the TSS, where the planted "
            "rules live; use n_bins * bin_size >= 10000 (e.g. 100 bins of 100 bp)."
        )
    rng = np.random.default_rng(seed)
    gene_ids, symbols, chrom, strand = _gene_annotation(rng, n_genes)
    signal, state = _simulate_counts(rng, n_genes, n_bins, bin_size, tss_bin)
    dataset = HistoneDataset(
        signal=signal,
        gene_ids=gene_ids,
        marks=MARKS,
        bin_size=bin_size,
        tss_bin=tss_bin,
        symbols=symbols,
        chrom=chrom,
        strand=strand,
        cell=SAMPLE_CELL,
        source=f"hmviz synthetic sample data (seed {seed})",
        strand_aware=True,
    )
    oracle = oracle_log_expression(dataset)
    noisy = oracle + PLANTED_RULES["noise"]["sd"] * rng.standard_normal(n_genes)
    dataset = dataclasses.replace(dataset, expression=np.round(np.maximum(0.0, np.expm1(noisy)), 3))
    dataset = ensure_split(dataset, how="random", seed=seed)
    dataset = label_dataset(dataset, LabelRule.parse(PLANTED_RULES["label_rule"]))
    dataset.meta["generator"] = {"name": GENERATOR, "seed": int(seed)}

    test = dataset.require_split() == "test"
    truth = copy.deepcopy(PLANTED_RULES)
    all_labels, expression = dataset.labels, dataset.expression
    if all_labels is None or expression is None:
        raise HmvizError("The synthetic dataset has no labels or no expression values (an hmviz bug).")

    def auroc(genes: np.ndarray) -> float | None:  # None when the genes hold one class only
        labels = all_labels[genes]
        return round(float(roc_auc_score(labels, oracle[genes])), 4) if 0 < labels.sum() < labels.size else None

    truth["oracle_auroc"] = {
        "definition": "AUROC of the noiseless log_expression (intercept + sum of terms) against the labels",
        "all_genes": auroc(np.ones(n_genes, dtype=bool)),
        "test_genes": auroc(test),
    }
    truth["label_threshold"] = round(float(dataset.meta["labels"]["threshold"]), 6)
    names = list(STATES)
    truth["run"] = {
        "generator": GENERATOR,
        "seed": int(seed),
        "n_genes": n_genes,
        "marks": list(MARKS),
        "n_bins": n_bins,
        "bin_size_bp": bin_size,
        "tss_bin": tss_bin,
        "window_bp": [-tss_bin * bin_size, (n_bins - tss_bin) * bin_size],
        "strand_aware": True,
        "split": dataset.meta["split"],
        "chromatin_states": {s: int((state == k).sum()) for k, s in enumerate(names)},
        "zero_expression_genes": int((expression == 0).sum()),
        "counts": f"gamma-Poisson (negative binomial) with shape {DISPERSION_SHAPE}: "
        f"variance = mean + mean^2 / {DISPERSION_SHAPE}",
    }
    return dataset, truth


# ------------------------------------------------------------------ files
def _expression_tsv(dataset: HistoneDataset) -> bytes:
    if dataset.expression is None:
        raise DataError(f"{dataset.source} has no expression values to write.")
    buf = io.StringIO()
    buf.write("gene_id\texpression\n")
    for gene, value in zip(dataset.gene_ids.tolist(), dataset.expression.tolist()):
        buf.write(f"{gene}\t{value:.3f}\n")
    return buf.getvalue().encode()


def _readme(truth: dict, sizes: dict[str, int], histone_header: str) -> str:
    run, inter, auc = truth["run"], truth["interaction"], truth["oracle_auroc"]
    rows = "\n".join(
        f"| `{t['name']}` | {t['mark']} | {t['region_bp'][0]:+d} .. {t['region_bp'][1]:+d} | "
        f"{t['weight']:+g} | {t['direction']}{' (times 1 - bivalent_gate)' if t.get('multiplied_by') else ''} |"
        for t in truth["terms"]
    )
    signs = ", ".join(f"{m} {'+1' if s > 0 else '-1' if s < 0 else '0'}" for m, s in truth["expected_sign"].items())
    states = ", ".join(f"{k} {v}" for k, v in run["chromatin_states"].items())
    files = "\n".join(f"| `{name}` | {size:,} bytes |" for name, size in sizes.items())
    return f"""# sample_data: generated histone-mark data with planted rules

Generated by `{run["generator"]}` (`hmviz/data/synthetic.py`). Do not edit by hand; regenerate with

```
python -m hmviz.data.synthetic --out sample_data --seed {run["seed"]} --n-genes {run["n_genes"]}
```

The same seed gives byte-identical files (tested in `tests/test_synthetic.py`).

## What is here

| file | size |
|---|---|
{files}

* `histone.csv.gz`: the long format, one row per gene and bin, written by `hmviz.data.io.write_long`;
  header `{histone_header}`.
* `expression.tsv`: `gene_id<TAB>expression` for the same genes. It is not repeated in the histone table,
  so loading shows the join by gene id:
  `hmviz.data.io.read_dataset("sample_data/histone.csv.gz", expression="sample_data/expression.tsv")`.
* `ground_truth.json`: the planted rules below, machine-readable, with this run's facts.
* `two_cells/histone.csv.gz`: two cell types over the first {min(run["n_genes"], TWO_CELL_GENES)} genes, for
  differential models (DeepDiff): cell `synthetic` is this data, cell `synthetic-B` has the marks of 40% of
  the genes redrawn and expression from the same rules (gene noise shared, plus cell noise of sd 0.5 on the
  log scale); see `hmviz.data.synthetic.make_second_cell`. `python -m hmviz train --data sample_data/two_cells
  --model deepdiff --out runs/dd` predicts log2((B + 1) / (A + 1)).

{run["n_genes"]} genes (`SIM00001`, ... with symbols `SIMG1`, ...) on chr1..chr22 and chrX (roughly in
proportion to their protein-coding genes), both strands.
{run["n_bins"]} bins of {run["bin_size_bp"]} bp, TSS at bin {run["tss_bin"]} (window {run["window_bp"][0]:+d} .. {run["window_bp"][1]:+d} bp).
Bins run in the direction of transcription (`strand_aware=True`).
Marks, in DeepChrome order: {", ".join(run["marks"])}.
Split: seeded random 70/15/15 by gene ({", ".join(f"{k} {v}" for k, v in run["split"]["counts"].items())}).

## How the signal is made

Each gene is in one chromatin state ({states}).
Read counts per bin are {run["counts"]}, around `background + peak height * profile`,
with peak heights log-normal within a state:

* H3K4me3: promoter peak (the -1 and +1 nucleosomes) with a **dip at the TSS** (nucleosome-depleted region);
  strong in active and bivalent genes.
* H3K36me3: gene body, rising from about +1 kb downstream of the TSS; in active and weak genes.
* H3K27me3: broad domains in Polycomb-repressed genes, a focal promoter peak in bivalent genes.
* H3K9me3: broad domains in heterochromatin genes.
* H3K4me1: two peaks flanking the promoter, drawn **independently of the state and of expression**.

## The planted rules

A feature is the {truth["feature_definition"]}.

`log_expression = {truth["intercept"]} + sum of the terms + noise`, noise ~ Normal(0, sd {truth["noise"]["sd"]}).

| term | mark | region (bp from TSS) | weight | effect |
|---|---|---|---|---|
{rows}

Interaction (`{inter["name"]}`): {inter["effect"]}.
`bivalent_gate = {inter["gate"]}`, where feature is {inter["gate_mark"]} over
{inter["gate_region_bp"][0]:+d} .. {inter["gate_region_bp"][1]:+d} bp, midpoint {inter["midpoint"]}, width {inter["width"]}.

Decoy: {", ".join(truth["decoy_marks"])} has no effect on expression (explanations should rank it last).
Expected sign per mark: {signs}.

`expression = max(0, expm1(log_expression))`, rounded to 3 decimals (RPKM-like; {run["zero_expression_genes"]} genes are 0).
Labels: the `{truth["label_rule"]}` rule fitted on the training genes (1 = expression above {truth["label_threshold"]}).

## Oracle

{auc["definition"]}: **{auc["all_genes"]}** over all genes, {auc["test_genes"]} on the test genes.
The noise is set so that this lies in 0.85..0.95: a good model gets close to it but not to 1.
`hmviz.data.synthetic.oracle_log_expression(dataset, json.load(open('ground_truth.json')))` recomputes
the noiseless values from the signal; `planted_terms` gives each term per gene.
"""


def make_second_cell(
    dataset: HistoneDataset,
    seed: int = 1,
    fraction_changed: float = 0.4,
    cell_noise_sd: float = 0.5,
    cell: str = SECOND_CELL,
) -> HistoneDataset:
    """A second cell type over the same genes, for differential models (DeepDiff).

    A random ``fraction_changed`` of the genes switch chromatin state: their marks are redrawn from
    the same generator. Expression follows the same :data:`PLANTED_RULES`; each gene keeps its
    gene-specific noise from ``dataset`` (what the marks do not explain is shared by both cells) plus
    a cell-specific Gaussian term of sd ``cell_noise_sd`` (log scale). So the log fold change between
    the cells is the change of the planted terms plus noise. Same split as ``dataset``; no labels.
    """
    if dataset.expression is None:
        raise DataError(
            f"A second cell keeps each gene's noise from the first cell's expression; {dataset.source} has none."
        )
    rng = np.random.default_rng(seed)
    redrawn, _ = _simulate_counts(rng, dataset.n_genes, dataset.n_bins, dataset.bin_size, dataset.require_tss_bin())
    changed = rng.random(dataset.n_genes) < fraction_changed
    signal = np.where(changed[:, None, None], redrawn, dataset.signal).astype(np.float32)
    gene_noise = np.log1p(dataset.expression) - oracle_log_expression(dataset)
    other = dataclasses.replace(
        dataset,
        signal=signal,
        cell=cell,
        labels=None,
        expression=None,
        source=f"{dataset.source}, second cell (seed {seed})",
        meta={},
    )
    log_expr = oracle_log_expression(other) + gene_noise + cell_noise_sd * rng.standard_normal(dataset.n_genes)
    other = dataclasses.replace(other, expression=np.round(np.maximum(0.0, np.expm1(log_expr)), 3))
    other.meta.update(
        split=dict(dataset.meta.get("split", {})),
        changed_genes=int(changed.sum()),
        generator={"name": GENERATOR, "second_cell_seed": int(seed)},
    )
    return other


def make_two_cell_sample(n_genes: int = DEFAULT_N_GENES, seed: int = 0) -> MultiCellDataset:
    """The sample dataset (cell ``synthetic``) and a :func:`make_second_cell` partner (``synthetic-B``)."""
    first, _ = make_sample_dataset(n_genes, seed=seed)
    second = make_second_cell(first, seed=seed + 1)
    first = dataclasses.replace(first, labels=None, meta=dict(first.meta))  # differential models use expression
    return MultiCellDataset(
        {SAMPLE_CELL: first, SECOND_CELL: second}, source=f"hmviz synthetic two-cell sample (seed {seed})"
    )


def write_sample_data(out_dir: str | Path, seed: int = 0, n_genes: int = DEFAULT_N_GENES) -> dict[str, Path]:
    """Generate the sample data and write it to ``out_dir``; returns ``{file name: path}``.

    Files: ``histone.csv.gz`` (long format, :func:`hmviz.data.io.write_long`), ``expression.tsv``,
    ``ground_truth.json`` and ``README.md``. Every file is written atomically and depends only on
    ``seed`` and ``n_genes``.
    """
    from hmviz.data.formats._files import atomic_write
    from hmviz.data.io import write_long

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset, truth = make_sample_dataset(n_genes=n_genes, seed=seed)
    paths = {name: out / name for name in ("histone.csv.gz", "expression.tsv", "ground_truth.json", "README.md")}
    # Expression goes only into its own table, so that reading the two files joins them:
    # read_dataset("histone.csv.gz", expression="expression.tsv").
    write_long(dataclasses.replace(dataset, expression=None), paths["histone.csv.gz"])
    atomic_write(paths["expression.tsv"], _expression_tsv(dataset))
    atomic_write(paths["ground_truth.json"], (json.dumps(truth, indent=2) + "\n").encode())
    sizes = {name: paths[name].stat().st_size for name in ("histone.csv.gz", "expression.tsv", "ground_truth.json")}
    with gzip.open(paths["histone.csv.gz"], "rt") as fh:
        header = fh.readline().strip()
    atomic_write(paths["README.md"], _readme(truth, sizes, header).encode())
    # Two cell types over the first genes, for differential models (DeepDiff). A subfolder, so that
    # reading the sample_data folder itself gives the one-cell dataset.
    two = make_two_cell_sample(n_genes=min(n_genes, TWO_CELL_GENES), seed=seed)
    paths["two_cells/histone.csv.gz"] = out / "two_cells" / "histone.csv.gz"
    paths["two_cells/histone.csv.gz"].parent.mkdir(exist_ok=True)
    write_long(two, paths["two_cells/histone.csv.gz"])
    log.info("Wrote %s (%d genes, seed %d)", out, n_genes, seed)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hmviz.data.synthetic", description="Write hmviz's generated sample data with planted rules."
    )
    parser.add_argument("--out", default="sample_data", help="output folder (default: sample_data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--n-genes", type=int, default=DEFAULT_N_GENES, help=f"genes (default: {DEFAULT_N_GENES})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        write_sample_data(args.out, seed=args.seed, n_genes=args.n_genes)
    except HmvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
