"""The container object rules receive: its attributes, and params/metrics read-only and case-insensitive.

Runs on `docker inspect` / `docker stats` output captured from the isolated engine (tests/data/capture.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from enforcer.facts.container import UNKNOWN_OWNER, Container, FactNotGathered, FactUnavailable, Missing
from enforcer.facts.views import CaseInsensitiveMap, FrozenList, ReadOnlyError, wrap

DATA = Path(__file__).resolve().parent / "data"


def inspected(name: str) -> dict[str, Any]:
    """The one container of a captured `docker inspect` list."""
    return json.loads((DATA / f"{name}.json").read_text())[0]


def stats() -> dict[str, Any]:
    return json.loads((DATA / "stats.json").read_text())


@pytest.fixture
def labelled() -> Container:
    return Container(inspected("binds_labels")["Id"], inspected("binds_labels"), metrics=stats(), position=2)


# -- the original's attributes -----------------------------------------------------------------------------
def test_attributes_of_the_original_container(labelled: Container) -> None:
    params = inspected("binds_labels")
    assert labelled.cid == params["Id"]
    assert labelled.position == 2
    assert labelled.check_source == "periodic"
    assert labelled.owner == UNKNOWN_OWNER == "[unknown]"
    assert labelled.params["Id"] == params["Id"]
    assert labelled.metrics["memory_stats"]["usage"] == stats()["memory_stats"]["usage"]


def test_str_is_the_name_as_docker_gives_it(labelled: Container) -> None:
    assert str(labelled) == "/binds_labels"
    assert labelled.name == "binds_labels"


def test_str_without_a_name_is_the_id() -> None:
    assert str(Container("123", {"param1": 1})) == "123"
    assert str(Container("123", {"Name": "container1"})) == "container1"


def test_check_source_and_owner_can_be_given() -> None:
    c = Container("123", {}, check_source="event", owner="alice")
    assert (c.check_source, c.owner) == ("event", "alice")


def test_image_is_config_image_as_typed() -> None:
    assert Container("x", inspected("plain")).image == "busybox"
    assert Container("x", inspected("limits")).image == "busybox:latest"
    assert Container("x", inspected("plain"), image="other:1").image == "other:1"


# -- case-insensitive at every depth ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("HostConfig", "Memory"), 67108864),
        (("hostconfig", "memory"), 67108864),
        (("HOSTCONFIG", "cpuQuota"), 50000),
        (("hostconfig", "cpuperiod"), 100000),
        (("State", "Running"), True),
        (("state", "running"), True),
    ],
)
def test_params_keys_match_in_any_case(path: tuple[str, ...], expected: object) -> None:
    value: Any = Container("x", inspected("limits")).params
    for key in path:
        value = value[key]
    assert value == expected


def test_label_keys_match_in_any_case(labelled: Container) -> None:
    labels = labelled.params["config"]["labels"]
    assert labels["com.example.Team"] == "payments"
    assert labels["com.example.team"] == "payments"
    assert labels["COM.EXAMPLE.TEAM"] == "payments"
    assert labels["owner"] == labels["Owner"] == "alice"
    assert "OWNER" in labels
    assert labels.get("oWnEr") == "alice"
    assert labelled.labels["owner"] == "alice"


def test_keys_inside_lists_match_in_any_case(labelled: Container) -> None:
    mounts = labelled.params["mounts"]
    assert [m["source"] for m in mounts] == ["/etc", "/var/tmp"]
    assert mounts[0]["Source"] == mounts[0]["SOURCE"] == "/etc"


def test_metrics_keys_match_in_any_case(labelled: Container) -> None:
    usage = stats()["memory_stats"]["usage"]
    assert labelled.metrics["memory_stats"]["usage"] == usage
    assert labelled.metrics["Memory_Stats"]["USAGE"] == usage


def test_keys_keep_their_docker_spelling_when_listed(labelled: Container) -> None:
    assert "HostConfig" in list(labelled.params)
    assert set(labelled.params["Config"]["Labels"]) == {"com.example.Team", "Owner"}
    assert len(labelled.params["Config"]["Labels"]) == 2


def test_an_exact_key_wins_over_another_spelling() -> None:
    labels = wrap({"team": "lower", "Team": "upper"})
    assert labels["team"] == "lower"
    assert labels["Team"] == "upper"


def test_missing_keys_raise_key_error(labelled: Container) -> None:
    with pytest.raises(KeyError):
        labelled.params["HostConfig"]["NoSuchKey"]
    with pytest.raises(KeyError):
        labelled.params[42]  # type: ignore[index]
    assert "NoSuchKey" not in labelled.params
    assert 42 not in labelled.params


def test_json_null_is_none() -> None:
    params = Container("x", inspected("plain")).params
    assert params["HostConfig"]["Binds"] is None
    assert params["config"]["entrypoint"] is None
    assert params["Config"]["Env"] is None


def test_views_compare_equal_to_plain_json(labelled: Container) -> None:
    raw = inspected("binds_labels")
    assert labelled.params["Config"]["Labels"] == raw["Config"]["Labels"]
    assert labelled.params["HostConfig"]["Binds"] == ["/etc:/host-etc:ro", "/var/tmp:/scratch"]
    assert labelled.params["Config"]["Cmd"] == ["sleep", "3600"]
    assert Container("x", inspected("plain")).params["Config"]["Labels"] == {}
    assert labelled.params == wrap(raw)


# -- read-only ------------------------------------------------------------------------------------------
def test_params_cannot_be_changed(labelled: Container) -> None:
    params = labelled.params
    with pytest.raises(TypeError):
        params["Name"] = "/other"  # type: ignore[index]
    with pytest.raises(TypeError):
        params["Config"]["Labels"]["Owner"] = "mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        del params["HostConfig"]  # type: ignore[attr-defined]
    assert params["Name"] == "/binds_labels"
    assert params["Config"]["Labels"]["Owner"] == "alice"


@pytest.mark.parametrize(
    "change",
    [
        lambda binds: binds.append("/:/host"),
        lambda binds: binds.extend(["/:/host"]),
        lambda binds: binds.insert(0, "/:/host"),
        lambda binds: binds.remove("/etc:/host-etc:ro"),
        lambda binds: binds.pop(),
        lambda binds: binds.clear(),
        lambda binds: binds.sort(),
        lambda binds: binds.reverse(),
        lambda binds: binds.__setitem__(0, "/:/host"),
        lambda binds: binds.__delitem__(0),
        lambda binds: binds.__iadd__(["/:/host"]),
        lambda binds: binds.__imul__(2),
    ],
)
def test_lists_cannot_be_changed(labelled: Container, change: Any) -> None:
    binds = labelled.params["HostConfig"]["Binds"]
    assert isinstance(binds, FrozenList)
    with pytest.raises(ReadOnlyError):
        change(binds)
    assert binds == ["/etc:/host-etc:ro", "/var/tmp:/scratch"]


def test_metrics_cannot_be_changed(labelled: Container) -> None:
    with pytest.raises(TypeError):
        labelled.metrics["memory_stats"]["usage"] = 0  # type: ignore[index]
    with pytest.raises(ReadOnlyError):
        labelled.metrics["cpu_stats"]["cpu_usage"]["percpu_usage"].append(1)


def test_the_captured_json_is_left_untouched() -> None:
    raw = inspected("binds_labels")
    before = json.dumps(raw, sort_keys=True)
    c = Container(raw["Id"], raw)
    c.params["hostconfig"]["binds"]
    c.params["config"]["labels"]["owner"]
    assert json.dumps(raw, sort_keys=True) == before
    assert c.params.raw() == raw


def test_facts_serialize_and_copy_like_the_original_plain_dicts() -> None:
    raw = inspected("binds_labels")
    c = Container(raw["Id"], raw)
    assert json.loads(json.dumps(c.params)) == raw
    assert json.loads(json.dumps(c.params["HostConfig"])) == raw["HostConfig"]
    copied = c.params.copy()
    copied["Name"] = "/changed"  # a copy is the rule's own to change
    assert c.params["Name"] == raw["Name"]
    deep = copy.deepcopy(c.params)
    deep["HostConfig"]["Binds"].append("/x:/x")
    assert c.params["HostConfig"]["Binds"] == raw["HostConfig"]["Binds"]
    assert dict(c.params["config"]["labels"].items()) == raw["Config"]["Labels"]
    assert isinstance(c.params, dict)
    with pytest.raises(ReadOnlyError):
        c.params.update({"Name": "/x"})


def test_read_only_error_is_a_type_error() -> None:
    assert issubclass(ReadOnlyError, TypeError)


def test_wrap_leaves_scalars_and_wrapped_values_alone() -> None:
    view = CaseInsensitiveMap({"a": 1})
    assert wrap(view) is view
    frozen = FrozenList([1])
    assert wrap(frozen) is frozen
    for scalar in (None, 1, 1.5, "s", True):
        assert wrap(scalar) is scalar


# -- facts not in hand --------------------------------------------------------------------------------------
def test_a_fact_not_gathered_raises_and_is_noted_even_when_caught() -> None:
    c = Container("x", inspected("plain"), metrics=Missing("metrics"), position=Missing("position"))
    for _ in range(2):
        with pytest.raises(FactNotGathered):
            c.position  # noqa: B018
    with pytest.raises(FactNotGathered):
        c.metrics  # noqa: B018
    assert (c.take_wanted(), c.take_wanted()) == ("position", None)  # the first one read, once


def test_with_facts_fills_them_in_a_copy() -> None:
    c = Container("x", inspected("plain"), metrics=Missing("metrics"), position=Missing("position"))
    full = c.with_facts(metrics=stats(), position=4)
    assert (c.all_gathered, c.with_facts(metrics=stats()).all_gathered, full.all_gathered) == (
        False,
        False,
        True,
    )
    assert full.metrics["MEMORY_STATS"]["usage"] > 0
    assert (full.position, full.name, full.image, full.check_source) == (4, c.name, c.image, c.check_source)
    assert full.params is c.params
    with pytest.raises(FactNotGathered):
        c.metrics  # noqa: B018


def test_a_fact_not_known_yet_or_that_failed_raises_without_being_noted() -> None:
    before_start = Missing("metrics", why="metrics are not known before the container starts")
    failed = Missing("position", failure=KeyError("list containers: engine says no"))
    c = Container("x", inspected("plain"), metrics=before_start, position=failed)
    assert c.all_gathered  # nothing the checker could gather
    with pytest.raises(FactUnavailable, match="before the container starts"):
        c.metrics  # noqa: B018
    for _ in range(3):  # raised afresh each time: no traceback piles up
        with pytest.raises(KeyError) as raised:
            c.position  # noqa: B018
        assert len(list(_frames(raised.value.__traceback__))) <= 2
    assert c.take_wanted() is None


def _frames(tb: Any) -> Any:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_metrics_default_to_empty() -> None:
    c = Container("x", inspected("plain"))
    assert dict(c.metrics) == {}
    with pytest.raises(KeyError):
        c.metrics["memory_stats"]
