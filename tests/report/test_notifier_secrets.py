"""Notifier URLs and headers are secrets: /triggers, /config and the page show scheme and host only."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from report_support import HOST

from enforcer.judge.policy import load_policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.report.app import create_app
from enforcer.report.filetext import without_secrets
from enforcer.settings import Files, Settings

TOKEN = "T0KEN-9c2e1f"
NOTIFIERS = f"""import os
from enforcer import notify

SLACK_TOKEN = "xoxb-{TOKEN}"
triggers = [
    notify.slack("https://hooks.slack.com/services/T00/B00/{TOKEN}", owners={{"team-a": "https://chat.example/hooks/{TOKEN}"}}),
    notify.webhook("http://user:{TOKEN}@127.0.0.1:8080/hook?sig={TOKEN}", headers={{"Authorization": "Bearer {TOKEN}"}}),
    notify.webhook("http://127.0.0.1:8081/in", name="api key", headers={{"X-Api-Key": '{TOKEN}'}}),
    notify.alertmanager("http://127.0.0.1:9093"),
    {{"name": "plain", "trigger": lambda v: print(v, "token {TOKEN}{TOKEN}")}},
]
"""


@pytest.fixture
def notifier_client(tmp_path: Path, settings: Settings, health, store, metrics) -> FlaskClient:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notifiers"
    folder.mkdir(mode=0o755)
    (folder / "rules.py").write_text("rules = []\n")
    (folder / "triggers.py").write_text(NOTIFIERS)
    policy = load_policy(
        Settings(files=Files(rules=folder / "rules.py", triggers=folder / "triggers.py")), cwd=tmp_path
    )
    app = create_app(settings, health, PolicyInForce(policy), store, metrics, HOST)
    app.testing = True
    return app.test_client()


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/triggers", "application/json"),
        ("/triggers?structured=1", "application/json"),
        ("/triggers", "text/html"),
        ("/config", "application/json"),
        ("/config", "text/html"),
        ("/", "text/html"),
    ],
)
def test_no_notifier_secret_in_the_api_or_the_page(
    notifier_client: FlaskClient, path: str, accept: str
) -> None:
    response = notifier_client.get(path, headers={"Accept": accept})
    assert response.status_code == 200
    assert TOKEN not in response.text
    if path.startswith("/triggers"):
        assert "https://hooks.slack.com" in response.text and "http://127.0.0.1:9093" in response.text


def test_structured_triggers_name_each_receiver_by_scheme_and_host(notifier_client: FlaskClient) -> None:
    listing = notifier_client.get("/triggers?structured=1").json
    assert listing is not None
    assert listing["triggers"] == [
        {"name": "slack to https://hooks.slack.com (+1 owners)", "once": True, "repeat": False,
         "target": "slack to https://hooks.slack.com (+1 owners)"},
        {"name": "webhook to http://127.0.0.1:8080", "once": True, "repeat": False,
         "target": "webhook to http://127.0.0.1:8080"},
        {"name": "api key", "once": True, "repeat": False, "target": "webhook to http://127.0.0.1:8081"},
        {"name": "alertmanager to http://127.0.0.1:9093", "once": True, "repeat": True,
         "target": "alertmanager to http://127.0.0.1:9093"},
        {"name": "plain"},
    ]  # fmt: skip


def test_the_text_keeps_its_shape() -> None:
    text = without_secrets(NOTIFIERS)
    assert 'SLACK_TOKEN = "***"' in text
    assert (
        'notify.slack("https://hooks.slack.com/***", owners={"team-a": "https://chat.example/***"})' in text
    )
    assert 'notify.webhook("http://127.0.0.1:8080/***", headers={"Authorization": "***"})' in text
    assert "headers={\"X-Api-Key\": '***'}" in text
    assert 'notify.alertmanager("http://127.0.0.1:9093")' in text
    assert 'print(v, "token ***")' in text
    assert without_secrets('{"name": "no token here"}') == '{"name": "no token here"}'


@pytest.mark.parametrize("name", ["hmac_key", "signing_key", "PRIVATE_KEY", "webhookKey"])
def test_a_name_that_ends_in_key_holds_a_secret(name: str) -> None:
    assert without_secrets(f'{name} = "s3cr3t-value"') == f'{name} = "***"'
    assert without_secrets(f'headers={{"{name}": "s3cr3t-value"}}') == f'headers={{"{name}": "***"}}'
