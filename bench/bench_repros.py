"""Issue 18's repros, run as a user runs them: the exit status, seconds and peak memory of each.

Each repro is one ``python -m hmviz ...`` command in a scratch folder, run under ``/usr/bin/time`` (its
maximum resident set size, the peak memory the issue quotes), with hmviz's default limits
(:mod:`hmviz.limits`) and a 300-s timeout. The inputs are made here: the gzip bomb at the issue's size
(``(echo gene_id,bin,H3K4me3; yes a,0,1 | head -c 2G) | gzip``: ``--bomb-mb`` MB of rows), FIFOs, links to
``/dev/zero``, a 100,000-column header, edited copies of the bundled DeepChrome model, and two ``train``
runs started together on one new ``--out``. "Expected" is the exit status the issue asks for: 2 with one
``error:`` line for a user's error, 0 where the input is valid (a CR-only file is read).

Not a timed test: it prints a table and writes ``bench/results/repros.json``.

    python bench/bench_repros.py [--bomb-mb 2048] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _results import write_results
from bombs import gzip_bomb

SAMPLE = str(ROOT / "sample_data" / "histone.csv.gz")
BUNDLED = ROOT / "models" / "deepchrome"
TIMEOUT_S = 300


def _model(work: Path, name: str, edit=None) -> str:
    """A copy of the bundled DeepChrome model; ``edit(folder)`` changes it."""
    folder = work / name
    shutil.copytree(BUNDLED, folder)
    if edit is not None:
        edit(folder)
    return str(folder)


def _card(folder: Path, change) -> None:
    path = folder / "model_card.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def _replace(folder: Path, name: str, how: str) -> None:
    (folder / name).unlink()
    if how == "fifo":
        os.mkfifo(folder / name)
    else:
        (folder / name).symlink_to(how)


def _text(work: Path, name: str, text: str) -> str:
    (work / name).write_text(text)
    return str(work / name)


def _fifo(work: Path, name: str) -> str:
    os.mkfifo(work / name)
    return str(work / name)


def _shared_symbol(work: Path) -> str:
    """The sample data with gene SIM00002's symbol changed to SIM00001's (SIMG1): one symbol, two genes."""
    import pandas as pd

    table = pd.read_csv(SAMPLE)
    table.loc[table["gene_id"] == "SIM00002", "symbol"] = "SIMG1"
    table.to_csv(work / "shared.csv.gz", index=False)
    return str(work / "shared.csv.gz")


def _tracks(work: Path) -> list[str]:
    track = _text(work, "t.bedGraph", "chr1\t0\t100000\t1\n")
    genes = _text(work, "g.tsv", "gene_id\tchrom\ttss\tstrand\ng1\tchr1\t10000\t+\n")
    return ["--track", f"H3K4me3={track}", "--genes", genes]


GOOD = "gene_id,bin,H3K4me3,expression\na,0,1,2\na,1,2,2\nb,0,3,3\nb,1,4,3\n"
#: (name, what the issue saw, expected exit status, argv maker given the scratch folder)
REPROS = [
    ("validate a gzip bomb (2 GB of rows; `--bomb-mb`)", "11.3 GB, exit 1 after 101 s", 2,
     lambda w, a: ["validate", str(gzip_bomb(w / "b.csv.gz", b"gene_id,bin,H3K4me3\n", b"a,0,1\n", a.bomb_mb))]),
    ("validate a FIFO", "waits forever", 2, lambda w, a: ["validate", _fifo(w, "f.csv")]),
    ("validate a link to /dev/zero", "-", 2,
     lambda w, a: ((w / "z.csv").symlink_to("/dev/zero"), ["validate", str(w / "z.csv")])[1]),
    ("validate a 100,000-column header", "182 s (quadratic check)", 2,
     lambda w, a: ["validate", _text(w, "wide.csv", "gene_id,bin," + ",".join(f"m{i}" for i in range(100_000))
                                     + "\na,0," + ",".join("1" * 100_000) + "\n")]),
    ("validate a CR-only file", "exit 1", 0, lambda w, a: ["validate", _text(w, "cr.csv", GOOD.replace("\n", "\r"))]),
    ("validate a second Gene_ID column", "silently replaces the gene ids", 2,
     lambda w, a: ["validate", _text(w, "d.csv", "gene_id,bin,H3K4me3,Gene_ID\na,0,1,x\n")]),
    ("validate an empty header name", "a mark named ''", 2,
     lambda w, a: ["validate", _text(w, "d.csv", "gene_id,bin,H3K4me3,\na,0,1,2\n")]),
    ("validate negative expression", "accepted", 2,
     lambda w, a: ["validate", _text(w, "d.csv", GOOD.replace(",2\n", ",-2\n"))]),
    ("convert a value above float32's range", "written as inf", 2,
     lambda w, a: ["convert", _text(w, "d.csv", GOOD.replace("a,0,1,", "a,0,1e39,")), str(w / "o.csv")]),
    ("build-table --genes FIFO", "waits forever", 2,
     lambda w, a: ["build-table", *_tracks(w)[:2], "--genes", _fifo(w, "genes.tsv"), "--out", str(w / "o.csv")]),
    ("build-table --bin-size 50 --flank 50000000", "13.8 GB", 2,
     lambda w, a: ["build-table", *_tracks(w), "--out", str(w / "o.csv"), "--bin-size", "50", "--flank", "50000000"]),
    ("train --set n_filters=200000", "13.7 GB", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(w / "m"), "--set",
                   "n_filters=200000"]),
    ("train --batch-size -5", "exit 0, an untrained model saved", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(w / "m"), "--batch-size", "-5"]),
    ("train --batch-size 0", "silently 64", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(w / "m"), "--batch-size", "0"]),
    ("train --lr nan", "exit 1", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(w / "m"), "--lr", "nan"]),
    ("train --seed 2**64", "exit 1", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(w / "m"), "--seed", str(2 ** 64)]),
    ("train --out naming a file", "exit 1", 2,
     lambda w, a: ["train", "--data", SAMPLE, "--model", "deepchrome", "--out", _text(w, "f", "x")]),
    ("evaluate, card edited to n_filters 200000", "9.2 GB", 2,
     lambda w, a: ["evaluate", "--data", SAMPLE, "--model",
                   _model(w, "m", lambda f: _card(f, lambda c: c["config"].update(n_filters=200000)))]),
    ("evaluate, card without marks", "exit 1", 2,
     lambda w, a: ["evaluate", "--data", SAMPLE, "--model", _model(w, "m", lambda f: _card(f, lambda c: c.pop("marks")))]),
    ("evaluate, card deeply nested JSON", "exit 1", 2,
     lambda w, a: ["evaluate", "--data", SAMPLE, "--model", _model(
         w, "m", lambda f: (f / "model_card.json").write_text("[" * 100_000 + "]" * 100_000))]),
    ("evaluate, model_card.json -> /dev/zero", "13.8 GB", 2,
     lambda w, a: ["evaluate", "--data", SAMPLE, "--model", _model(w, "m", lambda f: _replace(f, "model_card.json",
                                                                                              "/dev/zero"))]),
    ("evaluate, model.safetensors a FIFO", "waits forever", 2,
     lambda w, a: ["evaluate", "--data", SAMPLE, "--model", _model(w, "m", lambda f: _replace(f, "model.safetensors",
                                                                                              "fifo"))]),
    ("explain --promoter nan,nan", "accepted", 2,
     lambda w, a: ["explain", "--model", str(BUNDLED), "--data", SAMPLE, "--gene", "SIM00001", "--promoter", "nan,nan",
                   "--out", str(w / "a.csv")]),
    ("explain --steps 1e8", "exit 1", 2,
     lambda w, a: ["explain", "--model", str(BUNDLED), "--data", SAMPLE, "--gene", "SIM00001", "--steps", "100000000",
                   "--out", str(w / "a.csv")]),
    ("explain --gene SYMBOL shared by two genes", "the first of them explained", 2,
     lambda w, a: ["explain", "--model", str(BUNDLED), "--data", _shared_symbol(w), "--gene", "SIMG1", "--out",
                   str(w / "a.csv")]),
    ("explain --out naming a folder", "exit 1", 2,
     lambda w, a: ["explain", "--model", str(BUNDLED), "--data", SAMPLE, "--gene", "SIM00001", "--out",
                   str((w / "results").mkdir() or w / "results")]),
]


def run(argv: list[str], cwd: Path) -> dict:
    """One ``python -m hmviz`` command under /usr/bin/time: exit status, seconds, peak MB, stderr's lines."""
    timing = cwd / ".time"
    cmd = ["/usr/bin/time", "-f", "%M", "-o", str(timing), sys.executable, "-m", "hmviz", *argv]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
        status, err = proc.returncode, proc.stderr.strip().splitlines()
    except subprocess.TimeoutExpired as exc:
        status, err = "timeout", (exc.stderr or b"").decode(errors="replace").splitlines()
    seconds = time.perf_counter() - t0
    lines = timing.read_text().split() if timing.exists() else []
    peak_mb = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    # Shown as the user would see them: paths relative to the folder the command ran in.
    err = [line.replace(f"{cwd}/", "") for line in err]
    return {"exit": status, "s": round(seconds, 2), "peak_mb": round(peak_mb), "stderr": err}


def two_writers(work: Path) -> dict:
    """Two ``train`` runs started together on the same new ``--out``: exactly one may succeed."""
    out = work / "shared-out"
    argv = [sys.executable, "-m", "hmviz", "train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(out),
            "--epochs", "2", "--quiet"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for p in procs:  # communicate: a full stderr pipe cannot block the child; a hung one is killed
        try:
            _, err = p.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            err = f"{err}\nkilled after {TIMEOUT_S} s"
        results.append((p.returncode, err.strip().splitlines()))
    codes = sorted(code for code, _ in results)
    return {"exit": "+".join(map(str, codes)), "s": round(time.perf_counter() - t0, 2), "peak_mb": float("nan"),
            "stderr": [line.replace(f"{work}/", "") for _, err in results for line in err], "ok": codes == [0, 2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bomb-mb", type=int, default=2048, help="MB of rows in the gzip bomb (the issue's: 2048)")
    ap.add_argument("--only", nargs="*", default=None, help="run only the repros whose name contains one of these")
    ap.add_argument("--out", default="repros.json", help="results file under bench/results/")
    args = ap.parse_args()
    rows = []
    chosen = [r for r in REPROS if args.only is None or any(o in r[0] for o in args.only)]
    for name, before, expected, make in chosen:
        with tempfile.TemporaryDirectory(prefix="hmviz-repro-") as tmp:
            work = Path(tmp)
            result = run(make(work, args), work)
        errors = [line for line in result["stderr"] if line.startswith("error:")]
        result.update(name=name, before=before, expected=expected,
                      ok=result["exit"] == expected and (expected == 0 or len(result["stderr"]) == 1 == len(errors)))
        rows.append(result)
        print(f"  {name}: exit {result['exit']} in {result['s']} s, {result['peak_mb']} MB", file=sys.stderr, flush=True)
    if args.only is None or any(o in "two train runs" for o in args.only):
        with tempfile.TemporaryDirectory(prefix="hmviz-repro-") as tmp:
            result = two_writers(Path(tmp))
        rows.append({**result, "name": "two train runs to one new --out", "before": "both exit 0, one result lost",
                     "expected": "0+2"})
    print(f"load average before/after: {os.getloadavg()}")
    print("| repro | issue saw | exit (expected) | seconds | peak MB | message |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        message = next((line for line in r["stderr"] if line.startswith("error:")), "")
        message = message if len(message) <= 110 else message[:107] + "..."
        print(f"| {r['name']} | {r['before']} | {r['exit']} ({r['expected']}){'' if r['ok'] else ' FAILED'} | "
              f"{r['s']:.1f} | {'-' if r['peak_mb'] != r['peak_mb'] else r['peak_mb']} | {message.replace('|', '/')} |")
    write_results(args.out, rows)
    bad = [r["name"] for r in rows if not r["ok"]]
    if bad:
        sys.exit(f"not as expected: {'; '.join(bad)}")


if __name__ == "__main__":
    main()
