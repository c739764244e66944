"""How long a container keeps running after a `docker exec -u 0` into it starts, beside a bare reference loop.

Against an isolated engine of its own (tests/support/engine.py: root, dockerd and busybox-static). Each target
is a busybox `sleep` running as user 1000; the benchmark execs `sleep 30` into it as root (exec_create and
exec_start through the API, detached) and notes the exec_start event's time from its own event stream. The
figure is the engine's clock from that exec_start to the container's State.FinishedAt. Two contenders, each a
process of its own, one at a time, in ABBA order:

- reference: the raw event stream (exec_start events only) -> GET /exec/{id}/json -> kill when the exec runs
  as root, one thread per exec, nothing else;
- docker-enforcer: `python -m enforcer run` with MODE=KILL, RUN_EXEC_EVENTS=True, RUN_START_EVENTS=True (as
  deployed: the start check keeps the container's inspect, so the exec check asks the engine for the exec
  only), RUN_PERIODIC=False, LOG_LEVEL=INFO and the library's `no-root-exec` rule (CIS 5.24).
  `--no-start-events` measures the daemon without them: the container's inspect is then sent with the
  exec's, and it waits while the engine still starts the exec (tens of ms on a busy host).

Goal (issue 16): docker-enforcer's p50 at most 100 ms. Also checked: every target stopped. The exit status is
1 when the goal or the check fails.

    python benchmarks/exec_latency.py [--execs 20] [--no-start-events]
    python benchmarks/exec_latency.py --reference SOCKET     # the reference loop alone (used by the above)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from docker.errors import APIError

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.bench import (  # noqa: E402
    API_VERSION,
    Bench,
    Contender,
    Enforcer,
    Reference,
    docker_time,
    load_average,
    ms,
    summary,
)
from support.engine import ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402
from support.rawhttp import UnixHTTP  # noqa: E402
from support.trusted_tmp import trusted_tempdir  # noqa: E402

P50_GOAL_S = 0.100
RULES = 'from enforcer.library import select\nrules = select("no-root-exec")\n'
ROOT_USERS = ("", "0", "root")


# -- the reference loop ------------------------------------------------------------------------------------
def reference_loop(sock_path: str) -> int:
    """exec_start events -> exec inspect -> kill when it runs as root; prints "ready" once the stream is open."""

    def judge_and_kill(cid: str, exec_id: str) -> None:
        conn = UnixHTTP(sock_path)
        conn.request("GET", f"/{API_VERSION}/exec/{exec_id}/json")
        process = json.loads(conn.getresponse().read()).get("ProcessConfig") or {}
        if str(process.get("user") or "").split(":")[0] in ROOT_USERS:
            conn.request("POST", f"/{API_VERSION}/containers/{cid}/kill")
            conn.getresponse().read()
        conn.close()

    stream = UnixHTTP(sock_path)
    filters = quote(json.dumps({"type": ["container"], "event": ["exec_start"]}))
    stream.request("GET", f"/{API_VERSION}/events?filters={filters}")
    response = stream.getresponse()
    print("ready", flush=True)
    while line := response.readline():
        event = json.loads(line)
        exec_id = event["Actor"]["Attributes"]["execID"]
        threading.Thread(target=judge_and_kill, args=(event["id"], exec_id), daemon=True).start()
    return 0


class ExecReference(Reference):
    """The reference loop above, as a process of its own."""

    def command(self) -> list[str]:
        return [sys.executable, __file__, "--reference", str(self.engine.socket)]


# -- the engine side ---------------------------------------------------------------------------------------
class ExecStarts:
    """The exec_start time (engine clock, seconds) of each container, from an event stream of our own."""

    def __init__(self, sock_path: str) -> None:
        self.times: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stream = UnixHTTP(sock_path)
        filters = quote(json.dumps({"type": ["container"], "event": ["exec_start"]}))
        self.stream.request("GET", f"/{API_VERSION}/events?filters={filters}")
        self.response = self.stream.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while line := self.response.readline():
                event = json.loads(line)
                with self.lock:
                    self.times.setdefault(event["id"], event["timeNano"] / 1e9)
        except (OSError, ValueError):
            return

    def of(self, cid: str, timeout: float = 5) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if cid in self.times:
                    return self.times[cid]
            time.sleep(0.01)
        raise RuntimeError(f"no exec_start event for {cid[:12]}")


def exec_as_root(bench: Bench, cid: str) -> None:
    api = bench.api()
    exec_id = api.exec_create(cid, ["sleep", "30"], user="0")["Id"]
    with contextlib.suppress(APIError):  # the kill may come while the engine still starts the exec
        api.exec_start(exec_id, detach=True)


def run_targets(bench: Bench, starts: ExecStarts, count: int, label: str) -> tuple[list[float], int]:
    """`count` targets one after another, each exec'd into as root once it runs; (latencies, left running)."""
    latencies, running, cids = [], 0, []
    for n in range(count):
        api = bench.api()
        cid = api.create_container(
            bench.image, ["sleep", "3600"], name=f"target-{label}-{n}", user="1000",
            host_config=api.create_host_config(), stop_signal="SIGKILL",
        )["Id"]  # fmt: skip
        api.start(cid)
        cids.append(cid)
        exec_as_root(bench, cid)
        if not bench.wait_stopped(cid):
            running += 1
            continue
        finished = bench.state(cid)["FinishedAt"]
        latencies.append(docker_time(finished) - starts.of(cid))
        time.sleep(0.05)
    bench.remove(cids)
    return latencies, running


# -- report ------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execs", type=int, default=20, help="execs as root per contender")
    parser.add_argument(
        "--no-start-events", action="store_true", help="run docker-enforcer with RUN_START_EVENTS=False"
    )
    parser.add_argument("--reference", metavar="SOCKET", help="run the reference loop alone on SOCKET")
    args = parser.parse_args()
    if args.reference:
        return reference_loop(args.reference)
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    workdir = trusted_tempdir("de-execbench-")  # not under /tmp: the loader refuses rules files there
    engine = start_engine()
    contenders: list[Contender] = []
    try:
        bench = Bench(engine, ensure_busybox_image(engine))
        starts = ExecStarts(str(engine.socket))
        reference = ExecReference(engine)
        start_events = "False" if args.no_start_events else "True"
        enforcer = Enforcer(
            engine,
            workdir,
            RULES,
            RUN_EXEC_EVENTS="True",
            RUN_START_EVENTS=start_events,
            RUN_PERIODIC="False",
        )
        contenders = [reference, enforcer]
        figures: dict[str, list[float]] = {reference.name: [], enforcer.name: []}
        left: dict[str, int] = {reference.name: 0, enforcer.name: 0}
        halves = [args.execs // 2, args.execs - args.execs // 2]
        for round_no, order in enumerate(([reference, enforcer], [enforcer, reference])):
            for contender in order:
                contender.start()
                try:
                    latencies, running = run_targets(
                        bench, starts, halves[round_no], f"{contender.name[:3]}{round_no}"
                    )
                    figures[contender.name] += latencies
                    left[contender.name] += running
                finally:
                    contender.stop()
        met = report(args.execs, figures, left, enforcer)
        if met:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"docker-enforcer's logs are kept in {workdir}")
        return 0 if met else 1
    finally:
        for contender in contenders:
            proc: Any = getattr(contender, "proc", None)
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        engine.destroy()


def report(execs: int, figures: dict[str, list[float]], left: dict[str, int], enforcer: Enforcer) -> bool:
    print(f"exec_start -> container stopped, {execs} execs as root per contender ({load_average()})")
    for name, latencies in figures.items():
        s = summary(latencies)
        print(
            f"  {name:16} p50 {ms(s['p50'])}  p90 {ms(s['p90'])}  max {ms(s['max'])}  left running {left[name]}"
        )
    p50 = summary(figures[enforcer.name])["p50"]
    recorded = sum(1 for v in enforcer.violations() if v.get("source") == "exec")
    print(f"  docker-enforcer recorded {recorded} exec violations")
    met = p50 <= P50_GOAL_S and left[enforcer.name] == 0
    print(f"goal p50 <= {ms(P50_GOAL_S).strip()}, every target stopped: {'met' if met else 'NOT met'}")
    return met


if __name__ == "__main__":
    sys.exit(main())
