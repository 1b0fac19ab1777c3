"""What needs no PyTorch: reading and checking model cards, and the app's first page.

The app lists the bundled models (their cards, checked) on every page; importing PyTorch for that made
a fresh server's first page wait about a second and a half (issue 18). Each check runs in a fresh
interpreter in which importing ``torch`` fails, so any import of it on the way is an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hmviz.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]

#: Makes ``import torch`` fail in the child, naming who asked.
NO_TORCH = """
import sys, traceback
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch imported from " + " <- ".join(
                f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()[::-1][1:6]))
sys.meta_path.insert(0, _NoTorch())
"""


def _without_torch(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HMVIZ_JOB_HOLD": "off"}
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def test_cards_are_read_and_checked_without_pytorch(tmp_path):
    model = tmp_path / "edited"
    shutil.copytree(ROOT / "models" / "deepchrome", model)
    card = json.loads((model / "model_card.json").read_text())
    card["model"] = "deepchrom"
    (model / "model_card.json").write_text(json.dumps(card))
    proc = _without_torch(f"""
import hmviz
from hmviz.bundled import list_bundled
from hmviz.errors import ModelError
cards = {{name: hmviz.load_card(path) for name, path in list_bundled().items()}}
print(sorted((name, c.model, c.task) for name, c in cards.items()))
try:
    hmviz.load_card({str(model)!r})
except ModelError as exc:
    print("refused:", exc)
""")
    assert proc.returncode == 0, proc.stderr
    assert "('deepchrome', 'deepchrome', 'binary')" in proc.stdout
    assert "('deepdiff', 'deepdiff', 'differential')" in proc.stdout
    assert "('ranker-deepchrome', 'ranker-deepchrome', 'ranking')" in proc.stdout
    assert "refused: Unknown model 'deepchrom'" in proc.stdout and "Did you mean 'deepchrome'?" in proc.stdout


def test_the_families_table_is_the_registry():
    from hmviz.model_families import FAMILIES, get_family
    from hmviz.models import MODEL_REGISTRY, get_spec

    assert list(FAMILIES) == list(MODEL_REGISTRY)  # same names, same display order
    assert {spec.name: (spec.task, spec.inputs) for spec in MODEL_REGISTRY.values()} == {
        "deepchrome": ("binary", "single"), "attentivechrome": ("binary", "single"),
        "simplechrome": ("binary", "single"), "deepdiff": ("differential", "two-cells"),
        "ranker-deepchrome": ("ranking", "pair-of-genes"), "ranker-attentivechrome": ("ranking", "pair-of-genes")}
    for bad in ("DeepChrome2", None, ["deepchrome"]):
        with pytest.raises(ModelError, match="Valid models: deepchrome, attentivechrome"):
            get_spec(bad)
        with pytest.raises(ModelError, match="Valid models: deepchrome, attentivechrome"):
            get_family(bad)


def test_the_apps_first_page_runs_without_pytorch():
    """The Data page with the sidebar's model list, as a fresh server's first page: no PyTorch import
    (the background warm-up imports it later; here that import fails and is only logged)."""
    proc = _without_torch(f"""
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(ROOT / "app.py")!r}, default_timeout=90)
at.run()
assert not at.exception, [e.value for e in at.exception]
print("title:", at.title[0].value if at.title else None)
print("models:", [o for box in at.sidebar.selectbox for o in box.options if "bundled" in o][:3])
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "title: Data" in proc.stdout
    assert "deepchrome (bundled)" in proc.stdout
