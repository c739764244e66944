"""The sd_notify protocol (READY, WATCHDOG, STOPPING) without a dependency: one datagram per message."""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


def notify(address: str | None, message: str) -> bool:
    """Send `message` to systemd's NOTIFY_SOCKET; False (and nothing else) when not run by systemd."""
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", message, exc)
        return False
