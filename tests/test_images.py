"""The image behind each container: `c.image_info` and `c.image_age_days`, and the cache that fetches each
image once (pure; the engine test of one fetch per image across a sweep is in tests/test_image_facts.py)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from enforcer.dockerhost.errors import ContainerGone
from enforcer.facts.container import Container, FactUnavailable, Missing
from enforcer.facts.images import ImageCache
from enforcer.facts.views import ReadOnlyError
from enforcer.judge.judge import Judgement
from enforcer.judge.rules import Rule
from enforcer.judge.whitelist import Whitelist

IMAGE_DIR = Path(__file__).resolve().parent / "library" / "examples" / "image"
NOW = datetime(2026, 12, 2, tzinfo=UTC)  # the examples were captured on 2026-12-01


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((IMAGE_DIR / f"{name}.json").read_text())
    return data


def container(name: str) -> Container:
    data = example(name)
    return Container(data["container"]["Id"], data["container"], image_info=data["image"], checked_at=NOW)


def test_image_info_is_case_insensitive_and_read_only() -> None:
    c = container("committed")
    assert c.image_info["Config"]["User"] == c.image_info["config"]["user"] == "1000"
    assert c.image_info["config"]["labels"]["org.opencontainers.image.source"].startswith("https://")
    with pytest.raises(ReadOnlyError):
        c.image_info["Config"]["User"] = "0"


def test_image_age_in_days_from_the_images_creation_time() -> None:
    built = datetime(2019, 6, 1, 12, tzinfo=UTC)
    assert container("old").image_age_days == pytest.approx((NOW - built).total_seconds() / 86400)
    assert 0 <= container("imported").image_age_days < 1


def test_without_image_data_a_rule_reading_it_cannot_be_judged() -> None:
    c = Container("c1", example("old")["container"])
    with pytest.raises(FactUnavailable):
        c.image_info  # noqa: B018
    with pytest.raises(FactUnavailable):
        c.image_age_days  # noqa: B018


def test_an_image_without_a_creation_time_has_no_age() -> None:
    c = Container("c1", {}, image_info={"Id": "sha256:x"})
    with pytest.raises(FactUnavailable):
        c.image_age_days  # noqa: B018


def test_the_image_is_fetched_once_however_many_ask_at_once() -> None:
    calls: list[str] = []

    def fetch(image_id: str) -> dict[str, Any]:
        calls.append(image_id)
        time.sleep(0.05)  # the others ask meanwhile
        return {"Id": image_id}

    cache = ImageCache(fetch)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("sha256:a"))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["sha256:a"] and results == [{"Id": "sha256:a"}] * 20
    assert cache.get("sha256:a") == {"Id": "sha256:a"} and calls == ["sha256:a"]


def test_a_failed_fetch_is_not_kept() -> None:
    answers: list[Any] = [ContainerGone("inspect image: gone"), {"Id": "sha256:a"}]

    def fetch(image_id: str) -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    cache = ImageCache(fetch)
    with pytest.raises(ContainerGone):
        cache.get("sha256:a")
    assert len(cache) == 0
    assert cache.get("sha256:a") == {"Id": "sha256:a"}


def test_the_cache_is_bounded_and_keeps_only_images_in_use() -> None:
    calls: list[str] = []
    cache = ImageCache(lambda image_id: calls.append(image_id) or {"Id": image_id}, limit=2)
    for image_id in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        cache.get(image_id)
    assert len(cache) == 2
    cache.get("a")
    assert calls == ["a", "b", "c"]
    cache.keep_only(["c"])
    cache.get("a")
    assert calls == ["a", "b", "c", "a"] and len(cache) == 2


def test_a_rule_reading_the_image_stops_the_judgement_until_the_image_is_gathered() -> None:
    """As in a sweep: metrics and position in hand, the image fetched only for the rule that reads it."""
    data = example("old")
    c = Container("c1", data["container"], metrics={}, position=0, image_info=Missing("image_info"))
    assert not c.all_gathered
    rules = [Rule("plain", lambda c: False), Rule("old image", lambda c: c.image_age_days > 180)]
    judgement = Judgement(rules, Whitelist())
    assert judgement.run(c) is None and judgement.needs == "image_info"
    verdict = judgement.run(c.with_facts(image_info=data["image"]))
    assert verdict is not None and verdict.reasons == ["old image"]
    assert c.with_facts(image_info=data["image"]).all_gathered
