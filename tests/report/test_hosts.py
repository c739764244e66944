"""The Host check (DNS rebinding): which names the API answers, through Flask's test client."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable

import pytest
from flask import Flask
from report_support import HOST

from enforcer.report.hosts import exposure_warning, host_name
from enforcer.status import Health

MakeApp = Callable[..., Flask]
ENDPOINTS = ("/", "/recent", "/rules", "/triggers", "/config", "/metrics", "/healthz", "/nowhere")
FOREIGN = "rebind.attacker.example"


def status_of(make_app: MakeApp, host: str, path: str = "/healthz", **settings: object) -> int:
    client = make_app(**settings).test_client()
    return client.get(path, headers={"Host": host}).status_code


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:8888",
        "localhost.",
        HOST,
        f"{HOST.upper()}.:8888",
        "127.0.0.1",
        "10.1.2.3:8888",
        "[::1]",
        "[::1]:8888",
        "[fe80::1%25eth0]:8888",
        "",
    ],
)
def test_ip_addresses_localhost_and_the_hosts_own_name_are_answered(make_app: MakeApp, host: str) -> None:
    assert status_of(make_app, host) == 200


@pytest.mark.parametrize(
    "host",
    [
        FOREIGN,
        f"{FOREIGN}:8888",
        "localhost.attacker.example",
        f"{HOST}.attacker.example",
        "127.0.0.1.nip.io",
        "::1",  # an IPv6 address without brackets is no Host header
        "[::1",
        "[not-an-address]:8888",
        "localhost:88x",
        "localhost:8888:8888",
        "[::1]x",
        "1.2.3.4.5",
    ],
)
def test_other_names_get_a_421_on_every_endpoint(make_app: MakeApp, host: str) -> None:
    client = make_app().test_client()
    for path in ENDPOINTS:
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 421, (host, path)
        assert response.mimetype == "application/json"
        body = json.loads(response.text)
        assert body["error"] == "misdirected request" and "ALLOWED_HOSTS" in body["message"]
        assert "attacker" not in response.text and host not in response.text


def test_the_host_check_comes_before_the_token(make_app: MakeApp) -> None:
    client = make_app(api_token="s3cret-token").test_client()
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/", headers={**good, "Host": FOREIGN}).status_code == 421
    assert client.get("/", headers={"Host": FOREIGN}).status_code == 421
    assert client.get("/", headers={"Host": "localhost"}).status_code == 401
    assert client.get("/", headers={**good, "Host": "localhost"}).status_code == 200


def test_allowed_hosts_adds_names(make_app: MakeApp) -> None:
    allowed = ("enforcer.example.com", "prom-target")
    assert status_of(make_app, "Enforcer.Example.com:8888", "/metrics", allowed_hosts=allowed) == 200
    assert status_of(make_app, "prom-target.", "/metrics", allowed_hosts=allowed) == 200
    assert status_of(make_app, "localhost", "/metrics", allowed_hosts=allowed) == 200
    assert status_of(make_app, "other.example.com", "/metrics", allowed_hosts=allowed) == 421
    assert status_of(make_app, "enforcer.example.com", "/metrics") == 421


def test_the_name_the_api_listens_on_is_answered(make_app: MakeApp) -> None:
    listen = {"listen_address": ("Enforcer.Internal", 8888)}
    assert status_of(make_app, "enforcer.internal:8888", **listen) == 200
    assert status_of(make_app, "enforcer.internal:8888") == 421


def test_a_star_turns_the_check_off(make_app: MakeApp) -> None:
    assert status_of(make_app, FOREIGN, "/", allowed_hosts=("*",)) == 200
    assert status_of(make_app, "[not-an-address]", "/", allowed_hosts=("*",)) == 200


def test_the_engines_host_name_is_answered_once_known(make_app: MakeApp, health: Health) -> None:
    client = make_app().test_client()
    assert client.get("/", headers={"Host": "docker-node-7:8888"}).status_code == 421
    health.engine_answered("Docker-Node-7")
    assert client.get("/", headers={"Host": "docker-node-7:8888"}).status_code == 200


def test_the_fully_qualified_name_is_answered(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def getfqdn(name: str = "") -> str:
        asked.append(name)
        return f"{name}.corp.example."

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    client = make_app().test_client()
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200
    assert asked == [], "no lookup for a name allowed without it"
    assert client.get("/", headers={"Host": f"{HOST}.corp.example"}).status_code == 200
    assert client.get("/", headers={"Host": FOREIGN}).status_code == 421
    assert asked == [HOST], "looked up once"


def test_a_refused_name_is_logged_once(make_app: MakeApp, caplog: pytest.LogCaptureFixture) -> None:
    client = make_app().test_client()
    with caplog.at_level(logging.WARNING, logger="enforcer.report.hosts"):
        for _ in range(3):
            client.get("/", headers={"Host": FOREIGN})
    [record] = caplog.records
    assert FOREIGN in record.getMessage() and "ALLOWED_HOSTS" in record.getMessage()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM.:80", "example.com"),
        ("example.com:", "example.com"),
        ("192.168.0.1:8888", None),
        ("[2001:db8::1]:8888", None),
        ("[192.168.0.1]", ""),  # brackets hold IPv6 only
        ("exa mple", "exa mple"),  # not a name: never equal to an allowed one
        ("   ", None),
    ],
)
def test_host_name_of_a_header(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("listen", "token", "warned"),
    [
        (("0.0.0.0", 8888), None, True),
        (("::", 8888), None, True),
        (("192.168.1.5", 8888), None, True),
        (("enforcer.example.com", 8888), None, True),
        (("0.0.0.0", 8888), "s3cret", False),
        (("127.0.0.1", 8888), None, False),
        (("127.0.0.2", 8888), None, False),
        (("::1", 8888), None, False),
        (("localhost", 8888), None, False),
    ],
)
def test_start_warns_of_an_api_beyond_loopback_without_a_token(
    listen: tuple[str, int], token: str | None, warned: bool
) -> None:
    warning = exposure_warning(listen, token)
    assert (warning is not None) == warned
    if warning:
        assert "API_TOKEN" in warning and "LISTEN_ADDRESS=127.0.0.1:8888" in warning
        assert token is None or token not in warning
