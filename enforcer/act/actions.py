"""Acting on a verdict: kill (or stop) a violator, or remove it before it starts; never judge here.

Kills go out at once; only after a kill is the restart policy set to "no", so that nothing delays the
kill yet the engine does not bring the container back after its own restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from enforcer.dockerhost.client import DockerHost
from enforcer.dockerhost.errors import ContainerGone, EngineError
from enforcer.record.model import Action, Outcome
from enforcer.retry import Backoff, retry

log = logging.getLogger(__name__)
KILL_ATTEMPTS = 4


@dataclass(frozen=True)
class Done:
    """What an action did: the action, its outcome (with the reason when it failed) and the restart policy the
    container had."""

    action: Action
    outcome: Outcome
    restart_policy: str | None = None
    outcome_detail: str | None = None


def restart_policy_of(params: Mapping[str, Any]) -> str | None:
    host_config = params.get("HostConfig") or {}
    policy = host_config.get("RestartPolicy") or {}
    return policy.get("Name") or None


class Actuator:
    def __init__(self, host: DockerHost, stop: threading.Event, stop_timeout_s: int = 0) -> None:
        """`stop`: the daemon's stop flag; retries give up (the last error is the outcome) once it is set."""
        self.host = host
        self.stopping = stop
        self.stop_timeout_s = stop_timeout_s

    def stop(self, cid: str, params: Mapping[str, Any], timeout_s: int | None = None) -> Done:
        """Kill (or gracefully stop, with `timeout_s` or STOP_TIMEOUT_S of grace) a running violator, then pin
        its restart policy to "no"."""
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        action = Action.STOP if timeout_s > 0 else Action.KILL
        policy = restart_policy_of(params)
        try:
            retry(
                lambda: self._stop_once(cid, timeout_s),
                (EngineError,),
                self.stopping,
                KILL_ATTEMPTS,
                Backoff(0.05, 1.0),
                unless=(ContainerGone,),
            )
        except ContainerGone:
            self._pin_restart_policy(cid, policy)  # it may exist but not run: keep it from coming back
            return Done(action, Outcome.ALREADY_GONE, policy)
        except EngineError as exc:
            return Done(action, Outcome.FAILED, policy, outcome_detail=str(exc))
        self._pin_restart_policy(cid, policy)
        return Done(action, Outcome.STOPPED, policy)

    def _stop_once(self, cid: str, timeout_s: int) -> None:
        try:
            if timeout_s > 0:
                self.host.stop(cid, timeout_s)
            else:
                self.host.kill(cid)
        except EngineError as exc:
            if _not_running(exc):  # nothing to retry: it stopped by itself or someone else stopped it
                raise ContainerGone(str(exc)) from None
            raise

    def _pin_restart_policy(self, cid: str, policy: str | None) -> None:
        if policy in (None, "no"):
            return
        try:
            self.host.set_restart_policy(cid, "no")
        except ContainerGone:
            pass
        except EngineError as exc:
            log.warning("could not set the restart policy of %s to 'no' (was %r): %s", cid[:12], policy, exc)

    def prevent(self, cid: str, sent: Callable[[], object] | None = None) -> Done | None:
        """Remove a created violator before it can start; None when it started first (left to the start path).

        Not a forced removal: the engine refuses to remove a running container, so a container that won the
        race is never recorded as prevented (a forced removal would kill it, after it ran). `sent` reads the
        answer to a first attempt sent already, unforced (by the create-time path), as `remove` would fail.
        """
        first = [sent] if sent is not None else []
        try:
            retry(
                lambda: self._remove_once(cid, first.pop() if first else None),
                (EngineError,),
                self.stopping,
                KILL_ATTEMPTS,
                Backoff(0.02, 0.5),
                unless=(ContainerGone, _Started),
            )
        except _Started:
            return None
        except ContainerGone:
            return Done(Action.PREVENT, Outcome.ALREADY_GONE)
        except EngineError as exc:
            return Done(Action.PREVENT, Outcome.FAILED, outcome_detail=str(exc))
        return Done(Action.PREVENT, Outcome.PREVENTED)

    def _remove_once(self, cid: str, sent: Callable[[], object] | None) -> None:
        try:
            if sent is not None:
                sent()
            else:
                self.host.remove(cid, force=False)
        except EngineError as exc:
            if "cannot remove a" in str(exc):  # "You cannot remove a running (paused, restarting) container"
                raise _Started(str(exc)) from None
            raise


class _Started(EngineError):
    """The container started before it could be removed."""


def _not_running(exc: EngineError) -> bool:
    return "is not running" in str(exc)
