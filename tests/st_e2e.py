"""Helpers to drive the Streamlit app in a real browser (Playwright + Debian's chromium).

Follows ``../shared/testing/browser.md``: the server is started with ``streamlit run`` on a free port;
waits are deterministic (a run counter fed by the ``data-test-script-state`` attribute of the app);
full-height screenshots resize the viewport to the scrolling ``stMain`` element first.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("HMVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULTS = ROOT / "test-results"

#: Counts finished script runs (running -> notRunning) in the page; installed before navigation.
RUN_COUNTER_JS = """window.__stRuns = 0; (() => { let last = null;
  new MutationObserver(() => { const a = document.querySelector('[data-testid="stApp"]');
    const s = a && a.getAttribute('data-test-script-state');
    if (s && s !== last) { if (last === 'running' && s === 'notRunning') window.__stRuns++; last = s; }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-test-script-state']}); })();"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=1) as r:
            return r.status == 200 and r.read() == b"ok"
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_running(script: str = "app.py", port: int | None = None, timeout_s: float = 60,
                      env: dict | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Start ``streamlit run script`` on a free port; yield its base URL; stop it (that process only)."""
    port = port or free_port()
    base_url = f"http://localhost:{port}"
    log_path = log_path or RESULTS / f"server-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115  (open for the server's whole life)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})})
    try:
        deadline = time.monotonic() + timeout_s
        while not healthy(base_url):
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit not healthy after {timeout_s} s; see {log_path}")
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def open_app(page, url: str, timeout_ms: int = 60_000) -> None:
    """Go to ``url`` and wait until the app's first script run has finished."""
    page.add_init_script(RUN_COUNTER_JS)
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_test_id("stApp").wait_for(timeout=timeout_ms)
    page.wait_for_function("window.__stRuns >= 1", timeout=timeout_ms)


def _idle(page) -> bool:
    return page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning"


def run_and_wait(page, action: Callable[[], None], timeout_ms: int = 60_000, grace_ms: int = 5_000) -> None:
    """Do ``action`` (a click, an upload...) and wait until the rerun it causes has finished.

    Waits for the run counter to go up (the recipe's deterministic wait). A run of a few milliseconds
    can start and end within one browser frame, so the page never shows it as running; after
    ``grace_ms`` without a counted run, an idle app is taken as done (the assertions that follow retry)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    before = page.evaluate("window.__stRuns")
    action()
    condition = """n => window.__stRuns > n && document.querySelector('[data-testid="stApp"]')
                         .getAttribute('data-test-script-state') === 'notRunning'"""
    try:
        page.wait_for_function(condition, arg=before, timeout=grace_ms)
    except PlaywrightTimeoutError:
        if not _idle(page):
            page.wait_for_function(condition, arg=before, timeout=max(1, timeout_ms - grace_ms))


def choose(page, option: str, timeout_ms: int = 60_000) -> None:
    """Pick a radio option of the page (by its label) and wait for the rerun it causes.

    Picking a radio option is idempotent, so a click that got lost (the page was still drawing) is
    simply repeated until the option is checked."""
    radio = page.get_by_test_id("stMain").get_by_role("radio", name=option, exact=True)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        run_and_wait(page, lambda: page.get_by_test_id("stMain").get_by_test_id("stRadio")
                     .get_by_text(option, exact=True).click(), timeout_ms=timeout_ms)
        if radio.is_checked() or time.monotonic() > deadline:
            return


def goto_page(page, title: str, timeout_ms: int = 60_000) -> None:
    """Switch page with the sidebar navigation (client-side: the run counter survives)."""
    run_and_wait(page, lambda: page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click(),
                 timeout_ms)


def full_screenshot(page, path: Path) -> Path:
    """A screenshot of the whole page: Streamlit scrolls inside stMain, so grow the viewport to fit it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def wait_for_charts(page, min_count: int = 0, timeout_ms: int = 60_000) -> int:
    """Wait until at least ``min_count`` plotly charts are on the page and every one has drawn its SVG;
    returns how many there are."""
    page.wait_for_function(
        """n => { const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
                  return charts.length >= n && [...charts].every(c => c.querySelector('.js-plotly-plot .main-svg')); }""",
        arg=min_count, timeout=timeout_ms)
    page.wait_for_timeout(200)
    return page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').count()


def without_baselines(at):
    """``at`` (an AppTest) with the Evaluate page's baselines off: each new model or dataset there starts a job
    (a process that fits them), which would compete with the training jobs other tests wait for. The job is
    tested where it is the subject (``test_evaluate_search_and_ablation``, ``test_jobs_process.py``)."""
    at.session_state["eval_baselines"] = False
    return at


# ---------------------------------------------------------------------- models for the app
#: Small, fast versions of each family (seconds to train on 2 CPU cores), for app tests.
SMALL_MODELS = {
    "deepchrome": ({"n_filters": 16, "hidden1": 64, "hidden2": 16}, None),
    "attentivechrome": ({"bin_hidden": 8, "mark_hidden": 4}, None),
    "ranker-deepchrome": ({"n_filters": 16, "hidden1": 64, "hidden2": 16}, 900),
    "deepdiff": ({"bin_hidden": 8, "mark_hidden": 4, "joint_hidden": 8}, 900),
}


def make_small_models(out_dir: Path, names=tuple(SMALL_MODELS)) -> Path:
    """Train one small model of each family on the sample data (1 epoch) into ``out_dir/<name>``,
    laid out like the bundled models; a number in :data:`SMALL_MODELS` trains on that many genes only."""
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.checkpoints import save_model
    from hmviz.data import read_dataset
    from hmviz.data.dataset import MultiCellDataset
    from hmviz.data.synthetic import make_second_cell
    from hmviz.options import TrainOptions
    from hmviz.training import train

    sample = read_dataset(SAMPLE_DIR)
    for name in names:
        overrides, n_genes = SMALL_MODELS[name]
        data = sample
        if name == "deepdiff":
            second = make_second_cell(sample, seed=1)
            data = MultiCellDataset({sample.cell or "synthetic": sample, second.cell: second}, source=sample.source)
        if n_genes:
            data = data.subset(slice(0, n_genes))
        result = train(data, TrainOptions(model=name, epochs=1, batch_size=64, device="cpu", seed=1,
                                          model_overrides=overrides))
        save_model(result.model, result.card, Path(out_dir) / name)
    return Path(out_dir)
