"""A real OCI registry (distribution 2.8) for image-signature tests: start it, push images, sign them.

See tests/oci/README.md.
"""
from .cosign_sign import (PAYLOAD_TYPE, SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, PushedSignature,
                          generate_key, public_key_pem, sign, sign_payload, signature_tag, simple_signing_payload,
                          verify_payload, write_private_key, write_public_key)
from .push import (MANIFEST_ACCEPT, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Image, RegistryClient, RegistryError,
                   Response, build_image, delete_manifest, parse_challenge, push_built, push_image, sha256_digest,
                   tag_manifest)
from .registry import RegistryStartError, RunningRegistry
from .tokens import TokenIssuer, TokenRequest, TokenServer

__all__ = [
    "MANIFEST_ACCEPT", "OCI_CONFIG", "OCI_LAYER_GZIP", "OCI_MANIFEST", "PAYLOAD_TYPE", "SIGNATURE_ANNOTATION",
    "SIMPLESIGNING_MEDIA_TYPE", "Image", "PushedSignature", "RegistryClient", "RegistryError", "RegistryStartError",
    "Response", "RunningRegistry", "TokenIssuer", "TokenRequest", "TokenServer", "build_image", "delete_manifest",
    "generate_key", "parse_challenge", "public_key_pem", "push_built", "push_image", "sha256_digest", "sign",
    "sign_payload", "signature_tag", "simple_signing_payload", "tag_manifest", "verify_payload",
    "write_private_key", "write_public_key",
]
