"""hmviz.runtime: torch's thread count from the free cores and the jobs run at once (issue 15, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hmviz.errors import HmvizError
from hmviz.runtime import THREADS_ENV, apply_threads, recommended_threads

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("cores", "busy", "jobs", "expected"), [
    (16, 0.0, 1, 16),   # idle machine: every core
    (16, 0.0, 4, 4),    # four jobs share them
    (16, 6.5, 1, 9),    # 6.5 cores busy elsewhere: the 9 whole free ones
    (16, 6.5, 2, 4),
    (2, 7.9, 1, 1),     # oversubscribed: one thread, never zero
    (2, 0.0, 3, 1),     # more jobs than cores
    (8, -1.0, 1, 8),    # never more threads than cores
])
def test_recommended_threads_divides_the_free_cores(cores, busy, jobs, expected) -> None:
    assert recommended_threads(jobs, cores=cores, busy=busy) == expected


def test_recommended_threads_reads_this_machine() -> None:
    n = recommended_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))
    with pytest.raises(HmvizError, match="concurrent_jobs"):
        recommended_threads(0)


def test_apply_threads_takes_the_override(monkeypatch, one_torch_thread) -> None:
    import torch

    monkeypatch.setenv(THREADS_ENV, "3")
    assert apply_threads(concurrent_jobs=8) == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv(THREADS_ENV, "lots")
    with pytest.raises(HmvizError, match="HMVIZ_THREADS='lots'"):
        apply_threads()
    monkeypatch.delenv(THREADS_ENV)
    n = apply_threads()
    assert n == torch.get_num_threads() and 1 <= n <= len(os.sched_getaffinity(0))


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", THREADS_ENV)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**clean, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_importing_hmviz_changes_no_environment() -> None:
    code = "import os; before = dict(os.environ); import hmviz, hmviz.runtime; print(dict(os.environ) == before)"
    assert _run(code) == "True"


def test_the_cli_sets_threads_and_openmp_policy_at_start() -> None:
    code = ("import os, sys, torch; from hmviz.cli.main import main; rc = main(['train', '--help']); "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    # torch is already imported here, so the policy is left alone; a fresh CLI process sets it
    assert _run(code).splitlines()[-1] == "None"
    code = ("import os; from hmviz.cli.main import main; main(['models']); print(os.environ.get('OMP_WAIT_POLICY'), "
            "os.environ.get('GOMP_SPINCOUNT'))")
    assert _run(code).splitlines()[-1] == "PASSIVE 100000"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE").splitlines()[-1] == "ACTIVE 100000"


@pytest.mark.parametrize("verb", ["train", "evaluate", "explain"])
def test_torch_verbs_apply_threads_first(verb, tmp_path) -> None:
    """A malformed HMVIZ_THREADS stops train/evaluate/explain with one error line before any work."""
    env = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    args = {"train": ["--data", "sample_data", "--model", "deepchrome", "--out", str(tmp_path / "m")],
            "evaluate": ["--data", "sample_data", "--model", "models/deepchrome"],
            "explain": ["--model", "models/deepchrome", "--data", "sample_data", "--gene", "SIM00001",
                        "--out", str(tmp_path / "e.csv")]}[verb]
    out = subprocess.run([sys.executable, "-m", "hmviz", verb, *args], capture_output=True, text=True, cwd=ROOT,
                         env={**env, THREADS_ENV: "0"}, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: HMVIZ_THREADS='0'"), out.stderr
    assert not (tmp_path / "m").exists()
