"""deploy/stack.yml on a single-node Swarm of the isolated engine: the enforcer task stops a violator, and a
new version of the rules config rolls out to it.

Swarm touches the host beyond the engine's folder: it listens on 127.0.0.1 (a free port for 2377; 7946 is
fixed) and creates the `docker_gwbridge` interface, which outlives `swarm leave`. So the test runs under a
machine-wide lock, refuses to start when a docker_gwbridge exists already, and removes everything it made:
stack, swarm, bridge and volume. Images are not pulled (no registry): the node has the image built here.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ship_support import (
    DEPLOY,
    Reply,
    cli_env,
    file_lock,
    free_port,
    http_get,
    interpolate,
    load_yaml,
    require,
    stopped,
    wait_for,
)
from support.engine import Engine, RunContainer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STACK = "enforcer"
GWBRIDGE = Path("/sys/class/net/docker_gwbridge")
LOCK = Path("/tmp/docker-enforcer-swarm.lock")
SOCKET_RULE = "no Docker or containerd socket"
NEW_RULE = """
rules = rules + [{"name": "no rollout containers", "rule": lambda c: c.name.startswith("rollout")}]
"""


class Swarm:
    """A single-node swarm on the engine and the stack deployed on it."""

    def __init__(self, engine: Engine, folder: Path, image: str) -> None:
        self.engine = engine
        self.folder = folder
        self.port = free_port()
        self.env = {
            "ENFORCER_IMAGE": image,
            "DOCKER_SOCKET_PATH": str(engine.socket),
            "DOCKER_GID": str(
                engine.socket.stat().st_gid
            ),  # the task runs as uid 10001 in the socket's group
            "LISTEN_ADDRESS": f"127.0.0.1:{self.port}",
            "CHECK_INTERVAL_S": "2",
            "API_TOKEN": secrets.token_hex(16),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self) -> None:
        listen = f"127.0.0.1:{free_port()}"
        self.engine.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", listen)

    def deploy(self, rules_version: str) -> None:
        """`docker stack deploy` as the docs say, with this engine's socket and a free port."""
        command = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", "stack.yml", STACK]
        env = cli_env(self.engine, **self.env, RULES_VERSION=rules_version)
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=self.folder)
        assert result.returncode == 0, result.stdout + result.stderr

    def tasks(self) -> list[dict[str, str]]:
        result = self.engine.docker(
            "service", "ps", f"{STACK}_enforcer", "--no-trunc", "--format", "{{json .}}", check=False
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def stack_containers(self) -> list[str]:
        label = f"label=com.docker.stack.namespace={STACK}"
        return self.engine.docker("ps", "-aq", "--filter", label, check=False).stdout.split()

    def tear_down(self) -> None:
        self.engine.docker("stack", "rm", STACK, check=False)
        deadline = time.monotonic() + 60
        while self.stack_containers() and time.monotonic() < deadline:
            time.sleep(0.5)
        for container in self.stack_containers():
            self.engine.docker("rm", "-f", "-v", container, check=False)
        self.engine.docker("swarm", "leave", "--force", check=False)
        self.engine.docker("network", "rm", "docker_gwbridge", check=False)
        self.engine.docker("volume", "rm", "--force", f"{STACK}_state", check=False)
        if GWBRIDGE.exists() and shutil.which("ip"):
            subprocess.run(["ip", "link", "delete", "docker_gwbridge"], capture_output=True)


@pytest.fixture
def swarm(clean_engine: Engine, enforcer_image: str, tmp_path: Path) -> Iterator[Swarm]:
    """The stack's files in a folder of their own (the test changes the rules), and a swarm to deploy on."""
    shutil.copy(DEPLOY / "stack.yml", tmp_path / "stack.yml")
    shutil.copy(DEPLOY / "rules.py", tmp_path / "rules.py")
    with file_lock(LOCK):
        require(not GWBRIDGE.exists(), "a docker_gwbridge interface exists already: another swarm runs here")
        swarm = Swarm(clean_engine, tmp_path, enforcer_image)
        try:
            swarm.init()
            yield swarm
        finally:
            swarm.tear_down()
            info = json.loads(clean_engine.docker("info", "--format", "{{json .Swarm}}").stdout)
            assert info["LocalNodeState"] == "inactive", info
            assert not GWBRIDGE.exists(), "docker_gwbridge was left behind"


def rules_text(swarm: Swarm) -> str | None:
    reply = http_get(swarm.url + "/rules", token=swarm.env["API_TOKEN"])
    return json.loads(reply.body) if reply is not None and reply.status == 200 else None


def detected(swarm: Swarm, name: str) -> dict[str, object] | None:
    reply = http_get(swarm.url + "/", token=swarm.env["API_TOKEN"])
    if reply is None or reply.status != 200:
        return None
    return next((d for d in reply.json()["detections"] if d["name"] == f"/{name}"), None)


def test_the_stack_cannot_be_deployed_without_an_api_token() -> None:
    """Its API listens on every node's network: `docker stack deploy` refuses to run without API_TOKEN."""
    environment = load_yaml(DEPLOY / "stack.yml")["services"]["enforcer"]["environment"]
    with pytest.raises(ValueError, match="API_TOKEN: set API_TOKEN for docker stack deploy"):
        interpolate(environment["API_TOKEN"], {})
    assert interpolate(environment["API_TOKEN"], {"API_TOKEN": "t0ken"}) == "t0ken"
    assert interpolate(environment["ALLOWED_HOSTS"], {}) == ""


def test_the_stack_enforces_on_its_node_and_rolls_out_new_rules(
    swarm: Swarm, clean_engine: Engine, run_container: RunContainer, tmp_path: Path
) -> None:
    swarm.deploy(rules_version="1")
    health: Reply = wait_for(
        "the enforcer task's /healthz", lambda: _ok(http_get(swarm.url + "/healthz")), timeout=90
    )
    assert health.json()["mode"] == "KILL"
    refused = http_get(swarm.url + "/")
    assert refused is not None and refused.status == 401  # the token given to `docker stack deploy`
    assert rules_text(swarm) == (DEPLOY / "rules.py").read_text()  # the Swarm config, mounted

    fake_socket = tmp_path / "docker.sock"
    fake_socket.write_text("")
    violator = run_container(
        "socket-violator", volumes={str(fake_socket): {"bind": "/var/run/docker.sock", "mode": "ro"}}
    )
    wait_for("the enforcer task to stop the violator", lambda: stopped(clean_engine, violator), timeout=30)
    found = wait_for("its detection", lambda: detected(swarm, "socket-violator"))
    assert found["violated_rule"] == SOCKET_RULE and found["action"] == "kill", found
    # The task holds the socket too (it breaks the same rule) and a sweep runs every 2 s: it never stops itself.
    time.sleep(5)
    [task] = [t for t in swarm.tasks() if t["DesiredState"] == "Running"]
    assert task["CurrentState"].startswith(("Running", "Starting")) and not task["Error"], swarm.tasks()
    assert len(swarm.tasks()) == 1, swarm.tasks()
    [container] = swarm.stack_containers()
    assert clean_engine.docker("exec", container, "id", "-u").stdout.strip() == "10001"  # not root

    # A new rules file under a new config name: Swarm replaces the task, which enforces the new rule, and the
    # node's state volume keeps the detections of the old one.
    new_rules = (swarm.folder / "rules.py").read_text() + NEW_RULE
    (swarm.folder / "rules.py").write_text(new_rules)
    swarm.deploy(rules_version="2")
    wait_for("the new rules in the new task", lambda: rules_text(swarm) == new_rules, timeout=90)
    assert clean_engine.docker("config", "inspect", "docker-enforcer-rules-2", check=False).returncode == 0
    rollout = run_container("rollout-violator")
    wait_for(
        "the new task to stop a violator of the new rule", lambda: stopped(clean_engine, rollout), timeout=30
    )
    assert detected(swarm, "socket-violator") is not None
    states = sorted(t["DesiredState"] for t in swarm.tasks())
    assert states == ["Running", "Shutdown"], swarm.tasks()


def _ok(reply: Reply | None) -> Reply | None:
    return reply if reply is not None and reply.status == 200 else None
