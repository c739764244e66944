"""Enforcement held back by a safeguard: /healthz stays 200 with a warning, the page and the gauge say so."""

from __future__ import annotations

from dataclasses import replace

from report_support import HOST

from enforcer.breaker import StopRateBreaker
from enforcer.judge import guard
from enforcer.judge.policy import Policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.store import DetectionStore
from enforcer.report.app import create_app
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.status import Health


def gauge(metrics: Metrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("docker_enforcer_enforcement_held", {"reason": reason})


def test_a_tripped_breaker_is_a_warning_on_healthz_the_page_and_the_gauge(
    settings: Settings, health: Health, policy: Policy, store: DetectionStore, metrics: Metrics
) -> None:
    breaker = StopRateBreaker(1)
    in_force = PolicyInForce(policy)
    metrics.watch_holds(lambda: False, lambda: breaker.state().tripped)
    client = create_app(settings, health, in_force, store, metrics, HOST, breaker=breaker).test_client()
    assert client.get("/healthz").json == {
        "status": "ok", "problems": [], "warnings": [], "mode": "KILL",
        "version": client.get("/healthz").json["version"], "host": HOST,  # type: ignore[index]
    }  # fmt: skip
    assert gauge(metrics, "stop_rate") == 0.0

    assert breaker.admit() and not breaker.admit()

    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json is not None and response.json["status"] == "ok"
    assert [w.split(":")[0] for w in response.json["warnings"]] == ["stop-rate breaker tripped"]
    page = client.get("/", headers={"Accept": "text/html"}).text
    assert 'id="held"' in page and "stop-rate breaker tripped" in page
    assert gauge(metrics, "stop_rate") == 1.0
    assert gauge(metrics, "rules_change") == 0.0


def test_a_held_rules_version_is_a_warning_on_healthz_the_page_config_and_the_gauge(
    settings: Settings, health: Health, policy: Policy, store: DetectionStore, metrics: Metrics
) -> None:
    candidate = Policy((), policy.whitelist, (), {"rules": replace(policy.sources["rules"], sha256="new")})
    in_force = PolicyInForce(guard.holding(policy, candidate, 20, 5))
    metrics.watch_holds(lambda: in_force.get().held is not None, lambda: False)
    client = create_app(settings, health, in_force, store, metrics, HOST).test_client()

    response = client.get("/healthz")
    assert response.status_code == 200 and response.json is not None
    assert response.json["warnings"] == [
        f"rules version {candidate.version[:12]} held: it would stop 20 running container(s) that the rules in "
        "force leave alone, more than its limit of 5; its rules only record until a version within the limit "
        "is loaded (max_new_stops = N in the rules file allows a deliberate change)"
    ]
    config = client.get("/config").json
    assert config is not None and config["rules_version"] == policy.version
    assert config["held_rules"] == {"version": candidate.version, "new_stops": 20, "limit": 5}
    assert (
        f"rules version {candidate.version[:12]} held"
        in client.get("/", headers={"Accept": "text/html"}).text
    )
    assert gauge(metrics, "rules_change") == 1.0

    in_force.replace(candidate)
    assert client.get("/healthz").json["warnings"] == []  # type: ignore[index]
    assert client.get("/config").json["held_rules"] is None  # type: ignore[index]
    assert gauge(metrics, "rules_change") == 0.0
