"""Rules held over time at scale: 100 containers sampled every second for 10 minutes with three `for` rules.

Against an isolated engine of its own (tests/support/engine.py: root, dockerd and busybox-static), with 100
busybox containers running (`sleep`), the real daemon (`Daemon(settings, policy).run()`: status API, stores,
scheduler and all) runs in a process of its own with SAMPLE_INTERVAL_S=1, sweeps and events off, and three
rules held over time: `limits.cpu_above(90, for_="10m")`, `limits.memory_above("1g", for_="10m")` and
`limits.idle(for_="1d")` (which every container violates: 100 episodes stay pending the whole run). The
process wraps the scheduled sampling job to stamp when each round starts and how long it takes, and reports
its resident memory (VmRSS) every minute and its CPU time at the end.

Goals: no round starts later than one interval plus 1 s after the one before; resident memory flat from the
second minute to the end (at most 5 % more); the daemon's CPU use is reported (a share of one core). The exit
status is 1 when a goal is missed.

    python benchmarks/sampling.py [--containers 100] [--minutes 10] [--interval 1]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import support.bench as bench  # noqa: E402
from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

LATE_GOAL_S = 1.0  # a round may start at most this much later than one interval after the one before
FLAT_GOAL = 0.05
RULES = """
from enforcer.library import limits

rules = [
    limits.cpu_above(90, for_="10m"),
    limits.memory_above("1g", for_="10m"),
    limits.idle(for_="1d"),
]
"""


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def cpu_s() -> float:
    times = os.times()
    return times.user + times.system


# -- the daemon's process: `sampling.py --enforcer --seconds N` (settings from the environment) ------------
def enforcer_run(seconds: float) -> int:
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
    while daemon.sampler is None or not daemon.scheduler.running:
        if time.monotonic() > deadline or not runner.is_alive():
            raise RuntimeError("the daemon did not start")
        time.sleep(0.05)
    sampler = daemon.sampler
    sample = sampler.sample

    def stamped() -> bool:
        started = time.monotonic()
        done = sample()
        emit(kind="round", start=started, seconds=time.monotonic() - started)
        return done

    sampler.sample = stamped  # type: ignore[method-assign]  # the job looks it up at every round
    began, cpu0 = time.monotonic(), cpu_s()
    minute = 0
    while (elapsed := time.monotonic() - began) < seconds:
        if elapsed >= minute * 60:
            emit(kind="rss", minute=minute, rss_mb=bench.rss_mb())
            minute += 1
        time.sleep(0.5)
    emit(kind="rss", minute=minute, rss_mb=bench.rss_mb())
    emit(
        kind="cpu", seconds=cpu_s() - cpu0, wall=time.monotonic() - began, episodes=len(daemon.episodes.all())
    )
    daemon.stop.set()
    runner.join(10)
    return 0


# -- the driver --------------------------------------------------------------------------------------------
def start_sleepers(engine: Engine, image: str, count: int) -> None:
    with engine.api() as api:
        for n in range(count):
            cid = api.create_container(image, ["sleep", "3600"], name=f"c-{n:03d}", stop_signal="SIGKILL")[
                "Id"
            ]
            api.start(cid)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=int, default=1, help="SAMPLE_INTERVAL_S")
    parser.add_argument("--enforcer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.enforcer:
        return enforcer_run(args.seconds)
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    workdir = trusted_tempdir("de-samplebench-")  # not under /tmp: the loader refuses rules files there
    engine = start_engine()
    try:
        start_sleepers(engine, ensure_busybox_image(engine), args.containers)
        env = bench.enforcer_env(
            engine, workdir, RULES, RUN_START_EVENTS="False", RUN_PERIODIC="False",
            SAMPLE_INTERVAL_S=str(args.interval), MODE="WARN",
        )  # fmt: skip
        log_path = workdir / "enforcer.log"
        with open(log_path, "wb") as log:
            done = subprocess.run(
                [sys.executable, __file__, "--enforcer", "--seconds", str(args.minutes * 60)],
                env=env, stdout=subprocess.PIPE, stderr=log, timeout=args.minutes * 60 + 120,
            )  # fmt: skip
        if done.returncode != 0:
            print(f"the daemon failed ({done.returncode}); see {log_path}", file=sys.stderr)
            return 1
        lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
        met = report(args, lines)
        if met:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the log is kept in {workdir}")
        return 0 if met else 1
    finally:
        engine.destroy()


def report(args: argparse.Namespace, lines: list[dict[str, Any]]) -> bool:
    rounds = [line for line in lines if line["kind"] == "round"]
    gaps = [b["start"] - a["start"] for a, b in zip(rounds, rounds[1:], strict=False)]
    seconds = [r["seconds"] for r in rounds]
    rss = [line["rss_mb"] for line in lines if line["kind"] == "rss"]
    (cpu,) = [line for line in lines if line["kind"] == "cpu"]
    growth = rss[-1] / rss[min(2, len(rss) - 1)] - 1
    print(f"\n{args.containers} containers, SAMPLE_INTERVAL_S={args.interval}, {args.minutes:g} minutes")
    print(f"{bench.load_average()} at the end\n")
    print(
        f"rounds: {len(rounds)}; round time p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
    )
    print(f"gap between round starts: p50 {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s")
    print(
        f"daemon CPU: {cpu['seconds']:.1f} s in {cpu['wall']:.0f} s ({cpu['seconds'] / cpu['wall'] * 100:.1f} % of a core)"
    )
    print("RSS each minute (MB): " + " ".join(f"{mb:.1f}" for mb in rss))
    print(f"open episodes at the end: {cpu['episodes']}")
    checks = {
        f"no round later than one interval + {LATE_GOAL_S:g} s": max(gaps) <= args.interval + LATE_GOAL_S,
        f"RSS flat from the second minute (<= {FLAT_GOAL * 100:g} % more)": growth <= FLAT_GOAL,
        "every container's idle episode open": cpu["episodes"] >= args.containers,
    }
    print()
    for check, ok in checks.items():
        print(f"{'met   ' if ok else 'MISSED'} {check}")
    return all(checks.values())


if __name__ == "__main__":
    raise SystemExit(main())
