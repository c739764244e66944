"""Safeguards against a rules mistake, against the isolated engine: the stop-rate breaker holds actions past
MAX_STOPS_PER_MINUTE (and the blast-radius guard holds a rules version that would stop too many)."""

from __future__ import annotations

import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from support.daemon import Containers, DaemonFactory, Enforcer, replace_file

BURST = 100
KILL_WITHIN_S = 3.0
RELOAD_WITHIN_S = 8.0  # the files are polled every 3 s
RATE = 30


def run_many(containers: Containers, prefix: str, count: int) -> list[str]:
    """`count` running containers named prefix-N, started a few at a time (not timed: the daemon starts later)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda i: containers.run(f"{prefix}-{i}"), range(count)))


def test_a_burst_of_violators_past_the_stop_rate_is_held_not_stopped(
    daemon: DaemonFactory, containers: Containers
) -> None:
    """100 violators found at once (the sweep at start) with the breaker at 30 a minute: 30 stopped, 70 held.
    Counts, not timings: the sweep judges them all within a minute on any machine."""
    ids = run_many(containers, "bad", BURST)
    enforcer = daemon(
        RUN_START_EVENTS="false", RUN_PERIODIC="true", IMMEDIATE_PERIODICAL_START="true",
        CHECK_INTERVAL_S="3600", MAX_STOPS_PER_MINUTE=str(RATE), MAX_NEW_STOPS=str(BURST),
        timeout=120,
    )  # fmt: skip

    outcomes = [str(v.get("outcome")) for v in enforcer.violations()]
    assert len(outcomes) == BURST
    assert outcomes.count("stopped") == RATE
    held = [o for o in outcomes if o.startswith("held")]
    assert len(held) == BURST - RATE and held[0].startswith("held: stop-rate breaker")
    assert sum(containers.running(cid) for cid in ids) == BURST - RATE
    assert enforcer.find(lambda r: "stop-rate breaker tripped" in str(r.get("message")))

    health = enforcer.get("/healthz")
    assert health["status"] == "ok"
    assert any(w.startswith("stop-rate breaker tripped") for w in health["warnings"])
    metrics = enforcer.get_text("/metrics")
    assert 'docker_enforcer_enforcement_held{reason="stop_rate"} 1.0' in metrics
    recorded = enforcer.get("/")["detections"]
    assert sum(d["outcome"].startswith("held") and d["mode"] == "WARN" for d in recorded) == BURST - RATE


def test_start_events_past_the_stop_rate_are_held_too(daemon: DaemonFactory, containers: Containers) -> None:
    """The event path: five violators started one after another (well within a minute) with the breaker at 2."""
    enforcer = daemon(MAX_STOPS_PER_MINUTE="2")
    ids = [containers.run(f"bad-{n}") for n in range(5)]
    for n in range(5):
        enforcer.wait_for_violation(f"bad-{n}", HELD_WITHIN_S)
    outcomes = [str(v.get("outcome")).split(":")[0] for v in enforcer.violations()]
    assert sorted(outcomes) == ["held", "held", "held", "stopped", "stopped"]
    assert sum(containers.running(cid) for cid in ids) == 3


VICTIMS = 20
VICTIM_RULES = """
rules = [
    {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
    {"name": "no victims", "rule": lambda c: c.name.startswith("victim")},
]
"""
SWEEP_S = "3"
HELD_WITHIN_S = 15.0


def held_gauge(enforcer: Enforcer) -> str:
    return next(
        line.split()[-1]
        for line in enforcer.get_text("/metrics").splitlines()
        if line.startswith('docker_enforcer_enforcement_held{reason="rules_change"}')
    )


def test_a_rules_change_that_would_stop_too_many_is_held_until_the_file_says_it_is_meant(
    daemon: DaemonFactory, containers: Containers
) -> None:
    victims = run_many(containers, "victim", VICTIMS)
    enforcer = daemon(RUN_PERIODIC="true", CHECK_INTERVAL_S=SWEEP_S)

    replace_file(enforcer.rules_path, VICTIM_RULES)
    enforcer.signal(signal.SIGHUP)
    held = enforcer.wait_for_message("held: it would stop 20 running container(s)", RELOAD_WITHIN_S)
    assert held["level"] == "ERROR" and held["new_stops"] == VICTIMS and held["limit"] == 5
    # A sweep after the hold: the held rules record the victims, the rules in force still stop violators.
    bad = containers.run("bad-under-hold")
    assert containers.wait_stopped(bad, KILL_WITHIN_S)
    enforcer.wait_for_log(
        lambda r: (
            r.get("container") == "victim-0" and str(r.get("outcome")).startswith("held: rules version")
        ),
        HELD_WITHIN_S,
    )
    assert all(containers.running(cid) for cid in victims)
    health = enforcer.get("/healthz")
    assert health["status"] == "ok"
    assert [w.split(":")[0] for w in health["warnings"]] == [
        f"rules version {held['held_version'][:12]} held"
    ]
    assert held_gauge(enforcer) == "1.0"
    page = urllib.request.Request(enforcer.url + "/", headers={"Accept": "text/html"})
    with urllib.request.urlopen(page, timeout=10) as response:
        assert 'id="held"' in response.read().decode()

    replace_file(enforcer.rules_path, VICTIM_RULES + "max_new_stops = 50\n")
    enforcer.wait_for_message("the hold of rules version", RELOAD_WITHIN_S)
    assert all(containers.wait_stopped(cid, HELD_WITHIN_S) for cid in victims)
    assert enforcer.get("/healthz")["warnings"] == []
    assert held_gauge(enforcer) == "0.0"


def test_a_fresh_start_with_rules_that_would_stop_too_many_is_held(
    daemon: DaemonFactory, containers: Containers
) -> None:
    """No version in force yet: the first one is compared with nothing enforced."""
    victims = run_many(containers, "victim", VICTIMS)
    enforcer = daemon(VICTIM_RULES, RUN_PERIODIC="true", CHECK_INTERVAL_S=SWEEP_S)
    assert enforcer.find(lambda r: "held: it would stop 20 running container(s)" in str(r.get("message")))
    enforcer.wait_for_log(lambda r: str(r.get("outcome")).startswith("held: rules version"), HELD_WITHIN_S)
    assert all(containers.running(cid) for cid in victims)
