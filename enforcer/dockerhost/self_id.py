"""Finding the id of the container docker-enforcer itself runs in, so that it never judges itself."""

from __future__ import annotations

import re
from pathlib import Path

_ID = re.compile(r"[0-9a-f]{64}")
_CONTAINER_FILE = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)$")
_CGROUP = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})")
# Docker bind-mounts these files of the container's own folder into it. A process on the host sees other
# containers' folders in its mountinfo too (their /dev/shm mounts), but never mounted at these points.
_OWN_MOUNT_POINTS = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def own_container_id(proc: Path = Path("/proc/self")) -> str | None:
    """The 64-hex id of our own container, or None on the host.

    mountinfo first (cgroup v2 hides the id from /proc/self/cgroup): the root of the mount at /etc/hostname
    is `.../containers/<id>/hostname`. Then cgroup v1 paths such as `/docker/<id>`.
    """
    try:
        for line in (proc / "mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[4] in _OWN_MOUNT_POINTS:
                match = _CONTAINER_FILE.search(fields[3])
                if match:
                    return match.group(1)
    except OSError:
        pass
    try:
        match = _CGROUP.search((proc / "cgroup").read_text())
    except OSError:
        return None
    return match.group(1) if match else None
