"""Every ready rule against every captured `docker inspect` example: the exact set each one flags.

The examples are real inspect output from the isolated engine (tests/library/capture_examples.py; one file per
container, named after how it was created). For each fixed rule and each factory's documented example call,
EXPECTED lists the examples it must flag; every other example must pass. Rules about `docker exec` sessions
are judged on the exec examples (examples/exec/: a container and one exec in it) and flag no container
example (`c.exec` is None there). Rules about the image (`c.image_info`) are judged on the image examples
(examples/image/: a container and its image's inspect) and are not judged where the image is unknown. No engine
is needed here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from enforcer.facts.container import Container, ExecFacts, FactUnavailable
from enforcer.library import CATALOG, FACTORIES

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def _load() -> dict[str, Container]:
    loaded = {}
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        (params,) = json.loads(path.read_text())
        loaded[path.stem] = Container(params["Id"], params)
    return loaded


def _load_execs() -> dict[str, Container]:
    """The exec examples as an exec check sees them; the healthchecks' are left out (never judged)."""
    loaded = {}
    for path in sorted((EXAMPLES_DIR / "exec").glob("*.json")):
        if path.stem.startswith("healthcheck"):
            continue
        data = json.loads(path.read_text())
        params = data["container"]
        user = str(params["Config"].get("User") or "")
        loaded[path.stem] = Container(params["Id"], params, exec=ExecFacts.from_inspect(data["exec"], user))
    return loaded


CAPTURED_ON = datetime(2026, 12, 2, tzinfo=UTC)  # the image examples' ages are counted to this day


def _load_images() -> dict[str, Container]:
    loaded = {}
    for path in sorted((EXAMPLES_DIR / "image").glob("*.json")):
        data = json.loads(path.read_text())
        params = data["container"]
        loaded[path.stem] = Container(params["Id"], params, image_info=data["image"], checked_at=CAPTURED_ON)
    return loaded


EXAMPLES = _load()
ALL = frozenset(EXAMPLES)
EXECS = _load_execs()
IMAGES = _load_images()


def all_but(*names: str) -> frozenset[str]:
    missing = set(names) - ALL
    assert not missing, f"no such examples: {missing}"
    return ALL - set(names)


def only(*names: str) -> frozenset[str]:
    missing = set(names) - ALL
    assert not missing, f"no such examples: {missing}"
    return frozenset(names)


SOCKET_MOUNTS = ("bind-root-ro", "bind-docker-sock", "bind-var-run", "bind-containerd-dir")
HOST_BINDS_OUTSIDE_OPT_MNT = (
    "bind-root-ro",
    "bind-etc-rw",
    "bind-etc-ssl-ro",
    "bind-proc-root-etc",
    "bind-docker-sock",
    "bind-var-run",
    "bind-containerd-dir",
    "bind-engine-api-sock",
    "bind-escape-allowed",
    "bind-srv",
    "mount-shared",
)

# Fixed rules by id; factories by their documented example call.
EXPECTED: dict[str, frozenset[str]] = {
    # This engine has no AppArmor: only a requested profile shows one, and only until the container starts.
    "apparmor-profile": all_but("hardened", "apparmor-default"),
    # Docker itself adds label=disable to privileged containers and to those sharing the host's PID or IPC.
    "no-selinux-disabled": only("selinux-disabled", "selinux-spc", "privileged", "pid-host", "ipc-host"),
    "no-added-capabilities": only("cap-sys-admin", "cap-dac-read-search", "cap-all", "cap-net-admin"),
    "no-dangerous-capabilities": only("cap-sys-admin", "cap-dac-read-search", "cap-all"),
    "no-privileged": only("privileged"),
    "no-sensitive-mounts": only("bind-root-ro", "bind-etc-rw", "bind-etc-ssl-ro", "bind-proc-root-etc"),
    "no-sensitive-mounts-rw": only("bind-etc-rw"),
    "no-privileged-ports": only("port-80-all"),
    "no-host-network": only("network-host"),
    "memory-limit": all_but("hardened", "memory-64m", "memory-4g"),
    "cpu-limit": all_but("hardened", "cpus-2", "cpu-quota-half", "cpuset-one", "cpu-shares"),
    "read-only-rootfs": all_but("hardened", "read-only"),
    "no-ports-on-all-interfaces": only("port-80-all", "port-8080-all", "publish-all"),
    "restart-retries-limited": only(
        "restart-always", "restart-unless-stopped", "restart-on-failure", "restart-on-failure-10"
    ),
    "no-host-pid": only("pid-host"),
    "no-host-ipc": only("ipc-host"),
    "no-host-devices": only("device", "device-cgroup-rule"),
    "no-shared-mount-propagation": only("bind-rshared", "mount-shared"),
    "no-host-uts": only("uts-host"),
    "no-seccomp-unconfined": only("seccomp-unconfined"),
    "no-custom-cgroup-parent": only("cgroup-ci-job", "cgroup-other"),
    "no-new-privileges": all_but("hardened", "no-new-privileges"),
    "healthcheck-configured": all_but("hardened", "healthcheck"),
    "pids-limit": all_but("hardened", "pids-limit-500"),
    # plain-running was started on this engine, which has no docker0 (--bridge=none).
    "no-default-bridge": all_but("hardened", "network-none", "network-host", "plain-running"),
    "no-host-userns": only("userns-host"),
    "no-docker-socket": only(*SOCKET_MOUNTS),
    "no-latest-image": all_but("hardened", "image-hub-tagged", "image-other-registry", "image-by-id"),
    "no-root-user": all_but("hardened", "user-1000"),
    "proxies.binds_only_under('/opt/mnt1', '/opt/mnt2')": only(*HOST_BINDS_OUTSIDE_OPT_MNT),
    "proxies.no_host_paths('/srv/secrets')": only("bind-root-ro", "bind-srv"),
    "proxies.no_engine_socket('/srv/engine/api.sock')": only(
        *SOCKET_MOUNTS, "bind-engine-api-sock", "bind-srv"
    ),
    "proxies.require_label('com.example.owner')": all_but("hardened", "owner-label"),
    "proxies.cgroup_parent_under()": all_but("cgroup-ci-job", "cgroup-other"),
    "proxies.cgroup_parent_under('/ci')": all_but("cgroup-ci-job"),
    "limits.memory_at_most('2g')": all_but("hardened", "memory-64m"),
    "limits.cpus_at_most(1)": all_but("hardened", "cpu-quota-half", "cpuset-one"),
    "limits.pids_at_most(200)": all_but("hardened"),
    "limits.restart_retries_at_most(3)": only(
        "restart-always",
        "restart-unless-stopped",
        "restart-on-failure",
        "restart-on-failure-5",
        "restart-on-failure-10",
    ),
    "limits.capabilities_only('NET_ADMIN')": only("cap-sys-admin", "cap-dac-read-search", "cap-all"),
    "limits.registries_only('registry.example.com', 'docker.io/library')": only(
        "image-other-registry", "image-by-id"
    ),
    "limits.labels_required('com.example.team')": all_but("hardened"),
}


# Exec rules: the exec examples each flags (`-u root:1000` is root; no `-u` runs as the container's user).
EXEC_EXPECTED: dict[str, frozenset[str]] = {
    "no-privileged-exec": frozenset({"privileged"}),
    "no-root-exec": frozenset({"privileged", "u0", "u-root-group", "default-root"}),
}


# Image rules: the image examples each flags (busybox imported, committed with USER 1000 and a source label,
# loaded with a 2019 creation time, pulled from a registry by digest, and that image named by a tag).
IMAGE_EXPECTED: dict[str, frozenset[str]] = {
    "images.older_than(180)": frozenset({"old"}),
    "images.default_user_root()": frozenset(IMAGES) - {"committed"},
    "images.require_label()": frozenset(IMAGES) - {"committed"},
    "images.require_digest()": frozenset(IMAGES) - {"pulled-by-digest"},
}


def _rules() -> dict[str, dict[str, Any]]:
    rules = {spec.id: spec.as_rule() for spec in CATALOG}
    rules.update({factory.call: factory.example() for factory in FACTORIES})
    return rules


RULES = _rules()


def test_examples_were_captured() -> None:
    assert len(EXAMPLES) >= 60, "run tests/library/capture_examples.py"


def test_every_rule_has_expectations() -> None:
    assert not set(EXPECTED) & set(EXEC_EXPECTED) and not set(EXPECTED) & set(IMAGE_EXPECTED)
    assert set(EXPECTED) | set(EXEC_EXPECTED) | set(IMAGE_EXPECTED) == set(RULES)


@pytest.mark.parametrize("key", sorted(IMAGE_EXPECTED))
def test_image_rule_flags_exactly_the_expected_images_and_is_not_judged_without_one(key: str) -> None:
    check = RULES[key]["rule"]
    assert {name for name, container in IMAGES.items() if check(container)} == IMAGE_EXPECTED[key]
    assert IMAGE_EXPECTED[key] and IMAGE_EXPECTED[key] != set(IMAGES), key
    pulled = IMAGES["pulled-by-digest"]
    with pytest.raises(FactUnavailable):  # the same container where its image is not known
        check(Container(pulled.cid, pulled.params))


@pytest.mark.parametrize("key", sorted(EXEC_EXPECTED))
def test_exec_rule_flags_exactly_the_expected_execs_and_no_container(key: str) -> None:
    check = RULES[key]["rule"]
    assert {name for name, container in EXECS.items() if check(container)} == EXEC_EXPECTED[key]
    assert EXEC_EXPECTED[key] != set(EXECS), f"{key} passes no exec example"
    assert not [name for name, container in EXAMPLES.items() if check(container)]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_rule_flags_exactly_the_expected_examples(key: str) -> None:
    check = RULES[key]["rule"]
    flagged = {name for name, container in EXAMPLES.items() if check(container)}
    expected = EXPECTED[key]
    assert flagged == expected, (
        f"{key}: wrongly flagged {sorted(flagged - expected)}, wrongly passed {sorted(expected - flagged)}"
    )


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_rule_has_a_failing_and_a_passing_example(key: str) -> None:
    assert EXPECTED[key], f"{key} flags no example"
    assert EXPECTED[key] != ALL, f"{key} passes no example"
