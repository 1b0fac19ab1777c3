"""hmviz as a package: the wheel carries the bundled models, the sample data and the kernel source,
finds them from any folder, and ``hmviz --version`` / ``python -m hmviz`` work outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from hmviz import __version__, resources

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist, built from this checkout (no network: the build runs in this environment)."""
    pytest.importorskip("build", reason="the `build` package (in the [dev] extra) makes the wheel")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, cwd=out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for leftover in ("build", "hmviz.egg-info"):  # setuptools' scratch folders in the checkout
        shutil.rmtree(ROOT / leftover, ignore_errors=True)
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def _shipped_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_carries_models_sample_data_kernel_source_and_the_console_script(dists) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        entry_points = next(whl.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for name in ("models", "sample_data"):
        expected = {f"hmviz/_bundled/{name}/{f}" for f in _shipped_files(ROOT / name)}
        assert expected and expected <= names, sorted(expected - names)[:5]
    assert "hmviz/_bundled/models/deepchrome/model.safetensors" in names
    assert "hmviz/_bundled/sample_data/two_cells/histone.csv.gz" in names
    assert "hmviz/models/_bilstm_native.cpp" in names
    assert not any(n.startswith(("tests/", "bench/", "pages/", "hmviz_app/")) for n in names)
    assert "hmviz = hmviz.__main__:main" in entry_points


def test_the_sdist_carries_what_the_wheel_is_built_from(dists) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("models", "sample_data"):
        assert {f"{name}/{f}" for f in _shipped_files(ROOT / name)} <= names
    assert {"LICENSE", "pyproject.toml", "setup.py", "hmviz/models/_bilstm_native.cpp"} <= names


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m hmviz ARGS`` with only the unpacked wheel on the path (not the checkout), from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-P", "-m", "hmviz", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_installed_hmviz_finds_its_data_and_models_from_any_folder(dists, tmp_path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(dists["wheel"]) as whl:
        whl.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _run_installed(site, elsewhere, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"hmviz {__version__} (Python ")
    where = subprocess.run([sys.executable, "-P", "-c", "import hmviz.resources as r; print(r.sample_data()); "
                            "print(r.bundled_models())"], cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(site)},
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.split() == [str(site / "hmviz/_bundled/sample_data"), str(site / "hmviz/_bundled/models")]
    proc = _run_installed(site, elsewhere, "validate", "sample_data")
    assert proc.returncode == 0, proc.stderr
    assert "genes:    3000" in proc.stdout
    proc = _run_installed(site, elsewhere, "validate", "sample_data/two_cells")
    assert proc.returncode == 0, proc.stderr
    # A folder of that name in the current directory wins over the shipped copy.
    (elsewhere / "sample_data").mkdir()
    proc = _run_installed(site, elsewhere, "validate", "sample_data")
    assert proc.returncode == 2 and "the folder has no data files" in proc.stderr


def test_shipped_or_given_resolves_only_missing_shipped_names(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resources.shipped_or_given("sample_data") == resources.sample_data()
    assert resources.shipped_or_given("sample_data/two_cells") == resources.sample_data() / "two_cells"
    assert resources.shipped_or_given("models/deepchrome") == resources.bundled_models() / "deepchrome"
    assert resources.shipped_or_given("models/no-such-model") == Path("models/no-such-model")  # fails where read
    assert resources.shipped_or_given("my_data.csv") == Path("my_data.csv")
    (tmp_path / "sample_data").mkdir()
    assert resources.shipped_or_given("sample_data") == Path("sample_data")
    card = json.loads((resources.bundled_models() / "deepchrome" / "model_card.json").read_text())
    assert card["model"] == "deepchrome"


def test_bundled_models_load_by_their_readme_path_from_another_folder(tmp_path, monkeypatch) -> None:
    from hmviz.checkpoints import load_model, read_card

    monkeypatch.chdir(tmp_path)
    model, card = load_model("models/deepchrome")
    assert card["model"] == "deepchrome" and read_card("models/deepchrome")["model"] == "deepchrome"
