"""Studies: the spec, its runs, the resumable runner, cross-cell scoring, summaries and figures."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from hmviz.cli.main import main
from hmviz.data.io import write_long
from hmviz.data.synthetic import make_sample_dataset
from hmviz.errors import DataError, HmvizError
from hmviz.studies import (
    DatasetSpec,
    ModelSpec,
    StudySpec,
    cross_cell_heatmap,
    cross_cell_matrix,
    expand,
    load_spec,
    make_executor,
    run_study,
    smallest_within_margin,
    subset_chart,
    subset_summary,
    subset_table,
)
from hmviz.studies.executors import InlineExecutor, StudyCancelled
from hmviz.studies.runner import LOG_FILE, read_records

MARKS = ("H3K4me3", "H3K36me3", "H3K27me3", "H3K4me1", "H3K9me3")


@pytest.fixture(scope="module")
def cells():
    """Two small synthetic 'cell types' with the same genes (different seeds of the simulation)."""
    a, _ = make_sample_dataset(n_genes=160, seed=3)
    b, _ = make_sample_dataset(n_genes=160, seed=4)
    return {"A": a, "B": b}


def _spec(**kw) -> StudySpec:
    base = dict(datasets=(DatasetSpec("A"), DatasetSpec("B")), models=(ModelSpec("deepchrome"),),
                marks=("all-marks",), seeds=(1,), epochs=1, patience=0)
    base.update(kw)
    return StudySpec(**base)


# ------------------------------------------------------------------------------- spec
def test_expand_counts_subsets_seeds_settings_and_datasets():
    spec = _spec(marks=("all-marks", "singles", "leave-one-out", "H3K36me3+H3K4me3"), seeds=(1, 2),
                 vary=(("dropout", (0.2, 0.5)),))
    runs = expand(spec, {"A": MARKS, "B": MARKS})
    # 1 all + 5 singles + 5 leave-one-out + 1 explicit (in the data's order) = 12 subsets
    assert len(runs) == 2 * 12 * 2 * 2 and len({r.run_id for r in runs}) == len(runs)
    subsets = {r.marks for r in runs}
    assert MARKS in subsets and ("H3K4me3", "H3K36me3") in subsets and len(subsets) == 12
    assert {dict(r.settings)["dropout"] for r in runs} == {0.2, 0.5}
    every = expand(_spec(marks=("every-subset",), datasets=(DatasetSpec("A"),)), {"A": MARKS})
    assert len(every) == 31
    assert expand(spec, {"A": MARKS, "B": MARKS})[0].run_id == runs[0].run_id  # ids are stable


def test_spec_errors_name_the_fix(tmp_path):
    with pytest.raises(HmvizError, match="H3K79me2"):
        expand(_spec(marks=("H3K79me2",)), {"A": MARKS, "B": MARKS})
    with pytest.raises(HmvizError, match="no setting 'dropot'"):
        expand(_spec(vary=(("dropot", (0.1,)),)), {"A": MARKS, "B": MARKS})
    with pytest.raises(HmvizError, match="single-cell"):
        expand(_spec(models=(ModelSpec("deepdiff"),)), {"A": MARKS, "B": MARKS})
    with pytest.raises(HmvizError, match="unique"):
        _spec(datasets=(DatasetSpec("A"), DatasetSpec("A")))
    from hmviz.studies import Resources

    with pytest.raises(HmvizError, match='device = "cuda"'):
        _spec(resources=Resources(num_gpus=0.25))
    bad = tmp_path / "s.toml"
    bad.write_text('seeds = [1]\nmodles = ["deepchrome"]\n')
    with pytest.raises(HmvizError, match="unknown key.*modles"):
        load_spec(bad)


def test_toml_spec_reads_relative_paths_and_settings(tmp_path):
    (tmp_path / "spec.toml").write_text(
        'name = "t"\nseeds = [1, 2]\nmarks = ["singles"]\ncross_cell = true\nepochs = 2\n'
        '[[datasets]]\nname = "A"\npath = "a"\n[[models]]\nname = "deepchrome"\nset = { kernel_size = 5 }\n'
        '[vary]\ndropout = [0.1, 0.3]\n[resources]\nnum_gpus = 0.25\ndevice = "auto"\n')
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.datasets[0].path == str(tmp_path / "a") and spec.seeds == (1, 2) and spec.cross_cell
    assert spec.models[0].settings == (("kernel_size", 5),) and spec.resources.num_gpus == 0.25
    runs = expand(spec, {"A": MARKS})
    assert len(runs) == 5 * 2 * 2 and all(dict(r.settings)["kernel_size"] == 5 for r in runs)


# ----------------------------------------------------------------------------- runner
def test_study_resumes_after_a_crash_and_computes_nothing_twice(cells, tmp_path):
    spec = _spec(marks=("all-marks", "singles"), datasets=(DatasetSpec("A"),))  # 6 runs
    seen = []

    def crash_after_two(ev):
        seen.append(ev)
        if len(seen) == 2:
            raise KeyboardInterrupt  # the driver dies after two runs finished

    with pytest.raises(KeyboardInterrupt):
        run_study(spec, tmp_path, executor=InlineExecutor(), progress=crash_after_two, data=cells)
    first = {p.parent.name: p.read_bytes() for p in (tmp_path / "runs").glob("*/result.json")}
    assert len(first) == 2 and len(pd.read_csv(tmp_path / "results.csv")) == 2  # the table of what finished

    resumed = []
    result = run_study(spec, tmp_path, executor=InlineExecutor(), progress=resumed.append, data=cells)
    assert result.reused == 2 and result.computed == 4 and sum(e.from_cache for e in resumed) == 2
    assert {p.parent.name: p.read_bytes() for p in (tmp_path / "runs").glob("*/result.json")
            if p.parent.name in first} == first  # finished results kept byte for byte
    log = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert len(log) == 6 and len({e["run_id"] for e in log}) == 6  # each run computed once
    assert run_study(spec, tmp_path, executor=InlineExecutor(), data=cells).computed == 0

    table = pd.read_parquet(tmp_path / "results.parquet")
    assert len(table) == 6 and (table["status"] == "ok").all()
    assert {"dataset", "model", "marks", "seed", "settings", "valid_value", "test_value", "seconds", "device",
            "hmviz_version", "torch_version", "valid_auroc", "test_auroc"} <= set(table.columns)
    assert (table["metric"] == "auroc").all() and (table["device"] == "cpu").all()
    assert np.allclose(table["test_value"], table["test_auroc"])
    for run_id in table["run_id"]:
        card = json.loads((tmp_path / "runs" / run_id / "model_card.json").read_text())
        row = table.set_index("run_id").loc[run_id]
        assert card["metrics"]["test_auroc"] == pytest.approx(row["test_value"])
        assert "+".join(card["marks"]) == row["marks"] and card["seed"] == row["seed"]


def test_a_changed_spec_is_refused_for_the_same_folder(cells, tmp_path):
    run_study(_spec(datasets=(DatasetSpec("A"),)), tmp_path, executor=InlineExecutor(), data=cells)
    with pytest.raises(HmvizError, match=r"another study spec.*epochs: 1 there, 2 now"):
        run_study(_spec(datasets=(DatasetSpec("A"),), epochs=2), tmp_path, executor=InlineExecutor(), data=cells)
    with pytest.raises(HmvizError, match="fingerprint"):  # same name, other data
        run_study(_spec(datasets=(DatasetSpec("A"),)), tmp_path, executor=InlineExecutor(), data={"A": cells["B"]})


def test_one_failed_run_is_recorded_not_fatal_and_retried_on_rerun(cells, tmp_path):
    spec = _spec(datasets=(DatasetSpec("A"),), vary=(("kernel_size", (5, 1000)),))  # 1000 > 100 bins: fails
    result = run_study(spec, tmp_path, executor=InlineExecutor(), data=cells)
    table = result.table.set_index("settings")
    assert result.failed == 1 and len(table) == 2
    assert table.loc['{"kernel_size": 5}', "status"] == "ok"
    bad = table.loc['{"kernel_size": 1000}']
    assert bad["status"] == "failed" and isinstance(bad["error"], str) and bad["error"]
    again = run_study(spec, tmp_path, executor=InlineExecutor(), data=cells)
    assert again.reused == 1 and again.computed == 1  # the failed run is tried again, the good one kept


def test_cancel_keeps_finished_runs(cells, tmp_path):
    spec = _spec(marks=("singles",), datasets=(DatasetSpec("A"),))
    seen = []
    with pytest.raises(StudyCancelled):
        run_study(spec, tmp_path, executor=InlineExecutor(), progress=seen.append, should_stop=lambda: len(seen) >= 2,
                  data=cells)
    assert len(read_records(tmp_path)) == 2


def test_cross_cell_scores_each_model_on_its_test_genes_in_every_cell(cells, tmp_path):
    spec = _spec(cross_cell=True)
    result = run_study(spec, tmp_path, executor=InlineExecutor(), data=cells)
    cross = pd.read_parquet(tmp_path / "cross_cell.parquet")
    assert len(cross) == 4 and set(zip(cross["train_dataset"], cross["test_dataset"])) == {
        ("A", "A"), ("A", "B"), ("B", "A"), ("B", "B")}
    # The off-diagonal scores the model's own test genes (by id) in the other cell: same count as the diagonal.
    for train_cell in "AB":
        rows = cross[cross["train_dataset"] == train_cell].set_index("test_dataset")
        assert rows["genes"].nunique() == 1
    # Known answer: scoring a model on its own cell through the cross-cell path gives its test metric.
    from hmviz.checkpoints import load_model
    from hmviz.options import TrainOptions
    from hmviz.studies.work import cross_cell_metrics
    from hmviz.training import train

    trained = train(cells["A"], TrainOptions(model="deepchrome", epochs=1, patience=0, seed=1, device="cpu"))
    same = cross_cell_metrics(trained.model, trained.card, cells["A"], cells["A"])
    assert same["test_auroc"] == pytest.approx(trained.metrics["test_auroc"], abs=1e-6)
    assert same["genes"] == trained.card["split"]["counts"]["test"]
    matrix = cross_cell_matrix(result.cross_cell)
    assert matrix.shape == (2, 2) and matrix.loc["A", "A"] == pytest.approx(
        result.table.set_index("dataset").loc["A", "test_value"])
    fig = cross_cell_heatmap(matrix)
    assert fig.data[0].z.shape == (2, 2) and "trained on" in fig.layout.yaxis.title.text
    assert load_model  # imported for symmetry with the other tests' model round trips


# -------------------------------------------------------------------------- summaries
def _results(rows):
    return pd.DataFrame([{"status": "ok", "dataset": "A", "model": "deepchrome", "settings": "{}", "metric": "auroc",
                          "valid_metric": "valid_auroc", **r} for r in rows])


def test_subset_table_mean_and_sd_over_seeds_and_choice_on_validation():
    rows = []
    # test prefers "H3K36me3" (0.90 vs 0.80), validation prefers "H3K4me3" (0.895 vs 0.70)
    for seed, (full_v, full_t, k4_v, k4_t, k36_v, k36_t) in {1: (0.90, 0.91, 0.895, 0.80, 0.70, 0.90),
                                                             2: (0.90, 0.89, 0.895, 0.82, 0.70, 0.92)}.items():
        rows += [{"marks": "H3K4me3+H3K36me3", "n_marks": 2, "seed": seed, "valid_value": full_v, "test_value": full_t},
                 {"marks": "H3K4me3", "n_marks": 1, "seed": seed, "valid_value": k4_v, "test_value": k4_t},
                 {"marks": "H3K36me3", "n_marks": 1, "seed": seed, "valid_value": k36_v, "test_value": k36_t}]
    table = subset_table(_results(rows)).set_index("marks")
    assert table.loc["H3K4me3", "mean"] == pytest.approx(0.81)
    assert table.loc["H3K4me3", "std"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert table.loc["H3K36me3", "valid_mean"] == pytest.approx(0.70) and table.loc["H3K36me3", "n_runs"] == 2
    best = smallest_within_margin(table.reset_index(), 0.01)
    assert best["marks"] == "H3K4me3" and best["chosen_on"] == "valid_mean"  # not H3K36me3, the test favourite
    summary = subset_summary(_results(rows), 0.01).iloc[0]
    assert summary["chosen_marks"] == "H3K4me3" and summary["chosen_test"] == pytest.approx(0.81)
    assert summary["all_test"] == pytest.approx(0.90)
    fig = subset_chart(table.reset_index(), margin=0.01)
    chosen = [t for t in fig.data if t.name and t.name.startswith("smallest subset")][0]
    assert list(chosen.y) == ["H3K4me3"] and "validation" in chosen.name


def test_published_ablation_drawn_beside_our_own():
    from hmviz.studies import read_published_ablation
    from tests.conftest import shared_path

    published = read_published_ablation(shared_path("published", "pairwise_E066_HepG2_results.csv"), cell="E066")
    own = published.assign(mean=published["mean"] - 0.01)
    fig = subset_chart(own, published=published)
    assert len({t.xaxis for t in fig.data}) == 2 and "published" in fig.layout.annotations[1].text
    assert len(fig.layout.yaxis.categoryarray) == 31


def test_failed_runs_only_is_a_clear_error():
    with pytest.raises(DataError, match="failed"):
        subset_table(pd.DataFrame({"status": ["failed"], "dataset": ["A"]}))


# ------------------------------------------------------------------------------- CLI
def test_cli_study_run_and_summarize(cells, tmp_path, capsys):
    for name, ds in cells.items():
        write_long(ds, tmp_path / f"{name}.csv")
    spec = tmp_path / "spec.toml"
    spec.write_text('seeds = [1]\nmarks = ["all-marks", "H3K4me3"]\nepochs = 1\npatience = 0\ncross_cell = true\n'
                    '[[datasets]]\nname = "A"\npath = "A.csv"\n[[datasets]]\nname = "B"\npath = "B.csv"\n'
                    '[[models]]\nname = "deepchrome"\n')
    out = tmp_path / "out"
    assert main(["study", "run", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4 and set(table["dataset"]) == {"A", "B"}
    assert main(["study", "summarize", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chosen on validation" in printed and "cross-cell test_auroc" in printed
    assert (out / "subset_summary.csv").exists()


def test_cli_ray_without_ray_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    spec = tmp_path / "spec.toml"
    spec.write_text('[[datasets]]\nname = "A"\npath = "x"\n[[models]]\nname = "deepchrome"\n')
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "o"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "hmviz[ray]" in err[0]
    with pytest.raises(HmvizError, match="--address applies to --executor ray"):
        make_executor("local", address="auto")


def test_ctrl_c_stops_local_workers_cleanly(cells, tmp_path):
    """SIGINT to the whole command (as a terminal's Ctrl-C): exit 130, finished runs kept, no worker left
    running and no 'leaked semaphore' warning (the old ablation pool printed them)."""
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import ROOT

    write_long(cells["A"], tmp_path / "A.csv")
    (tmp_path / "spec.toml").write_text('marks = ["every-subset"]\nepochs = 3\npatience = 0\n'
                                        '[[datasets]]\nname = "A"\npath = "A.csv"\n[[models]]\nname = "deepchrome"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # As from a terminal, whatever started this suite: a command run in the background of a shell without job
    # control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt. Reset it before exec.
    command = [sys.executable, "-m", "hmviz", "study", "run", "spec.toml", "--out", "out", "--workers", "2", "--quiet"]
    as_from_a_terminal = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                          "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", as_from_a_terminal, *command], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "out" / "runs").glob("*/result.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "no run finished"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends SIGINT to the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    left = deadline = time.monotonic() + 15  # the resource tracker may take a moment to see its parent gone
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.2)
    assert left == []  # no worker outlived the command
    done = read_records(tmp_path / "out")
    assert 1 <= len(done) < 31 and len(pd.read_csv(tmp_path / "out" / "results.csv")) == len(done)


def _ablation_table() -> pd.DataFrame:
    rows = [("A+B+C", 3, 0.90, 0.01), ("A+B", 2, 0.895, 0.01), ("A+C", 2, 0.85, 0.02), ("B+C", 2, 0.80, 0.01),
            ("A", 1, 0.885, 0.005), ("B", 1, 0.70, 0.02), ("C", 1, 0.51, 0.03)]
    t = pd.DataFrame(rows, columns=["marks", "n_marks", "mean", "std"])
    t["metric"] = "test_auroc"
    return t


def test_subset_chart_sorts_marks_draws_all_marks_and_the_smallest_subset_within_the_margin():
    t = _ablation_table()
    fig = subset_chart(t, margin=0.02)
    main, chosen = fig.data  # no validation column: the choice is on test, and the legend says so
    assert list(main.y) == list(t.sort_values("mean")["marks"])  # best at the top
    np.testing.assert_allclose(main.error_x.array, t.sort_values("mean")["std"])
    assert list(chosen.y) == ["A"]  # 0.885 >= 0.90 - 0.02 with one mark
    assert main.name == "test (mean ± SD over seeds)"
    assert "chosen on test" in chosen.name
    assert list(subset_chart(t, margin=0.001).data[1].y) == ["A+B+C"]
    assert list(subset_chart(t, margin=0.01).data[1].y) == ["A+B"]
    ref = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(ref) == 1 and ref[0].x0 == pytest.approx(0.90)
    with pytest.raises(DataError, match="'metric'"):
        subset_chart(t.drop(columns="metric"))


def test_subset_chart_takes_a_masking_table():
    t = _ablation_table().drop(columns="std").rename(columns={"mean": "value"})
    fig = subset_chart(t)
    assert fig.data[0].error_x.array is None and list(fig.data[1].y) == ["A+B"]
    assert fig.data[0].name == "test"  # one evaluation: no "mean ± SD over seeds"
    assert fig.layout.annotations == ()  # one panel: no panel title (it sat on the legend)
    # the legend in the figure's pixels, between the title and the plot area (its top margin)
    assert fig.layout.legend.yref == "container"
    assert 40 <= (1 - fig.layout.legend.y) * fig.layout.height <= fig.layout.margin.t - 40
