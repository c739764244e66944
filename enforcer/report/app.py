"""The read-only status API and page: a Flask app built from the daemon's parts, no module globals.

Endpoints (GET only; JSON unless the client lists text/html in Accept, then the page):

- `/`, `/recent`: the original's shape. Top keys `last_full_check_run_timestamp_start`, `..._end` (str of a UTC
  datetime), `last_full_check_run_time` (str of a timedelta) and `last_full_check_run_seconds` (a number, or
  null before the first sweep), present when periodic sweeps are on (before the first sweep the three old keys
  hold the original's values `0001-01-01 00:00:00` and `-999999999 days, 0:00:00`); `host`; `detections`,
  one item per container, most recently detected first: `id`, `name` (with the leading "/"),
  `violated_rule` (the first rule of the latest finding), `owner`, `source`, `count`, `last_timestamp`
  (ISO 8601, UTC, no offset, as the original), then `first_timestamp`, `mode`, `action`, `outcome`,
  `rule_errors`. Options: `show_all_violated_rules=1` (violated_rule becomes the list of the latest finding's
  rules), `show_image_and_labels=1` (adds `image` and `labels`, and `config` for a container prevented at
  create: its image, name, labels, host config and mounts, never env values or command line), `limit=N`,
  `since=T` (last detected at or after T), `before=T` (strictly before T: pass the last item's last_timestamp
  for the next page); T is ISO 8601, UTC unless it has an offset. `/recent` keeps the containers detected
  since the last sweep began. Filters: `owner=`, `rule=` (violated it in any finding), `outcome=` (the
  latest finding's; repeated for several), `within=24h` (last detected in that period), `errors=1`. After
  `detections`: `next_sweep` (sweeps on) and `summary` (containers by what was done, in all and the last 24 h,
  and the open episodes by phase).
- `/containers/<id>`: one container by full id, id prefix or name (newest first when several match; the
  others in `other_matches`): its record, each rule it violated with the policy's severity, description and
  remediation, its open episodes, and `state` (whether it still runs, from what the daemon knows: never an
  engine call). 404 when no container on record matches.
- `/rules`, `/triggers`: the file's text as a JSON string, as the original, with URLs cut to their scheme and
  host and credentials blanked out (`report.filetext`). With `structured=1`: `{"path", "sha256", "version",
  "text", "rules": [{"name", "severity", "mode", "effective_mode", ...}]}` (`"triggers": [{"name"}]` for
  /triggers; a notifier adds `once`, `repeat` and `target`, its receiver by scheme and host).
- `/config`: the settings without secrets (`api_token_set` only says whether a token is set), plus
  `version`, `host`, `rules_version` and `files` (path and sha256 of each file in use).
- `/metrics`: Prometheus text format 0.0.4.
- `/healthz`: 200 `{"status": "ok", "problems": [], ...}` or 503 `{"status": "unhealthy", "problems": [...]}`.

Before anything else, every request's `Host` must be an IP address, `localhost`, one of the host's names or
a name in ALLOWED_HOSTS (see `hosts`), else 421 Misdirected Request. Then, with API_TOKEN set, every endpoint
but /healthz (and /metrics when METRICS_PUBLIC) needs `Authorization: Bearer <token>`, else 401.

A bad option is a 400 that says what the option accepts, never echoing the value sent. Every answer carries
`X-Content-Type-Options: nosniff`; pages a Content-Security-Policy without scripts and with
`frame-ancestors 'none'`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.wrappers import Response as BaseResponse

from enforcer import __version__
from enforcer.breaker import StopRateBreaker
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Trigger
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import Episode, EpisodeStore
from enforcer.record.model import Outcome, utcnow
from enforcer.record.store import Detection, DetectionStore, Filter, StoreError, Summary
from enforcer.report import page
from enforcer.report.episodes_view import episode_json, episode_rows
from enforcer.report.filetext import without_secrets
from enforcer.report.hosts import HostCheck
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.status import Health, HealthSnapshot
from enforcer.units import duration_s

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PAGE_LIMIT = 100  # containers on an HTML page (then a link to the older ones); the JSON has them all unless `limit` is given
PUBLIC_ENDPOINTS = {"healthz"}
MAX_LIMIT = 10_000_000
MAX_LIMIT_DIGITS = 40
MAX_FILTER_CHARS = 512  # an owner or rule name to filter on
SUMMARY_PERIOD = timedelta(hours=24)
CONTAINER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # an id, a prefix of one, or a name


def create_app(
    settings: Settings,
    health: Health,
    in_force: PolicyInForce,
    store: DetectionStore,
    metrics: Metrics,
    host_name: str,
    episodes: EpisodeStore | None = None,
    breaker: StopRateBreaker | None = None,
    next_sweep: Callable[[], datetime | None] = lambda: None,
) -> Flask:
    """The status app; it only reads from its parts, and never changes anything. `episodes`: the open
    episodes of rules held over time; `next_sweep`: when the scheduler runs the next sweep (no engine I/O)."""
    app = Flask(__name__)
    views = _Views(settings, health, in_force, store, metrics, host_name, episodes, breaker, next_sweep)
    app.before_request(views.check_host)  # registration order is call order: hosts before the token
    app.before_request(views.authorize)
    app.after_request(_nosniff)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_error)
    for path, view in (
        ("/", views.index),
        ("/recent", views.recent),
        ("/rules", views.rules),
        ("/triggers", views.triggers),
        ("/config", views.config),
        ("/metrics", views.metrics),
        ("/healthz", views.healthz),
        ("/containers/<path:key>", views.container),
    ):
        app.add_url_rule(path, view_func=view, methods=["GET"])
    return app


@dataclass(frozen=True)
class Query:
    """The options of `/` and `/recent`: how items are shown, which page, and the filters."""

    show_all_violated_rules: bool = False
    show_image_and_labels: bool = False
    limit: int | None = None
    since: datetime | None = None
    before: datetime | None = None
    within: str | None = None  # "24h": last detected in that period before now (kept as written, for links)
    only: Filter = Filter()

    @classmethod
    def parse(cls, args: Any) -> Query:
        return cls(
            show_all_violated_rules=args.get("show_all_violated_rules") == "1",
            show_image_and_labels=args.get("show_image_and_labels") == "1",
            limit=_limit(args.get("limit")),
            since=_time("since", args.get("since")),
            before=_time("before", args.get("before")),
            within=_within(args.get("within")),
            only=Filter(
                owner=_text("owner", args.get("owner")),
                rule=_text("rule", args.get("rule")),
                outcomes=_outcomes(args.getlist("outcome")),
                rule_errors=_flag("errors", args.get("errors")),
            ),
        )

    def cut(self, now: datetime) -> datetime | None:
        """The earliest last-detected time asked for: the later of `since` and now minus `within`."""
        cuts = [c for c in (self.since, None if self.within is None else now - _seconds(self.within)) if c]
        return max(cuts, default=None)

    def filter_args(self) -> dict[str, Any]:
        """The filters as URL arguments (what a link to the same view keeps)."""
        only = self.only
        out: dict[str, Any] = {
            "owner": only.owner,
            "rule": only.rule,
            "outcome": [str(o) for o in only.outcomes],
            "within": self.within,
            "since": None if self.since is None else self.since.isoformat(),
            "errors": "1" if only.rule_errors else None,
        }
        return {key: value for key, value in out.items() if value not in (None, [])}

    @property
    def filtered(self) -> bool:
        return bool(self.filter_args())


class _Views:
    def __init__(
        self,
        settings: Settings,
        health: Health,
        in_force: PolicyInForce,
        store: DetectionStore,
        metrics: Metrics,
        host: str,
        episodes: EpisodeStore | None = None,
        breaker: StopRateBreaker | None = None,
        next_sweep: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.episodes = episodes
        self.breaker = breaker
        self.health = health
        self.in_force = in_force
        self.store = store
        self.metrics_registry = metrics
        self._host = host
        self.next_sweep = next_sweep
        # The name LISTEN_ADDRESS gives (when it gives one) is the API's own too: the image's HEALTHCHECK asks it.
        allowed = (*settings.allowed_hosts, settings.listen_address[0])
        self.hosts = HostCheck(allowed, host, lambda: self.host)

    @property
    def host(self) -> str:
        """The engine's host name once known (inside a container, the local host name is the container id)."""
        return self.health.snapshot().engine_host or self._host

    def check_host(self) -> Response | None:
        """421 for a Host header naming someone else (a DNS-rebinding page): the name is not echoed."""
        if self.hosts.allows(request.headers.get("Host", "")):
            return None
        return _error(
            421,
            "misdirected request",
            "this API answers requests for its IP addresses, localhost, this host's names and the names in "
            "its ALLOWED_HOSTS setting",
        )

    def authorize(self) -> Response | None:
        """401 unless the request carries the API token (when one is set) or the endpoint is public."""
        token = self.settings.api_token
        public = PUBLIC_ENDPOINTS | ({"metrics"} if self.settings.metrics_public else set())
        if token is None or request.endpoint in public:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        response = _error(401, "unauthorized", "send the header Authorization: Bearer <API_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="docker-enforcer"'
        return response

    def index(self) -> Response:
        return self._detections(recent=False)

    def recent(self) -> Response:
        return self._detections(recent=True)

    def _detections(self, recent: bool) -> Response:
        query = Query.parse(request.args)
        health = self.health.snapshot()  # one moment for the whole answer
        now = utcnow()
        since = query.cut(now)
        cut = health.last_sweep_began if recent else None
        if cut is not None and (since is None or since < cut):
            since = cut
        summary = self.store.summary(now - SUMMARY_PERIOD)
        open_episodes = self._open_episodes()
        if wants_html(request):
            limit = PAGE_LIMIT if query.limit is None else query.limit
            found = self.store.detections(since=since, limit=limit, before=query.before, only=query.only)
            facts = self._page_facts(health, found, recent, query, summary, open_episodes, limit)
            return _html(page.status_page(facts))
        found = self.store.detections(since=since, limit=query.limit, before=query.before, only=query.only)
        body: dict[str, Any] = sweep_keys(self.settings, health)
        body["host"] = self.host
        body["detections"] = [detection_json(d, query) for d in found]
        if self.episodes is not None:  # rules held over time: the open episodes, after the original's keys
            body["episodes"] = [episode_json(e, now, iso) for e in open_episodes]
        if self.settings.run_periodic:
            body["next_sweep"] = _iso_or_none(self.next_sweep())
        body["summary"] = summary_json(summary, open_episodes)
        return _json(body)

    def _open_episodes(self) -> list[Episode]:
        return [] if self.episodes is None else self.episodes.all()

    def _page_facts(
        self,
        health: HealthSnapshot,
        found: list[Detection],
        recent: bool,
        query: Query,
        summary: Summary,
        open_episodes: list[Episode],
        limit: int,
    ) -> page.PageFacts:
        return page.PageFacts(
            host=self.host,
            version=__version__,
            settings=self.settings,
            policy=self.in_force.get(),
            problems=tuple(health.problems(self.settings)),
            last_sweep=health.last_sweep,
            sweep_running_since=health.sweep_running_since,
            next_sweep=self.next_sweep() if self.settings.run_periodic else None,
            detections=tuple(found),
            total=self.store.count(),
            recent=recent,
            query=query,
            summary=summary,
            episodes=tuple(episode_rows(open_episodes, utcnow())),
            warnings=tuple(self.warnings()),
            pending=page.episode_counts(open_episodes),
            more=len(found) >= limit > 0,
        )

    def container(self, key: str) -> Response:
        """One container: everything on record about it, its open episodes, and whether it still runs."""
        if not CONTAINER_KEY.fullmatch(key):
            raise BadRequest("a container is named by its id (64 hex digits), a prefix of it, or its name")
        found = self.store.container(key)
        if not found:
            raise NotFound(
                "no container on record is named so; try its full id or its first 12 characters as the "
                "page and `docker ps --no-trunc` show them, or its name; / lists every detected container"
            )
        detection, others = found[0], tuple(found[1:])
        health = self.health.snapshot()
        episodes = [] if self.episodes is None else self.episodes.of_container(detection.container_id)
        liveness = page.liveness(detection, health.last_sweep, self.settings, episodes)
        policy = self.in_force.get()
        if wants_html(request):
            return _html(
                page.container_page(detection, policy, episodes, liveness, others, self.host, self.settings)
            )
        body = container_json(detection, policy, episodes, liveness)
        body["other_matches"] = [container_ref(d) for d in others]
        return _json(body)

    def rules(self) -> Response:
        return self._file("rules")

    def triggers(self) -> Response:
        return self._file("triggers")

    def _file(self, kind: str) -> Response:
        policy = self.in_force.get()
        listing = file_listing(kind, policy, self.settings)
        if wants_html(request):
            return _html(page.file_page(kind, listing, self.host))
        if request.args.get("structured") == "1":
            return _json(listing)
        return _json(listing["text"])

    def config(self) -> Response:
        body = config_json(self.settings, self.in_force.get(), self.host)
        if wants_html(request):
            return _html(page.config_page(body, self.host))
        return _json(body)

    def metrics(self) -> Response:
        return Response(self.metrics_registry.render(), content_type=METRICS_CONTENT_TYPE)

    def warnings(self) -> list[str]:
        """Enforcement held back by a safeguard: the daemon is healthy, but not everything found is acted on."""
        found = []
        if (hold := self.in_force.get().held) is not None:
            found.append(hold.warning())
        if self.breaker is not None and (rate := self.breaker.state().warning()):
            found.append(rate)
        return found

    def healthz(self) -> Response:
        problems = self.health.snapshot().problems(self.settings)
        body = {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "warnings": self.warnings(),
            "mode": str(self.settings.mode),
            "version": __version__,
            "host": self.host,
        }
        response = _json(body)
        response.status_code = 503 if problems else 200
        return response


# -- JSON shapes ------------------------------------------------------------------------------------------


def sweep_keys(settings: Settings, health: HealthSnapshot) -> dict[str, Any]:
    """The original's last_full_check_run_* keys (when sweeps are on), plus the run time as a number."""
    if not settings.run_periodic:
        return {}
    sweep = health.last_sweep
    duration = sweep.duration
    return {
        "last_full_check_run_timestamp_start": str(naive_utc(sweep.start) or datetime.min),
        "last_full_check_run_timestamp_end": str(naive_utc(sweep.end) or datetime.min),
        "last_full_check_run_time": str(duration if duration is not None else timedelta.min),
        "last_full_check_run_seconds": None if duration is None else duration.total_seconds(),
    }


def detection_json(detection: Detection, query: Query) -> dict[str, Any]:
    """One item of `detections`: the original's keys in its order, then the added ones."""
    rules = list(detection.latest_rules)
    item: dict[str, Any] = {
        "id": detection.container_id,
        "name": "/" + detection.name,
        "violated_rule": rules if query.show_all_violated_rules else rules[0],
        "owner": detection.owner,
        "source": detection.source,
        "count": detection.count,
        "last_timestamp": iso(detection.last_timestamp),
        "first_timestamp": iso(detection.first_timestamp),
        "mode": str(detection.mode),
        "action": detection.action,
        "outcome": detection.outcome_text,
        "rule_errors": list(detection.rule_errors),
    }
    if detection.exec_command is not None:
        item["exec"] = detection.exec_command  # the executable only, never the arguments
    if query.show_image_and_labels:
        item["image"] = detection.image
        item["labels"] = dict(detection.labels)
        if detection.config is not None:
            item["config"] = detection.config
    return item


def summary_json(summary: Summary, open_episodes: list[Episode]) -> dict[str, Any]:
    """The summary line's figures: containers on record by what was done, in all and in the last 24 h."""
    out: dict[str, Any] = {
        name: {"all": tally.total, "last_24h": tally.recent}
        for name, tally in page.summary_tallies(summary).items()
    }
    out["open_episodes"] = {str(phase): n for phase, n in page.episode_counts(open_episodes).items()}
    return out


def container_ref(detection: Detection) -> dict[str, Any]:
    return {
        "id": detection.container_id,
        "name": "/" + detection.name,
        "last_timestamp": iso(detection.last_timestamp),
        "url": f"/containers/{detection.container_id}",
    }


def container_json(
    detection: Detection, policy: Policy, episodes: list[Episode], liveness: page.Liveness
) -> dict[str, Any]:
    """`/containers/<id>`: the container as recorded, each rule it violated with what the policy says of it,
    its open episodes, and whether it still runs as far as the daemon knows (no engine call)."""
    rules = {rule.name: rule for rule in policy.rules}
    return {
        "id": detection.container_id,
        "name": "/" + detection.name,
        "image": detection.image,
        "owner": detection.owner,
        "labels": dict(detection.labels),
        "restart_policy": detection.restart_policy,
        "config": detection.config,
        "count": detection.count,
        "first_timestamp": iso(detection.first_timestamp),
        "last_timestamp": iso(detection.last_timestamp),
        "violated_rule": list(detection.latest_rules),
        "mode": str(detection.mode),
        "action": detection.action,
        "outcome": detection.outcome_text,
        "source": detection.source,
        "rule_errors": list(detection.rule_errors),
        "exec": detection.exec_command,  # the executable of an exec check, never its arguments; else null
        "state": {"running": liveness.running, "text": liveness.text, "as_of": _iso_or_none(liveness.as_of)},
        "rules": [page.rule_detail(r, rules.get(r.rule)) for r in page.ranked_rules(detection)],
        "episodes": [episode_json(e, utcnow(), iso) for e in episodes],
    }


def file_listing(kind: str, policy: Policy, settings: Settings) -> dict[str, Any]:
    """The `structured=1` body of /rules and /triggers: the file and its items."""
    loaded = policy.sources.get(kind)
    out: dict[str, Any] = {
        "path": loaded.path if loaded else None,
        "sha256": loaded.sha256 if loaded else None,
        "version": policy.version,
        "text": without_secrets(loaded.text) if loaded else "",
    }
    if kind == "rules":
        out["rules"] = [
            {**rule.summary(), "effective_mode": str(rule.effective_mode(settings.mode))}
            for rule in policy.rules
        ]
        out["exceptions"] = page.exception_rows(policy)
    else:
        out["triggers"] = [trigger_json(trigger) for trigger in policy.triggers]
    return out


def trigger_json(trigger: Trigger) -> dict[str, Any]:
    """A trigger as /triggers?structured=1 lists it: a notifier names its receiver by scheme and host only."""
    item: dict[str, Any] = {"name": trigger.name}
    if trigger.once:
        item.update(once=True, repeat=trigger.repeat, target=trigger.target)
    return item


def config_json(settings: Settings, policy: Policy, host: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(settings.public())
    body["version"] = __version__
    body["host"] = host
    body["rules_version"] = policy.version
    body["files"] = {
        kind: {"path": loaded.path, "sha256": loaded.sha256} for kind, loaded in policy.sources.items()
    }
    body["exceptions"] = page.exception_rows(policy)
    held = policy.held
    body["held_rules"] = (
        None
        if held is None
        else {"version": held.policy.version, "new_stops": held.new_stops, "limit": held.limit}
    )
    return body


def naive_utc(when: datetime | None) -> datetime | None:
    """The original printed naive UTC times; aware ones are converted so that old parsers keep working."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def iso(when: datetime) -> str:
    return (naive_utc(when) or when).isoformat()


def _iso_or_none(when: datetime | None) -> str | None:
    return None if when is None else iso(when)


# -- requests and responses -------------------------------------------------------------------------------


def wants_html(req: Request) -> bool:
    """HTML only for a client that lists text/html itself (a browser); `*/*` and no Accept get JSON."""
    accept = req.accept_mimetypes
    listed = any(value.lower() in ("text/html", "application/xhtml+xml") and q > 0 for value, q in accept)
    return listed and accept.best_match(["application/json", "text/html"]) == "text/html"


def _limit(raw: str | None) -> int | None:
    """A whole number from 1; past MAX_LIMIT it counts as MAX_LIMIT, past MAX_LIMIT_DIGITS it is refused
    (int() refuses over 4,300 digits, and nobody means such a number)."""
    if raw is None or raw == "":
        return None
    digits = raw.lstrip("0")
    if not raw.isascii() or not raw.isdigit() or not digits or len(digits) > MAX_LIMIT_DIGITS:
        raise BadRequest(
            f"limit: use a whole number from 1 (at most {MAX_LIMIT_DIGITS} digits; "
            f"above {MAX_LIMIT} counts as {MAX_LIMIT})"
        )
    return min(int(digits), MAX_LIMIT)  # more than the store ever holds; keeps SQLite's integers in range


def _time(name: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if "T" in text:  # an unencoded "+01:00" arrives as " 01:00"
        text = text.replace(" ", "+")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{name}: use an ISO 8601 time such as 2024-05-01T12:00:00 (UTC) or 2024-05-01T14:00:00+02:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _within(raw: str | None) -> str | None:
    """A period before now, as rules files write durations ("90m", "24h", "7d")."""
    if raw is None or raw == "":
        return None
    text = raw.strip()
    try:
        _seconds(text)
    except ValueError:
        raise BadRequest('within: use a period such as "1h", "24h" or "7d" (s, m, h or d)') from None
    return text


def _seconds(text: str) -> timedelta:
    seconds = duration_s(text)
    if seconds <= 0 or seconds > 3650 * 86400 or len(text) > 16:
        raise ValueError("out of range")
    return timedelta(seconds=seconds)


def _text(name: str, raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_FILTER_CHARS or not raw.isprintable():
        raise BadRequest(f"{name}: use printable text of at most {MAX_FILTER_CHARS} characters")
    return raw


def _outcomes(raw: list[str]) -> tuple[Outcome, ...]:
    known = {str(o): o for o in Outcome}
    wanted = [value for value in raw if value != ""]
    if any(value not in known for value in wanted):
        raise BadRequest(f"outcome: use one or more of {', '.join(known)}")
    return tuple(dict.fromkeys(known[value] for value in wanted))


def _flag(name: str, raw: str | None) -> bool:
    if raw in (None, "", "0"):
        return False
    if raw == "1":
        return True
    raise BadRequest(f"{name}: use 1 (or 0, the default)")


def _error(status: int, error: str, message: str) -> Response:
    response = _json({"error": error, "message": message})
    response.status_code = status
    return response


def _json(body: Any, status: int = 200) -> Response:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str)
    return Response(text + "\n", status=status, content_type="application/json; charset=utf-8")


def _html(text: str) -> Response:
    response = Response(text, content_type="text/html; charset=utf-8")
    # frame-ancestors: no other site may show the page in a frame (clickjacking); older browsers read XFO.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _nosniff(response: BaseResponse) -> BaseResponse:
    """Every answer, errors and /metrics included, is read as the type it says it is."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _http_error(exc: HTTPException) -> BaseResponse:
    response = exc.get_response()
    response.set_data(json.dumps({"error": (exc.name or "error").lower(), "message": exc.description}) + "\n")
    response.content_type = "application/json; charset=utf-8"
    return response


def _store_error(exc: StoreError) -> Response:
    log.error("status request failed: %s", exc)
    return _error(503, "detections store unavailable", str(exc))
