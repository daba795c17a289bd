"""Container image references, parsed and normalised the way the container runtime sees them.

`nginx` is `docker.io/library/nginx` with no tag (so `latest` is pulled); the first component is a
registry only when it contains `.` or `:` or is `localhost` (distribution/reference semantics).
"""
from __future__ import annotations

import functools
import re
from typing import Optional

from kaudit.value import value



DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
# The grammar of github.com/distribution/reference (regexp.go, reference.go):
#   reference := name [ ":" tag ] [ "@" digest ]
#   digest    := algorithm ":" hex, algorithm := [A-Za-z][A-Za-z0-9]* ([-_+.] [A-Za-z][A-Za-z0-9]*)*
_DIGEST = re.compile(r"^(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,})$")
# ...and a digest the runtime accepts (opencontainers/go-digest Validate): a registered algorithm and
# exactly its length of lower-case hex. Anything else is refused at pull time, so it pins nothing.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"^[0-9a-f]+$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
NAME_TOTAL_LENGTH_MAX = 255


@value
class ImageRef:
    """A container image reference split into registry, repository, tag and digest."""

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
        """Pinned by digest: the only immutable form of reference (parsing admits only valid digests)."""
        return self.digest is not None

    @property
    def effective_tag(self) -> Optional[str]:
        """The tag the runtime pulls: `latest` when none is given and there is no digest."""
        if self.tag is None and self.digest is None:
            return "latest"
        return self.tag


@functools.lru_cache(maxsize=8192)
def parse_image(reference: str) -> Optional[ImageRef]:
    """Parse an image reference; None when it is not one (empty, templated, malformed, bad digest).

    Cached: every image rule asks about the same few hundred references in a large tree."""
    return check_reference(reference)[0]


@functools.lru_cache(maxsize=8192)
def check_reference(reference: str) -> tuple[Optional[ImageRef], str]:
    """The parsed reference, or None and why it is not a valid one (never both)."""
    if not isinstance(reference, str) or not reference:
        return None, "it is empty"
    if reference != reference.strip():
        return None, "it has leading or trailing spaces"
    remainder, digest = reference, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        problem = digest_problem(digest)
        if problem:
            return None, problem
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.match(tag):
            return None, f"its tag {tag!r} is not a valid tag" if tag else "its tag is empty"
    if not remainder:
        return None, "it has no repository name"
    if len(remainder) > NAME_TOTAL_LENGTH_MAX:
        return None, f"its name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
    registry, repository = _split_registry(remainder)
    if registry is None or not repository or not all(_PATH_COMPONENT.match(c) for c in repository.split("/")):
        return None, f"{remainder!r} is not a valid repository name"
    return ImageRef(reference, registry, repository, tag, digest), ""


def digest_problem(digest: str) -> str:
    """Why `digest` (the text after `@`) does not pin an image; "" when it does."""
    if not digest:
        return "its digest after '@' is empty"
    match = _DIGEST.match(digest)
    if match is None:
        return f"its digest {digest!r} is not <algorithm>:<hex>"
    algorithm, hex_digits = match["algorithm"], match["hex"]
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        return f"its digest algorithm {algorithm!r} is not one of {', '.join(DIGEST_HEX_LENGTHS)}"
    if len(hex_digits) != length:
        return f"its {algorithm} digest has {len(hex_digits)} hex digits, not {length}"
    if not _LOWER_HEX.match(hex_digits):
        return f"its {algorithm} digest is not lower-case hex"
    return ""


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
