"""Cosign-format image signatures (key-based, no transparency log), pushed to a real registry.

Written from cosign's published layout (sigstore/cosign specs/SIGNATURE_SPEC.md), not from kaudit:

* the signed payload is the "simple signing" JSON, compact, in cosign's (Go struct) key order:
  {"critical":{"identity":{"docker-reference":REF},"image":{"docker-manifest-digest":DIGEST},
   "type":"cosign container image signature"},"optional":null}
* the signature is ECDSA P-256 over SHA-256 of exactly those bytes, ASN.1 DER, base64 (standard);
* it is stored in the image's repository under the tag `sha256-<hex>.sig`, as an OCI image manifest
  whose layers are the payload blobs (mediaType application/vnd.dev.cosign.simplesigning.v1+json),
  each with the annotation `dev.cosignproject.cosign/signature: <base64 signature>`; the config is a
  small image-config JSON (mediaType application/vnd.oci.image.config.v1+json).

Like `cosign sign`, signing an image that already has a `.sig` adds a layer to it (append=True).

    key = generate_key(); write_public_key(key, tmp_path / "cosign.pub")
    sig = sign(registry, "team/app", digest, key)
    sign(registry, "team/app", digest, key, signed_digest=other_digest)   # a signature "moved" here
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .push import (OCI_CONFIG, RegistryClient, RegistryLike, client_for, descriptor, manifest_bytes,
                   sha256_digest)

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, the kind `cosign generate-key-pair` makes."""
    return ec.generate_private_key(ec.SECP256R1())


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """PEM `PUBLIC KEY` (SubjectPublicKeyInfo), the format of cosign.pub."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_public_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(public_key_pem(key))
    return path


def write_private_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    """Unencrypted PKCS#8 PEM (not cosign's encrypted `SIGSTORE PRIVATE KEY` format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def simple_signing_payload(docker_reference: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    """The exact bytes cosign signs (`optional: null` unless given, as `cosign sign` without -a)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": optional,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign_payload(key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """base64(DER(ECDSA-P256(SHA-256(payload))))."""
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def verify_payload(public_key_pem_bytes: bytes, payload: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` is a valid cosign signature of `payload` by that PEM public key."""
    from cryptography.exceptions import InvalidSignature

    public = serialization.load_pem_public_key(public_key_pem_bytes)
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC public key")
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_tag(digest: str) -> str:
    """`sha256:abc...` -> `sha256-abc....sig`, where cosign looks for an image's signatures."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}.sig"


@dataclass(frozen=True)
class PushedSignature:
    tag: str  # sha256-<hex>.sig
    manifest_digest: str  # of the .sig manifest
    payload: bytes
    signature: str  # base64
    docker_reference: str
    signed_digest: str


def _config_for(layers: list[bytes]) -> bytes:
    return json.dumps({
        "architecture": "", "os": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer) for layer in layers]},
        "config": {},
    }, separators=(",", ":")).encode()


def _existing_layers(client: RegistryClient, repo: str, tag: str) -> list[tuple[bytes, dict[str, Any]]]:
    response = client.get_manifest(repo, tag)
    if response.status == 404:
        return []
    if response.status != 200:
        from .push import RegistryError

        raise RegistryError(f"fetching existing signatures {repo}:{tag}", response)
    manifest = json.loads(response.body)
    return [(client.get_blob(repo, d["digest"]), d) for d in manifest.get("layers", [])]


def sign(registry: RegistryLike, repo: str, digest: str, private_key: ec.EllipticCurvePrivateKey,
         docker_reference: str | None = None, signed_digest: str | None = None, *,
         append: bool = True, optional: dict[str, Any] | None = None,
         extra_annotations: dict[str, str] | None = None) -> PushedSignature:
    """Sign `repo@digest` the way `cosign sign --key` does and push the signature to `sha256-<hex>.sig`.

    docker_reference: the identity in the payload; default "<registry host>/<repo>" (for a
        RegistryClient: the host of its base URL).
    signed_digest: the digest written in the payload; default `digest`. Setting it to another digest
        makes a signature that is stored under `digest`'s tag but vouches for a different image.
    append: keep the layers (signatures) already under the tag, as cosign does; False replaces them.
    """
    client = client_for(registry)
    if docker_reference is None:
        host = client.base_url.split("://", 1)[-1].rstrip("/")
        docker_reference = f"{host}/{repo}"
    signed = signed_digest or digest
    payload = simple_signing_payload(docker_reference, signed, optional)
    signature = sign_payload(private_key, payload)
    tag = signature_tag(digest)

    layers = _existing_layers(client, repo, tag) if append else []
    annotations = {SIGNATURE_ANNOTATION: signature, **(extra_annotations or {})}
    layers.append((payload, descriptor(SIMPLESIGNING_MEDIA_TYPE, payload, annotations)))
    blobs = [blob for blob, _ in layers]
    config = _config_for(blobs)
    client.upload_blob(repo, config)
    for blob in blobs:
        client.upload_blob(repo, blob)
    manifest = manifest_bytes(config, layers, config_media_type=OCI_CONFIG)
    manifest_digest = client.put_manifest(repo, tag, manifest)
    return PushedSignature(tag, manifest_digest, payload, signature, docker_reference, signed)
