"""A rule's "action": kill (today's), stop (graceful), pause, or limit in place; what WARN mode would do.

Every outcome is a `Done` value: a pause of a paused container is no failure (the engine answers 409), a
container gone is ALREADY_GONE, and a limit records the old values in `outcome_detail`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from enforcer.act.actions import Actuator, Done, restart_policy_of
from enforcer.dockerhost.errors import ContainerGone, EngineError
from enforcer.judge.rules import Limits, Remedy, Rule
from enforcer.record.model import Action, Outcome
from enforcer.units import text_size

log = logging.getLogger(__name__)
GRACEFUL_STOP_S = 10  # "action": "stop" without STOP_TIMEOUT_S
STRENGTH = (Remedy.KILL, Remedy.STOP, Remedy.PAUSE, Remedy.LIMIT)  # the first one wins among several rules
WOULD = {
    Remedy.KILL: Action.WOULD_STOP,
    Remedy.STOP: Action.WOULD_STOP,
    Remedy.PAUSE: Action.WOULD_PAUSE,
    Remedy.LIMIT: Action.WOULD_LIMIT,
}
PLANNED = {
    Remedy.KILL: Action.KILL,
    Remedy.STOP: Action.STOP,
    Remedy.PAUSE: Action.PAUSE,
    Remedy.LIMIT: Action.LIMIT,
}


def strongest(rules: Iterable[Rule]) -> Rule:
    """Of several violated rules, the one whose action goes furthest (a kill before a pause before a limit)."""
    return min(rules, key=lambda rule: STRENGTH.index(rule.action))


def would(rule: Rule, params: Mapping[str, Any]) -> Done:
    """What WARN mode records for the rule: the action it would have taken."""
    return Done(WOULD[rule.action], Outcome.RECORDED, restart_policy_of(params))


def apply(actuator: Actuator, rule: Rule, cid: str, params: Mapping[str, Any]) -> Done:
    """Run the rule's action on a running violator."""
    if rule.action is Remedy.KILL:
        return actuator.stop(cid, params)
    if rule.action is Remedy.STOP:
        return actuator.stop(cid, params, actuator.stop_timeout_s or GRACEFUL_STOP_S)
    if rule.action is Remedy.PAUSE:
        return pause(actuator, cid)
    assert rule.limits is not None  # the loader requires "limits" with "action": "limit"
    return limit(actuator, cid, params, rule.limits)


def pause(actuator: Actuator, cid: str) -> Done:
    try:
        actuator.host.pause(cid)
    except ContainerGone:
        return Done(Action.PAUSE, Outcome.ALREADY_GONE)
    except EngineError as exc:
        if "already paused" in str(exc):
            return Done(Action.PAUSE, Outcome.PAUSED, outcome_detail="was paused already")
        if "not running" in str(exc):
            return Done(Action.PAUSE, Outcome.ALREADY_GONE)
        return Done(Action.PAUSE, Outcome.FAILED, outcome_detail=str(exc))
    return Done(Action.PAUSE, Outcome.PAUSED)


def limit(actuator: Actuator, cid: str, params: Mapping[str, Any], limits: Limits) -> Done:
    """Apply the limits by a container update, left running; the detail names old and new values."""
    host_config = params.get("HostConfig") or {}
    old_memory = int(host_config.get("Memory") or 0)
    old_swap = int(host_config.get("MemorySwap") or 0)
    swap = None
    if limits.memory_bytes is not None:
        # The engine refuses a memory above a set MemorySwap, and one without it when swap is unset:
        # unlimited swap stays unlimited, otherwise twice the memory (what `docker run -m` gives).
        swap = -1 if old_swap == -1 else 2 * limits.memory_bytes
    try:
        actuator.host.update_limits(cid, limits.memory_bytes, swap, limits.nano_cpus, limits.pids)
    except ContainerGone:
        return Done(Action.LIMIT, Outcome.ALREADY_GONE)
    except EngineError as exc:
        return Done(Action.LIMIT, Outcome.FAILED, outcome_detail=str(exc))
    changes = []
    if limits.memory_bytes is not None:
        changes.append(f"memory {text_size(old_memory)} -> {text_size(limits.memory_bytes)}")
    if limits.nano_cpus is not None:
        old_cpus = int(host_config.get("NanoCpus") or 0) / 1e9
        changes.append(
            f"cpus {old_cpus:g} -> {limits.nano_cpus / 1e9:g}".replace("cpus 0 ", "cpus unlimited ")
        )
    if limits.pids is not None:
        old_pids = host_config.get("PidsLimit") or 0
        changes.append(f"pids {old_pids if old_pids > 0 else 'unlimited'} -> {limits.pids}")
    return Done(Action.LIMIT, Outcome.LIMITED, outcome_detail=", ".join(changes))
