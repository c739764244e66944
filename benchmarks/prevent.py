"""Prevention benchmark (PREVENT_ON_CREATE): do violators run a single instruction?

Against an isolated engine of its own, with 100 clean containers running, it starts violators with the
Docker CLI (`docker run -d`, which creates and then starts) whose first command writes a marker file into a
bind mount: a marker means the container ran. Two contenders, one after the other, in the same run:

- the bare loop (reference): raw event stream -> inspect -> remove, one kept-alive HTTP connection per
  worker thread, no judging beyond one label;
- docker-enforcer: `docker-enforcer run` with MODE=KILL, RUN_START_EVENTS=True, PREVENT_ON_CREATE=True.

Scenarios: violators started one after another; a burst of 40 started 8 at a time. It also times a clean
container's `docker run -d` with and without the enforcer. Run: python benchmarks/prevent.py [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.engine import Engine, ensure_busybox_image, start_engine  # noqa: E402

RULES = """rules = [{"name": "no violators", "rule": lambda c: c.labels.get("violator") == "1"}]\n"""


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class BareLoop:
    """The reference: create event -> inspect -> remove if labelled, on 8 workers with kept-alive connections."""

    def __init__(self, sock: str) -> None:
        self.sock = sock
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(8)
        self.stream: UnixHTTP | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        time.sleep(0.5)

    def _conn(self) -> UnixHTTP:
        if getattr(self.local, "c", None) is None:
            self.local.c = UnixHTTP(self.sock)
        return self.local.c

    def _handle(self, cid: str) -> None:
        conn = self._conn()
        conn.request("GET", f"/v1.41/containers/{cid}/json")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return
        if (json.loads(body)["Config"].get("Labels") or {}).get("violator") == "1":
            conn.request("DELETE", f"/v1.41/containers/{cid}?force=1")
            conn.getresponse().read()

    def _run(self) -> None:
        self.stream = UnixHTTP(self.sock)
        filters = quote(json.dumps({"type": ["container"], "event": ["create"]}))
        self.stream.request("GET", f"/v1.41/events?filters={filters}")
        resp = self.stream.getresponse()
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                self.pool.submit(self._handle, json.loads(line)["id"])
        except (OSError, ValueError):
            return

    def stop(self) -> None:
        if self.stream and self.stream.sock:
            self.stream.sock.shutdown(socket.SHUT_RDWR)
        self.pool.shutdown(wait=True)


class Enforcer:
    def __init__(self, engine: Engine, workdir: Path) -> None:
        rules = workdir / "rules.py"
        rules.write_text(RULES)
        self.env = dict(
            os.environ,
            DOCKER_SOCKET=engine.url,
            RULES_FILE=str(rules),
            MODE="KILL",
            RUN_START_EVENTS="True",
            RUN_PERIODIC="False",
            PREVENT_ON_CREATE="True",
            LISTEN_ADDRESS="127.0.0.1:0",
            STATE_DB=str(workdir / "detections.db"),
            LOG_LEVEL="WARNING",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "enforcer", "run"], env=self.env, cwd=ROOT)
        time.sleep(3)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def docker_run(engine: Engine, name: str, marks: Path, violator: bool) -> tuple[bool, float]:
    """`docker run -d`; returns (started, seconds)."""
    args = ["run", "-d", "--name", name, "--stop-signal", "KILL", "-v", f"{marks}:/mark"]
    if violator:
        args += ["--label", "violator=1"]
    args += ["busybox", "sh", "-c", f"touch /mark/{name}; exec sleep 3600"]
    began = time.perf_counter()
    result = engine.docker(*args, check=False)
    return result.returncode == 0, time.perf_counter() - began


def scenario(engine: Engine, label: str, count: int, parallel: int, marks: Path) -> dict[str, int]:
    names = [f"{label}-{i}" for i in range(count)]
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda n: docker_run(engine, n, marks, True), names))
    time.sleep(2)
    ran = sum((marks / n).exists() for n in names)
    api = engine.api()
    running = sum(1 for c in api.containers(filters={"label": "violator=1"}))
    api.close()
    return {"started": count, "prevented": count - ran, "ran": ran, "left running": running}


def clean_runs(engine: Engine, label: str, count: int, marks: Path) -> float:
    times = [docker_run(engine, f"{label}-{i}", marks, False)[1] for i in range(count)]
    return statistics.median(times)


def cleanup(engine: Engine) -> None:
    api = engine.api()
    for c in api.containers(all=True, filters={"label": "violator=1"}):
        api.remove_container(c["Id"], force=True)
    api.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer containers (for a smoke run)")
    args = parser.parse_args()
    background, sequential, burst = (20, 10, 16) if args.quick else (100, 20, 40)
    work = Path(tempfile.mkdtemp(prefix="de-prevent-"))
    marks = work / "marks"
    marks.mkdir()
    engine = start_engine()
    try:
        ensure_busybox_image(engine)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: engine.docker("run", "-d", "--stop-signal", "KILL", "busybox", "sleep", "3600"),
                          range(background)))  # fmt: skip
        results: dict[str, dict[str, object]] = {}
        base = clean_runs(engine, "clean-none", 10, marks)
        for name, contender in (
            ("bare loop", BareLoop(engine.url[len("unix://") :])),
            ("docker-enforcer", Enforcer(engine, work)),
        ):
            contender.start()
            seq = scenario(engine, f"{name[:4]}-seq", sequential, 1, marks)
            cleanup(engine)
            bur = scenario(engine, f"{name[:4]}-burst", burst, 8, marks)
            cleanup(engine)
            clean = clean_runs(engine, f"clean-{name[:4]}", 10, marks)
            contender.stop()
            results[name] = {"sequential": seq, "burst": bur, "clean run p50 ms": round(clean * 1000, 1)}
        print(
            f"\n{background} clean containers running; `docker run -d` p50 without any watcher: {base * 1000:.1f} ms"
        )
        print(f"{'':18}{'one after another':>26}{'burst (8 at a time)':>28}{'clean run p50':>16}")
        for name, r in results.items():
            seq, bur = r["sequential"], r["burst"]
            assert isinstance(seq, dict) and isinstance(bur, dict)
            print(
                f"{name:18}{seq['prevented']:>10}/{seq['started']} prevented, {seq['ran']} ran"
                f"{bur['prevented']:>12}/{bur['started']} prevented, {bur['ran']} ran"
                f"{r['clean run p50 ms']:>12} ms"
            )
        enforcer = results["docker-enforcer"]
        assert isinstance(enforcer["sequential"], dict) and isinstance(enforcer["burst"], dict)
        print(f"violators left running with docker-enforcer: "
              f"{enforcer['sequential']['left running'] + enforcer['burst']['left running']}")  # fmt: skip
    finally:
        engine.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
