"""Rule errors and whitelist-lambda errors counted and logged: at WARNING the first time a rule (or lambda)
fails on a container under a rules version, at DEBUG after that (every sweep would repeat it). Thread-safe;
bounded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from enforcer.facts.container import Container
from enforcer.judge.verdict import Verdict
from enforcer.report.metrics import Metrics

# The checks' logger: the lines users filter on (`enforcer.pipeline: rule error: ...`) stay where they were.
log = logging.getLogger("enforcer.pipeline")
SEEN_LIMIT = 10_000


class ErrorLog:
    def __init__(self, metrics: Metrics, limit: int = SEEN_LIMIT) -> None:
        self._metrics = metrics
        self._limit = limit
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def note(self, verdict: Verdict, version: str) -> None:
        """Count and log the errors of one judgement under the rules version `version`."""
        for error in verdict.errors:
            self._metrics.rule_errors.labels(rule=error.rule).inc()
            self._log("rule", error.rule, error.error, verdict.subject, version)
        for failure in verdict.whitelist_errors:
            self._metrics.whitelist_rule_errors.labels(whitelist_rule=failure.whitelist_rule).inc()
            self._log("whitelist rule", failure.whitelist_rule, failure.error, verdict.subject, version)

    def _log(self, kind: str, name: str, error: str, container: Container, version: str) -> None:
        first = self.first_time((kind, name, container.cid, version))
        log.log(logging.WARNING if first else logging.DEBUG, "%s error: %s on container %s (%s): %s", kind, name,
                container.name, container.short_id, error)  # fmt: skip

    def first_time(self, key: tuple[str, ...]) -> bool:
        """True the first time `key` is seen (among the latest SEEN_LIMIT keys)."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True
