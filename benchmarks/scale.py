"""Scale: sweep time, audit time, resident memory and burst kill latency at 100, 500 and 1,000 running
containers, each beside a bare loop in the same run.

Against an isolated engine of its own (tests/support/engine.py: root, dockerd and busybox-static). For each
count N (--containers), busybox `sleep` containers with a memory limit are started concurrently until N run,
then, one contender at a time:

- sweep: the real daemon (`python -m enforcer run`, RUN_PERIODIC, CHECK_INTERVAL_S=1, one rule that reads
  metrics) until --sweeps sweeps after its catch-up sweep; each sweep's time from its own log line ("sweep of N
  containers took X s"), its resident memory (VmRSS) after the last. Beside it the bare loop: raw HTTP list,
  then inspect + one-shot stats of every container on one thread per container, as many rounds;
- audit: the whole `docker-enforcer audit` process (same rule), beside the whole bare-loop process doing one
  such round (both pay their interpreter's start);
- at 100 only: a burst of 30 violators started 8 at a time among the 100 running, how long each ran
  (State.StartedAt -> State.FinishedAt) with the daemon (start events, KILL), beside the raw event stream ->
  kill loop of kill_latency.py.

Goals (issue 17): sweep and audit at 500 and 1,000 within 1.3 x the bare loop's time; burst kill p50 within
1.2 x the bare loop's, max within 1.5 x; resident memory at 1,000 within 100 MB. The machine may be shared:
the load average is printed with every figure. The exit status is 1 when a goal is missed.

    python benchmarks/scale.py [--containers 100,500,1000] [--sweeps 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.bench import (  # noqa: E402
    Bench,
    Enforcer,
    Reference,
    enforcer_env,
    load_average,
    reference_env,
    rss_mb,
    summary,
)
from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

RULES = """
rules = [
    {"name": "no more than 1 GB of memory", "rule": lambda c: c.metrics["memory_stats"]["usage"] > 1024**3},
]
"""
MEM_LIMIT = "64m"
TIME_GOAL = 1.3  # sweep and audit, at 500 and more
BURST_P50_GOAL = 1.2
BURST_MAX_GOAL = 1.5
RSS_GOAL_MB = 100.0
SWEEP_LINE = re.compile(r"sweep of (\d+) containers took ([0-9.]+) s")


def start_running(bench: Bench, have: int, count: int, parallel: int) -> None:
    """Start containers scale-HAVE .. scale-COUNT-1, `parallel` at a time."""
    names = [f"scale-{n:04d}" for n in range(have, count)]
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda name: bench.run(name, MEM_LIMIT), names))


def bare_sweeps(engine: Engine, count: int, rounds: int) -> tuple[list[float], float, float]:
    """The bare loop on `count` threads, `rounds` sweeps: their times, its RSS, the whole process's time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "support.bench", "sweep-reference", str(engine.socket)]
        + ["--threads", str(count), "--rounds", str(rounds)],
        env=reference_env(),
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return [line["seconds"] for line in lines], lines[-1]["rss_mb"], elapsed


def daemon_sweeps(engine: Engine, workdir: Path, sweeps: int) -> tuple[float, list[float], float]:
    """The daemon's catch-up sweep, the `sweeps` after it, and its RSS after the last."""
    log_path = workdir / "sweeps.log"
    env = enforcer_env(
        engine, workdir, RULES, RUN_PERIODIC="True", CHECK_INTERVAL_S="1", RUN_START_EVENTS="False"
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "enforcer", "run"], env=env, cwd=workdir, stderr=log)
    try:
        deadline = time.monotonic() + 120 + 10 * sweeps
        while len(times := sweep_times(log_path)) < sweeps + 1:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon's sweeps did not come:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return times[0], times[1 : sweeps + 1], rss


def sweep_times(log_path: Path) -> list[float]:
    return [float(m[2]) for m in SWEEP_LINE.finditer(log_path.read_text())]


def audit_time(engine: Engine, workdir: Path) -> tuple[float, int]:
    """The whole `docker-enforcer audit` process: seconds and the containers listed."""
    env = enforcer_env(engine, workdir, RULES)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", "audit", "--json"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"docker-enforcer audit failed with {done.returncode}")
    return elapsed, len(json.loads(done.stdout))


def kill_burst(engine: Engine, bench: Bench, workdir: Path, burst: int) -> dict[str, dict[str, float]]:
    """Burst kill windows, the bare loop first, then the daemon (start events, KILL)."""
    out = {}
    for contender in (Reference(engine), Enforcer(engine, workdir)):
        contender.start()
        try:
            windows, running = bench.burst(burst, 8, contender.name[:3])
        finally:
            contender.stop()
        out[contender.name] = {**summary(windows), "stopped": len(windows), "running": running}
    return out


def measure(
    engine: Engine, bench: Bench, workdir: Path, count: int, args: argparse.Namespace
) -> dict[str, Any]:
    row: dict[str, Any] = {"containers": count}
    row["load_before"] = load_average()
    first, sweeps, rss = daemon_sweeps(engine, workdir, args.sweeps)
    bare, bare_rss, _ = bare_sweeps(engine, count, args.sweeps)
    row.update(first=first, sweep=statistics.median(sweeps), bare_sweep=statistics.median(bare))
    row.update(rss=rss, bare_rss=bare_rss)
    row["audit"], listed = audit_time(engine, workdir)
    *_, row["bare_audit"] = bare_sweeps(engine, count, 1)
    if listed != count:
        raise RuntimeError(f"the audit listed {listed} containers, not {count}")
    if count == 100 and args.burst:
        row["burst"] = kill_burst(engine, bench, workdir, args.burst)
    row["load_after"] = load_average()
    return row


def report(rows: list[dict[str, Any]]) -> bool:
    print(f"\n{'':>6}  {'sweep':>22}  {'audit (process)':>22}  {'RSS':>22}")
    print(f"{'N':>6}  {'enforcer / bare':>22}  {'enforcer / bare':>22}  {'enforcer / bare':>22}  first sweep")
    goals: dict[str, bool] = {}
    for row in rows:
        n = row["containers"]
        sweep, audit = row["sweep"] / row["bare_sweep"], row["audit"] / row["bare_audit"]
        print(
            f"{n:>6}  {row['sweep']:6.2f}s / {row['bare_sweep']:5.2f}s {sweep:4.2f}x"
            f"  {row['audit']:6.2f}s / {row['bare_audit']:5.2f}s {audit:4.2f}x"
            f"  {row['rss']:6.1f} / {row['bare_rss']:5.1f} MB      {row['first']:6.2f}s"
            f"   ({row['load_before']}; after: {row['load_after']})"
        )
        if n >= 500:
            goals[f"sweep of {n} <= {TIME_GOAL} x bare"] = sweep <= TIME_GOAL
            goals[f"audit of {n} <= {TIME_GOAL} x bare"] = audit <= TIME_GOAL
        if n >= 1000:
            goals[f"RSS at {n} <= {RSS_GOAL_MB:g} MB"] = row["rss"] <= RSS_GOAL_MB
        if "burst" in row:
            goals.update(burst_report(row["burst"]))
    print()
    for goal, ok in goals.items():
        print(f"{'met   ' if ok else 'MISSED'} {goal}")
    return all(goals.values())


def burst_report(burst: dict[str, dict[str, float]]) -> dict[str, bool]:
    ours, bare = burst["docker-enforcer"], burst["reference loop"]
    print("\nburst of violators among 100 running, running windows (p50 / p90 / max, stopped):")
    for name, s in burst.items():
        print(
            f"  {name:16} {s['p50'] * 1000:7.1f} / {s['p90'] * 1000:7.1f} / {s['max'] * 1000:7.1f} ms, {s['stopped']:.0f}"
        )
    return {
        f"burst p50 <= {BURST_P50_GOAL} x bare": ours["p50"] <= BURST_P50_GOAL * bare["p50"],
        f"burst max <= {BURST_MAX_GOAL} x bare": ours["max"] <= BURST_MAX_GOAL * bare["max"],
        "burst: every violator stopped": ours["running"] == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--containers", default="100,500,1000", help="running counts, comma-separated, rising"
    )
    parser.add_argument(
        "--sweeps", type=int, default=3, help="sweeps timed per count, after the catch-up one"
    )
    parser.add_argument("--burst", type=int, default=30, help="violators in the burst at 100 (0: none)")
    parser.add_argument("--parallel", type=int, default=16, help="threads starting the running containers")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.containers.split(","))
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    workdir = trusted_tempdir("de-scalebench-")  # not under /tmp: the loader refuses rules files there
    engine = start_engine()
    rows: list[dict[str, Any]] = []
    have = 0
    try:
        bench = Bench(engine, ensure_busybox_image(engine))
        for count in counts:
            started = time.perf_counter()
            start_running(bench, have, count, args.parallel)
            have = count
            print(
                f"{count} running ({time.perf_counter() - started:.0f} s to start; {load_average()})",
                flush=True,
            )
            rows.append(measure(engine, bench, workdir, count, args))
            print(json.dumps(rows[-1]), flush=True)
        met = report(rows)
        if met:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the logs are kept in {workdir}")
        return 0 if met else 1
    finally:
        print("removing the containers and the engine ...", flush=True)
        engine.remove_all_containers()
        engine.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
