"""Capture the `docker inspect` examples the library's rule tests judge (run as root; commit the output).

    python tests/library/capture_examples.py            # writes tests/library/examples/<scenario>.json

Starts its own isolated engine (tests/support/engine.py), creates one container per scenario below with
`docker create` (so that configurations this sandbox cannot start, such as --privileged, are captured too;
scenarios marked `start` are started first), saves `docker inspect` output unchanged, removes the container
and finally the engine. Bind sources need not exist for `-v`; `--mount type=bind` needs an existing path.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
sys.path.insert(0, str(HERE.parent))

from support.engine import Engine, ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402

BUSYBOX = "busybox:latest"
HUB_TAGGED = "busybox:1.36"
PRIVATE = "registry.example.com/tools/busybox:1.36"
OTHER_REGISTRY = "ghcr.io/acme/tool:2.0"
IMAGE_ID = "<image id>"  # replaced by busybox's sha256 id


@dataclass(frozen=True)
class Scenario:
    name: str
    args: tuple[str, ...] = ()
    image: str = BUSYBOX
    start: bool = False


def s(name: str, *args: str, image: str = BUSYBOX, start: bool = False) -> Scenario:
    return Scenario(name, args, image, start)


HARDENED = (
    "--read-only",
    "--memory", "64m",
    "--cpus", "0.5",
    "--pids-limit", "100",
    "--security-opt", "no-new-privileges",
    "--security-opt", "apparmor=docker-default",
    "--user", "1000:1000",
    "--network", "none",
    "--restart", "on-failure:3",
    "--health-cmd", "true",
    "--cap-drop", "ALL",
    "--label", "com.example.owner=team-a",
    "--label", "com.example.team=a",
)  # fmt: skip

SCENARIOS = (
    s("plain"),
    s("plain-running", start=True),
    s("hardened", *HARDENED, image=PRIVATE),
    # privileges and confinement
    s("privileged", "--privileged"),
    s("cap-sys-admin", "--cap-add", "SYS_ADMIN"),
    s("cap-dac-read-search", "--cap-add", "cap_dac_read_search"),
    s("cap-all", "--cap-add", "ALL"),
    s("cap-net-admin", "--cap-add", "NET_ADMIN"),
    s("cap-default-chown", "--cap-add", "CHOWN"),
    s("apparmor-unconfined", "--security-opt", "apparmor=unconfined"),
    s("apparmor-default", "--security-opt", "apparmor=docker-default"),
    s("selinux-disabled", "--security-opt", "label=disable"),
    s("selinux-spc", "--security-opt", "label=type:spc_t"),
    s("seccomp-unconfined", "--security-opt", "seccomp=unconfined"),
    s("no-new-privileges", "--security-opt", "no-new-privileges"),
    s("no-new-privileges-false", "--security-opt", "no-new-privileges=false"),
    # mounts
    s("bind-root-ro", "-v", "/:/host:ro"),
    s("bind-etc-rw", "-v", "/etc:/host-etc"),
    s("bind-etc-ssl-ro", "--mount", "type=bind,source=/etc/ssl,target=/ssl,readonly"),
    s("bind-proc-root-etc", "-v", "/proc/1/root/etc:/host-etc:ro"),
    s("bind-docker-sock", "-v", "/var/run/docker.sock:/var/run/docker.sock"),
    s("bind-var-run", "-v", "/var/run:/host-run:ro"),
    s("bind-containerd-dir", "-v", "/run/containerd:/run/containerd"),
    s("bind-engine-api-sock", "-v", "/srv/engine/api.sock:/api.sock"),
    s("bind-allowed", "-v", "/opt/mnt1/data:/data", "-v", "/opt/mnt2:/cache:ro", "-v", "appdata:/app"),
    s("bind-escape-allowed", "-v", "/opt/mnt1/../secrets:/secrets"),
    s("bind-srv", "-v", "/srv:/srv:ro"),
    s("bind-rshared", "-v", "/opt/mnt1:/x:rshared"),
    s("mount-shared", "--mount", "type=bind,source=/opt,target=/x,bind-propagation=shared"),
    s("volume-only", "-v", "appdata:/data"),
    # namespaces and network
    s("network-host", "--network", "host"),
    s("network-none", "--network", "none"),
    s("pid-host", "--pid", "host"),
    s("ipc-host", "--ipc", "host"),
    s("uts-host", "--uts", "host"),
    s("userns-host", "--userns", "host"),
    s("port-80-all", "-p", "80:8080"),
    s("port-8080-all", "-p", "8080:80"),
    s("port-localhost", "-p", "127.0.0.1:8080:80"),
    s("publish-all", "--expose", "9000", "-P"),
    # devices
    s("device", "--device", "/dev/null:/dev/x"),
    s("device-cgroup-rule", "--device-cgroup-rule", "c 1:3 r"),
    # resources
    s("read-only", "--read-only"),
    s("memory-64m", "--memory", "64m"),
    s("memory-4g", "--memory", "4g"),
    s("cpus-2", "--cpus", "2"),
    s("cpu-quota-half", "--cpu-quota", "50000", "--cpu-period", "100000"),
    s("cpuset-one", "--cpuset-cpus", "0"),
    s("cpu-shares", "--cpu-shares", "512"),
    s("pids-limit-500", "--pids-limit", "500"),
    s("restart-always", "--restart", "always"),
    s("restart-unless-stopped", "--restart", "unless-stopped"),
    s("restart-on-failure", "--restart", "on-failure"),
    s("restart-on-failure-5", "--restart", "on-failure:5"),
    s("restart-on-failure-10", "--restart", "on-failure:10"),
    s("cgroup-ci-job", "--cgroup-parent", "/ci/job-1"),
    s("cgroup-other", "--cgroup-parent", "/other"),
    s("healthcheck", "--health-cmd", "true"),
    s("no-healthcheck", "--no-healthcheck"),
    # user, labels, images
    s("user-1000", "--user", "1000"),
    s("user-root", "--user", "root"),
    s("user-0-group", "--user", "0:1000"),
    s("owner-label", "--label", "com.example.owner=alice"),
    s("image-latest", image=BUSYBOX),
    s("image-hub-tagged", image=HUB_TAGGED),
    s("image-other-registry", image=OTHER_REGISTRY),
    s("image-by-id", image=IMAGE_ID),
)


def prepare_images(engine: Engine) -> str:
    """busybox under the extra names the image scenarios use; returns busybox's image id."""
    ensure_busybox_image(engine, BUSYBOX)
    for tag in (HUB_TAGGED, PRIVATE, OTHER_REGISTRY):
        engine.docker("tag", BUSYBOX, tag)
    return engine.docker("image", "inspect", "--format", "{{.Id}}", BUSYBOX).stdout.strip()


def capture(engine: Engine, scenario: Scenario, image_id: str) -> list[dict[str, object]]:
    image = image_id if scenario.image == IMAGE_ID else scenario.image
    engine.docker("create", "--name", scenario.name, *scenario.args, image, "sleep", "3600")
    try:
        if scenario.start:
            engine.docker("start", scenario.name)
        data: list[dict[str, object]] = json.loads(engine.docker("inspect", scenario.name).stdout)
        return data
    finally:
        engine.docker("rm", "--force", "--volumes", scenario.name)


def main() -> int:
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    EXAMPLES.mkdir(exist_ok=True)
    engine = start_engine()
    try:
        image_id = prepare_images(engine)
        for scenario in SCENARIOS:
            inspect = capture(engine, scenario, image_id)
            path = EXAMPLES / f"{scenario.name}.json"
            path.write_text(json.dumps(inspect, indent=2, sort_keys=False) + "\n")
            print(f"{path.relative_to(HERE.parent.parent)}: docker create {' '.join(scenario.args)}")
        engine.docker("volume", "prune", "--force")
    finally:
        engine.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
