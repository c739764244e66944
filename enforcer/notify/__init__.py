"""Ready notifiers for the triggers file: each returns an ordinary trigger dict.

    from enforcer import notify

    triggers = [
        notify.slack(os.environ["SLACK_URL"], owners={"team-a": os.environ["TEAM_A_SLACK_URL"]}),
        notify.alertmanager("http://127.0.0.1:9093"),
        notify.falcosidekick("http://127.0.0.1:2801"),
        notify.webhook("https://hooks.example.com/enforcer", headers={"Authorization": "Bearer ..."}),
    ]

A notifier is called once per episode (`"once": True` in its dict): with a `Notice` when a container starts
violating rules and one when that ends (fixed, gone, or stopped by the enforcer), never again on later sweeps
or after a restart of the daemon (episodes are kept in the state database). Alertmanager's is also called
every minute while an episode is open (`"repeat": True`), as Alertmanager expects of its clients.

`owners={"team-a": url, ...}` sends the notices of containers of that owner (OWNER_LABEL) there; the plain
url is the route of every other owner (leave it None to send only to the owners named). Each post is retried
with backoff `retries` times (the daemon's stop flag ends the waits); a notification given up is logged with
the receiver's scheme and host only and counted in `docker_enforcer_trigger_errors_total`. URLs and headers
are secrets: the API, the page and the logs show the scheme and host, never the path, query or headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from enforcer.notify import formats
from enforcer.notify.notice import EndReason, Notice, NoticeRule
from enforcer.notify.send import NotifyError, Post, Routes, safe_url

__all__ = [
    "EndReason",
    "Notice",
    "NoticeRule",
    "NotifyError",
    "alertmanager",
    "falcosidekick",
    "safe_url",
    "slack",
    "webhook",
]

Bodies = Callable[[Notice], list[Any]]


class Notifier:
    """The trigger callable of a ready notifier: routes a Notice by owner and posts each of its bodies."""

    def __init__(self, kind: str, routes: Routes, bodies: Bodies, post: Post, path: str = "") -> None:
        self.kind = kind
        self.routes = routes
        self.bodies = bodies
        self.post = post
        self.path = path  # appended to a base URL (Alertmanager's /api/v2/alerts)
        self.repeats = False

    def __call__(self, notice: Notice) -> str:
        """Send the notice; returns what the receiver answered (for `notify-test`), raises NotifyError."""
        if not isinstance(notice, Notice):
            raise NotifyError(f"{self.kind} notifiers take a Notice, not {type(notice).__name__}")
        if notice.repeat and not self.repeats:
            return ""
        url = self.routes.url_for(notice.owner)
        if url is None:
            return f"no route for owner {notice.owner!r}"
        url = _with_path(url, self.path)
        answers = [self.post.send(url, body, notice.stop) for body in self.bodies(notice)]
        return f"{safe_url(url)}: {'; '.join(answers) or 'nothing to send'}"

    def __repr__(self) -> str:
        return f"<{self.kind} notifier to {self.routes.describe()}>"


def _with_path(url: str, path: str) -> str:
    if not path or urlsplit(url).path.rstrip("/").endswith(path):
        return url
    return url.rstrip("/") + path


def _trigger(
    kind: str,
    url: str | None,
    bodies: Bodies,
    *,
    name: str | None,
    owners: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    timeout_s: float,
    retries: int,
    path: str = "",
    repeats: bool = False,
) -> dict[str, Any]:
    routes = Routes.of(f"notify.{kind}", url, owners)
    if headers is not None and not (
        isinstance(headers, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise ValueError(f"notify.{kind}: headers must be a dict of header name -> string value")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"notify.{kind}: retries must be a whole number from 0")
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"notify.{kind}: timeout_s must be a positive number of seconds")
    notifier = Notifier(kind, routes, bodies, Post(dict(headers or {}), float(timeout_s), retries), path)
    notifier.repeats = repeats
    return {
        "name": name or f"{kind} to {routes.describe()}",
        "trigger": notifier,
        "once": True,
        "repeat": repeats,
        "target": f"{kind} to {routes.describe()}",
    }


class _Factory:
    """One kind of notifier: `kind(url, *, name=None, headers=None, timeout_s=5, retries=3, owners=None)`
    returns its trigger dict."""

    def __init__(self, kind: str, bodies: Bodies, doc: str, path: str = "", repeats: bool = False) -> None:
        self.kind, self.bodies, self.path, self.repeats = kind, bodies, path, repeats
        self.__doc__ = doc

    def __call__(
        self,
        url: str | None,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5,
        retries: int = 3,
        owners: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return _trigger(
            self.kind, url, self.bodies, name=name, owners=owners, headers=headers, timeout_s=timeout_s,
            retries=retries, path=self.path, repeats=self.repeats,
        )  # fmt: skip


webhook = _Factory(
    "webhook",
    lambda n: [formats.webhook_body(n)],
    """POST one JSON object per notice: host, container, container_id, image, owner, rules (name and
    severity), mode, action, outcome, phase, ended, reason, started, time, text.""",
)
slack = _Factory(
    "slack",
    lambda n: [formats.slack_body(n)],
    "A Slack or Mattermost incoming webhook: one line of text per notice.",
)
alertmanager = _Factory(
    "alertmanager",
    lambda n: [formats.alertmanager_alerts(n)],
    """Alertmanager's v2 API (`url` is its base, http://host:9093): one alert per container and rule, labels
    alertname (the rule), container, host, severity, owner, mode; re-posted every minute while it lasts,
    resolved (endsAt now) when the container is fixed or gone. Route by owner in Alertmanager's own config
    (`matchers: [owner="team-a"]`); `owners` here picks another Alertmanager per owner.""",
    path="/api/v2/alerts",
    repeats=True,
)
falcosidekick = _Factory(
    "falcosidekick",
    formats.falco_events,
    """falcosidekick (`url` is its listener, http://host:2801): one Falco event per rule, source
    "docker-enforcer", priority from the rule's severity (critical: Critical, high: Error, medium: Warning,
    low: Notice, info: Informational; Informational when the episode ended), so its outputs work unchanged.""",
)
