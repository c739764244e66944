"""Capture the `docker inspect` and `docker stats` samples the unit tests judge offline.

Runs its own isolated engine (tests/support/engine.py, so root, dockerd and busybox-static are needed),
starts three busybox containers, writes their inspect output and one stats sample next to this file,
then removes the engine. Rerun it when the engine version changes:

    python tests/data/capture.py

Files written (each a `docker inspect` JSON list, as the CLI prints it):
    plain.json          `busybox` sleep, nothing set
    limits.json         `busybox:latest` --memory 64m --cpu-period 100000 --cpu-quota 50000
    binds_labels.json   `busybox` -v /etc:/host-etc:ro -v /var/tmp:/scratch and mixed-case label keys
    all.json            the three together, for `docker-enforcer audit --from`
    stats.json          one `stats(stream=False, one_shot=True)` sample of the plain container
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.engine import ensure_busybox_image, ensure_prerequisites, start_engine  # noqa: E402

# name -> (image as typed, docker run options)
CONTAINERS = {
    "plain": ("busybox", []),
    "limits": ("busybox:latest", ["--memory", "64m", "--cpu-period", "100000", "--cpu-quota", "50000"]),
    "binds_labels": ("busybox", [
        "-v", "/etc:/host-etc:ro",
        "-v", "/var/tmp:/scratch",
        "--label", "com.example.Team=payments",
        "--label", "Owner=alice",
    ]),
}  # fmt: skip


def write(name: str, data: object) -> None:
    path = HERE / name
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


def capture() -> None:
    engine = start_engine()
    try:
        ensure_busybox_image(engine)
        ids = {}
        for name, (image, options) in CONTAINERS.items():
            # Started one after another, so StartedAt orders them plain < limits < binds_labels.
            ids[name] = engine.docker(
                "run", "-d", "--name", name, *options, image, "sleep", "3600"
            ).stdout.strip()
            time.sleep(0.05)
        inspected = {name: json.loads(engine.docker("inspect", cid).stdout) for name, cid in ids.items()}
        for name, data in inspected.items():
            write(f"{name}.json", data)
        write("all.json", [item for data in inspected.values() for item in data])
        with engine.api() as api:
            write("stats.json", api.stats(ids["plain"], stream=False, one_shot=True))
    finally:
        engine.destroy()


if __name__ == "__main__":
    missing = ensure_prerequisites()
    if missing:
        sys.exit("cannot start an isolated engine; missing: " + "; ".join(missing))
    capture()
