"""Resource limits and hygiene: sizes and counts with a ceiling, image origin and tags, labels, the user.

The factories check their parameters when the rules file loads: `memory_at_most("2x")` fails there with a
message saying what a size looks like, not later on the kill path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from enforcer.facts.container import Container
from enforcer.facts.views import EMPTY
from enforcer.library._base import LibraryError, RuleSpec, example, excluding, named
from enforcer.library._inspect import (
    DOCKER_HUB,
    config,
    cpu_limit,
    full_config,
    host_config,
    human_size,
    image_reference,
    is_image_id,
    is_root_user,
    parse_positive,
    parse_size,
    repository,
    split_reference,
)
from enforcer.library.cis import DEFAULT_CAPABILITIES, added_capabilities, restarts_beyond
from enforcer.units import duration_s, text_duration

# Every Linux capability Docker knows (capabilities(7)), so that a misspelt one fails at load time.
KNOWN_CAPABILITIES = DEFAULT_CAPABILITIES | frozenset(
    {
        "ALL",
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "DAC_READ_SEARCH",
        "IPC_LOCK",
        "IPC_OWNER",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "NET_ADMIN",
        "NET_BROADCAST",
        "PERFMON",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "SYSLOG",
        "WAKE_ALARM",
    }
)
LIMIT_TAGS = ("limits",)
HYGIENE_TAGS = ("hygiene",)


# -- fixed rules -----------------------------------------------------------------------------------------
def latest_image(c: Container) -> bool:
    reference = image_reference(c)
    if is_image_id(reference):
        return False  # run by id: pinned
    _, tag, digest = split_reference(reference)
    return not digest and tag in ("", "latest")


def runs_as_root(c: Container) -> bool:
    return is_root_user(full_config(c).get("User"))


NO_LATEST_IMAGE = RuleSpec(
    "no-latest-image",
    "image not latest",
    latest_image,
    "low",
    "Flags a container whose image was given without a tag or with the tag `latest` (`busybox`, "
    "`busybox:latest`): nobody can tell which version runs, and the next pull silently changes it. Images "
    "given by digest (`@sha256:...`) or by image id pass.",
    "Name a version (`busybox:1.36`) or, better, a digest (`busybox@sha256:...`).",
    tags=(*HYGIENE_TAGS, "images"),
)
NO_ROOT_USER = RuleSpec(
    "no-root-user",
    "not running as root",
    runs_as_root,
    "medium",
    "Flags a container whose main process runs as root: Config.User empty (and no USER in the image), "
    "`0`, `root`, `0:<group>` or `root:<group>`. CIS Docker Benchmark v1.6 4.1 asks for a non-root user "
    "in the image; docker-bench-security checks it on running containers this way.",
    "Add a `USER` to the image or run with `--user 1000:1000` (a user that owns only what it needs).",
    cis="4.1",
    tags=(*HYGIENE_TAGS, "user"),
)


# -- factories -------------------------------------------------------------------------------------------
def memory_at_most(size: int | str, *, name: str | None = None) -> dict[str, Any]:
    """A memory limit no bigger than `size` ("2g", "512m", "1.5G" or bytes); no limit at all is flagged."""
    limit = parse_size(size, "memory_at_most")
    shown = human_size(limit)

    def check(c: Container) -> bool:
        memory = host_config(c).get("Memory") or 0
        return memory <= 0 or memory > limit

    return RuleSpec(
        "memory-at-most",
        named("memory_at_most", f"memory at most {shown}", name),
        check,
        "medium",
        f"Flags a container whose memory limit is above {shown}, or that has none (`--memory` not set).",
        f"Run with `--memory {shown}` or less.",
        tags=(*LIMIT_TAGS, "resources"),
    ).as_rule()


def cpus_at_most(cpus: float | str, *, name: str | None = None) -> dict[str, Any]:
    """A CPU limit of at most `cpus` CPUs (from --cpus, --cpu-quota/--cpu-period or --cpuset-cpus)."""
    limit = float(parse_positive(cpus, "cpus_at_most"))
    shown = f"{limit:g}"

    def check(c: Container) -> bool:
        allowed = cpu_limit(host_config(c))
        return allowed is None or allowed > limit + 1e-9

    return RuleSpec(
        "cpus-at-most",
        named("cpus_at_most", f"CPUs at most {shown}", name),
        check,
        "medium",
        f"Flags a container that may use more than {shown} CPUs: the tightest of `--cpus`, "
        "`--cpu-quota`/`--cpu-period` and `--cpuset-cpus` is above it, or none is set. (`--cpu-shares` is a "
        "priority, not a limit.)",
        f"Run with `--cpus {shown}` or less.",
        tags=(*LIMIT_TAGS, "resources"),
    ).as_rule()


def pids_at_most(count: int, *, name: str | None = None) -> dict[str, Any]:
    """A PIDs limit of at most `count` processes; no limit is flagged."""
    limit = int(parse_positive(count, "pids_at_most", int))

    def check(c: Container) -> bool:
        pids = host_config(c).get("PidsLimit")
        return pids is None or pids <= 0 or pids > limit

    return RuleSpec(
        "pids-at-most",
        named("pids_at_most", f"at most {limit} processes", name),
        check,
        "medium",
        f"Flags a container whose `--pids-limit` is above {limit} or not set.",
        f"Run with `--pids-limit {limit}` or less.",
        tags=(*LIMIT_TAGS, "resources"),
    ).as_rule()


def restart_retries_at_most(count: int, *, name: str | None = None) -> dict[str, Any]:
    """Restart policies that give up after at most `count` attempts (CIS 5.15 asks for 5)."""
    limit = int(parse_positive(count, "restart_retries_at_most", int))
    return RuleSpec(
        "restart-retries-at-most",
        named("restart_retries_at_most", f"restart attempts limited to {limit}", name),
        restarts_beyond(limit),
        "low",
        f"Flags a container whose restart policy may restart it more than {limit} times: `always`, "
        f"`unless-stopped`, or `on-failure` with no count or a count above {limit}.",
        f"Use `--restart on-failure:{limit}` or fewer attempts.",
        tags=(*LIMIT_TAGS, "resources"),
    ).as_rule()


def capabilities_only(*allowed: str, name: str | None = None) -> dict[str, Any]:
    """Added capabilities only from Docker's defaults and `allowed` ("NET_ADMIN", "CAP_NET_ADMIN")."""
    extra = frozenset(_capability(cap) for cap in allowed)

    def check(c: Container) -> bool:
        return bool(added_capabilities(c) - DEFAULT_CAPABILITIES - extra)

    listed = " ".join(sorted(extra)) or "none"
    return RuleSpec(
        "capabilities-only",
        named("capabilities_only", f"only {listed} added to the default capabilities", name),
        check,
        "high",
        f"Flags a container given (with `--cap-add`) a capability that is neither one of Docker's defaults "
        f"nor in the reviewed list: {listed}.",
        "Remove the other `--cap-add` options, or review the capability and add it to the list.",
        tags=(*LIMIT_TAGS, "capabilities"),
    ).as_rule()


def _capability(value: Any) -> str:
    if not isinstance(value, str):
        raise LibraryError(f"capabilities_only: {value!r} is not a capability name such as 'NET_ADMIN'")
    cap = value.strip().upper()
    cap = cap[4:] if cap.startswith("CAP_") else cap
    if cap not in KNOWN_CAPABILITIES:
        raise LibraryError(f"capabilities_only: {value!r} is not a Linux capability (see capabilities(7))")
    return cap


def registries_only(*registries: str, name: str | None = None) -> dict[str, Any]:
    """Images only from the given registries or repository prefixes ("ghcr.io", "docker.io/library")."""
    if not registries:
        raise LibraryError(
            "registries_only: give at least one registry, e.g. registries_only('ghcr.io/acme')"
        )
    allowed = tuple(dict.fromkeys(_registry(r) for r in registries))

    def check(c: Container) -> bool:
        reference = image_reference(c)
        if is_image_id(reference):
            return True  # an untagged image id: where it came from cannot be told
        repo = repository(split_reference(reference)[0])
        return not any(repo == prefix or repo.startswith(prefix + "/") for prefix in allowed)

    listed = " or ".join(allowed)
    return RuleSpec(
        "allowed-registries",
        named("registries_only", f"images only from {listed}", name),
        check,
        "high",
        f"Flags a container whose image does not come from {listed}. Names without a registry are Docker "
        "Hub's (`busybox` is docker.io/library/busybox); an image known only by its id is flagged, since "
        "its origin cannot be told.",
        f"Pull the image from {listed} (mirror it there if needed) and run it by that name.",
        tags=(*HYGIENE_TAGS, "images"),
    ).as_rule()


def _registry(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(ch.isspace() for ch in value) or "@" in value:
        raise LibraryError(
            f"registries_only: {value!r} is not a registry such as 'ghcr.io' or 'docker.io/acme'"
        )
    text = value.strip().rstrip("/")
    host = text.split("/", 1)[0]
    if not ("." in host or ":" in host or host == "localhost"):
        raise LibraryError(
            f"registries_only: {value!r} does not start with a registry host; write "
            f"'{DOCKER_HUB}/{text}' for Docker Hub's {text!r}"
        )
    if ":" in text.split("/")[-1] and "/" in text:
        raise LibraryError(f"registries_only: {value!r}: give a registry or repository prefix, without a tag")
    return repository(text + "/x")[: -len("/x")]


def labels_required(*keys: str, name: str | None = None) -> dict[str, Any]:
    """Every given label key must be set on the container (any value)."""
    if not keys:
        raise LibraryError(
            "labels_required: give at least one label key, e.g. labels_required('com.example.team')"
        )
    wanted = tuple(dict.fromkeys(_label_key(k) for k in keys))

    def check(c: Container) -> bool:
        labels = config(c).get("Labels") or EMPTY
        return any(key not in labels for key in wanted)

    listed = " and ".join(wanted)
    return RuleSpec(
        "required-labels",
        named("labels_required", f"labels {listed} required", name),
        check,
        "low",
        f"Flags a container that lacks any of the labels {listed}.",
        "Add the labels when creating the container: " + " ".join(f"`--label {k}=...`" for k in wanted) + ".",
        tags=(*HYGIENE_TAGS, "labels"),
    ).as_rule()


def _label_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(ch.isspace() for ch in value):
        raise LibraryError(f"labels_required: {value!r} is not a label key such as 'com.example.team'")
    return value


# -- rules held over time (judged every SAMPLE_INTERVAL_S on running containers, from `docker stats`) -------
def cpu_above(
    percent: float,
    for_: str | float = "10m",
    *,
    grace: str | float | None = None,
    action: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """CPU use above `percent` (of one CPU, as `docker stats` shows it: two busy cores read 200) on every
    sample for `for_`; `grace` and `action` are the rule keys of the same names."""
    limit = float(parse_positive(percent, "cpu_above"))
    return _held(
        "cpu_above", "cpu-above", f"CPU above {limit:g}%", name, lambda c: bool(c.cpu_percent > limit), "medium",
        f"Flags a running container that used more than {limit:g}% of a CPU on every sample for the whole "
        "`for` period (a CPU hog), as `docker stats` measures it.",
        "Find what spins (`docker top`), or run it with `--cpus` so that it cannot take more than its share.",
        (for_, grace, action),
    )  # fmt: skip


def memory_above(
    size: int | str,
    for_: str | float = "10m",
    *,
    grace: str | float | None = None,
    action: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Memory in use (without the page cache, as `docker stats` shows it) above `size` on every sample for
    `for_`."""
    limit = parse_size(size, "memory_above")
    shown = human_size(limit)
    return _held(
        "memory_above", "memory-above", f"memory above {shown}", name, lambda c: bool(c.memory_bytes > limit),
        "medium",
        f"Flags a running container that used more than {shown} of memory (page cache excluded) on every "
        "sample for the whole `for` period.",
        f"Run it with `--memory {shown}` (or give the rule `\"action\": \"limit\"`), or find the leak.",
        (for_, grace, action),
    )  # fmt: skip


def idle(
    for_: str | float = "1d",
    below_percent: float = 1,
    *,
    grace: str | float | None = None,
    action: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """CPU use below `below_percent` on every sample for `for_`: a container that holds a box (a GPU, a
    notebook server) and does nothing with it."""
    limit = float(parse_positive(below_percent, "idle"))
    return _held(
        "idle", "idle", f"idle below {limit:g}% CPU", name, lambda c: bool(c.cpu_percent < limit), "low",
        f"Flags a running container whose CPU use stayed below {limit:g}% of a CPU on every sample for the "
        "whole `for` period.",
        "Stop it when it is done (`docker stop`), or ask for an exception while it waits for work.",
        (for_, grace, action),
    )  # fmt: skip


def _duration(what: str, key: str, value: object) -> float:
    try:
        return duration_s(value)
    except ValueError as exc:
        raise LibraryError(f"{what}: {key} {exc}") from None


def _held(
    what: str,
    rule_id: str,
    default_name: str,
    name: str | None,
    check: Any,
    severity: str,
    description: str,
    remediation: str,
    timing: tuple[str | float, str | float | None, str | None],
) -> dict[str, Any]:
    """The rule dict with its `for` (and `grace`, `action` when given); the loader checks them again."""
    for_, grace, action = timing
    held_for = _duration(what, "for_", for_)
    if grace is not None:
        _duration(what, "grace", grace)
    if held_for <= 0:
        raise LibraryError(f"{what}: for_ must be above 0 (a rule held over time)")
    full_name = named(what, f"{default_name} for {text_duration(held_for)}", name)
    spec = RuleSpec(
        rule_id, full_name, check, severity, description, remediation, tags=(*LIMIT_TAGS, "over-time")
    )
    rule = {**spec.as_rule(), "for": for_}
    if grace is not None:
        rule["grace"] = grace
    if action is not None:
        rule["action"] = action
    return rule


SPECS: tuple[RuleSpec, ...] = (NO_LATEST_IMAGE, NO_ROOT_USER)
FACTORIES = (
    example(memory_at_most, "2g"),
    example(cpus_at_most, 1),
    example(pids_at_most, 200),
    example(restart_retries_at_most, 3),
    example(capabilities_only, "NET_ADMIN"),
    example(registries_only, "registry.example.com", "docker.io/library"),
    example(labels_required, "com.example.team"),
)
# Judged on `docker stats` samples, not on inspect data alone: documented apart, tested on stats.
OVER_TIME = (
    example(cpu_above, 90, for_="10m"),
    example(memory_above, "2g", for_="30m"),
    example(idle, for_="1d", below_percent=1),
)


def rules(*, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The fixed hygiene rules: no `latest` images, no root user."""
    return [spec.as_rule() for spec in excluding(SPECS, exclude)]
