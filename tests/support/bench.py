"""What the benchmarks share: the environment of a `docker-enforcer run` measured against an isolated engine,
the minimal reference loops they measure it beside, and the engine side of a kill-latency run.

The reference loops run as processes of their own: `python -m support.bench kill-reference SOCKET` (raw event
stream -> kill) and `python -m support.bench sweep-reference SOCKET --threads N --rounds R` (raw list, then
inspect + one-shot stats of every container on N threads), with `tests` on PYTHONPATH (`reference_env`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from docker import APIClient
from docker.errors import NotFound

from support.engine import Engine
from support.rawhttp import UnixHTTP

ROOT = Path(__file__).resolve().parent.parent.parent
VIOLATOR = "violator"
KILL_RULES = 'rules = [{"name": "no violators", "rule": lambda c: c.name.startswith("violator")}]\n'
WAIT_STOPPED_S = 10.0
API_VERSION = "v1.41"


def enforcer_env(engine: Engine, workdir: Path, rules: str, **settings: str) -> dict[str, str]:
    """Env for `python -m enforcer run`: this checkout's code, the engine's socket, `rules` written to
    workdir/rules.py (0644, as the loader wants), state in workdir/state, KILL on start events, API on any
    free loopback port; `settings` add or override variables."""
    rules_path = workdir / "rules.py"
    rules_path.write_text(rules)
    rules_path.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        DOCKER_SOCKET=engine.url,
        RULES_FILE=str(rules_path),
        MODE="KILL",
        RUN_START_EVENTS="True",
        RUN_PERIODIC="False",
        LOG_LEVEL="INFO",
        LISTEN_ADDRESS="127.0.0.1:0",
        STATE_DB=str(workdir / "state" / "detections.db"),
    )
    env.update(settings)
    return env


def reference_env() -> dict[str, str]:
    """Env for `python -m support.bench ...`: `tests` on PYTHONPATH."""
    tests = str(ROOT / "tests")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p),
    }


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (VmRSS of /proc/PID/status) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def load_average() -> str:
    """The host's load average (1, 5, 15 min): the machine is shared, so every figure goes with it."""
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- the reference loops, each a process of its own --------------------------------------------------------
def kill_reference(sock_path: str) -> int:
    """Raw event stream -> kill on a new thread per violator; prints "ready" once the stream is open."""

    def kill(cid: str) -> None:
        conn = UnixHTTP(sock_path)
        conn.request("POST", f"/{API_VERSION}/containers/{cid}/kill")
        conn.getresponse().read()
        conn.close()

    stream = UnixHTTP(sock_path)
    filters = quote(json.dumps({"type": ["container"], "event": ["start"]}))
    stream.request("GET", f"/{API_VERSION}/events?filters={filters}")
    response = stream.getresponse()
    print("ready", flush=True)
    while line := response.readline():
        event = json.loads(line)
        if event["Actor"]["Attributes"].get("name", "").startswith(VIOLATOR):
            threading.Thread(target=kill, args=(event["id"],), daemon=True).start()
    return 0


class RawReader:
    """GETs on the engine's socket, one kept-alive connection per thread, JSON decoded: what a sweep costs
    the engine, without docker-py or docker-enforcer in the way."""

    def __init__(self, sock_path: str) -> None:
        self.sock_path = sock_path
        self.local = threading.local()

    def get(self, path: str) -> Any:
        if getattr(self.local, "conn", None) is None:
            self.local.conn = UnixHTTP(self.sock_path)
        self.local.conn.request("GET", f"/{API_VERSION}{path}")
        return json.loads(self.local.conn.getresponse().read())

    def facts(self, cid: str) -> tuple[Any, Any]:
        """A container's inspect and one-shot stats."""
        inspect = self.get(f"/containers/{cid}/json")
        return inspect, self.get(f"/containers/{cid}/stats?stream=false&one-shot=true")


def sweep_reference(sock_path: str, threads: int, rounds: int) -> int:
    """`rounds` sweeps: raw HTTP list, then inspect + one-shot stats of every container on `threads` threads
    (kept-alive connections, JSON decoded, nothing judged or kept); prints one JSON line per sweep with its
    seconds, the containers seen and the resident memory."""
    raw = RawReader(sock_path)
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(rounds):
            started = time.perf_counter()
            listed = raw.get("/containers/json")
            seen = len(list(pool.map(raw.facts, [c["Id"] for c in listed])))
            seconds = time.perf_counter() - started
            print(json.dumps({"seconds": seconds, "containers": seen, "rss_mb": rss_mb()}), flush=True)
    return 0


# -- contenders --------------------------------------------------------------------------------------------
class Contender:
    name = ""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Reference(Contender):
    name = "reference loop"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.proc: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        """The loop's command line; it prints "ready" once its event stream is open."""
        return [sys.executable, "-m", "support.bench", "kill-reference", str(self.engine.socket)]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            text=True,
            env=reference_env(),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the reference loop did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


class Enforcer(Contender):
    name = "docker-enforcer"

    def __init__(self, engine: Engine, workdir: Path, rules: str = KILL_RULES, **settings: str) -> None:
        self.workdir = workdir
        self.env = enforcer_env(engine, workdir, rules, **{"LOG_FORMAT": "json", **settings})
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path = workdir / "enforcer-0.log"

    def start(self) -> None:
        self.log_path = self.workdir / f"enforcer-{self.runs}.log"
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "enforcer", "run"], env=self.env, cwd=self.workdir, stderr=log
            )
        deadline = time.monotonic() + 60
        while "sweep of" not in self.log_path.read_text():  # connected, stream open, catch-up sweep done
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-enforcer did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def violations(self) -> list[dict[str, Any]]:
        out = []
        for path in self.workdir.glob("enforcer-*.log"):
            for line in path.read_text().splitlines():
                if line.startswith("{") and '"violation: ' in line:
                    out.append(json.loads(line))
        return out


# -- the engine side ---------------------------------------------------------------------------------------
def docker_time(raw: str) -> float:
    head, _, frac = raw.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


class Bench:
    def __init__(self, engine: Engine, image: str) -> None:
        self.engine = engine
        self.image = image
        self.local = threading.local()
        self.counter = 0
        self.lock = threading.Lock()

    def api(self) -> APIClient:
        if getattr(self.local, "api", None) is None:
            self.local.api = self.engine.api()
        return self.local.api

    def run(self, name: str, mem_limit: str | None = None) -> str:
        """Create and start a busybox `sleep` (SIGKILL as stop signal, so removal is quick)."""
        api = self.api()
        cid = api.create_container(
            self.image,
            ["sleep", "3600"],
            name=name,
            host_config=api.create_host_config(mem_limit=mem_limit),
            stop_signal="SIGKILL",
        )["Id"]
        api.start(cid)
        return str(cid)

    def next_name(self, label: str) -> str:
        with self.lock:
            self.counter += 1
            return f"{VIOLATOR}-{label}-{self.counter}"

    def state(self, cid: str) -> dict[str, Any]:
        return dict(self.api().inspect_container(cid)["State"])

    def wait_stopped(self, cid: str, timeout: float = WAIT_STOPPED_S) -> bool:
        deadline = time.monotonic() + timeout
        while self.state(cid)["Running"]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def windows(self, cids: list[str]) -> tuple[list[float], int]:
        """Running windows of the stopped ones, and how many still run."""
        out, running = [], 0
        for cid in cids:
            state = self.state(cid)
            if state["Running"]:
                running += 1
            else:
                out.append(docker_time(state["FinishedAt"]) - docker_time(state["StartedAt"]))
        return out, running

    def remove(self, cids: list[str]) -> None:
        def one(cid: str) -> None:
            with contextlib.suppress(NotFound):
                self.api().remove_container(cid, force=True)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, cids))

    def sequential(self, count: int, label: str) -> tuple[list[float], int]:
        cids = []
        for _ in range(count):
            cid = self.run(self.next_name(label))
            cids.append(cid)
            self.wait_stopped(cid)
            time.sleep(0.05)
        result = self.windows(cids)
        self.remove(cids)
        return result

    def burst(self, count: int, parallel: int, label: str) -> tuple[list[float], int]:
        names = [self.next_name(label) for _ in range(count)]
        with ThreadPoolExecutor(parallel) as pool:
            cids = list(pool.map(self.run, names))
        deadline = time.monotonic() + WAIT_STOPPED_S
        while any(self.state(cid)["Running"] for cid in cids) and time.monotonic() < deadline:
            time.sleep(0.05)
        result = self.windows(cids)
        self.remove(cids)
        return result


# -- report -------------------------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def summary(windows: list[float]) -> dict[str, float]:
    if not windows:
        return {"p50": float("nan"), "p90": float("nan"), "max": float("nan")}
    ordered = sorted(windows)
    return {
        "p50": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="the benchmarks' reference loops")
    sub = parser.add_subparsers(dest="loop", required=True)
    sub.add_parser("kill-reference").add_argument("socket")
    sweep = sub.add_parser("sweep-reference")
    sweep.add_argument("socket")
    sweep.add_argument("--threads", type=int, required=True)
    sweep.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.loop == "kill-reference":
        return kill_reference(args.socket)
    return sweep_reference(args.socket, args.threads, args.rounds)


if __name__ == "__main__":
    raise SystemExit(main())
