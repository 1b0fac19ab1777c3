"""Server-side times of the gene views on a 20,000-gene dataset (CPU), as a table.

    python bench/bench_views.py [--genes 20000] [--repeats 5]

* ``track view``: a new gene's genome-browser view: its tracks (signal of every mark) and the figure,
  plus the attribution track (Integrated Gradients, 32 steps) of a DeepChrome model on that gene.
* ``heatmap``: one mark of every gene sorted by expression, with 3 k-means clusters, and its figure.
* ``symbol search``: a symbol prefix query over every gene's symbol and id.

Median of ``--repeats`` runs. The data are generated (``hmviz.data.synthetic``); the model is an
untrained DeepChrome (attribution cost does not depend on the weights).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _results import write_results  # noqa: E402
from hmviz.data.synthetic import make_sample_dataset  # noqa: E402
from hmviz.explain import explain  # noqa: E402
from hmviz.models import build_model  # noqa: E402
from hmviz.views import GeneIndex, gene_tracks, profile_heatmap  # noqa: E402
from hmviz.views.figures import gene_tracks_figure, heatmap_figure  # noqa: E402


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds, _ = make_sample_dataset(n_genes=args.genes, seed=0)
    index = GeneIndex.from_dataset(ds)
    model, _ = build_model("deepchrome", n_marks=ds.n_marks, n_bins=ds.n_bins)
    model.eval()
    x = torch.from_numpy(np.log1p(ds.signal))
    rng = np.random.default_rng(0)

    def track_view():
        g = int(rng.integers(ds.n_genes))
        att = explain(model, x[g:g + 1], "integrated_gradients", n_steps=32)
        frame = gene_tracks(ds, g, attributions=att.values[0])
        gene_tracks_figure([frame], [index.label(g)], units="reads", attribution_unit="logit").to_json()

    def heatmap():
        hm = profile_heatmap(ds.signal[:, :, 0], ds.bin_starts_bp(), ds.bin_size, sort_by="expression",
                             expression=ds.expression, k=3)
        heatmap_figure(hm, what="signal", units="reads").to_json()

    queries = [f"simg{int(rng.integers(1, args.genes))}"[:6] for _ in range(20)]

    def search():
        for q in queries:
            index.search(q)

    rows = [
        ("track view (tracks + IG attribution + figure)", _median_time(track_view, args.repeats), 1.0),
        (f"heatmap of {args.genes:,} genes (sort, 3 k-means clusters, figure)", _median_time(heatmap, args.repeats), 3.0),
        ("symbol search (one query)", _median_time(search, args.repeats) / len(queries), 0.3),
    ]
    print(f"{'what':<62} {'seconds':>9} {'target':>7}")
    for name, sec, target in rows:
        print(f"{name:<62} {sec:>9.3f} {target:>7.1f}")
    write_results("views.json", {"genes": args.genes, "rows": [dict(what=n, seconds=s, target=t) for n, s, t in rows]})


if __name__ == "__main__":
    main()
