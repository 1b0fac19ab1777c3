"""How responsive is the app? Three timings in a real browser (Playwright + Debian's chromium).

1. **Server start to first interactive page**: from launching ``streamlit run app.py`` to the Data
   page's first script run finished (its widgets live) and its chart drawn. The browser is started
   beforehand (a user's browser is already open). Repeated ``--starts`` times, each a fresh server.
2. **Page switch**: a click in the sidebar to the new page's run finished and its charts drawn, after
   each page has been visited once (first visits, which import torch or fit baselines, are reported
   separately).
3. **New gene pair to its explanation**: on Gene pairs with a bundled model on CPU, choosing another
   gene B to the new P(A > B), sentence and heatmaps drawn.

Not a timed test: it prints a table and writes ``bench/results/app.json``. Needs the bundled models
(``python -m hmviz.bundled --out models``) and chromium (``apt-get install chromium``).

    python bench/bench_app.py [--starts 3] [--switches 3] [--pairs 8] [--model ranker-deepchrome]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from st_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_COUNTER_JS,
    healthy,
    run_and_wait,
    streamlit_running,
    wait_for_charts,
)

from _results import write_results
from hmviz.bundled import list_bundled

TARGETS = {"start_s": 4.0, "switch_s": 1.0, "pair_s": 1.5}
SWITCHES = [("Gene pairs", 3), ("Evaluate", 3), ("Attributions", 3), ("Train", 1), ("Data", 1)]


def first_page(browser, port: int) -> dict:
    """Launch a server and time it to the first interactive page."""
    import subprocess

    url = f"http://localhost:{port}"
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.add_init_script(RUN_COUNTER_JS)
    log = open(ROOT / "test-results" / f"bench-server-{port}.log", "w")  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.fileWatcherType", "none"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    try:
        while not healthy(url):
            if proc.poll() is not None:
                raise RuntimeError("streamlit exited; see test-results/bench-server-*.log")
            time.sleep(0.02)
        t_health = time.perf_counter() - t0
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_function("window.__stRuns >= 1", timeout=60_000)
        t_interactive = time.perf_counter() - t0
        wait_for_charts(page, min_count=1, timeout_ms=60_000)
        t_charts = time.perf_counter() - t0
    finally:
        page.context.close()
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    return {"health_s": t_health, "interactive_s": t_interactive, "charts_s": t_charts}


def switch(page, title: str, charts: int) -> float:
    t0 = time.perf_counter()
    run_and_wait(page, lambda: page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click())
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_for_charts(page, min_count=charts, timeout_ms=60_000)
    return time.perf_counter() - t0


def new_pair(page, gene: str) -> float:
    """Choose ``gene`` as gene B; time from the choice to the new explanation drawn."""
    box = page.get_by_role("combobox", name="Gene B")
    box.click()
    box.fill(gene)
    option = page.get_by_role("option", name=f"{gene} · ", exact=False).first
    option.wait_for()
    t0 = time.perf_counter()
    run_and_wait(page, option.click)
    page.get_by_role("heading", name=f"vs {gene}", exact=False).wait_for()
    page.get_by_text("The model ranks").wait_for()
    wait_for_charts(page, min_count=3, timeout_ms=60_000)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=3, help="fresh server starts to time")
    ap.add_argument("--switches", type=int, default=3, help="rounds of page switches")
    ap.add_argument("--pairs", type=int, default=8, help="new gene pairs to explain")
    ap.add_argument("--model", default="ranker-deepchrome", help="the bundled model for the gene pairs")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    if args.model not in list_bundled(ROOT / "models"):
        sys.exit(f"the bundled model {args.model} is missing: python -m hmviz.bundled --out models")
    (ROOT / "test-results").mkdir(exist_ok=True)
    from playwright.sync_api import sync_playwright
    from st_e2e import free_port, open_app

    out: dict = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                 "model": args.model, "targets": TARGETS}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        out["starts"] = [first_page(browser, free_port()) for _ in range(args.starts)]

        with streamlit_running("app.py") as url:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            open_app(page, url)
            wait_for_charts(page, min_count=1)
            first_visits = {title: switch(page, title, charts) for title, charts in SWITCHES}
            rounds = [{title: switch(page, title, charts) for title, charts in SWITCHES} for _ in range(args.switches)]
            out["first_visit_s"] = first_visits
            out["switch_s"] = rounds

            open_app(page, f"{url}/gene_pairs?model=bundled:{args.model}&a=SIM00012&b=SIM00200")
            wait_for_charts(page, min_count=3)
            genes = [f"SIMG{k}" for k in (301, 17, 1450, 2999, 804, 1203, 77, 2250, 1666, 940)][:args.pairs]
            out["pair_s"] = {g: new_pair(page, g) for g in genes}
            page.context.close()
        browser.close()

    start = [s["interactive_s"] for s in out["starts"]]
    start_charts = [s["charts_s"] for s in out["starts"]]
    switches = [t for r in out["switch_s"] for t in r.values()]
    pairs = list(out["pair_s"].values())
    out["summary"] = {
        "start_to_interactive_median_s": statistics.median(start),
        "start_to_chart_median_s": statistics.median(start_charts),
        "switch_median_s": statistics.median(switches), "switch_max_s": max(switches),
        "pair_median_s": statistics.median(pairs), "pair_max_s": max(pairs),
    }
    rows = [
        ("server start -> first interactive page", statistics.median(start), max(start), TARGETS["start_s"]),
        ("server start -> its chart drawn", statistics.median(start_charts), max(start_charts), None),
        ("page switch (warm)", statistics.median(switches), max(switches), TARGETS["switch_s"]),
        *[(f"  first visit: {t}", v, v, None) for t, v in out["first_visit_s"].items()],
        (f"new gene pair -> explanation ({args.model}, CPU)", statistics.median(pairs), max(pairs), TARGETS["pair_s"]),
    ]
    print(f"{'what':56s} {'median s':>9s} {'max s':>7s} {'target':>7s}")
    for what, med, mx, target in rows:
        print(f"{what:56s} {med:9.2f} {mx:7.2f} {('<= ' + format(target, 'g')) if target else '':>7s}")
    write_results("app.json", out)


if __name__ == "__main__":
    main()
