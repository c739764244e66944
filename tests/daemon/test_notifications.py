"""Issue 14 against the real daemon: notifiers told once per episode, through their own lanes, surviving a
restart; a real Alertmanager; no receiver URL token in the API, the page or the log. Loopback only."""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from support.alertmanager import Alertmanager
from support.daemon import Containers, DaemonFactory, Enforcer, wait_until
from support.receiver import TOKEN, Receiver

SWEEPING = {
    "MODE": "WARN",
    "RUN_PERIODIC": "true",
    "CHECK_INTERVAL_S": "1",
    "OWNER_LABELS": "com.example.owner",
}
NOTIFIERS = """
from enforcer import notify

triggers = [
    notify.webhook({flaky!r}, name="flaky"),
    notify.webhook({hung!r}, name="hangs", timeout_s=60, retries=0),
    notify.slack({slack!r}, name="slack", owners={{"team-a": {team!r}}}),
]
"""
OWNED = {"labels": {"com.example.owner": "team-a"}}


def sweeps(enforcer: Enforcer) -> int:
    return sum(1 for m in enforcer.messages() if m.startswith("sweep of"))


def wait_sweeps(enforcer: Enforcer, count: int) -> None:
    start = sweeps(enforcer)
    assert wait_until(lambda: sweeps(enforcer) >= start + count, 15), enforcer.tail()


def no_token_anywhere(enforcer: Enforcer) -> None:
    assert TOKEN not in enforcer.log_text()
    for path in ("/triggers", "/triggers?structured=1", "/config", "/"):
        for accept in ("application/json", "text/html"):
            request = urllib.request.Request(enforcer.url + path, headers={"Accept": accept})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert TOKEN not in response.read().decode(), (path, accept)


def test_notified_once_per_episode_through_failures_a_hung_receiver_and_a_restart(
    daemon: DaemonFactory, containers: Containers
) -> None:
    with (
        Receiver(fail_first=2) as flaky,
        Receiver(hang=True) as hung,
        Receiver() as slack,
        Receiver() as team,
    ):
        triggers = NOTIFIERS.format(flaky=flaky.url, hung=hung.url, slack=slack.url, team=team.url)
        enforcer = daemon(triggers=triggers, **SWEEPING)
        started = time.monotonic()
        bad = containers.run("bad-notified", **OWNED)
        # The hung receiver holds its own lane only; the flaky one answers on the third attempt.
        assert flaky.wait_for(lambda b: len(b) == 1, 10), enforcer.tail()
        assert time.monotonic() - started < 8
        assert team.wait_for(lambda b: len(b) == 1, 5) and slack.bodies == []  # routed by owner
        body = flaky.bodies[0]
        assert (body["container"], body["owner"], body["mode"], body["phase"], body["ended"]) == (
            "bad-notified", "team-a", "WARN", "recorded", False,
        )  # fmt: skip
        assert body["rules"] == [{"name": "no bad names", "severity": "medium"}]
        assert "bad-notified" in team.bodies[0]["text"]

        wait_sweeps(enforcer, 3)  # three more sweeps over the same violator: nothing more
        assert len(flaky.posts) == 3 and len(flaky.bodies) == 1 and len(team.bodies) == 1

        assert enforcer.stop() == 0  # a restart: the episode is still open, nobody is told again
        again = daemon(triggers=triggers, **SWEEPING)
        wait_sweeps(again, 2)
        assert len(flaky.bodies) == 1 and len(team.bodies) == 1

        containers.api.remove_container(bad, force=True)  # gone: told once that it ended
        assert flaky.wait_for(lambda b: len(b) == 2, 10), again.tail()
        ended = flaky.bodies[1]
        assert (ended["container"], ended["phase"], ended["ended"], ended["reason"]) == (
            "bad-notified", "resolved", True, "gone",
        )  # fmt: skip
        assert team.wait_for(lambda b: len(b) == 2, 5)
        wait_sweeps(again, 2)
        assert len(flaky.bodies) == 2
        assert len(hung.posts) == 2  # one per daemon: each one's lane still waits on its first call
        assert TOKEN not in enforcer.log_text()
        no_token_anywhere(again)


def labels_of(alerts: list[dict[str, Any]], container: str) -> list[dict[str, str]]:
    return [a["labels"] for a in alerts if a["labels"].get("container") == container]


def test_alertmanager_shows_the_alert_while_it_violates_and_resolves_it_when_removed(
    daemon: DaemonFactory, containers: Containers, tmp_path: Any
) -> None:
    with Alertmanager(tmp_path) as am:
        enforcer = daemon(
            triggers=f"from enforcer import notify\ntriggers = [notify.alertmanager({am.url!r})]\n",
            **SWEEPING,
        )
        bad = containers.run("bad-alerted", **OWNED)
        found = wait_until(lambda: labels_of(am.alerts(), "bad-alerted"), 15)
        assert found, enforcer.tail()
        (labels,) = found
        host = enforcer.get("/healthz")["host"]
        assert labels == {
            "alertname": "no bad names", "container": "bad-alerted", "host": host, "severity": "medium",
            "owner": "team-a", "mode": "WARN",
        }  # fmt: skip
        (alert,) = [a for a in am.alerts() if a["labels"]["container"] == "bad-alerted"]
        ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
        assert ends - datetime.now(UTC) > timedelta(minutes=4)  # kept alive ahead, re-posted every minute
        assert alert["status"]["state"] == "active"
        containers.api.remove_container(bad, force=True)
        assert wait_until(lambda: not labels_of(am.alerts(), "bad-alerted"), 15), enforcer.tail()


def test_a_kill_is_one_notice_and_its_die_event_tells_nothing_more(
    daemon: DaemonFactory, containers: Containers
) -> None:
    with Receiver() as hook:
        enforcer = daemon(
            triggers=f"from enforcer import notify\ntriggers = [notify.webhook({hook.url!r})]\n"
        )
        bad = containers.run("bad-killed")
        assert containers.wait_stopped(bad, 5)
        assert hook.wait_for(lambda b: len(b) == 1, 10), enforcer.tail()
        (body,) = hook.bodies
        assert (body["phase"], body["mode"], body["action"], body["outcome"], body["ended"], body["reason"]) == (
            "enforced", "KILL", "kill", "stopped", True, "stopped",
        )  # fmt: skip
        containers.api.remove_container(bad, force=True)
        time.sleep(2)
        assert len(hook.bodies) == 1


GRACED = """
rules = [{"name": "graced", "rule": lambda c: c.name.startswith("graced"), "grace": 3600}]
"""


def test_a_graced_rule_is_told_when_warned_and_when_its_episode_ends(
    daemon: DaemonFactory, containers: Containers
) -> None:
    with Receiver() as hook:
        triggers = f"from enforcer import notify\ntriggers = [notify.webhook({hook.url!r})]\n"
        enforcer = daemon(GRACED, triggers=triggers, SAMPLE_INTERVAL_S="1")
        graced = containers.run("graced-1")
        assert hook.wait_for(lambda b: len(b) == 1, 20), enforcer.tail()
        assert (hook.bodies[0]["phase"], hook.bodies[0]["ended"]) == ("warned", False)
        time.sleep(3)  # more samples of the same grace: nothing more
        assert len(hook.bodies) == 1
        containers.api.remove_container(graced, force=True)
        assert hook.wait_for(lambda b: len(b) == 2, 20), enforcer.tail()
        ended = hook.bodies[1]
        assert (ended["container"], ended["phase"], ended["ended"]) == ("graced-1", "resolved", True)
        time.sleep(3)
        assert len(hook.bodies) == 2
