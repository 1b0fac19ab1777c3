"""Saves that cannot lose a model: kill -9 at every point of a save, two writers, threads, umask.

The kills use ``HMVIZ_KILL_AT=<point>`` (a process SIGKILLs itself at that point of
:func:`hmviz.checkpoints.save_model`) in a forked child, and kills at random times of a child that
saves over and over. After every kill the folder must hold a loadable model, old or new.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from hmviz.atomic import output_lock
from hmviz.checkpoints import load_model, save_model
from hmviz.errors import HmvizError
from hmviz.models import build_model

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

POINTS = ["locked", "tmp_created", "weights_written", "before_swap", "after_swap", "done"]
X = torch.randn(4, 20, 3, generator=torch.Generator().manual_seed(0))


def _model(seed: int):
    torch.manual_seed(seed)
    model, config = build_model("deepchrome", n_marks=3, n_bins=20)
    card = {"model": "deepchrome", "config": dataclasses.asdict(config), "marks": ["a", "b", "c"], "n_bins": 20,
            "bin_size": 100, "tss_bin": 10, "seed": seed,
            "transform": {"log1p": True, "scaling": "standard", "marks": ["a", "b", "c"], "center": [0.0] * 3,
                          "scale": [1.0] * 3}}
    return model.eval(), card


def _in_child(fn, env: dict[str, str] | None = None) -> int:
    """Run ``fn`` in a forked child; returns the signal that ended it (0 for a normal exit)."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            signal.alarm(60)
            os.environ.update(env or {})
            fn()
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def _seed_of(out: Path) -> int:
    model, card = load_model(out)
    return card["seed"]


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.mark.parametrize("exchange", [True, False], ids=["rename-exchange", "two-renames"])
@pytest.mark.parametrize("point", POINTS + ["between_renames"])
def test_kill_at_any_point_leaves_a_loadable_model(tmp_path, monkeypatch, point, exchange):
    if exchange and point == "between_renames":
        pytest.skip("the exchange has no such point")
    if not exchange:
        monkeypatch.setenv("HMVIZ_NO_RENAME_EXCHANGE", "1")
    out = tmp_path / "model"
    old, old_card = _model(1)
    save_model(old, old_card, out)
    (out / "notes.txt").write_text("kept")
    new, new_card = _model(2)

    ended = _in_child(lambda: save_model(new, new_card, out), {"HMVIZ_KILL_AT": point})
    assert ended == signal.SIGKILL

    # The model is there (old or new, never absent), before any cleanup by a later writer.
    seed = _seed_of(out) if out.exists() else None
    if seed is None:  # only the fallback's gap can hide it, and the next writer restores it
        assert point == "between_renames"
        from hmviz.atomic import clean_leftovers

        with output_lock(out):
            clean_leftovers(out)
        seed = _seed_of(out)
    assert seed in (1, 2)
    assert seed == (2 if point in ("after_swap", "done") else 1)
    assert (out / "notes.txt").read_text() == "kept"
    # The next save works and leaves nothing hidden behind (no temp folder, no stale lock).
    save_model(new, new_card, out)
    assert _seed_of(out) == 2
    assert _hidden(out) == []


def test_kills_at_random_times_never_lose_the_model(tmp_path):
    out = tmp_path / "model"
    models = [_model(1), _model(2)]
    save_model(*models[0], out)

    def save_forever():
        k = 0
        while True:
            save_model(*models[k % 2], out)
            k += 1

    rng = random.Random(0)
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)
            try:
                save_forever()
            finally:
                os._exit(3)
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert _seed_of(out) in (1, 2)
    save_model(*models[0], out)
    assert _hidden(out) == []


def test_a_second_writer_is_refused_not_silently_overwritten(tmp_path):
    out = tmp_path / "model"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # another process holds the output for a while (a long train run)
        os.close(r)
        with output_lock(out):
            os.write(w, b"x")
            time.sleep(120)  # killed by the test when done
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    try:
        t0 = time.perf_counter()
        with pytest.raises(HmvizError, match="another hmviz process .*pid"):
            save_model(*_model(1), out)
        assert time.perf_counter() - t0 < 2, "the second writer must be refused at once, not wait"
        assert not out.exists()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    save_model(*_model(1), out)  # the holder died: its lock is gone with it
    assert _seed_of(out) == 1


def test_parallel_saves_in_one_process(tmp_path):
    """Threads saving to different folders all succeed and leave no copies; later saves still work."""
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(3):
                save_model(*_model(k), tmp_path / f"m{k}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0", "m1", "m2", "m3"]
    save_model(*_model(9), tmp_path / "m0")
    assert _seed_of(tmp_path / "m0") == 9


def test_two_threads_to_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "model"
    entered, release = threading.Event(), threading.Event()

    def holder():
        with output_lock(out):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    entered.wait(10)
    try:
        with pytest.raises(HmvizError, match="already running in this process"):
            save_model(*_model(1), out)
    finally:
        release.set()
        t.join()
    save_model(*_model(1), out)
    assert _seed_of(out) == 1


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_model_folder_permissions_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_model(*_model(1), tmp_path / "m")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("verb", ["train", "convert"])
def test_a_second_cli_run_to_the_same_output_is_refused(tmp_path, capsys, verb):
    """While one run writes --out (a child holding its lock), a second train/convert exits 2 at once."""
    from hmviz.cli.main import main

    sample = str(Path(__file__).resolve().parents[1] / "sample_data" / "histone.csv.gz")
    out = tmp_path / ("m" if verb == "train" else "d.parquet")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with output_lock(out):
            os.write(w, b"x")
            time.sleep(120)  # killed by the test when done
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    try:
        argv = (["train", "--data", sample, "--model", "deepchrome", "--out", str(out), "--quiet"]
                if verb == "train" else ["convert", sample, str(out)])
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "another hmviz process" in err and "\n" not in err
        assert not out.exists()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
