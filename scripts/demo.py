"""Try docker-enforcer on this machine: against the host's engine, or a private sandbox engine.

Called by scripts/demo, which first sets up .venv (as root: Debian's docker.io and busybox-static when
missing). With the host's engine answering (and no --sandbox), it
audits the host's containers and then runs the daemon with the environment as given (MODE defaults to
WARN: nothing is stopped unless you ask for it). Otherwise it starts a sandbox engine of its own (as the
tests do), runs a few sample containers, some of which break examples/demo-rules.py, audits them, and runs
the daemon in KILL mode while starting more violators, so you see them stopped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

if TYPE_CHECKING:
    from support.engine import Engine

HOST_SOCKET = "unix:///var/run/docker.sock"
SANDBOX_DIR = Path("/tmp/de-demo")
# The user files the daemon may pick up, relative to its working directory (the checkout).
USER_FILES = ("examples/demo-rules.py", "rules.py", "rules", "whitelist_rules", "triggers")


def host_engine_answers(url: str) -> bool:
    import docker

    try:
        client = docker.APIClient(base_url=url, version="auto", timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


def enforcer(*args: str, env: dict[str, str], cwd: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(ROOT / ".venv/bin/docker-enforcer"), *args], env=env, cwd=cwd, **kwargs)  # type: ignore[call-overload, no-any-return]


def user_files_dir() -> Path:
    """The checkout, or, when the daemon would refuse its user files (a clone made by a user, the demo run
    as root), a folder the loader trusts with root-owned copies of them; says why."""
    from support.trusted_tmp import trusted_tempdir

    from enforcer import trust

    present = [ROOT / name for name in USER_FILES if (ROOT / name).exists()]
    found = [problem for path in present for problem in trust.problems(path)]
    if not found:
        return ROOT
    copies = trusted_tempdir("demo-")
    for path in present:
        target = copies / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if path.is_dir() else shutil.copyfile)(path, target)
    for copy in copies.rglob("*"):
        copy.chmod(copy.stat().st_mode & ~0o022)  # copytree keeps the modes: no group or other write
    print(
        f"== {found[0]}. The daemon refuses user files that a user other than root (or its own) could "
        f"change, so this demo runs on copies in {copies}",
        flush=True,
    )
    return copies


def run_on_host(url: str, seconds: float | None, files: Path) -> int:
    env = dict(os.environ, DOCKER_SOCKET=url)
    env.setdefault("RUN_START_EVENTS", "True")
    env.setdefault("LISTEN_ADDRESS", "127.0.0.1:8888")
    print(f"== docker-enforcer audit against {url} (MODE={env.get('MODE', 'WARN')})", flush=True)
    enforcer("audit", env=env, cwd=files).wait()
    print("== docker-enforcer run (Ctrl-C stops it); status page on http://127.0.0.1:8888/", flush=True)
    return supervise(enforcer("run", env=env, cwd=files), seconds)


def supervise(proc: subprocess.Popen[bytes], seconds: float | None) -> int:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def sample_containers(engine: Engine, image: str) -> None:
    """Two clean containers and two violators, running before the daemon starts."""
    engine.docker(
        "run", "-d", "--name", "web", "--memory", "64m", "--stop-signal", "KILL", image, "sleep", "3600"
    )
    engine.docker(
        "run", "-d", "--name", "cache", "--memory", "32m", "--stop-signal", "KILL", image, "sleep", "3600"
    )
    engine.docker("run", "-d", "--name", "greedy", "--stop-signal", "KILL", image, "sleep", "3600")
    engine.docker(
        "run",
        "-d",
        "--name",
        "rootfs-reader",
        "--memory",
        "32m",
        "-v",
        "/etc:/host-etc:ro",
        image,
        "sleep",
        "3600",
    )


def violators_later(engine: Engine, image: str, delay: float) -> None:
    time.sleep(delay)
    for index in range(3):
        name = f"late-violator-{index}"
        print(f"== starting {name} (no memory limit)", flush=True)
        engine.docker("run", "-d", "--name", name, image, "sleep", "3600")
        time.sleep(1.5)


def run_in_sandbox(seconds: float | None, files: Path) -> int:
    # Imported here: `--help` and argument errors need only the standard library, before any install.
    from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine

    missing = ensure_prerequisites()
    if missing:
        print("the sandbox engine needs: " + ", ".join(missing), file=sys.stderr)
        return 2
    engine = (
        start_engine(SANDBOX_DIR) if not (SANDBOX_DIR / "docker.sock").exists() else Engine.at(SANDBOX_DIR)
    )
    try:
        engine.remove_all_containers()
        image = ensure_busybox_image(engine)
        sample_containers(engine, image)
        rules = files / "examples" / "demo-rules.py"
        env = dict(
            os.environ,
            DOCKER_SOCKET=engine.url,
            RULES_FILE=str(rules),
            MODE="KILL",
            RUN_START_EVENTS="True",
            CHECK_INTERVAL_S="60",
            LISTEN_ADDRESS="127.0.0.1:8888",
            STATE_DB=str(SANDBOX_DIR / "detections.db"),
        )
        print(f"== sandbox engine at {engine.url}; rules from {rules}", flush=True)
        print("== docker-enforcer audit (reports, stops nothing)", flush=True)
        enforcer("audit", env=env, cwd=files).wait()
        print(
            "== docker-enforcer run, MODE=KILL; status page on http://127.0.0.1:8888/ (Ctrl-C stops)",
            flush=True,
        )
        daemon = enforcer("run", env=env, cwd=files)
        threading.Thread(target=violators_later, args=(engine, image, 3.0), daemon=True).start()
        status = supervise(daemon, seconds)
        print("== containers in the sandbox now:", flush=True)
        print(engine.docker("ps", "-a", "--format", "table {{.Names}}\t{{.Status}}").stdout, flush=True)
        return status
    finally:
        engine.destroy()


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(
        prog="scripts/demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    out.add_argument("--sandbox", action="store_true", help="use a private sandbox engine even if one runs")
    out.add_argument("--seconds", type=float, default=None, help="stop the daemon after this many seconds")
    out.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)
    return out


def main() -> int:
    args = parser().parse_args()
    if args.parse_only:  # scripts/demo checks the arguments (and answers --help) before installing anything
        return 0
    url = os.environ.get("DOCKER_SOCKET", HOST_SOCKET)
    files = user_files_dir()
    try:
        if not args.sandbox and host_engine_answers(url):
            return run_on_host(url, args.seconds, files)
        print(f"== no engine answers at {url}: using a sandbox engine with sample containers", flush=True)
        return run_in_sandbox(args.seconds, files)
    finally:
        if files != ROOT:
            shutil.rmtree(files, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
