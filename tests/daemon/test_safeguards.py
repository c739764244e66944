"""Safeguards against a rules mistake, against the isolated engine: the stop-rate breaker holds actions past
MAX_STOPS_PER_MINUTE (and the blast-radius guard holds a rules version that would stop too many)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from support.daemon import Containers, DaemonFactory

BURST = 100
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
