"""Helpers for the shipping tests: the Debian base image, the enforcer image, HTTP and waiting.

No registry is reachable, so the image is built on a Debian base made by debootstrap (with python3) and
imported into the isolated engine. Making it takes about a minute, so its tarball is cached between runs
in DOCKER_ENFORCER_TEST_CACHE (default ~/.cache/docker-enforcer-test) and made again only when missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from support.engine import HOST_DOCKER_VARS, Engine, _unmount_below

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv")
BASE_TAG = "docker-enforcer-test/debian-python3:bookworm"
IMAGE_TAG = "docker-enforcer:test"
# Trimmed from the debootstrap tree before it is archived: package caches, docs, translations.
BASE_TRIM = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
)

T = TypeVar("T")


def require(condition: bool, message: str) -> None:
    """Skip when a tool is missing, but fail under CI=true so that CI never passes by skipping."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# -- the Debian base ---------------------------------------------------------------------------------------
def cache_dir() -> Path:
    configured = os.environ.get("DOCKER_ENFORCER_TEST_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docker-enforcer-test"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between test runs (and engineers) sharing this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def debian_base_tarball() -> Path:
    """The cached root filesystem tarball of Debian minbase with python3; made by debootstrap if missing."""
    folder = cache_dir()
    tarball = folder / f"debian-{SUITE}-{'-'.join(BASE_PACKAGES)}.tar"
    with file_lock(folder / "debootstrap.lock"):
        if tarball.is_file():
            return tarball
        require(
            shutil.which("debootstrap") is not None, "debootstrap is missing (apt-get install debootstrap)"
        )
        with tempfile.TemporaryDirectory(dir=folder, prefix="debootstrap-") as tmp:
            root = Path(tmp) / "root"
            try:
                _debootstrap(root)
                partial = Path(tmp) / "base.tar"
                subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
                os.replace(partial, tarball)
            finally:
                _unmount_below(root)  # a failed debootstrap can leave /proc and /sys mounted in it
    return tarball


def _debootstrap(root: Path) -> None:
    mirror = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
    command = [
        "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(root), mirror,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    for relative in BASE_TRIM:
        for entry in (root / relative).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def ensure_base_image(engine: Engine) -> str:
    """The Debian base imported into the engine (once per engine)."""
    if engine.docker("image", "inspect", BASE_TAG, check=False).returncode != 0:
        engine.docker("import", str(debian_base_tarball()), BASE_TAG)
    return BASE_TAG


def cli_env(engine: Engine, **extra: str) -> dict[str, str]:
    """The environment for a docker CLI (or a script calling it) that must reach this engine only."""
    env = {k: v for k, v in os.environ.items() if k not in HOST_DOCKER_VARS}
    env.update(
        DOCKER_HOST=engine.url, DOCKER_CONFIG=str(engine.base_dir / "cli-config"), DOCKER_CLI_HINTS="false"
    )
    return {**env, **extra}


def build_image(engine: Engine, base: str, tag: str = IMAGE_TAG) -> subprocess.CompletedProcess[str]:
    """Run scripts/build-image against the engine, as a user would (DOCKER_HOST names the engine)."""
    env = cli_env(engine, PYTHON=sys.executable)
    return subprocess.run(
        [str(REPO / "scripts" / "build-image"), "--base", base, "--tag", tag],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )


# -- waiting and HTTP --------------------------------------------------------------------------------------
def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30, every: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}", pytrace=False)
        time.sleep(every)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(
    url: str, accept: str | None = None, timeout: float = 5, token: str | None = None
) -> Reply | None:
    """GET `url` (with the API token when given); None while nothing answers (refused, reset, timeout)."""
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z_:][\w:]*)(\{.*\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


# -- containers --------------------------------------------------------------------------------------------
def container_state(engine: Engine, name: str) -> dict[str, Any] | None:
    """`State` of a container from `docker inspect`, None when there is no such container."""
    result = engine.docker("container", "inspect", name, check=False)
    if result.returncode != 0:
        return None
    state: dict[str, Any] = json.loads(result.stdout)[0]["State"]
    return state


def running(engine: Engine, name: str) -> bool:
    state = container_state(engine, name)
    return bool(state and state["Running"])


def stopped(engine: Engine, name: str) -> bool:
    state = container_state(engine, name)
    return state is not None and not state["Running"]


# -- YAML, env files and daemons as processes -------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    """A YAML file as plain data (PyYAML comes with the test extras)."""
    import yaml

    return yaml.safe_load(path.read_text())


_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}` and `${VAR:?error}` expanded as compose and `docker stack deploy` do
    (an empty variable counts as unset); ValueError with the error text for a missing required one."""

    def expand(match: re.Match[str]) -> str:
        name, kind, word = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "?":
            raise ValueError(f"{name}: {word}")
        return word or ""

    return _VARIABLE.sub(expand, value)


def read_env_file(path: Path) -> dict[str, str]:
    """`OPTION=value` lines as systemd's EnvironmentFile and compose's env_file read them (no quotes)."""
    env = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key.strip()):
            raise ValueError(f"{path}:{number}: not an OPTION=value line: {raw!r}")
        env[key.strip()] = value.strip()
    return env


@dataclass
class Daemon:
    """A `docker-enforcer run` process, its log and its status API."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    _log: IO[bytes] = field(repr=False)
    token: str | None = field(default=None, repr=False)  # API_TOKEN, sent with every request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> Reply | None:
        return http_get(self.url + path, token=self.token)

    def detections(self) -> list[dict[str, Any]]:
        reply = self.get("/?show_all_violated_rules=1")
        assert reply is not None and reply.status == 200, f"{self.name}: {reply}\n{self.log()[-3000:]}"
        found: list[dict[str, Any]] = reply.json()["detections"]
        return found

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}", pytrace=False
            )
        reply = self.get("/healthz")
        return reply is not None and reply.status == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def start_daemon(
    name: str, env: Mapping[str, str], cwd: Path, command: Sequence[str] | None = None
) -> Daemon:
    """`python -m enforcer run` (or `command`) with exactly `env` (plus PATH), its output in cwd/<name>.log."""
    port = int(env["LISTEN_ADDRESS"].rpartition(":")[2])
    log_path = cwd / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by Daemon.stop
    process = subprocess.Popen(
        list(command or [sys.executable, "-m", "enforcer", "run"]),
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Daemon(name, process, log_path, port, log, env.get("API_TOKEN"))
