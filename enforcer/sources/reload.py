"""Reloading the rules, whitelist and triggers files on SIGHUP and when they change on disk.

The new files are validated first: a broken file keeps the previous policy in force, with an error logged
and counted. Each successful load logs the rules version (sha256). Once the engine answers (`guard`), each
version is vetted by the blast-radius guard before it is put in force (see sources/guard.py).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from enforcer.judge.exceptions import RuleException
from enforcer.judge.loader import RulesFileError, resolve
from enforcer.judge.policy import NOTHING, Policy, load_policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.sources.guard import BlastRadiusGuard

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
        self._guard: BlastRadiusGuard | None = None
        self._putting = (
            threading.Lock()
        )  # SIGHUP (main thread) and the poll (scheduler) put in force one at a time

    def guard(self, blast_radius: BlastRadiusGuard) -> None:
        """From now on, vet each version before it is put in force; the one loaded at start first, against
        nothing enforced."""
        self._guard = blast_radius
        current = self.in_force.get()
        self._put(current.held.policy if current.held else current, NOTHING, "start")

    def poll(self, now: datetime | None = None) -> None:
        """Reload when any of the files changed since the last look, and tell of exceptions that ran out
        (called every few seconds)."""
        fingerprint = _fingerprint(self.settings)
        if fingerprint != self._seen:
            self._seen = fingerprint
            self.reload("a file changed on disk")
        held = self.in_force.get().held
        if held is not None and held.new_stops is None:  # not judged yet: the engine did not answer
            self._put(held.policy, self._enforcing(), "judged again")
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
        try:
            self._put(policy, self._enforcing(), reason)
        except Exception:  # noqa: BLE001 - a reload (SIGHUP runs it on the main loop) never ends the daemon
            self.metrics.rule_reload_errors.inc()
            log.exception("reload (%s) failed, the previous rules stay in force", reason)
            return False
        self.metrics.rule_reloads.inc()
        return True

    def _enforcing(self) -> Policy:
        """The policy whose rules are enforced now (without the version it may hold back)."""
        return replace(self.in_force.get(), held=None)

    def _put(self, policy: Policy, enforcing: Policy, reason: str) -> None:
        """Put `policy` in force, or, when the guard holds it, keep `enforcing` in force carrying the hold."""
        with self._putting:
            chosen = policy if self._guard is None else self._guard.vet(enforcing, policy, reason)
            old = self.in_force.replace(chosen)
        if chosen.held is None and old.held is not None:
            log.warning("the hold of rules version %s ends: version %s is in force (%s)",
                        old.held.policy.version[:12], policy.version[:12], reason)  # fmt: skip
        if chosen.held is None and policy.version != old.version:
            log.info(
                "rules reloaded (%s): %d rules, version %s", reason, len(policy.rules), policy.version[:12]
            )
