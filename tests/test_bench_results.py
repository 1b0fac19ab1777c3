"""The real-data results table (docs/results.md) says what was measured, named for what it is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_models_for_test", ROOT / "bench" / "bench_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _s(*values: float) -> dict:
    import statistics

    return {"mean": statistics.mean(values), "sd": statistics.stdev(values), "values": list(values)}


def test_results_table_rows_published_labels_and_baseline_names() -> None:
    bench = _bench()
    single = {"seeds": 2, "results": {"E123 (600 genes)": {
        "deepchrome": {"test_auroc": _s(0.80, 0.82), "best_epoch": _s(4, 6), "epochs_run": _s(14, 16),
                       "epochs_max": _s(40, 40)},
        "attentivechrome": {"test_auroc": _s(0.84, 0.84)},
        "logistic": {"test_auroc": _s(0.79, 0.79)},
    }}}
    differential = {"seeds": 2, "results": {"E123 vs E003 (600 genes)": {
        "deepdiff": {"test_pearson_r": _s(0.5, 0.6), "test_r2": _s(0.2, 0.3)},
        "logistic": {"test_r2": _s(0.1, 0.1)},
    }}}
    random = {"seeds": 2, "results": {"E123 (600 genes)": {"deepchrome": {"test_auroc": _s(0.70, 0.72)}}}}
    text = bench.render_results({"file": single, "random": random}, {"file": differential},
                                "python bench/bench_models.py results --seeds 2", "load 1.0",
                                ["No chromosome split for E123: no chromosomes."])
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("| deepchrome |"))
    # mean ± sd of the seeds; best epoch 5 ± 1.414; epochs run 15 of a 40 cap
    assert "| 0.810 ± 0.014 |" in row and "| 5.000 ± 1.414 |" in row and "15.000 ± 1.414 (40)" in row
    assert "0.920 (REMC E123 (K562), all genes; same cell type, different gene set)" in row
    assert "not the same data" in row  # DeepChrome's mean over 56 cell types is labelled as such
    assert "| logistic regression | 0.790 ± 0.000 |" in text
    assert "| ridge regression | - | 0.100 ± 0.000 |" in text  # DeepDiff's "logistic" baseline is ridge
    assert "| deepdiff | 0.550 ± 0.071 | 0.250 ± 0.071 |" in text
    assert "coefficient of determination" in text and "file's" in text and "seeds 1-2" in text
    # one table per split kind, each named, and the note on what was not run
    assert "## E123 (600 genes), file split" in text and "## E123 (600 genes), random split" in text
    random_table = text.split("random split:")[1].split("##")[0]
    assert "| deepchrome | 0.710 ± 0.014 |" in random_table and "0.810" not in random_table
    assert "**random**: a random split by gene" in text and "* No chromosome split for E123" in text
    assert "## E123 vs E003 (600 genes), file split: log2 fold change" in text


def test_chromosome_split_only_where_every_gene_has_a_chromosome(tmp_path) -> None:
    import dataclasses

    from hmviz.data.io import write_long
    from hmviz.data.synthetic import make_sample_dataset

    bench = _bench()
    ds, _ = make_sample_dataset(n_genes=30, seed=1)
    with_chrom = write_long(ds, tmp_path / "with.csv.gz")
    without = write_long(dataclasses.replace(ds, chrom=None), tmp_path / "without.csv.gz")
    known, notes = bench.chromosome_notes({"A": with_chrom, "B": without})
    assert known == ["A"]
    assert notes == ["No chromosome split for B: its files give gene ids only, no chromosome per gene."]


def test_results_pieces_from_worker_processes_merge_into_one_table_per_split() -> None:
    bench = _bench()
    pieces = [
        ("single", "file", {"seeds": 5, "results": {"E123": {"deepchrome": {"test_auroc": _s(0.9, 0.91)}}}}),
        ("single", "random", {"seeds": 5, "results": {"E123": {"deepchrome": {"test_auroc": _s(0.8, 0.81)}}}}),
        ("single", "file", {"seeds": 5, "results": {"E123": {"logistic": {"test_auroc": _s(0.7, 0.7)}}}}),
        ("differential", "file", {"seeds": 1, "results": {"pair": {"deepdiff": {"test_r2": _s(0.3, 0.3)}}}}),
    ]
    single, differential = bench.merge_parts(pieces)
    assert list(single) == ["file", "random"] and list(single["file"]["results"]["E123"]) == ["deepchrome", "logistic"]
    assert single["random"]["results"]["E123"]["deepchrome"]["test_auroc"]["mean"] == 0.805
    assert differential["file"]["seeds"] == 1 and "deepdiff" in differential["file"]["results"]["pair"]


def test_render_from_saved_pieces_lists_what_finished_with_the_notes(tmp_path, monkeypatch) -> None:
    import json

    bench = _bench()
    import _results

    monkeypatch.setattr(_results, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "RESULTS_DOC", tmp_path / "results.md")
    monkeypatch.setattr(bench, "SHARED_SETS", {})  # no shared data: no chromosome notes
    pieces = {"single_file_logistic": {"logistic": {"test_auroc": _s(0.7, 0.7)}},
              "single_file_deepchrome": {"deepchrome": {"test_auroc": _s(0.9, 0.92)}},
              "single_random_deepchrome": {"deepchrome": {"test_auroc": _s(0.8, 0.8)}}}
    for name, rows in pieces.items():
        (tmp_path / f"models_results_part_{name}.json").write_text(json.dumps({"seeds": 2, "results": {"E123": rows}}))
    text = bench.render_saved_parts("python bench/bench_models.py results --seeds 2", "load 1", ["AttentiveChrome did not finish."])
    file_table = text.split("## E123, file split")[1].split("##")[0]
    assert file_table.index("| deepchrome | 0.910") < file_table.index("| logistic regression | 0.700")
    assert "## E123, random split" in text and "* AttentiveChrome did not finish." in text
    assert (tmp_path / "results.md").read_text() == text


def test_each_cell_types_table_names_its_labels_and_cites_only_its_own_cell_as_the_same() -> None:
    bench = _bench()
    single = {"seeds": 2, "results": {
        "E123 (600 genes)": {"deepchrome": {"test_auroc": _s(0.80, 0.82)}},
        "E003 (600 genes)": {"deepchrome": {"test_auroc": _s(0.70, 0.72)}},
    }}
    text = bench.render_results({"file": single}, {}, "python bench/bench_models.py results", "load 1.0")
    e123, e003 = text.split("## E123 (600 genes)")[1], text.split("## E003 (600 genes)")[1]
    assert e123.startswith(", file split: expressed or not (binary labels of the file)")
    assert e003.startswith(", file split: expressed or not (expression above the median of the training genes")
    row = next(line for line in e003.splitlines() if line.startswith("| deepchrome |"))
    assert "0.770 (REMC E003 (H1), all genes; same cell type, different gene set)" in row
    assert "0.920 (REMC E123 (K562); not the same data)" in row


def _app_load_bench():
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("bench_app_load_for_test", ROOT / "bench" / "bench_app_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_share_counts_processes_that_start_and_exit_between_snapshots() -> None:
    """The app-load bench's "cores used" per group: a job that exited between the snapshots (reaped by
    the server) is the jobs' CPU, not a negative figure; a process started meanwhile counts from zero."""
    bench = _app_load_bench()
    server = 100
    before = {"server_pid": server, "machine": 10.0, "wall": 0.0, "procs": {
        server: ("server", 5.0, 0.0),  # (group, own CPU s, reaped children's CPU s)
        101: ("jobs", 8.0, 0.0),       # a job that exits before the second snapshot
        200: ("browser", 3.0, 1.0)}}
    after = {"server_pid": server, "machine": 30.0, "wall": 10.0, "procs": {
        server: ("server", 6.0, 12.0),  # reaped job 101: 12 s of CPU in all, 4 of them in this window
        102: ("jobs", 2.0, 0.0),        # a job started since
        200: ("browser", 7.0, 2.5),     # a renderer of the browser exited: 1.5 s more of reaped CPU
        300: ("browser", 0.5, 0.0)}}
    used = bench.cpu_share(before, after)
    assert used["server"] == 0.1  # 1 s in 10 s
    assert used["jobs"] == 0.6  # job 101's last 4 s + job 102's 2 s
    assert used["browser"] == round((4.0 + 1.5 + 0.5) / 10, 2)
    assert used["machine"] == 2.0
    assert used["other"] == round(2.0 - 0.1 - 0.6 - 0.6, 2)
    assert all(v >= 0 for v in used.values())


def test_comparison_summary_counts_each_seeds_verdict_and_the_range_of_differences() -> None:
    """The table docs/evaluation.md quotes (``bench/bench_compare.py``): one row per data, family and baseline."""
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_compare_for_test", ROOT / "bench" / "bench_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = {"data": "E123", "model": "deepchrome", "baseline": "logistic", "metric": "test_auroc"}
    rows = [{**row, "difference": 0.02, "verdict": "ahead"}, {**row, "difference": -0.01, "verdict": "not told apart"},
            {**row, "difference": 0.005, "verdict": "not told apart"},
            {**row, "baseline": "boosted-trees", "difference": -0.03, "verdict": "behind"}]
    lines = module.summary_table(rows).splitlines()
    assert lines[2] == "| E123 | deepchrome | logistic | test_auroc | +0.005 (-0.010 to +0.020) | 1 / 2 / 0 |"
    assert lines[3] == "| E123 | deepchrome | boosted-trees | test_auroc | -0.030 (-0.030 to -0.030) | 0 / 0 / 1 |"
    assert len(lines) == 4
