"""A fresh server's first page: how long a user waits for the Data page of an app that has just started.

Each run starts ``streamlit run app.py`` (the app's defaults), waits until it answers its health check,
loads the Data page by URL in Playwright's Chromium (a new browser context: nothing cached but the
browser's compiled code) until the page is served (:data:`bench_app_load.SERVED`), reads the server's own
run of the page (``HMVIZ_PAGE_TIMES``, :mod:`hmviz_app.timing`) and stops the server. ``--compare REV``
alternates the runs with the app at git revision ``REV`` (checked out in a temporary worktree), to measure a
change with the same command on the same machine.

Not a timed test: it prints a table and writes ``bench/results/first_page.json`` (``--out``).

    python bench/bench_first_page.py [--runs 4] [--compare HEAD~1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _results import write_results
from bench_app_load import PAGE_TIMEOUT_MS, by_url
from st_e2e import CHROMIUM, CHROMIUM_ARGS, RUN_COUNTER_JS, free_port, healthy


def first_page(browser, root: Path) -> dict:
    """One fresh server from ``root``: the Data page's phases by URL and the server's run of it."""
    port = free_port()
    url = f"http://localhost:{port}"
    with tempfile.TemporaryDirectory(prefix="hmviz-first-page-") as tmp:
        times = Path(tmp) / "times.jsonl"
        env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "HMVIZ_PAGE_TIMES": str(times)}
        env.pop("HMVIZ_TORCH_THREADS", None)
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--server.fileWatcherType", "none"], cwd=root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 120
            while not healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the server in {root} did not start")
                time.sleep(0.05)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.add_init_script(RUN_COUNTER_JS)
            phases = by_url(page, f"{url}/data", "Data", 1)
            context.close()
            runs = [json.loads(line) for line in times.read_text().splitlines() if line.strip()] if times.exists() else []
            phases["server_s"] = runs[0]["s"] if runs else float("nan")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a server that does not stop is killed, never waited on
                proc.kill()
                proc.wait()
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4, help="fresh servers per version")
    ap.add_argument("--compare", metavar="REV", help="also the app at this git revision, alternating the runs")
    ap.add_argument("--out", default="first_page.json", help="results file under bench/results/")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    roots = {"this tree": ROOT}
    worktree = None
    if args.compare:
        worktree = Path(tempfile.mkdtemp(prefix="hmviz-compare-"))
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), args.compare], cwd=ROOT, check=True)
        roots = {args.compare: worktree, **roots}
    results: dict[str, list[dict]] = {name: [] for name in roots}
    out = {"load_before": os.getloadavg(), "runs": args.runs, "compare": args.compare}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.runs):
                for name, root in roots.items():
                    phases = first_page(browser, root)
                    results[name].append(phases)
                    print(f"  {name}: " + " ".join(f"{k}={v:.2f}" for k, v in phases.items()), file=sys.stderr, flush=True)
                    time.sleep(2)  # the last server's exit settles
            browser.close()
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    out["load_after"] = os.getloadavg()
    out["results"] = results
    print(f"load average before/after: {out['load_before']} / {out['load_after']}")
    print("version        page served  heading shown  server's run   (medians of the runs, seconds)")
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("s", "heading_s", "server_s")}
        print(f"{name:<14} {med['s']:>11.2f}  {med['heading_s']:>13.2f}  {med['server_s']:>12.2f}")
    write_results(args.out, out)


if __name__ == "__main__":
    main()
