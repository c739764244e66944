"""`docker-enforcer run` against the isolated engine: what it stops, what it only records, what it exempts."""

from __future__ import annotations

import time
from pathlib import Path

from support.daemon import STARTED, Containers, DaemonFactory, wait_until
from support.engine import Engine

from enforcer.record.store import DetectionStore

KILL_WITHIN_S = 3.0  # generous for a loaded 2-core CI machine; the benchmark measures the real figure


def test_kill_stops_a_violator_started_after_the_daemon(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(MODE="KILL")
    good = containers.run("good-1")
    bad = containers.run("bad-1")

    assert containers.wait_stopped(bad, KILL_WITHIN_S)
    assert containers.running_window(bad) < KILL_WITHIN_S
    record = enforcer.wait_for_violation("bad-1")
    assert record["level"] == "INFO"
    assert record["container_id"] == bad[:12]
    assert record["image"] == containers.image
    assert record["rules"] == ["no bad names"]
    assert (record["mode"], record["action"], record["outcome"], record["source"]) == (
        "KILL",
        "kill",
        "stopped",
        "event",
    )
    # The text of the line names the same things, for plain-text logs.
    for part in (
        "container=bad-1",
        f"id={bad[:12]}",
        f"image={containers.image}",
        "rules=no bad names",
        "mode=KILL",
    ):
        assert part in record["message"]
    assert "action=kill" in record["message"] and "outcome=stopped" in record["message"]
    assert containers.running(good)
    assert enforcer.violations("good-1") == []
    assert len(enforcer.violations("bad-1")) == 1


def test_nice_gives_every_thread_of_the_daemon_the_priority(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(MODE="KILL", NICE="-5")
    enforcer.wait_for_message("running at nice -5")
    bad = containers.run("bad-1")
    assert containers.wait_stopped(bad, KILL_WITHIN_S)  # the check workers exist by now
    tasks = Path(f"/proc/{enforcer.proc.pid}/task")
    nices = [int((t / "stat").read_text().rpartition(")")[2].split()[16]) for t in tasks.iterdir()]
    assert len(nices) > 3 and set(nices) == {-5}


def test_warn_leaves_the_violator_running_and_records_it(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(MODE="WARN")
    bad = containers.run("bad-warned")

    record = enforcer.wait_for_violation("bad-warned")
    assert (record["mode"], record["action"], record["outcome"]) == ("WARN", "would stop", "recorded")
    (detection,) = enforcer.get("/")["detections"]
    assert (detection["id"], detection["name"], detection["violated_rule"]) == (
        bad,
        "/bad-warned",
        "no bad names",
    )
    assert (detection["mode"], detection["action"], detection["outcome"]) == (
        "WARN",
        "would stop",
        "recorded",
    )
    time.sleep(1)
    assert containers.running(bad)


def test_whitelists_exempt(engine: Engine, daemon: DaemonFactory, containers: Containers) -> None:
    """WHITE_LIST and IMAGE_WHITE_LIST, for all rules and per rule (`pattern|rule name`)."""
    with engine.api() as api:
        api.tag("busybox:latest", "trusted/tool", "1")
        api.tag("busybox:latest", "partly/trusted", "1")
    rules = """
        rules = [
            {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
            {"name": "no risky label", "rule": lambda c: "risky" in c.labels},
        ]
        """
    enforcer = daemon(
        rules,
        WHITE_LIST="bad-ops-.*,bad-half.*|no bad names",
        IMAGE_WHITE_LIST="trusted/tool:1,partly/.*|no bad names",
    )
    risky = {"labels": {"risky": "yes"}}
    exempt = {
        "bad-ops-1": containers.run("bad-ops-1", **risky),  # by name, from all rules
        "bad-image": containers.run("bad-image", image="trusted/tool:1", **risky),  # by image, all rules
        "bad-half": containers.run("bad-half"),  # by name, from "no bad names" only
        "bad-partly": containers.run("bad-partly", image="partly/trusted:1"),  # by image, that rule only
    }
    caught = {
        "bad-control": containers.run("bad-control"),
        "bad-half-risky": containers.run("bad-half-risky", **risky),  # still violates "no risky label"
        "bad-partly-risky": containers.run("bad-partly-risky", image="partly/trusted:1", **risky),
    }

    for name, cid in caught.items():
        assert containers.wait_stopped(cid, KILL_WITHIN_S), name
    assert enforcer.wait_for_violation("bad-half-risky")["rules"] == ["no risky label"]
    assert enforcer.wait_for_violation("bad-partly-risky")["rules"] == ["no risky label"]
    assert enforcer.wait_for_violation("bad-control")["rules"] == ["no bad names"]
    time.sleep(1)
    for name, cid in exempt.items():
        assert containers.running(cid), name
        assert enforcer.violations(name) == [], name


def test_catch_up_sweep_stops_a_violator_that_ran_before_the_daemon(
    daemon: DaemonFactory, containers: Containers
) -> None:
    before = containers.run("bad-before")
    good = containers.run("good-before")
    enforcer = daemon(RUN_PERIODIC="false")  # no periodic sweep: only the catch-up sweep can see it

    assert containers.wait_stopped(before, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("bad-before")["outcome"] == "stopped"
    assert containers.running(good)


def test_without_catch_up_sweep_a_violator_that_ran_before_is_left_alone(
    daemon: DaemonFactory, containers: Containers
) -> None:
    """The counterpart of the test above: it is the catch-up sweep that stops the earlier violator."""
    before = containers.run("bad-before")
    enforcer = daemon(RUN_PERIODIC="false", CATCH_UP_SWEEP="false", wait=STARTED)
    enforcer.wait_for_message("connected to the docker engine")
    after = containers.run("bad-after")

    assert containers.wait_stopped(after, KILL_WITHIN_S)
    time.sleep(1)
    assert containers.running(before)
    assert enforcer.violations("bad-before") == []


def test_metrics_rules_work_in_periodic_sweeps(daemon: DaemonFactory, containers: Containers) -> None:
    rules = """
        rules = [
            {
                "name": "hog uses memory",
                "rule": lambda c: c.name.startswith("hog") and c.metrics["memory_stats"]["usage"] > 0,
            },
        ]
        """
    before = containers.run("hog-before")
    good = containers.run("good-sweep")
    enforcer = daemon(
        rules,
        RUN_START_EVENTS="false",
        RUN_PERIODIC="true",
        IMMEDIATE_PERIODICAL_START="true",
        CHECK_INTERVAL_S="2",
        wait=STARTED,
    )
    assert containers.wait_stopped(before, 10)
    record = enforcer.wait_for_violation("hog-before")
    assert (record["source"], record["rules"], record["outcome"]) == (
        "periodic",
        ["hog uses memory"],
        "stopped",
    )

    after = containers.run("hog-after")  # no events: the next sweep (2 s) must find it
    assert containers.wait_stopped(after, 10)
    assert enforcer.wait_for_violation("hog-after")["source"] == "periodic"
    assert containers.running(good)
    assert not enforcer.find(
        lambda r: r.get("logger") == "enforcer.pipeline" and "rule error" in r["message"]
    )


def test_a_warn_rule_only_records_in_a_kill_instance(daemon: DaemonFactory, containers: Containers) -> None:
    rules = """
        rules = [
            {"name": "watch these", "mode": "WARN", "rule": lambda c: c.name.startswith("watched")},
            {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
        ]
        """
    enforcer = daemon(rules, MODE="KILL")
    watched = containers.run("watched-1")
    bad = containers.run("bad-1")

    assert containers.wait_stopped(bad, KILL_WITHIN_S)
    record = enforcer.wait_for_violation("watched-1")
    assert (record["mode"], record["action"], record["outcome"]) == ("WARN", "would stop", "recorded")
    assert enforcer.wait_for_violation("bad-1")["mode"] == "KILL"
    time.sleep(1)
    assert containers.running(watched)


def test_restart_policy_is_set_to_no_after_the_kill_and_the_original_is_recorded(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon()
    bad = containers.run("bad-always", host_config={"restart_policy": {"Name": "always"}})

    assert enforcer.wait_for_violation("bad-always")["outcome"] == "stopped"
    # A killed "always" container stays down only until the engine restarts (test_resilience covers that).
    assert wait_until(lambda: containers.inspect(bad)["HostConfig"]["RestartPolicy"]["Name"] == "no", 5)
    assert not containers.running(bad)
    assert enforcer.stop() == 0
    store = DetectionStore(Path(enforcer.env["STATE_DB"]), 30)
    try:
        (detection,) = store.detections()
    finally:
        store.close()
    assert (detection.name, detection.restart_policy, detection.outcome) == (
        "bad-always",
        "always",
        "stopped",
    )
