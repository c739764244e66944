"""How long a full audit with metrics takes: docker-enforcer against plain docker SDK loops, same engine, same run.

Starts its own isolated engine (tests/support/engine.py: needs root, dockerd and busybox-static), runs N
busybox `sleep` containers (100 by default), then times:

  enforcer     FactGatherer.all_running (concurrent inspect + one-shot stats) and the judge, with a rule that
               reads metrics, as `docker-enforcer audit` does; best and median of --runs runs
  sequential   plain docker SDK, one container after another: inspect + stats(stream=False, one_shot=True);
               measured on --sample containers and extrapolated to N (said so in the output)
  concurrent   plain docker SDK, the same two calls for all N containers on N threads
  original     the original's way, stats(stream=False) without one_shot (two samples, ~2 s each);
               measured on 2 containers and extrapolated

The goal: the enforcer audits 100 containers with metrics in at most 2 s. Containers and engine are removed
at the end, also on failure or Ctrl-C.

    python benchmarks/audit_speed.py [--containers 100] [--runs 3] [--sample 10] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from docker import APIClient  # noqa: E402
from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402

from enforcer.dockerhost.client import connect  # noqa: E402
from enforcer.facts.gather import FactGatherer, GatherOptions  # noqa: E402
from enforcer.judge.judge import JudgeOptions, judge  # noqa: E402
from enforcer.judge.rules import Rule  # noqa: E402
from enforcer.judge.whitelist import Whitelist  # noqa: E402

GOAL_S = 2.0
RULES = (
    Rule("must have memory limit", lambda c: c.params["HostConfig"]["Memory"] == 0),
    Rule("can't use over 1GB of RAM", lambda c: c.metrics["memory_stats"]["usage"] > 1024**3),
)


def start_containers(engine: Engine, image: str, count: int) -> list[str]:
    """Start `count` busybox sleep containers (SIGKILL as stop signal, so removal is quick)."""

    def one(n: int) -> str:
        with engine.api() as api:
            cid = api.create_container(
                image,
                ["sleep", "3600"],
                name=f"bench-{n:03d}",
                host_config=api.create_host_config(),
                stop_signal="SIGKILL",
            )["Id"]
            api.start(cid)
            return str(cid)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def enforcer_audit(url: str) -> tuple[float, int, dict[str, float]]:
    """One audit as `docker-enforcer audit` runs it: a fresh connection and gatherer, all facts, all verdicts."""
    started = time.perf_counter()
    host = connect(url)
    gatherer = FactGatherer(host, GatherOptions(cache_params=False))
    try:
        connected = time.perf_counter()
        containers = gatherer.all_running("audit")
        gathered = time.perf_counter()
        verdicts = [
            judge(c, RULES, Whitelist(), JudgeOptions(stop_on_first_violation=False)) for c in containers
        ]
        judged = time.perf_counter()
    finally:
        gatherer.close()
        host.close()
    if any(v.errors for v in verdicts):
        raise RuntimeError(f"rule errors in the benchmark: {[v.errors for v in verdicts if v.errors][:3]}")
    phases = {"connect": connected - started, "gather": gathered - connected, "judge": judged - gathered}
    return judged - started, len(verdicts), phases


def sdk_facts(api: APIClient, cid: str, one_shot: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    params = api.inspect_container(cid)
    metrics = api.stats(cid, stream=False, one_shot=one_shot) if one_shot else api.stats(cid, stream=False)
    return params, metrics


def sequential(url: str, ids: list[str], one_shot: bool = True) -> float:
    with APIClient(base_url=url, version="auto") as api:
        started = time.perf_counter()
        for cid in ids:
            sdk_facts(api, cid, one_shot)
        return time.perf_counter() - started


def concurrent(url: str, ids: list[str]) -> float:
    with APIClient(base_url=url, version="auto", max_pool_size=len(ids)) as api:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            list(pool.map(lambda cid: sdk_facts(api, cid), ids))
        return time.perf_counter() - started


def profile(fn: Callable[[], Any]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def row(label: str, seconds: float, note: str = "") -> str:
    return f"  {label:<40} {seconds:8.2f} s   {note}"


def run(args: argparse.Namespace) -> int:
    engine = start_engine()
    try:
        image = ensure_busybox_image(engine)
        print(f"engine {engine.url}; starting {args.containers} busybox sleep containers ...", flush=True)
        ids = start_containers(engine, image, args.containers)
        time.sleep(1)  # let the engine settle after the starts

        runs = [enforcer_audit(engine.url) for _ in range(args.runs)]
        totals = [total for total, _, _ in runs]
        assert all(count == args.containers for _, count, _ in runs), [count for _, count, _ in runs]
        best = min(runs, key=lambda r: r[0])
        sample = ids[: args.sample]
        seq = sequential(engine.url, sample)
        conc = concurrent(engine.url, ids)
        original = sequential(engine.url, ids[:2], one_shot=False)

        n = args.containers
        print(f"\naudit of {n} running containers with metrics (inspect + stats), one engine, one run:")
        print(
            row(
                "docker-enforcer audit (best)",
                min(totals),
                f"median {statistics.median(totals):.2f} s of {args.runs}; best: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in best[2].items()),
            )
        )
        print(row("plain SDK, concurrent", conc, f"{n} threads, measured on all {n}"))
        print(
            row(
                "plain SDK, one after another",
                seq * n / len(sample),
                f"EXTRAPOLATED from {len(sample)} containers ({seq:.2f} s, {seq / len(sample):.3f} s each)",
            )
        )
        print(
            row(
                "original's stats (no one_shot), serial",
                original * n / 2,
                f"EXTRAPOLATED from 2 containers ({original / 2:.2f} s each)",
            )
        )
        verdict = "met" if min(totals) <= GOAL_S else "MISSED"
        print(f"\ngoal: at most {GOAL_S:.0f} s for {n} containers -> {verdict} ({min(totals):.2f} s)")
        if args.profile or min(totals) > GOAL_S:
            print("\nprofile of one enforcer audit (cumulative):")
            print(profile(lambda: enforcer_audit(engine.url)))
        return 0 if min(totals) <= GOAL_S else 1
    finally:
        print("removing the containers and the engine ...", file=sys.stderr, flush=True)
        if engine.is_running():
            engine.remove_all_containers()
        engine.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100, help="containers to start and audit (100)")
    parser.add_argument("--runs", type=int, default=3, help="enforcer audits to time (3)")
    parser.add_argument("--sample", type=int, default=10, help="containers timed one after another (10)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one enforcer audit")
    args = parser.parse_args(argv)
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
