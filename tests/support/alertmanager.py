"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, for notifier tests.

    with Alertmanager(tmp_path) as am:
        am.url            # http://127.0.0.1:PORT
        am.alerts()       # GET /api/v2/alerts: the active alerts (resolved ones are left out)

No gossip (`--cluster.listen-address=` empty), its data in tmp_path, a config with one default receiver.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from support.daemon import free_port

BINARY = "prometheus-alertmanager"
CONFIG = """
route:
  receiver: default
  group_wait: 1s
receivers:
  - name: default
"""


def binary() -> str:
    found = shutil.which(BINARY) or shutil.which("alertmanager")
    if found is None:
        pytest.skip(f"{BINARY} is not installed (scripts/test installs it)")
    return found


class Alertmanager:
    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "alertmanager"
        self.folder.mkdir(exist_ok=True)
        (self.folder / "alertmanager.yml").write_text(CONFIG)
        self.port = free_port()
        self.log = self.folder / "log.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Alertmanager:
        command = [
            binary(), f"--config.file={self.folder / 'alertmanager.yml'}", f"--storage.path={self.folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 20
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                pytest.fail(f"Alertmanager did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as response:
            return list(json.loads(response.read()))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
