"""Helpers for tests that run `docker-enforcer run` as a subprocess (fixtures `daemon` and `containers`).

Used through the fixtures of tests/conftest.py:
    daemon      function  daemon(rules=..., triggers=None, whitelist_rules=None, wait=..., **env) -> Enforcer
                          starts `python -m enforcer run` with JSON logs and returns a handle; every daemon
                          started is stopped (SIGTERM, then SIGKILL) after the test
    containers  function  containers.run(name, *, image=..., command=..., **create_kwargs) -> id, and
                          helpers to inspect them; every container is removed after the test (clean_engine)

The daemon always listens on 127.0.0.1 (a free port) and keeps its state in the test's tmp_path; its
working directory is tmp_path too, so nothing of the repository's own rules/ folder is ever picked up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from support.engine import HOST_DOCKER_VARS, Engine

REPO = Path(__file__).resolve().parents[2]
# Variables the enforcer reads: never inherited from the environment the tests run in.
ENFORCER_VARS = (
    "MODE", "RUN_PERIODIC", "RUN_START_EVENTS", "RUN_UPDATE_EVENTS", "RUN_RENAME_EVENTS", "RUN_EXEC_EVENTS",
    "CHECK_INTERVAL_S",
    "IMMEDIATE_PERIODICAL_START", "CATCH_UP_SWEEP", "DOCKER_SOCKET", "DOCKER_REQ_TIMEOUT_S", "CACHE_PARAMS",
    "DISABLE_PARAMS", "DISABLE_METRICS", "STOP_ON_FIRST_VIOLATION", "RULE_ERRORS_ARE_VIOLATIONS",
    "STOP_TIMEOUT_S", "PREVENT_ON_CREATE", "LOG_LEVEL", "LOG_FORMAT", "WHITE_LIST", "IMAGE_WHITE_LIST",
    "RULES_FILE", "WHITELIST_RULES_FILE", "TRIGGERS_FILE", "ALLOW_WRITABLE_RULES", "LISTEN_ADDRESS",
    "API_TOKEN", "METRICS_PUBLIC", "STATE_DB", "DETECTIONS_MAX_AGE_DAYS", "NOTIFY_SOCKET", "WATCHDOG_USEC",
    "LOG_AUTHZ_REQUESTS", "DEFAULT_ACTION_ALLOW", "SAMPLE_INTERVAL_S", "MAX_NEW_STOPS",
    "MAX_STOPS_PER_MINUTE", "OWNER_LABEL", "OWNER_LABELS",
)  # fmt: skip
# A violator rule used by most tests: containers named bad-* violate it.
BAD_NAME_RULES = """
rules = [{"name": "no bad names", "rule": lambda c: c.name.startswith("bad")}]
"""
READY = "ready"  # wait until the daemon is connected and its event stream open (the catch-up sweep ran)
STARTED = "started"  # wait until the daemon logged its start line only
CLK_TCK = os.sysconf("SC_CLK_TCK")

Record = dict[str, Any]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy and return its value; None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def write_user_file(path: Path, text: str) -> Path:
    """Write a rules/whitelist/triggers file as the loader accepts it (folder and file not group-writable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o644)
    return path


def replace_file(path: Path, text: str, keep_stat: bool = False) -> None:
    """Swap the file's content atomically (as editors and config management do); optionally keep its
    mtime, so that only a SIGHUP, not the poll of the files' size and mtime, can notice the change."""
    old = path.stat()
    new = path.with_suffix(".new")
    new.write_text(textwrap.dedent(text).lstrip())
    new.chmod(0o644)
    if keep_stat:
        assert new.stat().st_size == old.st_size
        os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, path)


def docker_time(raw: str) -> float:
    """Seconds since the epoch from Docker's RFC 3339 timestamps with nanoseconds."""
    head, _, frac = raw.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


@dataclass
class Enforcer:
    """A running `docker-enforcer run` subprocess and its log (stderr, one JSON object per line)."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int
    env: dict[str, str]
    rules_path: Path
    _records: list[Record] = field(default_factory=list)
    _offset: int = 0

    # -- the log ---------------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()

    def records(self) -> list[Record]:
        """Every log line parsed; a line that is not JSON (a traceback from outside logging) as {"raw": line}."""
        with open(self.log_path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = {"raw": line, "message": line}
            self._records.append(record if isinstance(record, dict) else {"raw": line, "message": line})
        return list(self._records)

    def messages(self) -> list[str]:
        return [str(r.get("message", "")) for r in self.records()]

    def find(self, predicate: Callable[[Record], Any]) -> list[Record]:
        return [r for r in self.records() if predicate(r)]

    def wait_for_log(self, predicate: Callable[[Record], Any], timeout: float = 10) -> Record:
        """The first record matching predicate, waiting for it; fails with the log when it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.records():
                if predicate(record):
                    return record
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}) while waiting\n{self.tail()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"no matching log line within {timeout} s\n{self.tail()}")
            time.sleep(0.05)

    def wait_for_message(self, fragment: str, timeout: float = 10) -> Record:
        return self.wait_for_log(lambda r: fragment in str(r.get("message", "")), timeout)

    def violations(self, container: str | None = None) -> list[Record]:
        """The one-line-per-violation records, optionally of one container (by name)."""
        return self.find(
            lambda r: (
                str(r.get("message", "")).startswith("violation:")
                and (container is None or r.get("container") == container)
            )
        )

    def wait_for_violation(self, container: str, timeout: float = 10) -> Record:
        return self.wait_for_log(
            lambda r: str(r.get("message", "")).startswith("violation:") and r.get("container") == container,
            timeout,
        )

    def tail(self, lines: int = 40) -> str:
        text = "\n".join(self.log_lines()[-lines:])
        return f"--- last {lines} lines of the daemon's log ---\n{text}"

    # -- the process -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        """A JSON answer of the status API."""
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return str(response.read().decode(errors="replace"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon (all its threads) has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime and stime, fields 14 and 15

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM and wait; the exit status, or None when it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None


def daemon_env(engine: Engine, tmp_path: Path, port: int, overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HOST_DOCKER_VARS and k not in ENFORCER_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "DOCKER_SOCKET": engine.url,
            "MODE": "KILL",
            "RUN_START_EVENTS": "true",
            "RUN_PERIODIC": "false",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "STATE_DB": str(tmp_path / "state" / "detections.db"),
        }
    )
    env.update(overrides)
    return env


class DaemonFactory:
    """Starts daemons for one test; `__call__` returns a handle once the daemon is ready."""

    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        self.engine = engine
        self.tmp_path = tmp_path
        self.started: list[Enforcer] = []

    def __call__(
        self,
        rules: str = BAD_NAME_RULES,
        *,
        triggers: str | None = None,
        whitelist_rules: str | None = None,
        wait: str | None = READY,
        timeout: float = 30,
        **env: str,
    ) -> Enforcer:
        index = len(self.started)
        rules_path = write_user_file(self.tmp_path / "rules" / "rules.py", rules)
        files = {"RULES_FILE": str(rules_path)}
        if triggers is not None:
            files["TRIGGERS_FILE"] = str(
                write_user_file(self.tmp_path / "triggers" / "triggers.py", triggers)
            )
        if whitelist_rules is not None:
            path = write_user_file(self.tmp_path / "whitelist_rules" / "whitelist_rules.py", whitelist_rules)
            files["WHITELIST_RULES_FILE"] = str(path)
        port = free_port()
        full_env = daemon_env(self.engine, self.tmp_path, port, {**files, **env})
        log_path = self.tmp_path / f"daemon-{index}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "enforcer", "run"],
                cwd=self.tmp_path,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        enforcer = Enforcer(proc, log_path, port, full_env, rules_path)
        self.started.append(enforcer)
        if wait == READY:
            enforcer.wait_for_message("sweep of", timeout)  # the catch-up sweep runs once the stream is open
        elif wait == STARTED:
            enforcer.wait_for_message("starting: mode=", timeout)
        return enforcer

    def stop_all(self) -> None:
        for enforcer in self.started:
            enforcer.stop()


class Containers:
    """Runs busybox containers in the isolated engine and reads their state."""

    def __init__(self, engine: Engine, image: str) -> None:
        self.engine = engine
        self.image = image
        self.api = engine.api()

    def run(
        self,
        name: str | None = None,
        *,
        image: str | None = None,
        command: Sequence[str] = ("sleep", "3600"),
        **create_kwargs: Any,
    ) -> str:
        """Create and start a detached container; stop_signal SIGKILL so that engine restarts stay fast."""
        create_kwargs.setdefault("stop_signal", "SIGKILL")
        host_config = self.api.create_host_config(**create_kwargs.pop("host_config", {}))
        container = self.api.create_container(
            image or self.image, list(command), name=name, host_config=host_config, **create_kwargs
        )
        self.api.start(container["Id"])
        return str(container["Id"])

    def inspect(self, cid: str) -> dict[str, Any]:
        return dict(self.api.inspect_container(cid))

    def running(self, cid: str) -> bool:
        try:
            return bool(self.inspect(cid)["State"]["Running"])
        except docker.errors.NotFound:
            return False

    def wait_stopped(self, cid: str, timeout: float = 5) -> bool:
        return bool(wait_until(lambda: not self.running(cid), timeout))

    def running_window(self, cid: str) -> float:
        """Seconds from State.StartedAt to State.FinishedAt: how long the container ran."""
        state = self.inspect(cid)["State"]
        return docker_time(state["FinishedAt"]) - docker_time(state["StartedAt"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()
