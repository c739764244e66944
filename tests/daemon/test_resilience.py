"""The daemon under trouble: engine restarts and outages, user triggers that fail or hang, stop signals."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from support.daemon import STARTED, Containers, DaemonFactory, Enforcer, wait_until
from support.engine import Engine

KILL_WITHIN_S = 3.0
IDLE_CPU_S = 0.5  # CPU the daemon may use in IDLE_WINDOW_S while it waits for the engine (a spin uses ~all)
IDLE_WINDOW_S = 5.0

SLOW_AND_BROKEN_TRIGGERS = """
    import time

    def explode(verdict):
        raise RuntimeError("trigger exploded")

    triggers = [
        {"name": "explodes", "trigger": explode},
        {"name": "sleeps", "trigger": lambda verdict: time.sleep(10)},
    ]
    """


HUNG_AND_RECORDING_TRIGGERS = """
    import threading

    never = threading.Event()

    def record(verdict):
        with open({path!r}, "a") as f:
            f.write(verdict.subject.name + "\\n")

    triggers = [{{"name": f"hangs-{{n}}", "trigger": lambda verdict: never.wait()}} for n in range(4)]
    triggers.append({{"name": "records", "trigger": record}})
    """


def engine_errors(enforcer: Enforcer) -> list[str]:
    """The ERROR lines about the engine being unreachable."""
    return [
        str(r["message"])
        for r in enforcer.records()
        if r.get("level") == "ERROR" and ("unreachable" in r["message"] or "stream lost" in r["message"])
    ]


def test_raising_and_slow_triggers_leave_kills_unaffected(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(triggers=SLOW_AND_BROKEN_TRIGGERS)
    # Six violators one after another: the sleeping trigger falls behind, the raising one goes on.
    for n in range(6):
        bad = containers.run(f"bad-{n}")
        assert containers.wait_stopped(bad, KILL_WITHIN_S), f"bad-{n}"
        assert containers.running_window(bad) < 2.0, f"bad-{n}"
        assert enforcer.wait_for_violation(f"bad-{n}")["outcome"] == "stopped"

    failure = enforcer.wait_for_message("Trigger 'explodes' failed for bad-0")
    assert failure["level"] == "ERROR" and "RuntimeError: trigger exploded" in failure["message"]
    assert enforcer.alive()
    started = time.monotonic()
    assert enforcer.stop(timeout=8) == 0  # with triggers still asleep
    assert time.monotonic() - started < 5


def test_hung_triggers_delay_no_other_trigger(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    # Four triggers that never return once took every shared worker: no trigger ran again after them.
    recorded = tmp_path / "recorded.txt"
    enforcer = daemon(triggers=HUNG_AND_RECORDING_TRIGGERS.format(path=str(recorded)))
    started = time.monotonic()
    for n in range(8):
        containers.run(f"bad-{n}")
    names = {f"bad-{n}" for n in range(8)}
    got = wait_until(lambda: recorded.exists() and set(recorded.read_text().split()) == names, 10)
    assert got, (recorded.read_text() if recorded.exists() else "nothing recorded") + enforcer.tail()
    assert time.monotonic() - started < 8  # the 8th record once came ~20 s after, behind one 10 s trigger
    assert enforcer.alive()
    assert enforcer.stop(timeout=8) == 0


def test_engine_restart_under_the_daemon(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon()
    always = containers.run("bad-always", host_config={"restart_policy": {"Name": "always"}})
    assert containers.wait_stopped(always, KILL_WITHIN_S)
    assert wait_until(lambda: containers.inspect(always)["HostConfig"]["RestartPolicy"]["Name"] == "no", 5)

    engine.restart()  # would start "always" containers again, killed ones included
    back = time.monotonic()
    bad = containers.run("bad-after-restart")

    assert containers.wait_stopped(bad, 5), enforcer.tail()
    assert containers.running_window(bad) < 5
    assert enforcer.wait_for_violation("bad-after-restart")["outcome"] == "stopped"
    time.sleep(max(0.0, back + 5 - time.monotonic()))
    state = containers.inspect(always)["State"]
    assert not state["Running"] and not state["Restarting"]
    assert enforcer.alive()


def test_engine_unreachable_at_startup_waits_quietly_then_enforces(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    engine.stop()
    assert not engine.socket.exists()  # the daemon starts against a socket that does not exist (yet)
    enforcer = daemon(wait=STARTED)
    enforcer.wait_for_message("docker engine unreachable")
    time.sleep(1)
    cpu_before = enforcer.cpu_seconds()
    time.sleep(IDLE_WINDOW_S)
    assert enforcer.cpu_seconds() - cpu_before < IDLE_CPU_S
    assert len(engine_errors(enforcer)) == 1  # logged once, not once per attempt
    assert enforcer.alive()

    engine.start()
    bad = containers.run("bad-late")
    assert containers.wait_stopped(bad, 15), enforcer.tail()  # the connect backoff is capped at 10 s
    assert enforcer.wait_for_violation("bad-late")["outcome"] == "stopped"


def test_engine_outage_while_running_does_not_spin(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon()
    engine.stop()
    assert wait_until(lambda: engine_errors(enforcer), 10), enforcer.tail()
    time.sleep(0.5)
    cpu_before = enforcer.cpu_seconds()
    time.sleep(IDLE_WINDOW_S)
    assert enforcer.cpu_seconds() - cpu_before < IDLE_CPU_S
    errors = [r for r in enforcer.records() if r.get("level") == "ERROR"]
    assert len(errors) <= 2, errors  # once for the stream, at most once more from a health check

    engine.start()
    bad = containers.run("bad-after-outage")
    assert containers.wait_stopped(bad, 10), (
        enforcer.tail()
    )  # the stream's reconnect backoff is capped at 5 s
    enforcer.wait_for_message("event stream reconnected")


def test_sigterm_exits_0_within_5_s(daemon: DaemonFactory, containers: Containers) -> None:
    enforcer = daemon()
    containers.run("bad-1")
    enforcer.wait_for_violation("bad-1")
    started = time.monotonic()
    enforcer.signal(signal.SIGTERM)
    assert enforcer.proc.wait(8) == 0
    assert time.monotonic() - started < 5
    assert enforcer.messages()[-1] == "stopped"


def test_sigterm_while_waiting_for_the_engine_exits_0(daemon: DaemonFactory, tmp_path: Path) -> None:
    enforcer = daemon(wait=STARTED, DOCKER_SOCKET=f"unix://{tmp_path}/missing.sock")
    enforcer.wait_for_message("docker engine unreachable")
    started = time.monotonic()
    enforcer.signal(signal.SIGTERM)
    assert enforcer.proc.wait(8) == 0
    assert time.monotonic() - started < 5
