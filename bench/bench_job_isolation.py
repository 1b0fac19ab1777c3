"""Does a training job hold up the pages? This process plays the app server: it runs pages (Streamlit's
AppTest, bundled models, no browser) while one DeepChrome training runs in the app's job pool, either
as a thread of this process (how the app ran jobs before) or in its own process (``hmviz_app.jobs``
now), or with no job at all. The three conditions alternate, round after round, so the machine's
other load weighs on all three alike; the table gives each page's median seconds per condition and
its ratio to no job.

    python bench/bench_job_isolation.py [--rounds 3] [--pages data gene_pairs]

Not a timed test: prints a table and writes ``bench/results/job_isolation.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hmviz.runtime import configure_openmp  # noqa: E402

configure_openmp()  # as app.py does, before torch loads

from _results import write_results  # noqa: E402

CONDITIONS = ("no job", "job in a thread", "job in a process")


def _start(mode: str, out_dir: Path):
    """A long DeepChrome training in the app's pool, running (past its data preparation) on return."""
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset
    from hmviz.options import TrainOptions
    from hmviz_app.job_targets import train_and_save
    from hmviz_app.jobs import Job, pool

    options = TrainOptions(model="deepchrome", epochs=1000, patience=0, seed=1)
    job = Job("train", "bench training", train_and_save, args=(read_dataset(SAMPLE_DIR), options, out_dir / mode.split()[-1]),
              process=mode == "job in a process")
    pool().submit(job)
    deadline = time.monotonic() + 300
    while job.last is None and job.running and time.monotonic() < deadline:
        time.sleep(0.2)
    if job.last is None:
        sys.exit(f"the training did not start: {job.status} {job.error}")
    return job


def _stop(job) -> None:
    job.cancel.set()
    while job.running:
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pages", nargs="+", default=["data", "gene_pairs", "evaluate"])
    args = ap.parse_args()
    from streamlit.testing.v1 import AppTest

    def visit(page: str) -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
        t0 = time.perf_counter()
        at.switch_page(f"pages/{page}.py").run()
        seconds = time.perf_counter() - t0
        if at.exception:
            sys.exit(f"{page}: {at.exception[0].value}")
        return seconds

    for page in args.pages:  # warm: imports, bundled models, caches
        visit(page)
    times = {c: {p: [] for p in args.pages} for c in CONDITIONS}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for condition in CONDITIONS:
                job = None if condition == "no job" else _start(condition, Path(tmp) / f"r{r}")
                for page in args.pages:
                    times[condition][page].append(visit(page))
                    print(f"round {r + 1} {condition:17s} {page:12s} {times[condition][page][-1]:6.2f} s",
                          file=sys.stderr, flush=True)
                loads.append(os.getloadavg()[0])
                if job is not None:
                    epochs = len(job.history)
                    _stop(job)
                    print(f"  (the training reached epoch {epochs}; {job.status})", file=sys.stderr, flush=True)
    from hmviz_app.jobs import pool

    pool().close()
    print(f"1-minute load average while measuring: {min(loads):.1f} to {max(loads):.1f} ({os.cpu_count()} cores)")
    print(f"{'page':12s} " + " ".join(f"{c:>17s}" for c in CONDITIONS) + "   (median seconds; x ratio to no job)")
    for page in args.pages:
        base = statistics.median(times["no job"][page])
        cells = [f"{statistics.median(times[c][page]):7.2f} (x{statistics.median(times[c][page]) / base:4.1f})"
                 for c in CONDITIONS]
        print(f"{page:12s} " + " ".join(f"{c:>17s}" for c in cells))
    write_results("job_isolation.json", {"times_s": times, "load": loads, "rounds": args.rounds,
                                         "cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
