"""WHITE_LIST, IMAGE_WHITE_LIST and whitelist lambdas, as users of the original wrote them (COMPAT.md).

The nine cases of the original's WhitelistTests, ported to the captured `plain` container (named `plain`,
image typed `busybox`, no CPU limit): without a whitelist it violates "must have CPU limit"; each of the
eight whitelist forms exempts it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from enforcer.dockerhost.errors import EngineError
from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.rules import Rule, WhitelistRule
from enforcer.judge.verdict import Verdict, WhitelistError
from enforcer.judge.whitelist import Whitelist, image_references
from enforcer.settings import Settings, parse_whitelist

DATA = Path(__file__).resolve().parent / "data"
CPU_RULE = "must have CPU limit"
RULES = (
    Rule(
        CPU_RULE,
        lambda c: c.params["HostConfig"]["CpuQuota"] == 0 and c.params["HostConfig"]["CpuPeriod"] == 0,
    ),
)


def inspected(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())[0]


def container(name: str = "plain", **kwargs: Any) -> Container:
    params = inspected(name)
    return Container(params["Id"], params, **kwargs)


def whitelist(white_list: str = "", image_white_list: str = "", *custom: WhitelistRule) -> Whitelist:
    return Whitelist(
        parse_whitelist("WHITE_LIST", white_list),
        parse_whitelist("IMAGE_WHITE_LIST", image_white_list),
        custom,
    )


def verdict(wl: Whitelist, c: Container | None = None, rules: tuple[Rule, ...] = RULES) -> Verdict:
    return judge(c or container(), rules, wl)


# -- the original's nine cases ---------------------------------------------------------------------------------
def test_violates_without_whitelist() -> None:
    assert verdict(whitelist()).verdict is True
    assert verdict(whitelist()).reasons == [CPU_RULE]


@pytest.mark.parametrize(
    ("white_list", "image_white_list"),
    [
        ("plain", ""),  # full name
        ("pla.*", ""),  # name regex
        (f"plain|{CPU_RULE}", ""),  # full name and rule
        (f"pl.*|{CPU_RULE}", ""),  # name regex and rule
        ("", "busybox"),  # image
        ("", "busy.*"),  # image regex
        ("", f"busybox|{CPU_RULE}"),  # image and rule
        ("", f"busy.*|{CPU_RULE}"),  # image regex and rule
    ],
)
def test_each_whitelist_form_exempts(white_list: str, image_white_list: str) -> None:
    v = verdict(whitelist(white_list, image_white_list))
    assert v.verdict is False
    assert v.violated == ()


# -- how entries match ----------------------------------------------------------------------------------------
def test_an_entry_for_all_rules_skips_the_container() -> None:
    calls = []
    rules = (Rule("counted", lambda c: calls.append(c) or True),)
    v = verdict(whitelist("plain"), rules=rules)
    assert v.exempt == "WHITE_LIST entry plain"
    assert calls == []
    v = verdict(whitelist("", "busybox"), rules=rules)
    assert v.exempt == "IMAGE_WHITE_LIST entry busybox"


def test_an_entry_for_one_rule_exempts_from_that_rule_only() -> None:
    rules = (*RULES, Rule("always", lambda c: True))
    v = verdict(whitelist(f"plain|{CPU_RULE}"), rules=rules)
    assert v.exempt is None
    assert v.whitelisted == (CPU_RULE,)
    assert v.reasons == ["always"]


def test_an_entry_for_another_rule_does_not_exempt() -> None:
    v = verdict(whitelist("plain|some other rule", "busybox|some other rule"))
    assert v.reasons == [CPU_RULE]
    assert v.whitelisted == ()


@pytest.mark.parametrize("entry", ["plai", "lain", "pla", "plain2", "p", "/plain", "PLAIN", "xplain"])
def test_a_name_pattern_must_match_the_whole_name(entry: str) -> None:
    assert verdict(whitelist(entry)).verdict is True


@pytest.mark.parametrize("entry", ["plain", "p.*", ".*n", "pl[a-z]+", "plain|" + CPU_RULE])
def test_names_are_matched_without_the_leading_slash(entry: str) -> None:
    c = container()
    assert str(c) == "/plain"
    assert verdict(whitelist(entry), c).verdict is False


@pytest.mark.parametrize("entry", ["busybox", "busybox:latest", "busy.*"])
def test_busybox_and_busybox_latest_both_exempt_busybox(entry: str) -> None:
    typed_busybox = container("plain")
    assert typed_busybox.image == "busybox"
    assert verdict(whitelist("", entry), typed_busybox).verdict is False


@pytest.mark.parametrize("entry", ["busybox", "busybox:latest"])
def test_busybox_and_busybox_latest_both_exempt_busybox_latest(entry: str) -> None:
    typed_latest = container("limits")
    assert typed_latest.image == "busybox:latest"
    always = (Rule("always", lambda c: True),)
    assert verdict(whitelist(), typed_latest, always).verdict is True
    assert verdict(whitelist("", entry), typed_latest, always).verdict is False


@pytest.mark.parametrize("entry", ["busybox:1.36", "busy", "box", "sha256:.*", "alpine"])
def test_other_images_are_not_exempt(entry: str) -> None:
    assert verdict(whitelist("", entry)).verdict is True


def test_the_image_is_the_one_typed_not_the_image_id() -> None:
    c = container()
    assert c.params["Image"].startswith("sha256:")
    assert verdict(whitelist("", "sha256:.*"), c).verdict is True
    assert verdict(whitelist("", "busybox"), c).verdict is False


def test_a_resolved_image_name_is_used_for_a_container_run_by_id() -> None:
    params = inspected("plain")
    by_id = params | {"Config": params["Config"] | {"Image": params["Image"]}}
    assert verdict(whitelist("", "busybox"), Container(params["Id"], by_id)).verdict is True
    resolved = Container(params["Id"], by_id, image="busybox:latest")  # what FactGatherer gives
    assert verdict(whitelist("", "busybox"), resolved).verdict is False


@pytest.mark.parametrize(
    ("image", "references"),
    [
        ("busybox", ("busybox", "busybox:latest")),
        ("busybox:latest", ("busybox:latest", "busybox")),
        ("busybox:1.36", ("busybox:1.36",)),
        (
            "docker.io/library/busybox",
            ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox"),
        ),
        ("registry:5000/team/app", ("registry:5000/team/app", "registry:5000/team/app:latest")),
        ("app@sha256:abc", ("app@sha256:abc",)),
    ],
)
def test_image_references(image: str, references: tuple[str, ...]) -> None:
    refs = image_references(image)
    assert set(references) <= set(refs)
    assert refs[0] == image


def test_several_entries_comma_separated() -> None:
    wl = whitelist("web.*, db-1 ,plain|" + CPU_RULE, "alpine,nginx.*")
    assert verdict(wl).whitelisted == (CPU_RULE,)
    assert verdict(wl).verdict is False


def test_default_white_list_exempts_no_name() -> None:
    """The original exempted docker-enforcer and docker_enforcer: a name anyone can give a container."""
    defaults = Settings.from_env({})
    wl = Whitelist(defaults.white_list, defaults.image_white_list)
    params = inspected("plain")
    for name in ("docker-enforcer", "docker_enforcer"):
        c = Container(params["Id"], params | {"Name": f"/{name}"})
        assert verdict(wl, c).exempt is None
        assert verdict(wl, c).verdict is True


# -- whitelist lambdas (whitelist_rules.py) -----------------------------------------------------------------------
def test_a_whitelist_lambda_gets_the_container_and_the_rule_name() -> None:
    seen = []

    def check(c: Container, rule_name: str) -> bool:
        seen.append((c.name, rule_name))
        return c.params["Config"]["Image"] == "busybox"

    v = verdict(whitelist("", "", WhitelistRule("busybox is fine", check)))
    assert v.verdict is False
    assert v.whitelisted == (CPU_RULE,)
    assert seen == [("plain", CPU_RULE)]


def test_a_whitelist_lambda_returning_false_does_not_exempt() -> None:
    assert verdict(whitelist("", "", WhitelistRule("never", lambda c, r: False))).verdict is True


def test_a_raising_whitelist_lambda_exempts_nothing_and_crashes_nothing() -> None:
    wl = whitelist("", "", WhitelistRule("broken", lambda c, r: c.params["nope"]))
    v = verdict(wl)
    assert v.verdict is True
    assert v.errors == ()
    assert v.whitelist_errors == (WhitelistError("broken", "KeyError: 'nope'"),)
    assert str(v.whitelist_errors[0]) == "whitelist rule broken: KeyError: 'nope'"


def test_a_whitelist_lambda_that_calls_sys_exit_exempts_nothing_and_crashes_nothing() -> None:
    wl = whitelist("", "", WhitelistRule("exits", lambda c, r: sys.exit("bye")))
    v = verdict(wl)
    assert v.verdict is True
    assert v.whitelist_errors == (WhitelistError("exits", "SystemExit: bye"),)


def test_a_whitelist_lambda_error_is_kept_once_per_lambda_whatever_the_rules() -> None:
    rules = (*RULES, Rule("other", lambda c: True), Rule("third", lambda c: True))
    wl = whitelist(
        "",
        "",
        WhitelistRule("broken", lambda c, r: {"third": False}[r]),
        WhitelistRule("fine", lambda c, r: r == "third"),
        WhitelistRule("also broken", lambda c, r: 1 / 0),
    )
    v = verdict(wl, rules=rules)
    assert v.reasons == [CPU_RULE]  # stops at the first violation: the lambdas ran for one rule
    assert v.whitelist_errors == (
        WhitelistError("broken", f"KeyError: {CPU_RULE!r}"),
        WhitelistError("also broken", "ZeroDivisionError: division by zero"),
    )
    v = judge(container(), rules, wl, JudgeOptions(stop_on_first_violation=False))
    assert v.reasons == [CPU_RULE, "other"]
    assert v.whitelisted == ("third",)
    assert v.whitelist_errors == (  # "broken" raised for two rules: its first error is kept
        WhitelistError("broken", f"KeyError: {CPU_RULE!r}"),
        WhitelistError("also broken", "ZeroDivisionError: division by zero"),
    )


def test_a_whitelist_lambda_error_hides_the_containers_env_values() -> None:
    params = inspected("plain")
    params["Config"]["Env"] = ["DB_PASSWORD=hunter2-secret", "PATH=/bin"]
    c = Container(params["Id"], params)
    wl = whitelist("", "", WhitelistRule("leaky", lambda c, r: int(c.params["Config"]["Env"][0])))
    (error,) = verdict(wl, c).whitelist_errors
    assert "hunter2-secret" not in error.error
    assert error.error.startswith("ValueError: invalid literal for int() with base 10: ")


def test_any_whitelist_lambda_may_exempt() -> None:
    wl = whitelist(
        "",
        "",
        WhitelistRule("broken", lambda c, r: 1 / 0),
        WhitelistRule("no", lambda c, r: False),
        WhitelistRule("yes", lambda c, r: r == CPU_RULE),
    )
    assert verdict(wl).verdict is False
    assert wl.exempts_from_rule(container(), CPU_RULE) == "Whitelist rule 'yes'"


def test_name_entries_are_checked_before_whitelist_lambdas() -> None:
    calls = []
    wl = whitelist(f"plain|{CPU_RULE}", "", WhitelistRule("counted", lambda c, r: calls.append(r)))
    assert wl.exempts_from_rule(container(), CPU_RULE) == f"WHITE_LIST entry plain|{CPU_RULE}"
    assert calls == []


# -- sha256 image ids resolved to a repo tag (the original's DockerImageHelper cases) ---------------------------
IMAGE_ID = "sha256:7f6f52e2942811a77591960a62e9e88c2249c976b3fb83bf73aa1e9e570dfc51"


class FakeImages:
    """Stands in for DockerHost: only image_tags is used by FactGatherer.image_name."""

    def __init__(self, tags: list[str] | Exception) -> None:
        self.tags = tags
        self.calls: list[str] = []

    def image_tags(self, image_id: str) -> list[str]:
        self.calls.append(image_id)
        if isinstance(self.tags, Exception):
            raise self.tags
        return self.tags


def image_name(host: FakeImages, configured: str) -> str:
    gatherer = FactGatherer(host, GatherOptions())  # type: ignore[arg-type]
    try:
        return gatherer.image_name({"Config": {"Image": configured}})
    finally:
        gatherer.close()


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], IMAGE_ID),
        (["test1:latest"], "test1:latest"),
        (["test2:latest", "test1:latest"], "test2:latest"),
        (EngineError("inspect image: no such image"), IMAGE_ID),
    ],
)
def test_an_image_id_becomes_its_first_repo_tag(tags: list[str] | Exception, expected: str) -> None:
    host = FakeImages(tags)
    assert image_name(host, IMAGE_ID) == expected
    assert host.calls == [IMAGE_ID]


def test_an_image_name_is_not_looked_up() -> None:
    host = FakeImages(["other:1"])
    assert image_name(host, "busybox") == "busybox"
    assert host.calls == []


def test_image_tags_are_looked_up_once() -> None:
    host = FakeImages(["busybox:latest"])
    gatherer = FactGatherer(host, GatherOptions())  # type: ignore[arg-type]
    try:
        for _ in range(3):
            assert gatherer.image_name({"Config": {"Image": IMAGE_ID}}) == "busybox:latest"
    finally:
        gatherer.close()
    assert host.calls == [IMAGE_ID]
