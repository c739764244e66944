"""Reading the parts of `docker inspect` the ready rules look at, tolerant of missing and null fields.

Rules read facts the way users' rules do (`c.params['HostConfig']`, keys in any case). A field that is
absent or JSON null means Docker's default (no binds, no capabilities added...). A whole section that is
absent is different: with DISABLE_PARAMS the facts hold only id, name, image and labels, so a rule about
HostConfig cannot know the answer and raises MissingFacts, which the judge records as a rule error (never a
violation unless RULE_ERRORS_ARE_VIOLATIONS is set) instead of guessing.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from enforcer.facts.container import Container
from enforcer.facts.views import EMPTY
from enforcer.library._base import LibraryError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
# /proc/<pid>/root is the root of that process's filesystem: /proc/1/root/etc is the host's /etc.
_PROC_ROOT = re.compile(r"^/proc/[^/]+/root(?=/|$)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_PROPAGATIONS = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})
DEFAULT_CPU_PERIOD = 100_000  # microseconds, the kernel's CFS default that Docker uses when unset
ROOT_USERS = frozenset({"", "0", "root"})  # "": no user set, so the image's default, root


class MissingFacts(LookupError):
    """The facts lack the inspect data a rule needs, so the rule cannot answer (see the module docstring)."""


class HostMount(NamedTuple):
    """A host path mounted into the container: canonical source, whether writable, its propagation."""

    source: str
    writable: bool
    propagation: str


# -- sections --------------------------------------------------------------------------------------------
def host_config(c: Container) -> Mapping[str, Any]:
    """HostConfig; raises MissingFacts when the facts have none (DISABLE_PARAMS)."""
    section = c.params.get("HostConfig")
    if section is None:
        raise MissingFacts(
            "the facts have no HostConfig (with DISABLE_PARAMS=True rules see only id, name, image and labels)"
        )
    return section


def config(c: Container) -> Mapping[str, Any]:
    """Config (the container's image-derived settings); raises MissingFacts when absent."""
    section = c.params.get("Config")
    if section is None:
        raise MissingFacts("the facts have no Config section")
    return section


def full_config(c: Container) -> Mapping[str, Any]:
    """Config, but only when the facts are complete: DISABLE_PARAMS leaves a Config with just Image and Labels,
    in which an absent User or Healthcheck would look like Docker's default."""
    host_config(c)
    return config(c)


def top(c: Container, key: str) -> Any:
    """A top-level inspect field such as AppArmorProfile; raises MissingFacts when the facts are partial."""
    host_config(c)
    return c.params.get(key)


def is_root_user(user: Any) -> bool:
    """Whether a `--user` / USER value means root: empty, `0`, `root`, `0:<group>` or `root:<group>`."""
    return str(user or "").strip().split(":", 1)[0] in ROOT_USERS


def network_settings(c: Container) -> Mapping[str, Any]:
    return c.params.get("NetworkSettings") or EMPTY


def is_running(c: Container) -> bool:
    state = c.params.get("State") or EMPTY
    return bool(state.get("Running") or state.get("Paused") or state.get("Restarting"))


# -- security options ------------------------------------------------------------------------------------
def security_options(hc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """SecurityOpt as (key, value) pairs, lowercased; `seccomp:unconfined` (the old form) as `seccomp=...`."""
    for raw in hc.get("SecurityOpt") or ():
        text = str(raw).strip().lower()
        cut = min((i for i in (text.find("="), text.find(":")) if i >= 0), default=-1)
        if cut < 0:
            yield text, ""
        else:
            yield text[:cut], text[cut + 1 :]


def capability(name: Any) -> str:
    """`cap_sys_admin`, `CAP_SYS_ADMIN` and `SYS_ADMIN` all become `SYS_ADMIN`."""
    text = str(name).strip().upper()
    return text[4:] if text.startswith("CAP_") else text


# -- mounts ----------------------------------------------------------------------------------------------
def canonical(path: str) -> str:
    """A host path with `..`, `.`, repeated and trailing slashes resolved, and /proc/<pid>/root/x read as /x.

    Symbolic links on the host cannot be seen from inspect data and are not resolved.
    """
    normal = posixpath.normpath("/" + path.lstrip("/"))
    while True:
        match = _PROC_ROOT.match(normal)
        if not match:
            return normal
        normal = normal[match.end() :] or "/"


def is_under(path: str, prefix: str) -> bool:
    """Whether canonical `path` is `prefix` or inside it, component by component (/etcetera is not /etc)."""
    return path == prefix or prefix == "/" or path.startswith(prefix + "/")


def host_mounts(c: Container) -> list[HostMount]:
    """Every host path mounted into the container, from HostConfig.Binds (`src:dst[:opts]`), HostConfig.Mounts
    (`--mount`) and Mounts (what the engine set up); named volumes and tmpfs are not host paths."""
    hc = host_config(c)
    found = [m for m in (_bind(b) for b in hc.get("Binds") or ()) if m is not None]
    for mount in hc.get("Mounts") or ():
        if _is_bind(mount) and mount.get("Source"):
            options = mount.get("BindOptions") or EMPTY
            found.append(
                HostMount(
                    canonical(str(mount["Source"])),
                    not mount.get("ReadOnly"),
                    str(options.get("Propagation") or "").lower(),
                )
            )
    for mount in c.params.get("Mounts") or ():
        if _is_bind(mount) and mount.get("Source"):
            writable = mount.get("RW")
            found.append(
                HostMount(
                    canonical(str(mount["Source"])),
                    True if writable is None else bool(writable),
                    str(mount.get("Propagation") or "").lower(),
                )
            )
    return found


def _is_bind(mount: Mapping[str, Any]) -> bool:
    kind = mount.get("Type")
    if kind is None:  # engines before API 1.24 had no Type: a mount without a volume name is a bind
        return not mount.get("Name")
    return str(kind).lower() == "bind"


def _bind(spec: Any) -> HostMount | None:
    source, _, rest = str(spec).partition(":")
    if not source.startswith("/"):
        return None  # a named volume
    _, _, opts = rest.partition(":")
    options = {o.strip().lower() for o in opts.split(",")} if opts else set()
    propagation = next(iter(options & _PROPAGATIONS), "")
    return HostMount(canonical(source), "ro" not in options, propagation)


# -- ports -----------------------------------------------------------------------------------------------
def published_ports(c: Container) -> Iterator[tuple[str, str]]:
    """(host ip, host port) of every published port, as configured (PortBindings) and as bound (Ports)."""
    hc = host_config(c)
    for table in (hc.get("PortBindings"), network_settings(c).get("Ports")):
        for bindings in (table or EMPTY).values():
            for binding in bindings or ():
                yield str(binding.get("HostIp") or ""), str(binding.get("HostPort") or "")


def first_port(text: str) -> int | None:
    """The port number of "80" or the first of a range "8000-8010"; None for "" (the engine picks one)."""
    head = text.split("-", 1)[0].strip()
    return int(head) if head.isdigit() else None


# -- resources -------------------------------------------------------------------------------------------
def cpu_limit(hc: Mapping[str, Any]) -> float | None:
    """The CPUs a container may use: the tightest of --cpus, --cpu-quota/--cpu-period and --cpuset-cpus."""
    limits = []
    nano = hc.get("NanoCpus") or 0
    if nano > 0:
        limits.append(nano / 1e9)
    quota = hc.get("CpuQuota") or 0
    if quota > 0:
        limits.append(quota / (hc.get("CpuPeriod") or DEFAULT_CPU_PERIOD))
    cpuset = str(hc.get("CpusetCpus") or "")
    if cpuset:
        limits.append(float(cpuset_size(cpuset)))
    return min(limits) if limits else None


def cpuset_size(cpuset: str) -> int:
    """How many CPUs "0-3,6" names (5)."""
    total = 0
    for part in cpuset.split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit():
            total += int(high) - int(low) + 1 if high.isdigit() else 1
    return total


# -- images ----------------------------------------------------------------------------------------------
def image_reference(c: Container) -> str:
    """The image as typed (`Config.Image`; a `sha256:` id resolved to its tag where the engine knows it)."""
    image = c.image
    if not image:
        raise MissingFacts("the facts name no image")
    return image


def split_reference(reference: str) -> tuple[str, str, str]:
    """(name, tag, digest) of `name[:tag][@digest]`; a registry port is not a tag."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def is_image_id(reference: str) -> bool:
    return reference.startswith("sha256:")


def repository(name: str) -> str:
    """The fully qualified repository: `busybox` is docker.io/library/busybox, `acme/app` docker.io/acme/app."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host = first.lower()
        return f"{DOCKER_HUB if host in _HUB_ALIASES else host}/{rest}"
    if not slash:
        return f"{DOCKER_HUB}/library/{name}"
    return f"{DOCKER_HUB}/{name}"


# -- parameters of factories -------------------------------------------------------------------------------
def parse_size(value: Any, what: str) -> int:
    """Bytes from 2147483648, "2g", "512m", "1.5G" or "2GiB" (binary units, as the docker CLI reads them)."""
    if isinstance(value, bool):
        raise LibraryError(f"{what}: {value!r} is not a size")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise LibraryError(
                f"{what}: {value!r} is not a size; give bytes as an integer or a number with a unit "
                "k, m, g or t, such as '512m' or '1.5g'"
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise LibraryError(f"{what}: {value!r} must be more than 0 bytes")
    return size


def parse_positive(value: Any, what: str, kind: type = float) -> Any:
    """A positive number (float or int), from a number or a numeric string."""
    if isinstance(value, bool):
        raise LibraryError(f"{what}: {value!r} is not a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise LibraryError(f"{what}: {value!r} is not {'a whole' if kind is int else 'a'} number") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise LibraryError(f"{what}: {value!r} is not a whole number")
    if not number > 0:
        raise LibraryError(f"{what}: {value!r} must be more than 0")
    return number


def parse_host_path(value: Any, what: str) -> str:
    """An absolute host path, canonical; relative paths and non-strings are refused."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise LibraryError(f"{what}: {value!r} is not an absolute host path such as '/opt/data'")
    return canonical(value)


def human_size(size: int) -> str:
    for unit in ("t", "g", "m", "k"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return f"{size} bytes"
