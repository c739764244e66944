"""CIS Docker Benchmark v1.6, section 5 (container runtime): every check that `docker inspect` can decide.

Not here, because inspect data cannot decide them: 5.1 (swarm mode is an engine setting), 5.7 (sshd needs
`docker exec`), 5.9 (which ports are *needed*), 5.19 (ulimits are overridden only "if needed") and 5.28
(whether the image is the newest needs the registry). 5.23 and 5.24 judge `docker exec` sessions (`c.exec`,
with RUN_EXEC_EVENTS=True): 5.23 is in `rules()`; 5.24 (no exec as root) is opt-in, since many hosts allow
it: `select("no-root-exec")` or `rules(include_opt_in=True)`.

Up to v1.5 the section started one number lower (5.1 was AppArmor); each description gives the older number.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Any

from enforcer.facts.container import Container
from enforcer.facts.views import EMPTY
from enforcer.library._base import Check, RuleSpec, excluding
from enforcer.library._inspect import (
    canonical,
    capability,
    config,
    cpu_limit,
    first_port,
    full_config,
    host_config,
    host_mounts,
    is_root_user,
    is_running,
    is_under,
    network_settings,
    published_ports,
    security_options,
    top,
)

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)
# Capabilities that each give a known way out of the container.
DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "DAC_READ_SEARCH"})
# The directories CIS 5.6 names ("/" too: a mount of any folder holding one of them counts).
SENSITIVE_DIRS = ("/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
# Where Docker and containerd put their API sockets (dockerd's own containerd under /run/docker).
ENGINE_SOCKETS = (
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
)
_SOCKET_NAMES = ("docker.sock", "containerd.sock")
# /proc, /proc/<pid> and /proc/<pid>/cwd/... lead to a process's root or working directory, so to anything.
_PROC_ESCAPE = re.compile(r"^/proc(/(\d+|self|thread-self)(/cwd(/.*)?)?)?$")
_RUN_USER = re.compile(r"^/run/user(/[^/]+)?$")  # rootless Docker: /run/user/<uid>/docker.sock
ALL_INTERFACES = frozenset({"", "0.0.0.0", "::", "[::]"})
SELINUX_OFF = frozenset({"disable", "type:spc_t", "type:unconfined_t"})
CIS_VERSION = "v1.6"


def cis_spec(
    id: str,
    cis: str,
    name: str,
    check: Check,
    severity: str,
    description: str,
    remediation: str,
    tags: Iterable[str] = (),
) -> RuleSpec:
    """A section 5 rule: tagged `cis`, its description closed by the benchmark numbers."""
    major, minor = cis.split(".")
    note = f" CIS Docker Benchmark {CIS_VERSION} {cis} ({major}.{int(minor) - 1} in v1.2 to v1.5)."
    return RuleSpec(id, name, check, severity, description + note, remediation, cis, ("cis", *tags))


# -- checks ----------------------------------------------------------------------------------------------
def apparmor_missing(c: Container) -> bool:
    profile = str(top(c, "AppArmorProfile") or "").strip().lower()
    if profile in ("", "unconfined"):
        return True
    return any(k == "apparmor" and v == "unconfined" for k, v in security_options(host_config(c)))


def selinux_disabled(c: Container) -> bool:
    return any(k == "label" and v in SELINUX_OFF for k, v in security_options(host_config(c)))


def added_capabilities(c: Container) -> set[str]:
    return {capability(name) for name in host_config(c).get("CapAdd") or ()}


def capabilities_beyond_defaults(c: Container) -> bool:
    return bool(added_capabilities(c) - DEFAULT_CAPABILITIES)


def dangerous_capabilities(c: Container) -> bool:
    return not added_capabilities(c).isdisjoint(DANGEROUS_CAPABILITIES)


def privileged(c: Container) -> bool:
    return bool(host_config(c).get("Privileged"))


def mounts_touching(paths: Iterable[str], writable_only: bool = False) -> Check:
    """A check: a mounted host path is one of `paths`, inside one, or a folder holding one (such as "/")."""
    protected = tuple(canonical(p) for p in paths)

    def check(c: Container) -> bool:
        for mount in host_mounts(c):
            if writable_only and not mount.writable:
                continue
            for path in protected:
                if is_under(mount.source, path) or is_under(path, mount.source):
                    return True
        return False

    return check


def privileged_ports(c: Container) -> bool:
    for _, host_port in published_ports(c):
        port = first_port(host_port)
        if port is not None and 0 < port < 1024:
            return True
    return False


def namespace_shared(key: str) -> Check:
    """A check: HostConfig[key] (PidMode, IpcMode, UTSMode, UsernsMode, NetworkMode) is "host"."""

    def check(c: Container) -> bool:
        return str(host_config(c).get(key) or "").lower() == "host"

    return check


def memory_unlimited(c: Container) -> bool:
    return not (host_config(c).get("Memory") or 0) > 0


def cpu_unlimited(c: Container) -> bool:
    hc = host_config(c)
    return cpu_limit(hc) is None and not (hc.get("CpuShares") or 0) > 0


def root_writable(c: Container) -> bool:
    return not host_config(c).get("ReadonlyRootfs")


def ports_on_all_interfaces(c: Container) -> bool:
    if any(ip in ALL_INTERFACES for ip, _ in published_ports(c)):
        return True
    # -P publishes every exposed port on all interfaces, but the bindings appear only once it runs.
    return bool(host_config(c).get("PublishAllPorts")) and bool(config(c).get("ExposedPorts"))


def restarts_beyond(max_retries: int) -> Check:
    """A check: the restart policy may restart the container more than `max_retries` times."""

    def check(c: Container) -> bool:
        policy = host_config(c).get("RestartPolicy") or EMPTY
        name = str(policy.get("Name") or "no").lower()
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure":
            count = policy.get("MaximumRetryCount") or 0
            return count <= 0 or count > max_retries  # 0 means no limit
        return False

    return check


def host_devices(c: Container) -> bool:
    hc = host_config(c)
    return bool(hc.get("Devices")) or bool(hc.get("DeviceCgroupRules"))


def shared_propagation(c: Container) -> bool:
    return any(mount.propagation in ("shared", "rshared") for mount in host_mounts(c))


def seccomp_unconfined(c: Container) -> bool:
    return any(k == "seccomp" and v == "unconfined" for k, v in security_options(host_config(c)))


def cgroup_parent_not_in(expected: Iterable[str]) -> Check:
    """A check: CgroupParent is set and is not one of `expected` (empty means the engine's default)."""
    allowed = frozenset(e.rstrip("/") for e in expected)

    def check(c: Container) -> bool:
        parent = str(host_config(c).get("CgroupParent") or "").rstrip("/")
        return bool(parent) and parent not in allowed

    return check


def new_privileges_allowed(c: Container) -> bool:
    for key, value in security_options(host_config(c)):
        if key == "no-new-privileges" and value in ("", "true"):
            return False
    return True


def no_healthcheck(c: Container) -> bool:
    healthcheck = full_config(c).get("Healthcheck")
    if not healthcheck:
        return True
    test = healthcheck.get("Test") or ()
    return not test or str(test[0]).upper() == "NONE"


def pids_unlimited(c: Container) -> bool:
    limit = host_config(c).get("PidsLimit")
    return limit is None or limit <= 0


def default_bridge(c: Container) -> bool:
    mode = str(host_config(c).get("NetworkMode") or "default").lower()
    if mode not in ("default", "bridge"):
        return False
    bridge = (network_settings(c).get("Networks") or EMPTY).get("bridge")
    # An engine without docker0 (dockerd --bridge=none) starts such containers with a bridge endpoint that
    # has no network id. Before the start no engine has filled the id in, so the configuration decides.
    return not (bridge is not None and is_running(c) and not bridge.get("NetworkID"))


def privileged_exec(c: Container) -> bool:
    return bool(c.exec is not None and c.exec.privileged)


def root_exec(c: Container) -> bool:
    return bool(c.exec is not None and is_root_user(c.exec.user))


def socket_reacher(sockets: Iterable[str]) -> Check:
    """A check: a mounted host path is an engine socket, or a folder that holds one (/, /run, /var/run...)."""
    paths = {canonical(s) for s in sockets}
    paths |= {"/var" + p for p in paths if p.startswith("/run/")}  # /var/run is a link to /run
    reachable = set()
    for path in paths:
        while True:
            reachable.add(path)
            if path == "/":
                break
            path = posixpath.dirname(path)
    frozen = frozenset(reachable)

    def reaches(source: str) -> bool:
        if source in frozen or _PROC_ESCAPE.match(source):
            return True
        name = posixpath.basename(source)
        if any(socket in name for socket in _SOCKET_NAMES):
            return True
        if source.startswith("/var/run/"):
            source = source[4:]
        return bool(_RUN_USER.match(source))

    def check(c: Container) -> bool:
        return any(reaches(mount.source) for mount in host_mounts(c))

    return check


# -- the rules -------------------------------------------------------------------------------------------
APPARMOR_PROFILE = cis_spec(
    "apparmor-profile",
    "5.2",
    "AppArmor profile applied",
    apparmor_missing,
    "medium",
    "Flags a container that runs without an AppArmor profile: AppArmorProfile empty or `unconfined`, or "
    "`--security-opt apparmor=unconfined`. On a host without AppArmor (SELinux distributions) a running "
    "container has no profile, even one it asked for, so every container is flagged: leave this rule out there.",
    "Run with Docker's default profile (the default where AppArmor is enabled) or a profile of your own: "
    "`--security-opt apparmor=docker-default`; never `apparmor=unconfined`.",
    tags=("apparmor", "mac"),
)
NO_SELINUX_DISABLED = cis_spec(
    "no-selinux-disabled",
    "5.3",
    "SELinux labels not disabled",
    selinux_disabled,
    "medium",
    "Flags a container whose SELinux labelling is switched off: `--security-opt label=disable` or the "
    "unconfined types `label=type:spc_t` and `label=type:unconfined_t`. Docker adds `label=disable` itself to "
    "privileged containers and to those sharing the host's PID or IPC namespace, so those are flagged too.",
    "Drop `--security-opt label=disable`; where a volume needs relabelling, mount it with `:z` or `:Z`.",
    tags=("selinux", "mac"),
)
NO_ADDED_CAPABILITIES = cis_spec(
    "no-added-capabilities",
    "5.4",
    "no capabilities beyond the defaults",
    capabilities_beyond_defaults,
    "medium",
    "Flags a container given a Linux capability beyond Docker's default set (CHOWN, DAC_OVERRIDE, FSETID, "
    "FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, "
    "AUDIT_WRITE) with `--cap-add`, with or without the `CAP_` prefix; `--cap-add ALL` counts.",
    "Remove the `--cap-add` options the application does not need; better, start from `--cap-drop ALL` "
    "and add back only what it uses. `limits.capabilities_only(...)` allows a reviewed list.",
    tags=("capabilities",),
)
NO_DANGEROUS_CAPABILITIES = cis_spec(
    "no-dangerous-capabilities",
    "5.4",
    "no dangerous capabilities",
    dangerous_capabilities,
    "high",
    "Flags a container given a capability that is a known way out of the container: ALL, SYS_ADMIN "
    "(mounts, namespaces, cgroups), SYS_MODULE (kernel modules), SYS_PTRACE (other processes' memory) or "
    "DAC_READ_SEARCH (open_by_handle_at, the 'shocker' escape).",
    "Remove these `--cap-add` options; if a tool really needs one, run it outside containers or review "
    "the container and whitelist it for this rule.",
    tags=("capabilities",),
)
NO_PRIVILEGED = cis_spec(
    "no-privileged",
    "5.5",
    "no privileged mode",
    privileged,
    "critical",
    "Flags a container started with `--privileged`: it gets every capability, every host device, and no "
    "AppArmor, SELinux or seccomp confinement, which makes it root on the host. Sockguard and Lancelot "
    "refuse such containers.",
    "Drop `--privileged`; add the single capability (`--cap-add`) or device (`--device`) actually needed.",
    tags=("proxy", "sockguard", "lancelot"),
)
NO_SENSITIVE_MOUNTS = cis_spec(
    "no-sensitive-mounts",
    "5.6",
    "no sensitive host directories mounted",
    mounts_touching(SENSITIVE_DIRS),
    "high",
    "Flags a container with a host path mounted, read-only or not, that is `/` or at or below /boot, /dev, "
    "/etc, /lib, /proc, /sys or /usr (from `-v`/`--mount` binds; `..` and /proc/<pid>/root are resolved). "
    "Even read-only, such a mount shows host secrets and configuration.",
    "Mount only the application's own data folder, or use a named volume; copy needed host files into the "
    "image or pass them as configs or secrets.",
    tags=("mounts",),
)
NO_SENSITIVE_MOUNTS_RW = cis_spec(
    "no-sensitive-mounts-rw",
    "5.6",
    "no sensitive host directories mounted writable",
    mounts_touching(SENSITIVE_DIRS, writable_only=True),
    "critical",
    "Flags a container with `/` or a path at or below /boot, /dev, /etc, /lib, /proc, /sys or /usr mounted "
    "read-write: writing there changes the host (a cron job in /etc, a library in /usr) and so owns it.",
    "Remove the mount, or at least make it read-only (`-v /etc/app:/etc/app:ro`).",
    tags=("mounts",),
)
NO_PRIVILEGED_PORTS = cis_spec(
    "no-privileged-ports",
    "5.8",
    "no privileged host ports",
    privileged_ports,
    "low",
    "Flags a container that publishes a host port below 1024 (`-p 80:8080`), in its configuration or its "
    "live bindings. Ports the engine picks (`-p 8080`, `-P`) are above 1024.",
    "Publish on a port of 1024 or more (`-p 8080:80`) and put a proxy or load balancer in front if clients "
    "need the low port.",
    tags=("network", "ports"),
)
NO_HOST_NETWORK = cis_spec(
    "no-host-network",
    "5.10",
    "no host network",
    namespace_shared("NetworkMode"),
    "high",
    "Flags a container in the host's network namespace (`--network host`): it can bind any host port, "
    "reach services on the host's loopback and sniff traffic. Sockguard refuses it.",
    "Use a user-defined network and publish only the ports needed (`-p 127.0.0.1:8080:80`).",
    tags=("network", "namespaces", "proxy", "sockguard"),
)
MEMORY_LIMIT = cis_spec(
    "memory-limit",
    "5.11",
    "memory limited",
    memory_unlimited,
    "medium",
    "Flags a container without a memory limit (HostConfig.Memory 0): one leak can starve the host and "
    "every other container.",
    "Set `--memory` (for example `--memory 512m`); `limits.memory_at_most('2g')` also caps the size.",
    tags=("resources",),
)
CPU_LIMIT = cis_spec(
    "cpu-limit",
    "5.12",
    "CPU limited",
    cpu_unlimited,
    "low",
    "Flags a container with neither a CPU limit (`--cpus`, `--cpu-quota`, `--cpuset-cpus`) nor a CPU "
    "priority (`--cpu-shares`): it competes for the CPU on equal terms with everything else.",
    "Set `--cpus` (for example `--cpus 1.5`) or a relative `--cpu-shares`.",
    tags=("resources",),
)
READ_ONLY_ROOTFS = cis_spec(
    "read-only-rootfs",
    "5.13",
    "read-only root filesystem",
    root_writable,
    "low",
    "Flags a container whose root filesystem is writable (no `--read-only`): an intruder can change its "
    "binaries and the change goes unnoticed.",
    "Run with `--read-only` and give writable paths explicitly (`--tmpfs /tmp`, a volume for data).",
    tags=("filesystem",),
)
NO_PORTS_ON_ALL_INTERFACES = cis_spec(
    "no-ports-on-all-interfaces",
    "5.14",
    "ports bound to a specific interface",
    ports_on_all_interfaces,
    "low",
    "Flags a container that publishes a port on every host interface: `-p 8080:80` (host IP empty, 0.0.0.0 "
    "or ::) or `-P` with exposed ports. (If dockerd runs with `--ip`, an empty host IP means that address "
    "instead.)",
    "Name the interface: `-p 127.0.0.1:8080:80` or `-p 10.0.0.5:8080:80`.",
    tags=("network", "ports"),
)
RESTART_RETRIES_LIMITED = cis_spec(
    "restart-retries-limited",
    "5.15",
    "restart attempts limited to 5",
    restarts_beyond(5),
    "low",
    "Flags a container whose restart policy may restart it without end: `always`, `unless-stopped`, or "
    "`on-failure` with no count or a count above 5. A crash loop then burns the host's resources.",
    "Use `--restart on-failure:5` (`limits.restart_retries_at_most(n)` allows another count).",
    tags=("resources",),
)
NO_HOST_PID = cis_spec(
    "no-host-pid",
    "5.16",
    "no host PID namespace",
    namespace_shared("PidMode"),
    "high",
    "Flags a container in the host's process namespace (`--pid host`): it sees, and as root can signal or "
    "trace, every process of the host.",
    "Remove `--pid host`; to debug another container use `--pid container:<name>`.",
    tags=("namespaces",),
)
NO_HOST_IPC = cis_spec(
    "no-host-ipc",
    "5.17",
    "no host IPC namespace",
    namespace_shared("IpcMode"),
    "medium",
    "Flags a container in the host's IPC namespace (`--ipc host`): it can read and change the host's "
    "shared memory, semaphores and message queues.",
    "Remove `--ipc host`; containers that must share memory can use `--ipc shareable` and "
    "`--ipc container:<name>`.",
    tags=("namespaces",),
)
NO_HOST_DEVICES = cis_spec(
    "no-host-devices",
    "5.18",
    "no host devices",
    host_devices,
    "medium",
    "Flags a container given host devices directly (`--device`) or device cgroup rules "
    "(`--device-cgroup-rule`) that let it create and open device nodes. (GPU requests with `--gpus` are "
    "not counted.)",
    "Remove `--device`; if the device is needed, grant the single device read-only (`--device "
    "/dev/x:/dev/x:r`) and whitelist that container for this rule.",
    tags=("devices",),
)
NO_SHARED_MOUNT_PROPAGATION = cis_spec(
    "no-shared-mount-propagation",
    "5.20",
    "no shared mount propagation",
    shared_propagation,
    "medium",
    "Flags a container with a bind mount in `shared` or `rshared` propagation: mounts made inside the "
    "container then appear on the host.",
    "Use the default `rprivate` propagation (or `rslave` if the container must see host mounts).",
    tags=("mounts",),
)
NO_HOST_UTS = cis_spec(
    "no-host-uts",
    "5.21",
    "no host UTS namespace",
    namespace_shared("UTSMode"),
    "low",
    "Flags a container in the host's UTS namespace (`--uts host`): it can change the host's hostname.",
    "Remove `--uts host`; set a name with `--hostname`.",
    tags=("namespaces",),
)
NO_SECCOMP_UNCONFINED = cis_spec(
    "no-seccomp-unconfined",
    "5.22",
    "seccomp profile not disabled",
    seccomp_unconfined,
    "high",
    "Flags a container started with `--security-opt seccomp=unconfined` (or the old `seccomp:unconfined`): "
    "every system call reaches the kernel, including the ones container escapes use.",
    "Drop the option; if one system call is missing, pass a copy of Docker's default profile with that call "
    "added: `--security-opt seccomp=/path/profile.json`.",
    tags=("seccomp",),
)
NO_CUSTOM_CGROUP_PARENT = cis_spec(
    "no-custom-cgroup-parent",
    "5.25",
    "cgroup parent confirmed",
    cgroup_parent_not_in(()),
    "low",
    "Flags a container placed under a cgroup parent of its own choosing (`--cgroup-parent`) instead of the "
    "engine's default: its resource limits are then whatever that cgroup allows. Where a socket proxy puts "
    "containers under a known parent, use `proxies.cgroup_parent_under(...)` instead.",
    "Remove `--cgroup-parent`, or confirm the parent and whitelist it (or use "
    "`proxies.cgroup_parent_under('/expected')`).",
    tags=("resources", "cgroups"),
)
NO_NEW_PRIVILEGES = cis_spec(
    "no-new-privileges",
    "5.26",
    "no new privileges",
    new_privileges_allowed,
    "medium",
    "Flags a container started without `--security-opt no-new-privileges`: a setuid binary in the image "
    "can still raise a process's privileges. A daemon-wide `no-new-privileges` setting does not show in "
    "inspect data; on such hosts leave this rule out.",
    "Run with `--security-opt no-new-privileges` (or set `no-new-privileges: true` in daemon.json).",
    tags=("privileges",),
)
HEALTHCHECK_CONFIGURED = cis_spec(
    "healthcheck-configured",
    "5.27",
    "health check configured",
    no_healthcheck,
    "info",
    "Flags a container with no health check, neither from its image (HEALTHCHECK) nor from `--health-cmd`, "
    "or with `--no-healthcheck`: the engine cannot tell that it has stopped working.",
    "Add a HEALTHCHECK to the image or run with `--health-cmd` (for example `--health-cmd 'wget -q -O- "
    "localhost:8080/health'`).",
    tags=("operations",),
)
PIDS_LIMIT = cis_spec(
    "pids-limit",
    "5.29",
    "PIDs limited",
    pids_unlimited,
    "medium",
    "Flags a container without a positive `--pids-limit`: a fork bomb inside it exhausts the host's "
    "process table.",
    "Set `--pids-limit` (for example `--pids-limit 200`); `limits.pids_at_most(n)` also caps the value.",
    tags=("resources",),
)
NO_DEFAULT_BRIDGE = cis_spec(
    "no-default-bridge",
    "5.30",
    "not on the default bridge",
    default_bridge,
    "low",
    "Flags a container on Docker's default bridge, docker0 (network mode `default` or `bridge`), where every "
    "container can reach every other one. A running container whose bridge endpoint has no network id "
    "(dockerd started with `--bridge=none`) has no docker0 and passes.",
    "Create a user-defined network (`docker network create app`) and run with `--network app`.",
    tags=("network",),
)
NO_HOST_USERNS = cis_spec(
    "no-host-userns",
    "5.31",
    "no host user namespace",
    namespace_shared("UsernsMode"),
    "medium",
    "Flags a container that opts out of the engine's user namespace remapping (`--userns host`): its root "
    "is the host's root.",
    "Remove `--userns host`.",
    tags=("namespaces",),
)
NO_DOCKER_SOCKET = cis_spec(
    "no-docker-socket",
    "5.32",
    "no Docker or containerd socket",
    socket_reacher(ENGINE_SOCKETS),
    "critical",
    "Flags a container that can reach the Docker or containerd API socket through a mount, in any way: the "
    "socket itself (any file named docker.sock or containerd.sock, wherever it lives), or a folder that "
    "holds one: /, /run, /var, /var/run, /run/docker, /run/containerd, /run/user/<uid>, /proc or "
    "/proc/<pid>. Whoever holds the socket is root on the host; socket proxies such as Sockguard and "
    "Lancelot exist so that containers need not get it.",
    "Remove the mount. A container that must start containers should talk to a socket proxy that filters "
    "the API (and run that proxy with this rule whitelisted), never to the engine's own socket.",
    tags=("mounts", "socket", "proxy", "sockguard", "lancelot"),
)
NO_PRIVILEGED_EXEC = cis_spec(
    "no-privileged-exec",
    "5.23",
    "no privileged exec",
    privileged_exec,
    "critical",
    "Flags a `docker exec --privileged` session (judged at its start with RUN_EXEC_EVENTS=True): the "
    "command gets every capability and no AppArmor, SELinux or seccomp confinement, whatever the container "
    'itself was allowed. In KILL mode the container is stopped; add `"mode": "WARN"` to only record it.',
    "Exec without `--privileged`; a task that needs more rights belongs in a container configured (and "
    "reviewed) for it.",
    tags=("exec",),
)
NO_ROOT_EXEC = RuleSpec(
    "no-root-exec",
    "no exec as root",
    root_exec,
    "medium",
    "Flags a `docker exec` session that runs as root (judged at its start with RUN_EXEC_EVENTS=True): "
    "`-u 0`, `-u root`, `-u 0:<group>`, or no `-u` in a container whose own user is root (the engine runs "
    "the exec as the container's user). The container's own healthcheck is never judged. Opt-in: not in "
    "`cis.rules()` nor `select('cis')`, since many hosts let operators exec as root; pick it by id or "
    "`cis-5.24`. CIS Docker Benchmark v1.6 5.24 (5.23 in v1.2 to v1.5).",
    "Exec as an unprivileged user (`docker exec -u 1000 ...`), or give the container a non-root USER so "
    "that execs without `-u` run as it.",
    cis="5.24",
    tags=("exec", "opt-in"),
)

SPECS: tuple[RuleSpec, ...] = (
    APPARMOR_PROFILE,
    NO_SELINUX_DISABLED,
    NO_ADDED_CAPABILITIES,
    NO_DANGEROUS_CAPABILITIES,
    NO_PRIVILEGED,
    NO_SENSITIVE_MOUNTS,
    NO_SENSITIVE_MOUNTS_RW,
    NO_PRIVILEGED_PORTS,
    NO_HOST_NETWORK,
    MEMORY_LIMIT,
    CPU_LIMIT,
    READ_ONLY_ROOTFS,
    NO_PORTS_ON_ALL_INTERFACES,
    RESTART_RETRIES_LIMITED,
    NO_HOST_PID,
    NO_HOST_IPC,
    NO_HOST_DEVICES,
    NO_SHARED_MOUNT_PROPAGATION,
    NO_HOST_UTS,
    NO_SECCOMP_UNCONFINED,
    NO_CUSTOM_CGROUP_PARENT,
    NO_NEW_PRIVILEGES,
    HEALTHCHECK_CONFIGURED,
    PIDS_LIMIT,
    NO_DEFAULT_BRIDGE,
    NO_HOST_USERNS,
    NO_DOCKER_SOCKET,
    NO_PRIVILEGED_EXEC,
)
OPT_IN: tuple[RuleSpec, ...] = (NO_ROOT_EXEC,)  # section 5 rules left out of `rules()` unless asked for
FACTORIES = ()


def rules(*, exclude: Iterable[str] = (), include_opt_in: bool = False) -> list[dict[str, Any]]:
    """Every CIS section 5 rule as rule dicts, minus those `exclude` names by id, `cis-<id>` or tag;
    `include_opt_in` adds the opt-in ones (no-root-exec).

    `cis.rules(exclude=["apparmor-profile"])` suits a host without AppArmor.
    """
    specs = SPECS + OPT_IN if include_opt_in else SPECS
    return [spec.as_rule() for spec in excluding(specs, exclude)]
