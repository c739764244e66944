"""Reloading the rules, whitelist and triggers files on SIGHUP and when they change on disk.

The new files are validated first: a broken file keeps the previous policy in force, with an error logged
and counted. Each successful load logs the rules version (sha256).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from enforcer.judge.exceptions import RuleException
from enforcer.judge.loader import RulesFileError, resolve
from enforcer.judge.policy import load_policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings

log = logging.getLogger("enforcer.reload")
KINDS = ("rules", "whitelist_rules", "triggers")


def _fingerprint(settings: Settings) -> tuple[tuple[str, int, int], ...]:
    explicit = {
        "rules": settings.files.rules,
        "whitelist_rules": settings.files.whitelist_rules,
        "triggers": settings.files.triggers,
    }
    out = []
    for kind in KINDS:
        try:
            path = resolve(kind, explicit[kind])
            stat = path.stat()
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        except (RulesFileError, OSError):
            out.append((f"missing {kind}", 0, 0))
    return tuple(out)


class PolicyReloader:
    def __init__(
        self, settings: Settings, in_force: PolicyInForce, metrics: Metrics, cwd: Path | None = None
    ) -> None:
        self.settings = settings
        self.in_force = in_force
        self.metrics = metrics
        self.cwd = cwd
        self._seen = _fingerprint(settings)
        self._expired: set[tuple[str, RuleException]] = set()  # (rules version, exception) already told

    def poll(self, now: datetime | None = None) -> None:
        """Reload when any of the files changed since the last look, and tell of exceptions that ran out
        (called every few seconds)."""
        fingerprint = _fingerprint(self.settings)
        if fingerprint != self._seen:
            self._seen = fingerprint
            self.reload("a file changed on disk")
        self.note_expired(now or datetime.now(UTC))

    def note_expired(self, now: datetime) -> None:
        """Log and count, once per rules version, each exception of the policy in force that has run out."""
        policy = self.in_force.get()
        for exception in policy.whitelist.exceptions:
            key = (policy.version, exception)
            if exception.active(now) or key in self._expired:
                continue
            self._expired.add(key)
            self.metrics.exceptions_expired.inc()
            log.warning("%s has run out: it no longer exempts anything (rules version %s)", exception,
                        policy.version[:12])  # fmt: skip

    def reload(self, reason: str) -> bool:
        try:
            policy = load_policy(self.settings, self.cwd)
        except RulesFileError as exc:
            self.metrics.rule_reload_errors.inc()
            log.error("reload (%s) refused, the previous rules stay in force: %s", reason, exc)
            return False
        old = self.in_force.replace(policy).version
        self.metrics.rule_reloads.inc()
        if policy.version != old:
            log.info(
                "rules reloaded (%s): %d rules, version %s", reason, len(policy.rules), policy.version[:12]
            )
        return True
