"""Capture the `docker inspect` examples the library's rule tests judge (run as root; commit the output).

    python tests/library/capture_examples.py            # writes tests/library/examples/<scenario>.json
    python tests/library/capture_examples.py execs      # only examples/exec/<scenario>.json
    python tests/library/capture_examples.py images     # only examples/image/<scenario>.json

Starts its own isolated engine (tests/support/engine.py), creates one container per scenario below with
`docker create` (so that configurations this sandbox cannot start, such as --privileged, are captured too;
scenarios marked `start` are started first), saves `docker inspect` output unchanged, removes the container
and finally the engine. Bind sources need not exist for `-v`; `--mount type=bind` needs an existing path.

Exec examples (`{"container": inspect, "exec": exec inspect}`) run one `docker exec` each in a started
container (a privileged exec fails to start in this sandbox; its inspect data is there all the same); the
healthcheck's is the exec the engine ran for the container's own healthcheck. Image examples (`{"container":
inspect, "image": image inspect}`) are busybox as imported, an image committed with a USER and a source label,
an image loaded from an archive whose config says it was built in 2019, and (when Debian's docker-registry is
installed) an image pushed to a registry on loopback and pulled by digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
sys.path.insert(0, str(HERE.parent))

from support.engine import (  # noqa: E402
    Engine,
    busybox_rootfs_tar,
    ensure_busybox_image,
    ensure_prerequisites,
    start_engine,
)

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


def capture_containers(engine: Engine) -> None:
    image_id = prepare_images(engine)
    for scenario in SCENARIOS:
        inspect = capture(engine, scenario, image_id)
        write(EXAMPLES / f"{scenario.name}.json", inspect, f"docker create {' '.join(scenario.args)}")
    engine.docker("volume", "prune", "--force")


def write(path: Path, data: object, how: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    print(f"{path.relative_to(HERE.parent.parent)}: {how}")


# -- exec sessions --------------------------------------------------------------------------------------------
EXEC_COMMAND = ("sh", "-c", "exit 0")
EXECS = (  # name, `docker run` options of the container, `docker exec` options
    ("privileged", (), ("--privileged",)),
    ("u0", ("--user", "1000"), ("-u", "0")),
    ("u-root-group", ("--user", "1000"), ("-u", "root:1000")),
    ("default-root", (), ()),
    ("u1000", (), ("-u", "1000")),
    ("inherits-1000", ("--user", "1000"), ()),
    ("tty-1000", ("--user", "1000"), ("-t",)),
)


def capture_execs(engine: Engine) -> None:
    ensure_busybox_image(engine, BUSYBOX)
    for name, run_args, exec_args in EXECS:
        engine.docker("run", "-d", "--name", name, *run_args, BUSYBOX, "sleep", "3600")
        try:
            engine.docker("exec", *exec_args, name, *EXEC_COMMAND, check=False)
            write(EXEC_DIR / f"{name}.json", exec_example(engine, name), f"docker exec {' '.join(exec_args)}")
        finally:
            engine.docker("rm", "--force", name)
    health = ("--health-cmd", "true", "--health-interval", "1s")
    for name, run_args in (("healthcheck", health), ("healthcheck-1000", ("--user", "1000", *health))):
        engine.docker("run", "-d", "--name", name, *run_args, BUSYBOX, "sleep", "3600")
        try:
            wait_for_health_log(engine, name)
            write(EXEC_DIR / f"{name}.json", exec_example(engine, name), "its healthcheck")
        finally:
            engine.docker("rm", "--force", name)


EXEC_DIR = EXAMPLES / "exec"


def exec_example(engine: Engine, name: str) -> dict[str, object]:
    """The container and its first exec, found by its exec_start event (finished execs leave ExecIDs)."""
    (container,) = json.loads(engine.docker("inspect", name).stdout)
    with engine.api() as api:
        events = api.events(
            since=0,
            until=int(time.time()) + 1,
            filters={"container": name, "event": "exec_start"},
            decode=True,
        )
        exec_id = next(iter(events))["Actor"]["Attributes"]["execID"]
        return {"container": container, "exec": api.exec_inspect(exec_id)}


def wait_for_health_log(engine: Engine, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (container,) = json.loads(engine.docker("inspect", name).stdout)
        if (container["State"].get("Health") or {}).get("Log"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name}: no healthcheck ran within {timeout} s")


# -- images --------------------------------------------------------------------------------------------------
IMAGE_DIR = EXAMPLES / "image"
SOURCE_LABEL = "org.opencontainers.image.source"
REGISTRY_PORT = 5057


def capture_images(engine: Engine) -> None:
    ensure_busybox_image(engine, BUSYBOX)
    capture_image(engine, "imported", BUSYBOX)  # before the push below gives busybox a RepoDigest
    capture_image(engine, "committed", commit_labelled(engine))
    capture_image(engine, "old", load_old(engine))
    pulled = pull_by_digest(engine)
    if pulled is not None:
        capture_image(engine, "pulled-by-digest", pulled)
        by_tag = pulled.partition("@")[0] + ":1"  # the same pulled image, named by a tag
        engine.docker("tag", pulled, by_tag)
        capture_image(engine, "pulled-named-by-tag", by_tag)


def capture_image(engine: Engine, name: str, image: str) -> None:
    engine.docker("create", "--name", name, image, "sleep", "3600")
    try:
        (container,) = json.loads(engine.docker("inspect", name).stdout)
        (image_inspect,) = json.loads(engine.docker("image", "inspect", container["Image"]).stdout)
        write(IMAGE_DIR / f"{name}.json", {"container": container, "image": image_inspect}, image)
    finally:
        engine.docker("rm", "--force", name)


def commit_labelled(engine: Engine) -> str:
    """busybox committed with USER 1000 and a source label."""
    tag = "tools/labelled:1"
    engine.docker("create", "--name", "to-commit", BUSYBOX, "sleep", "3600")
    try:
        engine.docker(
            "commit", "--change", "USER 1000", "--change", f"LABEL {SOURCE_LABEL}=https://git.example.com/tools",
            "to-commit", tag,
        )  # fmt: skip
    finally:
        engine.docker("rm", "--force", "to-commit")
    return tag


def load_old(engine: Engine, created: str = "2019-06-01T12:00:00Z") -> str:
    """An image whose config says it was built on `created`, loaded from a `docker save` style archive."""
    tag = "legacy/old:2019"
    layer = busybox_rootfs_tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "busybox-static"}],
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]
    ).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("manifest.json", manifest), (config_name, config), ("layer/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with engine.api() as api:
        list(api.load_image(archive.getvalue()))
    return tag


def pull_by_digest(engine: Engine) -> str | None:
    """busybox pushed to Debian's docker-registry on loopback and pulled back by digest; None without it."""
    binary = shutil.which("docker-registry")
    if binary is None:
        print("docker-registry is not installed: no pulled-by-digest example", file=sys.stderr)
        return None
    config = engine.base_dir / "registry.yml"
    config.write_text(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{engine.base_dir / 'registry'}\nhttp:\n  addr: 127.0.0.1:{REGISTRY_PORT}\n"
    )
    registry = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(REGISTRY_PORT)
        remote = f"127.0.0.1:{REGISTRY_PORT}/tools/busybox:1"
        engine.docker("tag", BUSYBOX, remote)
        engine.docker("push", remote)
        (image,) = json.loads(engine.docker("image", "inspect", remote).stdout)
        digest = image["RepoDigests"][0]
        engine.docker("rmi", remote)
        engine.docker("pull", digest)
        return str(digest)
    finally:
        registry.terminate()
        registry.wait(10)


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


PARTS = {"containers": capture_containers, "execs": capture_execs, "images": capture_images}


def main(argv: list[str]) -> int:
    parts = argv or list(PARTS)
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        print(f"unknown part(s) {unknown}; use any of {', '.join(PARTS)}", file=sys.stderr)
        return 2
    missing = ensure_prerequisites()
    if missing:
        print("cannot start an isolated engine; missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    EXAMPLES.mkdir(exist_ok=True)
    engine = start_engine()
    try:
        for part in parts:
            PARTS[part](engine)
    finally:
        engine.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
