"""Sweep time and resident memory of the daemon, beside a minimal reference loop in the same run.

Against an isolated engine of its own (tests/support/engine.py: root, dockerd and busybox-static), with 100
busybox containers running (5 of them named warned-*), two contenders, each a process of its own, one after
the other, sweep all running containers back to back until 10,000 container checks are done:

- reference: raw HTTP on the engine's socket, kept-alive connections: list, then inspect + one-shot stats
  of every container on 100 threads, JSON decoded, nothing judged, recorded or kept;
- docker-enforcer: the real daemon (`Daemon(settings, policy).run()`, status API, detections store, event
  watcher and all) on a thread of its own process, whose main thread calls its `Sweeper.sweep()` back to
  back instead of waiting CHECK_INTERVAL_S between sweeps. The rules read metrics; a WARN-only rule flags
  the 5 warned-* containers in every sweep, so that findings are logged and recorded too.

Each process reports its resident memory (VmRSS of /proc/self/status) every tenth of the checks. Goals for
docker-enforcer: a sweep of the 100 containers with metrics in at most 2 s (the median sweep: a one-shot
stats request waits for the engine's next 1 s stats tick, and on a loaded machine the engine's collection
can push a sweep, the reference's as well, past a second tick; the sweeps over 2 s are counted for both);
resident memory after 10,000 checks at most 100 MB and flat from 5,000 to 10,000 (at most 5 % more). The exit
status is 1 when a goal is missed.

    python benchmarks/sweep_memory.py [--containers 100] [--checks 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import support.bench as bench  # noqa: E402
from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

SWEEP_GOAL_S = 2.0
RSS_GOAL_MB = 100.0
FLAT_GOAL = 0.05  # at most 5 % growth from 5,000 to 10,000 checks
WARNED = 5
RULES = """
rules = [
    {"name": "no more than 1 GB of memory", "rule": lambda c: c.metrics["memory_stats"]["usage"] > 1024**3},
    {"name": "no memory limit", "mode": "WARN",
     "rule": lambda c: c.name.startswith("warned") and c.params["HostConfig"]["Memory"] == 0},
]
"""


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Progress:
    """Reports each sweep's duration, and the RSS every `every` checks."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.next_report = every

    def sweep(self, checks: int, seconds: float) -> None:
        emit(kind="sweep", checks=checks, seconds=seconds)
        while checks >= self.next_report:
            emit(kind="rss", checks=self.next_report, rss_mb=bench.rss_mb())
            self.next_report += self.every


# -- the reference loop: `sweep_memory.py --reference SOCKET --checks N` -----------------------------------
def reference_loop(sock_path: str, checks: int, every: int) -> int:
    raw = bench.RawReader(sock_path)
    pool = ThreadPoolExecutor(100)
    progress, done = Progress(every), 0
    while done < checks:
        started = time.perf_counter()
        listed = raw.get("/containers/json")
        done += len(list(pool.map(raw.facts, [c["Id"] for c in listed])))
        progress.sweep(done, time.perf_counter() - started)
    pool.shutdown()
    return 0


# -- docker-enforcer: `sweep_memory.py --enforcer --checks N` (settings from the environment) -------------
def enforcer_loop(checks: int, every: int) -> int:
    from enforcer import logs
    from enforcer.daemon import Daemon
    from enforcer.judge.policy import load_policy
    from enforcer.settings import Settings

    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_level, settings.log_format)
    daemon = Daemon(settings, load_policy(settings))
    runner = threading.Thread(target=daemon.run, name="daemon")
    runner.start()
    deadline = time.monotonic() + 60
    while daemon.health.snapshot().last_sweep.end is None:  # connected, catch-up sweep done
        if time.monotonic() > deadline or not runner.is_alive():
            raise RuntimeError("the daemon did not start")
        time.sleep(0.05)
    assert daemon.sweeper is not None

    def checked() -> int:
        value = daemon.metrics.registry.get_sample_value(
            "docker_enforcer_checks_total", {"source": "periodic"}
        )
        return int(value or 0)

    progress, first = Progress(every), checked()  # the catch-up sweep's checks are not counted
    while checked() - first < checks:
        started = time.perf_counter()
        daemon.sweeper.sweep()
        progress.sweep(checked() - first, time.perf_counter() - started)
    daemon.stop.set()
    runner.join(10)
    return 0


# -- the driver --------------------------------------------------------------------------------------------
def start_containers(engine: Engine, image: str, count: int) -> None:
    def one(n: int) -> None:
        with engine.api() as api:
            name = f"warned-{n}" if n < WARNED else f"clean-{n:03d}"
            cid = api.create_container(
                image,
                ["sleep", "3600"],
                name=name,
                host_config=api.create_host_config(),
                stop_signal="SIGKILL",
            )["Id"]
            api.start(cid)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def run_contender(
    args: list[str], env: dict[str, str], log_path: Path, timeout: float
) -> list[dict[str, Any]]:
    with open(log_path, "wb") as log:
        done = subprocess.run(
            [sys.executable, __file__, *args], env=env, stdout=subprocess.PIPE, stderr=log, timeout=timeout
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed ({done.returncode}); see {log_path}:\n{log_path.read_text()[-3000:]}"
        )
    return [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]


def enforcer_env(engine: Engine, workdir: Path) -> dict[str, str]:
    # The benchmark calls the sweeps itself, back to back: the scheduled ones stay far away.
    return bench.enforcer_env(engine, workdir, RULES, RUN_PERIODIC="True", CHECK_INTERVAL_S="600")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--every", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per contender")
    parser.add_argument("--reference", metavar="SOCKET", help=argparse.SUPPRESS)
    parser.add_argument("--enforcer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        return reference_loop(args.reference, args.checks, args.every)
    if args.enforcer:
        return enforcer_loop(args.checks, args.every)
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2

    workdir = trusted_tempdir("de-sweepbench-")  # not under /tmp: the loader refuses rules files there
    engine = start_engine()
    try:
        start_containers(engine, ensure_busybox_image(engine), args.containers)
        checks = ["--checks", str(args.checks), "--every", str(max(1, args.checks // 10))]
        results = {
            "reference loop": run_contender(
                ["--reference", str(engine.socket), *checks],
                dict(os.environ),
                workdir / "reference.log",
                args.timeout,
            ),
            "docker-enforcer": run_contender(
                ["--enforcer", *checks], enforcer_env(engine, workdir), workdir / "enforcer.log", args.timeout
            ),
        }
        log = (workdir / "enforcer.log").read_text().splitlines()
        warned = sum("violation: container=warned-" in line for line in log)
        cold = next((line.rpartition(": ")[2] for line in log if "sweep of" in line), "?")
        print(f"\ndocker-enforcer's catch-up sweep at start (params not cached yet): {cold}")
        met = report(args, results, warned)
        if met:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the logs are kept in {workdir}")
        return 0 if met else 1
    finally:
        engine.destroy()


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], warned: int) -> bool:
    every, half = max(1, args.checks // 10), args.checks // 2
    marks = (every, half, args.checks)
    print(f"\n{args.containers} running containers, sweeps back to back until {args.checks} checks\n")
    head = "".join(f"{f'RSS {n}':>11}" for n in marks)
    print(
        f"{'':18}{'sweeps':>7}{'> 2 s':>7}{'first':>9}{'p50':>9}{'max':>9}{head}{f'{half}->{args.checks}':>13}"
    )
    figures = {}
    for name, lines in results.items():
        sweeps = [line["seconds"] for line in lines if line["kind"] == "sweep"]
        rss = {line["checks"]: line["rss_mb"] for line in lines if line["kind"] == "rss"}
        at = [rss.get(n, rss[max(k for k in rss if k <= n)]) for n in marks]
        growth = at[2] / at[1] - 1
        figures[name] = (sweeps, at, growth)
        print(
            f"{name:18}{len(sweeps):>7}{sum(t > SWEEP_GOAL_S for t in sweeps):>7}{sweeps[0]:>8.2f}s{statistics.median(sweeps):>8.2f}s{max(sweeps):>8.2f}s"
            + "".join(f"{mb:>8.1f} MB" for mb in at)
            + f"{growth * 100:>+12.1f}%"
        )
    print(f"\nRSS every {every} checks (MB):")
    for name, lines in results.items():
        print(f"  {name:18}" + " ".join(f"{line['rss_mb']:.1f}" for line in lines if line["kind"] == "rss"))
    print(f"violation lines logged by docker-enforcer for the {WARNED} warned-* containers: {warned}")
    sweeps, at, growth = figures["docker-enforcer"]
    checks = {
        f"a sweep (the median) <= {SWEEP_GOAL_S:g} s": statistics.median(sweeps) <= SWEEP_GOAL_S,
        f"RSS after {args.checks} checks <= {RSS_GOAL_MB:g} MB": at[2] <= RSS_GOAL_MB,
        f"RSS flat from {half} to {args.checks} checks (<= {FLAT_GOAL * 100:g} % more)": growth <= FLAT_GOAL,
        "the warned containers were recorded in every sweep": warned >= WARNED * len(sweeps),
    }
    print()
    for check, ok in checks.items():
        print(f"{'met   ' if ok else 'MISSED'} {check}")
    return all(checks.values())


if __name__ == "__main__":
    raise SystemExit(main())
