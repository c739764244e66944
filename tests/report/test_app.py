"""The status API through Flask's test client, over a real store, health, policy and metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from report_support import CID, HOST, HTML_LABEL, QUOTED_RULE, RULES_TEXT, SAFE_RULE, TRIGGERS_TEXT

from enforcer.judge.policy import Policy
from enforcer.record.model import Action, Finding, Outcome, Source, safe_config
from enforcer.record.store import DetectionStore, StoreError
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode
from enforcer.status import Health

MakeFinding = Callable[..., Finding]
MakeApp = Callable[..., Flask]
T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
ENDPOINTS = ("/", "/recent", "/rules", "/triggers", "/config", "/metrics", "/healthz")
TOP_KEYS = [
    "last_full_check_run_timestamp_start",
    "last_full_check_run_timestamp_end",
    "last_full_check_run_time",
    "last_full_check_run_seconds",
    "host",
    "detections",
    "next_sweep",
    "summary",
]
ITEM_KEYS = [
    "id",
    "name",
    "violated_rule",
    "owner",
    "source",
    "count",
    "last_timestamp",
    "first_timestamp",
    "mode",
    "action",
    "outcome",
    "rule_errors",
]


def get_json(client: FlaskClient, path: str, **kwargs: object) -> object:
    response = client.get(path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/json"
    return json.loads(response.text)  # the raw text: valid JSON, whatever the names hold


@pytest.fixture
def swept(health: Health) -> Health:
    health.sweep_finished(T0, T0 + timedelta(seconds=1, microseconds=234567))
    return health


@pytest.fixture
def recorded(store: DetectionStore, make_finding: MakeFinding) -> DetectionStore:
    store.record(
        make_finding(
            rules=(QUOTED_RULE, SAFE_RULE),
            labels={"note": HTML_LABEL},
            timestamp=T0 - timedelta(minutes=5),
            outcome=Outcome.FAILED,
            outcome_detail="engine timeout",
        )
    )
    store.record(
        make_finding(
            rules=(QUOTED_RULE,),
            labels={"note": HTML_LABEL},
            timestamp=T0 + timedelta(seconds=2),
            rule_errors=("other: KeyError: 'x'",),
        )
    )
    store.record(
        make_finding(
            container_id="b" * 64,
            name="quiet",
            image="alpine:3",
            rules=(SAFE_RULE,),
            mode=Mode.WARN,
            action=Action.WOULD_STOP,
            outcome=Outcome.RECORDED,
            source=Source.EVENT,
            timestamp=T0 - timedelta(minutes=1),
            owner="team-a",
        )
    )
    return store


# -- / and /recent: the original's shape -------------------------------------------------------------------


def test_index_has_the_original_keys_then_the_added_ones(
    client: FlaskClient, swept: Health, recorded: DetectionStore
) -> None:
    body = get_json(client, "/")

    assert isinstance(body, dict)
    assert list(body) == TOP_KEYS
    assert body["last_full_check_run_timestamp_start"] == "2024-05-01 12:00:00.250000"
    assert body["last_full_check_run_timestamp_end"] == "2024-05-01 12:00:01.484567"
    assert body["last_full_check_run_time"] == "0:00:01.234567"
    assert body["last_full_check_run_seconds"] == pytest.approx(1.234567)
    assert body["host"] == HOST
    first, second = body["detections"]
    assert list(first) == ITEM_KEYS
    assert first == {
        "id": CID,
        "name": "/web",
        "violated_rule": QUOTED_RULE,
        "owner": "[unknown]",
        "source": "periodic",
        "count": 2,
        "last_timestamp": "2024-05-01T12:00:02.250000",
        "first_timestamp": "2024-05-01T11:55:00.250000",
        "mode": "KILL",
        "action": "stop",
        "outcome": "stopped",
        "rule_errors": ["other: KeyError: 'x'"],
    }
    assert (second["name"], second["violated_rule"], second["action"]) == ("/quiet", SAFE_RULE, "would stop")
    assert datetime.fromisoformat(first["last_timestamp"]) == (T0 + timedelta(seconds=2)).replace(tzinfo=None)


def test_an_exec_detection_names_its_executable_only(
    client: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(rules=(SAFE_RULE,), source=Source.EXEC, exec_command="/bin/sh"))
    (item,) = get_json(client, "/")["detections"]
    assert (item["source"], item["exec"]) == ("exec", "/bin/sh")
    assert list(item) == [*ITEM_KEYS, "exec"]


def test_show_all_violated_rules_and_show_image_and_labels(
    client: FlaskClient, recorded: DetectionStore, store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(
        make_finding(
            rules=(QUOTED_RULE, SAFE_RULE), labels={"note": HTML_LABEL}, timestamp=T0 + timedelta(minutes=1)
        )
    )

    body = get_json(client, "/?show_all_violated_rules=1&show_image_and_labels=1")

    assert isinstance(body, dict)
    item = body["detections"][0]
    assert list(item) == [*ITEM_KEYS, "image", "labels"]
    assert item["violated_rule"] == [QUOTED_RULE, SAFE_RULE]
    assert (item["image"], item["labels"]) == ("busybox", {"note": HTML_LABEL})


def test_before_the_first_sweep_the_original_placeholders_are_shown(
    client: FlaskClient, recorded: DetectionStore
) -> None:
    body = get_json(client, "/")

    assert isinstance(body, dict)
    assert body["last_full_check_run_timestamp_start"] == "0001-01-01 00:00:00"
    assert body["last_full_check_run_time"] == "-999999999 days, 0:00:00"
    assert body["last_full_check_run_seconds"] is None
    assert len(body["detections"]) == 2


def test_without_sweeps_the_sweep_keys_are_absent(make_app: MakeApp, recorded: DetectionStore) -> None:
    body = get_json(make_app(run_periodic=False, run_start_events=True).test_client(), "/")

    assert isinstance(body, dict)
    assert list(body) == ["host", "detections", "summary"]


def test_recent_keeps_the_containers_detected_since_the_last_sweep_began(
    client: FlaskClient, swept: Health, recorded: DetectionStore
) -> None:
    body = get_json(client, "/recent")

    assert isinstance(body, dict)
    assert list(body) == TOP_KEYS
    assert [d["name"] for d in body["detections"]] == ["/web"]

    swept.sweep_started(T0 + timedelta(hours=1))
    body = get_json(client, "/recent")
    assert isinstance(body, dict) and body["detections"] == []


def test_limit_since_and_before_page_through_the_history(
    client: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    for i in range(7):
        store.record(
            make_finding(container_id=f"{i:064d}", name=f"c{i}", timestamp=T0 + timedelta(seconds=i))
        )

    names, before = [], ""
    for _ in range(5):
        body = get_json(client, f"/?limit=3{before}")
        assert isinstance(body, dict)
        if not body["detections"]:
            break
        names.append([d["name"] for d in body["detections"]])
        before = "&before=" + body["detections"][-1]["last_timestamp"]
    assert names == [["/c6", "/c5", "/c4"], ["/c3", "/c2", "/c1"], ["/c0"]]

    body = get_json(client, "/?limit=" + "9" * 40)
    assert isinstance(body, dict) and len(body["detections"]) == 7
    body = get_json(client, "/", query_string={"since": "2024-05-01T12:00:05.250000+00:00"})
    assert isinstance(body, dict)
    assert [d["name"] for d in body["detections"]] == ["/c6", "/c5"]
    body = get_json(client, "/?since=2024-05-01T14:00:05.25+02:00")
    assert isinstance(body, dict)
    assert [d["name"] for d in body["detections"]] == ["/c6", "/c5"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=x", "limit=-1", "limit=²", "since=yesterday", "before=12:00"]
)
def test_bad_options_are_a_400_in_json(client: FlaskClient, query: str) -> None:
    response = client.get("/?" + query)

    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert json.loads(response.text)["message"].startswith(query.split("=")[0])


HOSTILE = (
    "9" * 4301,  # past int()'s digit limit
    "1" * 100_000,
    "0" * 5000 + "7",
    "٣",  # a digit, not an ASCII one
    "２０２４-05-01T00:00:00",
    "\x00",
    "1\x00",
    "2024-05-01T12:00:00\x00",
    "2024-05-01T12:00:00" + "9" * 5000,
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999-23:59",
    "é<script>",
    "+5",
    " 5",
    "1e9",
)


@pytest.mark.parametrize("name", ["limit", "since", "before"])
@pytest.mark.parametrize("accept", ["application/json", BROWSER_ACCEPT])
def test_no_query_value_is_a_500_or_a_traceback_and_a_400_echoes_nothing(
    client: FlaskClient, swept: Health, name: str, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = [f"{name}=%ff%fe", f"{name}=%C0%80", f"{name}=%00", f"{name}={name}=", f"{name}&{name}=1"]
    for path in ("/", "/recent"):
        for response in [client.get(f"{path}?{query}", headers={"Accept": accept}) for query in raw]:
            assert response.status_code in (200, 400), (path, name, response.text[:300])
        for value in HOSTILE:
            response = client.get(path, query_string={name: value}, headers={"Accept": accept})
            assert response.status_code in (200, 400), (path, name, value[:20], response.text[:300])
            if response.status_code == 400:
                assert response.mimetype == "application/json"
                message = json.loads(response.text)["message"]
                assert message.startswith(name), message[:200]
                assert len(value) < 4 or value not in message, message[:200]  # short ones are in any text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("digits", [4301, 41])
def test_a_limit_with_too_many_digits_is_a_400_saying_what_is_accepted(
    client: FlaskClient, digits: int
) -> None:
    response = client.get("/?limit=" + "9" * digits)
    assert response.status_code == 400
    assert json.loads(response.text)["message"] == (
        "limit: use a whole number from 1 (at most 40 digits; above 10000000 counts as 10000000)"
    )


def test_json_stays_valid_whatever_names_and_labels_hold(
    client: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    nasty = '"}], "x": "\\u0000 \n \t </script>'
    store.record(make_finding(name=nasty, rules=(nasty,), labels={nasty: nasty}, image=nasty))

    body = get_json(client, "/?show_all_violated_rules=1&show_image_and_labels=1")

    assert isinstance(body, dict)
    [item] = body["detections"]
    assert (item["name"], item["violated_rule"], item["labels"]) == ("/" + nasty, [nasty], {nasty: nasty})


# -- content negotiation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "mimetype"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/json, text/html;q=0.5", "application/json"),
        ("text/html", "text/html"),
        (BROWSER_ACCEPT, "text/html"),
    ],
)
def test_html_only_for_clients_that_list_text_html(
    client: FlaskClient, accept: str | None, mimetype: str
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    for path in ("/", "/recent", "/rules", "/triggers", "/config"):
        assert client.get(path, headers=headers).mimetype == mimetype, path


def test_a_failed_action_shows_its_reason_in_outcome_as_before(
    client: FlaskClient, store: DetectionStore, make_finding: MakeFinding
) -> None:
    reason = "500 Server Error: <cannot> kill"
    store.record(make_finding(outcome=Outcome.FAILED, outcome_detail=reason, timestamp=T0))

    body = get_json(client, "/")

    assert isinstance(body, dict)
    [item] = body["detections"]
    assert list(item) == ITEM_KEYS
    assert item["outcome"] == f"failed: {reason}"
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT}).text
    assert '<td class="outcome bad">failed: 500 Server Error: &lt;cannot&gt; kill</td>' in page


# -- the status page ---------------------------------------------------------------------------------------


def test_the_page_shows_mode_health_detections_sweep_and_rules(
    client: FlaskClient, health: Health, recorded: DetectionStore
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
    health.sweep_finished(start, start + timedelta(seconds=1, microseconds=500000))
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    page = response.text

    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="10">' in page
    assert 'id="mode">KILL mode<' in page
    assert 'id="health">healthy<' in page
    assert page.index('id="mode"') < page.index('id="detections"') < page.index('id="sweep"')
    assert page.index('id="sweep"') < page.index('id="rules"')
    for html in (
        f'<a href="/containers/{CID}" class="container-name">web</a>',
        f'<a href="/containers/{"b" * 64}" class="container-name">quiet</a>',
        '<td class="mono image">busybox</td>',
        '<td class="mono image">alpine:3</td>',
        '<td class="action"><span class="action-name">stop</span><div class="muted">KILL · periodic</div></td>',
        '<td class="action"><span class="action-name">would stop</span><div class="muted">WARN · event</div></td>',
        '<td class="outcome acted">stopped</td>',
        '<td class="outcome noted">recorded</td>',
        '<td class="num count">2</td>',
        '<div class="muted owner">owner team-a</div>',
        '<div class="muted owner">owner [unknown]</div>',
    ):
        assert html in page
    assert "2024-05-01 12:00:02 UTC" in page and "2024-05-01 11:55:00 UTC" in page
    assert f'id="sweep-start">{start:%Y-%m-%d %H:%M:%S} UTC<' in page
    assert 'id="sweep-seconds">1.500 s<' in page
    assert "rule error: other: KeyError: &#39;x&#39;" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page


def test_the_page_escapes_rule_names_and_labels_and_links_rules(
    client: FlaskClient, recorded: DetectionStore
) -> None:
    page = client.get("/", headers={"Accept": "text/html"}).text

    assert HTML_LABEL not in page
    assert "note=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    escaped_rule = "no &#34;quoted&#34; &#39;names&#39; &lt;/td&gt;&lt;b&gt;bold&lt;/b&gt;"
    assert f'<a href="#rule-1" class="rule-link">{escaped_rule}</a>' in page
    assert f'<tr id="rule-1" class="rule">\n      <td class="rule-name">{escaped_rule}</td>' in page
    assert '<a href="#rule-2" class="rule-link">must have memory limit</a>' in page
    assert "<b>bold</b>" not in page


def test_the_page_names_what_is_wrong(client: FlaskClient, health: Health) -> None:
    health.engine_unreachable("connection refused")

    page = client.get("/", headers={"Accept": "text/html"}).text

    assert 'id="health">unhealthy<' in page
    assert "docker engine unreachable: connection refused" in page


def test_recent_page_and_empty_page(client: FlaskClient, swept: Health) -> None:
    page = client.get("/recent", headers={"Accept": "text/html"}).text

    assert "Detections since the last sweep began" in page
    assert "No container has been detected since the last sweep began." in page


# -- /rules, /triggers, /config ----------------------------------------------------------------------------


def test_rules_and_triggers_give_the_file_text_as_a_json_string(client: FlaskClient) -> None:
    assert get_json(client, "/rules") == RULES_TEXT
    assert get_json(client, "/triggers") == TRIGGERS_TEXT


def test_structured_rules_list_names_severities_and_modes(client: FlaskClient, policy: Policy) -> None:
    body = get_json(client, "/rules?structured=1")

    assert isinstance(body, dict)
    assert body["text"] == RULES_TEXT
    assert body["path"] == policy.sources["rules"].path
    assert body["sha256"] == policy.sources["rules"].sha256
    assert body["version"] == policy.version
    assert [(r["name"], r["severity"], r["mode"], r["effective_mode"]) for r in body["rules"]] == [
        (QUOTED_RULE, "high", None, "KILL"),
        (SAFE_RULE, "medium", "WARN", "WARN"),
    ]
    triggers = get_json(client, "/triggers?structured=1")
    assert isinstance(triggers, dict)
    assert triggers["triggers"] == [{"name": "log it"}] and triggers["text"] == TRIGGERS_TEXT


def test_rules_page_escapes_the_file(client: FlaskClient) -> None:
    page = client.get("/rules", headers={"Accept": "text/html"}).text

    assert "&lt;/td&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page
    assert '<a href="/#rule-1">' in page


def test_config_has_settings_files_and_rules_version(client: FlaskClient, policy: Policy) -> None:
    body = get_json(client, "/config")

    assert isinstance(body, dict)
    assert body["mode"] == "KILL" and body["check_interval_s"] == 600
    assert body["rules_version"] == policy.version
    assert body["files"]["rules"]["path"] == policy.sources["rules"].path
    assert body["host"] == HOST and "version" in body
    assert body["api_token_set"] is False


# -- /healthz ----------------------------------------------------------------------------------------------


def test_healthz_is_200_while_the_engine_answers_and_503_naming_it_when_it_stops(
    client: FlaskClient, health: Health
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "problems": [],
        "warnings": [],
        "mode": "KILL",
        "version": response.json["version"],
        "host": HOST,
    }

    health.engine_unreachable("Cannot connect to the Docker daemon")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "unhealthy"
    assert response.json["problems"] == ["docker engine unreachable: Cannot connect to the Docker daemon"]


def test_healthz_names_a_late_sweep_and_a_lost_event_stream(make_app: MakeApp, health: Health) -> None:
    client = make_app(run_start_events=True, check_interval_s=1).test_client()
    ago = datetime.now(UTC) - timedelta(seconds=10)
    health.sweep_finished(ago - timedelta(seconds=1), ago)

    response = client.get("/healthz")

    assert response.status_code == 503
    problems = response.json["problems"] if response.json else []
    assert "event stream disconnected" in problems
    assert any("no sweep finished" in p for p in problems)


# -- auth and read-only ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_with_a_token_every_endpoint_but_healthz_needs_it(make_app: MakeApp, path: str) -> None:
    client = make_app(api_token="s3cret-token").test_client()
    good = {"Authorization": "Bearer s3cret-token"}

    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "s3cret-token"},
        {"Authorization": "Basic s3cret-token"},
    ):
        response = client.get(path, headers=headers)
        if path == "/healthz":
            assert response.status_code == 200
            continue
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "s3cret" not in response.text and "wrong" not in response.text
    assert client.get(path, headers=good).status_code == 200
    assert client.get(path, headers={"Authorization": "bearer s3cret-token"}).status_code == 200


def test_metrics_can_be_public_while_the_rest_needs_the_token(make_app: MakeApp) -> None:
    client = make_app(api_token="s3cret-token", metrics_public=True).test_client()

    assert client.get("/metrics").status_code == 200
    assert client.get("/").status_code == 401
    assert client.get("/config").status_code == 401
    assert client.get("/nowhere").status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_nothing_changes_anything(client: FlaskClient, path: str, method: str) -> None:
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response.mimetype == "application/json"


def test_unknown_paths_are_json_404s(client: FlaskClient) -> None:
    response = client.get("/nowhere")

    assert response.status_code == 404 and response.json is not None
    assert response.json["error"] == "not found"


def test_a_failing_store_is_a_503_not_a_crash(
    client: FlaskClient, store: DetectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("state/detections.db: cannot read detections: disk I/O error")

    monkeypatch.setattr(store, "detections", broken)

    response = client.get("/")

    assert response.status_code == 503
    assert response.json is not None and response.json["error"] == "detections store unavailable"


# -- metrics -----------------------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_known_detections(
    client: FlaskClient,
    recorded: DetectionStore,
    metrics: Metrics,
    store: DetectionStore,
    make_finding: MakeFinding,
) -> None:
    store.record(make_finding(container_id="d" * 64, rules=(SAFE_RULE,)))
    metrics.detections.labels(rule=SAFE_RULE, mode="WARN", source="event", action="would stop").inc(2)
    metrics.actions.labels(action="stop", outcome="stopped").inc()

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    values = samples(response.text)
    assert values["containers_stopped_total", ()] == 3
    assert "# TYPE containers_stopped_total counter" in response.text
    key = (("action", "would stop"), ("mode", "WARN"), ("rule", SAFE_RULE), ("source", "event"))
    assert values["docker_enforcer_detections_total", key] == 2
    assert values["docker_enforcer_actions_total", (("action", "stop"), ("outcome", "stopped"))] == 1
    assert (
        values[
            "docker_enforcer_build_info",
            (("mode", "KILL"), ("version", response.text.split('version="')[1].split('"')[0])),
        ]
        == 1
    )


# -- never a leak ------------------------------------------------------------------------------------------


def test_no_endpoint_page_or_log_shows_env_values_command_line_or_the_token(
    make_app: MakeApp, store: DetectionStore, swept: Health, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok-9f8e7d6c5b4a"
    params = {
        "Name": "/leaky",
        "Image": "sha256:abc",
        "Path": "/bin/server",
        "Args": ["--password=cmdline-secret-1"],
        "Config": {
            "Image": "busybox",
            "Env": ["DB_PASSWORD=env-secret-2", "PATH=/usr/bin"],
            "Cmd": ["/bin/server", "--password=cmdline-secret-1"],
            "Entrypoint": ["entry-secret-3"],
            "Labels": {"team": "blue"},
        },
        "HostConfig": {"Privileged": True},
    }
    store.record(
        Finding(
            container_id="e" * 64,
            name="leaky",
            image="busybox",
            rules=(QUOTED_RULE,),
            mode=Mode.KILL,
            action=Action.PREVENT,
            outcome=Outcome.PREVENTED,
            source=Source.CREATE,
            labels={"team": "blue"},
            config=safe_config(params),
        )
    )
    client = make_app(api_token=token).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    secrets = ("env-secret-2", "cmdline-secret-1", "entry-secret-3", token)

    with caplog.at_level(logging.DEBUG):
        bodies = []
        for path in (
            *ENDPOINTS,
            "/?show_all_violated_rules=1&show_image_and_labels=1",
            "/rules?structured=1",
        ):
            for accept in ("application/json", BROWSER_ACCEPT):
                bodies.append(client.get(path, headers={**auth, "Accept": accept}).text)
            bodies.append(client.get(path, headers={"Authorization": f"Bearer {token}x"}).text)
        assert any("leaky" in body for body in bodies)
    for secret in secrets:
        assert all(secret not in body for body in bodies), secret
        assert secret not in caplog.text


@pytest.mark.parametrize("path", [*ENDPOINTS, "/nowhere", "/?limit=x"])
def test_every_answer_says_nosniff_and_pages_may_not_be_framed(make_app: MakeApp, path: str) -> None:
    for client, headers in (
        (make_app().test_client(), {}),
        (make_app().test_client(), {"Accept": BROWSER_ACCEPT}),
        (make_app().test_client(), {"Host": "rebind.attacker.example"}),
        (make_app(api_token="s3cret-token").test_client(), {}),
    ):
        response = client.get(path, headers=headers)
        assert response.headers["X-Content-Type-Options"] == "nosniff", (path, headers, response.status)
        if response.mimetype == "text/html":
            policy = response.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
