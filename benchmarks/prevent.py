"""Prevention benchmark (PREVENT_ON_CREATE): do violators run a single instruction?

Against an isolated engine of its own, with 100 clean containers running, it starts violators with the
Docker CLI (`docker run -d`, which creates and then starts) whose first command writes a marker file into a
bind mount: a marker means the container ran. Two contenders, each a process of its own, one at a time, in
ABBA order (each once early and once late, so that drift in the engine's state weighs on both):

- the bare loop (reference): raw event stream -> inspect -> remove (forced), 8 worker threads (or
  --reference-workers; the daemon has 32) with one kept-alive HTTP connection each, no judging beyond one
  label, the same GIL switch interval as the daemon and the same CPU priority (nice -10);
- docker-enforcer: `docker-enforcer run` with MODE=KILL, RUN_START_EVENTS=True, PREVENT_ON_CREATE=True,
  NICE=-10 (as deploy/ runs the KILL instance).

First, before any violator, a clean container's `docker run -d` is timed in blocks: without a contender,
with the bare loop, without, with docker-enforcer, without, and so on; each contender's blocks are compared
with the blocks just before and after them (the machine's load drifts). Then per contender and round:
violators started one after another, and a burst started 8 at a time.

Goals for docker-enforcer: none of the violators started one after another runs; in the burst at least as
many prevented as the bare loop; every violator that ran is stopped by the start path (none left running,
each counted in prevention_race_lost_total; every violator counted once, as prevented or as a race lost);
none recorded as prevented ran; no clean container is ever removed, stopped or restarted; a clean
`docker run -d` p50 within 10 % of the same without a contender. The exit status is 1 when a goal is missed.

    python benchmarks/prevent.py [--quick] [--reference-workers 8]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.bench import enforcer_env  # noqa: E402
from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.rawhttp import UnixHTTP  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

RULES = """rules = [{"name": "no violators", "rule": lambda c: c.labels.get("violator") == "1"}]\n"""
API_VERSION = "v1.41"
CLEAN_RATIO_GOAL = 1.10
SETTLE_S = 2.0  # after a scenario: the start path's kills are done
SWITCH_INTERVAL_S = 0.0005  # as the daemon sets it
NICE = -10  # both contenders' CPU priority


# -- the bare loop, run as `prevent.py --reference SOCKET` -------------------------------------------------
def reference_loop(sock_path: str, workers: int) -> int:
    """Create event -> inspect -> remove if labelled, on `workers` threads; prints "ready" once the stream is open."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    os.setpriority(os.PRIO_PROCESS, 0, NICE)  # before the threads start: they inherit it
    local = threading.local()

    def handle(cid: str) -> None:
        if getattr(local, "conn", None) is None:
            local.conn = UnixHTTP(sock_path)
        conn = local.conn
        conn.request("GET", f"/{API_VERSION}/containers/{cid}/json")
        response = conn.getresponse()
        body = response.read()
        if response.status == 200 and (json.loads(body)["Config"].get("Labels") or {}).get("violator") == "1":
            conn.request("DELETE", f"/{API_VERSION}/containers/{cid}?force=1")
            conn.getresponse().read()

    pool = ThreadPoolExecutor(workers)
    stream = UnixHTTP(sock_path)
    filters = quote(json.dumps({"type": ["container"], "event": ["create"]}))
    stream.request("GET", f"/{API_VERSION}/events?filters={filters}")
    response = stream.getresponse()
    print("ready", flush=True)
    while line := response.readline():
        pool.submit(handle, json.loads(line)["id"])
    return 0


# -- contenders --------------------------------------------------------------------------------------------
class Contender:
    name = ""
    proc: subprocess.Popen[Any] | None = None

    def start(self) -> None: ...

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def counters(self) -> dict[str, float]:
        return {}


class BareLoop(Contender):
    name = "bare loop"

    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.workers = workers

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--reference",
                str(self.engine.socket),
                "--reference-workers",
                str(self.workers),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare loop did not start")


class Enforcer(Contender):
    name = "docker-enforcer"

    def __init__(self, engine: Engine, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = enforcer_env(
            engine,
            workdir,
            RULES,
            PREVENT_ON_CREATE="True",
            NICE=str(NICE),
            LISTEN_ADDRESS=f"127.0.0.1:{self.port}",
            LOG_FORMAT="json",
        )
        self.runs = 0

    def start(self) -> None:
        log_path = self.workdir / f"enforcer-{self.runs}.log"
        self.runs += 1
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "enforcer", "run"], env=self.env, cwd=self.workdir, stderr=log
            )
        deadline = time.monotonic() + 60
        while "sweep of" not in log_path.read_text():  # connected, stream open, catch-up sweep done
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-enforcer did not start:\n{log_path.read_text()}")
            time.sleep(0.05)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return str(response.read().decode())

    def counters(self) -> dict[str, float]:
        text = self.get("/metrics")
        out = {}
        for name in ("preventions", "prevention_race_lost"):
            match = re.search(rf"^docker_enforcer_{name}_total (\S+)$", text, re.MULTILINE)
            out[name] = float(match.group(1)) if match else 0.0
        return out

    def recorded_prevented(self) -> set[str]:
        """Names of containers the record says were prevented (removed before they started)."""
        found = json.loads(self.get("/"))["detections"]
        return {
            d["name"].lstrip("/") for d in found if (d["action"], d["outcome"]) == ("prevent", "prevented")
        }


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the engine side ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    started: int = 0
    ran: int = 0
    left_running: int = 0
    race_lost: float = 0.0  # docker-enforcer only: counted by the daemon
    prevented_by_count: float = 0.0
    prevented_but_ran: list[str] = field(default_factory=list)

    @property
    def prevented(self) -> int:
        return self.started - self.ran

    def add(self, other: Outcome) -> None:
        self.started += other.started
        self.ran += other.ran
        self.left_running += other.left_running
        self.race_lost += other.race_lost
        self.prevented_by_count += other.prevented_by_count
        self.prevented_but_ran += other.prevented_but_ran


def docker_run(engine: Engine, name: str, marks: Path, violator: bool) -> tuple[bool, float]:
    """`docker run -d`; returns (started, seconds)."""
    args = ["run", "-d", "--name", name, "--stop-signal", "KILL", "-v", f"{marks}:/mark"]
    if violator:
        args += ["--label", "violator=1"]
    args += ["busybox", "sh", "-c", f"touch /mark/{name}; exec sleep 3600"]
    began = time.perf_counter()
    result = engine.docker(*args, check=False)
    return result.returncode == 0, time.perf_counter() - began


def scenario(
    engine: Engine, contender: Contender, label: str, count: int, parallel: int, marks: Path
) -> Outcome:
    names = [f"{label}-{i}" for i in range(count)]
    before = contender.counters()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda n: docker_run(engine, n, marks, True), names))
    time.sleep(SETTLE_S)
    after = contender.counters()
    ran = {n for n in names if (marks / n).exists()}
    with engine.api() as api:
        running = len(api.containers(filters={"label": "violator=1"}))
    outcome = Outcome(count, len(ran), running)
    if isinstance(contender, Enforcer):
        outcome.race_lost = after["prevention_race_lost"] - before["prevention_race_lost"]
        outcome.prevented_by_count = after["preventions"] - before["preventions"]
        outcome.prevented_but_ran = sorted(ran & contender.recorded_prevented())
    cleanup(engine)
    return outcome


def clean_runs(engine: Engine, label: str, count: int, marks: Path, clean: dict[str, str]) -> list[float]:
    """Start `count` clean containers one after another; their ids join `clean`; the CLI's times."""
    times = []
    for i in range(count):
        name = f"{label}-{i}"
        started, seconds = docker_run(engine, name, marks, False)
        if not started:
            raise RuntimeError(f"the clean container {name} did not start")
        times.append(seconds)
        with engine.api() as api:
            clean[name] = api.inspect_container(name)["State"]["StartedAt"]
    return times


def clean_latency(
    engine: Engine, contenders: list[Contender], cycles: int, count: int, marks: Path, clean: dict[str, str]
) -> dict[str, tuple[list[float], list[float]]]:
    """A clean `docker run -d` timed with each contender, and without any just before and just after it.

    Before any violator: after a burst the engine stays busy with its removals for a while, which would weigh
    on whichever block came next. Per cycle: none, contender A, none, contender B, ... , none.
    """
    timed: dict[str, tuple[list[float], list[float]]] = {c.name: ([], []) for c in contenders}
    without = clean_runs(engine, "clean-none-0", count, marks, clean)
    for cycle in range(cycles):
        for contender in contenders:
            contender.start()
            try:
                with_it = clean_runs(engine, f"clean-{contender.name[:4]}{cycle}", count, marks, clean)
            finally:
                contender.stop()
            before = without
            without = clean_runs(engine, f"clean-none-{contender.name[:4]}{cycle}", count, marks, clean)
            timed[contender.name][0].extend(with_it)
            timed[contender.name][1].extend(before + without)
    return timed


def clean_disturbed(engine: Engine, clean: dict[str, str]) -> list[str]:
    """Clean containers that were removed, are not running, or ran again since they were first started."""
    out = []
    with engine.api() as api:
        states = {c["Names"][0].lstrip("/"): c["Id"] for c in api.containers(all=True)}
        for name, started_at in clean.items():
            if name not in states:
                out.append(f"{name} (removed)")
                continue
            state = api.inspect_container(states[name])["State"]
            if not state["Running"] or state["StartedAt"] != started_at:
                out.append(f"{name} (stopped or restarted)")
    return out


def cleanup(engine: Engine) -> None:
    with engine.api() as api:
        for c in api.containers(all=True, filters={"label": "violator=1"}):
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True)


# -- report ------------------------------------------------------------------------------------------------
def p50_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000 if times else float("nan")


def report(
    args: argparse.Namespace,
    seq: dict[str, Outcome],
    burst: dict[str, Outcome],
    clean: dict[str, tuple[list[float], list[float]]],
    disturbed: list[str],
) -> dict[str, bool]:
    print(f"\n{args.background} clean containers running; a violator 'ran' when its marker file exists")
    print(f"bare loop: {args.reference_workers} worker threads; docker-enforcer: 32")
    print(f"{'':18}{'one after another':>28}{'burst (8 at a time)':>30}{'left running':>14}")
    for name in seq:
        s, b = seq[name], burst[name]
        print(
            f"{name:18}{s.prevented:>12}/{s.started} prevented, {s.ran:>2} ran"
            f"{b.prevented:>14}/{b.started} prevented, {b.ran:>2} ran{s.left_running + b.left_running:>14}"
        )
    ours = Outcome()
    ours.add(seq["docker-enforcer"])
    ours.add(burst["docker-enforcer"])
    print(
        f"docker-enforcer's own count: {ours.prevented_by_count:.0f} prevented, {ours.race_lost:.0f} race(s) lost"
        f" (stopped by the start path); recorded as prevented yet ran: {ours.prevented_but_ran or 'none'}"
    )
    print("\nclean `docker run -d` p50, with the contender / without (the blocks just before and after it):")
    ratios = {}
    for name, (with_it, without) in clean.items():
        ratios[name] = p50_ms(with_it) / p50_ms(without)
        print(
            f"{name:18}{p50_ms(with_it):8.1f} ms (n={len(with_it)}) / {p50_ms(without):6.1f} ms (n={len(without)})"
            f"   ratio {ratios[name]:.3f}"
        )
    ratio = ratios["docker-enforcer"]
    print(f"clean containers removed, stopped or restarted: {disturbed or 'none'}")
    return {
        "one after another: none runs": seq["docker-enforcer"].ran == 0,
        "burst: at least as many prevented as the bare loop": burst["docker-enforcer"].prevented
        >= burst["bare loop"].prevented,
        # A violator killed by the start path before its first command ran leaves no marker: race_lost >= ran.
        "every violator that ran was stopped by the start path": ours.left_running == 0
        and ours.race_lost >= ours.ran,
        "every violator prevented or stopped, counted once": ours.prevented_by_count + ours.race_lost
        == ours.started,
        "none recorded as prevented ran": not ours.prevented_but_ran,
        "no clean container removed, stopped or restarted": not disturbed,
        f"clean run p50 <= {CLEAN_RATIO_GOAL} x without": ratio <= CLEAN_RATIO_GOAL,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer containers (for a smoke run)")
    parser.add_argument("--reference-workers", type=int, default=8, help="the bare loop's worker threads")
    parser.add_argument("--reference", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        return reference_loop(args.reference, args.reference_workers)
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    quick, full = (20, 6, 16, 2, 5), (100, 10, 40, 3, 15)
    args.background, sequential, burst_size, clean_cycles, clean_count = quick if args.quick else full

    work = trusted_tempdir("de-prevent-")  # not under /tmp: the loader refuses rules files there
    marks = work / "marks"
    marks.mkdir()
    engine = start_engine()
    contenders: list[Contender] = []
    try:
        ensure_busybox_image(engine)
        clean: dict[str, str] = {}
        with ThreadPoolExecutor(8) as pool:
            times = pool.map(
                lambda i: clean_runs(engine, f"background-{i}", 1, marks, clean), range(args.background)
            )
            list(times)
        bare, enforcer = BareLoop(engine, args.reference_workers), Enforcer(engine, work)
        contenders = [bare, enforcer]
        seq = {c.name: Outcome() for c in contenders}
        burst = {c.name: Outcome() for c in contenders}
        timed = clean_latency(engine, contenders, clean_cycles, clean_count, marks, clean)
        for round_no, order in enumerate(([bare, enforcer], [enforcer, bare])):
            for contender in order:
                label = f"{contender.name[:4]}{round_no}"
                contender.start()
                try:
                    seq[contender.name].add(scenario(engine, contender, f"{label}-seq", sequential, 1, marks))
                    burst[contender.name].add(
                        scenario(engine, contender, f"{label}-burst", burst_size, 8, marks)
                    )
                finally:
                    contender.stop()
        checks = report(args, seq, burst, timed, clean_disturbed(engine, clean))
        print()
        for check, ok in checks.items():
            print(f"{'met   ' if ok else 'MISSED'} {check}")
        met = all(checks.values())
        if met:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"docker-enforcer's logs are kept in {work}")
        return 0 if met else 1
    finally:
        for contender in contenders:
            if contender.proc is not None and contender.proc.poll() is None:
                contender.proc.kill()
                contender.proc.wait(10)
        engine.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
