"""enforcer.notify and the notifiers' episodes (enforcer.notices): bodies, retries, routing, once per episode."""

from __future__ import annotations

import io
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.receiver import TOKEN, Receiver

from enforcer import notify, retry
from enforcer.act.actions import Done
from enforcer.act.triggers import TriggerRunner
from enforcer.facts.container import Container
from enforcer.judge.loader import parse_triggers
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule, Severity, Trigger
from enforcer.judge.verdict import Verdict
from enforcer.judge.whitelist import Whitelist
from enforcer.notices import Notices
from enforcer.notify import formats
from enforcer.notify.notice import EndReason, Notice, NoticeRule
from enforcer.notify.send import NotifyError, safe_url
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import Change, Episode
from enforcer.record.model import Action, Outcome, Phase
from enforcer.record.notified import NoticeLedger
from enforcer.settings import Mode

WHEN = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
PRIV = Rule("no privileged", lambda c: True, severity=Severity.HIGH)
ROOT = Rule("no root", lambda c: True, severity=Severity.CRITICAL)


def notice(**changes: Any) -> Notice:
    values: dict[str, Any] = {
        "host": "build-1", "container_id": "ab" * 32, "name": "web", "image": "busybox:1.36",
        "owner": "team-a", "rules": (NoticeRule("no privileged", "high"),), "mode": "WARN",
        "action": "would stop", "outcome": "recorded", "phase": Phase.RECORDED, "started": WHEN, "time": WHEN,
    }  # fmt: skip
    values.update(changes)
    return Notice(**values)


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    retry.set_testing(True)
    yield
    retry.set_testing(False)


# -- bodies ----------------------------------------------------------------------------------------------

FALCO_PRIORITIES = {
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
}


@pytest.mark.parametrize("severity", [s.value for s in Severity])
@pytest.mark.parametrize("ended", [False, True])
def test_falcosidekick_event_passes_its_input_checks(severity: str, ended: bool) -> None:
    n = notice(
        rules=(NoticeRule("no privileged", severity),), ended=ended, reason=EndReason.FIXED if ended else None
    )
    (event,) = formats.falco_events(n)
    # falcosidekick (>= 2.27) answers 400 unless each of these holds (types/types.go, handlers.go):
    assert event["priority"].lower() in FALCO_PRIORITIES
    assert isinstance(event["rule"], str) and event["rule"] == "no privileged"
    assert event["time"] == "2026-12-01T12:00:00.123456Z"
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")) == WHEN  # RFC 3339
    assert isinstance(event["output_fields"], dict) and event["output_fields"]
    # and the rest of Falco's output as its outputs read it
    assert event["source"] == "docker-enforcer"
    assert event["hostname"] == "build-1"
    assert isinstance(event["tags"], list) and "docker-enforcer" in event["tags"]
    assert (
        isinstance(event["output"], str) and "web" in event["output"] and "no privileged" in event["output"]
    )
    assert event["output_fields"]["container.name"] == "web"
    assert event["output_fields"]["enforcer.owner"] == "team-a"
    assert set(event) == {"output", "priority", "rule", "time", "source", "hostname", "tags", "output_fields"}


def test_falco_priority_follows_severity() -> None:
    rules = tuple(NoticeRule(f"r-{s.value}", s.value) for s in Severity)
    priorities = [e["priority"] for e in formats.falco_events(notice(rules=rules))]
    assert priorities == ["Informational", "Notice", "Warning", "Error", "Critical"]


def test_alertmanager_one_alert_per_rule_with_its_labels() -> None:
    rules = (NoticeRule("no privileged", "high"), NoticeRule("no root", "critical"))
    alerts = formats.alertmanager_alerts(notice(rules=rules))
    assert [a["labels"] for a in alerts] == [
        {"alertname": "no privileged", "container": "web", "host": "build-1", "severity": "high",
         "owner": "team-a", "mode": "WARN"},
        {"alertname": "no root", "container": "web", "host": "build-1", "severity": "critical",
         "owner": "team-a", "mode": "WARN"},
    ]  # fmt: skip
    assert alerts[0]["startsAt"] == "2026-12-01T12:00:00.123456Z"
    assert alerts[0]["endsAt"] == "2026-12-01T12:05:00.123456Z"  # ahead while it lasts
    (resolved,) = formats.alertmanager_alerts(notice(ended=True, reason=EndReason.GONE, phase=Phase.RESOLVED))
    assert resolved["endsAt"] == "2026-12-01T12:00:00.123456Z"  # now: resolved at once


def test_webhook_body_names_everything_the_owner_needs() -> None:
    body = formats.webhook_body(notice(mode="KILL", action="kill", outcome="stopped", phase=Phase.ENFORCED))
    assert {k: body[k] for k in ("host", "container", "container_id", "image", "owner", "mode", "action")} == {
        "host": "build-1", "container": "web", "container_id": "ab" * 32, "image": "busybox:1.36",
        "owner": "team-a", "mode": "KILL", "action": "kill",
    }  # fmt: skip
    assert body["rules"] == [{"name": "no privileged", "severity": "high"}]
    assert (body["outcome"], body["phase"], body["time"]) == (
        "stopped",
        "enforced",
        "2026-12-01T12:00:00.123456Z",
    )


def test_slack_text_makes_no_mention_nor_link_of_a_label() -> None:
    text = formats.slack_body(notice(owner="<!channel> & <http://x|y>"))["text"]
    assert "<" not in text and ">" not in text
    assert "owner &lt;!channel&gt; &amp; &lt;http://x|y&gt;" in text


@pytest.mark.parametrize("mention", ["@channel", "@all", "@here", "@someone"])
def test_mattermost_text_makes_no_mention_of_a_label(mention: str) -> None:
    """Mattermost (the same body) takes a plain `@channel`, `@all` or `@name` as a mention: a zero-width space
    after each `@` keeps it text (Slack shows it the same)."""
    text = formats.slack_body(notice(owner=f"team {mention} x"))["text"]
    assert mention not in text and f"owner team @\u200b{mention[1:]} x" in text


def test_slack_text() -> None:
    assert formats.slack_body(notice())["text"] == (
        ":rotating_light: docker-enforcer WARN recorded, would stop: web (abababababab, image busybox:1.36, "
        "owner team-a) on build-1 violates no privileged (high)"
    )
    ended = formats.slack_body(notice(ended=True, reason=EndReason.FIXED, phase=Phase.RESOLVED))["text"]
    assert (
        ended.startswith(":white_check_mark: docker-enforcer resolved: web") and "no longer violates" in ended
    )


# -- sending ---------------------------------------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_message_once() -> None:
    with Receiver(fail_first=2) as r:
        answer = notify.webhook(r.url)["trigger"](notice())
        assert len(r.posts) == 3
        assert len(r.bodies) == 1 and r.bodies[0]["container"] == "web"
    assert answer.startswith("http://127.0.0.1:") and "200 OK" in answer and TOKEN not in answer


def test_giving_up_after_retries_names_the_host_only() -> None:
    with Receiver(fail_first=100) as r:
        with pytest.raises(NotifyError) as raised:
            notify.slack(r.url, retries=2)["trigger"](notice())
        assert len(r.posts) == 3
    assert "answered 500" in str(raised.value) and "gave up after 3 attempts" in str(raised.value)
    assert TOKEN not in str(raised.value) and "/hook" not in str(raised.value)


def test_a_4xx_is_not_retried() -> None:
    with Receiver(fail_first=100, status=404) as r:
        with pytest.raises(NotifyError, match="refused it: 404"):
            notify.webhook(r.url)["trigger"](notice())
        assert len(r.posts) == 1


def test_routes_by_owner_and_headers_are_sent() -> None:
    with Receiver() as default, Receiver() as team:
        trigger = notify.webhook(
            default.url, owners={"team-a": team.url}, headers={"Authorization": "Bearer x"}
        )
        trigger["trigger"](notice(owner="team-a"))
        trigger["trigger"](notice(owner="team-b"))
        assert [b["owner"] for b in team.bodies] == ["team-a"]
        assert [b["owner"] for b in default.bodies] == ["team-b"]
        assert team.posts[0][1]["Authorization"] == "Bearer x"
    only_owners = notify.slack(None, owners={"team-a": team.url})["trigger"]
    assert only_owners(notice(owner="team-z")) == "no route for owner 'team-z'"


def test_a_trigger_dict_shows_no_secret() -> None:
    url = f"https://hooks.slack.com/services/T00/B00/{TOKEN}"
    made = notify.slack(url, owners={"team-a": f"https://team.example:8443/x/{TOKEN}"})
    (trigger,) = parse_triggers(Path("triggers.py"), [made])
    assert trigger.once and not trigger.repeat
    assert trigger.target == trigger.name == "slack to https://hooks.slack.com (+1 owners)"
    assert TOKEN not in repr(made) and TOKEN not in repr(trigger)
    assert notify.alertmanager("http://127.0.0.1:9093")["repeat"] is True


@pytest.mark.parametrize("bad", ["hooks.slack.com/x", "ftp://h/x", "", 42])
def test_a_bad_url_is_refused_without_quoting_it(bad: Any) -> None:
    with pytest.raises(ValueError) as raised:
        notify.webhook(bad)
    assert "/x" not in str(raised.value)


def test_a_url_a_request_cannot_carry_is_refused_without_quoting_it() -> None:
    with pytest.raises(NotifyError) as raised:
        notify.webhook(f"http://127.0.0.1:9/hook/{TOKEN} x")["trigger"](notice())
    assert TOKEN not in str(raised.value) and str(raised.value).startswith("http://127.0.0.1:9: ")


@pytest.mark.parametrize("headers", [{"Authorization": 12345678}, ["Bearer x"]])
def test_bad_headers_are_refused_without_quoting_them(headers: Any) -> None:
    with pytest.raises(ValueError, match="headers must be a dict") as raised:
        notify.webhook("http://127.0.0.1:9/x", headers=headers)
    assert "12345678" not in str(raised.value) and "Bearer" not in str(raised.value)


def test_safe_url() -> None:
    assert safe_url(f"https://user:pw@hooks.slack.com/services/{TOKEN}?q=1") == "https://hooks.slack.com"
    assert safe_url("http://[::1]:9093/api") == "http://[::1]:9093"


def test_alertmanager_path_is_added_once() -> None:
    with Receiver() as r:
        base = r.url.rsplit("/hook", 1)[0]
        for url in (base, base + "/", base + "/api/v2/alerts"):
            notify.alertmanager(url)["trigger"](notice())
        assert [p[0] for p in r.posts] == ["/api/v2/alerts"] * 3


# -- once per episode ------------------------------------------------------------------------------------


class Told:
    """A `once` trigger that keeps the notices it got."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.trigger = Trigger("told", self.notices.append, once=True)
        self.repeating = Trigger("repeats", self.notices.append, once=True, repeat=True)


def container(name: str = "web", owner: str = "team-a") -> Container:
    return Container(
        name * 8, {"Id": name * 8, "Name": "/" + name, "Config": {"Image": "busybox"}}, owner=owner
    )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Notices, Told, Path]]:
    told = Told()
    policy = Policy((PRIV, ROOT), Whitelist(), (told.trigger, Trigger("plain", lambda v: None)), {})
    runner = TriggerRunner(on_error=lambda name: None)
    path = tmp_path / "state.db"
    ledger = NoticeLedger(path)
    notices = Notices(ledger, runner, PolicyInForce(policy), lambda: "build-1", threading.Event(), False)
    yield notices, told, path
    runner.close()
    ledger.close()


def settle(told: Told, count: int) -> list[Notice]:
    deadline = time.monotonic() + 5
    while len(told.notices) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # nothing more comes
    return told.notices


WARNED = Done(Action.WOULD_STOP, Outcome.RECORDED)


def test_three_checks_of_one_violator_notify_once_then_once_when_fixed(
    parts: tuple[Notices, Told, Path],
) -> None:
    notices, told, _ = parts
    policy = notices.in_force.get()
    c = container()
    for _ in range(3):
        notices.violated(Verdict(c, (PRIV,)), policy, Mode.WARN, WARNED)
    (start,) = settle(told, 1)
    assert (start.phase, start.ended, start.rule_names, start.owner) == (
        Phase.RECORDED,
        False,
        ["no privileged"],
        "team-a",
    )
    notices.passed(Verdict(c), policy)
    notices.passed(Verdict(c), policy)
    (_, end) = settle(told, 2)
    assert (end.phase, end.ended, end.reason, end.rule_names) == (
        Phase.RESOLVED,
        True,
        "fixed",
        ["no privileged"],
    )
    assert end.started == start.started


def test_a_restart_does_not_notify_again(parts: tuple[Notices, Told, Path]) -> None:
    notices, told, path = parts
    policy = notices.in_force.get()
    notices.violated(Verdict(container(), (PRIV,)), policy, Mode.WARN, WARNED)
    settle(told, 1)
    again = Notices(
        NoticeLedger(path), notices.runner, notices.in_force, lambda: "build-1", threading.Event()
    )
    again.violated(Verdict(container(), (PRIV,)), policy, Mode.WARN, WARNED)
    assert len(settle(told, 1)) == 1
    again.gone("web" * 8)
    assert [n.reason for n in settle(told, 2)] == [None, "gone"]


def test_a_new_rule_starts_its_own_episode(parts: tuple[Notices, Told, Path]) -> None:
    notices, told, _ = parts
    policy = notices.in_force.get()
    c = container()
    notices.violated(Verdict(c, (PRIV,)), policy, Mode.WARN, WARNED)
    notices.violated(Verdict(c, (PRIV, ROOT)), policy, Mode.WARN, WARNED)
    notices.violated(Verdict(c, (ROOT,)), policy, Mode.WARN, WARNED)
    got = settle(told, 3)
    assert [(n.rule_names, n.ended) for n in got] == [
        (["no privileged"], False),
        (["no root"], False),
        (["no privileged"], True),
    ]


def test_a_stop_is_one_notice_and_ends_the_episode(parts: tuple[Notices, Told, Path]) -> None:
    notices, told, _ = parts
    policy = notices.in_force.get()
    c = container()
    notices.violated(Verdict(c, (PRIV,)), policy, Mode.KILL, Done(Action.KILL, Outcome.STOPPED))
    (stopped,) = settle(told, 1)
    assert (stopped.phase, stopped.ended, stopped.reason, stopped.outcome) == (
        Phase.ENFORCED,
        True,
        "stopped",
        "stopped",
    )
    assert notices.ledger.all() == []
    notices.gone(c.cid)  # its die event: nothing more to tell
    assert len(settle(told, 1)) == 1


def test_a_sweep_ends_the_episodes_of_containers_it_no_longer_finds(
    parts: tuple[Notices, Told, Path],
) -> None:
    notices, told, _ = parts
    policy = notices.in_force.get()
    for name in ("web", "db"):
        notices.violated(Verdict(container(name), (PRIV,)), policy, Mode.WARN, WARNED)
    notices.swept(["db" * 8], datetime.now(UTC))
    got = settle(told, 3)
    assert [(n.name, n.reason) for n in got[2:]] == [("web", "gone")]


def test_repeats_reach_only_the_notifiers_that_ask(parts: tuple[Notices, Told, Path]) -> None:
    notices, told, _ = parts
    policy = Policy((PRIV,), Whitelist(), (told.trigger, told.repeating), {})
    notices.in_force = PolicyInForce(policy)
    notices.violated(Verdict(container(), (PRIV,)), policy, Mode.WARN, WARNED)
    settle(told, 2)
    notices.repeat()
    got = settle(told, 3)
    assert [n.repeat for n in got] == [False, False, True]


def test_plain_triggers_never_get_notices_and_notifiers_never_get_verdicts() -> None:
    got: list[Any] = []
    runner = TriggerRunner(on_error=lambda name: None)
    runner.submit(
        [Trigger("n", got.append, once=True), Trigger("p", got.append)], Verdict(container(), (PRIV,))
    )
    runner.close(wait=True)
    assert all(isinstance(g, Verdict) for g in got)


def test_a_failing_ledger_never_stops_a_check(
    parts: tuple[Notices, Told, Path], caplog: pytest.LogCaptureFixture
) -> None:
    notices, _, _ = parts
    notices.ledger.close()
    with caplog.at_level(logging.ERROR, logger="enforcer.notices"):
        notices.violated(Verdict(container(), (PRIV,)), notices.in_force.get(), Mode.WARN, WARNED)
    assert "could not tell the notifiers (violated)" in caplog.text


TIMED = Rule("cpu hog", lambda c: True, severity=Severity.HIGH, for_s=60, grace_s=600)


def test_a_rule_held_over_time_is_told_when_warned_when_acted_and_when_its_episode_ends(
    parts: tuple[Notices, Told, Path],
) -> None:
    notices, told, _ = parts
    policy = Policy((TIMED,), Whitelist(), (told.trigger,), {})
    notices.in_force = PolicyInForce(policy)
    c = container()
    warned = Verdict(c, (TIMED,), phase=Phase.WARNED)
    notices.violated(warned, policy, Mode.KILL, Done(Action.PAUSE, Outcome.WARNED))
    notices.violated(warned, policy, Mode.KILL, Done(Action.PAUSE, Outcome.WARNED))  # told already
    notices.violated(
        Verdict(c, (TIMED,), phase=Phase.ENFORCED), policy, Mode.KILL, Done(Action.PAUSE, Outcome.PAUSED)
    )
    notices.passed(Verdict(c), policy)  # a plain check never judges a rule held over time: nothing ends
    episode = Episode(c.cid, "cpu hog", Phase.ENFORCED, WHEN, None, "", "web")
    notices.episode_changed(Change(episode, None))
    got = settle(told, 3)
    assert [(n.phase, n.ended, n.reason) for n in got] == [
        (Phase.WARNED, False, None),
        (Phase.ENFORCED, False, None),
        (Phase.RESOLVED, True, "resolved"),
    ]
    assert got[1].started == got[0].started and got[1].outcome == "paused"


def test_an_episode_of_a_rule_no_longer_in_the_policy_ends_and_rules_not_judged_keep_theirs(
    parts: tuple[Notices, Told, Path],
) -> None:
    notices, told, _ = parts
    policy = notices.in_force.get()
    c = container()
    notices.violated(Verdict(c, (PRIV, ROOT)), policy, Mode.WARN, WARNED)
    stops_first = Notices(
        notices.ledger, notices.runner, notices.in_force, lambda: "h", threading.Event(), True
    )
    stops_first.passed(Verdict(c, (PRIV,)), policy)  # stopped at PRIV: ROOT, after it, was not judged
    assert len(settle(told, 1)) == 1
    fewer = Policy((PRIV,), Whitelist(), policy.triggers, {})
    notices.passed(Verdict(c, (PRIV,)), fewer)  # ROOT left the policy: its episode ends
    got = settle(told, 2)
    assert [(n.rule_names, n.ended) for n in got] == [
        (["no privileged", "no root"], False),
        (["no root"], True),
    ]


def test_a_5xx_whose_body_cannot_be_read_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # The error's body read inside the HTTPError handler: its failure escaped every other handler.
    class Broken(io.RawIOBase):
        def readinto(self, buffer: Any) -> int:
            raise ConnectionResetError(104, "Connection reset by peer")

    calls: list[str] = []

    def urlopen(request: Any, timeout: float) -> Any:
        calls.append(request.full_url)
        raise urllib.error.HTTPError(request.full_url, 502, "Bad Gateway", Message(), Broken())

    monkeypatch.setattr("enforcer.notify.send._OPENER.open", urlopen)
    with pytest.raises(NotifyError, match="answered 502 Bad Gateway.*gave up after 3 attempts"):
        notify.webhook("http://127.0.0.1:9/hook/x", retries=2)["trigger"](notice())
    assert len(calls) == 3


def test_a_redirect_is_not_followed_so_the_headers_never_reach_another_host() -> None:
    """A receiver's 302 would have urllib send the request again, Authorization included, wherever the
    Location points (another host, the engine's TCP port): it is a refusal instead."""
    seen: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    target = f"http://127.0.0.1:{elsewhere.server_address[1]}/steal"

    class Redirecting(Elsewhere):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirecting = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    servers = [elsewhere, redirecting]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        hook = notify.webhook(
            f"http://127.0.0.1:{redirecting.server_address[1]}/hook",
            headers={"Authorization": "Bearer s3cret"},
        )
        with pytest.raises(NotifyError) as raised:
            hook["trigger"](notice())
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert seen == []
    assert "302" in str(raised.value) and "s3cret" not in str(raised.value)
