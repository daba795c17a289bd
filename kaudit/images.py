"""Container image references, parsed and normalised the way the container runtime sees them.

`nginx` is `docker.io/library/nginx` with no tag (so `latest` is pulled); the first component is a
registry only when it contains `.` or `:` or is `localhost` (distribution/reference semantics).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ImageRef:
    original: str
    registry: str
    repository: str
    tag: Optional[str]
    digest: Optional[str]

    @property
    def name(self) -> str:
        """Registry and repository: `docker.io/library/nginx`."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """Pinned by digest: the only immutable form of reference."""
        return self.digest is not None

    @property
    def effective_tag(self) -> Optional[str]:
        """The tag the runtime pulls: `latest` when none is given and there is no digest."""
        if self.tag is None and self.digest is None:
            return "latest"
        return self.tag


@functools.lru_cache(maxsize=8192)
def parse_image(reference: str) -> Optional[ImageRef]:
    """Parse an image reference; None when it is not one (empty, templated, malformed).

    Cached: every image rule asks about the same few hundred references in a large tree."""
    if not isinstance(reference, str) or not reference or reference != reference.strip():
        return None
    remainder, digest = reference, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.match(digest):
            return None
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.match(tag):
            return None
    registry, repository = _split_registry(remainder)
    if registry is None or not repository or not all(_PATH_COMPONENT.match(c) for c in repository.split("/")):
        return None
    return ImageRef(reference, registry, repository, tag, digest)


def _split_registry(name: str) -> tuple[Optional[str], str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.match(first):
            return None, ""
        registry = DOCKER_HUB if first.lower() in _HUB_ALIASES else first.lower()
        if registry == DOCKER_HUB and "/" not in rest:
            rest = "library/" + rest
        return registry, rest
    if not sep:
        return DOCKER_HUB, "library/" + name
    return DOCKER_HUB, name


def matches_prefix(image: ImageRef, prefix: str) -> bool:
    """Does the image come from `prefix`: a registry (`ghcr.io`) or a registry path (`ghcr.io/acme`)?

    Matching is by whole path components (`ghcr.io/acme` does not admit `ghcr.io/acme-evil`);
    Docker Hub aliases are normalised, and its official images live under `docker.io/library`.
    """
    registry, _, path = prefix.strip().strip("/").partition("/")
    registry = DOCKER_HUB if registry.lower() in _HUB_ALIASES else registry.lower()
    if not registry or image.registry != registry:
        return False
    return not path or image.repository == path or image.repository.startswith(path + "/")
