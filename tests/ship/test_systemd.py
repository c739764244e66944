"""The systemd units: `systemd-analyze verify` and `security`, and the notify protocol they rely on.

systemd is not PID 1 here, so the units are not started for real: `verify` loads them with a drop-in that
points ExecStart at this checkout's entry point (as users change paths: with a drop-in), and the daemon
is run the way the unit runs it, with a NOTIFY_SOCKET and WATCHDOG_USEC of our own.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import docker
import pytest
from ship_support import REPO, free_port, read_env_file, require, start_daemon, wait_for
from support.engine import Engine

UNITS = REPO / "systemd"
UNIT_NAMES = ("docker-enforcer.service", "docker-enforcer-audit.service")
INSTALLED_ENTRY_POINT = "/opt/docker-enforcer/venv/bin/docker-enforcer"


def directives(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, in order (keys repeat, unlike in configparser)."""
    out, section = [], ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(unit: Path, key: str) -> list[str]:
    return [value for _, k, value in directives(unit) if k == key]


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    require(found is not None, "systemd-analyze is missing (apt-get install systemd)")
    assert found is not None
    return found


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The units with a drop-in each that runs this checkout's docker-enforcer, as SYSTEMD_UNIT_PATH."""
    entry_point = Path(sys.executable).parent / "docker-enforcer"
    assert entry_point.is_file(), f"{entry_point} is missing: pip install -e ."
    for name in UNIT_NAMES:
        shutil.copy(UNITS / name, tmp_path / name)
        exec_start = values(UNITS / name, "ExecStart")[-1]
        assert INSTALLED_ENTRY_POINT in exec_start
        drop_in = tmp_path / f"{name}.d"
        drop_in.mkdir()
        local = exec_start.replace(INSTALLED_ENTRY_POINT, str(entry_point))
        (drop_in / "path.conf").write_text(f"[Service]\nExecStart=\nExecStart={local}\n")
    return tmp_path


def analyze(unit_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_UNIT_PATH": f"{unit_dir}:", "SYSTEMD_PAGER": ""}
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_systemd_analyze_verify_passes_without_a_warning(unit_dir: Path, name: str) -> None:
    result = analyze(unit_dir, "verify", name)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr + result.stdout


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_units_are_sandboxed_yet_notify_restart_and_reach_the_engine(unit_dir: Path, name: str) -> None:
    unit = UNITS / name
    settings = {key: value for _, key, value in directives(unit)}
    for key, expected in {
        "Type": "notify", "Restart": "always", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "StartLimitIntervalSec": "0",
    }.items():  # fmt: skip
        assert settings.get(key) == expected, f"{name}: {key}={settings.get(key)!r}, expected {expected!r}"
    assert "docker.service" in settings["After"].split()
    assert int(settings["WatchdogSec"]) >= 10 and settings["StateDirectory"]
    assert "AF_UNIX" in settings["RestrictAddressFamilies"].split()  # the Docker socket and sd_notify
    assert not any(key in settings for key in ("PrivateNetwork", "BindsTo", "Requires"))
    assert any(v.startswith("-/etc/docker-enforcer/") for v in values(unit, "EnvironmentFile"))
    # The overall exposure systemd computes, at most 2.0 of 10 ("OK"); 1.3 when written (2.2 as root).
    result = analyze(unit_dir, "security", "--offline=yes", "--threshold=20", name)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_the_audit_unit_is_warn_whatever_its_environment_file_says() -> None:
    exec_start = shlex.split(values(UNITS / "docker-enforcer-audit.service", "ExecStart")[-1])
    assert exec_start[:2] == ["/usr/bin/env", "MODE=WARN"] and exec_start[-1] == "run"
    main = {k: v for _, k, v in directives(UNITS / "docker-enforcer.service")}
    audit = {k: v for _, k, v in directives(UNITS / "docker-enforcer-audit.service")}
    for key in ("WorkingDirectory", "StateDirectory", "EnvironmentFile", "SyslogIdentifier"):
        assert main[key] != audit[key], key
    assert "LISTEN_ADDRESS=127.0.0.1:8889" in audit["Environment"]


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_units_serve_the_api_on_loopback_unless_the_environment_file_says_otherwise(name: str) -> None:
    assigned = [item for value in values(UNITS / name, "Environment") for item in shlex.split(value)]
    listen = [item.partition("=")[2] for item in assigned if item.startswith("LISTEN_ADDRESS=")]
    assert listen and listen[-1].startswith("127.0.0.1:"), listen
    assert "LISTEN_ADDRESS" not in read_env_file(UNITS / "environment.conf.example")


def test_the_environment_file_example_is_read_by_the_enforcer(tmp_path: Path) -> None:
    env = read_env_file(UNITS / "environment.conf.example")
    assert env["MODE"] == "KILL" and env["RUN_START_EVENTS"] == "True"
    result = subprocess.run(
        [sys.executable, "-m", "enforcer", "check"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# -- the notify protocol, as the unit runs the daemon ---------------------------------------------------------
class NotifySocket:
    """What systemd listens on: a datagram socket collecting READY=1, WATCHDOG=1, STOPPING=1..."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return [m for _, m in self.messages]
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def received(self, message: str) -> bool:
        return message in self.drain()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_ready_only_once_the_engine_answers_then_watchdog_and_stopping(
    clean_engine: Engine, notify_socket: NotifySocket, tmp_path: Path
) -> None:
    """The engine is down at start (its socket is missing): the daemon retries, without READY=1, until it is up."""
    unit = UNITS / "docker-enforcer.service"
    env = dict(item.split("=", 1) for value in values(unit, "Environment") for item in shlex.split(value))
    env.update(read_env_file(UNITS / "environment.conf.example"))
    late_socket = tmp_path / "engine" / "docker.sock"
    watchdog_s = int(values(unit, "WatchdogSec")[-1])
    env.update(
        STATE_DB=str(tmp_path / "state" / "detections.db"),  # StateDirectory, here
        LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        DOCKER_SOCKET=f"unix://{late_socket}",
        NOTIFY_SOCKET=str(notify_socket.path),
        WATCHDOG_USEC=str(watchdog_s * 1_000_000),
    )
    workdir = tmp_path / "etc-docker-enforcer"
    workdir.mkdir(mode=0o755)
    daemon = start_daemon("unit", env, workdir)
    try:
        health = wait_for("the status API (up before the engine)", lambda: daemon.get("/healthz"), timeout=20)
        assert health.status == 503 and "docker engine unreachable" in health.body
        time.sleep(2)
        assert daemon.process.poll() is None, daemon.log()
        assert "READY=1" not in notify_socket.drain()

        late_socket.parent.mkdir()
        late_socket.symlink_to(clean_engine.socket)  # the engine comes up
        wait_for("READY=1", lambda: notify_socket.received("READY=1"), timeout=20)
        ready_at = next(t for t, m in notify_socket.messages if m == "READY=1")
        wait_for("/healthz 200 (watchers running)", daemon.healthy, timeout=20)
        time.sleep(2.5)
        notify_socket.drain()
        pings = [t for t, m in notify_socket.messages if m == "WATCHDOG=1" and t > ready_at]
        assert len(pings) >= 2, notify_socket.messages
        assert max(b - a for a, b in pairwise(pings)) < watchdog_s / 2

        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(int(values(unit, "TimeoutStopSec")[-1])) == 0, daemon.log()
        assert "STOPPING=1" in notify_socket.drain()
    finally:
        daemon.stop()


# -- what the sandbox denies, the daemon never asks for -------------------------------------------------------
# systemd is not PID 1 here, so the seccomp filter, MemoryDenyWriteExecute, RestrictAddressFamilies and the
# /proc options cannot be applied for real. Instead the daemon runs as the unit runs it (its own user, with
# the socket's group as SupplementaryGroups= gives it) under strace through a whole life: start, a violator
# stopped, the API asked, a reload, SIGTERM. Every system call it makes must be one the unit allows.
DYNAMIC_UID = 61234  # in systemd's DynamicUser= range
ALLOWED_FAMILIES = {"AF_UNIX", "AF_INET", "AF_INET6"}
RULES = (
    'rules = [{"name": "must have memory limit", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0}]\n'
)


def syscall_group(name: str) -> set[str]:
    """The system calls of a systemd group such as @system-service, nested groups expanded."""
    result = subprocess.run(
        [systemd_analyze(), "syscall-filter", name], capture_output=True, text=True, check=True
    )
    calls: set[str] = set()
    for line in result.stdout.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= syscall_group(entry) if entry.startswith("@") else {entry}
    return calls


def unit_filter(unit: Path) -> set[str]:
    """The system calls SystemCallFilter= lines allow, in order: an allow list, then `~` deny lists."""
    allowed: set[str] = set()
    for value in values(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = set().union(*(
            syscall_group(item) if item.startswith("@") else {item} for item in value.lstrip("~").split()
        ))  # fmt: skip
        allowed = allowed - names if deny else allowed | names
    return allowed


@dataclass
class Trace:
    """The daemon's system calls as strace wrote them, from its own exec on (not setpriv's)."""

    calls: list[tuple[str, str]]  # (name, arguments and result)
    tids: set[str]  # the process and its threads

    @classmethod
    def read(cls, path: Path, program: str) -> Trace:
        calls: list[tuple[str, str]] = []
        tids: set[str] = set()
        started = False
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"(\d+) +(?:<\.\.\. )?(\w+)(?:\(| resumed>)(.*)", line)
            if not match:
                continue
            tid, name, rest = match.groups()
            started = started or (
                name == "execve" and rest.startswith(f'"{program}"') and rest.endswith("= 0")
            )
            if started and "resumed>" not in line:
                calls.append((name, rest))
                tids.add(tid)
        assert started, f"no execve of {program} in the trace"
        return cls(calls, tids)

    def names(self) -> set[str]:
        return {name for name, _ in self.calls}

    def with_name(self, *names: str) -> list[str]:
        return [rest for name, rest in self.calls if name in names]


@pytest.fixture
def traced_life(clean_engine: Engine, tmp_path: Path) -> Trace:
    """The daemon's whole life under strace, as the unit runs it: its own uid, the socket's group."""
    strace = shutil.which("strace")
    require(strace is not None, "strace is missing (apt-get install strace)")
    assert strace is not None
    unit = UNITS / "docker-enforcer.service"
    env = dict(item.split("=", 1) for value in values(unit, "Environment") for item in shlex.split(value))
    env.update(read_env_file(UNITS / "environment.conf.example"))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, DYNAMIC_UID, DYNAMIC_UID)  # StateDirectory=, the dynamic user's own
    workdir = tmp_path / "etc-docker-enforcer"
    (workdir / "rules").mkdir(mode=0o755, parents=True)
    (workdir / "rules" / "rules.py").write_text(RULES)
    for path in (tmp_path, workdir, workdir / "rules"):
        path.chmod(0o755)
    env.update(
        STATE_DB=str(state / "detections.db"),
        LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        DOCKER_SOCKET=clean_engine.url,
        CHECK_INTERVAL_S="1",
    )
    trace_file = tmp_path / "strace.txt"
    # The interpreter lives under /root (0700 here): CAP_DAC_READ_SEARCH lets the dynamic user reach it. It
    # reads and searches only; connecting to the socket and writing the state still need the group and owner.
    as_unit = [
        "setpriv", f"--reuid={DYNAMIC_UID}", f"--regid={DYNAMIC_UID}",
        f"--groups={clean_engine.socket.stat().st_gid}",
        "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--",
    ]  # fmt: skip
    command = [strace, "-f", "-qq", "-s", "256", "-o", str(trace_file), *as_unit, sys.executable]
    daemon = start_daemon("unit", env, workdir, command=[*command, "-m", "enforcer", "run"])
    try:
        wait_for("/healthz 200 under strace", daemon.healthy, timeout=60)
        client = clean_engine.client()
        violator = client.containers.run("busybox", ["sleep", "3600"], detach=True, name="traced-violator")
        wait_for("the violator to be stopped", lambda: not _running(client, violator.id), timeout=30)
        for path in ("/", "/metrics", "/config"):
            reply = daemon.get(path)
            assert reply is not None and reply.status == 200, (path, reply)
        # Signals go to the daemon itself: strace's child (setpriv execs it), as systemd sends them.
        strace_pid = daemon.process.pid
        [pid] = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
        (workdir / "rules" / "rules.py").write_text(RULES + "# changed\n")
        os.kill(int(pid), signal.SIGHUP)
        wait_for("the reload", lambda: "rules reloaded (SIGHUP)" in daemon.log(), timeout=10)
        os.kill(int(pid), signal.SIGTERM)
        assert daemon.process.wait(30) == 0, daemon.log()[-3000:]  # strace exits with its tracee's status
        assert "Traceback" not in daemon.log(), daemon.log()[-3000:]
    finally:
        daemon.stop()
    return Trace.read(trace_file, sys.executable)


def _running(client: docker.DockerClient, cid: str) -> bool:
    return bool(client.containers.get(cid).attrs["State"]["Running"])


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_the_units_deny_what_systemd_analyze_security_listed_open(unit_dir: Path, name: str) -> None:
    result = analyze(unit_dir, "security", "--offline=yes", name)
    open_items = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("✗")}
    closed = {
        "ProtectProc=", "ProcSubset=", "RestrictAddressFamilies=~AF_NETLINK", "SystemCallFilter=~@privileged",
        "SystemCallFilter=~@resources", "MemoryDenyWriteExecute=", "User=/DynamicUser=",
    }  # fmt: skip
    assert not closed & open_items, result.stdout
    unit = UNITS / name
    assert values(unit, "SupplementaryGroups") == ["docker"]  # the socket's group: root is not needed


def test_the_daemon_needs_nothing_the_units_deny(traced_life: Trace) -> None:
    for name in UNIT_NAMES:
        allowed = unit_filter(UNITS / name)
        assert not traced_life.names() - allowed, f"{name} denies {traced_life.names() - allowed}"
    families = {re.match(r"(\w+)", rest).group(1) for rest in traced_life.with_name("socket")}  # type: ignore[union-attr]
    assert families <= ALLOWED_FAMILIES, families  # RestrictAddressFamilies=
    # MemoryDenyWriteExecute=: no writable and executable mapping, no page made executable later.
    maps = traced_life.with_name("mmap", "mmap2")
    assert not [m for m in maps if "PROT_WRITE" in m and "PROT_EXEC" in m]
    assert not [m for m in traced_life.with_name("mprotect", "pkey_mprotect") if "PROT_EXEC" in m]
    # ProcSubset=pid and ProtectProc=invisible: /proc is read for this process only. Importing prometheus_client
    # makes its default registry (never served here) look for the boot time in /proc/stat, and it does without.
    proc_paths = re.findall(r'"(/proc(?:/[^"]*)?)"', "\n".join(rest for _, rest in traced_life.calls))
    own = re.compile(r"/proc/(self|thread-self|\d+)(/|$)")
    others = [
        p
        for p in proc_paths
        if not own.match(p) or own.match(p).group(1) not in {"self", "thread-self", *traced_life.tids}
    ]  # type: ignore[union-attr]
    assert set(others) <= {"/proc/stat"}, sorted(set(others))
