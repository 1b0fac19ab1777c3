"""The app in a real browser: ``streamlit run app.py`` driven by Playwright with Debian's chromium.

The path a biologist takes: Data -> Train (a short run) -> Gene pairs; an uploaded table (good and
bad); a shared link that reopens a pair; every page drawn; a second tab served while a long training
runs. Charts are checked in the DOM (plotly's SVG, heatmap images), errors by the absence of
``stException``. Full-height screenshots go to ``test-results/`` (gitignored).

Skips cleanly without chromium (``apt-get install chromium``) or the ``playwright`` package. The recipe
followed is ``../shared/testing/browser.md``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from st_e2e import (
    CHROMIUM,
    RESULTS,
    choose,
    full_screenshot,
    goto_page,
    make_small_models,
    open_app,
    run_and_wait,
    wait_for_charts,
)

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
# The machine may be busy (CI runs two test files at once on 2 cores): assertions retry for up to 45 s,
# and every browser action waits up to 60 s (see ``browser``). A passing test is not slowed by these.
expect.set_options(timeout=45_000)

ROOT = Path(__file__).resolve().parents[1]
SHOTS = RESULTS / "screenshots"


# The fixtures ``server``, ``browser`` and ``page`` are in ``tests/conftest.py``: one app server and one
# browser per test process, shared by every browser test file that process runs.


def no_exception(page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def model_in_use(page):
    """The sidebar's model chooser."""
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")


def heatmaps(page) -> int:
    return page.locator("[data-testid=stPlotlyChart] g.hm image").count()


def long_csv(path: Path, genes: int = 150) -> Path:
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset, write_long

    return write_long(read_dataset(SAMPLE_DIR).subset(np.arange(genes)), path)


# ------------------------------------------------------------------------------------ tests
def test_data_train_gene_pairs(page, server):
    """Data -> Train (2 epochs of DeepChrome) -> Gene pairs with the new model."""
    open_app(page, server)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    assert wait_for_charts(page, min_count=1) == 1  # mean mark profiles, high vs low
    assert page.locator("[data-testid=stPlotlyChart] g.trace.scatter").count() >= 10  # 5 marks x 2 groups
    no_exception(page)
    full_screenshot(page, SHOTS / "01-data.png")

    goto_page(page, "Train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    epochs = page.get_by_role("spinbutton", name="Epochs (at most)")
    run_and_wait(page, lambda: (epochs.fill("2"), epochs.press("Enter")))
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("Training finished")).to_be_visible(timeout=180_000)
    expect(model_in_use(page)).to_have_value("deepchrome #1 (trained here)")
    wait_for_charts(page, min_count=1)
    no_exception(page)
    full_screenshot(page, SHOTS / "02-train.png")

    goto_page(page, "Gene pairs")
    expect(page.get_by_text("deepchrome #1 (trained here) on Sample data")).to_be_visible()
    expect(page.get_by_text(re.compile(r"The model ranks \S+ above \S+ \(P = "))).to_be_visible()
    wait_for_charts(page, min_count=3)
    assert heatmaps(page) == 3  # gene A, gene B, A minus B
    assert re.search(r"[?&]a=SIM\d+.*&b=SIM\d+", page.url), page.url  # the pair is in the address
    no_exception(page)
    full_screenshot(page, SHOTS / "03-gene-pairs.png")

    suggestions = page.get_by_role("combobox", name="Suggested pairs (test genes)")
    before = page.url
    suggestions.click()
    run_and_wait(page, lambda: page.get_by_role("option", name=re.compile("^Surprisingly ranked")).first.click())
    run_and_wait(page, lambda: page.get_by_role("button", name="Show this pair").click())
    expect(page.get_by_text("model disagrees")).to_be_visible()
    assert page.url != before
    wait_for_charts(page, min_count=3)
    no_exception(page)
    full_screenshot(page, SHOTS / "04-gene-pairs-surprising.png")


def test_upload_custom_table_then_a_bad_one(page, server, tmp_path):
    open_app(page, server)
    choose(page, "Upload tables")
    good = long_csv(tmp_path / "my_genes.csv")
    run_and_wait(page, lambda: page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(good)))
    expect(page.get_by_test_id("stFileChipName").filter(has_text="my_genes.csv")).to_be_visible()
    run_and_wait(page, lambda: page.get_by_role("button", name="Load the uploaded data").click())
    expect(page.get_by_text("Loaded Upload: my_genes.csv: 150 genes")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("Upload: my_genes.csv")).to_be_visible()
    wait_for_charts(page, min_count=1)
    no_exception(page)
    full_screenshot(page, SHOTS / "05-upload.png")

    bad = tmp_path / "broken.csv"
    bad.write_text("gene_id,bin,H3K4me3\nG1,0,abc\nG1,1,2\n")
    run_and_wait(page, lambda: page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad)))
    run_and_wait(page, lambda: page.get_by_role("button", name="Load the uploaded data").click())
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("broken.csv line 2: H3K4me3 is 'abc', which is not a number")
    expect(error).to_contain_text("Upload: my_genes.csv is still loaded")
    expect(page.get_by_test_id("stSidebar").get_by_text("Upload: my_genes.csv")).to_be_visible()
    no_exception(page)
    full_screenshot(page, SHOTS / "06-bad-upload.png")

    goto_page(page, "Gene pairs")  # the uploaded genes can be explained straight away
    wait_for_charts(page, min_count=3)
    no_exception(page)


def test_shared_link_reopens_the_pair(page, server):
    open_app(page, server + "/gene_pairs?a=SIM00012&b=SIMG200&method=saliency")
    expect(page.get_by_role("heading", name="SIMG12 vs SIMG200")).to_be_visible()
    expect(page.get_by_text("P(SIMG12 ranked above SIMG200)", exact=True)).to_be_visible()  # not the caption
    wait_for_charts(page, min_count=3)
    assert "b=SIM00200" in page.url and "method=saliency" in page.url  # ids, normalised
    no_exception(page)


def test_every_page_draws(page, server):
    open_app(page, server)
    for title, least in (("Evaluate", 3), ("Attributions", 3), ("Ablation", 0)):
        goto_page(page, title)
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        assert wait_for_charts(page, min_count=least) >= least, title
        no_exception(page)
    run_and_wait(page, lambda: page.get_by_role("button", name="Mask marks").click())
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text("Smallest subset within 0.01 of all marks")
    assert wait_for_charts(page, min_count=1) == 1
    assert page.locator("[data-testid=stPlotlyChart] g.scatterlayer .point").count() >= 6
    full_screenshot(page, SHOTS / "07-ablation.png")

    model = model_in_use(page)
    model.click()
    run_and_wait(page, lambda: page.get_by_role("option", name="attentivechrome (bundled)", exact=True).click())
    goto_page(page, "Attention")
    wait_for_charts(page, min_count=5)
    assert heatmaps(page) >= 4  # alpha of the gene, its attribution, alpha of low and high genes
    no_exception(page)
    full_screenshot(page, SHOTS / "08-attention.png")
    goto_page(page, "Evaluate")
    wait_for_charts(page, min_count=3)
    no_exception(page)
    full_screenshot(page, SHOTS / "09-evaluate.png")


def test_second_tab_is_served_while_training_runs(browser, server):
    """Training runs in the background: another tab explains pairs meanwhile, then training is cancelled."""
    first = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    second = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    try:
        open_app(first, server + "/train")
        epochs = first.get_by_role("spinbutton", name="Epochs (at most)")
        run_and_wait(first, lambda: (epochs.fill("200"), epochs.press("Enter")))
        # Patience 0: never stop early, so the run cannot end before the second tab is served (a fast machine stopped it in 29 s).
        patience = first.get_by_role("spinbutton", name="Patience (epochs)")
        run_and_wait(first, lambda: (patience.fill("0"), patience.press("Enter")))
        first.get_by_role("button", name="Train", exact=True).click()
        expect(first.get_by_text(re.compile(r"Training: epoch \d+ of 200"))).to_be_visible(timeout=60_000)

        t0 = time.perf_counter()
        open_app(second, server + "/gene_pairs")
        expect(second.get_by_text(re.compile(r"The model ranks \S+ above"))).to_be_visible(timeout=60_000)
        wait_for_charts(second, min_count=3)
        served = time.perf_counter() - t0
        no_exception(second)
        expect(first.get_by_text(re.compile(r"Training: epoch \d+ of 200"))).to_be_visible()  # still training

        first.get_by_role("button", name="Cancel training").click()
        expect(first.get_by_text("Training was cancelled; nothing was saved.")).to_be_visible(timeout=60_000)
        no_exception(first)
        assert served < 60, served
    finally:
        first.context.close()
        second.context.close()


def test_fresh_server_deep_link_hostile_parameters_then_a_clean_stop(browser, tmp_path):
    """The first request to a fresh server is a deep link: it goes through the router (sidebar, ``?model=``);
    Markdown in its parameters shows as text (no live link, no outside image loaded); after a training
    run the server stops on SIGTERM with status 0 within seconds."""
    import shutil
    import signal
    import subprocess
    import sys
    from urllib.parse import quote

    from hmviz.bundled import list_bundled
    from st_e2e import free_port, healthy

    models = tmp_path / "models"
    for name, path in list_bundled(ROOT / "models").items():
        shutil.copytree(path, models / name)
    if "ranker-deepchrome" not in list_bundled(models):
        make_small_models(models, ["deepchrome", "ranker-deepchrome"])
    port = free_port()
    url = f"http://localhost:{port}"
    log = open(RESULTS / f"server-fresh-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.fileWatcherType", "none"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT,
                            env={**__import__("os").environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
                                 "HMVIZ_TORCH_THREADS": "1", "HMVIZ_MODELS_DIR": str(models)})
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if "localhost" not in r.url and
            not r.url.startswith(("data:", "blob:")) else None)
    try:
        deadline = time.monotonic() + 60
        while not healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.1)
        link = "[Click to re-login](https://evil.example/login)"
        image = "![x](http://host.example/px.png)"
        open_app(page, f"{url}/gene_pairs?model=bundled:ranker-deepchrome&a={quote(link)}&b={quote(image)}")
        expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=120_000)  # routed through app.py
        expect(model_in_use(page)).to_have_value("ranker-deepchrome (bundled)", timeout=120_000)
        error = page.get_by_test_id("stAlertContentError").first
        expect(error).to_contain_text("is not in the dataset", timeout=120_000)
        assert link in error.inner_text().replace("\u2060", "")  # the characters, as typed (a word joiner in "://")
        assert page.locator("a[href*='evil.example']").count() == 0
        assert page.locator("img[src*='host.example']").count() == 0
        no_exception(page)

        goto_page(page, "Train")
        epochs = page.get_by_role("spinbutton", name="Epochs (at most)")
        run_and_wait(page, lambda: (epochs.fill("1"), epochs.press("Enter")))
        page.get_by_role("button", name="Train", exact=True).click()
        expect(page.get_by_text("Training finished")).to_be_visible(timeout=600_000)
        assert not [u for u in outside if "host.example" in u or "evil.example" in u], outside
    finally:
        page.context.close()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = f"hung ({proc.wait()})"
        log.close()
    assert status == 0 and time.monotonic() - t0 < 30, (status, (RESULTS / f"server-fresh-{port}.log").read_text()[-2000:])
