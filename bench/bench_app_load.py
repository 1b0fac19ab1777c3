"""A busy server: how long does a fourth user wait for each page while three users train?

In a real browser (Playwright + Debian's chromium, as ``tests/st_e2e.py``): one ``streamlit run app.py``
with the bundled models and the app's own defaults (job workers, PyTorch threads). Three browser
contexts open the Train page and start a long training each (deepchrome, ``--epochs`` epochs, patience
0 so none stops early); the app's job pool runs as many as it has workers and queues the rest. A
fourth context then opens every page by its URL (a fresh load, as a shared link would) and by the
sidebar, ``--rounds`` times; a page's time runs from the navigation to its script run finished and its
charts drawn. The same visits are timed first with no training running (the baseline, same server).
Finally the server is stopped with SIGTERM while the trainings run: its exit status and time are
reported (0, within seconds, is a clean stop).

Not a timed test: it prints a table and writes ``bench/results/app_load.json``.

    python bench/bench_app_load.py [--rounds 2] [--epochs 300] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
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
    free_port,
    healthy,
    run_and_wait,
    wait_for_charts,
)

from _results import write_results

TARGET_S = 3.0
#: How long one page may take before it counts as not served (set by --timeout).
PAGE_TIMEOUT_MS = 180_000
#: (title, url path, charts drawn when the page is complete)
PAGES = [("Data", "data", 1), ("Train", "train", 0), ("Evaluate", "evaluate", 3), ("Gene pairs", "gene_pairs", 3),
         ("Attributions", "attributions", 3), ("Attention", "attention", 0), ("Ablation", "ablation", 0)]


def _finished(page, before: int, timeout_ms: int | None = None) -> None:
    timeout_ms = PAGE_TIMEOUT_MS if timeout_ms is None else timeout_ms
    page.wait_for_function("""n => window.__stRuns > n && document.querySelector('[data-testid="stApp"]')
                              .getAttribute('data-test-script-state') === 'notRunning'""", arg=before,
                           timeout=timeout_ms)


def by_url(page, url: str, title: str, charts: int) -> float:
    """A fresh load of ``url`` (a new document: the run counter restarts) to the page complete."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    _finished(page, 0)
    wait_for_charts(page, min_count=charts, timeout_ms=PAGE_TIMEOUT_MS)
    return time.perf_counter() - t0


def by_sidebar(page, title: str, charts: int) -> float:
    t0 = time.perf_counter()
    run_and_wait(page, lambda: page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click(),
                 timeout_ms=PAGE_TIMEOUT_MS)
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_for_charts(page, min_count=charts, timeout_ms=PAGE_TIMEOUT_MS)
    return time.perf_counter() - t0


def _timed(fn, *args) -> float:
    """Seconds ``fn(*args)`` took, or infinity when the page did not complete within the time limit (or the
    browser lost it meanwhile: a page that timed out can still be navigating when the next visit starts)."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        return fn(*args)
    except PlaywrightError as exc:
        print(f"  not served: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
        return float("inf")


def visit_all(page, url: str, rounds: int) -> dict:
    """Every page by URL and by sidebar, ``rounds`` times: {"url": {title: [s...]}, "sidebar": {...}}."""
    out: dict = {"url": {t: [] for t, _, _ in PAGES}, "sidebar": {t: [] for t, _, _ in PAGES}}
    for _ in range(rounds):
        for title, path, charts in PAGES:
            out["url"][title].append(_timed(by_url, page, f"{url}/{path}", title, charts))
            print(f"  url {title}: {out['url'][title][-1]:.2f} s", file=sys.stderr, flush=True)
        for title, _, charts in PAGES[1:] + PAGES[:1]:
            out["sidebar"][title].append(_timed(by_sidebar, page, title, charts))
            print(f"  sidebar {title}: {out['sidebar'][title][-1]:.2f} s", file=sys.stderr, flush=True)
    return out


def start_training(browser, url: str, epochs: int):
    """A user who opens the Train page and starts a long deepchrome run; returns their page, or None when
    the Train page did not let them start within the time limit (a result too: the server is not serving)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(max(PAGE_TIMEOUT_MS, 180_000))
    page.add_init_script(RUN_COUNTER_JS)
    t0 = time.perf_counter()
    try:
        page.goto(f"{url}/train", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        _finished(page, 0, timeout_ms=max(PAGE_TIMEOUT_MS, 180_000))
        for name, value in (("Epochs (at most)", epochs), ("Patience (epochs)", 0)):
            box = page.get_by_role("spinbutton", name=name)
            run_and_wait(page, lambda box=box, value=value: (box.fill(str(value)), box.press("Enter")),
                         timeout_ms=max(PAGE_TIMEOUT_MS, 180_000))
        page.get_by_role("button", name="Train", exact=True).click()  # its job panel then polls the job
        page.get_by_text(re.compile("Waiting for a free worker|Preparing the data|Training: epoch")).first.wait_for()
    except PlaywrightTimeoutError:
        print(f"  a trainer could not start within {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        return None
    print(f"  a trainer started in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return page


def _trainer_states(trainers) -> list[str]:
    states = []
    for t in trainers:
        text = t.get_by_test_id("stMain").inner_text()[:4000] if t is not None else ""
        states.append("not started" if t is None else "queued" if "Waiting for a free worker" in text
                      else "running" if "epoch" in text else "?")
    return states


def summary(times: dict) -> dict:
    flat = [t for per in times.values() for ts in per.values() for t in ts]
    return {"median_s": statistics.median(flat), "max_s": max(flat),
            "max_by_page_s": {title: max(times["url"][title] + times["sidebar"][title]) for title, _, _ in PAGES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="visits of every page (by URL and by sidebar)")
    ap.add_argument("--epochs", type=int, default=300, help="epochs of each training (long enough to outlast the visits)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds a page may take before it counts as not served")
    ap.add_argument("--workers", type=int, default=0, help="HMVIZ_APP_WORKERS for the server (0: the app's default)")
    args = ap.parse_args()
    global PAGE_TIMEOUT_MS
    PAGE_TIMEOUT_MS = int(args.timeout * 1000)
    if not Path(CHROMIUM).exists():
        sys.exit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    (ROOT / "test-results").mkdir(exist_ok=True)
    port = free_port()
    url = f"http://localhost:{port}"
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("HMVIZ_TORCH_THREADS", None)
    if args.workers:
        env["HMVIZ_APP_WORKERS"] = str(args.workers)
    log = open(ROOT / "test-results" / f"bench-load-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.fileWatcherType", "none"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    out: dict = {"python": platform.python_version(), "cpus": os.cpu_count(), "epochs": args.epochs,
                 "workers": args.workers or "default", "load_before": os.getloadavg()}
    try:
        while not healthy(url):
            if proc.poll() is not None:
                sys.exit("streamlit exited; see test-results/bench-load-server-*.log")
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            fourth = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            fourth.set_default_timeout(PAGE_TIMEOUT_MS)
            fourth.add_init_script(RUN_COUNTER_JS)
            print("warm-up visits", file=sys.stderr, flush=True)
            visit_all(fourth, url, 1)  # warm: first visits import torch, load models, fill caches
            print("idle visits", file=sys.stderr, flush=True)
            out["idle"] = visit_all(fourth, url, args.rounds)
            out["load_idle"] = os.getloadavg()
            trainers = [start_training(browser, url, args.epochs) for _ in range(3)]
            print("three trainings started", file=sys.stderr, flush=True)
            time.sleep(5)  # the first training is past its data preparation
            out["trainers"] = _trainer_states(trainers)
            print(f"busy visits (trainers: {out['trainers']})", file=sys.stderr, flush=True)
            out["busy"] = visit_all(fourth, url, args.rounds)
            out["load_busy"] = os.getloadavg()
            out["trainers_after"] = _trainer_states(trainers)
            browser.close()
    finally:
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            out["stop_exit_status"] = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out["stop_exit_status"] = f"killed after 60 s ({proc.wait()})"
        out["stop_s"] = time.perf_counter() - t0
        log.close()

    out["summary"] = {"idle": summary(out["idle"]), "busy": summary(out["busy"])}
    print(f"load average before/idle/busy: {out['load_before']} / {out['load_idle']} / {out['load_busy']}")
    print(f"trainers while timing: {out['trainers']} -> {out['trainers_after']}")
    print(f"{'page':14s} {'idle median':>12s} {'idle max':>9s} {'busy median':>12s} {'busy max':>9s}")
    for title, _, _ in PAGES:
        idle = out["idle"]["url"][title] + out["idle"]["sidebar"][title]
        busy = out["busy"]["url"][title] + out["busy"]["sidebar"][title]
        print(f"{title:14s} {statistics.median(idle):12.2f} {max(idle):9.2f} {statistics.median(busy):12.2f} "
              f"{max(busy):9.2f}")
    print(f"busy max {out['summary']['busy']['max_s']:.2f} s (target < {TARGET_S:g} s); "
          f"SIGTERM -> exit status {out['stop_exit_status']} in {out['stop_s']:.1f} s")
    write_results("app_load.json", out)


if __name__ == "__main__":
    main()
