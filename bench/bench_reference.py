"""Which reference (baseline) makes gene-pair explanations agree with known biology on real data?

Usage::

    python bench/bench_reference.py [--data ../shared/data/deepdiff-E123-E003] [--cell Cell1]
                                    [--model ranker-deepchrome] [--seed 0] [--pairs 400]

Reads one cell of the REMC data with its measured expression (``Cell1`` = E123/K562: 600 genes,
200 bins of 100 bp, expression counts in ``Cell1.expr.csv``), trains ``--model`` on its training
split (seeded), and explains pairs of **test** genes: each top-decile expressed gene against each
silent gene (expression 0), with Integrated Gradients (steps doubled until the gap is within 1%) and
each candidate reference:

* ``zeros``: no reads (the transform applied to 0);
* ``train_mean``: per-bin, per-mark mean of the training genes;
* ``train_median``: per-bin, per-mark median of the training genes;
* ``low_expression_mean``: mean of the bottom quartile of training genes by expression.

For each reference it counts how often the explanation agrees with known biology: promoter
H3K4me3 (-1 kb to +1 kb) and H3K36me3 downstream of +1 kb (the gene body, where the bins follow the
strand) favour the expressed gene; H3K27me3 and H3K9me3 (whole window) favour the silent one. It
also counts which mark has the largest total contribution. Prints a table (and the command's
settings); quoted in docs/explanations.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hmviz  # noqa: E402,F401  (sets the OpenMP wait policy before torch loads)

CHECKS = (  # (mark, region, the gene it should favour)
    ("H3K4me3", "promoter", "expressed"),
    ("H3K36me3", "downstream", "expressed"),
    ("H3K27me3", None, "silent"),
    ("H3K9me3", None, "silent"),
)


def main() -> int:
    from hmviz.data import read_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "deepdiff-E123-E003"))
    p.add_argument("--cell", default="Cell1")
    p.add_argument("--models", default="ranker-deepchrome,deepchrome", help="comma-separated model names")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", type=int, default=400, help="at most this many (expressed, silent) test pairs")
    p.add_argument("--what", default="pairs,genes",
                   help="pairs: the pair table; genes: each gene explained alone (does H3K4me3 at the promoter "
                        "lower a silent gene's score and raise an expressed one's?)")
    args = p.parse_args()

    data = Path(args.data)
    files = [data / f"{args.cell}.{s}.csv" for s in ("train", "valid", "test")]
    ds = read_dataset(files, "deepdiff", expression=data / f"{args.cell}.expr.csv")
    what = set(args.what.split(","))
    tables = []
    for name in args.models.split(","):
        tables.append(run_model(ds, name.strip(), args, what))
    if "pairs" in what:
        print("\nPairs (expressed A vs silent B; % of pairs where the mark's summed attribution favours the gene "
              "biology expects):")
        print("| model | reference | pairs | H3K4me3 promoter -> expressed % | H3K36me3 body -> expressed % | "
              "H3K27me3 -> silent % | H3K9me3 -> silent % | top mark (pairs) | median gap/|diff| | cap reached | "
              "seconds |")
        print("|" + "---|" * 11)
        for pairs, _ in tables:
            for row in pairs:
                print("| " + " | ".join(row) + " |")
    if "genes" in what:
        print("\nGenes alone (% of genes where promoter H3K4me3 / body H3K36me3 push the gene's own score the way "
              "its expression goes: up for expressed, down for silent):")
        print("| model | reference | expressed genes | H3K4me3 promoter raises % | H3K36me3 body raises % | "
              "silent genes | H3K4me3 promoter lowers % | H3K36me3 body lowers % |")
        print("|" + "---|" * 8)
        for _, genes in tables:
            for row in genes:
                print("| " + " | ".join(row) + " |")
    return 0


def run_model(ds, model_name: str, args, what: set[str]) -> tuple[list, list]:
    """Train ``model_name`` on ``ds``, explain the pairs (and the genes alone) with every reference."""
    import numpy as np

    from hmviz.explain import Baseline, explain, explain_pair
    from hmviz.explain._regions import tss_regions
    from hmviz.explain.session import prepare
    from hmviz.options import TrainOptions
    from hmviz.training import train

    t0 = time.perf_counter()
    result = train(ds, TrainOptions(model=model_name, seed=args.seed, device="cpu"))
    model, card = result.model.eval(), result.card
    metrics = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
    print(f"trained {model_name} on {ds.n_genes} genes of {args.cell} (seed {args.seed}) in "
          f"{time.perf_counter() - t0:.0f} s; " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

    session = prepare(model, card, ds)
    test = session.evaluation_rows()
    expr = ds.expression
    high = test[expr[test] >= np.quantile(expr[test], 0.9)]
    silent = test[expr[test] == 0]
    pairs = [(int(a), int(b)) for a in high for b in silent]
    if len(pairs) > args.pairs:
        keep = np.sort(np.random.default_rng(args.seed).choice(len(pairs), args.pairs, replace=False))
        pairs = [pairs[k] for k in keep]
    print(f"{len(high)} top-decile test genes x {len(silent)} silent test genes: {len(pairs)} pairs")

    ref = session.reference_inputs().numpy()
    references = {
        "zeros": session.baseline("zeros"),
        "train_mean": session.baseline("train_mean"),
        "train_median": Baseline("train_median", "per-bin, per-mark median of the training genes",
                                 np.median(ref, axis=0).astype(np.float32)),
        "low_expression_mean": session.baseline("low_expression_mean"),
    }
    marks = list(session.marks)
    starts = session.bin_starts_bp
    masks = {r.name: r.mask(starts) for r in tss_regions()}
    masks[None] = np.ones(len(starts), dtype=bool)
    x = session.x
    zero = references["zeros"].values  # where "no reads" sits in the model's input space, per mark (SD units)
    print("no reads in input units (the training genes have mean 0, SD 1 per mark): "
          + ", ".join(f"{m} {zero[:, k].mean():+.1f}" for k, m in enumerate(marks)))
    gene_rows = []
    if "genes" in what:
        for name, base in references.items():
            row = [model_name, name]
            for genes, sign in ((high, 1.0), (silent, -1.0)):
                attr = explain(model, x[genes], "integrated_gradients", baseline=base, bin_starts_bp=starts,
                               marks=marks)
                row.append(str(len(genes)))
                for mark, region, _ in CHECKS[:2]:
                    v = attr.values[:, masks[region], marks.index(mark)].sum(axis=1) * sign
                    row.append(f"{100 * float(np.mean(v > 0)):.0f}")
            gene_rows.append(tuple(row))
    if "pairs" not in what:
        return [], gene_rows
    rows = []
    # What the data itself says: the expressed gene's input minus the silent gene's, in the same regions.
    agree = {}
    for c in CHECKS:
        mark, region, favours = c
        d = np.array([(x[a] - x[b])[masks[region], marks.index(mark)].sum().item() for a, b in pairs])
        agree[c] = 100 * float(np.mean(d > 0 if favours == "expressed" else d < 0))
    rows.append((model_name, "(the input itself: more signal in the gene it should favour)", str(len(pairs)),
                 *(f"{agree[c]:.0f}" for c in CHECKS), "", "", "", ""))
    for name, base in references.items():
        t0 = time.perf_counter()
        agree = {c: 0 for c in CHECKS}
        top = {m: 0 for m in marks}
        rel_gap, capped = [], 0
        for a, b in pairs:  # A: the expressed gene, B: the silent one; > 0 favours A
            pe = explain_pair(model, x[a], x[b], "integrated_gradients", base, bin_starts_bp=starts, marks=marks)
            both = pe.values_a.astype(np.float64) + pe.values_b.astype(np.float64)  # (bins, marks)
            for c in CHECKS:
                mark, region, favours = c
                v = both[masks[region], marks.index(mark)].sum()
                agree[c] += (v > 0) if favours == "expressed" else (v < 0)
            top[marks[int(np.argmax(both.sum(axis=0)))]] += 1
            rel_gap.append(abs(pe.convergence_delta) / max(abs(pe.difference), 1e-12))
            capped += bool(pe.cap_reached)
        n = len(pairs)
        rows.append((model_name, name, str(n), *(f"{100 * agree[c] / n:.0f}" for c in CHECKS),
                     ", ".join(f"{m} {top[m]}" for m in sorted(top, key=lambda m: -top[m]) if top[m]),
                     f"{np.median(rel_gap):.4f}", str(capped), f"{time.perf_counter() - t0:.0f}"))
    return rows, gene_rows


if __name__ == "__main__":
    raise SystemExit(main())
