"""The status page in a real browser: Debian's chromium, headless, loading it from a served app.

The store holds a detection whose rule name has quotes and markup and whose label has a <script>; the test
reads the DOM chromium built and checks what a person would see. Without chromium the test is skipped, or
fails under CI=true (scripts/test installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from report_support import HTML_LABEL, QUOTED_RULE, SAFE_RULE

from enforcer.record.model import Finding
from enforcer.record.store import DetectionStore
from enforcer.report.server import ApiServer

pytestmark = pytest.mark.external  # chromium

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    message = "chromium is not installed (scripts/test installs Debian's chromium package)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class Dom(HTMLParser):
    """The elements chromium serialised: every start tag, and the text inside each element with an id or class."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[tuple[str, list[str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        keys = [f"#{values['id']}"] if "id" in values else []
        keys += [f".{name}" for name in values.get("class", "").split()]
        if tag not in ("meta", "br", "img", "input", "link"):
            self._open.append((tag, keys))
            for key in keys:
                self.texts.setdefault(key, []).append("")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, keys in self._open:
            for key in keys:
                self.texts[key][-1] += data

    def text(self, key: str) -> list[str]:
        return [" ".join(text.split()) for text in self.texts.get(key, [])]


@pytest.fixture
def served(
    make_app: Callable[..., Flask], store: DetectionStore, make_finding: Callable[..., Finding]
) -> Iterator[ApiServer]:
    store.record(make_finding(rules=(QUOTED_RULE, SAFE_RULE), labels={"note": HTML_LABEL}))
    server = ApiServer(make_app(), "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def load(url: str, profile: Path) -> str:
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_browser_shows_the_violator_its_rules_and_the_escaped_label(
    served: ApiServer, tmp_path: Path
) -> None:
    html = load(served.url + "/", tmp_path / "profile")
    dom = Dom(html)

    assert dom.text("#mode") == ["KILL mode"]
    assert dom.text("#health") == ["healthy"]
    assert dom.text(".container-name") == ["web"]
    assert dom.text(".image") == ["busybox"]
    assert dom.text(".rule-link") == [QUOTED_RULE, SAFE_RULE]
    assert dom.text(".action-name") == ["stop"]
    assert dom.text(".outcome") == ["stopped"]
    assert dom.text(".count") == ["1"]
    assert dom.text(".label") == [f"note={HTML_LABEL}"], "the label is shown as text"
    assert not [tag for tag, _ in dom.tags if tag == "script"], "no markup from a label or rule ran"
    assert not [tag for tag, _ in dom.tags if tag == "b"], "no markup from a rule name was parsed"
    links = [attrs["href"] for tag, attrs in dom.tags if tag == "a" and "rule-link" in attrs.get("class", "")]
    assert links == ["#rule-1", "#rule-2"]
    assert dom.text("#rule-1")[0].startswith(QUOTED_RULE), "the rule link leads to the rule in force"
    assert ("meta", {"http-equiv": "refresh", "content": "10"}) in dom.tags
