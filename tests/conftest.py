"""Shared fixtures: paths to the real REMC data in ../shared/data (tests skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

# One torch/OpenMP thread per test process: the suite is many small models, where a second thread
# only adds contention (and, on a shared 2-core machine, spin-waiting slows it tenfold). Set before
# torch loads; ablation workers and the app server run in their own processes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# The tests' pages and the tests' browser are not a user waiting for a page: their runs would pause the
# training jobs the same tests wait for (hmviz_app.job_process.PageHold; tests/test_page_hold.py turns it on).
os.environ.setdefault("HMVIZ_JOB_HOLD", "off")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that data is not on this machine."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored afterwards. This machine's 2 cores are shared: OpenMP
    threads spinning against other jobs make small LSTM calls up to 1000x slower, and an app test run
    in-process may have raised the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def e123_dir() -> Path:
    """600 K562 genes in DeepChrome CSV format (train/valid/test, 100 bins x 5 marks)."""
    return shared_path("remc-E123-deepchrome")


@pytest.fixture
def toy_dir() -> Path:
    return shared_path("deepchrome-toy")


@pytest.fixture
def deepdiff_dir() -> Path:
    """The same 600 genes in K562 (Cell1) and H1 (Cell2), DeepDiff format, 200 bins."""
    return shared_path("deepdiff-E123-E003")


# ------------------------------------------------------------------------- browser tests
# One app server and one browser per test process, for every tests/test_browser*.py file it runs: defined
# here once (a fixture imported into several test modules would be one fixture per module, and a second
# Playwright started in the same process fails). Waits: see tests/st_e2e.py.
ACTION_TIMEOUT_MS = 60_000  # the most a browser action waits (a busy CI machine); Playwright's default is 30 s


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One app server for the test process, with a model of each family the tests use: the bundled one when
    ``models/`` has it (copied, so that remaking the bundled models meanwhile changes nothing here),
    else a small one trained here (so the tests run on a fresh checkout too)."""
    import shutil

    from st_e2e import make_small_models, streamlit_running

    from hmviz.bundled import list_bundled

    models = tmp_path_factory.mktemp("models")
    bundled = list_bundled(ROOT / "models")
    missing = [name for name in ("deepchrome", "attentivechrome", "ranker-deepchrome") if name not in bundled]
    for name, path in bundled.items():
        shutil.copytree(path, models / name)
    if missing:
        make_small_models(models, missing)
    with streamlit_running("app.py", env={"HMVIZ_TORCH_THREADS": "1", "HMVIZ_MODELS_DIR": str(models)}) as url:
        yield url


class _PatientBrowser:
    """The Playwright browser, whose new contexts wait ``ACTION_TIMEOUT_MS`` for actions (default 30 s)."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def browser():
    from st_e2e import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield _PatientBrowser(b)
        b.close()


@pytest.fixture
def page(browser, request):
    from st_e2e import RESULTS

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    failed = request.session.testsfailed
    page = context.new_page()
    yield page
    if request.session.testsfailed > failed:  # keep what the browser showed when the test failed
        (RESULTS / "failures").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "failures" / f"{request.node.name}.png"), full_page=True)
    context.close()


# The slowest test files first: pytest-xdist hands files to workers in collection order, so a long
# file started last would run alone at the end (the suite's wall time is then that file's, not the
# total shared by the workers). Within a file the order is unchanged.
SLOW_FIRST = (
    "test_browser.py",
    "test_browser_views.py",
    "test_browser_explore.py",
    "test_app.py",
    "test_cli_model.py",
    "test_ablation.py",
    "test_runtime.py",
    "test_study.py",
    "test_native_build.py",
    "test_explain.py",
    "test_training.py",
    "test_app_trust.py",
    "test_models.py",
    "test_packaging.py",
    "test_app_explain.py",
    "test_app_views.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))
