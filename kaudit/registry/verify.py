"""Check every distinct image of a scan once: resolve its digest, verify its cosign signatures.

Runs between the sources and the engine (it does I/O; rules only read its results from the
inventory's memo). Results can be cached on disk with a TTL, keyed by the image reference and the
trusted keys, so a second run makes no network round trips for images it already checked. Errors
(unreachable registry, refused auth) are never cached: they are reported as gaps every time.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from kaudit.errors import KauditError
from kaudit.images import matches_prefix, parse_image
from kaudit.registry.client import RegistryClient, RegistryError, RegistryOptions
from kaudit.registry.cosign import SignatureCheck, TrustedKey, check_signatures
from kaudit.value import record, value

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kaudit" / "images.json"


@value
class ImageFacts:
    """What a registry said about one image: its digest and signature verdict, or why not."""

    image: str
    digest: Optional[str] = None
    signature: Optional[SignatureCheck] = None  # None: not checked
    error: Optional[str] = None  # the registry could not answer: a gap, never a pass


@value
class ImageCheckRequest:
    """What --verify-images / --resolve-digests asks, with keys, registry options and cache."""

    verify: bool = False
    resolve: bool = False
    keys: tuple[TrustedKey, ...] = ()
    options: RegistryOptions = RegistryOptions()
    cache_file: Optional[str] = None  # None: no cache
    ttl_seconds: int = 3600
    workers: int = 8


@record
class ImageCheckResult:
    """Every image's facts, and how many registry round trips and cache hits it took."""

    facts: dict[str, ImageFacts]
    round_trips: int
    from_cache: int


def keys_for(image_text: str, keys: Sequence[TrustedKey]) -> list[TrustedKey]:
    image = parse_image(image_text)
    return [key for key in keys if not key.scopes or
            (image is not None and any(matches_prefix(image, scope) for scope in key.scopes))]


def _cache_key(image: str, keys: Sequence[TrustedKey], verify: bool) -> str:
    material = "|".join([image, str(verify)] + [hashlib.sha256(k.pem).hexdigest() + ",".join(k.scopes) for k in keys])
    return hashlib.sha256(material.encode()).hexdigest()


def _load_cache(path: Optional[str]) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a missing or damaged cache is only a slower run


def _save_cache(path: Optional[str], entries: dict[str, Any]) -> None:
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(path).with_suffix(".tmp")
        temporary.write_text(json.dumps(entries), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass  # a read-only home must not fail the scan


def check_images(images: Iterable[str], request: ImageCheckRequest) -> ImageCheckResult:
    distinct = sorted(set(images))
    try:
        client = RegistryClient(request.options)
    except RegistryError as error:  # e.g. --registry-config names a missing or unreadable file
        raise KauditError(str(error)) from None
    cache = _load_cache(request.cache_file)
    now = time.time()
    facts: dict[str, ImageFacts] = {}
    pending = []
    for image in distinct:
        entry = cache.get(_cache_key(image, keys_for(image, request.keys), request.verify))
        if isinstance(entry, dict) and now - float(entry.get("at", 0)) < request.ttl_seconds:
            signature = SignatureCheck(**entry["signature"]) if entry.get("signature") else None
            facts[image] = ImageFacts(image, entry.get("digest"), signature)
        else:
            pending.append(image)
    from_cache = len(facts)

    def one(image: str) -> ImageFacts:
        return _check_one(client, image, request)

    with ThreadPoolExecutor(max_workers=request.workers) as pool:
        for result in pool.map(one, pending):
            facts[result.image] = result
            if result.error is None:
                cache[_cache_key(result.image, keys_for(result.image, request.keys), request.verify)] = {
                    "at": now, "digest": result.digest,
                    "signature": vars(result.signature) if result.signature else None}
    if pending:
        _save_cache(request.cache_file, {k: v for k, v in cache.items()
                                         if isinstance(v, dict) and now - float(v.get("at", 0)) < request.ttl_seconds})
    return ImageCheckResult(facts, client.round_trips, from_cache)


def _check_one(client: RegistryClient, image_text: str, request: ImageCheckRequest) -> ImageFacts:
    image = parse_image(image_text)
    if image is None:
        return ImageFacts(image_text, error="not a valid image reference")
    try:
        digest = image.digest
        if digest is None or request.verify:
            # resolving confirms the digest exists; by tag it is what the tag points to now
            digest, _ = client.manifest(image.registry, image.repository, image.digest or image.tag or "latest")
        signature = None
        if request.verify:
            signature = check_signatures(client, image, digest, keys_for(image_text, request.keys))
        return ImageFacts(image_text, digest, signature)
    except RegistryError as error:
        return ImageFacts(image_text, error=str(error))
