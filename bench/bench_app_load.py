"""A busy server: how long does a fourth user wait for each page while three users train?

In a real browser (Playwright + Debian's chromium, as ``tests/st_e2e.py``): one ``streamlit run app.py``
with the bundled models and the app's own defaults (job workers, PyTorch threads). Three browser
contexts open the Train page and start a long training each (deepchrome, ``--epochs`` epochs, patience
0 so none stops early); the app's job pool runs as many as it has workers and queues the rest. Their
pages keep polling the server for progress; by default (``--trainers-browser elsewhere``) they run in a
second chromium at the lowest CPU priority, since on a real server those users' browsers run on their
own computers (``same``: in the fourth user's chromium, on its cores). A
fourth context then opens every page by its URL (a fresh load, as a shared link would) and by the
sidebar, ``--rounds`` times; a page's time runs from the navigation to its script run finished and its
charts drawn. The same visits are timed first with no training running (the baseline, same server),
after a first round on the fresh server (its times are printed apart: first visits import and load).
Finally the server is stopped with SIGTERM while the trainings run: its exit status and time are
reported (0, within seconds, is a clean stop).

A page is served (:data:`SERVED`) when its heading is shown, the server's run of its script has finished
and its figures have drawn. Each visit also records its phases (document loaded, heading shown, script
finished, figures drawn), the time the fourth user's browser was busy on it (its main thread's
tasks: script, style, layout, paint; Chrome's ``TaskDuration``) and the server's own run of the page (the router writes it when
``HMVIZ_PAGE_TIMES`` is set: :mod:`hmviz_app.timing`); the cores used by the server, its job processes,
this benchmark's browser and the rest of the machine during the idle and busy visits; and ``ps`` of the
job processes (niceness, scheduling policy, threads). ``--profile`` records the server with py-spy during
the busy visits. ``--streamlit OPTION=VALUE`` and ``--env NAME=VALUE`` change the server's settings, to
compare two settings with the same command (alternate the runs: the machine's load drifts).

Not a timed test: it prints a table and writes ``bench/results/app_load.json`` (``--out``).

    python bench/bench_app_load.py [--rounds 2] [--epochs 300] [--workers N] [--pages data evaluate]
        [--streamlit runner.postScriptGC=true] [--env HMVIZ_JOB_SCHED=normal] [--no-idle] [--profile]

``--env HMVIZ_JOB_HOLD=off`` measures without the page hold (the trainings keep the CPU while the fourth
user's browser, on this machine, draws: :class:`hmviz_app.job_process.PageHold`). ``--cpu-slowdown 2.3``
runs the fourth user's page 2.3 times slower (Chrome's CPU throttling): the browser of a slower machine (on
6 December 2026 two shared machines of the same description differed that much in their idle page times).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from st_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_COUNTER_JS,
    free_port,
    healthy,
    run_and_wait,
)

from _results import write_results

TARGET_S = 3.0
#: How long one page may take before it counts as not served (set by --timeout).
PAGE_TIMEOUT_MS = 180_000
#: (title, url path, charts drawn when the page is complete)
PAGES = [("Data", "data", 1), ("Train", "train", 0), ("Evaluate", "evaluate", 3), ("Gene pairs", "gene_pairs", 3),
         ("Attributions", "attributions", 3), ("Attention", "attention", 0), ("Ablation", "ablation", 0)]


def _finished(page, before: int, timeout_ms: int | None = None) -> None:
    timeout_ms = PAGE_TIMEOUT_MS if timeout_ms is None else timeout_ms
    page.wait_for_function("""n => window.__stRuns > n && document.querySelector('[data-testid="stApp"]')
                              .getAttribute('data-test-script-state') === 'notRunning'""", arg=before,
                           timeout=timeout_ms)


def _charts_drawn(page, count: int) -> None:
    """Wait until at least ``count`` plotly charts are on the page and every one has drawn its SVG."""
    page.wait_for_function(
        """n => { const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
                  return charts.length >= n && [...charts].every(c => c.querySelector('.js-plotly-plot .main-svg')); }""",
        arg=count, timeout=PAGE_TIMEOUT_MS)


def by_url(page, url: str, title: str, charts: int) -> dict:
    """A fresh load of ``url`` (a new document: the run counter restarts) to the page served (see
    :data:`SERVED`); the seconds to each phase."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    phases = {"document_s": time.perf_counter() - t0}
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    phases["heading_s"] = time.perf_counter() - t0
    _finished(page, 0)
    phases["script_done_s"] = time.perf_counter() - t0
    _charts_drawn(page, charts)
    phases["s"] = time.perf_counter() - t0
    return phases


def by_sidebar(page, title: str, charts: int) -> dict:
    t0 = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
    phases = {"heading_s": time.perf_counter() - t0}
    page.wait_for_function("""() => document.querySelector('[data-testid="stApp"]')
                              .getAttribute('data-test-script-state') === 'notRunning'""", timeout=PAGE_TIMEOUT_MS)
    phases["script_done_s"] = time.perf_counter() - t0
    _charts_drawn(page, charts)
    phases["s"] = time.perf_counter() - t0
    return phases


#: What "the page is served" means here: its title (heading) is shown, the server's run of its script has
#: finished (every control and number of the page is on it, no spinner left) and its figures (the
#: number given in PAGES) have drawn their SVG. Its time runs from the click on the sidebar link or the
#: start of the navigation to that URL.
SERVED = "heading shown + script run finished + its figures drawn"


def _timed(fn, *args) -> dict:
    """The phases of ``fn(*args)`` (``s``: the page served), or ``s`` infinity when the page did not complete
    within the time limit (or the browser lost it meanwhile: a page that timed out can still be navigating
    when the next visit starts)."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        return fn(*args)
    except PlaywrightError as exc:
        print(f"  not served: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
        return {"s": float("inf")}


def _server_run(times_file: Path | None, path: str, since: float) -> dict | None:
    """The server's record (``hmviz_app.timing``) of the last whole-app run of ``path`` that ended after
    ``since`` (wall clock), if any."""
    if times_file is None or not times_file.exists():
        return None
    runs = [json.loads(line) for line in times_file.read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r["page"] == path and r["end"] >= since]
    return runs[-1] if runs else None


class BrowserBusy:
    """How long the page's main thread has been busy running tasks (script, style, layout, paint; the wall
    time of its tasks, Chrome's ``TaskDuration``) since this object was made. A DevTools session of its own
    per visit: ``TaskDuration`` counts from the ``Performance.enable`` of that session (one session kept
    over several documents gave wrong figures after some navigations). NaN when the count went backwards
    (the page moved to a new renderer process meanwhile)."""

    def __init__(self, page) -> None:
        self._cdp = page.context.new_cdp_session(page)
        self._cdp.send("Performance.enable")
        self._start = self._task_s()

    def _task_s(self) -> float:
        return next(m["value"] for m in self._cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "TaskDuration")

    def seconds(self) -> float:
        end = self._task_s()
        self._cdp.detach()
        return end - self._start if end >= self._start else float("nan")


def visit_all(page, url: str, rounds: int, times_file: Path | None = None) -> dict:
    """Every page by URL and by sidebar, ``rounds`` times: {"url": {title: [s...]}, "sidebar": {...},
    "phases": [{how, page, phases..., server_s, server_cpu_s}...]}."""
    out: dict = {"url": {t: [] for t, _, _ in PAGES}, "sidebar": {t: [] for t, _, _ in PAGES}, "phases": []}

    def one(how: str, title: str, path: str, fn, *args) -> None:
        since = time.time()
        busy = BrowserBusy(page)
        phases = _timed(fn, *args)
        busy_s = busy.seconds()
        if math.isfinite(phases["s"]) and math.isfinite(busy_s):
            phases["browser_s"] = busy_s
        run = _server_run(times_file, path, since)
        if run is not None:
            phases.update(server_s=run["s"], server_cpu_s=run["cpu_s"])
        out[how][title].append(phases["s"])
        out["phases"].append({"how": how, "page": title, **phases})
        extra = "".join(f" {k}={v:.2f}" for k, v in phases.items() if k != "s")
        print(f"  {how} {title}: {phases['s']:.2f} s ({extra.strip()})", file=sys.stderr, flush=True)

    for _ in range(rounds):
        for title, path, charts in PAGES:
            one("url", title, path, by_url, page, f"{url}/{path}", title, charts)
        for title, path, charts in PAGES[1:] + PAGES[:1]:
            one("sidebar", title, path, by_sidebar, page, title, charts)
    return out


# ------------------------------------------------------------------ where the machine's CPU went
def _proc_table() -> dict[int, tuple[int, float, float, str]]:
    """{pid: (parent pid, own CPU seconds so far, CPU seconds of its children that exited and were reaped,
    command name)} of every process readable in /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick,
                             (int(fields[13]) + int(fields[14])) / tick, name)
    return table


def _machine_cpu_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _descendants(table: dict, root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, (ppid, *_) in table.items() if ppid == parent and pid not in found]
        found.update(kids)
        frontier.extend(kids)
    return found


def _lowest_priority_chromium(pid_file: Path) -> Path:
    """A chromium launcher at the lowest CPU priority (SCHED_IDLE, nice 19) that writes its pid to
    ``pid_file``: the three trainers' browsers, which on a real server run on their users' own computers,
    so that drawing their progress does not take the cores of the fourth user's browser."""
    launcher = pid_file.with_suffix(".sh")
    launcher.write_text(f"#!/bin/sh\necho $$ > '{pid_file}'\nexec chrt -i 0 nice -n 19 '{CHROMIUM}' \"$@\"\n")
    launcher.chmod(0o755)
    return launcher


def cpu_snapshot(server_pid: int, others_pid_file: Path | None = None) -> dict:
    """Where the CPU has gone so far, per process: the server, its job processes, this benchmark's browser
    for the fourth user (and the driver), the trainers' browser when it runs apart (``others_pid_file``);
    and the machine in all. :func:`cpu_share` turns two snapshots into cores used."""
    table = _proc_table()
    jobs = _descendants(table, server_pid) - {server_pid}
    others: set[int] = set()
    if others_pid_file is not None and others_pid_file.exists():
        others = _descendants(table, int(others_pid_file.read_text()))
    ours = _descendants(table, os.getpid()) - _descendants(table, server_pid) - {os.getpid()} - others
    groups = {"server": {server_pid}, "jobs": jobs, "browser": ours, "trainers_browser": others}
    procs = {pid: (name, table[pid][1], table[pid][2]) for name, pids in groups.items() for pid in pids if pid in table}
    return {"procs": procs, "server_pid": server_pid, "machine": _machine_cpu_s(), "wall": time.monotonic()}


GROUPS = ("server", "jobs", "browser", "trainers_browser")


def cpu_share(before: dict, after: dict) -> dict:
    """Cores used on average between two snapshots by each group (``other``: the rest of the machine).
    Per process: its own CPU time since the first snapshot (all of it if it started since); a process that
    exited meanwhile counts through its parent, which reaped it (the server's exited children are job
    processes, a browser's are its renderers): the growth of the parent's children's time, less what the
    exited process had used before the first snapshot. Never negative."""
    wall = after["wall"] - before["wall"]
    used = dict.fromkeys(GROUPS, 0.0)
    for pid, (group, own, reaped) in after["procs"].items():
        _, own0, reaped0 = before["procs"].get(pid, (group, 0.0, reaped))
        used[group] += own - own0
        used["jobs" if pid == after["server_pid"] else group] += reaped - reaped0
    for pid, (group, own0, reaped0) in before["procs"].items():
        if pid not in after["procs"]:  # exited: its time before the first snapshot is not this window's
            used[group] -= own0 + reaped0
    used = {k: max(0.0, v) for k, v in used.items()}
    used = {k: v / wall for k, v in used.items()}
    used["machine"] = (after["machine"] - before["machine"]) / wall
    used["other"] = max(0.0, used["machine"] - sum(used[k] for k in GROUPS))
    return {k: round(v, 2) for k, v in used.items()}


def job_processes(server_pid: int) -> str:
    """``ps`` of the server and its job processes: niceness, scheduling class, threads, CPU %."""
    table = _proc_table()
    pids = sorted(_descendants(table, server_pid))
    return subprocess.run(["ps", "-o", "pid,ni,cls,nlwp,pcpu,cmd", "-p", ",".join(map(str, pids))],
                          capture_output=True, text=True).stdout


def start_training(browser, url: str, epochs: int):
    """A user who opens the Train page and starts a long deepchrome run; returns their page, or None when
    the Train page did not let them start within the time limit (a result too: the server is not serving)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(max(PAGE_TIMEOUT_MS, 180_000))
    page.add_init_script(RUN_COUNTER_JS)
    t0 = time.perf_counter()
    try:
        page.goto(f"{url}/train", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        _finished(page, 0, timeout_ms=max(PAGE_TIMEOUT_MS, 180_000))
        for name, value in (("Epochs (at most)", epochs), ("Patience (epochs)", 0)):
            box = page.get_by_role("spinbutton", name=name)
            run_and_wait(page, lambda box=box, value=value: (box.fill(str(value)), box.press("Enter")),
                         timeout_ms=max(PAGE_TIMEOUT_MS, 180_000))
        page.get_by_role("button", name="Train", exact=True).click()  # its job panel then polls the job
        page.get_by_text(re.compile("Waiting for a free worker|Preparing the data|Training: epoch")).first.wait_for()
    except PlaywrightTimeoutError:
        print(f"  a trainer could not start within {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        return None
    print(f"  a trainer started in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return page


def _trainer_states(trainers) -> list[str]:
    states = []
    for t in trainers:
        text = t.get_by_test_id("stMain").inner_text()[:4000] if t is not None else ""
        states.append("not started" if t is None else "queued" if "Waiting for a free worker" in text
                      else "running" if "epoch" in text else "?")
    return states


def _median(values) -> float:
    return statistics.median(values) if values else float("nan")


def _max(values) -> float:
    return max(values) if values else float("nan")


def summary(times: dict) -> dict:
    flat = [t for how in ("url", "sidebar") for ts in times[how].values() for t in ts]
    return {"median_s": _median(flat), "max_s": _max(flat),
            "max_by_page_s": {title: _max(times["url"][title] + times["sidebar"][title]) for title, _, _ in PAGES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="visits of every page (by URL and by sidebar)")
    ap.add_argument("--epochs", type=int, default=300, help="epochs of each training (long enough to outlast the visits)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds a page may take before it counts as not served")
    ap.add_argument("--workers", type=int, default=0, help="HMVIZ_APP_WORKERS for the server (0: the app's default)")
    ap.add_argument("--pages", nargs="+", default=None, help="url paths of the pages to visit (default: all)")
    ap.add_argument("--out", default="app_load.json", help="results file under bench/results/")
    ap.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                    help="environment of the server (e.g. HMVIZ_JOB_NICENESS=10, to compare settings)")
    ap.add_argument("--streamlit", nargs="*", default=[], metavar="OPTION=VALUE",
                    help="Streamlit options for the server (e.g. runner.postScriptGC=true, the old setting)")
    ap.add_argument("--profile", action="store_true",
                    help="record the server with py-spy during the busy visits (test-results/bench-load-busy-*.txt)")
    ap.add_argument("--trainers-browser", choices=("elsewhere", "same"), default="elsewhere",
                    help="elsewhere (default): the three trainers' pages run in a second chromium at the lowest "
                    "priority, as on their own computers (their pages still poll the server); same: in the "
                    "fourth user's chromium, sharing its cores")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle visits (after the warm-up)")
    ap.add_argument("--cpu-slowdown", type=float, default=1.0, metavar="RATE",
                    help="run the fourth user's page RATE times slower (Chrome's CPU throttling), as on a slower "
                         "computer: it recreates a slower machine's browser; the server and jobs are not slowed")
    args = ap.parse_args()
    global PAGES
    if args.pages:
        PAGES = [p for p in PAGES if p[1] in args.pages]
    global PAGE_TIMEOUT_MS
    PAGE_TIMEOUT_MS = int(args.timeout * 1000)
    if not Path(CHROMIUM).exists():
        sys.exit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    (ROOT / "test-results").mkdir(exist_ok=True)
    port = free_port()
    url = f"http://localhost:{port}"
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("HMVIZ_TORCH_THREADS", None)
    if args.workers:
        env["HMVIZ_APP_WORKERS"] = str(args.workers)
    env.update(dict(item.split("=", 1) for item in args.env))
    times_file = ROOT / "test-results" / f"bench-load-times-{port}.jsonl"
    times_file.unlink(missing_ok=True)
    pid_file = ROOT / "test-results" / f"bench-load-trainers-browser-{port}.pid"
    pid_file.unlink(missing_ok=True)
    env["HMVIZ_PAGE_TIMES"] = str(times_file)
    log = open(ROOT / "test-results" / f"bench-load-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.fileWatcherType", "none",
                             *[part for item in args.streamlit for part in ("--" + item.split("=", 1)[0],
                                                                             item.split("=", 1)[1])]],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    out: dict = {"python": platform.python_version(), "cpus": os.cpu_count(), "epochs": args.epochs,
                 "trainers_browser": args.trainers_browser,
                 "workers": args.workers or "default", "env": args.env, "cpu_slowdown": args.cpu_slowdown,
                 "streamlit": args.streamlit, "served": SERVED,
                 "load_before": os.getloadavg()}
    try:
        while not healthy(url):
            if proc.poll() is not None:
                sys.exit("streamlit exited; see test-results/bench-load-server-*.log")
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            fourth = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            fourth.set_default_timeout(PAGE_TIMEOUT_MS)
            fourth.add_init_script(RUN_COUNTER_JS)
            if args.cpu_slowdown > 1:  # kept over this page's navigations (checked: by-URL times scale with it)
                fourth.context.new_cdp_session(fourth).send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
            print("warm-up visits", file=sys.stderr, flush=True)
            out["first"] = visit_all(fourth, url, 1, times_file)  # first visits import torch, load models, fill caches
            print("idle visits", file=sys.stderr, flush=True)
            cpu0 = cpu_snapshot(proc.pid)
            out["idle"] = visit_all(fourth, url, 0 if args.no_idle else args.rounds, times_file)
            out["cpu_idle"] = cpu_share(cpu0, cpu_snapshot(proc.pid))
            out["load_idle"] = os.getloadavg()
            others = browser
            if args.trainers_browser == "elsewhere":
                others = p.chromium.launch(executable_path=str(_lowest_priority_chromium(pid_file)), args=CHROMIUM_ARGS)
            trainers = [start_training(others, url, args.epochs) for _ in range(3)]
            print("three trainings started", file=sys.stderr, flush=True)
            time.sleep(5)  # the first training is past its data preparation
            out["trainers"] = _trainer_states(trainers)
            print(f"busy visits (trainers: {out['trainers']})", file=sys.stderr, flush=True)
            out["ps_busy"] = job_processes(proc.pid)
            print(out["ps_busy"], file=sys.stderr, flush=True)
            cpu0 = cpu_snapshot(proc.pid, pid_file)
            spy = None
            if args.profile:
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(proc.pid), "--rate", "50", "--format", "raw",
                                        "--threads", "--nonblocking", "--subprocesses",
                                        "-o", str(ROOT / "test-results" / f"bench-load-busy-{port}.txt")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out["busy"] = visit_all(fourth, url, args.rounds, times_file)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            out["cpu_busy"] = cpu_share(cpu0, cpu_snapshot(proc.pid, pid_file))
            out["load_busy"] = os.getloadavg()
            out["trainers_after"] = _trainer_states(trainers)
            if others is not browser:
                others.close()
            browser.close()
    finally:
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            out["stop_exit_status"] = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out["stop_exit_status"] = f"killed after 60 s ({proc.wait()})"
        out["stop_s"] = time.perf_counter() - t0
        log.close()

    out["summary"] = {"idle": summary(out["idle"]), "busy": summary(out["busy"])}
    print(f"load average before/idle/busy: {out['load_before']} / {out['load_idle']} / {out['load_busy']}")
    print(f"trainers while timing: {out['trainers']} -> {out['trainers_after']}")
    print(f"{'page':14s} {'idle median':>12s} {'idle max':>9s} {'busy median':>12s} {'busy max':>9s}")
    for title, _, _ in PAGES:
        idle = out["idle"]["url"][title] + out["idle"]["sidebar"][title]
        busy = out["busy"]["url"][title] + out["busy"]["sidebar"][title]
        print(f"{title:14s} {_median(idle):12.2f} {_max(idle):9.2f} {_median(busy):12.2f} {_max(busy):9.2f}")
    print("median seconds of each phase (heading shown / script run finished / figures drawn = served; the "
          "fourth user's browser busy on the page (main thread); the server's own run of the page and its CPU):")
    first = [r for r in out["first"]["phases"] if r["how"] == "url"]
    print("first visits (a fresh server, idle, by URL): " + "; ".join(
        f"{r['page']} {r['s']:.2f} s (server {r.get('server_s', float('nan')):.2f} s)" for r in first))
    for cond in ("idle", "busy"):
        for title, _, _ in PAGES:
            rows = [r for r in out[cond]["phases"] if r["page"] == title]
            cells = {k: _median([r[k] for r in rows if k in r and math.isfinite(r[k])])
                     for k in ("heading_s", "script_done_s", "s", "browser_s", "server_s", "server_cpu_s")}
            print(f"  {cond:4s} {title:14s} " + " ".join(f"{k}={v:.2f}" for k, v in cells.items()))
        print(f"  {cond}: cores used on average (server, jobs, the fourth user's browser, the trainers' browser, "
              f"other users): {out['cpu_' + cond]}")
    print(f"busy max {out['summary']['busy']['max_s']:.2f} s (target < {TARGET_S:g} s); "
          f"SIGTERM -> exit status {out['stop_exit_status']} in {out['stop_s']:.1f} s")
    write_results(args.out, out)


if __name__ == "__main__":
    main()
