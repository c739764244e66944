"""How long a violator runs before the daemon stops it, beside a minimal reference loop in the same run.

Against an isolated engine of its own (tests/support/engine.py: root, dockerd and busybox-static), with 100
clean containers running, violators (busybox `sleep`, named violator-*) are started through the API. A
violator's running window is State.StartedAt -> State.FinishedAt from `docker inspect`: the engine's own
clock, whoever stopped it. Two contenders, each a process of its own, one at a time, in ABBA order:

- reference: the raw event stream (start events only) -> kill, one thread per kill, no inspect, no judging
  (it knows a violator by the name in the event);
- docker-enforcer: `python -m enforcer run` with MODE=KILL, RUN_START_EVENTS=True, RUN_PERIODIC=False,
  LOG_LEVEL=INFO, a rule on the container's name.

Scenarios: (a) violators started one after another (each once the previous one stopped); (b) a burst of
violators started 8 at a time (8 threads doing create+start). Goals for docker-enforcer: (a) p50 at most
1.3 x the reference's p50 and max at most 100 ms; (b) all stopped, p50 at most 300 ms. Also checked: no clean
container was ever stopped, no violator left running. The exit status is 1 when a goal or a check fails.

    python benchmarks/kill_latency.py [--clean 100] [--sequential 20] [--burst 30] [--parallel 8]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.bench import (  # noqa: E402
    Bench,
    Contender,
    Enforcer,
    Reference,
    ms,
    summary,
)
from support.engine import ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

SEQ_RATIO_GOAL = 1.3
SEQ_MAX_GOAL_S = 0.100
BURST_P50_GOAL_S = 0.300


def start_clean(bench: Bench, count: int) -> dict[str, str]:
    with ThreadPoolExecutor(8) as pool:
        cids = list(pool.map(bench.run, [f"clean-{n:03d}" for n in range(count)]))
    return {cid: bench.state(cid)["StartedAt"] for cid in cids}


def clean_disturbed(bench: Bench, clean: dict[str, str]) -> int:
    """Clean containers that are not running, or ran again since they were first started."""
    disturbed = 0
    for cid, started_at in clean.items():
        state = bench.state(cid)
        disturbed += not state["Running"] or state["StartedAt"] != started_at
    return disturbed


# -- report ------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clean", type=int, default=100, help="clean containers running throughout")
    parser.add_argument(
        "--sequential", type=int, default=20, help="violators one after another, per contender"
    )
    parser.add_argument("--burst", type=int, default=30, help="violators in the burst, per contender")
    parser.add_argument("--parallel", type=int, default=8, help="threads starting the burst")
    args = parser.parse_args()
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2

    workdir = trusted_tempdir("de-killbench-")  # not under /tmp: the loader refuses rules files there
    engine = start_engine()
    contenders: list[Contender] = []
    try:
        bench = Bench(engine, ensure_busybox_image(engine))
        clean = start_clean(bench, args.clean)
        reference, enforcer = Reference(engine), Enforcer(engine, workdir)
        contenders = [reference, enforcer]
        seq: dict[str, list[float]] = {reference.name: [], enforcer.name: []}
        burst: dict[str, list[float]] = {reference.name: [], enforcer.name: []}
        left: dict[str, int] = {reference.name: 0, enforcer.name: 0}
        halves = [args.sequential // 2, args.sequential - args.sequential // 2]
        # ABBA: each contender once early and once late, so that drift in the engine's state weighs on both.
        for round_no, order in enumerate(([reference, enforcer], [enforcer, reference])):
            for contender in order:
                contender.start()
                try:
                    label = f"{contender.name[:3]}{round_no}"
                    windows, running = bench.sequential(halves[round_no], label + "s")
                    seq[contender.name] += windows
                    left[contender.name] += running
                    if round_no == 0:
                        windows, running = bench.burst(args.burst, args.parallel, label + "b")
                        burst[contender.name] += windows
                        left[contender.name] += running
                finally:
                    contender.stop()
        disturbed = clean_disturbed(bench, clean)
        report(args, seq, burst, left, disturbed, enforcer)
        met = goals_met(args, seq, burst, left, disturbed)
        if met:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"docker-enforcer's logs are kept in {workdir}")
        return 0 if met else 1
    finally:
        for contender in contenders:
            proc = getattr(contender, "proc", None)
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        engine.destroy()


def report(
    args: argparse.Namespace,
    seq: dict[str, list[float]],
    burst: dict[str, list[float]],
    left: dict[str, int],
    disturbed: int,
    enforcer: Enforcer,
) -> None:
    print(f"\n{args.clean} clean containers running; running window = State.StartedAt -> State.FinishedAt\n")
    row: Callable[..., str] = "{:<18}{:>12}{:>12}{:>12}   {}".format
    print(row("", "p50", "p90", "max", "stopped"))
    for title, data, total in (
        (f"(a) {args.sequential} one after another", seq, args.sequential),
        (f"(b) burst of {args.burst}, {args.parallel} at a time", burst, args.burst),
    ):
        print(title)
        for name, windows in data.items():
            s = summary(windows)
            print(row(name, ms(s["p50"]), ms(s["p90"]), ms(s["max"]), f"{len(windows)}/{total}"))
    ratio = summary(seq["docker-enforcer"])["p50"] / summary(seq["reference loop"])["p50"]
    print(f"\n(a) p50 ratio docker-enforcer / reference: {ratio:.2f} (goal <= {SEQ_RATIO_GOAL})")
    print(f"violators left running: {left}; clean containers stopped or restarted: {disturbed}")
    print(f"violation log lines of docker-enforcer: {len(enforcer.violations())}")


def goals_met(
    args: argparse.Namespace,
    seq: dict[str, list[float]],
    burst: dict[str, list[float]],
    left: dict[str, int],
    disturbed: int,
) -> bool:
    ours, ref = summary(seq["docker-enforcer"]), summary(seq["reference loop"])
    checks = {
        f"(a) p50 <= {SEQ_RATIO_GOAL} x reference p50": ours["p50"] <= SEQ_RATIO_GOAL * ref["p50"],
        f"(a) max <= {SEQ_MAX_GOAL_S * 1000:.0f} ms": ours["max"] <= SEQ_MAX_GOAL_S,
        "(a) all stopped": len(seq["docker-enforcer"]) == args.sequential,
        "(b) all stopped": len(burst["docker-enforcer"]) == args.burst,
        f"(b) p50 <= {BURST_P50_GOAL_S * 1000:.0f} ms": summary(burst["docker-enforcer"])["p50"]
        <= BURST_P50_GOAL_S,
        "no violator left running": left["docker-enforcer"] == 0,
        "no clean container stopped": disturbed == 0,
    }
    print()
    for check, ok in checks.items():
        print(f"{'met   ' if ok else 'MISSED'} {check}")
    return all(checks.values())


if __name__ == "__main__":
    raise SystemExit(main())
