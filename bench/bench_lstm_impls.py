"""Does the compiled LSTM kernel earn its keep? AttentiveChrome's bin-level BiLSTMs, three ways.

Usage::

    python bench/bench_lstm_impls.py [--genes 1024] [--reps 7] [--threads 1]

Times ``PerMarkBiLSTM`` (5 marks x 2 directions, hidden 32, 100 bins; AttentiveChrome's shape) with
each ``impl``: ``native`` (hmviz's compiled kernel), ``grouped`` (hmviz's eager recurrence, the
fallback) and ``per_mark`` (PyTorch's own ``nn.LSTM``, its fused oneDNN kernel, one call per mark),
for a training pass (forward + backward, batch 64) and an inference pass (batch 128) over
``--genes`` genes, and the whole AttentiveChrome training step the same way. The three are timed in
turn within each repetition and the best of ``--reps`` is kept, so a shared, busy machine slows
them alike and the ratios hold; quote ``uptime`` beside the figures. Prints a table, writes JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    from hmviz.models import _native, build_model
    from hmviz.models._recurrent import PerMarkBiLSTM

    torch.set_num_threads(args.threads)
    impls = [i for i in ("native", "grouped", "per_mark") if i != "native" or _native.load() is not None]
    torch.manual_seed(0)
    n_marks, n_bins, hidden, train_batch, eval_batch = 5, 100, 32, 64, 128
    x = torch.randn(args.genes, n_bins, n_marks)
    y = (torch.rand(args.genes) > 0.5).float()
    lstm = {i: PerMarkBiLSTM(n_marks, hidden, impl=i) for i in impls}
    for i in impls[1:]:
        lstm[i].load_state_dict(lstm[impls[0]].state_dict())
    model = {i: build_model("attentivechrome", n_marks=n_marks, n_bins=n_bins, bin_lstm_impl=i)[0] for i in impls}

    def lstm_train(i: str) -> None:
        for s in range(0, args.genes, train_batch):
            lstm[i](x[s:s + train_batch]).sum().backward()

    def lstm_infer(i: str) -> None:
        with torch.inference_mode():
            for s in range(0, args.genes, eval_batch):
                lstm[i](x[s:s + eval_batch])

    def model_train(i: str) -> None:
        m = model[i].train()
        for s in range(0, args.genes, train_batch):
            nn.functional.binary_cross_entropy_with_logits(m(x[s:s + train_batch]), y[s:s + train_batch]).backward()

    tasks = {"bilstm_train_pass": lstm_train, "bilstm_inference_pass": lstm_infer, "model_train_pass": model_train}
    best = {(t, i): float("inf") for t in tasks for i in impls}
    for fn in tasks.values():
        for i in impls:
            fn(i)  # warm-up
    for _ in range(args.reps):
        for t, fn in tasks.items():
            for i in impls:
                t0 = time.perf_counter()
                fn(i)
                best[(t, i)] = min(best[(t, i)], time.perf_counter() - t0)
    load = os.getloadavg()
    print(f"{args.genes} genes, best of {args.reps}, {args.threads} torch thread(s), load {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f}, torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'seconds':<24}" + "".join(f"{i:>12}" for i in impls) + "".join(f"{i + '/native':>18}" for i in impls[1:]))
    rows = {}
    for t in tasks:
        rows[t] = {i: round(best[(t, i)], 4) for i in impls}
        ratios = "".join(f"{best[(t, i)] / best[(t, 'native')]:>18.2f}" for i in impls[1:]) if "native" in impls else ""
        print(f"{t:<24}" + "".join(f"{best[(t, i)]:>12.3f}" for i in impls) + ratios)
    if "native" not in impls:
        print(f"(native not timed: {_native.unavailable_reason()})")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lstm_impls.json").write_text(json.dumps({"genes": args.genes, "reps": args.reps, "threads": args.threads,
                                                      "load": load, "seconds": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
