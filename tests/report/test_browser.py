"""The status page in a real browser: Debian's chromium, headless, loading it from a served app.

The store holds a detection whose rule name has quotes and markup and whose label has a <script>; the test
reads the DOM chromium built and checks what a person would see. The console's views (the summary line, a
filtered table, a container page) are loaded in a profile that blocks JavaScript (a control test shows it
does), and the container page is also drawn as a screenshot. Without chromium the tests are skipped, or
fail under CI=true (scripts/test installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from report_support import CID, HTML_LABEL, QUOTED_RULE, SAFE_RULE

from enforcer.record.model import Action, Finding, Outcome
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
SCRIPT_PROBE = (
    "data:text/html,<p id=probe>off</p><script>document.getElementById('probe').textContent='on'</script>"
)
WINDOW = (1280, 900)


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


def screenshot(url: str, profile: Path, out: Path, *extra: str) -> tuple[int, int, bytes]:
    """Chromium's PNG of the page: its width, height and file bytes."""
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    command = [
        chromium(),
        *CHROMIUM_FLAGS,
        *extra,
        size,
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height, data


def scriptless(folder: Path) -> Path:
    """A chromium profile with JavaScript blocked for every site (its content setting, as a user sets it)."""
    (folder / "Default").mkdir(parents=True)
    preferences = {"profile": {"default_content_setting_values": {"javascript": 2}}}
    (folder / "Default" / "Preferences").write_text(json.dumps(preferences))
    return folder


def without_scripts(url: str, folder: Path) -> Dom:
    return Dom(load(url, scriptless(folder)))


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


@pytest.fixture
def console(
    make_app: Callable[..., Flask], store: DetectionStore, make_finding: Callable[..., Finding]
) -> Iterator[ApiServer]:
    store.record(make_finding(rules=(QUOTED_RULE, SAFE_RULE), labels={"note": HTML_LABEL}, owner="blue"))
    store.record(
        make_finding(
            container_id="b" * 64, name="quiet", rules=(SAFE_RULE,), owner="red", action=Action.WOULD_STOP,
            outcome=Outcome.RECORDED,
        )
    )  # fmt: skip
    server = ApiServer(make_app(), "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def test_without_scripts_the_summary_line_links_to_the_filtered_table(
    console: ApiServer, tmp_path: Path
) -> None:
    dom = without_scripts(console.url + "/", tmp_path / "index")

    assert dom.text("#summary-stopped")[0].startswith("stopped or prevented: 1 in the last 24 h, 1 in all")
    assert dom.text("#summary-recorded")[0].startswith("recorded (WARN): 1 in the last 24 h, 1 in all")
    assert dom.text("#summary-pending") == ["pending or in grace now: 0 pending, 0 in grace"]
    links = [a["href"] for tag, a in dom.tags if tag == "a" and "summary-recent" in a.get("class", "")]
    recorded = next(href for href in links if "outcome=recorded" in href)

    filtered = without_scripts(console.url + recorded, tmp_path / "filtered")
    assert filtered.text(".container-name") == ["quiet"], "the link filters the table"
    assert ("option", {"value": "recorded", "selected": ""}) in filtered.tags, "the form shows the filter"
    assert ("option", {"value": "24h", "selected": ""}) in filtered.tags


def test_without_scripts_a_filter_from_the_url_narrows_the_table(console: ApiServer, tmp_path: Path) -> None:
    dom = without_scripts(console.url + "/?owner=blue#detections", tmp_path / "owner")

    assert dom.text(".container-name") == ["web"]
    assert dom.text(".owner") == ["owner blue"]
    assert ("input", {"type": "text", "name": "owner", "value": "blue", "maxlength": "512"}) in dom.tags
    assert dom.text(".severity") == ["high", "medium"], "each rule with its severity"
    assert dom.text(".label") == [f"note={HTML_LABEL}"]
    assert not [tag for tag, _ in dom.tags if tag == "script"]


def test_without_scripts_the_container_page_shows_its_rules_and_state(
    console: ApiServer, tmp_path: Path
) -> None:
    url = f"{console.url}/containers/{CID[:12]}"
    dom = without_scripts(url, tmp_path / "container")

    assert dom.text("#container-id") == [CID]
    assert dom.text("#owner") == ["blue"]
    assert dom.text("#liveness")[0].startswith("not running: stopped by the enforcer")
    assert dom.text(".rule-link") == [QUOTED_RULE, SAFE_RULE]
    assert dom.text(".label") == [f"note={HTML_LABEL}"]
    assert not [tag for tag, _ in dom.tags if tag in ("script", "b")], "names stay text"

    width, height, png = screenshot(url, tmp_path / "container", tmp_path / "container.png")
    assert (width, height) == WINDOW
    assert len(png) > 10_000, "the page was drawn (a blank window compresses to a few hundred bytes)"


def test_the_scriptless_profile_really_runs_no_script(tmp_path: Path) -> None:
    """The control of the tests above: the same page's script runs in a plain profile, not in theirs."""
    assert Dom(load(SCRIPT_PROBE, tmp_path / "plain")).text("#probe") == ["on"]
    assert without_scripts(SCRIPT_PROBE, tmp_path / "scriptless").text("#probe") == ["off"]
