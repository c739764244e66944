"""RUN_EXEC_EVENTS against the isolated engine: `docker exec` sessions judged with `c.exec` set.

In this sandbox `docker exec --privileged` fails to start (capabilities), but its exec_create and exec_start
events and its inspect data (privileged true) are there, which is all the enforcer reads.
"""

from __future__ import annotations

import subprocess
import time

from support.daemon import Containers, DaemonFactory, wait_until
from support.engine import Engine

from enforcer.facts.container import EXECUTABLE_SHOWN

KILL_WITHIN_S = 3.0  # generous for a loaded 2-core machine; benchmarks/exec_latency.py measures the figure
# CIS 5.23 and the opt-in 5.24 from the library, and a lambda in the README's form.
EXEC_RULES = """
from enforcer.library import select
rules = select("no-privileged-exec", "no-root-exec") + [
    {"name": "no tty exec", "rule": lambda c: c.exec and c.exec.tty},
]
"""


def exec_in(engine: Engine, cid: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker exec` that may fail (a privileged exec cannot start here): the events happen either way."""
    return subprocess.run(
        ["docker", "-H", engine.url, "exec", *args, cid, "sh", "-c", "echo s3cret-argument >/dev/null"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_privileged_and_root_execs_stop_the_container_in_kill_mode(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(EXEC_RULES, MODE="KILL", RUN_EXEC_EVENTS="true")
    privileged = containers.run("priv-target", user="1000")
    as_root = containers.run("root-target", user="1000")
    fine = containers.run("fine-target", user="1000")
    tty = containers.run("tty-target", user="1000")

    exec_in(engine, privileged, "--privileged")
    exec_in(engine, as_root, "-u", "0")
    exec_in(engine, fine, "-u", "1000")
    exec_in(engine, tty, "-t")

    assert containers.wait_stopped(privileged, KILL_WITHIN_S)
    assert containers.wait_stopped(as_root, KILL_WITHIN_S)
    record = enforcer.wait_for_violation("priv-target")
    assert (record["rules"], record["source"], record["action"], record["outcome"]) == (
        ["no privileged exec"], "exec", "kill", "stopped",
    )  # fmt: skip
    assert record["exec"] == "sh" and "exec=sh" in record["message"]
    assert enforcer.wait_for_violation("root-target")["rules"] == ["no exec as root"]
    assert containers.wait_stopped(tty, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("tty-target")["rules"] == ["no tty exec"]
    time.sleep(1)
    assert containers.running(fine)
    assert enforcer.violations("fine-target") == []
    assert "s3cret-argument" not in enforcer.log_text()  # arguments can hold secrets
    detections = {d["name"]: d for d in enforcer.get("/")["detections"]}
    assert (detections["/priv-target"]["source"], detections["/priv-target"]["exec"]) == ("exec", "sh")
    assert "s3cret-argument" not in str(detections)


def test_exec_without_user_runs_as_the_container_user(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    """No `-u`: the exec runs as Config.User, as the engine does; a container running as root is flagged.
    Without start events nothing has the containers' inspect yet: it is asked for with the exec's."""
    enforcer = daemon(EXEC_RULES, MODE="WARN", RUN_EXEC_EVENTS="true", RUN_START_EVENTS="false")
    as_1000 = containers.run("user-1000", user="1000")
    as_root = containers.run("user-root")

    exec_in(engine, as_1000)
    exec_in(engine, as_root)

    record = enforcer.wait_for_violation("user-root")
    assert (record["rules"], record["mode"], record["action"]) == (["no exec as root"], "WARN", "would stop")
    time.sleep(1)
    assert enforcer.violations("user-1000") == []
    assert containers.running(as_root)  # WARN: detection only


def test_a_per_rule_warn_mode_only_records_the_exec(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    rules = EXEC_RULES.replace(
        'select("no-privileged-exec", "no-root-exec")',
        '[{**r, "mode": "WARN"} for r in select("no-privileged-exec")]',
    )
    enforcer = daemon(rules, MODE="KILL", RUN_EXEC_EVENTS="true")
    target = containers.run("priv-warned", user="1000")
    exec_in(engine, target, "--privileged")
    record = enforcer.wait_for_violation("priv-warned")
    assert (record["rules"], record["mode"], record["action"]) == (
        ["no privileged exec"],
        "WARN",
        "would stop",
    )
    assert containers.running(target)


def test_a_root_healthcheck_every_second_is_never_flagged(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(EXEC_RULES, MODE="KILL", RUN_EXEC_EVENTS="true")
    healthy = containers.run(
        "healthy-root",
        healthcheck={"test": ["CMD-SHELL", "true"], "interval": 1_000_000_000, "start_period": 0},
    )
    probed = containers.run(
        "probed-root",
        healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000},
    )
    for cid in (healthy, probed):
        assert wait_until(lambda cid=cid: len(_health_log(containers, cid)) >= 3, 15)
    assert containers.running(healthy) and containers.running(probed)
    assert enforcer.violations() == []
    exec_in(engine, probed)  # the same container, a real exec as root: flagged
    assert containers.wait_stopped(probed, KILL_WITHIN_S)
    assert containers.running(healthy)


def test_exec_events_are_off_by_default(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(EXEC_RULES, MODE="KILL")
    target = containers.run("priv-ignored")
    exec_in(engine, target, "--privileged")
    time.sleep(1.5)
    assert containers.running(target)
    assert enforcer.violations() == []


def _health_log(containers: Containers, cid: str) -> list[object]:
    health = containers.inspect(cid)["State"].get("Health") or {}
    return list(health.get("Log") or [])


def test_a_huge_executable_is_recorded_cut_short(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    """Whoever runs `docker exec` chooses the executable, of any length (the exec need not even start): the
    log, the store and the API keep its first EXECUTABLE_SHOWN characters."""
    enforcer = daemon(EXEC_RULES, MODE="WARN", RUN_EXEC_EVENTS="true")
    target = containers.run("huge-exec-target", user="1000")
    huge = "/bin/" + "x" * 5_000
    subprocess.run(
        ["docker", "-H", engine.url, "exec", "-u", "0", target, huge],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    record = enforcer.wait_for_violation("huge-exec-target")
    assert record["exec"] == huge[: EXECUTABLE_SHOWN - 1] + "…"
    assert len(record["message"]) < 1000
    (detection,) = [d for d in enforcer.get("/")["detections"] if d["name"] == "/huge-exec-target"]
    assert detection["exec"] == record["exec"]
    assert enforcer.get(f"/containers/{target}")["exec"] == record["exec"]
