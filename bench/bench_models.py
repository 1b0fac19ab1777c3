"""Benchmark of the model zoo: speed on the standard shape, accuracy over seeds next to baselines.

Usage::

    python bench/bench_models.py speed  [--device cpu|cuda] [--models a,b]   # s/epoch, peak memory
    python bench/bench_models.py accuracy [--seeds 5] [--models a,b]        # test AUROC / pairwise acc.
    python bench/bench_models.py accuracy-deepdiff [--seeds 5] [--set variant=aux]  # DeepDiff: Pearson r, direction AUROC
    python bench/bench_models.py eval-batch [--models a,b]                  # inference s by batch size
    python bench/bench_models.py lstm-floor                                 # AttentiveChrome's LSTM-kernel floor
    python bench/bench_models.py contention [--models a,b] [--genes 1000]   # s/epoch alone and beside a 2nd job
    python bench/bench_models.py results [--seeds 5] [--splits file,random,chromosome] [--deepdiff-seeds N]
                                                                             # docs/results.md: real data, every family

``speed``: every model on the standard shape (6,601 genes x 100 bins x 5 marks, generated), one
process per model so peak memory is that model's own. An "epoch" is what the issue defines: a
training pass over 6,601 genes plus validation and test passes over 6,601 genes each (the median of
3 epochs after a warm-up epoch). Rankers train on ``pairs_per_gene`` x 6,601 pairs per epoch, drawn
within each batch of genes (the default) or, with ``--pair-sampling global``, from all training genes.

``accuracy``: on ../shared/data/remc-E123-deepchrome (600 K562 genes, the file's split) and on
sample_data/ (3,000 synthetic genes), test AUROC and pairwise accuracy over N seeds (mean and
standard deviation) for every single-cell model and both baselines on the same split, next to the
published numbers in ../shared/data/published/.

``lstm-floor``: only AttentiveChrome's bin-level LSTMs (5 x ``nn.LSTM(1, 32, bidirectional)``,
PyTorch's fused oneDNN kernels), forward+backward over 6,601 genes at two training batch sizes and
forward-only over 6,601 genes at two inference batch sizes. The best training pass plus two best
inference passes is the time one epoch spends in these kernels alone, whatever code surrounds
them: a floor under AttentiveChrome's seconds per epoch on this machine (the mark-level LSTM,
attention, optimiser and data movement come on top). Each round also times the whole model's epoch
with each ``bin_lstm_impl`` (``native``, hmviz's compiled kernel and the CPU default where it can be
built; ``grouped``, hmviz's batched recurrence in eager PyTorch; ``per_mark``, the fused kernels; in
process, so they are comparable within the round), the compiled and the grouped recurrences' own
LSTM passes (``native_*``, ``grouped_*``), and bf16 kernels for scale.

It also prices an ideal hand-written kernel (``components``): the epoch's recurrent matrix products
run as ONE batched matmul per time step for all 5 x 2 LSTMs (``torch.bmm`` at these shapes, timed:
the forward ``h @ W_hh``, the training backward ``dgates @ W_hh`` per step and one ``h^T @ dgates``
per batch), plus the epoch's gate activations (4H sigmoids and tanhs per step and H for ``tanh(c)``,
over the training forward and two inference passes) at the per-element speed of PyTorch's
vectorised sigmoid on a large contiguous tensor (a tanh counted as one sigmoid, as a fused kernel
would compute it). Everything else an LSTM does (input projection, cell arithmetic, the backward's
element-wise work) and the rest of the model are left out, so no kernel built on these routines
can beat this figure.

``contention``: seconds per epoch (training pass + validation pass over ``--genes`` genes each,
the median of the epochs after a warm-up epoch) of each model run alone and as one of two identical
jobs started together, with torch's default thread count ("before": one thread per core) and with
:func:`hmviz.runtime.apply_threads` ("after": the free cores shared among the jobs; the two-job
runs pass ``concurrent_jobs=2`` as an app running two jobs does). Each job is its own process, with
``OMP_NUM_THREADS`` and ``HMVIZ_THREADS`` removed from its environment.

``results``: ``accuracy`` on the real single-cell set (``remc-E123-deepchrome``) and
``accuracy-deepdiff`` on the real pair (``deepdiff-E123-E003``), default settings, once per split
kind (the file's split; a random split drawn from each seed; a chromosome hold-out where every gene
has a chromosome, and a note saying so where not), and writes the table to ``docs/results.md``
beside the published numbers of :mod:`hmviz.published`, with the command, the date and ``uptime``.
(``deepchrome-toy`` is left out: 10 genes per split.)

Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# hmviz's OpenMP waiting policy (passive after a short spin) must be set before torch loads OpenMP.
# Importing torch first left the timed processes with OMP_WAIT_POLICY=PASSIVE and no spin (inherited
# from this script), which made AttentiveChrome about 4x slower.
from hmviz.runtime import configure_openmp  # noqa: E402

configure_openmp()
from _results import write_results  # noqa: E402

from hmviz.models.baselines import BASELINE_WORDS  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SINGLE_CELL = ["deepchrome", "attentivechrome", "simplechrome", "ranker-deepchrome", "ranker-attentivechrome"]
ALL = SINGLE_CELL + ["deepdiff"]
N_GENES = 6601


def _standard_dataset(n_genes: int, seed: int = 0, two_cells: bool = False):
    """Counts shaped like REMC data: 3 x n_genes genes (train/valid/test), 100 bins, 5 marks."""
    import numpy as np

    from hmviz.data.dataset import HistoneDataset, MultiCellDataset

    rng = np.random.default_rng(seed)
    n = 3 * n_genes

    def cell(name):
        signal = rng.negative_binomial(1.5, 0.5, size=(n, 100, 5)).astype(np.float32)
        expression = np.expm1(rng.normal(2, 1.5, n)).clip(0)
        return HistoneDataset(signal=signal, gene_ids=[f"G{i}" for i in range(n)],
                              marks=("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"),
                              expression=expression, split=np.repeat(["train", "valid", "test"], n_genes),
                              cell=name, source="bench")
    if two_cells:
        return MultiCellDataset({"A": cell("A"), "B": cell("B")})
    return cell("A")


def speed_one(name: str, device: str, pair_sampling: str = "within-batch") -> dict:
    """One model's epoch time and peak memory (run in its own process)."""
    import torch

    from hmviz.options import TrainOptions
    from hmviz.training import train

    ds = _standard_dataset(N_GENES, two_cells=(name == "deepdiff"))
    t0 = time.perf_counter()
    result = train(ds, TrainOptions(model=name, epochs=4, patience=0, seed=1, device=device,
                                    pair_sampling=pair_sampling))
    wall = time.perf_counter() - t0
    epochs = [h for h in result.history if h["stage"] == "train"]
    seconds = [h["seconds"] for h in epochs[1:]]  # skip the warm-up epoch
    # history seconds = train pass + validation pass; add one test pass, timed the same way (the
    # median of three, as the epoch time is the median of three epochs)
    task_test = statistics.median(_time_test_pass(result, ds, device) for _ in range(3))
    per_epoch = statistics.median(seconds) + task_test
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"model": name, "device": device, "seconds_per_epoch": round(per_epoch, 3),
           "train_plus_valid_s": round(statistics.median(seconds), 3), "test_pass_s": round(task_test, 3),
           "batch_size": result.model_card.run.batch_size, "peak_rss_mb": round(peak_mb, 1),
           "pair_sampling": result.model_card.run.pair_sampling,
           "total_wall_s": round(wall, 1), "threads": torch.get_num_threads(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
           "load_average_1min_after": round(os.getloadavg()[0], 2)}
    if device.startswith("cuda"):
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _time_test_pass(result, ds, device: str) -> float:
    import numpy as np
    import torch

    from hmviz.data.dataset import MultiCellDataset
    from hmviz.inference import EVAL_BATCH, prepare_inputs

    model, card = result.model, result.card
    dev = torch.device("cuda" if device.startswith("cuda") else "cpu")
    test = np.flatnonzero((ds.first if isinstance(ds, MultiCellDataset) else ds).split == "test")
    if isinstance(ds, MultiCellDataset):
        xa = prepare_inputs(card, ds.first.subset(test))
        xb = prepare_inputs(card, list(ds.cells.values())[1].subset(test))
        fn = lambda i: model(xa[i].to(dev), xb[i].to(dev))  # noqa: E731
    else:
        x = prepare_inputs(card, ds.subset(test))
        score = getattr(model, "score", model)
        fn = lambda i: score(x[i].to(dev))  # noqa: E731
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(test), EVAL_BATCH):
            fn(slice(s, s + EVAL_BATCH))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_eval_batch(models: list[str], sizes=(64, 128, 256, 512, 1024), rounds: int = 2) -> list[dict]:
    """Inference seconds over 6,601 genes per batch size (how ``hmviz.inference.EVAL_BATCH`` was chosen)."""
    import torch

    from hmviz.models import build_model

    x = torch.randn(N_GENES, 100, 5)
    nets = {name: build_model(name, n_marks=5, n_bins=100)[0].eval() for name in models}
    best: dict = {}
    for _ in range(rounds):  # interleaved rounds; the best of each is kept
        for name, net in nets.items():
            score = getattr(net, "score", net)
            for size in sizes:
                t0 = time.perf_counter()
                with torch.inference_mode():
                    for s in range(0, N_GENES, size):
                        score(x[s:s + size])
                seconds = time.perf_counter() - t0
                best[name, size] = min(best.get((name, size), math.inf), seconds)
    print(f"\nInference over {N_GENES} genes (seconds, best of {rounds}) by batch size")
    print(f"{'model':24s} " + " ".join(f"{s:>7d}" for s in sizes))
    for name in models:
        print(f"{name:24s} " + " ".join(f"{best[name, s]:7.2f}" for s in sizes))
    return [{"model": name, "batch_size": s, "seconds": round(best[name, s], 3)} for name in models for s in sizes]


IMPLS_TIMED = ("native", "grouped", "per_mark")  # native: left out where it cannot be built


def run_lstm_floor(train_sizes=(64, 128), eval_sizes=(128, 512), rounds: int = 3) -> dict:
    """Seconds per epoch spent in AttentiveChrome's bin-level LSTM kernels alone (see the module doc).

    Each round times, one after the other in this process, the whole model's epoch (training pass
    at its batch size with Adam, two inference passes at ``EVAL_BATCH``) and the kernels alone, so
    their ratio is read within one round even though the machine's speed drifts between rounds.
    """
    import torch
    from torch import nn

    from hmviz.models import _native, build_model
    from hmviz.models._recurrent import PerMarkBiLSTM
    from hmviz.inference import EVAL_BATCH

    impls = tuple(i for i in IMPLS_TIMED if i != "native" or _native.load() is not None)
    own = tuple(i for i in ("native", "grouped") if i in impls)  # hmviz's own recurrences, timed alone
    torch.manual_seed(0)
    n_marks, n_bins, hidden = 5, 100, 32
    x = torch.randn(N_GENES, n_bins, n_marks)
    y = (torch.rand(N_GENES) > 0.5).float()
    models = {impl: build_model("attentivechrome", n_marks=n_marks, n_bins=n_bins, bin_lstm_impl=impl)
              for impl in impls}
    config = models[impls[0]][1]

    def model_epoch(impl: str):
        model = models[impl][0]
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        model.train()
        for s in range(0, N_GENES, config.batch_size):
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(x[s:s + config.batch_size]),
                                                                  y[s:s + config.batch_size])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            for _ in range(2):
                for s in range(0, N_GENES, EVAL_BATCH):
                    model(x[s:s + EVAL_BATCH])

    def train_pass(lstms, size, dtype):
        for s in range(0, N_GENES, size):
            xb = x[s:s + size].to(dtype)
            if isinstance(lstms, PerMarkBiLSTM):
                lstms(xb).sum().backward()
                continue
            states = [lstm(xb[:, :, i:i + 1])[0] for i, lstm in enumerate(lstms)]
            torch.stack(states).float().sum().backward()

    def eval_pass(lstms, size, dtype):
        with torch.inference_mode():
            for s in range(0, N_GENES, size):
                xb = x[s:s + size].to(dtype)
                if isinstance(lstms, PerMarkBiLSTM):
                    lstms(xb)
                    continue
                for i, lstm in enumerate(lstms):
                    lstm(xb[:, :, i:i + 1])

    def best_of(fn, reps: int = 5) -> float:
        fn()  # warm-up
        return min(timeit.repeat(fn, number=1, repeat=reps))

    def component_floor() -> tuple[float, float, float]:
        """(matmul s, activation s) per epoch for an ideal fused kernel (module doc), best bmm GFLOP/s."""
        g = 2 * n_marks  # LSTMs: marks x directions
        gflops: list[float] = []
        w, w_t = torch.randn(g, hidden, 4 * hidden), torch.randn(g, 4 * hidden, hidden)

        def matmuls(size: int, train: bool) -> float:
            n_batches = math.ceil(N_GENES / size)
            h, gates = torch.randn(g, size, hidden), torch.randn(g, size, 4 * hidden)
            step = best_of(lambda: torch.bmm(h, w), 50)
            gflops.append(2 * g * size * hidden * 4 * hidden / step / 1e9)
            if not train:
                return n_batches * n_bins * step
            step_back = best_of(lambda: torch.bmm(gates, w_t), 50)
            h_all, gates_all = torch.randn(g, hidden, n_bins * size), torch.randn(g, n_bins * size, 4 * hidden)
            weight_grad = best_of(lambda: torch.bmm(h_all, gates_all))
            return n_batches * (n_bins * (step + step_back) + weight_grad)

        matmul = min(matmuls(s, True) for s in train_sizes) + 2 * min(matmuls(s, False) for s in eval_sizes)
        a = torch.randn(1 << 22)
        out = torch.empty_like(a)
        per_element = best_of(lambda: torch.sigmoid(a, out=out)) / a.numel()
        activations = 3 * N_GENES * g * n_bins * 5 * hidden  # 3 forward passes; 4H gates + H tanh(c)
        return matmul, activations * per_element, max(gflops)

    per_round = []
    for r in range(rounds):
        row: dict = {"round": r + 1}
        for impl in impls[::1 if r % 2 == 0 else -1]:  # alternate which goes first
            t0 = time.perf_counter()
            model_epoch(impl)
            row[f"model_epoch_{impl}"] = time.perf_counter() - t0
        row["components_matmul"], row["components_activation"], row["bmm_gflops"] = component_floor()
        row["components"] = row["components_matmul"] + row["components_activation"]
        for dt, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)) + tuple((i, torch.float32) for i in own):
            lstms = (PerMarkBiLSTM(n_marks, hidden, impl=dt) if dt in own else
                     [nn.LSTM(1, hidden, bidirectional=True, batch_first=True).to(dtype) for _ in range(n_marks)])
            for kind, sizes, fn in (("train", train_sizes, train_pass), ("eval", eval_sizes, eval_pass)):
                for size in sizes:
                    t0 = time.perf_counter()
                    fn(lstms, size, dtype)
                    row[f"{dt}_{kind}_{size}"] = time.perf_counter() - t0
            row[f"{dt}_floor"] = (min(row[f"{dt}_train_{s}"] for s in train_sizes)
                                  + 2 * min(row[f"{dt}_eval_{s}"] for s in eval_sizes))
        per_round.append({k: round(v, 3) for k, v in row.items()})
    cols = [f"model_epoch_{impl}" for impl in impls] + [
        "float32_floor", "bfloat16_floor"] + [f"{i}_floor" for i in own] + [
        "components", "components_matmul", "components_activation", "bmm_gflops"] + [
        f"{dt}_{kind}_{s}" for dt in ("float32", "bfloat16") + own
        for kind, sizes in (("train", train_sizes), ("eval", eval_sizes)) for s in sizes]
    print(f"\nAttentiveChrome on the standard shape ({N_GENES} genes per pass), seconds, "
          f"{torch.get_num_threads()} threads. model_epoch: the whole model, a training pass at batch "
          f"{config.batch_size} + 2 inference passes at {EVAL_BATCH}, bin_lstm_impl={' / '.join(impls)}. "
          f"*_floor: the bin-level BiLSTMs alone ({n_marks} x LSTM(1->{hidden})), best training pass + 2 best "
          f"inference passes, in PyTorch's fused kernels (float32, bfloat16) or hmviz's {' and '.join(own)} recurrence; "
          f"components: an ideal fused kernel's batched matmuls + activations only (module doc); "
          f"*_train_B / *_eval_B: kernel-only passes at batch B.")
    widths = [max(16, len(c)) for c in cols]
    print("round " + " ".join(f"{c:>{w}s}" for c, w in zip(cols, widths)))
    for row in per_round:
        print(f"{row['round']:5d} " + " ".join(f"{row[c]:{w}.2f}" for c, w in zip(cols, widths)))
    return {"threads": torch.get_num_threads(), "model_batch_size": config.batch_size, "eval_batch": EVAL_BATCH,
            "rounds": per_round, "load_average_1min_after": round(os.getloadavg()[0], 2)}


def run_speed(models: list[str], device: str, pair_sampling: str = "within-batch") -> list[dict]:
    rows = []
    for name in models:
        proc = subprocess.run([sys.executable, __file__, "_speed_one", name, "--device", device,
                               "--pair-sampling", pair_sampling],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            rows.append({"model": name, "device": device, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"\nSpeed on the standard shape: {N_GENES} genes x 100 bins x 5 marks per split "
          f"(epoch = train pass + valid pass + test pass), device {device}")
    print(f"{'model':24s} {'s/epoch':>8s} {'train+valid':>11s} {'test':>6s} {'batch':>6s} {'peak RSS MB':>12s} {'load':>5s}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:24s} error: {r['error']}")
            continue
        print(f"{r['model']:24s} {r['seconds_per_epoch']:8.2f} {r['train_plus_valid_s']:11.2f} "
              f"{r['test_pass_s']:6.2f} {r['batch_size']:6d} {r['peak_rss_mb']:12.0f} "
              f"{r['load_average_1min_after']:5.1f}")
    return rows


def contention_one(name: str, threads: str, jobs: int, n_genes: int, epochs: int = 3) -> dict:
    """One job of the contention benchmark (run in its own process): median s/epoch after a warm-up."""
    import torch

    from hmviz.runtime import apply_threads
    from hmviz.options import TrainOptions
    from hmviz.training import train

    n_threads = apply_threads(concurrent_jobs=jobs) if threads == "recommended" else torch.get_num_threads()
    ds = _standard_dataset(n_genes)
    result = train(ds, TrainOptions(model=name, epochs=epochs, patience=0, seed=1, device="cpu"))
    seconds = [h["seconds"] for h in result.history if h["stage"] == "train"][1:]
    return {"model": name, "threads_policy": threads, "threads": n_threads, "jobs": jobs,
            "seconds_per_epoch": round(statistics.median(seconds), 3), "epochs_timed": len(seconds),
            "load_average_1min_after": round(os.getloadavg()[0], 2)}


def run_contention(models: list[str], n_genes: int) -> list[dict]:
    """Each model alone and beside a second identical job, before/after hmviz's thread choice."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "HMVIZ_THREADS")}
    rows = []
    for name in models:
        for threads in ("default", "recommended"):
            for jobs in (1, 2):
                load_before = round(os.getloadavg()[0], 2)
                procs = [subprocess.Popen([sys.executable, __file__, "_contention_one", name, "--threads", threads,
                                           "--jobs", str(jobs), "--genes", str(n_genes)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
                         for _ in range(jobs)]
                outs = [p.communicate() for p in procs]
                for p, (out, err) in zip(procs, outs):
                    if p.returncode != 0:
                        print(err[-2000:], file=sys.stderr)
                        raise SystemExit(f"contention job {name}/{threads}/{jobs} failed")
                runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
                row = {"model": name, "threads_policy": threads, "jobs": jobs, "threads": runs[0]["threads"],
                       "seconds_per_epoch": round(statistics.mean(r["seconds_per_epoch"] for r in runs), 3),
                       "per_job": [r["seconds_per_epoch"] for r in runs], "load_average_1min_before": load_before,
                       "load_average_1min_after": max(r["load_average_1min_after"] for r in runs)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    from hmviz.runtime import available_cores

    print(f"\nSeconds per epoch (train + validation pass, {n_genes} genes each), {available_cores()} cores; "
          "'2 jobs' = mean of two identical jobs started together")
    print(f"{'model':18s} {'threads':>12s} {'n':>3s} {'alone':>8s} {'2 jobs':>8s} {'load before':>12s}")
    for name in models:
        for threads in ("default", "recommended"):
            alone, two = (next(r for r in rows if r["model"] == name and r["threads_policy"] == threads
                               and r["jobs"] == j) for j in (1, 2))
            print(f"{name:18s} {threads:>12s} {alone['threads']:>3d} {alone['seconds_per_epoch']:8.2f} "
                  f"{two['seconds_per_epoch']:8.2f} {alone['load_average_1min_before']:>5.2f}/{two['load_average_1min_before']:<5.2f}")
    return rows


def _published() -> dict:
    import pandas as pd

    out = {}
    path = SHARED / "published" / "deepchrome_auc_per_celltype_CellInfo.csv"
    if path.exists():
        table = pd.read_csv(path)
        row = table[table["eid"] == "E123"]
        if len(row):
            out["DeepChrome E123 test AUROC (full gene set, published)"] = float(row["deepchrome_test_auc"].iloc[0])
    path = SHARED / "published" / "attentivechrome_neurips2017_poster_summary.csv"
    if path.exists():
        table = pd.read_csv(path).set_index("statistic")
        out["AttentiveChrome mean AUROC over 56 cell types (published)"] = float(table.loc["mean_auc_56_celltypes", "AttentiveChrome"])
    return out


#: The coarse copies of E123 and E003 (``--datasets e123-coarse,e003-coarse``): bins per gene, and the settings a
#: family needs there.
COARSE_BINS = 10
COARSE_SETTINGS = {"deepchrome": ["kernel_size=3", "pool_size=2"], "ranker-deepchrome": ["kernel_size=3", "pool_size=2"]}


def coarse_bins(ds, n_bins: int):
    """``ds`` with its bins summed into ``n_bins`` wider ones (read counts add up; the TSS keeps its place)."""
    factor, rest = divmod(ds.n_bins, n_bins)
    if rest or ds.tss_bin % factor:
        raise ValueError(f"{ds.n_bins} bins (TSS at bin {ds.tss_bin}) do not group into {n_bins}")
    return ds.merge_bins(factor)


SINGLE_CELL_KEYS = ("test_auroc", "test_pairwise_accuracy", "test_accuracy", "best_epoch", "epochs_run", "epochs_max",
                    "valid_auroc", "valid_pairwise_accuracy", "valid_loss")


def accuracy_datasets(which) -> dict:
    """The datasets of ``--datasets`` (``e123``, ``e003``, ``e123-coarse``, ``e003-coarse``, ``sample``, and the
    two-cell ``e123-e003``) that are present, by their table name: ``(dataset, how)`` with ``how["settings"]``
    the families' settings there."""
    from hmviz.data import read_dataset

    datasets = {}
    if "e123" not in which:
        pass
    elif (SHARED / "remc-E123-deepchrome").exists():
        datasets["E123 (600 genes)"] = (SHARED / "remc-E123-deepchrome", {})
    else:
        print("../shared/data/remc-E123-deepchrome not found: E123 skipped", file=sys.stderr)
    if "e003" in which and (SHARED / "deepdiff-E123-E003").exists():
        # H1 (E003), the second cell of the DeepDiff pair: 600 genes in 200 bins, labels from the median
        # expression of its training genes (a cell type no setting was chosen on before)
        datasets["E003 (600 genes)"] = (SHARED / "deepdiff-E123-E003", {"cell": "Cell2"})
    # issue 15's genome-wide set had 10 bins per gene: the 100-bp bins summed into 10 (E123: 100 bins into 10
    # of 1 kb; E003: 200 into 10 of 2 kb); DeepChrome's kernel of 10 and pool of 5 need 14 bins, so kernel 3
    # and pool 2 there, set once a priori
    if "e123-coarse" in which and (SHARED / "remc-E123-deepchrome").exists():
        datasets[f"E123 in {COARSE_BINS} bins of 1 kb (600 genes)"] = (
            SHARED / "remc-E123-deepchrome", {"coarse": COARSE_BINS, "settings": COARSE_SETTINGS})
    if "e003-coarse" in which and (SHARED / "deepdiff-E123-E003").exists():
        datasets[f"E003 in {COARSE_BINS} bins of 2 kb (600 genes)"] = (
            SHARED / "deepdiff-E123-E003", {"cell": "Cell2", "coarse": COARSE_BINS, "settings": COARSE_SETTINGS})
    if "sample" in which:
        datasets["sample_data"] = (ROOT / "sample_data", {})
    if "e123-e003" in which and (SHARED / REAL_PAIR).exists():  # both cells, for DeepDiff
        datasets["E123 vs E003 (600 genes)"] = (SHARED / REAL_PAIR, {"pair": True})
    out = {}
    for dname, (path, how) in datasets.items():
        ds = read_dataset(path)
        if "cell" in how:
            ds = ds.cells[how["cell"]]
        if "coarse" in how:
            ds = coarse_bins(ds, how["coarse"])
        out[dname] = (ds, how)
    return out


def run_accuracy(models: list[str], seeds: int, which: list[str] = ("e123", "sample"),
                 pair_sampling: str = "within-batch", select_on: str | None = None, split: str = "auto",
                 baselines: bool = True, first_seed: int = 1, settings: list[str] = ()) -> dict:
    """Test metrics of every single-cell family and both baselines over ``seeds`` seeds.

    ``select_on`` None: the training default (``TrainOptions.select_on``). ``split``: as ``train
    --split`` (``auto``: the file's split); a random or chromosome split is drawn from each seed.
    ``settings``: model settings as for ``python -m hmviz train --set``, given to every deep model
    (a setting search on validation: the validation metric is reported beside the test one).
    """
    from hmviz.baselines import train_baseline
    from hmviz.models import parse_settings
    from hmviz.options import TrainOptions
    from hmviz.training import train

    results: dict = {}
    for dname, (ds, how) in accuracy_datasets(which).items():
        results[dname] = {}
        with_baselines = baselines and not os.environ.get("HMVIZ_BENCH_NO_BASELINES")
        for name in models + (["logistic", "boosted-trees"] if with_baselines else []):
            values: dict[str, list[float]] = {k: [] for k in SINGLE_CELL_KEYS}
            t0 = time.perf_counter()
            for seed in range(first_seed, first_seed + seeds):
                if name in ("logistic", "boosted-trees"):
                    m = train_baseline(ds, name, TrainOptions(model="deepchrome", seed=seed, split=split))
                else:
                    kw = {"select_on": select_on} if select_on else {}
                    own = [*how.get("settings", {}).get(name, ()), *settings]
                    r = train(ds, TrainOptions(model=name, seed=seed, device="cpu", pair_sampling=pair_sampling,
                                               split=split, model_overrides=parse_settings(name, own), **kw))
                    kept = [h for h in r.model_card.history
                            if h.get("stage") == "train" and h.get("epoch") == r.metrics.get("best_epoch")]
                    m = {**r.metrics, "epochs_run": r.model_card.run.epochs_run,
                         "epochs_max": r.model_card.run.epochs_max,
                         **({"valid_loss": kept[0]["valid_loss"]} if kept and "valid_loss" in kept[0] else {})}
                for k in values:
                    if k in m:
                        values[k].append(m[k])
            summary = _summary(values, time.perf_counter() - t0)
            results[dname][name] = summary
            print(f"{dname} {name}: {json.dumps({k: v for k, v in summary.items() if k != 'values'})}",
                  file=sys.stderr, flush=True)
    published = _published()
    print(f"\nTest metrics over {seeds} seeds (mean ± sd); baselines on the same split and labels")
    for dname, rows in results.items():
        print(f"\n{dname}")
        print(f"{'model':24s} {'valid AUROC':>16s} {'test AUROC':>16s} {'pairwise acc.':>16s} {'seconds':>8s}")
        for name, s in rows.items():
            def fmt(k):
                return f"{s[k]['mean']:.4f} ± {s[k]['sd']:.4f}" if k in s else "-"
            print(f"{name:24s} {fmt('valid_auroc'):>16s} {fmt('test_auroc'):>16s} {fmt('test_pairwise_accuracy'):>16s}"
                  f" {s['seconds']:8.1f}")
    print()
    for k, v in published.items():
        print(f"{k}: {v}")
    return {"seeds": seeds, "first_seed": first_seed, "pair_sampling": pair_sampling, "settings": list(settings),
            "select_on": select_on or "default", "split": split,
            "results": results, "published": published}


def run_accuracy_deepdiff(seeds: int, which: list[str], settings: list[str], split: str = "auto",
                          models: tuple[str, ...] = ("deepdiff", "logistic", "boosted-trees"),
                          first_seed: int = 1) -> dict:
    """DeepDiff's test Pearson r and direction AUROC over seeds, on the real and the generated two-cell data.

    ``settings``: model settings as for ``python -m hmviz train --set`` (none: the defaults).
    """
    from hmviz.data import read_dataset
    from hmviz.models import parse_settings
    from hmviz.baselines import train_baseline
    from hmviz.options import TrainOptions
    from hmviz.training import train

    overrides = parse_settings("deepdiff", settings)
    datasets = {}
    if "e123" in which:
        if (SHARED / "deepdiff-E123-E003").exists():
            datasets["E123 vs E003 (600 genes)"] = SHARED / "deepdiff-E123-E003"
        else:
            print("../shared/data/deepdiff-E123-E003 not found: skipped", file=sys.stderr)
    if "sample" in which:
        datasets["sample_data/two_cells (1,000 genes)"] = ROOT / "sample_data" / "two_cells"
    keys = DEEPDIFF_KEYS
    results: dict = {}
    for dname, path in datasets.items():
        ds = read_dataset(path)
        results[dname] = {}
        for name in models:  # "logistic" is ridge regression here
            values: dict[str, list[float]] = {k: [] for k in keys}
            t0 = time.perf_counter()
            for seed in range(first_seed, first_seed + seeds):
                options = TrainOptions(model="deepdiff", seed=seed, device="cpu", model_overrides=overrides,
                                       split=split)
                m = train(ds, options).metrics if name == "deepdiff" else train_baseline(ds, name, options)
                for k in keys:
                    if k in m:
                        values[k].append(m[k])
            results[dname][name] = _summary(values, time.perf_counter() - t0)
            print(f"{dname} {name}: {json.dumps(results[dname][name])}", file=sys.stderr, flush=True)
    label = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
    print(f"\nDeepDiff ({label}), test metrics over {seeds} seeds (mean ± sd); baselines on the same split")
    print(f"{'data / model':44s} " + " ".join(f"{k:>22s}" for k in keys) + f" {'seconds':>8s}")
    for dname, rows in results.items():
        for name, r in rows.items():
            print(f"{dname[:28] + ' ' + BASELINE_NAMES.get(name, name):44s} "
                  + " ".join(f"{r[k]['mean']:>13.3f} ± {r[k]['sd']:.3f}" if k in r else f"{'-':>22s}" for k in keys)
                  + f" {r['seconds']:8.1f}")
    return {"seeds": seeds, "first_seed": first_seed, "settings": overrides, "split": split, "results": results}


DEEPDIFF_KEYS = ("test_pearson_r", "test_r2", "test_mse", "test_slope", "test_direction_auroc", "best_epoch")
#: What the baselines are, by task: a binary model's "logistic" is logistic regression, DeepDiff's is ridge.
BASELINE_NAMES = {"logistic": "ridge regression", "boosted-trees": "boosted trees (regression)"}


def _summary(values: dict[str, list[float]], seconds: float) -> dict:
    out = {k: {"mean": round(statistics.mean(v), 4), "sd": round(statistics.stdev(v), 4) if len(v) > 1 else 0.0,
               "values": v} for k, v in values.items() if v}
    out["seconds"] = round(seconds, 1)
    return out


RESULTS_DOC = ROOT / "docs" / "results.md"


def _cell(summary: dict, key: str) -> str:
    if key not in summary:
        return "-"
    v = summary[key]
    return f"{v['mean']:.3f} ± {v['sd']:.3f}"


SPLIT_WORDS = {
    "file": "the file's own train/valid/test split (the same genes for every seed)",
    "random": "a random split by gene, drawn from each seed (70/15/15, stratified by label or expression quantile)",
    "chromosome": "whole chromosomes held out for validation and test, chosen from each seed",
}


def render_results(single: dict, differential: dict, command: str, load: str, notes: list[str] = ()) -> str:
    """docs/results.md from ``run_accuracy`` and ``run_accuracy_deepdiff`` outputs (pure; tested).

    ``single`` and ``differential`` map a split kind (``file``, ``random``, ``chromosome``) to one
    run's output; ``notes`` are sentences on what was not measured and why.
    """
    from hmviz.published import published_for

    runs = [*single.values(), *differential.values()]
    seeds = next((r["seeds"] for r in runs if r.get("seeds")), 0)
    kinds = list(dict.fromkeys([*single, *differential]))
    lines = ["# Results on real data", "",
             f"Regenerate with `{command}` (written by `bench/bench_models.py`; do not edit by hand).", "",
             f"Default settings, seeds 1-{seeds}, mean ± standard deviation over the seeds. Splits: "
             + "; ".join(f"**{k}**: {SPLIT_WORDS.get(k, k)}" for k in kinds) + ". "
             "Baselines are fitted on exactly the same genes, labels and input transform as the deep models. "
             "Test accuracy is at the model's decision threshold (logit 0), not recalibrated on validation genes. "
             f"{load}", ""]
    lines += [f"* {note}" for note in notes] + ([""] if notes else [])
    for kind, run in single.items():
        for dname, rows in run.get("results", {}).items():
            lines += [f"## {dname}, {kind} split: expressed or not ({LABEL_WORDS.get(dname, 'binary labels')})", "",
                      "| model | test AUROC | test accuracy | pairwise accuracy | best epoch | epochs run (cap) "
                      "| seconds, all seeds | published test AUROC |",
                      "|---|---|---|---|---|---|---|---|"]
            for name, r in rows.items():
                pub = published_for(name)
                cell = dname.split()[0]  # "E123 (600 genes)" -> E123
                same = [p for p in pub if cell in p.data]
                other = [p for p in pub if cell not in p.data]
                cite = "; ".join([f"{p.value:.3f} ({p.data}, all genes; same cell type, different gene set)"
                                  for p in same] + [f"{p.value:.3f} ({p.data}; not the same data)" for p in other]) or "-"
                cap = f"{_cell(r, 'epochs_run')} ({int(r['epochs_max']['mean'])})" if "epochs_max" in r else "-"
                lines.append(f"| {BASELINE_NAMES_BINARY.get(name, name)} | {_cell(r, 'test_auroc')} | "
                             f"{_cell(r, 'test_accuracy')} | {_cell(r, 'test_pairwise_accuracy')} | "
                             f"{_cell(r, 'best_epoch')} | {cap} | {r.get('seconds', '-')} | {cite} |")
            lines.append("")
    for kind, run in differential.items():
        for dname, rows in run.get("results", {}).items():
            lines += [f"## {dname}, {kind} split: log2 fold change (DeepDiff)", "",
                      "| model | test Pearson r | test R² | test MSE | slope (pred. on measured) | direction AUROC "
                      "| best epoch | seconds, all seeds |",
                      "|---|---|---|---|---|---|---|---|"]
            for name, r in rows.items():
                lines.append(f"| {BASELINE_NAMES.get(name, name)} | " + " | ".join(_cell(r, k) for k in DEEPDIFF_KEYS)
                             + f" | {r.get('seconds', '-')} |")
            lines += ["", "No published DeepDiff numbers for this pair are in ../shared/data/published.", ""]
    lines += ["R² is the coefficient of determination, 1 - MSE / variance of the test targets (not Pearson r "
              "squared); the slope is the least-squares slope of predicted on measured log2 fold change.", ""]
    return "\n".join(lines)


#: The binary baselines, named for what they are.
BASELINE_NAMES_BINARY = {k: v for k, v in BASELINE_WORDS.items() if k != "ridge"}
REAL_SINGLE, REAL_PAIR = "remc-E123-deepchrome", "deepdiff-E123-E003"
SHARED_SETS = {"E123 (600 genes)": SHARED / REAL_SINGLE, "E123 vs E003": SHARED / REAL_PAIR}
#: How each real single-cell set's genes are labelled (the section titles of docs/results.md).
LABEL_WORDS = {"E123 (600 genes)": "binary labels of the file",
               "E003 (600 genes)": "expression above the median of the training genes; E003 of the DeepDiff pair"}
#: The real single-cell sets of ``results`` (``run_accuracy`` names).
RESULT_SETS = ("e123", "e003")


def chromosome_notes(paths: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(names of the sets whose genes all carry a chromosome, notes naming those that do not)."""
    from hmviz.data import read_dataset

    known, notes = [], []
    for label, path in paths.items():
        ds = read_dataset(path)
        first = getattr(ds, "first", ds)
        if first.chrom is not None:
            known.append(label)
        else:
            notes.append(f"No chromosome split for {label}: its files give gene ids only, no chromosome per gene.")
    return known, notes


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _results_part(part: tuple) -> tuple:
    """One piece of ``results`` (run in a worker process): ``(table, kind, output)``."""
    table, kind, names, seeds, first, data = part
    if table == "single":
        models = [n for n in names if n not in ("logistic", "boosted-trees")]
        out = run_accuracy(models, seeds, [data], split=kind, baselines=models != names, first_seed=first)
    else:
        out = run_accuracy_deepdiff(seeds, ["e123"], [], split=kind, models=tuple(names), first_seed=first)
    # kept if a later piece fails
    where = "" if data == "e123" else f"{data}_"
    write_results(f"models_results_part_{table}_{kind}_{where}{names[0]}_seed{first}.json", out)
    return table, kind, out


def _merge_seeds(a: dict, b: dict) -> dict:
    """One summary from two over disjoint seeds of the same model (the values, mean, SD and seconds)."""
    values = {k: a.get(k, {}).get("values", []) + b.get(k, {}).get("values", [])
              for k in {*a, *b} if k != "seconds"}
    return _summary(values, a.get("seconds", 0.0) + b.get("seconds", 0.0))


def merge_parts(outputs: list[tuple]) -> tuple[dict, dict]:
    """``(single, differential)`` by split kind from :func:`_results_part` outputs, rows in the order given;
    pieces of one model over different seeds become one row."""
    merged: dict = {"single": {}, "differential": {}}
    for table, kind, out in outputs:
        into = merged[table].setdefault(kind, {**out, "results": {}})
        for dname, rows in out["results"].items():
            held = into["results"].setdefault(dname, {})
            for name, summary in rows.items():
                held[name] = _merge_seeds(held[name], summary) if name in held else summary
        into["seeds"] = max(into.get("seeds", 0), out.get("seeds", 0) + out.get("first_seed", 1) - 1)
    return merged["single"], merged["differential"]


def run_results(seeds: int, splits: list[str], models: list[str], deepdiff_seeds: int | None, jobs: int = 1,
                random_models: list[str] | None = None) -> str:
    """Measure and write docs/results.md (see the module docstring).

    ``deepdiff_seeds`` 0: no DeepDiff; None: ``seeds``. ``jobs``: worker processes (each piece is one
    family on one split kind). ``random_models``: the families run on the random and chromosome
    splits (None: ``models`` and DeepDiff; DeepDiff only when named).
    """
    from concurrent.futures import ProcessPoolExecutor

    import hmviz.models  # noqa: F401  (loaded before the workers fork: they measure this code, not later edits)
    import hmviz.training  # noqa: F401

    started, up_before = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), _uptime()
    known, notes = chromosome_notes(SHARED_SETS)
    dd_seeds = seeds if deepdiff_seeds is None else deepdiff_seeds
    parts = []
    for kind in splits:
        family = models if kind == "file" or random_models is None else random_models
        with_deepdiff = kind == "file" or random_models is None or "deepdiff" in random_models
        family = [m for m in family if m != "deepdiff"]
        # a deep model's seeds are separate pieces (the workers share them out); the baselines are cheap
        for data in RESULT_SETS if kind == "file" else ("e123",):  # E003: the file split only, to fit the time
            if kind != "chromosome" or "E123 (600 genes)" in known:
                parts += [("single", kind, [m], 1, s, data) for m in family for s in range(1, seeds + 1)]
                parts += [("single", kind, ["logistic", "boosted-trees"], seeds, 1, data)]
            if kind != "file" and family != models:
                notes.append(f"{kind.capitalize()} split: only {', '.join(family)} and the baselines"
                             f"{'' if with_deepdiff else ' (no DeepDiff)'}, to fit the time.")
        if dd_seeds and with_deepdiff and (kind != "chromosome" or "E123 vs E003" in known):
            parts += [("differential", kind, ["deepdiff"], 1, s, "e123") for s in range(1, dd_seeds + 1)]
            parts += [("differential", kind, ["logistic", "boosted-trees"], dd_seeds, 1, "e123")]
    if "file" in splits:
        notes.append("E003 (600 genes): the file's split only, to fit the time.")
    if "chromosome" in splits and len(known) < 2:
        notes.append("A chromosome split is run only where every gene has a chromosome.")
    if dd_seeds == 0:
        notes.append("DeepDiff was not run (--deepdiff-seeds 0).")
    elif dd_seeds != seeds:
        notes.append(f"DeepDiff and its baselines over {dd_seeds} seed(s) only (1-{dd_seeds}), to fit the time.")
    # the longest pieces first (AttentiveChrome's LSTMs, then DeepDiff's), so that the workers finish together
    order = sorted(range(len(parts)), key=lambda i: ("attentivechrome" not in parts[i][2][0],
                                                     parts[i][2][0] != "deepdiff" or parts[i][1] != "file"))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = dict(zip(order, pool.map(_results_part, [parts[i] for i in order])))
    else:
        done = {i: _results_part(parts[i]) for i in order}
    single, differential = merge_parts([done[i] for i in range(len(parts))])
    command = f"python bench/bench_models.py results --seeds {seeds} --splits {','.join(splits)}"
    command += f" --models {','.join(models)}" if models != SINGLE_CELL else ""
    command += f" --random-models {','.join(random_models)}" if random_models is not None else ""
    command += f" --deepdiff-seeds {deepdiff_seeds}" if deepdiff_seeds is not None else ""
    command += f" --jobs {jobs}" if jobs > 1 else ""
    load = (f"Measured {started} to {time.strftime('%H:%M UTC', time.gmtime())} with HMVIZ_NATIVE="
            f"{os.environ.get('HMVIZ_NATIVE', 'unset')}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
            f"{jobs} worker process(es), on {os.cpu_count()} cores shared with other jobs; `uptime` before: "
            f"`{up_before}`; after: `{_uptime()}`.")
    text = render_results(single, differential, command, load, notes)
    RESULTS_DOC.parent.mkdir(exist_ok=True)
    RESULTS_DOC.write_text(text)
    write_results("models_results.json", {"single_cell": single, "differential": differential, "notes": notes})
    print(f"wrote {RESULTS_DOC}")
    return text


def render_saved_parts(command: str, load: str, notes: list[str]) -> str:
    """docs/results.md from the pieces a ``results`` run saved so far (``--render-parts``), for a run
    that could not finish in the time: the pieces that finished, each as measured, and ``notes``."""
    from _results import RESULTS

    outputs = []
    for path in sorted(RESULTS.glob("models_results_part_*.json")):
        table, kind = path.stem.split("_")[3:5]
        outputs.append((table, kind, json.loads(path.read_text())))

    def order(o):  # by table, split kind, then the families in their usual order, baselines last
        names = [row for rows in o[2]["results"].values() for row in rows]
        family = min((ALL.index(n) for n in names if n in ALL), default=len(ALL))
        return o[0], ["file", "random", "chromosome"].index(o[1]), family

    outputs.sort(key=order)
    single, differential = merge_parts(outputs)
    text = render_results(single, differential, command, load, [*notes, *chromosome_notes(SHARED_SETS)[1]])
    RESULTS_DOC.write_text(text)
    print(f"wrote {RESULTS_DOC} from {len(outputs)} pieces")
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["speed", "accuracy", "accuracy-deepdiff", "eval-batch", "lstm-floor",
                                    "contention", "results", "_speed_one", "_contention_one"])
    p.add_argument("name", nargs="?")
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", default="e123,sample",
                   help="accuracy: comma-separated, from e123,e003,e123-coarse,e003-coarse (10 bins per gene),sample; "
                   "accuracy-deepdiff: e123,sample")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="accuracy, accuracy-deepdiff: a model setting, as for 'python -m hmviz train --set' "
                        "(repeatable; accuracy: given to every deep model)")
    p.add_argument("--tag", default="", help="suffix for the JSON file name (keeps earlier results)")
    p.add_argument("--pair-sampling", default="within-batch", choices=["within-batch", "global"],
                   help="speed, accuracy: how the rankers draw their training pairs")
    p.add_argument("--select-on", default=None, choices=["loss", "metric"],
                   help="accuracy: keep the epoch with the best validation loss or metric (default: train's default)")
    p.add_argument("--genes", type=int, default=1000, help="contention: genes per split")
    p.add_argument("--splits", default="file,random,chromosome",
                   help="results: split kinds, from file,random,chromosome (chromosome only where the data has them)")
    p.add_argument("--deepdiff-seeds", type=int, default=None,
                   help="results: seeds for DeepDiff (default: --seeds; 0 leaves DeepDiff out)")
    p.add_argument("--threads", default="default", choices=["default", "recommended"], help=argparse.SUPPRESS)
    p.add_argument("--jobs", type=int, default=1,
                   help="results: worker processes (one family on one split kind each); contention: internal")
    p.add_argument("--render-parts", metavar="COMMAND", default=None,
                   help="results: write docs/results.md from the pieces saved so far, naming COMMAND as their source")
    p.add_argument("--note", action="append", default=[], help="results --render-parts: a note for the table (repeatable)")
    p.add_argument("--random-models", default=None,
                   help="results: families run on the random/chromosome splits (default: --models)")
    args = p.parse_args()
    if args.what == "_contention_one":
        print(json.dumps(contention_one(args.name, args.threads, args.jobs, args.genes)))
        return 0
    if args.what == "results" and args.render_parts:
        render_saved_parts(args.render_parts, f"`uptime` at rendering: `{_uptime()}`.", args.note)
        return 0
    if args.what == "results":
        run_results(args.seeds, args.splits.split(","), args.models.split(",") if args.models else SINGLE_CELL,
                    args.deepdiff_seeds, args.jobs, args.random_models.split(",") if args.random_models else None)
        return 0
    if args.what == "contention":
        models = args.models.split(",") if args.models else ["deepchrome", "attentivechrome"]
        rows = run_contention(models, args.genes)
        write_results(f"models_contention{args.tag}.json", rows)
        return 0
    if args.what == "_speed_one":
        print(json.dumps(speed_one(args.name, args.device, args.pair_sampling)))
        return 0
    if args.what == "eval-batch":
        models = args.models.split(",") if args.models else ["deepchrome", "attentivechrome"]
        rows = run_eval_batch(models)
        write_results("models_eval_batch.json", rows)
    elif args.what == "accuracy-deepdiff":
        out = run_accuracy_deepdiff(args.seeds, args.datasets.split(","), args.settings)
        write_results(f"models_accuracy_deepdiff{args.tag}.json", out)
    elif args.what == "lstm-floor":
        out = run_lstm_floor()
        write_results("models_lstm_floor.json", out)
    elif args.what == "speed":
        models = args.models.split(",") if args.models else ALL
        rows = run_speed(models, args.device, args.pair_sampling)
        write_results(f"models_speed_{args.device}{args.tag}.json", rows)
    else:
        models = args.models.split(",") if args.models else SINGLE_CELL
        out = run_accuracy(models, args.seeds, args.datasets.split(","), args.pair_sampling, args.select_on,
                           baselines=not args.settings, settings=args.settings)
        write_results(f"models_accuracy{args.tag}.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
