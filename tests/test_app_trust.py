"""What the app says can be trusted (issues 16 and 18), under ``streamlit.testing.v1.AppTest``:

* provenance wherever a model speaks, a notice when it is applied to other data, published numbers
  only for the matching cell type, a bootstrap interval beside the test metric;
* state follows the data (gene pickers, the Train result, Manage), and with no fitting model the page
  offers to train one;
* messages in the user's words (their file names, the page's controls; no server path or Python);
* text from users (URL parameters, file names) is shown as text;
* jobs run in a bounded pool shared by sessions, with their place in the queue.

Uses the bundled models of ``models/`` (their cards say they were trained on generated data).
"""

from __future__ import annotations

import re
import string
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest
from st_e2e import without_baselines  # noqa: E402
from test_app import goto, ok  # noqa: E402  (shared helpers of the app tests)

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 90
_ESCAPED = re.compile("\\\\([" + re.escape(string.punctuation) + "])")


def shown(elements) -> str:
    """The text of elements as the reader sees it (Markdown backslash escapes removed)."""
    return " ".join(_ESCAPED.sub(r"\1", str(e.value)).replace("\u2060", "") for e in elements)


def raw(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.fixture
def app(monkeypatch) -> AppTest:
    from hmviz.bundled import BUNDLED_DIR

    if not (BUNDLED_DIR / "ranker-deepchrome" / "model_card.json").exists():
        pytest.skip("the bundled models are not installed")
    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(BUNDLED_DIR))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    return without_baselines(AppTest.from_file(APP, default_timeout=TIMEOUT).run())




def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.radio(key="data_source").set_value("upload").run()
    uploader = at.file_uploader(key="upload_tables")
    for name, data in files:
        uploader.upload(name, data, "text/csv")
    at.run()
    return at.button(key="load_upload").click().run()


def e123_files(e123_dir: Path, prefix: str = "") -> list[tuple[str, bytes]]:
    return [(f"{prefix}{s}.csv", (e123_dir / f"{s}.csv").read_bytes()) for s in ("train", "valid", "test")]


# ----------------------------------------------------------------------------- provenance
def test_bundled_model_on_its_sample_names_generated_data_without_a_notice(app):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    ok(goto(app, "gene_pairs"))
    assert "bundled with hmviz: it was trained on hmviz's generated sample data" in shown(app.caption)
    assert "Applied to other data" not in shown(app.warning)


def test_two_cell_sample_is_the_bundled_deepdiffs_training_data(app):
    app.radio(key="data_source").set_value("two_cell").run()
    ok(app.button(key="use_two_cell").click().run())
    data = app.session_state["data"]
    assert data.first.n_genes == 1000 and app.session_state["model"] == "bundled:deepdiff"
    ok(goto(app, "gene_pairs"))
    assert "Applied to other data" not in shown(app.warning)  # same fingerprint as the card's
    assert "cells synthetic and synthetic-B" in shown(app.caption)


def test_real_upload_viewed_with_a_bundled_model_carries_the_notice(app, e123_dir):
    ok(upload(app, e123_files(e123_dir)))
    for page in ("gene_pairs", "evaluate", "attributions"):
        goto(app, page)
        assert not app.exception
        assert "Applied to other data: Upload: train.csv and 2 more is not the data" in shown(app.warning), page
        assert "generated sample data" in shown(app.caption), page
    goto(app, "evaluate")
    table = app.dataframe[0].value
    assert not table["model"].str.contains("published").any()  # no cell type known: no published number
    assert "shown only for data of the cell type" in shown(app.caption)


def test_evaluate_shows_a_bootstrap_interval_and_published_numbers_of_the_same_cell(app, e123_dir):
    ok(upload(app, e123_files(e123_dir, prefix="E123_")))
    app.session_state["model"] = "bundled:deepchrome"
    ok(goto(app, "evaluate"))
    table = app.dataframe[0].value
    ci = table["test_auroc 95% CI"].iloc[0]
    low, high = (float(x) for x in ci.split(" to "))
    assert low < table["test_auroc"].iloc[0] < high  # the interval holds the point estimate
    published = table[table["model"].str.contains("published")]
    assert list(published["test_auroc"]) == [0.92]  # DeepChrome on E123 (K562) only, not the 56-cell mean
    assert "19,802" in published["source"].iloc[0] and "test split" in published["source"].iloc[0]
    assert "percentile bootstrap" in shown(app.caption)


# ----------------------------------------------------------------------------- state
def test_gene_pickers_reset_to_a_valid_different_pair_after_a_new_dataset(app, e123_dir):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    goto(app, "gene_pairs")
    app.selectbox(key="pair_a").set_value(2900).run()
    app.selectbox(key="pair_b").set_value(2950).run()
    goto(app, "data")
    ok(upload(app, e123_files(e123_dir)))
    ok(goto(app, "gene_pairs"))
    a, b = app.selectbox(key="pair_a").value, app.selectbox(key="pair_b").value
    assert a != b and max(a, b) < 600
    assert "same gene" not in shown(app.info)


def test_train_page_does_not_show_another_datasets_result_and_manage_follows_the_model(app):
    from hmviz_app.jobs import Job

    job = Job("train", "Training deepchrome", lambda j: None, context={"data_key": "upload:x", "data_name": "E003.csv"})
    job.status, job.result, job.finished, job.announced = "done", {"card": {"task": "binary"}}, time.time(), True
    job.collected = True
    app.session_state["jobs"] = {"train": job}
    ok(goto(app, "train"))
    assert "Training finished" not in shown(app.success)
    assert "was on **E003.csv**, not on the dataset in use" in shown(app.caption)
    app.session_state["model"] = "bundled:attentivechrome"
    goto(app, "train")
    assert app.selectbox(key="manage_model").value == "bundled:attentivechrome"
    app.session_state["model"] = "bundled:simplechrome"
    goto(app, "train")
    assert app.selectbox(key="manage_model").value == "bundled:simplechrome"


def test_no_fitting_model_offers_training(app, tmp_path):
    rows = "".join(f"G{g},{b},{g % 3},{b % 2}\n" for g in range(40) for b in range(100))
    ok(upload(app, [("two_marks.csv", ("gene_id,bin,H3K4me3,H3K27me3\n" + rows).encode())]))
    for page in ("gene_pairs", "evaluate"):
        goto(app, page)
        assert not app.exception and not app.error
        message = shown(app.info)
        assert "No model here fits this dataset (2 marks" in message and "Train page" in message
        assert "choose another model" not in message.lower()


# ----------------------------------------------------------------------------- messages
def test_upload_messages_name_the_users_file_and_the_pages_controls(app, tmp_path):
    good = b"gene_id,bin,H3K4me3\n" + b"".join(f"G{g},{b},1\n".encode() for g in range(3) for b in range(4))
    upload(app, [("first.csv", good), ("second_empty.csv", b"")])
    message = shown(app.error)
    assert "second_empty.csv: the file is empty" in message
    assert ".staged" not in message and "part" not in message and "the upload/" not in message

    upload(app, [("excel_utf16.csv", "gene_id,bin\n".encode("utf-16"))])
    message = shown(app.error)
    assert "excel_utf16.csv" in message and "iconv -f UTF-16 -t UTF-8 excel_utf16.csv" in message

    upload(app, [("mystery.csv", b"alpha;beta\n1;2\n")])
    message = shown(app.error)
    assert "mystery.csv" in message and "Format list" in message
    assert "--format" not in message and "format=" not in message

    ok(upload(app, [("no_bin_starts.csv", good)]))
    notes = shown(app.info)
    assert "no_bin_starts.csv" in notes and "the middle bin" in notes
    assert "//" not in notes and "/tmp" not in notes


# ----------------------------------------------------------------------------- user text
def test_url_parameters_and_file_names_are_shown_as_text(app):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    app.query_params.update({"a": "[Click to re-login](https://evil.example/login)", "b": "![x](http://host/px.png)"})
    goto(app, "gene_pairs")
    assert not app.exception
    message = raw(app.error)
    assert "[Click" in shown(app.error) and "](https" not in message and "![" not in message
    assert r"\[Click to re\-login\]\(https\:" + "\u2060" + r"\/\/evil\.example\/login\)" in message  # no bare link

    goto(app, "data")
    name = "[x](http:evil.example).csv"
    upload(app, [(name, b"")])
    assert "](" not in raw(app.error) and name in shown(app.error)
    assert any(name in shown([m]) and "](" not in str(m.value) for m in app.markdown)


# ----------------------------------------------------------------------------- jobs
def test_job_pool_runs_a_bounded_number_and_shows_queue_positions():
    from hmviz_app.jobs import Job, JobPool

    pool = JobPool(workers=1)
    release = threading.Event()
    seen: list[int] = []

    def work(job):
        seen.append(threading.active_count())
        release.wait(10)
        return job.title

    jobs = [Job("train", f"job {k}", work) for k in range(3)]
    for job in jobs:
        pool.submit(job)
    deadline = time.monotonic() + 10
    while jobs[0].status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [j.status for j in jobs] == ["running", "queued", "queued"]
    assert [pool.position(j) for j in jobs] == [0, 1, 2]
    jobs[1].cancel.set()  # a cancelled job leaves the queue for the others
    assert pool.position(jobs[2]) == 1
    release.set()
    deadline = time.monotonic() + 10
    while any(j.running for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [j.status for j in jobs] == ["done", "cancelled", "done"]
    assert jobs[1].error == "Cancelled before it started."
    pool.close(wait_s=5)


def test_job_pool_close_cancels_running_jobs():
    from hmviz.engine import TrainingCancelled
    from hmviz_app.jobs import Job, JobPool

    pool = JobPool(workers=2)

    def work(job):
        while not job.cancel.wait(0.01):
            pass
        raise TrainingCancelled("Training cancelled.")

    jobs = [Job("train", f"job {k}", work) for k in range(3)]
    for job in jobs:
        pool.submit(job)
    time.sleep(0.2)
    t0 = time.monotonic()
    pool.close(wait_s=5)
    assert time.monotonic() - t0 < 2
    assert [j.status for j in jobs] == ["cancelled"] * 3
    with pytest.raises(Exception, match="stopping"):
        pool.submit(Job("train", "late", work))


def test_torch_threads_leave_a_core_for_pages(monkeypatch):
    from hmviz_app import state

    import hmviz.runtime

    monkeypatch.delenv("HMVIZ_TORCH_THREADS", raising=False)
    monkeypatch.delenv("HMVIZ_THREADS", raising=False)
    monkeypatch.delenv("HMVIZ_APP_WORKERS", raising=False)
    monkeypatch.setattr(hmviz.runtime, "busy_cores", lambda *a, **k: 0.0)  # an idle machine
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(hmviz.runtime, "available_cores", lambda: 2)
    assert state.torch_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr(hmviz.runtime, "available_cores", lambda: 16)
    assert state.torch_threads() == 3  # 4 workers + the pages: 16 // 5
    monkeypatch.setattr(hmviz.runtime, "busy_cores", lambda *a, **k: 6.0)  # 6 cores busy elsewhere
    assert state.torch_threads() == 2  # (16 - 6) // 5
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "2")
    assert state.torch_threads() == 2
    np.testing.assert_equal(state.torch_threads(), 2)
