"""The page as a host owner's console: the summary line, the filters kept in the URL, a page per container,
and their JSON forms; over a real store, policy, health and episode store."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from report_support import CID, HTML_LABEL, QUOTED_RULE, SAFE_RULE

from enforcer.judge.policy import Policy, load_policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import Episode, EpisodeStore
from enforcer.record.model import Action, Finding, Outcome, Phase, Source, safe_config
from enforcer.record.store import DetectionStore
from enforcer.report.app import create_app
from enforcer.report.metrics import Metrics
from enforcer.settings import Files, Mode, Settings
from enforcer.status import Health

MakeFinding = Callable[..., Finding]
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
REMEDIATION = "Run it without --privileged; add only the capabilities it needs <b>(cap-add)</b>"
LIB_RULE = "no privileged"
HOSTILE_NAME = "evil\"'<img src=x onerror=alert(1)>"
OTHER = "d" * 64
WARNED = "e" * 64
NEXT_SWEEP = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
RULES = f"""rules = [
    {{"name": {QUOTED_RULE!r}, "rule": lambda c: True, "severity": "high"}},
    {{"name": {SAFE_RULE!r}, "rule": lambda c: False, "mode": "WARN", "description": "limits"}},
    {{"name": {LIB_RULE!r}, "rule": lambda c: False, "severity": "critical",
      "description": "a privileged container owns the host", "remediation": {REMEDIATION!r}}},
]
"""


@pytest.fixture
def console_policy(tmp_path: Path) -> Policy:
    folder = tmp_path / "console"
    folder.mkdir(mode=0o755)
    (folder / "rules.py").write_text(RULES)
    (folder / "triggers.py").write_text("triggers = []\n")
    files = Files(rules=folder / "rules.py", triggers=folder / "triggers.py")
    return load_policy(Settings(files=files), cwd=tmp_path)


@pytest.fixture
def episodes(tmp_path: Path) -> Iterator[EpisodeStore]:
    opened = EpisodeStore(tmp_path / "state" / "detections.db")
    yield opened
    opened.close()


@pytest.fixture
def make_console(
    settings: Settings,
    health: Health,
    console_policy: Policy,
    store: DetectionStore,
    metrics: Metrics,
    episodes: EpisodeStore,
) -> Callable[..., Flask]:
    def factory(**overrides: Any) -> Flask:
        app = create_app(
            replace(settings, **overrides), health, PolicyInForce(console_policy), store, metrics, "test-host",
            episodes=episodes, next_sweep=lambda: NEXT_SWEEP,
        )  # fmt: skip
        app.testing = True
        return app

    return factory


@pytest.fixture
def console(make_console: Callable[..., Flask]) -> FlaskClient:
    return make_console().test_client()


@pytest.fixture
def on_record(store: DetectionStore, make_finding: MakeFinding) -> DetectionStore:
    """Four containers: web (stopped, today, team blue, with a rule error), quiet (recorded, two days ago,
    team red), held-back (grace started, an hour ago), and a prevented one with its config."""
    now = datetime.now(UTC)
    store.record(
        make_finding(
            rules=(QUOTED_RULE, LIB_RULE), owner="blue", timestamp=now - timedelta(minutes=5),
            rule_errors=("other: KeyError: 'x'",), labels={"note": HTML_LABEL},
        )
    )  # fmt: skip
    store.record(
        make_finding(
            container_id="b" * 64, name="quiet", image="alpine:3", rules=(SAFE_RULE,), owner="red",
            mode=Mode.WARN, action=Action.WOULD_STOP, outcome=Outcome.RECORDED, source=Source.EVENT,
            timestamp=now - timedelta(days=2),
        )
    )  # fmt: skip
    store.record(
        make_finding(
            container_id=WARNED, name="held-back", rules=(LIB_RULE,), owner="red", outcome=Outcome.WARNED,
            action=Action.STOP, timestamp=now - timedelta(hours=1),
        )
    )  # fmt: skip
    params = {
        "Name": "/" + HOSTILE_NAME,
        "Image": "sha256:abc",
        "Config": {
            "Image": "busybox",
            "Env": ["PASSWORD=hunter2-secret"],
            "Cmd": ["sh", "-c", "TOKEN=s3cr3t"],
        },
        "HostConfig": {"Privileged": True},
    }
    store.record(
        make_finding(
            container_id=OTHER, name=HOSTILE_NAME, rules=(LIB_RULE,), owner=HOSTILE_NAME,
            action=Action.PREVENT, outcome=Outcome.PREVENTED, source=Source.CREATE,
            config=safe_config(params), timestamp=now - timedelta(days=40),
        )
    )  # fmt: skip
    return store


def get(client: FlaskClient, path: str, html: bool = False, status: int = 200, **kwargs: Any) -> Any:
    response = client.get(path, headers=BROWSER if html else {}, **kwargs)
    assert response.status_code == status, response.text[:500]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if html:
        assert response.mimetype == "text/html"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        return response.text
    assert response.mimetype == "application/json"
    return json.loads(response.text)


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["detections"]]


# -- the summary line ----------------------------------------------------------------------------------------


def test_the_summary_counts_containers_by_what_was_done_in_24h_and_in_all(
    console: FlaskClient, on_record: DetectionStore, episodes: EpisodeStore
) -> None:
    now = datetime.now(UTC)
    episodes.put(Episode("f" * 64, "cpu hog", Phase.PENDING, now, now + timedelta(minutes=5), "t0", "hog"))
    summary = get(console, "/")["summary"]

    assert summary["stopped"] == {"all": 2, "last_24h": 1}, "stopped or prevented"
    assert summary["recorded"] == {"all": 1, "last_24h": 0}
    assert summary["graced"] == {"all": 1, "last_24h": 1}
    assert summary["failed"] == {"all": 0, "last_24h": 0}
    assert summary["rule_errors"] == {"all": 1, "last_24h": 1}
    assert summary["open_episodes"] == {"pending": 1, "warned": 0}


def test_each_figure_of_the_summary_line_links_to_the_table_it_counts(
    console: FlaskClient, on_record: DetectionStore
) -> None:
    page = get(console, "/", html=True)
    links = dict(re.findall(r'<li class="summary-item" id="summary-([a-z_]+)">.*?href="([^"]+)"', page, re.S))

    assert set(links) >= {"stopped", "recorded", "graced", "failed", "rule_errors", "pending"}
    listed = {}
    for key in ("stopped", "recorded", "graced", "rule_errors"):
        url = unescape(links[key])
        listed[key] = sorted(names(get(console, url.split("#")[0])))
    assert listed["stopped"] == ["/web"], "the last 24 h: the prevented one is 40 days old"
    assert listed["recorded"] == [], "quiet was recorded two days ago"
    assert listed["graced"] == ["/held-back"]
    assert listed["rule_errors"] == ["/web"]
    all_stopped = re.search(r'id="summary-stopped">.*?class="summary-all">', page, re.S)
    assert all_stopped is not None
    assert 'href="/#episodes"' in page or 'href="#episodes"' in page


# -- filters, in the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"owner": "red"}, ["/held-back", "/quiet"]),
        ({"rule": LIB_RULE}, ["/web", "/held-back", "/" + HOSTILE_NAME]),
        ({"rule": LIB_RULE, "owner": "red"}, ["/held-back"]),
        ({"outcome": ["stopped", "prevented"]}, ["/web", "/" + HOSTILE_NAME]),
        ({"outcome": "recorded"}, ["/quiet"]),
        ({"within": "24h"}, ["/web", "/held-back"]),
        ({"within": "3d"}, ["/web", "/held-back", "/quiet"]),
        ({"errors": "1"}, ["/web"]),
        ({"owner": HOSTILE_NAME}, ["/" + HOSTILE_NAME]),
        ({"owner": "nobody"}, []),
    ],
)
def test_filters_narrow_the_json(
    console: FlaskClient, on_record: DetectionStore, query: dict[str, Any], expected: list[str]
) -> None:
    assert names(get(console, "/", query_string=query)) == expected


def test_the_filter_form_shows_the_url_and_its_links_keep_it(
    console: FlaskClient, on_record: DetectionStore
) -> None:
    query = {"owner": "red", "rule": LIB_RULE, "outcome": "warned", "within": "7d", "limit": "1"}
    page = get(console, "/", html=True, query_string=query)

    assert 'name="owner" value="red"' in page
    assert f'<option value="{LIB_RULE}" selected>' in page
    assert '<option value="warned" selected>' in page
    assert '<option value="7d" selected>' in page
    assert re.findall(r'class="container-name">([^<]*)<', page) == ["held-back"]
    older = re.search(r'<a href="([^"]+)" id="older">', page)
    assert older is not None, "a full page links to the older detections"
    args = parse_qs(urlsplit(unescape(older.group(1))).query)
    assert args["owner"] == ["red"] and args["rule"] == [LIB_RULE] and args["outcome"] == ["warned"]
    assert args["within"] == ["7d"] and "before" in args
    assert names(get(console, "/?" + urlsplit(unescape(older.group(1))).query)) == []


def test_a_form_submission_round_trips_through_the_url(
    console: FlaskClient, on_record: DetectionStore
) -> None:
    """What a browser sends for the form (empty fields included) gives the same table as the link."""
    sent = "owner=&rule=&outcome=stopped&outcome=prevented&within=&errors=1"
    assert names(get(console, "/?" + sent)) == ["/web"]
    page = get(console, "/?" + sent, html=True)
    assert 'name="errors" value="1" checked' in page
    assert '<option value="stopped" selected>' in page and '<option value="prevented" selected>' in page


def test_each_rule_of_a_detection_shows_its_severity(console: FlaskClient, on_record: DetectionStore) -> None:
    page = get(console, "/", html=True, query_string={"owner": "blue"})
    assert '<span class="severity sev-high">high</span>' in page
    assert '<span class="severity sev-critical">critical</span>' in page


def test_the_next_sweep_is_shown_and_in_the_json(console: FlaskClient) -> None:
    assert get(console, "/")["next_sweep"] == "2030-01-02T03:04:05"
    assert 'id="next-sweep">2030-01-02 03:04:05 UTC<' in get(console, "/", html=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("owner", "x" * 513),
        ("owner", "tab\there"),
        ("rule", "\x00"),
        ("outcome", "<script>nope"),
        ("within", "<b>forever</b>"),
        ("within", "0s"),
        ("within", "9" * 30),
        ("errors", "yes<i>"),
    ],
)
@pytest.mark.parametrize("html", [False, True])
def test_a_bad_filter_is_a_400_that_does_not_echo_it(
    console: FlaskClient, name: str, value: str, html: bool
) -> None:
    response = console.get("/", query_string={name: value}, headers=BROWSER if html else {})
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    body = json.loads(response.text)
    assert body["message"].startswith(name + ":")
    assert value not in body["message"] and "<" not in body["message"]


# -- /containers/<id> ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [CID, CID[:12], "c0ffee", "web"])
def test_a_container_is_found_by_id_short_id_or_name(
    console: FlaskClient, on_record: DetectionStore, key: str
) -> None:
    body = get(console, f"/containers/{key}")
    assert (body["id"], body["name"], body["owner"], body["image"]) == (CID, "/web", "blue", "busybox")


def test_the_container_json_has_its_rules_with_description_remediation_and_what_was_done(
    console: FlaskClient, on_record: DetectionStore
) -> None:
    body = get(console, f"/containers/{CID[:12]}")

    assert body["outcome"] == "stopped" and body["action"] == "stop" and body["mode"] == "KILL"
    assert body["violated_rule"] == [QUOTED_RULE, LIB_RULE]
    assert body["rule_errors"] == ["other: KeyError: 'x'"]
    assert body["labels"] == {"note": HTML_LABEL}
    by_rule = {r["rule"]: r for r in body["rules"]}
    assert by_rule[LIB_RULE]["severity"] == "critical"
    assert by_rule[LIB_RULE]["description"] == "a privileged container owns the host"
    assert by_rule[LIB_RULE]["remediation"] == REMEDIATION
    assert by_rule[QUOTED_RULE]["remediation"] is None and by_rule[QUOTED_RULE]["in_force"]
    assert by_rule[LIB_RULE]["outcome"] == "stopped" and by_rule[LIB_RULE]["count"] == 1
    assert body["state"]["running"] is False
    assert body["state"]["text"].startswith("not running: stopped by the enforcer")
    assert body["episodes"] == [] and body["other_matches"] == []


def test_the_container_page_shows_the_same_escaped(console: FlaskClient, on_record: DetectionStore) -> None:
    page = get(console, f"/containers/{OTHER}", html=True)

    assert "<img" not in page and "<b>(cap-add)</b>" not in page
    assert "evil&#34;&#39;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;(cap-add)&lt;/b&gt;" in page, "the remediation is shown as text"
    assert "a privileged container owns the host" in page
    assert 'id="liveness"' in page and "removed at create" in page
    config = re.search(r'<pre id="recorded-config">(.*?)</pre>', page, re.S)
    assert config is not None and "Privileged" in unescape(config.group(1))
    for secret in ("hunter2", "s3cr3t", "PASSWORD", "TOKEN="):
        assert secret not in page
    assert "<script" not in page


def test_the_container_page_of_a_warn_violator_says_whether_the_last_sweep_saw_it(
    make_console: Callable[..., Flask], health: Health, on_record: DetectionStore
) -> None:
    client = make_console().test_client()
    health.sweep_finished(datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) - timedelta(days=1))
    quiet = get(client, "/containers/quiet")
    assert quiet["state"]["running"] is None
    assert quiet["state"]["text"].startswith("not seen by the last sweep")
    health.sweep_finished(datetime.now(UTC) - timedelta(days=3), datetime.now(UTC))
    assert get(client, "/containers/quiet")["state"]["running"] is True
    no_sweeps = make_console(run_periodic=False)
    assert get(no_sweeps.test_client(), "/containers/quiet")["state"]["text"].startswith(
        "last seen running at"
    )


def test_an_open_episode_shows_on_its_container_page(
    console: FlaskClient, on_record: DetectionStore, episodes: EpisodeStore
) -> None:
    now = datetime.now(UTC)
    episodes.put(
        Episode(
            WARNED,
            LIB_RULE,
            Phase.WARNED,
            now,
            now + timedelta(minutes=10),
            "t0",
            "held-back",
            "red",
            "stop",
            now,
        )
    )
    body = get(console, "/containers/held-back")
    assert [(e["rule"], e["phase"], e["action"]) for e in body["episodes"]] == [(LIB_RULE, "warned", "stop")]
    assert body["state"]["running"] is True
    page = get(console, "/containers/held-back", html=True)
    assert '<tr class="episode phase-warned">' in page
    assert '<tr class="episode phase-warned">' in get(console, "/", html=True), "the status page lists it too"


def test_an_unknown_container_is_a_404_naming_what_to_try(
    console: FlaskClient, on_record: DetectionStore
) -> None:
    for key in ("f" * 64, "abc123", "no-such-name"):
        body = get(console, f"/containers/{key}", status=404)
        assert "full id" in body["message"] and "first 12 characters" in body["message"]
        assert key not in body["message"]


@pytest.mark.parametrize("key", ["<script>", "a b", "x" * 300, "..", "a/b", "%00"])
def test_a_container_key_that_is_no_id_or_name_is_a_400(console: FlaskClient, key: str) -> None:
    response = console.get(f"/containers/{key}")
    assert response.status_code in (400, 404)
    assert key not in response.text


def test_the_container_page_needs_the_host_check_and_the_token(
    make_console: Callable[..., Flask], on_record: DetectionStore
) -> None:
    client = make_console(api_token="s3cret-token").test_client()
    assert client.get(f"/containers/{CID}").status_code == 401
    ok = client.get(f"/containers/{CID}", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    misdirected = client.get(
        f"/containers/{CID}", headers={"Authorization": "Bearer s3cret-token", "Host": "evil.example"}
    )
    assert misdirected.status_code == 421


def test_held_counts_in_the_summary_and_filters_the_table(
    console: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(
        make_finding(outcome=Outcome.HELD, outcome_detail="stop rate over 60 a minute", mode=Mode.WARN)
    )
    assert get(console, "/")["summary"]["held"] == {"all": 1, "last_24h": 1}
    [held] = get(console, "/", query_string={"outcome": "held"})["detections"]
    assert held["outcome"] == "held: stop rate over 60 a minute"
    state = get(console, f"/containers/{CID}")["state"]
    assert state["running"] is None and state["text"].startswith("last seen running"), "held: not stopped"


def test_a_timed_rule_without_an_open_episode_is_only_last_seen(
    console: FlaskClient, store: DetectionStore, make_finding: MakeFinding, health: Health
) -> None:
    """Sweeps skip rules held over time: a sweep that did not see the container says nothing about it."""
    store.record(
        make_finding(
            outcome=Outcome.LIMITED,
            action=Action.LIMIT,
            source=Source.SAMPLE,
            timestamp=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    health.sweep_finished(datetime.now(UTC) - timedelta(seconds=5), datetime.now(UTC))
    body = get(console, f"/containers/{CID}")
    assert body["state"]["running"] is None
    assert "no episode is open now" in body["state"]["text"]
    assert body["exec"] is None


def test_an_exec_check_names_the_executable_on_the_container_page(
    console: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(exec_command="/bin/sh"))
    assert get(console, f"/containers/{CID}")["exec"] == "/bin/sh"
    assert 'id="exec">/bin/sh <' in get(console, f"/containers/{CID}", html=True)


def test_a_hostile_rule_name_round_trips_through_the_form_and_the_links(
    console: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    now = datetime.now(UTC)
    store.record_many(
        make_finding(
            container_id=f"{n:064x}", name=f"n{n}", rules=(QUOTED_RULE,), timestamp=now - timedelta(minutes=n)
        )
        for n in range(3)
    )
    page = get(console, "/", html=True, query_string={"rule": QUOTED_RULE, "limit": "2"})

    assert "<b>bold</b>" not in page
    assert (
        '<option value="no &#34;quoted&#34; &#39;names&#39; &lt;/td&gt;&lt;b&gt;bold&lt;/b&gt;" selected>'
        in page
    )
    older = re.search(r'<a href="([^"]+)" id="older">', page)
    assert older is not None
    query = urlsplit(unescape(older.group(1))).query
    assert parse_qs(query)["rule"] == [QUOTED_RULE]
    assert names(get(console, "/?" + query)) == ["/n2"], "the next page of the same filter"


def test_a_rule_no_longer_in_force_stays_selectable_while_filtered_on(
    console: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(rules=("an old rule",)))
    page = get(console, "/", html=True, query_string={"rule": "an old rule"})
    assert '<option value="an old rule" selected>' in page
    assert re.findall(r'class="container-name">([^<]*)<', page) == ["web"]
