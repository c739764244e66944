"""Issue 8, prevention: violators of static rules are removed at create time, before they run an instruction.

`docker-enforcer run` as a subprocess against the isolated engine, with RUN_START_EVENTS on. Containers are
made with the docker CLI (`docker create`, `docker start`, `docker run -d`), as users make them.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from support.daemon import Containers, DaemonFactory, Enforcer, wait_until
from support.engine import Engine

from enforcer.record.store import DetectionStore

GONE_WITHIN_S = 3.0  # generous for a loaded 2-core CI machine; benchmarks/prevent.py measures the real figure
QUIET_S = 1.0  # how long nothing must happen to a container the enforcer must leave alone
ENV_SECRET = "env-secret-7f3a9c"
CMD_SECRET = "cmd-secret-91bd42"
PRIVILEGED_RULES = """
rules = [
    {"name": "no privileged", "rule": lambda c: c.params["HostConfig"]["Privileged"], "prevent": True},
    {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
]
"""


# -- helpers ---------------------------------------------------------------------------------------------
def create(engine: Engine, name: str, *args: str, command: tuple[str, ...] = ("sleep", "3600")) -> str:
    """`docker create`: the container exists, never started; its id."""
    result = engine.docker("create", "--name", name, "--stop-signal", "KILL", *args, "busybox", *command)
    return result.stdout.strip()


def exists(containers: Containers, cid: str) -> bool:
    try:
        containers.inspect(cid)
    except docker.errors.NotFound:
        return False
    return True


def wait_gone(containers: Containers, cid: str, timeout: float = GONE_WITHIN_S) -> bool:
    return bool(wait_until(lambda: not exists(containers, cid), timeout))


def metric(enforcer: Enforcer, name: str) -> float:
    """The value of an unlabelled sample of /metrics; 0 when it is not there."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", enforcer.get_text("/metrics"), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def assert_safe_config(config: dict[str, Any], data: Path) -> None:
    """The configuration recorded for a prevented container: what an owner investigates, no env or command."""
    assert set(config) == {"Name", "Image", "Created", "Config", "HostConfig", "Mounts"}
    assert config["Name"] == "bad-recorded"
    assert config["Config"]["Image"] == "busybox"
    assert config["Config"]["Labels"] == {"team": "red"}
    assert "Env" not in config["Config"] and "Cmd" not in config["Config"]
    assert config["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert config["HostConfig"]["Binds"] == [f"{data}:/data:ro"]
    assert [(m["Source"], m["Destination"], m["RW"]) for m in config["Mounts"]] == [
        (str(data), "/data", False)
    ]


def summary(record: dict[str, object]) -> tuple[object, ...]:
    return (record["mode"], record["action"], record["outcome"], record["source"])


# -- prevention on and off -------------------------------------------------------------------------------
def test_prevention_removes_a_created_violator_before_it_can_start(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    """`docker create` without start: the violator is removed, `docker start` then finds nothing to start."""
    enforcer = daemon(PREVENT_ON_CREATE="true")
    good = create(engine, "good-created")
    bad = create(engine, "bad-created")

    assert wait_gone(containers, bad)
    record = enforcer.wait_for_violation("bad-created")
    assert summary(record) == ("KILL", "prevent", "prevented", "create")
    assert record["rules"] == ["no bad names"]
    started = engine.docker("start", "bad-created", check=False)
    assert started.returncode != 0 and "No such container" in started.stderr
    time.sleep(QUIET_S)
    assert exists(containers, good)
    assert containers.inspect(good)["State"]["Status"] == "created"
    assert enforcer.violations("good-created") == []
    assert metric(enforcer, "docker_enforcer_preventions_total") == 1.0
    assert metric(enforcer, "docker_enforcer_prevention_race_lost_total") == 0.0


def test_without_prevention_a_created_violator_is_judged_and_killed_at_start(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    """PREVENT_ON_CREATE is off by default: a created violator is left alone until it starts."""
    enforcer = daemon()
    bad = create(engine, "bad-later")

    time.sleep(QUIET_S)
    assert containers.inspect(bad)["State"]["Status"] == "created"
    assert enforcer.violations("bad-later") == []
    engine.docker("start", "bad-later")

    assert containers.wait_stopped(bad, GONE_WITHIN_S)
    assert summary(enforcer.wait_for_violation("bad-later")) == ("KILL", "kill", "stopped", "event")
    assert exists(containers, bad)  # killed, not removed: only prevention removes
    assert metric(enforcer, "docker_enforcer_preventions_total") == 0.0
    assert metric(enforcer, "docker_enforcer_prevention_race_lost_total") == 0.0


def test_docker_run_of_violators_never_leaves_one_running_and_prevented_ones_never_ran(
    engine: Engine, daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    """`docker run -d` races the enforcer: each violator is either prevented (it never ran: no marker file)
    or, when the start request came first, stopped by the start path and counted as a race lost."""
    enforcer = daemon(PREVENT_ON_CREATE="true")
    marks = tmp_path / "marks"
    marks.mkdir()
    names = [f"bad-run-{n}" for n in range(5)]
    for name in names:
        engine.docker(
            "run", "-d", "--name", name, "--stop-signal", "KILL", "-v", f"{marks}:/mark", "busybox",
            "sh", "-c", f"touch /mark/{name}; exec sleep 3600",
            check=False,
        )  # fmt: skip

    records = {name: enforcer.wait_for_violation(name) for name in names}
    for name, record in records.items():
        cid = str(record["container_id"])
        if record["action"] == "prevent":
            assert summary(record) == ("KILL", "prevent", "prevented", "create"), name
            assert not (marks / name).exists(), f"{name} was recorded as prevented, yet it ran"
            assert not exists(containers, cid), name
        else:
            assert summary(record) == ("KILL", "kill", "stopped", "event"), name
            assert containers.wait_stopped(cid, GONE_WITHIN_S), name
    prevented = sum(r["action"] == "prevent" for r in records.values())
    assert wait_until(
        lambda: metric(enforcer, "docker_enforcer_prevention_race_lost_total") == len(names) - prevented, 2
    )
    assert metric(enforcer, "docker_enforcer_preventions_total") == prevented
    with engine.api() as api:
        assert api.containers(filters={"name": "bad-run-"}) == []  # none left running


# -- per rule and WARN -----------------------------------------------------------------------------------
def test_per_rule_prevent_removes_only_violators_of_that_rule(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(PRIVILEGED_RULES)  # PREVENT_ON_CREATE off: only "no privileged" prevents
    named = create(engine, "bad-named")
    privileged = create(engine, "priv-1", "--privileged")

    assert wait_gone(containers, privileged)
    record = enforcer.wait_for_violation("priv-1")
    assert summary(record) == ("KILL", "prevent", "prevented", "create")
    assert record["rules"] == ["no privileged"]
    time.sleep(QUIET_S)
    assert containers.inspect(named)["State"]["Status"] == "created"
    assert enforcer.violations("bad-named") == []

    engine.docker("start", "bad-named")  # the other rule acts at start, as before
    assert containers.wait_stopped(named, GONE_WITHIN_S)
    assert summary(enforcer.wait_for_violation("bad-named")) == ("KILL", "kill", "stopped", "event")
    assert metric(enforcer, "docker_enforcer_preventions_total") == 1.0
    assert metric(enforcer, "docker_enforcer_prevention_race_lost_total") == 0.0


@pytest.mark.parametrize(
    ("rules", "env"),
    [
        (None, {"MODE": "WARN", "PREVENT_ON_CREATE": "true"}),
        (
            'rules = [{"name": "no bad names", "rule": lambda c: c.name.startswith("bad"), '
            '"mode": "WARN", "prevent": True}]\n',
            {"MODE": "KILL"},
        ),
    ],
    ids=["warn-instance", "warn-rule-in-kill-instance"],
)
def test_warn_only_records_would_prevent(
    engine: Engine,
    daemon: DaemonFactory,
    containers: Containers,
    rules: str | None,
    env: dict[str, str],
) -> None:
    enforcer = daemon(rules, **env) if rules else daemon(**env)
    bad = create(engine, "bad-warned")

    record = enforcer.wait_for_violation("bad-warned")
    assert summary(record) == ("WARN", "would prevent", "recorded", "create")
    engine.docker("start", "bad-warned")
    started = enforcer.wait_for_log(
        lambda r: r.get("container") == "bad-warned" and r.get("source") == "event", timeout=GONE_WITHIN_S
    )
    assert summary(started) == ("WARN", "would stop", "recorded", "event")
    time.sleep(QUIET_S)
    assert containers.running(bad)
    (detection,) = enforcer.get("/")["detections"]
    assert (detection["action"], detection["outcome"], detection["count"]) == ("would stop", "recorded", 2)
    assert metric(enforcer, "docker_enforcer_preventions_total") == 0.0
    assert metric(enforcer, "docker_enforcer_prevention_race_lost_total") == 0.0


# -- rules that need the running container ---------------------------------------------------------------
@pytest.mark.parametrize(
    "rule",
    [
        'lambda c: c.name.startswith("bad") and "memory_stats" in c.metrics',
        'lambda c: c.name.startswith("bad") and c.position >= 2',  # two clean containers started before
    ],
    ids=["metrics", "position"],
)
def test_a_rule_on_metrics_or_position_waits_for_the_start(
    engine: Engine, daemon: DaemonFactory, containers: Containers, rule: str
) -> None:
    """At create the rule cannot be judged: no rule error, no removal; at start it is judged and acts."""
    enforcer = daemon(f'rules = [{{"name": "running facts", "rule": {rule}, "prevent": True}}]\n')
    good = [containers.run(f"good-{n}") for n in range(2)]
    bad = create(engine, "bad-running")

    time.sleep(QUIET_S)
    assert containers.inspect(bad)["State"]["Status"] == "created"
    engine.docker("start", "bad-running")

    assert containers.wait_stopped(bad, GONE_WITHIN_S + 1)  # `docker stats` answers on a 1 s tick
    assert summary(enforcer.wait_for_violation("bad-running")) == ("KILL", "kill", "stopped", "event")
    assert all(containers.running(cid) for cid in good)
    assert [m for m in enforcer.messages() if "rule error" in m] == []
    assert "docker_enforcer_rule_errors_total{" not in enforcer.get_text("/metrics")
    assert metric(enforcer, "docker_enforcer_preventions_total") == 0.0
    # It could never have been prevented: the start path stopping it is no race lost.
    assert metric(enforcer, "docker_enforcer_prevention_race_lost_total") == 0.0


# -- the record ------------------------------------------------------------------------------------------
def test_a_prevented_container_is_recorded_with_its_configuration_and_no_secret(
    engine: Engine, daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    enforcer = daemon(PREVENT_ON_CREATE="true")
    data = tmp_path / "data"
    data.mkdir()
    bad = create(
        engine, "bad-recorded",
        "--label", "team=red", "--env", f"SECRET_TOKEN={ENV_SECRET}", "--memory", "64m",
        "-v", f"{data}:/data:ro",
        command=("sh", "-c", f"echo {CMD_SECRET}"),
    )  # fmt: skip
    assert wait_gone(containers, bad)
    enforcer.wait_for_violation("bad-recorded")

    raw = enforcer.get_text("/?show_image_and_labels=1")
    (detection,) = json.loads(raw)["detections"]
    assert (detection["id"], detection["name"], detection["violated_rule"]) == (
        bad,
        "/bad-recorded",
        "no bad names",
    )
    assert (detection["mode"], detection["action"], detection["outcome"], detection["source"]) == (
        "KILL",
        "prevent",
        "prevented",
        "create",
    )
    assert (detection["image"], detection["labels"]) == ("busybox", {"team": "red"})
    assert_safe_config(detection["config"], data)
    assert ENV_SECRET not in raw and CMD_SECRET not in raw
    assert ENV_SECRET not in enforcer.log_text() and CMD_SECRET not in enforcer.log_text()
    assert enforcer.stop() == 0

    state = Path(enforcer.env["STATE_DB"])
    store = DetectionStore(state, max_age_days=30)
    try:
        (stored,) = store.detections()
    finally:
        store.close()
    assert (stored.action, stored.outcome, stored.source) == ("prevent", "prevented", "create")
    assert stored.config == detection["config"]
    for path in state.parent.iterdir():  # the database, its WAL and shared memory: no secret anywhere
        content = path.read_bytes()
        assert ENV_SECRET.encode() not in content and CMD_SECRET.encode() not in content, path
