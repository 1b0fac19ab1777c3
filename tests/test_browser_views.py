"""The views in a real browser (issue 19): a click on a gene in Evaluate's scatter opens it in Gene
pairs, and at 1024 and 1400 px wide no text on any page is cut (nor does Gene pairs' region table scroll
sideways), with real-looking Ensembl ids and long symbols. Reuses the app server and browser of
``tests/test_browser.py``. Screenshots of Gene pairs, the Gene view, the Heatmap and Evaluate at both widths
go to ``HMVIZ_SCREENS`` (default ``test-results/screenshots``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
from st_e2e import RESULTS, choose, full_screenshot, goto_page, open_app, run_and_wait, wait_for_charts
from test_browser import expect, no_exception

SHOTS = Path(os.environ.get("HMVIZ_SCREENS", RESULTS / "screenshots"))
PAGES = ("Data", "Train", "Evaluate", "Gene pairs", "Gene view", "Heatmap", "Attributions", "Edit marks", "Attention",
         "Ablation")
SHOT_PAGES = {"Gene pairs": "gene-pairs", "Gene view": "gene-view", "Heatmap": "heatmap", "Evaluate": "evaluate"}

#: Tables of the main area that scroll sideways (their grid is wider than its box).
WIDE_TABLES_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"]')]
  .map(t => t.querySelector('.dvn-scroller')).filter(s => s && s.scrollWidth > s.clientWidth + 1)
  .map(s => `table ${s.scrollWidth} px wide in ${s.clientWidth} px`)"""

#: Every text element of the main area that its box cuts: clipped single-line text (ellipsis or hidden
#: overflow), and plotly titles, legends and annotations that run past the figure.
CUT_TEXT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const cut = [];
  for (const el of main.querySelectorAll('*')) {
    if (!el.childNodes.length || el.closest('svg') || el.closest('[data-testid="stDataFrame"]')) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(el);
    const text = el.textContent.trim();
    if (s.fontFamily.toLowerCase().includes('material') || el.closest('[data-testid="stIconMaterial"]')
        || (/ icon$/.test(text) && el.getBoundingClientRect().width <= 32)) continue;  // an icon's name, not text
    const clips = s.textOverflow === 'ellipsis' || (s.overflow === 'hidden' || s.overflowX === 'hidden');
    let clipped = clips && el.scrollWidth > el.clientWidth + 1 && el.getClientRects().length;
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement, k = 0; a && a !== main && k < 4 && !clipped && r.width; a = a.parentElement, k++) {
      const sa = getComputedStyle(a);
      if (sa.overflow === 'hidden' || sa.overflowX === 'hidden' || sa.overflowX === 'clip')
        clipped = r.right > a.getBoundingClientRect().right + 1;  // text running out of a box that hides it
    }
    if (clipped) cut.push(`${el.tagName.toLowerCase()}: ${text.slice(0, 80)}`);
  }
  for (const input of main.querySelectorAll('input[role="combobox"]')) {  // a select box's chosen value
    if (input.value && input.offsetParent && input.clientWidth && input.scrollWidth > input.clientWidth + 1)
      cut.push(`select value: ${input.value.slice(0, 80)}`);
  }
  for (const svg of main.querySelectorAll('.js-plotly-plot .main-svg')) {
    const box = svg.getBoundingClientRect();
    if (!box.width) continue;
    for (const t of svg.parentElement.querySelectorAll('.gtitle, .xtitle, .ytitle, .legendtext, .annotation-text')) {
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1))
        cut.push(`plot text: ${t.textContent.trim().slice(0, 80)}`);
    }
  }
  return cut;
}"""


def long_named_csv(path: Path, genes: int = 150) -> Path:
    """The sample's first genes under versioned Ensembl ids and long symbols, as an uploaded table."""
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset, write_long

    ds = read_dataset(SAMPLE_DIR).subset(np.arange(genes))
    ids = np.asarray([f"ENSG{141510 + 17 * i:011d}.{i % 20 + 1}" for i in range(genes)], dtype=object)
    symbols = np.asarray([f"LINC{1000 + i}-AS1-READTHROUGH" if i % 3 else f"ZNF{100 + i}" for i in range(genes)],
                         dtype=object)
    return write_long(dataclasses.replace(ds, gene_ids=ids, symbols=symbols), path)


def test_a_click_on_a_gene_in_the_evaluate_scatter_opens_it_in_gene_pairs(page, server):
    open_app(page, server + "/evaluate")
    wait_for_charts(page, min_count=3, timeout_ms=180_000)  # the first visit trains the baselines
    scatter = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Predicted vs measured expression")
    scatter.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    point = scatter.locator("g.trace.scatter path.point").nth(40)
    box = point.bounding_box()
    run_and_wait(page, lambda: page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
    expect(page.get_by_role("heading", name="Gene pairs", exact=True)).to_be_visible()
    wait_for_charts(page, min_count=3)
    gene = page.url.split("a=")[1].split("&")[0]
    assert gene.startswith("SIM")
    symbol = f"SIMG{int(gene[3:])}"  # the sample's genes: SIM00012 is SIMG12
    expect(page.get_by_role("heading", name=re.compile(f"^{symbol} vs "))).to_be_visible()
    no_exception(page)


def test_no_text_is_cut_at_1024_and_1400_px(page, server, tmp_path):
    open_app(page, server)
    expect(page.get_by_test_id("stMain").get_by_test_id("stRadio").first).to_be_visible(timeout=120_000)
    choose(page, "Upload tables")
    table = long_named_csv(tmp_path / "encode_genes_with_long_symbols.csv")
    expect(page.get_by_test_id("stFileUploaderDropzoneInput")).to_have_count(1)
    run_and_wait(page, lambda: page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(table)))
    run_and_wait(page, lambda: page.get_by_role("button", name="Load the uploaded data").click())
    expect(page.get_by_text("Loaded Upload: encode_genes_with_long_symbols.csv")).to_be_visible()
    cut = {}
    for title in PAGES:
        goto_page(page, title)
        expect(page.get_by_role("heading", name=title if title != "Heatmap" else "Heatmap of many genes",
                                exact=True)).to_be_visible()
        wait_for_charts(page)
        no_exception(page)
        for width in (1024, 1400):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(600)  # plotly redraws on resize
            found = page.evaluate(CUT_TEXT_JS)
            if title == "Gene pairs":  # the region table fits without scrolling sideways
                found += page.evaluate(WIDE_TABLES_JS)
            if found:
                cut[f"{title} at {width} px"] = found
            if title in SHOT_PAGES:
                full_screenshot(page, SHOTS / f"{SHOT_PAGES[title]}-{width}.png")
    (RESULTS / "cut-text.json").write_text(json.dumps(cut, indent=1))
    assert not cut, json.dumps(cut, indent=1)
