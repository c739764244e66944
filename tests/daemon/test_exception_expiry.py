"""An exception that runs out stops exempting in the running daemon, without a restart or a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from support.daemon import BAD_NAME_RULES, Containers, DaemonFactory

# Long enough for the daemon to start and judge both containers on a loaded CI machine before the end.
EXEMPT_FOR_S = 30


def test_a_container_exempt_until_its_exception_runs_out_is_then_stopped(
    daemon: DaemonFactory, containers: Containers
) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=EXEMPT_FOR_S)).isoformat(timespec="seconds")
    rules = BAD_NAME_RULES + (
        f'exceptions = [{{"rule": "no bad names", "container": "bad-exempt", "until": "{until}", '
        '"reason": "trial", "ticket": "OPS-7"}]\n'
    )
    enforcer = daemon(rules, MODE="KILL", RUN_PERIODIC="true", CHECK_INTERVAL_S="1")
    exempt = containers.run("bad-exempt")
    other = containers.run("bad-other")
    assert containers.wait_stopped(other, 5)  # the exception names one container only
    assert containers.running(exempt)
    enforcer.wait_for_message("has run out", timeout=EXEMPT_FOR_S + 15)
    assert containers.wait_stopped(exempt, 10)  # the next sweep judges it without the exception
    stopped_at = datetime.fromisoformat(containers.inspect(exempt)["State"]["FinishedAt"][:26] + "+00:00")
    assert stopped_at >= datetime.fromisoformat(until)
    (line,) = enforcer.find(lambda r: "has run out" in r["message"])
    assert "OPS-7" in line["message"] and line["level"] == "WARNING"
