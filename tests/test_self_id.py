"""The id of the container docker-enforcer runs in, read from /proc, so that it never judges itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.engine import Engine, RunContainer

from enforcer.dockerhost.self_id import own_container_id

OWN = "a" * 63 + "1"
OTHER = "b" * 63 + "2"

# /proc/self/mountinfo of a process in a container: Docker bind-mounts /etc/hostname, hosts, resolv.conf.
CONTAINER_MOUNTINFO = f"""\
1467 1310 0:170 / / rw,relatime master:395 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
1468 1467 0:173 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1502 1467 8:1 /var/lib/docker/containers/{OWN}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
1503 1467 8:1 /var/lib/docker/containers/{OWN}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
1504 1467 8:1 /var/lib/docker/containers/{OWN}/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
"""
# The host's own mountinfo, where dockerd runs: an IPC-shareable container's /dev/shm shows up here.
HOST_MOUNTINFO = f"""\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
312 22 0:52 / /var/lib/docker/containers/{OTHER}/mounts/shm rw,nosuid,nodev,noexec shared:160 - tmpfs shm rw
"""
CGROUP_V1 = f"12:pids:/docker/{OWN}\n11:memory:/docker/{OWN}\n"
CGROUP_SYSTEMD = f"0::/system.slice/docker-{OWN}.scope\n"
CGROUP_HOST = "0::/user.slice/user-1000.slice/session-2.scope\n"


def fake_proc(tmp_path: Path, mountinfo: str | None = None, cgroup: str | None = None) -> Path:
    proc = tmp_path / "proc-self"
    proc.mkdir()
    if mountinfo is not None:
        (proc / "mountinfo").write_text(mountinfo)
    if cgroup is not None:
        (proc / "cgroup").write_text(cgroup)
    return proc


# -- own container id ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mountinfo", "cgroup"),
    [
        (CONTAINER_MOUNTINFO, "0::/\n"),  # cgroup v2 with a private cgroup namespace: only mountinfo tells
        (CONTAINER_MOUNTINFO, None),
        (None, CGROUP_V1),  # no mountinfo: the cgroup path
        ("", CGROUP_SYSTEMD),  # systemd cgroup driver
    ],
    ids=["mountinfo+cgroup2", "mountinfo-only", "cgroup-v1", "cgroup-systemd"],
)
def test_own_container_id_inside_a_container(
    tmp_path: Path, mountinfo: str | None, cgroup: str | None
) -> None:
    assert own_container_id(fake_proc(tmp_path, mountinfo, cgroup)) == OWN


@pytest.mark.parametrize(
    ("mountinfo", "cgroup"),
    [("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", CGROUP_HOST), (None, None), ("", "")],
    ids=["host", "no-proc-files", "empty-files"],
)
def test_no_own_container_id_outside_a_container(
    tmp_path: Path, mountinfo: str | None, cgroup: str | None
) -> None:
    assert own_container_id(fake_proc(tmp_path, mountinfo, cgroup)) is None


def test_a_containers_shm_mount_on_the_host_is_not_the_own_container(tmp_path: Path) -> None:
    assert own_container_id(fake_proc(tmp_path, HOST_MOUNTINFO, CGROUP_HOST)) is None


def test_own_container_id_prefers_the_hostname_mount(tmp_path: Path) -> None:
    """In a container mountinfo names its own id; an id elsewhere in the text (a volume path) is not it."""
    mountinfo = CONTAINER_MOUNTINFO + f"1600 1467 8:1 /srv/{OTHER} /data rw - ext4 /dev/sda1 rw\n"
    assert own_container_id(fake_proc(tmp_path, mountinfo, "0::/\n")) == OWN


def test_a_short_id_in_a_cgroup_path_is_no_container_id(tmp_path: Path) -> None:
    assert own_container_id(fake_proc(tmp_path, "", "12:memory:/docker/not-an-id\n")) is None


def test_own_container_id_inside_a_real_container(
    tmp_path: Path, clean_engine: Engine, run_container: RunContainer
) -> None:
    cid = run_container("self-id")
    mountinfo = clean_engine.docker("exec", cid, "cat", "/proc/self/mountinfo").stdout
    cgroup = clean_engine.docker("exec", cid, "cat", "/proc/self/cgroup").stdout
    assert own_container_id(fake_proc(tmp_path, mountinfo, cgroup)) == cid
