"""Settings of the app server that keep pages fast while jobs run (docs/performance.md, docs/app-server.md),
and the page-time log the load benchmark reads (hmviz_app.timing)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from hmviz_app import timing

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"


def test_no_full_garbage_collection_after_every_script_run():
    """Streamlit's default collects all generations after every run, progress polls included: 0.3 s or more
    with the interpreter lock held once PyTorch and plotly are loaded (most of the server's time while
    three users trained)."""
    runner = tomllib.loads(CONFIG.read_text())["runner"]
    assert runner["postScriptGC"] is False


def test_page_times_are_written_only_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "times.jsonl"
    monkeypatch.delenv(timing.PAGE_TIMES_ENV, raising=False)
    with timing.timed("data"):
        pass
    assert not log.exists()
    monkeypatch.setenv(timing.PAGE_TIMES_ENV, str(log))
    start = timing.clock()
    with timing.timed("evaluate", since=start):
        sum(range(10_000))
    with pytest.raises(RuntimeError), timing.timed("train"):  # st.stop / st.rerun end a run by raising
        raise RuntimeError("stop")
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["page"] == "evaluate" and first["outcome"] == "ok" and first["s"] >= 0 and first["cpu_s"] >= 0
    assert second["page"] == "train" and second["outcome"] == "RuntimeError"
