"""An isolated Docker engine for the tests, and a tiny busybox image to run in it.

The enforcer acts on every container of a Docker host, so its tests must never reach the host's own
engine (/var/run/docker.sock or DOCKER_HOST). This module starts a private ``dockerd`` whose data,
exec root, containerd, socket, config and trust key all live under one base directory, with no bridge
and no iptables, so that it touches neither the host's containers nor its networking. Several such
engines can run side by side.

No registry is reachable, so ``ensure_busybox_image`` builds ``busybox:latest`` from Debian's
busybox-static binary and imports it.

Self-contained on purpose (stdlib + ``docker`` only): the same file is the pytest support code and a
command line tool for trying the enforcer in a sandbox::

    python tests/support/engine.py start --dir /tmp/de-sandbox   # prints unix:///tmp/de-sandbox/docker.sock
    python tests/support/engine.py stop --dir /tmp/de-sandbox [--remove]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket as socketlib
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docker import APIClient, DockerClient
from docker.errors import APIError, NotFound

BUSYBOX_PATH = Path("/usr/bin/busybox")
DEFAULT_IMAGE = "busybox:latest"
# The directories of the busybox image and their modes; Docker mounts /proc, /sys, /dev and /etc files.
ROOTFS_DIRS = {"bin": 0o755, "etc": 0o755, "tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755}
# Environment variables that would point a docker client at some other engine.
HOST_DOCKER_VARS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")
# sockaddr_un.sun_path is 108 bytes; containerd puts "<exec-root>/containerd/containerd.sock.ttrpc" there.
MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1
_MNT_DETACH = 2


class DockerCLIError(subprocess.CalledProcessError):
    """A failed docker CLI call whose message, unlike CalledProcessError's, shows what docker said."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class RunContainer(Protocol):
    """Signature of the ``run_container`` fixture: start a busybox container, return its id."""

    def __call__(self, name: str | None = None, *, command: Sequence[str] = ..., **create_kwargs: Any) -> str:
        """Run a detached busybox container, removed after the test."""
        ...


@dataclass
class Engine:
    """A private dockerd whose whole state lives under ``base_dir``.

    ``pid`` is the dockerd process id while it runs (``None`` once stopped). Everything else is derived
    from ``base_dir`` so that a later process (the ``stop`` command) can find the same engine again.
    """

    base_dir: Path
    socket: Path
    pid: int | None = None
    log_path: Path = field(default=Path())
    detach: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.log_path == Path():
            self.log_path = self.base_dir / "dockerd.log"

    @classmethod
    def at(cls, base_dir: Path, *, detach: bool = False) -> Engine:
        """The engine that lives (or will live) under ``base_dir``; picks up its pid if it runs."""
        base_dir = base_dir.resolve()
        engine = cls(base_dir=base_dir, socket=base_dir / "docker.sock", detach=detach)
        engine.pid = engine._pid_from_file()
        return engine

    # Paths -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL to give a docker client for this engine."""
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        """dockerd's --data-root: images, containers, volumes, containerd's content."""
        return self.base_dir / "data"

    @property
    def exec_root(self) -> Path:
        """dockerd's --exec-root: runtime state, including the managed containerd's socket."""
        return self.base_dir / "exec"

    @property
    def pidfile(self) -> Path:
        """Where dockerd writes its pid; read by ``Engine.at`` to find a detached engine."""
        return self.base_dir / "dockerd.pid"

    @property
    def config_file(self) -> Path:
        """Our own daemon.json, so that the host's /etc/docker/daemon.json is never read."""
        return self.base_dir / "daemon.json"

    # Clients -----------------------------------------------------------------------------------------
    def docker(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine only, with text output captured."""
        cli = shutil.which("docker")
        if cli is None:
            raise RuntimeError("the docker CLI is not installed (apt-get install docker.io)")
        cmd = [cli, "-H", self.url, *args]
        result = subprocess.run(cmd, capture_output=True, text=True, input=input, env=self._cli_env())
        if check and result.returncode != 0:
            raise DockerCLIError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def client(self) -> DockerClient:
        """A high-level SDK client for this engine (the caller closes it).

        ``version="auto"``: docker-py 7.1 would otherwise speak API 1.44, which dockerd 20.10 refuses.
        """
        return DockerClient(base_url=self.url, version="auto", max_pool_size=64)

    def api(self) -> APIClient:
        """A low-level SDK client for this engine (the caller closes it)."""
        return APIClient(base_url=self.url, version="auto", max_pool_size=64)

    def ping(self) -> bool:
        """Whether the engine answers ``/_ping`` on its socket (stdlib only, no client needed)."""
        return _ping(self.socket)

    # Lifecycle ---------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Whether the dockerd process is alive (it may still be starting or stopping)."""
        return self.pid is not None and _alive(self.pid)

    def start(self, timeout: float = 60) -> None:
        """Launch dockerd and wait until it answers; raise RuntimeError with its log if it does not."""
        if self.is_running():
            raise RuntimeError(f"an engine already runs in {self.base_dir} (pid {self.pid})")
        self._prepare_dirs()
        self._launch()
        self._wait_ready(timeout)

    def stop(self, timeout: float = 20) -> None:
        """Stop dockerd (SIGTERM, then SIGKILL after ``timeout``) and make sure its containerd exits.

        A graceful stop lets dockerd stop the running containers: it waits up to each container's stop
        timeout (10 s by default) for those that ignore SIGTERM, such as busybox ``sleep`` as PID 1.
        """
        if self.pid is not None and _alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            if not self._wait_exit(timeout):
                os.kill(self.pid, signal.SIGKILL)
                self._wait_exit(10)
        self._reap()
        self._kill_leftovers()
        self.pid = None

    def restart(self, timeout: float = 60) -> None:
        """Stop the engine and start it again on the same directories and socket."""
        self.stop()
        self.start(timeout)

    def destroy(self) -> None:
        """Stop the engine, undo the mounts it may have left behind and delete ``base_dir``."""
        self.stop()
        _unmount_below(self.base_dir)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def remove_all_containers(self) -> None:
        """Force-remove every container of this engine, concurrently, and check none is left."""
        with self.api() as api:
            for _attempt in range(3):
                ids = [c["Id"] for c in api.containers(all=True)]
                if not ids:
                    return
                with ThreadPoolExecutor(max_workers=min(16, len(ids))) as pool:
                    list(pool.map(lambda cid: _force_remove(api, cid), ids))
            left = api.containers(all=True)
            if left:
                raise RuntimeError(f"containers left after removal: {[c['Id'][:12] for c in left]}")

    # Internals ---------------------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        """Create the directories and our own daemon.json (which also keeps the trust key here)."""
        if len(str(self.exec_root / "containerd" / "containerd.sock.ttrpc")) > MAX_SOCKET_PATH:
            raise RuntimeError(f"base dir {self.base_dir} is too long for unix socket paths; use /tmp/de-*")
        for path in (self.base_dir, self.data_root, self.exec_root):
            path.mkdir(parents=True, exist_ok=True)
        # Without this key, dockerd 20.10 creates /etc/docker/key.json on the host.
        config = {"deprecated-key-path": str(self.base_dir / "key.json")}
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def _command(self) -> list[str]:
        """The dockerd command line: everything private, no bridge, no iptables, swarm still possible."""
        dockerd = find_dockerd()
        if dockerd is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
        return [
            dockerd,
            "--config-file", str(self.config_file),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--host", self.url,
            "--pidfile", str(self.pidfile),
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
        ]  # fmt: skip

    def _launch(self) -> None:
        """Start dockerd in its own session, its output appended to the log file.

        Its own session keeps a Ctrl-C of the test run from killing it before the fixtures stop it
        cleanly. Unless detached, it also gets SIGTERM if this process dies, so no engine is leaked.
        """
        if self.socket.exists():
            self.socket.unlink()  # left by a killed dockerd; a fresh one would refuse to bind
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent,
            )
        self.pid = self._process.pid

    def _wait_ready(self, timeout: float) -> None:
        """Poll ``/_ping`` until dockerd answers; fail early, with its log, if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(f"dockerd exited during startup\n{self._log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dockerd did not answer on {self.socket} within {timeout:g}s\n{self._log_tail()}")

    def _wait_exit(self, timeout: float) -> bool:
        """Wait for dockerd to exit; True if it did within ``timeout``."""
        assert self.pid is not None
        if self._process is not None:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return _wait_gone([self.pid], timeout)

    def _reap(self) -> None:
        """Collect our dockerd child's exit status so that it does not linger as a zombie."""
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            self._process = None

    def _kill_leftovers(self) -> None:
        """Kill this engine's containerd, shims and container processes if dockerd left them behind.

        A gracefully stopped dockerd leaves nothing; a SIGKILLed one leaves shims and containers running.
        They are found by the exec root in their command line, so nothing of another engine is touched.
        """
        marker = f"{self.exec_root}/containerd/"
        pids = [pid for pid, args in _processes() if any(marker in arg for arg in args)]
        if not pids or _wait_gone(pids, 1):  # containerd may still be exiting; shims never do
            return
        for pid in pids:  # a container's init first: its death ends its whole pid namespace
            for child in _children(pid):
                _signal(child, signal.SIGKILL)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        _wait_gone(pids, 5)

    def _pid_from_file(self) -> int | None:
        """The pid in dockerd's pidfile if that process is still alive."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _log_tail(self, lines: int = 30) -> str:
        """The last lines of dockerd's log, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no dockerd log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def _cli_env(self) -> dict[str, str]:
        """The environment for the docker CLI: no pointer to another engine, no user CLI config."""
        env = {k: v for k, v in os.environ.items() if k not in HOST_DOCKER_VARS}
        env["DOCKER_CONFIG"] = str(self.base_dir / "cli-config")
        env["DOCKER_CLI_HINTS"] = "false"
        return env


def start_engine(base_dir: Path | None = None, timeout: float = 60, *, detach: bool = False) -> Engine:
    """Start an isolated engine under ``base_dir`` (a new /tmp/de-* dir if None) and wait until it answers.

    ``detach=True`` lets the engine outlive this process (the ``start`` command); otherwise it is
    stopped if this process dies without stopping it.
    """
    if base_dir is None:
        base_dir = Path(tempfile.mkdtemp(prefix="de-", dir="/tmp"))
    engine = Engine.at(base_dir, detach=detach)
    engine.start(timeout)
    return engine


def ensure_busybox_image(engine: Engine, tag: str = DEFAULT_IMAGE) -> str:
    """Import a busybox image made from the host's busybox-static, unless the engine already has ``tag``."""
    with engine.api() as api:
        if api.images(name=tag):
            return tag
        repository, colon, version = tag.rpartition(":")
        if not colon or "/" in version:  # no tag, or the colon was a registry's port
            repository, version = tag, "latest"
        api.import_image_from_data(
            busybox_rootfs_tar(), repository=repository, tag=version, changes=['CMD ["sh"]']
        )
        if not api.images(name=tag):
            raise RuntimeError(f"importing {tag} into {engine.url} did not create it")
    return tag


def busybox_rootfs_tar(busybox: Path = BUSYBOX_PATH) -> bytes:
    """A root filesystem tarball: bin/busybox, a bin/ symlink per applet, empty etc tmp proc sys dev."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in ROOTFS_DIRS.items():
            tar.addfile(_tar_entry(name, tarfile.DIRTYPE, mode))
        binary = _tar_entry("bin/busybox", tarfile.REGTYPE, 0o755)
        binary.size = busybox.stat().st_size
        with open(busybox, "rb") as data:
            tar.addfile(binary, data)
        for applet in applets:
            if applet != "busybox" and "/" not in applet:
                link = _tar_entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
                link.linkname = "busybox"
                tar.addfile(link)
    return buffer.getvalue()


def find_dockerd() -> str | None:
    """Path of dockerd; /usr/sbin is searched too, as it is often missing from a user's PATH."""
    return shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")


def ensure_prerequisites() -> list[str]:
    """What this machine lacks to run an isolated engine, each with its fix; empty if nothing."""
    missing = []
    if find_dockerd() is None:
        missing.append("dockerd (apt-get install docker.io)")
    if shutil.which("docker") is None:
        missing.append("the docker CLI (apt-get install docker.io)")
    if not BUSYBOX_PATH.exists():
        missing.append(f"{BUSYBOX_PATH} (apt-get install busybox-static)")
    elif not _is_static_elf(BUSYBOX_PATH):
        missing.append(f"a static {BUSYBOX_PATH}: it is dynamically linked (apt-get install busybox-static)")
    if os.geteuid() != 0:
        missing.append("root: dockerd must run as root (run the tests with sudo or as root)")
    return missing


# Helpers -----------------------------------------------------------------------------------------------
def _tar_entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    """A root-owned tar member header."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = int(time.time())
    return info


def _is_static_elf(path: Path) -> bool:
    """Whether an ELF binary has no PT_INTERP header, i.e. needs no dynamic loader (64-bit LE only)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != pt_interp for i in range(phnum))


def _ping(sock_path: Path, timeout: float = 2) -> bool:
    """Whether a Docker API answers ``GET /_ping`` with 200 on this unix socket."""
    try:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(sock_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


def _force_remove(api: APIClient, container_id: str) -> None:
    """Force-remove one container with its anonymous volumes, ignoring one already gone or going."""
    try:
        api.remove_container(container_id, force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel to SIGTERM it when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a process from /proc, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a zombie has exited but is not reaped yet)."""
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    """Wait until none of ``pids`` is alive; True if that happened within ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _processes() -> Iterator[tuple[int, list[str]]]:
    """Every live process as (pid, argv)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            yield int(entry.name), raw.decode(errors="replace").split("\0")


def _children(pid: int) -> list[int]:
    """The direct children of a process."""
    children: list[int] = []
    for entry in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.extend(int(p) for p in entry.read_text().split())
        except OSError:
            continue
    return children


def _signal(pid: int, sig: signal.Signals) -> None:
    """Send a signal, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _mount_points() -> list[str]:
    """The mount points of this mount namespace, octal escapes (\\040 for space...) decoded."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        points.append(raw.encode().decode("unicode_escape"))
    return points


def _unmount_below(base_dir: Path) -> None:
    """Lazily unmount everything at or under ``base_dir``, deepest first, so rmtree stays inside it.

    dockerd bind-mounts its data root onto itself and mounts overlays and namespaces below it; a clean
    shutdown undoes that, a killed dockerd does not.
    """
    base = str(base_dir.resolve())
    inside = [p for p in _mount_points() if p == base or p.startswith(base + "/")]
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(inside, key=len, reverse=True):
        libc.umount2(point.encode(), _MNT_DETACH)


# Command line ------------------------------------------------------------------------------------------
def _cmd_start(args: argparse.Namespace) -> int:
    """Start a detached engine in ``--dir``, import busybox, print the url."""
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an engine; missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    engine = start_engine(Path(args.dir), args.timeout, detach=True)
    ensure_busybox_image(engine)
    print(engine.url)
    print(f"dockerd pid {engine.pid}, log {engine.log_path}; try: docker -H {engine.url} ps", file=sys.stderr)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    """Stop the engine in ``--dir``; with ``--remove`` also delete the dir."""
    engine = Engine.at(Path(args.dir))
    if args.remove:
        engine.destroy()
    else:
        engine.stop(args.timeout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python tests/support/engine.py {start,stop} --dir DIR``."""
    parser = argparse.ArgumentParser(
        description="Start or stop an isolated Docker engine for docker-enforcer."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a detached engine, import busybox, print its url")
    start.add_argument("--dir", required=True, help="base dir for all the engine's state (keep it short)")
    start.add_argument("--timeout", type=float, default=60, help="seconds to wait for dockerd to answer")
    start.set_defaults(func=_cmd_start)
    stop = commands.add_parser("stop", help="stop the engine started in --dir")
    stop.add_argument("--dir", required=True, help="the base dir given to start")
    stop.add_argument("--timeout", type=float, default=20, help="seconds before SIGKILL")
    stop.add_argument("--remove", action="store_true", help="also delete the base dir")
    stop.set_defaults(func=_cmd_stop)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
