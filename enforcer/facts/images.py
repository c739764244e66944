"""The image behind each container: its `docker image inspect` data, fetched once per image id and kept.

Many containers share an image, so a sweep of 100 containers of one image asks the engine once: the first
check that reads `c.image_info` fetches it while the others wait for that answer. The cache is bounded
(least recently used entries go first) and keeps only images that some running container uses (`keep_only`,
after each sweep's listing). A failed fetch is not kept: the next check asks again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

Json = dict[str, Any]
MAX_IMAGES = 512


class _Entry:
    __slots__ = ("done", "value", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Json | None = None
        self.error: BaseException | None = None


class ImageCache:
    """Image inspect data by image id, fetched by `fetch` at most once at a time per id."""

    def __init__(self, fetch: Callable[[str], Json], limit: int = MAX_IMAGES) -> None:
        self._fetch = fetch
        self._limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, image_id: str) -> Json:
        """The image's inspect data; raises what `fetch` raised (for this caller and those who waited)."""
        with self._lock:
            entry = self._entries.get(image_id)
            fetching = entry is None
            if entry is None:
                entry = self._entries[image_id] = _Entry()
                while len(self._entries) > self._limit:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(image_id)
        if fetching:
            self._fill(image_id, entry)
        else:
            entry.done.wait()
        if entry.error is not None:
            raise entry.error
        assert entry.value is not None
        return entry.value

    def _fill(self, image_id: str, entry: _Entry) -> None:
        try:
            entry.value = self._fetch(image_id)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, then forgotten
            entry.error = exc
            with self._lock:
                if self._entries.get(image_id) is entry:
                    del self._entries[image_id]
        finally:
            entry.done.set()

    def keep_only(self, image_ids: Iterable[str]) -> None:
        """Drop the images no running container uses."""
        keep = set(image_ids)
        with self._lock:
            for image_id in [i for i in self._entries if i not in keep]:
                del self._entries[image_id]

    def forget(self, image_id: str) -> None:
        with self._lock:
            self._entries.pop(image_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
