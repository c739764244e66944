"""The blast-radius guard at work: each rules version loaded in KILL mode (at start, on SIGHUP, on a file
change) is judged against the running containers before it is put in force (the decision: judge/guard.py).

At start there is no version in force yet: the first is compared with nothing enforced, so a fresh start with
a rules file that would stop 200 running containers is held like a reload that would. A version that cannot
be judged (the engine does not answer the listing) is held too, and judged again on the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from enforcer.dockerhost.errors import EngineError
from enforcer.facts.container import Container
from enforcer.judge import guard
from enforcer.judge.judge import JudgeOptions
from enforcer.judge.policy import Policy
from enforcer.settings import Mode, Settings

log = logging.getLogger("enforcer.guard")
NAMED = 5  # containers named in the log line of a hold


class BlastRadiusGuard:
    """Vets rules versions against the running containers (`running`: their params and position)."""

    def __init__(
        self, settings: Settings, running: Callable[[], list[Container]], options: JudgeOptions
    ) -> None:
        self.settings = settings
        self.running = running
        self.options = options

    def vet(self, enforcing: Policy, candidate: Policy, reason: str) -> Policy:
        """The policy to put in force: `candidate`, or `enforcing` carrying a hold of it (logged)."""
        if self.settings.mode is not Mode.KILL or candidate.version == enforcing.version:
            return candidate
        limit = guard.limit_of(candidate, self.settings.max_new_stops)
        try:
            containers = self.running()
        except EngineError as exc:
            log.error(
                "rules version %s (%s) held: the running containers could not be listed to judge it (%s); the "
                "rules in force stay enforced, and it is judged again shortly", candidate.version[:12], reason,
                exc,
            )  # fmt: skip
            return guard.holding(enforcing, candidate, None, limit)
        chosen, stopped = guard.vet(
            enforcing, candidate, containers, self.options, self.settings.mode, self.settings.max_new_stops
        )
        if chosen.held is None:
            if stopped:
                log.info("rules version %s (%s) stops %d running container(s) the previous rules left alone "
                         "(limit %d)", candidate.version[:12], reason, len(stopped), limit)  # fmt: skip
            return chosen
        names = ", ".join(c.name for c in stopped[:NAMED]) + (", ..." if len(stopped) > NAMED else "")
        log.error(
            "rules version %s (%s) held: it would stop %d running container(s) that the rules in force leave "
            "alone (%s), more than its limit of %d; the rules in force (%s) stay enforced and the new rules "
            "only record until a version within the limit is loaded. A deliberate change says so with "
            "`max_new_stops = N` in the rules file (or MAX_NEW_STOPS); `docker-enforcer audit --rules NEW "
            "--compare OLD` lists the containers",
            candidate.version[:12], reason, len(stopped), names, limit, _name(enforcing),
            extra={"held_version": candidate.version, "new_stops": len(stopped), "limit": limit},
        )  # fmt: skip
        return chosen


def _name(policy: Policy) -> str:
    return policy.version[:12] if policy.sources else "nothing: the first version since start"
