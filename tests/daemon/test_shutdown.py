"""SIGTERM while the daemon is busy: a sweep over slow rules, a round of samples, a notifier retrying and one
hung, the trigger lanes full. The daemon stops promptly with status 0 and logs no traceback."""

from __future__ import annotations

import signal
import time

from support.daemon import Containers, DaemonFactory, Enforcer, wait_until
from support.receiver import Receiver

BUSY_RULES = """
import time

def slow(c):
    time.sleep(0.3)
    return c.name.startswith("bad")

rules = [
    {"name": "slow to judge", "rule": slow},
    {"name": "held an hour", "rule": lambda c: c.name.startswith("bad"), "for": "1h"},
    {"name": "graced", "rule": lambda c: (time.sleep(0.2), c.name.startswith("bad"))[1], "grace": "1h"},
]
"""
NOTIFIERS = """
from enforcer import notify

triggers = [
    notify.webhook({failing!r}, name="failing", retries=20),
    notify.webhook({hung!r}, name="hangs", timeout_s=60, retries=0),
]
"""
BUSY = {
    "MODE": "WARN",
    "RUN_PERIODIC": "true",
    "CHECK_INTERVAL_S": "1",
    "SAMPLE_INTERVAL_S": "1",
    "LOG_LEVEL": "DEBUG",
}


def count(enforcer: Enforcer, fragment: str) -> int:
    return sum(1 for m in enforcer.messages() if fragment in m)


def test_sigterm_mid_work_exits_0_promptly_without_a_traceback(
    daemon: DaemonFactory, containers: Containers
) -> None:
    with Receiver(fail_first=10_000) as failing, Receiver(hang=True) as hung:
        triggers = NOTIFIERS.format(failing=failing.url, hung=hung.url)
        enforcer = daemon(BUSY_RULES, triggers=triggers, **BUSY)
        for n in range(6):
            containers.run(f"bad-{n}")
        # Work in flight: the failing receiver retried, the hung one holding a request, sweeps and rounds.
        assert wait_until(lambda: len(failing.posts) >= 2 and hung.posts, 20), enforcer.tail()
        assert wait_until(lambda: count(enforcer, "sampled ") >= 2 and count(enforcer, "sweep of") >= 2, 20)
        time.sleep(0.5)  # into the next sweep and round
        started = time.monotonic()
        enforcer.signal(signal.SIGTERM)
        assert enforcer.proc.wait(15) == 0, enforcer.tail()
        took = time.monotonic() - started
        hung.release.set()
    log = enforcer.log_text()
    assert "Traceback" not in log, enforcer.tail(80)
    assert "cannot schedule new futures" not in log
    assert enforcer.messages()[-1] == "stopped"
    assert took < 5, took
