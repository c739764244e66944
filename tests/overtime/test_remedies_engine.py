"""The gentler actions against the isolated engine's own answers: a pause of a paused container (409), of a
stopped one, a limit of a removed one; each a clear outcome, never an exception."""

from __future__ import annotations

import threading

from support.engine import Engine, RunContainer

from enforcer.act import remedies
from enforcer.act.actions import Actuator
from enforcer.dockerhost.client import connect
from enforcer.judge.rules import Limits
from enforcer.record.model import Outcome


def test_engine_refusals_of_pause_and_limit_are_outcomes(
    clean_engine: Engine, run_container: RunContainer
) -> None:
    host = connect(clean_engine.url)
    try:
        actuator = Actuator(host, threading.Event())
        cid = run_container("paused-twice")
        assert remedies.pause(actuator, cid).outcome is Outcome.PAUSED
        again = remedies.pause(actuator, cid)  # the engine answers 409
        assert (again.outcome, again.outcome_detail) == (Outcome.PAUSED, "was paused already")

        stopped = run_container("stopped")
        host.kill(stopped)
        clean_engine.client().containers.get(stopped).wait(timeout=10)
        assert remedies.pause(actuator, stopped).outcome is Outcome.ALREADY_GONE

        removed = run_container("removed")
        params = host.inspect(removed)
        clean_engine.client().containers.get(removed).remove(force=True)
        limits = Limits(memory_bytes=64 * 2**20)
        assert remedies.limit(actuator, removed, params, limits).outcome is Outcome.ALREADY_GONE
        assert remedies.pause(actuator, removed).outcome is Outcome.ALREADY_GONE
    finally:
        host.close()
