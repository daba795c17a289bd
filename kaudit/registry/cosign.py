"""cosign key-based signatures: find them by the `sha256-<hex>.sig` tag, verify them, check what they say.

A signature image's layers are simple-signing payloads (mediaType
`application/vnd.dev.cosign.simplesigning.v1+json`) whose signature, base64, sits in the layer
annotation `dev.cosignproject.cosign/signature`. A signature counts only when it verifies with a
trusted public key over the exact payload bytes, the payload names the image's digest
(`critical.image.docker-manifest-digest`) and its repository (`critical.identity.docker-reference`).
Keyless (Fulcio certificate) signatures and Notary v2 are not verified.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Optional, Sequence

from kaudit.images import ImageRef, parse_image
from kaudit.registry.client import RegistryClient, RegistryError
from kaudit.value import value

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"

from kaudit.registry.outcomes import ERROR, UNSIGNED, UNTRUSTED, VERIFIED, WRONG_DIGEST, WRONG_REFERENCE  # noqa: F401


@value
class TrustedKey:
    """A cosign public key the user trusts, and the images it is trusted for."""

    name: str
    pem: bytes
    scopes: tuple[str, ...] = ()  # registry / repository prefixes it vouches for; () = every image

    def load(self) -> Any:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        return load_pem_public_key(self.pem)


@value
class SignatureCheck:
    """The verdict on one image's cosign signatures."""

    status: str
    detail: str
    key: Optional[str] = None


def signature_tag(digest: str) -> str:
    algorithm, _, hexadecimal = digest.partition(":")
    return f"{algorithm}-{hexadecimal}.sig"


def verify_signature(public_key: Any, payload: bytes, signature: bytes) -> bool:
    """cosign signs with ECDSA (SHA-256 for P-256), Ed25519, or RSA (PKCS#1 v1.5 / SHA-256)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            digest = hashes.SHA384() if public_key.curve.key_size == 384 else hashes.SHA256()
            public_key.verify(signature, payload, ec.ECDSA(digest))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, payload)
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def same_repository(reference: str, image: ImageRef) -> bool:
    """Does the payload's docker-reference name the image's repository (Docker Hub spellings aside)?"""
    parsed = parse_image(reference.split("@", 1)[0])
    return parsed is not None and (parsed.registry, parsed.repository) == (image.registry, image.repository)


def check_signatures(client: RegistryClient, image: ImageRef, digest: str,
                     keys: Sequence[TrustedKey]) -> SignatureCheck:
    try:
        _, manifest = client.manifest(image.registry, image.repository, signature_tag(digest))
    except RegistryError as error:
        if error.status == 404:
            return SignatureCheck(UNSIGNED, f"no cosign signature ({signature_tag(digest)}) in {image.name}")
        raise
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, dict)
              and layer.get("mediaType") == SIMPLE_SIGNING]
    if not layers:
        return SignatureCheck(UNSIGNED, f"{signature_tag(digest)} holds no simple-signing payload")
    loaded = [(key, key.load()) for key in keys]
    problems = []
    for layer in layers:
        encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if not isinstance(encoded, str):
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        payload = client.blob(image.registry, image.repository, str(layer.get("digest")))
        signer = next((key for key, public in loaded if verify_signature(public, payload, signature)), None)
        if signer is None:
            continue
        try:
            critical = json.loads(payload)["critical"]
            signed_digest = str(critical["image"]["docker-manifest-digest"])
            reference = str(critical["identity"]["docker-reference"])
        except (ValueError, KeyError, TypeError):
            problems.append(SignatureCheck(WRONG_DIGEST, "a trusted signature's payload is not simple-signing JSON",
                                           signer.name))
            continue
        if signed_digest != digest:
            problems.append(SignatureCheck(WRONG_DIGEST, f"signed by {signer.name}, but over {signed_digest}, not "
                                                         f"{digest}", signer.name))
        elif not same_repository(reference, image):
            problems.append(SignatureCheck(WRONG_REFERENCE, f"signed by {signer.name} for {reference}, not "
                                                            f"{image.name}", signer.name))
        else:
            return SignatureCheck(VERIFIED, f"signed by {signer.name}", signer.name)
    if problems:
        return problems[0]
    names = ", ".join(key.name for key in keys) or "none configured"
    return SignatureCheck(UNTRUSTED, f"{len(layers)} signature(s), none by a trusted key ({names})")
