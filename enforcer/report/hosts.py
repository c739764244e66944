"""Which `Host` headers the status API answers: the defence against DNS rebinding.

A page on an attacker's site can make an admin's browser send requests to the API under the attacker's own
name (the name is re-pointed at the API's address after the page loaded), and read the answers: to the
browser they come from the attacker's origin. Such a request always carries the attacker's name in `Host`.
So the API answers only requests whose `Host` is an IP address (v4, or v6 in brackets: no page can be served
under one by rebinding, and Prometheus scrapes by address), `localhost`, the host's own names, or a name in
ALLOWED_HOSTS; `*` there turns the check off.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

LOGGED_NAMES = 20  # refused names logged (once each); past that, refusals are only answered
_HOST = re.compile(r"(?:\[(?P<v6>[^\]]*)\]|(?P<name>[^:\[\]]*))(?::[0-9]*)?")


class HostCheck:
    """`allows(header)`: whether a request with this Host header is answered.

    `local_name` is the host's name (inside a container, the container's); `engine_host` returns the
    engine's host name once known. The fully qualified name is looked up only when a name is not otherwise
    allowed, once: the lookup may wait for DNS.
    """

    def __init__(
        self, allowed: tuple[str, ...], local_name: str, engine_host: Callable[[], str | None]
    ) -> None:
        self.off = "*" in allowed
        self.names = frozenset(normal(name) for name in ("localhost", *allowed, local_name))
        self._local_name = local_name
        self._engine_host = engine_host
        self._fqdn: str | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def allows(self, header: str) -> bool:
        if self.off:
            return True
        name = host_name(header)
        if name is None:
            return True
        if name and (name in self.names or name == normal(self._engine_host() or "") or name == self.fqdn()):
            return True
        self._log_refusal(name)
        return False

    def fqdn(self) -> str:
        if self._fqdn is None:
            self._fqdn = normal(socket.getfqdn(self._local_name))
        return self._fqdn

    def _log_refusal(self, name: str) -> None:
        with self._lock:
            if name in self._logged or len(self._logged) >= LOGGED_NAMES:
                return
            self._logged.add(name)
        log.warning(
            "status API: refused a request for host %r (421); if that is a name of this host, "
            "add it to ALLOWED_HOSTS",
            name[:100],
        )


def host_name(header: str) -> str | None:
    """The name in a Host header, lowercased, without port or trailing dot; None for an IP address or no
    header at all (a client that sends none is no browser); "" for anything that is not a host[:port]."""
    if not header.strip():
        return None
    found = _HOST.fullmatch(header.strip())
    if found is None:
        return ""
    if found["v6"] is not None:
        return None if _is_ip(found["v6"], 6) else ""
    name = normal(found["name"])
    return None if _is_ip(name, 4) else name


def exposure_warning(listen_address: tuple[str, int], token: str | None) -> str | None:
    """What to log at start when the API listens beyond loopback without a token, else None."""
    host, port = listen_address
    if token is not None or host == "localhost" or _is_loopback(host):
        return None
    return (
        f"the status API listens on {host}:{port} without API_TOKEN: anyone who can reach that port reads the "
        f"detections, rules and settings; set API_TOKEN, or LISTEN_ADDRESS=127.0.0.1:{port}"
    )


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def normal(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False
