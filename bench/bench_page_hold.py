"""Pages first (hmviz_app.job_process.PageHold): how much CPU does a training job get, in a real server and
browser, while its trainer's page only polls its progress, and while another user opens pages?

One ``streamlit run app.py`` per setting of ``HMVIZ_JOB_HOLD`` (``off`` and ``all``: in ``all`` every page
run holds, so the benchmark's browser on this machine stands for a local user's). A user starts a
300-epoch DeepChrome run on the Train page (as ``bench_app_load.py``); after ``--settle`` seconds the job
process's CPU (user + system, from ``/proc``) is read over ``--seconds`` seconds while only that page polls
the job (a fragment rerun every 2 s: it must hold nothing), then while a second user opens the Data page by
URL every 2 s (each load is a page run: the job pauses, at most half of its time). Prints a table and
writes ``bench/results/page_hold.json``.

    python bench/bench_page_hold.py [--seconds 15] [--settle 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_app_load import start_training
from st_e2e import CHROMIUM, CHROMIUM_ARGS, streamlit_running

from _results import write_results


def _children(parent: int) -> list[int]:
    """The job processes of the server ``parent`` (multiprocessing's spawned children)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmd:
            found.append(int(name))
    return found


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pid() -> int:
    """The newest ``streamlit run app.py`` process."""
    return max(int(p) for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/cmdline")
               and b"streamlit\0run\0app.py" in Path(f"/proc/{p}/cmdline").read_bytes())


def _cores(pids: list[int], during) -> float:
    """Cores used by ``pids`` while ``during()`` runs."""
    before = {p: _cpu_s(p) for p in pids}
    t0 = time.monotonic()
    during()
    return sum(_cpu_s(p) - before[p] for p in pids) / (time.monotonic() - t0)


def measure(mode: str, seconds: float, settle: float) -> dict:
    from playwright.sync_api import sync_playwright

    with streamlit_running("app.py", env={"HMVIZ_JOB_HOLD": mode}) as url, sync_playwright() as pw:
        server = _server_pid()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if start_training(browser, url, 300) is None:
            raise SystemExit("the training did not start")
        time.sleep(settle)
        jobs = _children(server)
        polling = _cores(jobs, lambda: time.sleep(seconds))
        other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()

        def open_pages() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                other.goto(f"{url}/data")
                time.sleep(2)

        browsing = _cores(jobs, open_pages)
        browser.close()
    return {"mode": mode, "job_processes": len(jobs), "cores_while_its_page_polls": polling,
            "cores_while_another_user_opens_pages": browsing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each reading (default 15)")
    ap.add_argument("--settle", type=float, default=12.0, help="wait after the training starts (default 12)")
    ap.add_argument("--out", default="page_hold.json")
    args = ap.parse_args()
    rows = [measure(mode, args.seconds, args.settle) for mode in ("off", "all")]
    print(f"{'HMVIZ_JOB_HOLD':<16}{'job cores, its page polling':>30}{'job cores, another user browsing':>36}")
    for r in rows:
        print(f"{r['mode']:<16}{r['cores_while_its_page_polls']:>30.2f}{r['cores_while_another_user_opens_pages']:>36.2f}")
    write_results(Path(args.out) if "/" in args.out else args.out,
                  {"cpus": os.cpu_count(), "load": os.getloadavg(), "seconds": args.seconds, "rows": rows})


if __name__ == "__main__":
    main()
