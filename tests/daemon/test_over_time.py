"""Rules held over time against the isolated engine: `for`, `grace`, the gentler actions, and daemon restarts.

Durations are seconds and SAMPLE_INTERVAL_S is 1; the margins allow for a loaded 2-core machine, where one
round of samples (one-shot stats answer on the engine's 1 s tick) may take two or three seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from support.daemon import Containers, DaemonFactory, Enforcer, docker_time, wait_until

# Four busy loops with the highest CPU weight: above 25 % of a core even when the machine is loaded.
BURN = ("sh", "-c", "for i in 1 2 3; do (while :; do :; done) & done; while :; do :; done")
HEAVY = {"cpu_shares": 262144}
BURN_ONE_SECOND_THEN_IDLE = (
    "sh",
    "-c",
    "end=$(($(date +%s)+1)); while [ $(date +%s) -lt $end ]; do :; done; sleep 3600",
)
TRIGGERS = """
import os
def tell(v):
    with open(os.environ["TRIGGER_LOG"], "a") as f:
        f.write(f"{v.phase} {v.subject.name} {','.join(v.reasons)}\\n")
def legacy(v):  # written for the original: never reads phase
    with open(os.environ["TRIGGER_LOG"] + ".legacy", "a") as f:
        f.write(f"{v.subject.name} {v.verdict}\\n")
triggers = [{"name": "tell", "trigger": tell}, {"name": "legacy", "trigger": legacy}]
"""


def trigger_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for_line(path: Path, line: str, timeout: float) -> bool:
    return bool(wait_until(lambda: line in trigger_lines(path), timeout, 0.1))


def start(daemon: DaemonFactory, rules: str, tmp_path: Path, **env: str) -> Enforcer:
    return daemon(
        rules,
        triggers=TRIGGERS,
        SAMPLE_INTERVAL_S="1",
        LOG_LEVEL="DEBUG",
        TRIGGER_LOG=str(tmp_path / "triggers.log"),
        **env,
    )


def test_a_sustained_cpu_hog_is_stopped_after_for_and_a_short_burst_never(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    # A burst of one loop for 1 s can keep "above 25 %" true over at most 4 s of samples: never the 6 s of
    # `for`.
    rules = """
    rules = [{"name": "cpu hog", "rule": lambda c: c.name.startswith("burn") and c.cpu_percent > 25,
              "for": "6s", "action": "stop"}]
    """
    enforcer = start(daemon, rules, tmp_path)
    hog = containers.run("burn-long", command=BURN, host_config=HEAVY)
    short = containers.run("burn-short", command=BURN_ONE_SECOND_THEN_IDLE)
    assert containers.wait_stopped(hog, 60), enforcer.tail()
    assert containers.running_window(hog) >= 6
    record = enforcer.wait_for_violation("burn-long")
    assert (record["action"], record["outcome"], record["source"]) == ("stop", "stopped", "sample")
    time.sleep(4)  # the burst ended long ago; a few more samples
    assert containers.running(short)
    assert enforcer.violations("burn-short") == []
    assert "enforced burn-long cpu hog" in trigger_lines(tmp_path / "triggers.log")


def test_grace_warns_first_then_stops_and_a_container_removed_meanwhile_is_resolved(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    rules = """
    rules = [{"name": "named graced", "rule": lambda c: c.name.startswith("graced"), "grace": 6}]
    """
    enforcer = start(daemon, rules, tmp_path)
    log = tmp_path / "triggers.log"
    stays = containers.run("graced-stays")
    leaves = containers.run("graced-leaves")
    assert wait_for_line(log, "warned graced-stays named graced", 15), enforcer.tail()
    assert wait_for_line(log, "warned graced-leaves named graced", 5), enforcer.tail()
    assert containers.running(stays)
    (detection,) = [d for d in enforcer.get("/")["detections"] if d["name"] == "/graced-stays"]
    assert detection["outcome"].startswith("warned: will kill at ")
    containers.api.remove_container(leaves, force=True)
    assert wait_for_line(log, "resolved graced-leaves named graced", 10), enforcer.tail()
    assert containers.wait_stopped(stays, 20), enforcer.tail()
    # The grace ran: stopped at least 6 s after the warning was recorded (less the record's own delay).
    warned_at = datetime.fromisoformat(detection["first_timestamp"]).replace(tzinfo=UTC).timestamp()
    assert docker_time(containers.inspect(stays)["State"]["FinishedAt"]) - warned_at >= 5.5
    assert wait_for_line(log, "enforced graced-stays named graced", 5)
    lines = trigger_lines(log)
    assert lines.index("warned graced-stays named graced") < lines.index("enforced graced-stays named graced")
    assert not any("graced-leaves" in line and line.startswith("enforced") for line in lines)
    assert [r["action"] for r in enforcer.violations("graced-leaves")] == ["kill"]  # the warning only
    assert "graced-stays True" in trigger_lines(Path(str(log) + ".legacy"))  # old triggers still called


def test_limit_updates_in_place_and_pause_pauses(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    rules = """
    rules = [
        {"name": "no memory limit", "for": 1, "action": "limit",
         "limits": {"memory": "64m", "cpus": 0.5, "pids": 100},
         "rule": lambda c: c.name.startswith("lim") and not c.params["HostConfig"]["Memory"]},
        {"name": "freeze", "for": 1, "action": "pause", "rule": lambda c: c.name.startswith("freeze")},
        {"name": "noted", "for": 1, "action": "pause", "mode": "WARN", "rule": lambda c: c.name.startswith("noted")},
    ]
    """
    enforcer = start(daemon, rules, tmp_path)
    limited = containers.run("lim-1")
    frozen = containers.run("freeze-1")
    noted = containers.run("noted-1")
    host_config = wait_until(lambda: (h := containers.inspect(limited)["HostConfig"])["Memory"] and h, 20)
    assert host_config, enforcer.tail()
    assert host_config["Memory"] == 64 * 1024**2
    assert host_config["MemorySwap"] == 128 * 1024**2
    assert (host_config["NanoCpus"], host_config["PidsLimit"]) == (500_000_000, 100)
    assert containers.running(limited)
    record = enforcer.wait_for_violation("lim-1")
    assert (record["action"], record["outcome"]) == (
        "limit",
        "limited: memory unlimited -> 64m, cpus unlimited -> 0.5, pids unlimited -> 100",
    )
    assert wait_until(lambda: containers.inspect(frozen)["State"]["Paused"], 20), enforcer.tail()
    record = enforcer.wait_for_violation("noted-1")
    assert (record["mode"], record["action"], record["outcome"]) == ("WARN", "would pause", "recorded")
    time.sleep(3)  # more samples: acted once per episode
    assert len(enforcer.violations("lim-1")) == 1
    assert len(enforcer.violations("freeze-1")) == 1
    assert len(enforcer.violations("noted-1")) == 1
    assert not containers.inspect(noted)["State"]["Paused"]
    assert "recorded noted-1 noted" in trigger_lines(tmp_path / "triggers.log")
    phases = {(e["name"], e["phase"]) for e in enforcer.get("/")["episodes"]}
    assert {("/freeze-1", "enforced"), ("/noted-1", "recorded")} <= phases
    assert not any(name == "/lim-1" for name, _ in phases)  # the limit fixed it: the episode ended


def test_a_daemon_restart_keeps_the_for_clock_and_never_acts_twice_in_a_grace(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    rules = """
    rules = [
        {"name": "held", "rule": lambda c: c.name.startswith("held"), "for": 12},
        {"name": "graced", "rule": lambda c: c.name.startswith("graced"), "grace": 8},
    ]
    """
    log = tmp_path / "triggers.log"
    first = start(daemon, rules, tmp_path)
    held = containers.run("held-1")
    graced = containers.run("graced-1")
    first.wait_for_message("held by held-1: pending", 15)
    assert wait_for_line(log, "warned graced-1 graced", 15), first.tail()
    time.sleep(4)
    assert first.stop() == 0
    second = start(daemon, rules, tmp_path)
    assert containers.wait_stopped(held, 30), second.tail()
    # Kept clock: stopped about 12 s after the violation began. A clock reset by the restart would have
    # needed 4 s + the restart + 12 s more.
    assert containers.running_window(held) < 18
    assert containers.wait_stopped(graced, 20), second.tail()
    assert wait_for_line(log, "enforced graced-1 graced", 5)
    lines = trigger_lines(log)
    assert lines.count("warned graced-1 graced") == 1
    assert lines.count("enforced graced-1 graced") == 1
    assert not second.find(lambda r: "pending" in str(r.get("message", "")) and "held-1" in str(r["message"]))
