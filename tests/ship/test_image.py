"""The host container: the image built by scripts/build-image, run as users run it, against the engine.

The isolated engine has no bridge network (so that the tests never touch the host's networking), so the
enforcer runs with `--network host` and LISTEN_ADDRESS on a free loopback port where users write
`-p 8888:8888`. The sandbox refuses `--privileged` containers; the image does not need it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ship_support import Reply, container_state, free_port, http_get, metric, running, stopped, wait_for
from support.engine import Engine, RunContainer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# A rule the enforcer's own container breaks too: it must never stop itself, by name or otherwise.
RULES = """
rules = [
    {"name": "must have memory limit", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0},
]
"""
UID = 10001  # the image's user `enforcer`
ENFORCER = "enforcer-under-test"  # not whitelisted by name: only its own-container detection protects it


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules_dir"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "rules.py").write_text(RULES)
    (folder / "rules.py").chmod(0o644)
    return folder


@pytest.fixture
def volumes(clean_engine: Engine) -> Iterator[list[str]]:
    """Named volumes to remove after the test (clean_engine removes the containers first)."""
    names: list[str] = []
    yield names
    clean_engine.remove_all_containers()
    for name in names:
        clean_engine.docker("volume", "rm", "--force", name, check=False)


def test_host_container_stops_violators_serves_metrics_and_spares_itself(
    clean_engine: Engine,
    enforcer_image: str,
    run_container: RunContainer,
    rules_dir: Path,
    volumes: list[str],
    tmp_path: Path,
) -> None:
    port = free_port()
    volumes.append("docker-enforcer-state")
    peers = tmp_path / "peers"  # the pair's PEERS_DIR: the container writes its own id there
    peers.mkdir(mode=0o755)
    os.chown(peers, UID, UID)
    # The hardened line of docs/deploy.md: not root but in the socket's group, read-only root, no
    # capabilities, detections on a volume.
    clean_engine.docker(
        "run", "--detach", "--name", ENFORCER,
        "--network", "host", "--env", f"LISTEN_ADDRESS=127.0.0.1:{port}",
        "--group-add", str(clean_engine.socket.stat().st_gid),
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--env", "PEERS_DIR=/peers", "--volume", f"{peers}:/peers",
        "--env", "MODE=KILL", "--env", "RUN_START_EVENTS=True",
        "--env", "CHECK_INTERVAL_S=1", "--env", "IMMEDIATE_PERIODICAL_START=True",
        "--health-interval", "1s", "--health-start-period", "20s",
        "--volume", f"{rules_dir}:/opt/docker_enforcer/rules:ro",
        "--volume", f"{clean_engine.socket}:/var/run/docker.sock:ro",  # connect() works on a read-only mount
        "--volume", "docker-enforcer-state:/var/lib/docker-enforcer",
        enforcer_image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def logs() -> str:
        result = clean_engine.docker("logs", ENFORCER, check=False)
        return result.stdout + result.stderr

    def healthy() -> bool:
        state = container_state(clean_engine, ENFORCER)
        assert state and state["Running"], f"the enforcer container stopped: {state}\n{logs()[-3000:]}"
        return bool(state.get("Health", {}).get("Status") == "healthy")

    wait_for("the image's HEALTHCHECK to report healthy", healthy, timeout=60)

    violator = run_container("violator")
    compliant = run_container("compliant", mem_limit="64m")
    wait_for("the violator to be stopped", lambda: stopped(clean_engine, violator), timeout=30)

    metrics = http_get(base + "/metrics")
    assert metrics is not None and metrics.status == 200
    assert (
        metric(metrics.body, "docker_enforcer_detections_total", rule="must have memory limit", mode="KILL")
        >= 1
    )
    assert metric(metrics.body, "containers_stopped_total") >= 1
    assert metric(metrics.body, "docker_enforcer_build_info", mode="KILL") == 1
    sweeps = metric(metrics.body, "docker_enforcer_sweep_duration_seconds_count")

    # More sweeps, each judging the enforcer's own container, and it still runs, never restarted.
    def more_sweeps() -> bool:
        reply = http_get(base + "/metrics")
        return bool(
            reply and metric(reply.body, "docker_enforcer_sweep_duration_seconds_count") >= sweeps + 3
        )

    wait_for("three more sweeps", more_sweeps, timeout=30)
    state = container_state(clean_engine, ENFORCER)
    assert state is not None and state["Running"] and state["Health"]["Status"] == "healthy"
    assert state["Restarting"] is False and state["OOMKilled"] is False
    assert running(clean_engine, compliant)
    found = http_get(base + "/?show_all_violated_rules=1")
    assert found is not None and found.status == 200
    names = {d["name"] for d in found.json()["detections"]}
    assert names == {"/violator"}, names
    assert "never judged" in logs()
    assert "Traceback" not in logs()
    # The daemon is the image's user, not root, and it wrote its container's id into PEERS_DIR.
    assert clean_engine.docker("exec", ENFORCER, "id", "-u").stdout.strip() == str(UID)
    own_id = clean_engine.docker("inspect", "--format", "{{.Id}}", ENFORCER).stdout.strip()
    assert [p.name for p in peers.iterdir()] == [own_id]

    # The detections are on the volume, not in the (read-only) container.
    volume = json.loads(clean_engine.docker("volume", "inspect", "docker-enforcer-state").stdout)[0]
    assert (Path(volume["Mountpoint"]) / "detections.db").is_file()


def test_the_originals_run_line_still_works(
    clean_engine: Engine, enforcer_image: str, rules_dir: Path, tmp_path: Path
) -> None:
    """`--name docker_enforcer -v /rules_dir:/opt/docker_enforcer/rules -v /var/run:/var/run`, as in its README,
    plus `--group-add` with the socket's group: the image's user is not root.

    `--privileged` is left out (refused by this sandbox, not needed) and `-p 8888:8888` is replaced by host
    networking; /var/run is a folder holding a hard link to the engine's socket.
    """
    var_run = tmp_path / "var_run"
    var_run.mkdir(mode=0o755)
    var_run.chmod(0o755)
    os.link(clean_engine.socket, var_run / "docker.sock")
    gid = clean_engine.socket.stat().st_gid
    port = free_port()
    line = [
        "run", "-d", "--name", "docker_enforcer",
        "--network", "host", "-e", f"LISTEN_ADDRESS=127.0.0.1:{port}",
        "-v", f"{rules_dir}:/opt/docker_enforcer/rules",
        "-v", f"{var_run}:/var/run",
    ]  # fmt: skip

    # The original's line as it was: the socket refuses the image's user, and the log says what to add.
    clean_engine.docker(*line, enforcer_image)

    def refused() -> str | None:
        logs = clean_engine.docker("logs", "docker_enforcer", check=False)
        text = logs.stdout + logs.stderr
        return text if "Permission denied" in text else None

    log = wait_for("the engine's refusal in the log", refused, timeout=30)
    assert f"uid {UID} is not in the socket's group {gid}: run the container with `--group-add {gid}`" in log
    clean_engine.docker("rm", "--force", "docker_enforcer")

    clean_engine.docker(*line, "--group-add", str(gid), enforcer_image)
    base = f"http://127.0.0.1:{port}"
    health = wait_for("/healthz to answer 200", lambda: _ok(http_get(base + "/healthz")), timeout=60)
    assert health.json()["mode"] == "WARN"  # the original's default
    rules = http_get(base + "/rules")
    assert rules is not None and rules.status == 200
    assert json.loads(rules.body) == RULES  # the original's /rules: the file's text as a JSON string
    config = http_get(base + "/config")
    assert config is not None and config.json()["white_list"] == []  # by id, not name


def test_image_serves_its_status_page(clean_engine: Engine, enforcer_image: str, rules_dir: Path) -> None:
    """The HTML page needs the templates inside the installed package (pyproject's package-data)."""
    port = free_port()
    clean_engine.docker(
        "run", "-d", "--name", "docker-enforcer", "--network", "host", "--read-only",
        "-e", f"LISTEN_ADDRESS=127.0.0.1:{port}",
        "-v", f"{rules_dir}:/opt/docker_enforcer/rules:ro",
        "-v", f"{clean_engine.socket}:/var/run/docker.sock",
        "--group-add", str(clean_engine.socket.stat().st_gid),
        enforcer_image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for("/healthz to answer 200", lambda: _ok(http_get(base + "/healthz")), timeout=60)
    page = http_get(base + "/", accept="text/html")
    assert page is not None
    assert page.status == 200, (
        f"the status page failed in the image (templates not packaged?): {page.body[:300]}"
    )
    assert "<html" in page.body.lower()


def test_the_pair_in_containers_spares_each_other_by_id_and_judges_a_name(
    clean_engine: Engine,
    enforcer_image: str,
    run_container: RunContainer,
    rules_dir: Path,
    volumes: list[str],
) -> None:
    """deploy/compose.yaml's way: both enforcers mount the `peers` volume (PEERS_DIR), the twin starts first.

    Both break the memory rule, as every container here does; the KILL instance spares the twin by the id the
    twin wrote into the volume, and stops a container named as the original's whitelist used to spare.
    """
    volumes.append("enforcer-peers")
    ports = {"docker-enforcer-audit": free_port(), "docker-enforcer": free_port()}

    def start(name: str, *env: str) -> str:
        clean_engine.docker(
            "run", "--detach", "--name", name, "--network", "host",
            "--group-add", str(clean_engine.socket.stat().st_gid),
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--env", f"LISTEN_ADDRESS=127.0.0.1:{ports[name]}", "--env", "RUN_START_EVENTS=True",
            "--env", "CHECK_INTERVAL_S=1", "--env", "IMMEDIATE_PERIODICAL_START=True",
            "--env", "PEERS_DIR=/var/lib/docker-enforcer-peers", *env,
            "--volume", "enforcer-peers:/var/lib/docker-enforcer-peers",
            "--volume", f"{rules_dir}:/opt/docker_enforcer/rules:ro",
            "--volume", f"{clean_engine.socket}:/var/run/docker.sock:ro",
            enforcer_image,
        )  # fmt: skip
        url = f"http://127.0.0.1:{ports[name]}"
        wait_for(f"{name} to answer /healthz", lambda: _ok(http_get(url + "/healthz")), timeout=60)
        return clean_engine.docker("inspect", "--format", "{{.Id}}", name).stdout.strip()

    twin = start("docker-enforcer-audit", "--env", "MODE=WARN")
    kill = start("docker-enforcer", "--env", "MODE=KILL")
    kill_url = f"http://127.0.0.1:{ports['docker-enforcer']}"

    def sweeps() -> float:
        reply = http_get(kill_url + "/metrics")
        return metric(reply.body, "docker_enforcer_sweep_duration_seconds_count") if reply else 0.0

    wait_for("two sweeps of the KILL instance", lambda: sweeps() >= 2, timeout=30)
    forged = run_container("docker_enforcer")  # the original's default WHITE_LIST spared this name
    wait_for("the KILL instance to stop docker_enforcer", lambda: stopped(clean_engine, forged), timeout=30)
    clean_engine.docker("restart", "--time", "0", "docker-enforcer-audit")  # same container, same id
    count = sweeps()
    wait_for("two more sweeps", lambda: sweeps() >= count + 2, timeout=30)

    assert running(clean_engine, "docker-enforcer-audit") and running(clean_engine, "docker-enforcer")
    found = http_get(kill_url + "/?show_all_violated_rules=1")
    assert found is not None and found.status == 200
    assert {d["name"] for d in found.json()["detections"]} == {"/docker_enforcer"}
    volume = json.loads(clean_engine.docker("volume", "inspect", "enforcer-peers").stdout)[0]
    assert sorted(p.name for p in Path(volume["Mountpoint"]).iterdir()) == sorted([twin, kill])


def _ok(reply: Reply | None) -> Reply | None:
    return reply if reply is not None and reply.status == 200 else None
