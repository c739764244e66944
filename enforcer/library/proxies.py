"""What Docker socket proxies refuse, caught from the event stream and sweeps instead.

Sockguard refuses privileged containers, host bind mounts outside its `--allow-bind` folders and the host
network, and labels what it creates with an owner (`com.buildkite.sockguard.owner`); Lancelot forbids bind
mounts and puts every container under its client's cgroup parent. A proxy stops such requests before they
reach the engine; these rules find containers that did not go through one.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from enforcer.facts.container import Container
from enforcer.facts.views import EMPTY
from enforcer.library._base import Check, LibraryError, RuleSpec, example, excluding, named
from enforcer.library._inspect import canonical, config, host_config, host_mounts, is_under, parse_host_path
from enforcer.library.cis import (
    ENGINE_SOCKETS,
    NO_DOCKER_SOCKET,
    NO_HOST_NETWORK,
    NO_PRIVILEGED,
    mounts_touching,
    socket_reacher,
)

SOCKGUARD_OWNER_LABEL = "com.buildkite.sockguard.owner"
PROXY_TAGS = ("proxy",)


def binds_only_under(*folders: str, name: str | None = None) -> dict[str, Any]:
    """Host bind mounts only at or below the given folders (Sockguard's `--allow-bind`)."""
    if not folders:
        raise LibraryError(
            "binds_only_under: give at least one allowed folder, e.g. binds_only_under('/srv/ci')"
        )
    allowed = tuple(dict.fromkeys(parse_host_path(f, "binds_only_under") for f in folders))

    def check(c: Container) -> bool:
        return any(not any(is_under(m.source, a) for a in allowed) for m in host_mounts(c))

    listed = " or ".join(allowed)
    return RuleSpec(
        "binds-only-under",
        named("binds_only_under", f"bind mounts only under {listed}", name),
        check,
        "high",
        f"Flags a container with a host path mounted (`-v` or `--mount type=bind`) that lies outside "
        f"{' and '.join(allowed)}. Paths are compared after resolving `..`; symbolic links inside the allowed folders "
        "cannot be seen from inspect data, so keep none there that lead outside. Named volumes are not "
        "host paths and pass.",
        f"Mount only paths below {listed}, or use a named volume.",
        tags=(*PROXY_TAGS, "sockguard", "lancelot", "mounts"),
    ).as_rule()


def no_host_paths(*paths: str, writable_only: bool = False, name: str | None = None) -> dict[str, Any]:
    """No mount of the given host paths, of anything inside them, or of a folder that holds them."""
    if not paths:
        raise LibraryError("no_host_paths: give at least one host path, e.g. no_host_paths('/srv/secrets')")
    if not isinstance(writable_only, bool):
        raise LibraryError(f"no_host_paths: writable_only must be True or False, not {writable_only!r}")
    protected = tuple(dict.fromkeys(parse_host_path(p, "no_host_paths") for p in paths))
    listed = " or ".join(protected)
    how = "writable " if writable_only else ""
    return RuleSpec(
        "no-host-paths",
        named("no_host_paths", f"no {how}mounts of {listed}", name),
        mounts_touching(protected, writable_only),
        "high",
        f"Flags a container with a {how}host mount of {listed}, of a path inside, or of a folder that holds "
        "one of them (a mount of / holds everything).",
        "Remove the mount or mount a narrower folder that holds none of these paths.",
        tags=(*PROXY_TAGS, "mounts"),
    ).as_rule()


def no_engine_socket(*sockets: str, name: str | None = None) -> dict[str, Any]:
    """`no-docker-socket` that also knows engine sockets at other places (`dockerd -H unix:///srv/d.sock`)."""
    extra = tuple(dict.fromkeys(parse_host_path(s, "no_engine_socket") for s in sockets))
    default = NO_DOCKER_SOCKET.name + (f" (nor {' or '.join(extra)})" if extra else "")
    also = f" It also knows the sockets {', '.join(extra)} and their folders." if extra else ""
    return RuleSpec(
        NO_DOCKER_SOCKET.id,
        named("no_engine_socket", default, name),
        socket_reacher(ENGINE_SOCKETS + extra),
        NO_DOCKER_SOCKET.severity,
        NO_DOCKER_SOCKET.description + also,
        NO_DOCKER_SOCKET.remediation,
        NO_DOCKER_SOCKET.cis,
        NO_DOCKER_SOCKET.tags,
    ).as_rule()


def require_label(
    key: str = SOCKGUARD_OWNER_LABEL, value: str | None = None, *, name: str | None = None
) -> dict[str, Any]:
    """The owner label must be set (to `value`, if given), as Sockguard sets it on what it creates."""
    if not isinstance(key, str) or not key.strip() or any(ch.isspace() for ch in key):
        raise LibraryError(f"require_label: {key!r} is not a label key such as 'com.example.owner'")
    if value is not None and not isinstance(value, str):
        raise LibraryError(f"require_label: value must be a string or None, not {value!r}")

    def check(c: Container) -> bool:
        labels = config(c).get("Labels") or EMPTY
        if key not in labels:
            return True
        return value is not None and labels[key] != value

    wanted = f"{key}={value}" if value is not None else key
    return RuleSpec(
        "owner-label",
        named("require_label", f"label {wanted} required", name),
        check,
        "medium",
        f"Flags a container without the label {key}"
        + (f" set to {value!r}" if value is not None else "")
        + ". Sockguard labels every container it creates with its owner; one without the label was created "
        "around the proxy, and nobody answers for it.",
        f"Create the container through the proxy, or add `--label {wanted if value is not None else key + '=<owner>'}`.",
        tags=(*PROXY_TAGS, "sockguard", "labels"),
    ).as_rule()


def cgroup_parent_under(parent: str | None = None, *, name: str | None = None) -> dict[str, Any]:
    """A cgroup parent must be set and, if `parent` is given, be it or below it (Lancelot's inheritance).

    `parent` is a cgroupfs path ("/ci" accepts "/ci" and "/ci/job-1") or a systemd slice ("ci.slice" accepts
    "ci.slice" and "ci-job1.slice").
    """
    if parent is None:
        return RuleSpec(
            "cgroup-parent-required",
            named("cgroup_parent_under", "cgroup parent set", name),
            _cgroup_outside(None),
            "medium",
            "Flags a container left in the engine's default cgroup parent (no `--cgroup-parent`). Lancelot "
            "puts every container its client starts under the client's own cgroup, so that the orchestrator's "
            "CPU and memory budget covers them.",
            "Start the container with `--cgroup-parent` set to the cgroup of the task that owns it.",
            tags=(*PROXY_TAGS, "lancelot", "cgroups"),
        ).as_rule()
    base = _cgroup_base(parent)
    return RuleSpec(
        "cgroup-parent-under",
        named("cgroup_parent_under", f"cgroup parent under {base}", name),
        _cgroup_outside(base),
        "medium",
        f"Flags a container whose cgroup parent is not {base} or below it (or is not set): its CPU and memory "
        "are then outside the budget of that cgroup, as Lancelot's cgroup inheritance prevents.",
        f"Start the container with `--cgroup-parent {base}` or a cgroup below it.",
        tags=(*PROXY_TAGS, "lancelot", "cgroups"),
    ).as_rule()


def _cgroup_base(parent: Any) -> str:
    if not isinstance(parent, str) or not parent.strip() or any(ch.isspace() for ch in parent):
        raise LibraryError(f"cgroup_parent_under: {parent!r} is not a cgroup such as '/ci' or 'ci.slice'")
    if parent.startswith("/"):
        return canonical(parent)
    if "/" in parent.strip("/"):
        raise LibraryError(f"cgroup_parent_under: {parent!r}: give an absolute path ('/ci/jobs') or a slice")
    return parent.rstrip("/")


def _cgroup_outside(base: str | None) -> Check:
    slice_prefix = base[: -len(".slice")] + "-" if base and base.endswith(".slice") else None

    def check(c: Container) -> bool:
        current = str(host_config(c).get("CgroupParent") or "").strip()
        if not current:
            return True
        if base is None:
            return False
        if slice_prefix is not None:
            return not (current == base or (current.startswith(slice_prefix) and current.endswith(".slice")))
        path = canonical(current) if current.startswith("/") else posixpath.normpath(current)
        return not is_under(path, base)

    return check


SPECS: tuple[RuleSpec, ...] = (NO_PRIVILEGED, NO_HOST_NETWORK, NO_DOCKER_SOCKET)
FACTORIES = (
    example(binds_only_under, "/opt/mnt1", "/opt/mnt2"),
    example(no_host_paths, "/srv/secrets"),
    example(no_engine_socket, "/srv/engine/api.sock"),
    example(require_label, "com.example.owner"),
    example(cgroup_parent_under),
    example(cgroup_parent_under, "/ci"),
)


def rules(*, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The fixed rules socket proxies enforce: no privileged mode, no host network, no engine socket."""
    return [spec.as_rule() for spec in excluding(SPECS, exclude)]
