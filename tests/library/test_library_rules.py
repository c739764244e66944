"""The library as rules files use it: rule dicts, selection, factory validation, tolerance of partial facts,
the judge and `docker-enforcer check`, and docs/rules.md kept in sync. No engine needed."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from enforcer.cli import main
from enforcer.facts.container import Container
from enforcer.facts.gather import params_from_summary
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.loader import RulesFileError, load_rules, parse_rules
from enforcer.judge.whitelist import Whitelist
from enforcer.library import (
    CATALOG,
    FACTORIES,
    LibraryError,
    MissingFacts,
    all_rules,
    cis,
    images,
    limits,
    proxies,
    select,
    spec,
)
from enforcer.library._inspect import canonical, parse_size
from enforcer.library.docs import render_markdown
from enforcer.settings import WhitelistEntry

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).resolve().parent / "examples"
LIBRARY_KEYS = {"id", "name", "rule", "severity", "description", "remediation", "cis", "tags"}


def example(name: str) -> dict[str, Any]:
    (params,) = json.loads((EXAMPLES / f"{name}.json").read_text())
    return params  # type: ignore[no-any-return]


def container(params: Mapping[str, Any]) -> Container:
    return Container(str(params.get("Id", "c0ffee")), params)


def every_rule() -> list[dict[str, Any]]:
    """Every rule that judges the container's own inspect data (the image rules read `c.image_info`, which
    these containers lack: they are not judged here, see test_library_examples.py)."""
    return all_rules() + [
        factory.example() for factory in FACTORIES if factory.factory.__module__ != images.__name__
    ]


def with_host_config(**host_config: Any) -> Container:
    return container(
        {"Id": "abc", "Name": "/x", "Config": {"Image": "busybox:1.36"}, "HostConfig": host_config}
    )


# -- rule dicts ----------------------------------------------------------------------------------------------
def test_every_ready_rule_is_an_ordinary_rule_dict_the_loader_accepts() -> None:
    rules = every_rule()
    for rule in rules:
        assert set(rule) == LIBRARY_KEYS
        assert rule["description"] and rule["remediation"]
        assert "," not in rule["name"] and "|" not in rule["name"]
    loaded = parse_rules(Path("rules.py"), all_rules())
    assert [r.meta["id"] for r in loaded] == [s.id for s in CATALOG]
    assert loaded[0].summary()["cis"] == "5.2"


def test_ids_and_names_are_unique_and_cis_ids_are_v16() -> None:
    assert len({s.id for s in CATALOG}) == len({s.name for s in CATALOG}) == len(CATALOG)
    assert spec("no-privileged").cis == "5.5"
    assert spec("no-docker-socket").cis == "5.32"
    assert spec("no-host-userns").cis == "5.31"
    assert spec("apparmor-profile").cis == "5.2"
    assert "5.4 in v1.2 to v1.5" in spec("no-privileged").description
    assert spec("no-latest-image").cis is None


def test_each_call_gives_new_dicts() -> None:
    first = cis.rules()
    first[0]["mode"] = "WARN"
    first[0]["tags"].append("mine")
    again = cis.rules()[0]
    assert "mode" not in again and "mine" not in again["tags"]


def test_groups() -> None:
    assert [r["id"] for r in cis.rules()] == [s.id for s in cis.SPECS]
    assert all(r["cis"] and r["cis"].startswith("5.") for r in cis.rules())
    assert [r["id"] for r in proxies.rules()] == ["no-privileged", "no-host-network", "no-docker-socket"]
    assert [r["id"] for r in limits.rules()] == ["no-latest-image", "no-root-user"]
    assert len(all_rules()) == len(CATALOG) == len(cis.SPECS) + len(cis.OPT_IN) + 2
    assert [r["id"] for r in cis.rules(include_opt_in=True)] == [s.id for s in cis.SPECS + cis.OPT_IN]
    assert "no-root-exec" not in {r["id"] for r in cis.rules()}  # opt-in: many hosts allow exec as root


# -- select and exclude ----------------------------------------------------------------------------------
def test_select_by_id_cis_id_and_tag_gives_each_rule_once_in_catalog_order() -> None:
    assert [r["id"] for r in select("no-docker-socket", "cis-5.5")] == ["no-privileged", "no-docker-socket"]
    assert [r["id"] for r in select("cis-5.4")] == ["no-added-capabilities", "no-dangerous-capabilities"]
    assert [r["id"] for r in select("proxy", "no-privileged", "NO-HOST-NETWORK")] == [
        r["id"] for r in proxies.rules()
    ]
    assert [r["id"] for r in select("cis")] == [r["id"] for r in cis.rules()]
    assert [r["id"] for r in select("cis-4.1")] == ["no-root-user"]
    assert (
        [r["id"] for r in select("cis-5.24")] == [r["id"] for r in select("no-root-exec")] == ["no-root-exec"]
    )
    assert [r["id"] for r in select("exec")] == ["no-privileged-exec", "no-root-exec"]


@pytest.mark.parametrize("keys", [("no-such-rule",), ("cis-9.9",), ("cis", "typo"), ("",)])
def test_select_refuses_keys_that_name_nothing(keys: tuple[str, ...]) -> None:
    with pytest.raises(LibraryError, match="names no library rule|is not a rule id"):
        select(*keys)


def test_select_needs_a_key() -> None:
    with pytest.raises(LibraryError, match="at least one"):
        select()


def test_exclude() -> None:
    ids = [r["id"] for r in cis.rules(exclude=["apparmor-profile", "cis-5.4", "namespaces"])]
    assert "apparmor-profile" not in ids and "no-added-capabilities" not in ids and "no-host-pid" not in ids
    assert "no-privileged" in ids
    assert [r["id"] for r in cis.rules(exclude="apparmor-profile")][0] == "no-selinux-disabled"
    with pytest.raises(LibraryError, match="exclude: 'no-root-user' names no library rule"):
        cis.rules(exclude=["no-root-user"])


# -- factories -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "size"),
    [("2g", 2 << 30), ("512m", 512 << 20), ("1.5G", 3 << 29), ("2GiB", 2 << 30), ("100", 100), (1024, 1024)],
)
def test_sizes(text: Any, size: int) -> None:
    assert parse_size(text, "t") == size


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: limits.memory_at_most("2x"), "memory_at_most: '2x' is not a size"),
        (lambda: limits.memory_at_most(0), "must be more than 0"),
        (lambda: limits.memory_at_most(True), "is not a size"),
        (lambda: limits.memory_at_most(None), "is not a size"),
        (lambda: limits.cpus_at_most("lots"), "cpus_at_most: 'lots' is not a number"),
        (lambda: limits.cpus_at_most(-1), "must be more than 0"),
        (lambda: limits.pids_at_most(1.5), "is not a whole number"),
        (lambda: limits.restart_retries_at_most(0), "must be more than 0"),
        (lambda: limits.capabilities_only("SYS_ADMINN"), "is not a Linux capability"),
        (lambda: limits.registries_only("acme"), "write 'docker.io/acme'"),
        (lambda: limits.registries_only("ghcr.io/acme/app:1.0"), "without a tag"),
        (lambda: limits.registries_only(), "at least one registry"),
        (lambda: limits.labels_required("has space"), "is not a label key"),
        (lambda: proxies.binds_only_under("relative/path"), "not an absolute host path"),
        (lambda: proxies.binds_only_under(), "at least one allowed folder"),
        (lambda: proxies.binds_only_under("/srv/a,b"), "pass name="),
        (lambda: proxies.require_label(""), "is not a label key"),
        (lambda: proxies.require_label("owner", 5), "value must be a string"),
        (lambda: proxies.cgroup_parent_under("a/b"), "absolute path"),
        (lambda: proxies.no_host_paths("/srv", writable_only="yes"), "True or False"),
        (lambda: proxies.no_engine_socket("docker.sock"), "not an absolute host path"),
        (lambda: limits.memory_at_most("1g", name="a|b"), "may not contain"),
    ],
)
def test_factories_refuse_bad_parameters_clearly(make: Any, message: str) -> None:
    with pytest.raises(LibraryError, match=message.replace("(", r"\(").replace("|", r"\|")):
        make()


def test_a_bad_parameter_is_a_load_time_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.py"
    path.write_text('from enforcer.library import limits\n\nrules = [limits.memory_at_most("2x")]\n')
    with pytest.raises(RulesFileError, match=r"rules.py:3: LibraryError: memory_at_most: '2x' is not a size"):
        load_rules(path)


def test_factory_names_and_the_name_override() -> None:
    assert limits.memory_at_most("1.5g")["name"] == "memory at most 1536m"
    assert limits.memory_at_most(3 << 30, name="small")["name"] == "small"
    assert proxies.binds_only_under("/srv/ci/", "/srv/ci")["name"] == "bind mounts only under /srv/ci"


# -- facts in any shape ----------------------------------------------------------------------------------
def _lowercase(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.lower(): _lowercase(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lowercase(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_lowercased_keys_give_the_same_answers(name: str) -> None:
    """The original lowercased every key of inspect data; rules must read both spellings."""
    params = example(name)
    original, lowered = container(params), container(_lowercase(params))
    for rule in every_rule():
        assert bool(rule["rule"](original)) == bool(rule["rule"](lowered)), rule["id"]


def test_disable_params_facts_give_answers_or_missing_facts_never_other_errors() -> None:
    params = example("owner-label")
    summary = {
        "Id": params["Id"],
        "Names": [params["Name"]],
        "Image": "busybox",
        "ImageID": params["Image"],
        "Labels": params["Config"]["Labels"],
    }
    partial = container(params_from_summary(summary))
    answered = set()
    for rule in every_rule():
        try:
            rule["rule"](partial)
        except MissingFacts as exc:
            assert "DISABLE_PARAMS" in str(exc)
        else:
            answered.add(rule["id"])
    # The exec rules read only `c.exec` (None here): they answer, and flag nothing.
    assert answered == {
        *("no-latest-image", "allowed-registries", "owner-label", "required-labels"),
        *("no-privileged-exec", "no-root-exec"),
    }


@pytest.mark.parametrize("host_config", [{}, "all null"])
def test_empty_and_null_fields_mean_docker_defaults(host_config: Any) -> None:
    params = example("plain")
    if host_config == "all null":
        host_config = dict.fromkeys(params["HostConfig"])
    params = {**params, "HostConfig": host_config, "Mounts": None, "NetworkSettings": None}
    c = container(params)
    flagged = {rule["id"] for rule in every_rule() if rule["rule"](c)}
    assert "no-privileged" not in flagged and "no-docker-socket" not in flagged
    assert {"memory-limit", "pids-limit", "read-only-rootfs", "no-default-bridge"} <= flagged


@pytest.mark.parametrize(
    ("bind", "reaches"),
    [
        ("/var/run/docker.sock:/s", True),
        ("/run/docker.sock:/s:ro", True),
        ("//var//run/../run/docker.sock:/s", True),
        ("/run/containerd/containerd.sock:/s", True),
        ("/var/run/docker/containerd/containerd.sock:/s", True),
        ("/home/me/.docker/desktop/docker.sock:/s", True),
        ("/run/user/1000:/r", True),
        ("/run/user:/r", True),
        ("/var/run:/r", True),
        ("/run:/r", True),
        ("/var:/v", True),
        ("/:/host", True),
        ("/proc:/p", True),
        ("/proc/1:/p", True),
        ("/proc/self/root/run:/p", True),
        ("/proc/1/cwd:/p", True),
        ("/proc/sys:/p", False),
        ("/var/lib/app:/data", False),
        ("/run/app:/a", False),
        ("dockersock:/s", False),
    ],
)
def test_socket_reachable_in_any_way(bind: str, reaches: bool) -> None:
    rule = spec("no-docker-socket").check
    assert rule(with_host_config(Binds=[bind])) is reaches


def test_mounts_from_each_source() -> None:
    sensitive = spec("no-sensitive-mounts-rw").check
    assert sensitive(with_host_config(Binds=["/etc:/e:z"]))
    assert not sensitive(with_host_config(Binds=["/etc:/e:ro,z"]))
    assert sensitive(with_host_config(Mounts=[{"Type": "bind", "Source": "/usr/lib", "Target": "/l"}]))
    assert not sensitive(with_host_config(Mounts=[{"Type": "volume", "Source": "etc", "Target": "/l"}]))
    assert not sensitive(with_host_config(Mounts=[{"Type": "bind", "Source": "/etc", "ReadOnly": True}]))
    legacy = container({"HostConfig": {}, "Mounts": [{"Source": "/boot", "Destination": "/b", "RW": True}]})
    assert sensitive(legacy)  # engines before API 1.24 gave no Type
    assert not sensitive(with_host_config(Binds=["/etcetera:/e", "/usr-local:/u"]))
    assert canonical("/proc/1/root/proc/self/root/etc/") == "/etc"


def test_capabilities_in_any_spelling() -> None:
    added = spec("no-added-capabilities").check
    assert not added(with_host_config(CapAdd=["chown", "CAP_KILL", "cap_net_bind_service"]))
    assert added(with_host_config(CapAdd=["cap_sys_time"]))
    assert limits.capabilities_only("cap_sys_time")["rule"](with_host_config(CapAdd=["SYS_TIME"])) is False


def test_ports_and_security_options_in_older_forms() -> None:
    ports = spec("no-privileged-ports").check
    everywhere = spec("no-ports-on-all-interfaces").check
    assert ports(with_host_config(PortBindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80-90"}]}))
    assert not ports(with_host_config(PortBindings={"80/tcp": [{"HostIp": "", "HostPort": ""}]}))
    assert everywhere(with_host_config(PortBindings={"80/tcp": [{"HostIp": "::", "HostPort": "8080"}]}))
    assert spec("no-seccomp-unconfined").check(with_host_config(SecurityOpt=["seccomp:unconfined"]))
    assert not spec("no-new-privileges").check(with_host_config(SecurityOpt=["no-new-privileges:true"]))


def test_cpus_from_quota_without_period_and_cpusets() -> None:
    one = limits.cpus_at_most(1)["rule"]
    assert not one(with_host_config(CpuQuota=100_000))
    assert one(with_host_config(CpuQuota=150_000, CpuPeriod=100_000))
    assert one(with_host_config(CpusetCpus="0-1,4"))
    assert not one(with_host_config(CpusetCpus="3", NanoCpus=2_000_000_000))


@pytest.mark.parametrize(
    ("image", "latest", "allowed"),
    [
        ("busybox@sha256:" + "a" * 64, False, True),
        ("busybox:1.36@sha256:" + "a" * 64, False, True),
        ("localhost:5000/app", True, False),
        ("localhost:5000/app:2", False, False),
        ("index.docker.io/library/busybox:1", False, True),
        ("docker.io/acme/app:1", False, False),
        ("REGISTRY.example.com/app:latest", True, True),
        ("registry.example.com.evil.io/app:1", False, False),
    ],
)
def test_image_references(image: str, latest: bool, allowed: bool) -> None:
    c = container({"Id": "x", "Config": {"Image": image}})
    assert spec("no-latest-image").check(c) is latest
    rule = limits.registries_only("registry.example.com", "docker.io/library")["rule"]
    assert rule(c) is not allowed


def test_cgroup_parents() -> None:
    under_slice = proxies.cgroup_parent_under("ci.slice")["rule"]
    assert not under_slice(with_host_config(CgroupParent="ci-job1.slice"))
    assert under_slice(with_host_config(CgroupParent="cix.slice"))
    under_path = proxies.cgroup_parent_under("/ci/")["rule"]
    assert not under_path(with_host_config(CgroupParent="/ci/a/b"))
    assert under_path(with_host_config(CgroupParent="/ci/../x"))


def test_owner_label_with_value() -> None:
    rule = proxies.require_label(value="builder-1")["rule"]
    assert rule(container({"Config": {"Labels": {"com.buildkite.sockguard.owner": "builder-2"}}}))
    assert not rule(container({"Config": {"Labels": {"com.buildkite.sockguard.owner": "builder-1"}}}))


# -- through the judge -----------------------------------------------------------------------------------
def test_whitelists_stop_on_first_violation_and_missing_facts_work_unchanged() -> None:
    rules = parse_rules(Path("rules.py"), select("no-privileged", "no-selinux-disabled", "memory-limit"))
    privileged = Container("p", example("privileged"))
    nothing = Whitelist()
    assert judge(privileged, rules, nothing).reasons == ["SELinux labels not disabled"]
    every = judge(privileged, rules, nothing, JudgeOptions(stop_on_first_violation=False))
    assert every.reasons == ["SELinux labels not disabled", "no privileged mode", "memory limited"]
    exempt = Whitelist(names=(WhitelistEntry("privileged", "no privileged mode"),))
    verdict = judge(privileged, rules, exempt, JudgeOptions(stop_on_first_violation=False))
    assert verdict.whitelisted == ("no privileged mode",)
    partial = Container("p", {"Id": "p", "Name": "/p", "Config": {"Image": "busybox", "Labels": {}}})
    verdict = judge(partial, rules, nothing, JudgeOptions(stop_on_first_violation=False))
    assert not verdict.violated and len(verdict.errors) == 3
    assert "MissingFacts" in verdict.errors[0].error


# -- check and docs --------------------------------------------------------------------------------------
@pytest.fixture
def _restore_logging() -> Iterator[None]:
    logger = logging.getLogger("enforcer")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.usefixtures("_restore_logging")
def test_check_lists_the_library_rules_a_rules_file_pulls_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    monkeypatch.chdir(work)
    rules = work / "rules.py"
    rules.write_text(
        textwrap.dedent(
            """
            from enforcer.library import cis, limits, proxies

            rules = cis.rules() + [
                proxies.binds_only_under("/opt/mnt1", "/opt/mnt2"),
                proxies.require_label("com.example.owner"),
                limits.memory_at_most("2g"),
            ]
            """
        )
    )
    rules.chmod(0o644)
    code = main(["check", "--rules", str(rules)], {})
    out = capsys.readouterr().out
    assert code == 0
    assert f"rules ({len(cis.SPECS) + 3}) from {rules}" in out
    assert "  - no privileged mode (no-privileged, CIS 5.5) [critical" in out
    assert "  - no Docker or containerd socket (no-docker-socket, CIS 5.32) [critical" in out
    assert "  - bind mounts only under /opt/mnt1 or /opt/mnt2 (binds-only-under) [high" in out
    assert "  - memory at most 2g (memory-at-most) [medium" in out


def test_docs_rules_md_is_generated_from_the_library() -> None:
    """If this fails, run: python -m enforcer.library.docs > docs/rules.md"""
    text = (REPO / "docs" / "rules.md").read_text()
    assert text == render_markdown()
    for rule in every_rule():
        assert f"`{rule['id']}`" in text and rule["remediation"] in text
