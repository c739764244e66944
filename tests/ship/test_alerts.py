"""The Prometheus config and alerts, checked and unit-tested with promtool; the Grafana dashboard's queries.

`promtool test rules` compares annotations too; they are templates of prose, so each alert's firing is
tested on a copy of the rules without them, and the annotations are checked apart (present, and valid
templates by `promtool check rules`). promtool reads YAML, of which JSON is a subset: the copies are JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ship_support import DEPLOY, load_yaml, require

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
# Every metric docker-enforcer exposes (enforcer/report/metrics.py), as Prometheus names its series.
METRICS = {
    "containers_stopped_total", "docker_enforcer_detections_total", "docker_enforcer_actions_total",
    "docker_enforcer_rule_errors_total", "docker_enforcer_whitelist_rule_errors_total",
    "docker_enforcer_trigger_errors_total", "docker_enforcer_trigger_dropped_total", "docker_enforcer_checks_total",
    "docker_enforcer_sweep_duration_seconds_bucket", "docker_enforcer_sweep_duration_seconds_sum",
    "docker_enforcer_sweep_duration_seconds_count", "docker_enforcer_sweep_failures_total",
    "docker_enforcer_last_sweep_timestamp_seconds", "docker_enforcer_event_to_action_seconds_bucket",
    "docker_enforcer_event_to_action_seconds_sum", "docker_enforcer_event_to_action_seconds_count",
    "docker_enforcer_event_stream_connected", "docker_enforcer_event_stream_reconnects_total",
    "docker_enforcer_rule_reloads_total", "docker_enforcer_rule_reload_errors_total",
    "docker_enforcer_running_containers", "docker_enforcer_preventions_total",
    "docker_enforcer_prevention_race_lost_total", "docker_enforcer_build_info",
    "docker_enforcer_enforcement_held", "up",
}  # fmt: skip
NODE = {"job": "docker-enforcer", "instance": "node-1"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    require(found is not None, "promtool is missing (apt-get install prometheus)")
    assert found is not None
    return subprocess.run([found, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    selector = ", ".join(f'{k}="{v}"' for k, v in {**NODE, **labels}.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def fires(alert: str, at: str, inputs: list[dict[str, str]], **labels: str) -> dict[str, Any]:
    """A promtool test: with `inputs`, `alert` fires at `at` (labels: the host's, the rule's and these)."""
    return _case(alert, at, inputs, [{"exp_labels": {**NODE, **labels}}])


def quiet(alert: str, at: str, inputs: list[dict[str, str]]) -> dict[str, Any]:
    return _case(alert, at, inputs, [])


def _case(
    alert: str, at: str, inputs: list[dict[str, str]], expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
    }


def cases() -> list[dict[str, Any]]:
    crit, warn = {"severity": "critical"}, {"severity": "warning"}
    return [
        fires("DockerEnforcerDown", "5m", [series("up", "1 1 0x10")], **crit),
        quiet("DockerEnforcerDown", "5m", [series("up", "1x10")]),
        _case("DockerEnforcerAbsent", "15m", [series("up", "0x20")], [{"exp_labels": crit}]),
        quiet("DockerEnforcerAbsent", "15m", [series("up", "1x20")]),
        fires(
            "DockerEnforcerEventStreamDisconnected", "40m",
            [series("docker_enforcer_event_stream_connected", "1x30 0x20")], **crit,
        ),
        # An enforcer without RUN_START_EVENTS never connects: no alert.
        quiet("DockerEnforcerEventStreamDisconnected", "40m", [series("docker_enforcer_event_stream_connected", "0x60")]),
        fires("DockerEnforcerEventStreamFlapping", "20m", [series("docker_enforcer_event_stream_reconnects_total", "0+1x30")], **warn),
        quiet("DockerEnforcerEventStreamFlapping", "20m", [series("docker_enforcer_event_stream_reconnects_total", "0 1 2x30")]),
        fires("DockerEnforcerSweepsFailing", "30m", [series("docker_enforcer_sweep_failures_total", "0x10 1 2 3x30")], **warn),
        quiet("DockerEnforcerSweepsFailing", "30m", [series("docker_enforcer_sweep_failures_total", "0x10 1x30")]),
        fires("DockerEnforcerSweepsLate", "45m", [series("docker_enforcer_last_sweep_timestamp_seconds", "60x60")], **warn),
        quiet("DockerEnforcerSweepsLate", "45m", [series("docker_enforcer_last_sweep_timestamp_seconds", "0x60")]),
        quiet("DockerEnforcerSweepsLate", "45m", [series("docker_enforcer_last_sweep_timestamp_seconds", "0+60x60")]),
        fires(
            "DockerEnforcerSweepsSlow", "90m",
            [series("docker_enforcer_sweep_duration_seconds_sum", "0+90x100"),
             series("docker_enforcer_sweep_duration_seconds_count", "0+1x100")], **warn,
        ),
        quiet(
            "DockerEnforcerSweepsSlow", "90m",
            [series("docker_enforcer_sweep_duration_seconds_sum", "0+2x100"),
             series("docker_enforcer_sweep_duration_seconds_count", "0+1x100")],
        ),
        fires("DockerEnforcerRuleErrors", "10m", [series("docker_enforcer_rule_errors_total", "0x5 1x10", rule="r")], rule="r", **warn),
        quiet("DockerEnforcerRuleErrors", "40m", [series("docker_enforcer_rule_errors_total", "0x5 1x40", rule="r")]),
        fires("DockerEnforcerWhitelistRuleErrors", "10m", [series("docker_enforcer_whitelist_rule_errors_total", "0x5 1x10", whitelist_rule="w")], whitelist_rule="w", **warn),
        quiet("DockerEnforcerWhitelistRuleErrors", "40m", [series("docker_enforcer_whitelist_rule_errors_total", "0x5 1x40", whitelist_rule="w")]),
        fires("DockerEnforcerTriggerErrors", "10m", [series("docker_enforcer_trigger_errors_total", "0x5 3x10", trigger="t")], trigger="t", **warn),
        fires("DockerEnforcerTriggerErrors", "10m", [series("docker_enforcer_trigger_dropped_total", "0x5 2x10", trigger="t")], trigger="t", **warn),
        quiet("DockerEnforcerTriggerErrors", "40m", [series("docker_enforcer_trigger_dropped_total", "0x5 2x40", trigger="t")]),
        # A broken file: the alert holds until a reload succeeds, however long that takes.
        fires(
            "DockerEnforcerRuleReloadFailing", "200m",
            [series("docker_enforcer_rule_reload_errors_total", "0x10 1x200"),
             series("docker_enforcer_rule_reloads_total", "0x210")], **crit,
        ),
        fires(
            "DockerEnforcerRuleReloadFailing", "60m",
            [series("docker_enforcer_rule_reload_errors_total", "0x30 1x40"),
             series("docker_enforcer_rule_reloads_total", "0x10 1x60")], **crit,
        ),
        quiet(
            "DockerEnforcerRuleReloadFailing", "60m",
            [series("docker_enforcer_rule_reload_errors_total", "0x10 1x60"),
             series("docker_enforcer_rule_reloads_total", "0x30 1x40")],
        ),
        fires(
            "DockerEnforcerEnforcementHeld", "10m",
            [series("docker_enforcer_enforcement_held", "0x5 1x10", reason="rules_change"),
             series("docker_enforcer_enforcement_held", "0x20", reason="stop_rate")], reason="rules_change", **crit,
        ),
        quiet(
            "DockerEnforcerEnforcementHeld", "10m",
            [series("docker_enforcer_enforcement_held", "0x20", reason="rules_change"),
             series("docker_enforcer_enforcement_held", "1x3 0x20", reason="stop_rate")],
        ),
        fires(
            "DockerEnforcerActionsFailing", "10m",
            [series("docker_enforcer_actions_total", "0x5 1x10", action="kill", outcome="failed")], action="kill", outcome="failed", **crit,
        ),
        quiet("DockerEnforcerActionsFailing", "10m", [series("docker_enforcer_actions_total", "0+1x20", action="kill", outcome="stopped")]),
        # A host with two detections per 10 minutes that gets 30; a new host with a burst; a busy host.
        fires(
            "DockerEnforcerViolationsSpike", "1510m",
            [series("docker_enforcer_detections_total", "0+0.2x1500 300+3x20", rule="r", mode="KILL", source="event", action="kill")], **warn,
        ),
        fires(
            "DockerEnforcerViolationsSpike", "20m",
            [series("docker_enforcer_detections_total", "0+3x30", rule="r", mode="WARN", source="event", action="would stop")], **warn,
        ),
        quiet(
            "DockerEnforcerViolationsSpike", "1510m",
            [series("docker_enforcer_detections_total", "0+3x1520", rule="r", mode="KILL", source="event", action="kill")],
        ),
    ]  # fmt: skip


def test_prometheus_config_and_rules_pass_promtool_check() -> None:
    result = promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_when_it_should_and_only_then(tmp_path: Path) -> None:
    rules = load_yaml(PROMETHEUS / "alerts.yml")
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    for rule in alerts:
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        del rule["annotations"]
    (tmp_path / "alerts.json").write_text(json.dumps(rules))
    tests = cases()
    tested = {case["alert_rule_test"][0]["alertname"] for case in tests}
    assert tested == {rule["alert"] for rule in alerts}, "every alert needs a test"
    suite = {"rule_files": ["alerts.json"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.json").write_text(json.dumps(suite, indent=1))
    result = promtool("test", "rules", "tests.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_issue_asks_for_these_alerts() -> None:
    rules = load_yaml(PROMETHEUS / "alerts.yml")
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    expected = {
        "DockerEnforcerDown", "DockerEnforcerEventStreamDisconnected", "DockerEnforcerSweepsFailing",
        "DockerEnforcerSweepsLate", "DockerEnforcerSweepsSlow", "DockerEnforcerRuleErrors",
        "DockerEnforcerRuleReloadFailing", "DockerEnforcerViolationsSpike",
    }  # fmt: skip
    assert expected <= names


def test_scrape_config_discovers_swarm_tasks_of_the_stack() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "docker-enforcer")
    assert job["dockerswarm_sd_configs"][0]["role"] == "tasks"
    keeps = {
        tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"
    }
    assert keeps[("__meta_dockerswarm_service_label_prometheus_scrape",)] == "true"
    stack = (DEPLOY / "stack.yml").read_text()
    assert 'prometheus.scrape: "true"' in stack and 'prometheus.port: "8888"' in stack
    assert config["rule_files"] == ["alerts.yml"]


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def test_dashboard_queries_use_only_real_metrics_and_are_valid_promql(tmp_path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    titles = " ".join(panel["title"].lower() for panel in board["panels"])
    for subject in (
        "detections by rule",
        "detections by host",
        "actions",
        "latency",
        "sweep duration",
        "health",
    ):
        assert subject in titles, subject
    queries = dashboard_queries()
    assert queries
    used = set()
    for expr in queries:
        used |= {name for name in re.findall(r"[a-z_:][a-z0-9_:]*", expr) if name in METRICS}
        for name in re.findall(r"\b(?:docker_enforcer_[a-z0-9_]+|containers_[a-z_]+)", expr):
            assert name in METRICS, f"{name} in {expr!r} is no metric of docker-enforcer"
    assert {"docker_enforcer_detections_total", "docker_enforcer_actions_total", "up"} <= used
    # Each query parses: as the expression of a recording rule, with the dashboard's variables filled in.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m").replace("$__range", "1d").replace("$instance", ".*").replace("$job", ".*")}
        for i, expr in enumerate(queries)
    ]}]}  # fmt: skip
    (tmp_path / "dashboard-rules.json").write_text(json.dumps(rules))
    result = promtool("check", "rules", "dashboard-rules.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variable", ["job", "instance"])
def test_dashboard_filters_by_job_and_host(variable: str) -> None:
    board = json.loads(DASHBOARD.read_text())
    assert variable in {v["name"] for v in board["templating"]["list"]}
