from __future__ import annotations

import pytest

from kaudit.images import matches_prefix, parse_image

SHA = "sha256:" + "a" * 64

# reference -> (registry, repository, tag, digest); None when it is not a valid reference
CASES = {
    "nginx": ("docker.io", "library/nginx", None, None),
    "nginx:1.25": ("docker.io", "library/nginx", "1.25", None),
    "library/nginx:latest": ("docker.io", "library/nginx", "latest", None),
    "bitnami/redis:7.2": ("docker.io", "bitnami/redis", "7.2", None),
    "docker.io/nginx": ("docker.io", "library/nginx", None, None),
    "index.docker.io/library/nginx:1": ("docker.io", "library/nginx", "1", None),
    "localhost/app": ("localhost", "app", None, None),
    "localhost:5000/app:v1": ("localhost:5000", "app", "v1", None),
    "registry:5000/team/app": ("registry:5000", "team/app", None, None),
    "Registry.Example.com:443/a/b/c:tag": ("registry.example.com:443", "a/b/c", "tag", None),
    "ghcr.io/acme/tool@" + SHA: ("ghcr.io", "acme/tool", None, SHA),
    "ghcr.io/acme/tool:2.0@" + SHA: ("ghcr.io", "acme/tool", "2.0", SHA),
    "app:v1@" + SHA: ("docker.io", "library/app", "v1", SHA),
    "[::1]:5000/app:1": ("[::1]:5000", "app", "1", None),
    "quay.io/org/sub/repo:1.0.0-rc.1_build": ("quay.io", "org/sub/repo", "1.0.0-rc.1_build", None),
    "": None,
    " nginx": None,
    "nginx:": None,
    "Nginx": None,
    "{{ .Values.image }}": None,
    "$(IMAGE)": None,
    "ghcr.io/acme/tool@sha256:short": None,
}


@pytest.mark.parametrize("reference", CASES)
def test_image_reference_parsing(reference: str) -> None:
    parsed = parse_image(reference)
    expected = CASES[reference]
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == expected


@pytest.mark.parametrize(
    "reference, effective_tag, pinned",
    [("nginx", "latest", False), ("nginx:1", "1", False), ("nginx@" + SHA, None, True),
     ("nginx:latest@" + SHA, "latest", True)],
)
def test_effective_tag_and_pinning(reference: str, effective_tag: str | None, pinned: bool) -> None:
    parsed = parse_image(reference)
    assert parsed is not None and parsed.effective_tag == effective_tag and parsed.pinned is pinned


@pytest.mark.parametrize(
    "reference, prefix, allowed",
    [
        ("ghcr.io/acme/x:1", "ghcr.io/acme", True),
        ("ghcr.io/acme/x:1", "ghcr.io/acme/", True),
        ("ghcr.io/acme-evil/x:1", "ghcr.io/acme", False),
        ("ghcr.io/acme/x:1", "ghcr.io", True),
        ("ghcr.io.evil.com/acme/x", "ghcr.io", False),
        ("nginx", "docker.io/library", True),
        ("nginx", "index.docker.io", True),
        ("bitnami/redis", "docker.io/library", False),
        ("registry.example.com:5000/a", "registry.example.com", False),
    ],
)
def test_registry_prefixes_match_whole_components(reference: str, prefix: str, allowed: bool) -> None:
    parsed = parse_image(reference)
    assert parsed is not None and matches_prefix(parsed, prefix) is allowed
