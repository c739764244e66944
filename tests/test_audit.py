"""The audit report: judging saved `docker inspect` output, the JSON shape and the table."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from enforcer.audit import InspectFileError, audit_file, containers_from_file, table, verdict_json
from enforcer.facts.container import Container
from enforcer.facts.gather import start_key
from enforcer.judge.judge import JudgeOptions
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.verdict import RuleError, Verdict, WhitelistError
from enforcer.judge.whitelist import Whitelist
from enforcer.settings import parse_whitelist

DATA = Path(__file__).resolve().parent / "data"
ALL = DATA / "all.json"  # plain, limits, binds_labels, started in that order
JSON_KEYS = {
    "id", "name", "image", "violated_rules", "rule_errors", "whitelist_errors", "whitelisted", "exempt", "state"
}  # fmt: skip


def inspected(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"{name}.json").read_text())


def policy(*rules: Rule, white_list: str = "", image_white_list: str = "") -> Policy:
    wl = Whitelist(
        parse_whitelist("WHITE_LIST", white_list), parse_whitelist("IMAGE_WHITE_LIST", image_white_list)
    )
    return Policy(tuple(rules), wl, ())


MEMORY = Rule("must have memory limit", lambda c: c.params["hostconfig"]["memory"] == 0)
BINDS = Rule("no host binds", lambda c: bool(c.params["HostConfig"]["Binds"]))
THIRD = Rule("no more than 2", lambda c: c.position >= 2)
METRICS = Rule("uses over 1GB", lambda c: c.metrics["memory_stats"]["usage"] > 1024**3)


# -- saved inspect output ---------------------------------------------------------------------------------------
def test_containers_from_file_are_ordered_by_start_time(tmp_path: Path) -> None:
    shuffled = tmp_path / "inspect.json"
    data = inspected("all")
    shuffled.write_text(json.dumps([data[2], data[0], data[1]]))
    containers = containers_from_file(shuffled)
    assert [c.name for c in containers] == ["plain", "limits", "binds_labels"]
    assert [c.position for c in containers] == [0, 1, 2]
    assert all(c.check_source == "audit" for c in containers)
    assert all(dict(c.metrics) == {} for c in containers)


def test_a_single_inspect_object_is_accepted(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(inspected("plain")[0]))
    (c,) = containers_from_file(single)
    assert (c.name, c.position) == ("plain", 0)


def test_start_times_with_fewer_fraction_digits_sort_as_times(tmp_path: Path) -> None:
    # Docker drops trailing zeros: 07:00:00.1Z is earlier than 07:00:00.12Z, though it sorts after as text.
    base = inspected("plain")[0]
    stamps = {"a": "2026-01-01T07:00:00.12Z", "b": "2026-01-01T07:00:00.1Z", "c": "2026-01-01T07:00:00Z"}
    items = []
    for name, stamp in stamps.items():
        item = copy.deepcopy(base)
        item["Id"], item["Name"], item["State"]["StartedAt"] = name * 64, f"/{name}", stamp
        items.append(item)
    path = tmp_path / "inspect.json"
    path.write_text(json.dumps(items))
    assert [c.name for c in containers_from_file(path)] == ["c", "b", "a"]
    assert sorted(items, key=start_key) == [items[2], items[1], items[0]]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[", ":1: not valid JSON"),
        ('{"Id": "x",\n "Name": }', ":2: not valid JSON"),
        ('"text"', "expected a list of `docker inspect` objects"),
        ('[{"Name": "/no-id"}]', "expected a list of `docker inspect` objects, each with an Id"),
        ("[1, 2]", "expected a list of `docker inspect` objects"),
    ],
)
def test_bad_saved_output_is_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InspectFileError) as caught:
        containers_from_file(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_a_missing_saved_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InspectFileError, match="cannot be read"):
        containers_from_file(tmp_path / "missing.json")


# -- judging saved output ---------------------------------------------------------------------------------------
def test_audit_file_judges_every_container() -> None:
    verdicts = audit_file(ALL, policy(MEMORY, BINDS, THIRD), JudgeOptions(stop_on_first_violation=False))
    assert {v.subject.name: v.reasons for v in verdicts} == {
        "plain": ["must have memory limit"],
        "limits": [],
        "binds_labels": ["must have memory limit", "no host binds", "no more than 2"],
    }


def test_audit_file_metrics_rules_are_rule_errors() -> None:
    verdicts = audit_file(ALL, policy(METRICS), JudgeOptions())
    assert all(not v.verdict for v in verdicts)
    assert [[e.rule for e in v.errors] for v in verdicts] == [["uses over 1GB"]] * 3


def test_audit_file_applies_whitelists() -> None:
    verdicts = audit_file(
        ALL, policy(BINDS, MEMORY, white_list="binds_.*|no host binds,limits"), JudgeOptions()
    )
    by_name = {v.subject.name: v for v in verdicts}
    assert by_name["binds_labels"].whitelisted == ("no host binds",)
    assert by_name["binds_labels"].reasons == ["must have memory limit"]
    assert by_name["limits"].exempt == "WHITE_LIST entry limits"
    assert by_name["plain"].exempt is None


def test_audit_file_applies_image_whitelists() -> None:
    # busybox:latest exempts the containers typed `busybox` and `busybox:latest` alike
    verdicts = audit_file(ALL, policy(MEMORY, image_white_list="busybox:latest"), JudgeOptions())
    assert [v.exempt for v in verdicts] == ["IMAGE_WHITE_LIST entry busybox:latest"] * 3


# -- the JSON shape ---------------------------------------------------------------------------------------------
def test_verdict_json_shape() -> None:
    plain = inspected("plain")[0]
    c = Container(plain["Id"], plain)
    v = Verdict(c, (MEMORY,), (RuleError("broken", "KeyError: 'x'"),), ("no host binds",))
    out = verdict_json(v)
    assert set(out) == JSON_KEYS
    assert out == {
        "id": plain["Id"],
        "name": "plain",
        "image": "busybox",
        "violated_rules": ["must have memory limit"],
        "rule_errors": [{"rule": "broken", "error": "KeyError: 'x'"}],
        "whitelist_errors": [],
        "whitelisted": ["no host binds"],
        "exempt": None,
        "state": "running",
    }
    json.dumps(out)


def test_whitelist_lambda_errors_are_shown_with_the_rule_errors() -> None:
    plain = inspected("plain")[0]
    c = Container(plain["Id"], plain)
    v = Verdict(c, (MEMORY,), whitelist_errors=(WhitelistError("broken", "KeyError: 'x'"),))
    assert verdict_json(v)["whitelist_errors"] == [{"whitelist_rule": "broken", "error": "KeyError: 'x'"}]
    assert "whitelist rule broken: KeyError: 'x'" in table([v]).splitlines()[1]


def test_verdict_json_of_an_exempt_container() -> None:
    plain = inspected("plain")[0]
    out = verdict_json(Verdict(Container(plain["Id"], plain), exempt="WHITE_LIST entry plain"))
    assert out["exempt"] == "WHITE_LIST entry plain"
    assert out["violated_rules"] == []


# -- the table --------------------------------------------------------------------------------------------------
def test_table_has_one_row_per_container_and_the_five_columns() -> None:
    verdicts = audit_file(
        ALL,
        policy(
            Rule("broken", lambda c: 1 / 0), MEMORY, BINDS, white_list="limits,binds_labels|no host binds"
        ),
        JudgeOptions(stop_on_first_violation=False),
    )
    lines = table(verdicts).splitlines()
    assert lines[0].split() == ["CONTAINER", "IMAGE", "VIOLATED", "RULE", "ERRORS", "WHITELISTED"]
    assert len(lines) == 4
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"plain", "limits", "binds_labels"}
    assert "busybox" in rows["plain"]
    assert "must have memory limit" in rows["plain"]
    assert "broken: ZeroDivisionError: division by zero" in rows["plain"]
    assert "all (WHITE_LIST entry limits)" in rows["limits"]
    assert "busybox:latest" in rows["limits"]
    assert rows["binds_labels"].rstrip().endswith("no host binds")


def test_columns_are_aligned() -> None:
    verdicts = audit_file(ALL, policy(MEMORY), JudgeOptions())
    lines = table(verdicts).splitlines()
    image_column = lines[0].index("IMAGE")
    assert all(line[image_column:].startswith("busybox") for line in lines[1:])


def test_an_empty_audit_is_just_the_header() -> None:
    assert table([]).split() == ["CONTAINER", "IMAGE", "VIOLATED", "RULE", "ERRORS", "WHITELISTED"]
