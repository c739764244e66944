"""OWNER_LABEL and OWNER_LABELS: the first of the named labels set on a container gives its `owner`; with
OWNER_LABEL, the compose project and then the Swarm service are the fallback; none, `[unknown]`.

On `docker inspect` JSON captured from the isolated engine (tests/data), through the container object rules
see, the gatherer the daemon uses and `audit --from`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.daemon import Containers, DaemonFactory
from test_gather import FakeHost, gatherer_for

from enforcer.audit import containers_from_file
from enforcer.facts.container import OWNER_SHOWN, UNKNOWN_OWNER, Container, owner_of
from enforcer.settings import Settings, SettingsError

DATA = Path(__file__).resolve().parent / "data"
LABELLED = json.loads((DATA / "binds_labels.json").read_text())  # Owner=alice, com.example.Team=payments
PLAIN = json.loads((DATA / "plain.json").read_text())  # no labels


def one(params: Any) -> dict[str, Any]:
    return params[0] if isinstance(params, list) else params


def owner(params: Any, *labels: str) -> str:
    p = one(params)
    return Container(p["Id"], p, owner_labels=labels).owner


def test_without_owner_labels_the_owner_is_unknown_as_in_the_original() -> None:
    assert Settings.from_env({}).owner_labels == ()
    assert owner(LABELLED) == "[unknown]" == UNKNOWN_OWNER


def test_the_first_label_set_on_the_container_wins() -> None:
    assert owner(LABELLED, "com.example.Team", "Owner") == "payments"
    assert owner(LABELLED, "Owner", "com.example.Team") == "alice"
    assert owner(LABELLED, "maintainer", "Owner") == "alice"  # the first is not set: the next one is used


def test_none_of_the_labels_set_gives_unknown() -> None:
    assert owner(LABELLED, "maintainer", "team") == "[unknown]"
    assert owner(PLAIN, "Owner") == "[unknown]"


def test_label_names_match_in_any_case_as_params_keys_do() -> None:
    assert owner(LABELLED, "owner") == "alice"
    assert owner(LABELLED, "COM.EXAMPLE.TEAM") == "payments"


def test_an_empty_label_value_names_no_owner() -> None:
    p = json.loads(json.dumps(one(LABELLED)))
    p["Config"]["Labels"] = {"Owner": " ", "team": "ops"}
    assert owner(p, "Owner", "team") == "ops"
    assert owner_of({"Owner": ""}, ["Owner"]) == "[unknown]"


def test_an_explicit_owner_is_kept() -> None:
    p = one(LABELLED)
    assert Container(p["Id"], p, owner="bob", owner_labels=("Owner",)).owner == "bob"


def test_the_gatherer_gives_each_container_its_owner() -> None:
    host = FakeHost(json.loads((DATA / "all.json").read_text()))
    for gatherer in gatherer_for(host, owner_labels=("team", "Owner")):
        owners = {c.name: c.owner for c in gatherer.all_running("periodic")}
        assert owners == {"plain": "[unknown]", "limits": "[unknown]", "binds_labels": "alice"}
        labelled = one(LABELLED)["Id"]
        assert gatherer.one(labelled, "event").owner == "alice"
        assert gatherer.before_start(labelled, one(LABELLED)).owner == "alice"


def test_audit_from_a_file_reads_the_owner_too(tmp_path: Path) -> None:
    saved = tmp_path / "inspect.json"
    saved.write_text(json.dumps([one(PLAIN), one(LABELLED)]))
    owners = {c.name: c.owner for c in containers_from_file(saved, ("Owner",))}
    assert owners == {"plain": "[unknown]", "binds_labels": "alice"}


def test_owner_labels_setting() -> None:
    assert Settings.from_env(
        {"OWNER_LABELS": " com.example.owner, maintainer,,maintainer "}
    ).owner_labels == (
        "com.example.owner",
        "maintainer",
    )
    assert Settings.from_env({"OWNER_LABELS": ""}).owner_labels == ()
    assert Settings.from_env({"OWNER_LABELS": "team"}).public()["owner_labels"] == ["team"]


@pytest.mark.parametrize("value", ["owner=alice", "com.example owner"])
def test_a_bad_owner_label_names_the_variable_and_the_value(value: str) -> None:
    with pytest.raises(SettingsError, match="OWNER_LABELS=.*is not a label name") as caught:
        Settings.from_env({"OWNER_LABELS": value})
    assert caught.value.variable == "OWNER_LABELS"


COMPOSED = {"com.docker.compose.project": "shop", "com.docker.swarm.service.name": "shop_web"}
SWARMED = {"com.docker.swarm.service.name": "shop_web"}


def chain(**env: str) -> tuple[str, ...]:
    return Settings.from_env(env).owner_label_chain


def test_owner_label_then_compose_project_then_swarm_service() -> None:
    labels = chain(OWNER_LABEL="com.example.owner")
    assert labels == ("com.example.owner", "com.docker.compose.project", "com.docker.swarm.service.name")
    assert owner_of({"com.example.owner": "team-a", **COMPOSED}, labels) == "team-a"
    assert owner_of(COMPOSED, labels) == "shop"
    assert owner_of(SWARMED, labels) == "shop_web"
    assert owner_of({}, labels) == "[unknown]"


def test_owner_labels_alone_keep_what_they_did_and_both_combine() -> None:
    assert chain() == ()
    assert chain(OWNER_LABELS="team,maintainer") == ("team", "maintainer")  # no fallback: as it landed
    assert owner_of(COMPOSED, chain(OWNER_LABELS="team")) == "[unknown]"
    both = chain(OWNER_LABEL="owner", OWNER_LABELS="team,owner")
    assert both == ("owner", "team", "com.docker.compose.project", "com.docker.swarm.service.name")
    assert owner_of({"team": "ops", **COMPOSED}, both) == "ops"


@pytest.mark.parametrize("value", ["a,b", "owner=alice"])
def test_owner_label_takes_one_label_name(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"OWNER_LABEL": value})
    assert caught.value.variable == "OWNER_LABEL"
    assert Settings.from_env({"OWNER_LABEL": " team "}).owner_label == "team"
    assert Settings.from_env({"OWNER_LABEL": "team"}).public()["owner_label"] == "team"


def test_the_daemon_records_the_compose_project_as_owner(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(MODE="WARN", OWNER_LABEL="com.example.owner")
    containers.run("bad-labelled", labels={"com.example.owner": "team-a", **COMPOSED})
    containers.run("bad-composed", labels=COMPOSED)
    containers.run("bad-swarmed", labels=SWARMED)
    for name in ("bad-labelled", "bad-composed", "bad-swarmed"):
        assert enforcer.wait_for_violation(name)
    owners = {d["name"]: d["owner"] for d in enforcer.get("/")["detections"]}
    assert owners == {"/bad-labelled": "team-a", "/bad-composed": "shop", "/bad-swarmed": "shop_web"}


def test_the_daemon_records_the_owner_named_by_the_labels(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(MODE="WARN", OWNER_LABELS="maintainer,team")
    containers.run("bad-owned", labels={"team": "payments"})
    containers.run("bad-unowned")
    enforcer.wait_for_violation("bad-owned")
    enforcer.wait_for_violation("bad-unowned")
    owners = {d["name"]: d["owner"] for d in enforcer.get("/")["detections"]}
    assert owners == {"/bad-owned": "payments", "/bad-unowned": "[unknown]"}


def test_an_owner_is_at_most_owner_shown_characters() -> None:
    """The owner label is chosen by whoever creates the container, of any size, and travels to the store, the
    API, every notifier (an Alertmanager label) and the episodes: its first OWNER_SHOWN characters do."""
    assert owner_of({"owner": "t" * 100_000}, ["owner"]) == "t" * (OWNER_SHOWN - 1) + "…"
    assert owner_of({"owner": "t" * OWNER_SHOWN}, ["owner"]) == "t" * OWNER_SHOWN
