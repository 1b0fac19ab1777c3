"""Explore, export and share in a real browser (issue 19, "Done when"): the real REMC example opened on the
Data page and a gene found by its symbol on the Gene view; Gene pairs' report downloaded and read back
(one self-contained HTML file with the sentence, the genes and the model); a saved view downloaded, then
opened on a page showing another pair, which goes back to the saved genes, model and method; a box drawn
over Evaluate's scatter saved as a gene set and drawn by the Heatmap.

Uses the one app server and browser of ``tests/conftest.py`` (its bundled or small models), so the file
adds no server start when it runs in a process that has started them."""

from __future__ import annotations

import html
import re

from st_e2e import RESULTS, RUN_COUNTER_JS, choose, full_screenshot, goto_page, open_app, run_and_wait, wait_for_charts
from test_browser import expect, model_in_use, no_exception

SHOTS = RESULTS / "screenshots"
PAIR = "/gene_pairs?model=bundled:ranker-deepchrome&a=SIM00012&b=SIM00200&method=saliency"


def _download(tab, button: str, path):
    """Click the download button labelled ``button`` and save what the browser receives to ``path``."""
    with tab.expect_download() as info:
        tab.get_by_role("button", name=button).click()
    info.value.save_as(path)
    return path


def test_the_real_example_opens_and_a_gene_is_found_by_symbol_with_its_tracks(page, server, deepdiff_dir):
    open_app(page, server)
    choose(page, "Real example: 600 REMC genes in K562 and H1")
    expect(page.get_by_text("600 genes is a small training set", exact=False)).to_be_visible()
    choose(page, "K562 only (E123)")
    run_and_wait(page, lambda: page.get_by_role("button", name="Use the real example").click())
    expect(page.get_by_test_id("stSidebar").get_by_text("Real example (600 REMC genes, K562)")).to_be_visible()

    goto_page(page, "Gene view")
    search = page.get_by_role("textbox", name="Find a gene (symbol or id)")
    run_and_wait(page, lambda: (search.fill("dnmt1"), search.press("Enter")))
    expect(page.get_by_role("combobox", name="Gene", exact=True)).to_have_value(re.compile(r"^DNMT1 \("))
    wait_for_charts(page, min_count=1)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart.locator(".gtitle")).to_contain_text("DNMT1")
    titles = chart.locator(".annotation-text").all_text_contents()
    for mark in ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3"):  # one signal track per mark
        assert any(t.startswith(f"{mark}: signal") for t in titles), titles
    assert chart.locator("g.trace.scatter").count() >= 5
    caption = "".join(t for t in titles if t.startswith("Data:")).replace(" ", "")  # wrapped into lines at spaces
    assert "Data:Realexample(600REMCgenes,K562)" in caption and "genes:DNMT1" in caption, titles
    no_exception(page)
    full_screenshot(page, SHOTS / "real-example-gene-view.png")


def test_the_pair_report_downloads_as_one_self_contained_html_file(page, server, tmp_path):
    open_app(page, server + PAIR)
    expect(page.get_by_role("heading", name="SIMG12 vs SIMG200")).to_be_visible()
    sentence = page.get_by_test_id("stAlertContentInfo").filter(has_text="The model ranks SIMG12").get_by_test_id(
        "stMarkdownContainer").inner_text().strip()
    report = _download(page, "Download a report of this pair (HTML)", tmp_path / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "<title>SIMG12 vs SIMG200</title>" in report
    assert sentence in html.unescape(report)  # the page's sentence (escaped as HTML in the file)
    for words in ("ranker-deepchrome (bundled)", "method: Saliency", "genes: SIMG12, SIMG200",
                  "P(SIMG12 ranked above SIMG200) = "):
        assert words in report, words
    assert report.count('class="plotly-graph-div"') == 3 and report.count('"hmviz-caption"') == 3  # captioned figures
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", report)
    assert tags and not [t for t in tags if "src=" in t or "href=" in t], tags  # plotly inline: opens offline
    no_exception(page)


def test_a_saved_view_downloads_and_reopens_the_same_genes_model_and_method(page, server, tmp_path):
    open_app(page, server + PAIR)
    expect(page.get_by_role("heading", name="SIMG12 vs SIMG200")).to_be_visible()
    saved = _download(page, "Save this view (JSON)", tmp_path / "pair_view.json")
    assert '"page": "gene_pairs"' in saved.read_text() and '"model": "bundled:ranker-deepchrome"' in saved.read_text()

    open_app(page, server + "/gene_pairs?model=bundled:deepchrome&a=SIM00001&b=SIM00002&method=deeplift")
    expect(page.get_by_role("heading", name="SIMG1 vs SIMG2")).to_be_visible()
    expect(model_in_use(page)).to_have_value("deepchrome (bundled)")
    page.get_by_text("Open a saved view", exact=True).click()
    upload = page.get_by_test_id("stMain").get_by_test_id("stFileUploaderDropzoneInput")
    run_and_wait(page, lambda: upload.set_input_files(str(saved)))
    expect(page.get_by_role("heading", name="SIMG12 vs SIMG200")).to_be_visible()
    expect(model_in_use(page)).to_have_value("ranker-deepchrome (bundled)")
    page.get_by_text("Attribution method and baseline", exact=True).click()
    expect(page.get_by_role("combobox", name="Method")).to_have_value("Saliency")
    assert "a=SIM00012" in page.url and "b=SIM00200" in page.url and "method=saliency" in page.url
    no_exception(page)


def test_a_box_over_the_evaluate_scatter_becomes_a_gene_set_the_heatmap_draws(page, server):
    page.add_init_script(RUN_COUNTER_JS)
    page.goto(server + "/evaluate", wait_until="domcontentloaded")
    toggle = page.get_by_role("switch", name=re.compile("^Compare with baselines"))
    expect(toggle).to_be_visible(timeout=120_000)
    if toggle.is_checked():  # at once: the rerun it causes skips training the baselines (not what is tested here)
        page.get_by_text(re.compile("^Compare with baselines")).click()  # the label: it takes the pointer
    expect(toggle).not_to_be_checked()
    wait_for_charts(page, min_count=3, timeout_ms=180_000)
    for _ in range(2):  # idle twice, half a second apart: the run the click caused has finished too
        page.wait_for_function("""document.querySelector('[data-testid="stApp"]')
                                  .getAttribute('data-test-script-state') === 'notRunning'""", timeout=180_000)
        page.wait_for_timeout(500)
    scatter = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Predicted vs measured expression")
    scatter.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    area = scatter.locator(".nsewdrag").first.bounding_box()  # the plot area
    scatter.hover()
    select = scatter.locator('.modebar-btn[data-val="select"]')
    if select.count():
        select.first.click()
    x0, y0 = area["x"] + area["width"] * 0.55, area["y"] + area["height"] * 0.05
    x1, y1 = area["x"] + area["width"] * 0.98, area["y"] + area["height"] * 0.6

    def drag() -> None:
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=12)
        page.mouse.up()

    run_and_wait(page, drag)
    name = page.get_by_role("textbox", name=re.compile(r"^Name the [\d,]+ selected genes as a gene set"))
    expect(name).to_have_value(re.compile(r"^box: \d+ genes \("))
    n = int(re.search(r"box: (\d+) genes", name.input_value()).group(1))
    assert n >= 3
    run_and_wait(page, lambda: page.get_by_role("button", name="Save gene set").click())
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text(f"({n:,} genes)")

    goto_page(page, "Heatmap")
    option = page.get_by_test_id("stMain").get_by_test_id("stRadio").get_by_text(re.compile(r"^Gene set box: "))
    run_and_wait(page, lambda: option.click())
    wait_for_charts(page, min_count=1)
    expect(page.locator('[data-testid="stPlotlyChart"] .gtitle').first).to_have_text(
        re.compile(rf"signal of {n:,} genes$"))
    no_exception(page)
