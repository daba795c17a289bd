"""Image reference checks: latest tag, pull policy with mutable tags, digests, registries."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.images import ImageRef, check_reference, matches_prefix, parse_image
from kaudit.workloads import Container

NO_PARAMS: Mapping[str, Any] = {"type": "object", "additionalProperties": False}


def _image_check(decide: Callable[[Container, Optional[ImageRef], str], Optional[Hit]]) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None
        image = container.body.get("image")
        if not isinstance(image, str):
            return ()
        hit = decide(container, parse_image(image), image)
        return () if hit is None else (hit,)

    return check


def _latest_tag(params: Mapping[str, Any], target: str) -> Check:
    def decide(container: Container, ref: Optional[ImageRef], image: str) -> Optional[Hit]:
        broken_digest = ""
        if ref is None and "@" in image:
            # `nginx:latest@sha256:abc`: the digest pins nothing, so judge the name and tag alone
            ref, (_, broken_digest) = parse_image(image.split("@", 1)[0]), check_reference(image)
        if ref is None or ref.pinned or ref.effective_tag != "latest":
            return None  # a valid digest decides what runs: the runtime ignores the tag
        reason = "has no tag (so `latest` is pulled)" if ref.tag is None else "uses the `latest` tag"
        if broken_digest:
            reason = ("has no tag" if ref.tag is None else "uses the `latest` tag") + \
                f" ({broken_digest}, so it pins nothing)"
        return Hit(container.path + ("image",), {"image": image, "reason": reason})

    return _image_check(decide)


def effective_pull_policy(container: Container, ref: ImageRef) -> tuple[str, bool]:
    """The pull policy the API server will store, and whether it was defaulted."""
    policy = container.body.get("imagePullPolicy")
    if isinstance(policy, str) and policy:
        return policy, False
    return ("Always" if ref.effective_tag == "latest" else "IfNotPresent"), True


def _pull_policy(params: Mapping[str, Any], target: str) -> Check:
    def decide(container: Container, ref: Optional[ImageRef], image: str) -> Optional[Hit]:
        if ref is None or ref.pinned:
            return None
        policy, defaulted = effective_pull_policy(container, ref)
        if policy != "IfNotPresent":
            return None
        how = "defaults to IfNotPresent for a tagged image" if defaulted else "is IfNotPresent"
        return Hit(container.path + ("imagePullPolicy",), {"image": image, "policy": how})

    return _image_check(decide)


def _digest(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None
        image = container.body.get("image")
        if not isinstance(image, str):
            return ()
        ref, why = check_reference(image)
        if ref is None:
            # `nginx@`, `nginx@foo`, `@sha256:abc`: meant as a digest, pins nothing (the kubelet
            # refuses the name). Other non-references (templates) are not judged here.
            return (Hit(container.path + ("image",), {"image": image, "pin": f": it is not a valid image reference, {why}"}),) \
                if "@" in image else ()
        if ref.pinned:
            return ()
        # with --resolve-digests (or --verify-images) the digest the tag points to now is known
        facts = subject.lookup.memo.get("images", {}).get(image) if subject.lookup is not None else None
        pin = f"; it resolves to {facts.digest} now: pin it as {ref.name}@{facts.digest}" \
            if facts is not None and facts.digest else ""
        return (Hit(container.path + ("image",), {"image": str(image), "pin": pin}),)

    return check


REGISTRY_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "allowed-registries": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "registries or registry paths (ghcr.io/acme); empty means the rule reports nothing",
        }
    },
}


def _registry(params: Mapping[str, Any], target: str) -> Check:
    allowed = list(params.get("allowed-registries", ()))

    def decide(container: Container, ref: Optional[ImageRef], image: str) -> Optional[Hit]:
        if not allowed:
            return None  # not configured: there is nothing to compare against
        if ref is not None and any(matches_prefix(ref, prefix) for prefix in allowed):
            return None
        registry = ref.registry if ref is not None else "unknown: not a valid image reference"
        return Hit(container.path + ("image",), {"image": image, "registry": registry})

    return _image_check(decide)


TEMPLATES = [
    Template("image-latest-tag", "Image without a tag, or with `latest`, and no digest.",
             frozenset({"container"}), NO_PARAMS, _latest_tag),
    Template("image-pull-policy-mutable", "Effective pull policy IfNotPresent with a tag-only reference.",
             frozenset({"container"}), NO_PARAMS, _pull_policy),
    Template("image-digest", "Image not pinned by digest.", frozenset({"container"}), NO_PARAMS, _digest),
    Template("image-registry", "Image from a registry outside `allowed-registries`.",
             frozenset({"container"}), REGISTRY_PARAMS, _registry),
]
