"""Rules about the image behind each container, read from its `docker image inspect` (`c.image_info`): how old
it is, whether it runs as root by default, whether it says where it comes from, whether it was pulled by
digest.

The image's inspect data is fetched only when a rule reads it, once per image id for all the containers that
use it. Where it cannot be known (`audit --from` without `--images`, a rule test without `"image"`), these
rules are not judged, as metrics rules before a container starts.
"""

from __future__ import annotations

import numbers
from typing import Any

from enforcer.facts.container import Container
from enforcer.facts.views import EMPTY
from enforcer.library._base import LibraryError, RuleSpec, example, named
from enforcer.library._inspect import image_reference, is_root_user, repository, split_reference

IMAGE_TAGS = ("images",)
SOURCE_LABEL = "org.opencontainers.image.source"


def _image_config(c: Container) -> Any:
    return c.image_info.get("Config") or EMPTY


def older_than(days: int | float, *, name: str | None = None) -> dict[str, Any]:
    """Images built more than `days` days ago (their `Created`): old images carry old, known vulnerabilities."""
    if isinstance(days, bool) or not isinstance(days, numbers.Real) or days <= 0:
        raise LibraryError(f"older_than: {days!r} is not a positive number of days, such as 180")

    def check(c: Container) -> bool:
        return c.image_age_days > days

    return RuleSpec(
        "image-max-age",
        named("older_than", f"image at most {days:g} days old", name),
        check,
        "medium",
        f"Flags a container whose image was built more than {days:g} days ago (the image's `Created` time): "
        "nothing rebuilt it since, so it holds every vulnerability found in its packages meanwhile.",
        "Rebuild the image on a fresh base (and set up a regular rebuild), then recreate the container.",
        tags=IMAGE_TAGS,
    ).as_rule()


def default_user_root(*, name: str | None = None) -> dict[str, Any]:
    """Images whose default user is root (no USER, or USER 0/root), whatever the container overrides."""

    def check(c: Container) -> bool:
        return is_root_user(_image_config(c).get("User"))

    return RuleSpec(
        "image-default-user-root",
        named("default_user_root", "image not root by default", name),
        check,
        "low",
        "Flags a container whose image runs as root unless told otherwise: no `USER` in the image, or `USER "
        "0`, `root`, `0:<group>`, `root:<group>`. Every container of it that forgets `--user` runs as root "
        "(`limits.rules()`' no-root-user judges the container itself). CIS Docker Benchmark v1.6 4.1.",
        "Add a `USER` with an unprivileged user to the image's Dockerfile.",
        cis="4.1",
        tags=(*IMAGE_TAGS, "user"),
    ).as_rule()


def require_label(label: str = SOURCE_LABEL, *, name: str | None = None) -> dict[str, Any]:
    """Images without the label `label` (non-empty), by default the OCI source label."""
    if not isinstance(label, str) or not label.strip() or any(ch.isspace() for ch in label):
        raise LibraryError(f"require_label: {label!r} is not a label key such as {SOURCE_LABEL!r}")

    def check(c: Container) -> bool:
        labels = _image_config(c).get("Labels") or EMPTY
        return not str(labels.get(label) or "").strip()

    return RuleSpec(
        "image-label",
        named("require_label", f"image label {label} required", name),
        check,
        "low",
        f"Flags a container whose image has no label {label} (or an empty one); the image's own labels, "
        "not the container's. Without it nobody can tell where the image was built from or who answers for it.",
        f"Add `LABEL {label}=...` to the image's Dockerfile (or `--label` to `docker build`).",
        tags=(*IMAGE_TAGS, "labels"),
    ).as_rule()


def require_digest(*, name: str | None = None) -> dict[str, Any]:
    """Containers not run from an image pulled by digest: the container names `repo@sha256:...` and the image
    came from that repository with that digest (its RepoDigests)."""

    def check(c: Container) -> bool:
        image_name, _, digest = split_reference(image_reference(c))
        if not digest:
            return True
        pulled = {
            (repository(split_reference(str(item))[0]), split_reference(str(item))[2])
            for item in c.image_info.get("RepoDigests") or ()
        }
        return (repository(image_name), digest) not in pulled

    return RuleSpec(
        "image-digest",
        named("require_digest", "image pulled by digest", name),
        check,
        "low",
        "Flags a container whose image was not named by digest (`repo@sha256:...`), or whose image does not "
        "carry that digest from that repository (RepoDigests): a tag can point at other content tomorrow, and "
        "an image built, loaded or tagged on the host has no registry digest at all.",
        "Run images by digest from a registry: `docker run registry.example.com/app@sha256:...` (the digest "
        "`docker pull` or `docker inspect --format '{{.RepoDigests}}'` shows).",
        tags=IMAGE_TAGS,
    ).as_rule()


SPECS: tuple[RuleSpec, ...] = ()
FACTORIES = (
    example(older_than, 180),
    example(default_user_root),
    example(require_label),
    example(require_digest),
)
