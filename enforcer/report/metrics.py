"""Every Prometheus metric of docker-enforcer, in one registry per daemon (no globals).

Labels never carry container ids: their cardinality would grow without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from enforcer import __version__

PREFIX = "docker_enforcer_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SWEEP_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _DistinctDetected(Collector):
    """`containers_stopped_total` as the original exposed it: the number of distinct detected containers."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "containers_stopped",
            "Distinct containers detected as violators (the original's metric).",
            value=self._count(),
        )


class _Episodes(Collector):
    """`docker_enforcer_episodes{phase}`: open episodes of rules held over time, by phase, at scrape time."""

    def __init__(self, counts: Callable[[], Mapping[Any, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            PREFIX + "episodes", "Open episodes of rules held over time, by phase.", labels=["phase"]
        )
        for phase, count in self._counts().items():
            family.add_metric([str(phase)], count)
        yield family


class Metrics:
    def __init__(self, mode: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.detections = Counter(
            PREFIX + "detections", "Violations detected.", ["rule", "mode", "source", "action"], registry=r
        )
        self.actions = Counter(
            PREFIX + "actions", "Actions taken by outcome.", ["action", "outcome"], registry=r
        )
        self.rule_errors = Counter(PREFIX + "rule_errors", "Rules that raised.", ["rule"], registry=r)
        self.whitelist_rule_errors = Counter(
            PREFIX + "whitelist_rule_errors",
            "Whitelist lambdas that raised (each exempted nothing).",
            ["whitelist_rule"],
            registry=r,
        )
        self.trigger_errors = Counter(
            PREFIX + "trigger_errors",
            "Trigger calls that raised, or notifications given up after their retries.",
            ["trigger"],
            registry=r,
        )
        self.trigger_dropped = Counter(
            PREFIX + "trigger_dropped",
            "Trigger calls dropped, oldest first, from a trigger's full queue (the trigger is slow or hangs).",
            ["trigger"],
            registry=r,
        )
        self.exec_checks_dropped = Counter(
            PREFIX + "exec_checks_dropped",
            "Exec checks dropped because too many were waiting already (a flood of docker exec).",
            registry=r,
        )
        self.checks = Counter(PREFIX + "checks", "Container checks by source.", ["source"], registry=r)
        self.sweep_duration = Histogram(
            PREFIX + "sweep_duration_seconds", "Duration of full sweeps.", buckets=SWEEP_BUCKETS, registry=r
        )
        self.sweep_failures = Counter(PREFIX + "sweep_failures", "Sweeps that could not finish.", registry=r)
        self.last_sweep = Gauge(
            PREFIX + "last_sweep_timestamp_seconds",
            "When the last full sweep finished (unix time).",
            registry=r,
        )
        self.event_to_action = Histogram(
            PREFIX + "event_to_action_seconds",
            "From the engine's event time to the action on the violator.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_connected = Gauge(
            PREFIX + "event_stream_connected", "1 while the event stream is connected.", registry=r
        )
        self.reconnects = Counter(PREFIX + "event_stream_reconnects", "Event stream reconnects.", registry=r)
        self.rule_reloads = Counter(
            PREFIX + "rule_reloads", "Successful reloads of the rules files.", registry=r
        )
        self.exceptions_expired = Counter(
            PREFIX + "exceptions_expired",
            "Exceptions of the rules file in force whose time ran out: they no longer exempt.",
            registry=r,
        )
        self.rule_reload_errors = Counter(
            PREFIX + "rule_reload_errors", "Reloads refused because a file was broken.", registry=r
        )
        self.running_containers = Gauge(
            PREFIX + "running_containers", "Running containers seen by the last sweep.", registry=r
        )
        self.preventions = Counter(
            PREFIX + "preventions", "Violators removed at create time, before they started.", registry=r
        )
        self.race_lost = Counter(
            PREFIX + "prevention_race_lost",
            "Violators of preventing rules that started anyway (stopped by the start path).",
            registry=r,
        )
        self.enforcement_held = Gauge(
            PREFIX + "enforcement_held",
            "1 while a safeguard holds enforcement back: a rules version held by the blast-radius guard "
            '(reason="rules_change") or actions held by the stop-rate breaker (reason="stop_rate").',
            ["reason"],
            registry=r,
        )
        self.build_info = Gauge(PREFIX + "build_info", "Version and mode.", ["version", "mode"], registry=r)
        self.build_info.labels(version=__version__, mode=mode).set(1)

    def count_distinct_detected(self, count: Callable[[], int]) -> None:
        """Expose `containers_stopped_total` from the detections store."""
        self.registry.register(_DistinctDetected(count))

    def count_episodes(self, counts: Callable[[], Mapping[Any, int]]) -> None:
        """Expose `docker_enforcer_episodes{phase}` from the episode store."""
        self.registry.register(_Episodes(counts))

    def watch_holds(self, rules_change: Callable[[], bool], stop_rate: Callable[[], bool]) -> None:
        """`enforcement_held`, read at scrape time from the policy in force and the stop-rate breaker."""
        self.enforcement_held.labels(reason="rules_change").set_function(lambda: float(rules_change()))
        self.enforcement_held.labels(reason="stop_rate").set_function(lambda: float(stop_rate()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
