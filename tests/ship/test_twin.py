"""The KILL + WARN pair of deploy/compose.yaml, run as two processes against the isolated engine.

Each process gets what compose gives its container: the service's env_file and environment, and a working
directory laid out as the container's /opt/docker_enforcer from the service's folder mounts, with the
variables compose would take from deploy/.env (API_TOKEN). Only the socket and the listening address are this
engine's and a free port.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ship_support import (
    DEPLOY,
    Daemon,
    free_port,
    http_get,
    interpolate,
    load_yaml,
    metric,
    read_env_file,
    running,
    start_daemon,
    stopped,
    wait_for,
)
from support.engine import Engine, RunContainer

WORKDIR = "/opt/docker_enforcer"
PEERS = "/var/lib/docker-enforcer-peers"
CANDIDATE_RULES = {"memory limited", "PIDs limited"}
SOCKET_RULE = "no Docker or containerd socket"
TOKEN = secrets.token_hex(16)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return data


def service_env(service: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, str]:
    """env_file(s) first, then `environment` (its ${...} expanded from `variables`), which wins, as compose
    does; `variables` default to the deploy/.env a user writes."""
    variables = {"API_TOKEN": TOKEN} if variables is None else variables
    env: dict[str, str] = {}
    files = service.get("env_file") or []
    for name in [files] if isinstance(files, str) else files:
        env.update(read_env_file(DEPLOY / name))
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({key: interpolate(str(value), variables) for key, value in environment.items()})
    return env


def folder_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host folder, for the service's `./folder:/opt/docker_enforcer/...` mounts."""
    out = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = (DEPLOY / source).resolve()
    return out


def lay_out(service: dict[str, Any], root: Path) -> Path:
    """A copy of the container's /opt/docker_enforcer (folders 0755, files 0644, as the loader wants)."""
    root.mkdir(mode=0o755)
    for target, source in folder_mounts(service).items():
        assert target.startswith(WORKDIR + "/"), target
        destination = root / target.removeprefix(WORKDIR + "/")
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [destination, *destination.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def test_compose_gives_each_enforcer_its_own_mode_port_state_and_rules() -> None:
    services = compose()["services"]
    kill, audit = services["enforcer"], services["audit"]
    assert service_env(kill)["MODE"] == "KILL"
    assert service_env(audit)["MODE"] == "WARN" and audit["environment"]["MODE"] == "WARN"
    for service in (kill, audit):
        assert service["read_only"] is True and "ALL" in service["cap_drop"]
        assert "privileged" not in service
        assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
        # Exempt from each other by container id (the shared peers volume), never by a name anyone may pick.
        assert "WHITE_LIST" not in service_env(service) and "IMAGE_WHITE_LIST" not in service_env(service)
        assert service_env(service)["PEERS_DIR"] == PEERS
        assert f"peers:{PEERS}" in service["volumes"]
    assert kill["depends_on"] == {"audit": {"condition": "service_healthy"}}  # the twin writes its id first
    # Not root: the image's user with the socket's group added, and no capability at all.
    for service in (kill, audit):
        assert service["group_add"] == ["${DOCKER_GID:?set DOCKER_GID to the group id of the Docker socket}"]
        assert "user" not in service and "cap_add" not in service
        assert service["security_opt"] == ["no-new-privileges:true"]
    # The KILL instance races `docker run`: it may raise its priority (NICE) as far as its RLIMIT_NICE lets a
    # user without CAP_SYS_NICE (20 - 30 = -10), and nothing else.
    assert (kill["ulimits"], service_env(kill)["NICE"]) == ({"nice": 30}, "-10")
    assert "ulimits" not in audit and "NICE" not in service_env(audit)
    host_ports = [{port.split(":")[0] for port in s["ports"]} for s in (kill, audit)]
    assert host_ports == [{"8888"}, {"8889"}]
    states = [
        {v.split(":")[0] for v in s["volumes"] if v.endswith(":/var/lib/docker-enforcer")}
        for s in (kill, audit)
    ]
    assert states == [{"kill-state"}, {"audit-state"}]
    assert set(compose()["volumes"]) == {"kill-state", "audit-state", "peers"}
    rules = [folder_mounts(s)[f"{WORKDIR}/rules"] for s in (kill, audit)]
    assert rules == [DEPLOY / "stable-rules", DEPLOY / "candidate-rules"]


def test_compose_publishes_the_apis_only_with_a_token_from_outside_the_repository() -> None:
    for service in compose()["services"].values():
        assert all(not port.startswith("127.0.0.1:") for port in service["ports"])  # reachable: token needed
        with pytest.raises(ValueError, match=r"API_TOKEN: put API_TOKEN=.* in deploy/\.env"):
            service_env(service, variables={})
        env = service_env(service, variables={"API_TOKEN": TOKEN})
        assert env["API_TOKEN"] == TOKEN and env["ALLOWED_HOSTS"] == ""
        names = {"API_TOKEN": TOKEN, "ALLOWED_HOSTS": "host-a.example.com"}
        assert service_env(service, variables=names)["ALLOWED_HOSTS"] == "host-a.example.com"
    assert "deploy/.env" in (DEPLOY.parent / ".gitignore").read_text().split()


@pytest.fixture
def twins(clean_engine: Engine, tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    tmp_path.chmod(0o755)
    services = compose()["services"]
    started: list[Daemon] = []
    try:
        for name in ("enforcer", "audit"):
            env = service_env(services[name])
            env.update(DOCKER_SOCKET=clean_engine.url, LISTEN_ADDRESS=f"127.0.0.1:{free_port()}")
            started.append(start_daemon(name, env, lay_out(services[name], tmp_path / name)))
        for daemon in started:
            wait_for(f"{daemon.name} to be healthy", daemon.healthy, timeout=30)
        yield started[0], started[1]
    finally:
        for daemon in started:
            daemon.stop()


def by_name(daemon: Daemon, name: str) -> dict[str, Any] | None:
    return next((d for d in daemon.detections() if d["name"] == f"/{name}"), None)


def test_the_twin_records_candidate_violators_and_the_kill_instance_stops_stable_ones(
    twins: tuple[Daemon, Daemon], clean_engine: Engine, run_container: RunContainer, tmp_path: Path
) -> None:
    kill, twin = twins

    # A violator of candidate rules only: the twin records it, nobody stops it.
    candidate = run_container("candidate-violator")
    found = wait_for("the twin's record of candidate-violator", lambda: by_name(twin, "candidate-violator"))
    assert set(found["violated_rule"]) <= CANDIDATE_RULES and found["mode"] == "WARN", found
    wait_for("the KILL instance's check of it", lambda: _event_checks(kill) >= 1)
    assert running(clean_engine, candidate)
    assert by_name(kill, "candidate-violator") is None

    # A violator of a stable rule (a file named docker.sock mounted in): stopped, and recorded by both.
    fake_socket = tmp_path / "docker.sock"
    fake_socket.write_text("")
    stable = run_container(
        "stable-violator", volumes={str(fake_socket): {"bind": "/run/docker.sock", "mode": "ro"}}
    )
    wait_for("the KILL instance to stop stable-violator", lambda: stopped(clean_engine, stable))
    killed = wait_for("the KILL record of stable-violator", lambda: by_name(kill, "stable-violator"))
    assert killed["violated_rule"] == [SOCKET_RULE]
    assert (killed["mode"], killed["action"], killed["outcome"]) == ("KILL", "kill", "stopped"), killed
    audited = wait_for("the twin's record of stable-violator", lambda: by_name(twin, "stable-violator"))
    assert audited["violated_rule"] == [SOCKET_RULE] and audited["mode"] == "WARN", audited

    assert running(clean_engine, candidate)  # still: the twin never stops anything
    assert {d["mode"] for d in twin.detections()} == {"WARN"}
    assert metric(_metrics(twin), "docker_enforcer_actions_total", action="kill") == 0
    assert "Traceback" not in kill.log() + twin.log()
    for daemon in (kill, twin):
        refused = http_get(daemon.url + "/")  # without the token of deploy/.env
        assert refused is not None and refused.status == 401


def test_the_kill_instance_spares_the_twin_by_its_id_and_judges_a_container_named_like_it(
    clean_engine: Engine, run_container: RunContainer, tmp_path: Path
) -> None:
    """The twin's id is in PEERS_DIR (the twin writes it there when it starts); a copy of its name is not."""
    tmp_path.chmod(0o755)
    fake_socket = tmp_path / "docker.sock"
    fake_socket.write_text("")
    breaks_a_stable_rule = {"volumes": {str(fake_socket): {"bind": "/run/docker.sock", "mode": "ro"}}}
    twin = run_container("twin", **breaks_a_stable_rule)  # mounts the socket, as the real twin does
    peers = tmp_path / "peers"
    peers.mkdir(mode=0o755)
    (peers / twin).touch()
    service = compose()["services"]["enforcer"]
    env = service_env(service)
    env.update(
        DOCKER_SOCKET=clean_engine.url, LISTEN_ADDRESS=f"127.0.0.1:{free_port()}", PEERS_DIR=str(peers)
    )
    kill = start_daemon("enforcer", env, lay_out(service, tmp_path / "enforcer"))
    try:
        wait_for("the KILL instance to be healthy", kill.healthy, timeout=30)
        forged = run_container("docker-enforcer-audit", **breaks_a_stable_rule)
        wait_for(
            "the KILL instance to stop the container named like the twin",
            lambda: stopped(clean_engine, forged),
        )
        assert by_name(kill, "docker-enforcer-audit")["violated_rule"] == [SOCKET_RULE]  # type: ignore[index]

        checks = _event_checks(kill)
        clean_engine.docker("restart", "--time", "0", twin)  # its start event: judged again, spared again
        wait_for("the check of the twin's restart", lambda: _event_checks(kill) > checks)
        assert running(clean_engine, twin) and by_name(kill, "twin") is None
        # A host process has no container id to write; the twin's id stays while its container exists.
        assert [p.name for p in peers.iterdir()] == [twin]
        assert "Traceback" not in kill.log()
    finally:
        kill.stop()


def _metrics(daemon: Daemon) -> str:
    reply = daemon.get("/metrics")
    assert reply is not None and reply.status == 200
    return reply.body


def _event_checks(daemon: Daemon) -> float:
    return metric(_metrics(daemon), "docker_enforcer_checks_total", source="event")
