"""CI check: a study on a real two-node Ray cluster survives losing a node, and a rerun completes it.

Starts a Ray head node and a worker node on this machine (``ray start``, one CPU each), runs a study
of 22 runs over two tiny datasets on it (``hmviz study run --executor ray``), kills the worker node's
raylet in the middle, lets the driver finish (runs lost with the node are recorded as failed), then
reruns the same command and checks:

* the rerun exits 0 and every run of the spec is finished (status ok);
* every result that was finished before the rerun is kept byte for byte;
* no run was computed twice (``log.jsonl`` has exactly one ``ok`` line per run);
* runs executed on both nodes before the kill.

Exits non-zero (with the reason) on any failure; ``ray stop --force`` at the end either way.
Usage: ``python bench/ray_cluster_check.py [--port 6390] [--timeout 170]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = """name = "ray-cluster-check"
seeds = [1]
marks = ["all-marks", "singles", "leave-one-out"]   # 11 subsets x 2 datasets = 22 runs
epochs = 1
patience = 0
[[datasets]]
name = "cellA"
path = "cellA.csv"
[[datasets]]
name = "cellB"
path = "cellB.csv"
[[models]]
name = "deepchrome"
"""
N_RUNS = 22


def env() -> dict:
    e = dict(os.environ)
    e.update({"RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1",
              # a loopback cluster of this check only: without this, a token left in ~/.ray by any earlier
              # local Ray session turns on token auth for the head, and the worker's `ray start` is refused
              "RAY_AUTH_MODE": "disabled",
              # a shared CI machine: no Ray OOM killer driven by other jobs' memory, and patient start-up
              "RAY_memory_monitor_refresh_ms": "0", "RAY_agent_register_timeout_ms": "300000",
              "RAY_raylet_start_wait_time_s": "300",
              "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), e.get("PYTHONPATH")]))})
    return e


def sh(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, timeout=timeout, env=env(), text=True, capture_output=True, **kw)


def start_commands(port: int) -> list[list[str]]:
    """``ray start`` for a head node (GCS on ``port``) and a worker node, one CPU each. Every port is fixed
    (``port`` + 1..19): with dynamic ports the raylet waits for its agents to write their port files and,
    on a loaded machine, gives up after about 45 s ("Timed out waiting for file metrics_agent_port")."""
    def ports(base: int) -> list[str]:
        return [f"--dashboard-agent-grpc-port={base + 1}", f"--dashboard-agent-listen-port={base + 2}",
                f"--runtime-env-agent-port={base + 3}", f"--metrics-export-port={base + 4}",
                f"--node-manager-port={base + 5}", f"--object-manager-port={base + 6}"]

    common = ["--num-cpus=1", "--disable-usage-stats"]
    return [["ray", "start", "--head", f"--port={port}", "--include-dashboard=false", *common, *ports(port)],
            ["ray", "start", f"--address=127.0.0.1:{port}", *common, *ports(port + 10)]]


def start_cluster(port: int, tries: int = 3) -> None:
    """Start the head and the worker node; on a failed start (a loaded machine: a raylet gives up waiting for
    its agents after about a minute) stop everything and start again, up to ``tries`` times."""
    for attempt in range(1, tries + 1):
        for cmd, what in zip(start_commands(port), ("head node", "worker node")):
            try:  # a raylet that gave up leaves `ray start` waiting: bound it and retry
                r = sh(cmd, timeout=150)
            except subprocess.TimeoutExpired:
                r = subprocess.CompletedProcess(cmd, 124, "", "timed out after 150 s")
            if r.returncode:
                print(f"ray start ({what}) failed (try {attempt} of {tries}): {r.stderr.strip()[-300:]}", flush=True)
                subprocess.run(["ray", "stop", "--force"], env=env(), capture_output=True, timeout=120)
                break
        else:
            return
    fail(f"could not start the two-node cluster in {tries} tries")


def worker_raylet_pids() -> list[int]:
    """PIDs of raylets of non-head nodes on this machine."""
    out = []
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            args = (pid / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"raylet/raylet") and b"--head" not in args:
            out.append(int(pid.name))
    return out


def finished(out: Path) -> dict[str, dict]:
    recs = {}
    for p in (out / "runs").glob("*/result.json"):
        try:
            recs[p.parent.name] = json.loads(p.read_text())
        except (OSError, ValueError):
            pass
    return recs


def fail(msg: str) -> None:
    raise SystemExit(f"RAY CLUSTER CHECK FAILED: {msg}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=6390)
    ap.add_argument("--timeout", type=float, default=170, help="seconds allowed for each study command")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hmviz-ray-check-"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", (
        "from hmviz.data.synthetic import make_sample_dataset\nfrom hmviz.data.io import write_long\n"
        "for i, name in enumerate(['cellA', 'cellB']):\n"
        "    write_long(make_sample_dataset(n_genes=120, seed=10 + i)[0], f'{name}.csv')\n")],
        cwd=work, env=env(), check=True, timeout=120)
    (work / "spec.toml").write_text(SPEC)
    out = work / "out"
    address = f"127.0.0.1:{args.port}"
    study = [sys.executable, "-m", "hmviz", "study", "run", "spec.toml", "--out", str(out), "--executor", "ray",
             "--address", address, "--quiet"]
    try:
        start_cluster(args.port)
        workers = worker_raylet_pids()
        if len(workers) != 1:
            fail(f"expected one worker-node raylet on this machine, found {workers}")
        print(f"cluster up: head + worker node (raylet pid {workers[0]}) after {time.perf_counter() - t0:.0f} s",
              flush=True)

        print("+", " ".join(study), flush=True)
        driver = subprocess.Popen(study, cwd=work, env=env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + args.timeout
        # Kill the worker node once both nodes have finished runs (so it has done part of the study) and
        # at least 4 runs are done, but not all.
        while True:
            done = finished(out)
            if len(done) >= 4 and len({r.get("node") for r in done.values()} - {None}) >= 2:
                break
            if driver.poll() is not None or time.monotonic() > deadline:
                fail("the study ended or stalled before both nodes had finished runs:\n"
                     f"{driver.communicate()[0][-3000:]}")
            time.sleep(0.1)
        before_kill = finished(out)
        if len(before_kill) >= N_RUNS:
            fail("the study finished before the worker node could be killed; nothing was tested")
        os.kill(workers[0], signal.SIGKILL)
        print(f"killed the worker node's raylet (pid {workers[0]}) with {len(before_kill)} of {N_RUNS} runs "
              "finished", flush=True)
        try:
            first_out, _ = driver.communicate(timeout=max(10.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            driver.kill()
            fail("the first study command did not end after the node was killed")
        after_first = finished(out)
        ok_first = {k: (out / "runs" / k / "result.json").read_bytes() for k, r in after_first.items()
                    if r.get("status") == "ok"}
        lost = sum(r.get("status") != "ok" for r in after_first.values())
        print(f"first command exited {driver.returncode}: {len(ok_first)} ok, {lost} lost with the node "
              f"(recorded as failed), {N_RUNS - len(after_first)} not started", flush=True)

        r = sh(study, timeout=args.timeout, cwd=work)
        print(r.stderr[-600:], flush=True)
        if r.returncode != 0:
            fail(f"the rerun exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        final = finished(out)
        if len(final) != N_RUNS or any(x.get("status") != "ok" for x in final.values()):
            fail(f"after the rerun {sum(x.get('status') == 'ok' for x in final.values())} of {N_RUNS} runs are ok")
        changed = [k for k, b in ok_first.items() if (out / "runs" / k / "result.json").read_bytes() != b]
        if changed:
            fail(f"{len(changed)} finished results were rewritten by the rerun: {changed[:3]}")
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        ok_counts: dict[str, int] = {}
        for e in log:
            if e["status"] == "ok":
                ok_counts[e["run_id"]] = ok_counts.get(e["run_id"], 0) + 1
        twice = [k for k, n in ok_counts.items() if n > 1]
        if twice or len(ok_counts) != N_RUNS:
            fail(f"runs computed twice: {twice}; runs computed ok: {len(ok_counts)} of {N_RUNS}")
        nodes = {x.get("node") for x in before_kill.values() if x.get("status") == "ok"} | {
            x.get("node") for x in after_first.values() if x.get("status") == "ok"}
        if len(nodes - {None}) < 2:
            fail(f"the runs before the kill ran on {len(nodes - {None})} node(s), not both")
        table = subprocess.run([sys.executable, "-c", "import pandas as pd, sys; t = pd.read_parquet(sys.argv[1]); "
                                "print(len(t), sorted(t.dataset.unique()), (t.status == 'ok').all())",
                                str(out / "results.parquet")], env=env(), text=True, capture_output=True).stdout
        print(f"results.parquet: {table.strip()}")
        print(f"RAY CLUSTER CHECK PASSED in {time.perf_counter() - t0:.0f} s: {N_RUNS} runs on 2 nodes, worker node "
              f"killed after {len(before_kill)}; rerun computed {N_RUNS - len(ok_first)}, kept {len(ok_first)} "
              "byte for byte, none computed twice", flush=True)
        return 0
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env(), capture_output=True, timeout=120)


if __name__ == "__main__":
    sys.exit(main())
