"""The OCI test infrastructure itself (tests/oci): a real registry, pushes, cosign-format signatures, token auth.

These check the helpers against the real distribution registry and against a signature made by the
real cosign, so that kaudit's signature-verification tests stand on something that is not kaudit.
"""
from __future__ import annotations

import base64
import hashlib
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci import (OCI_MANIFEST, SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, RunningRegistry, TokenIssuer,
                       delete_manifest, generate_key, parse_challenge, public_key_pem, push_image, sign,
                       signature_tag, simple_signing_payload, tag_manifest, verify_payload, write_public_key)

REAL_COSIGN = Path(__file__).parent / "data" / "cosign-real"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with RunningRegistry(tmp_path_factory.mktemp("oci"), tls=True) as running:
        yield running


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with RunningRegistry(tmp_path_factory.mktemp("oci-token"), tls=True, token_auth=True) as running:
        yield running


def _get(url: str, ca_file: Path | None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain urllib GET, independent of the helpers' client; HTTP errors come back as statuses."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


# ---- the registry ------------------------------------------------------------------------------------
def test_registry_serves_https_with_its_own_ca(registry: RunningRegistry) -> None:
    assert registry.running and registry.host.startswith("127.0.0.1:")
    assert registry.url == f"https://{registry.host}" and registry.ca_file is not None
    status, headers, _ = _get(f"{registry.url}/v2/", registry.ca_file)
    assert status == 200
    assert headers.get("docker-distribution-api-version") == "registry/2.0"
    with pytest.raises(urllib.error.URLError) as refused:  # the system trust store does not know our CA
        _get(f"{registry.url}/v2/", None)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


def test_pushed_image_is_fetched_by_tag_over_https(registry: RunningRegistry) -> None:
    digest = push_image(registry, "team/app", "1.0")
    status, headers, body = _get(f"{registry.url}/v2/team/app/manifests/1.0", registry.ca_file,
                                 {"Accept": OCI_MANIFEST})
    assert status == 200
    assert headers["content-type"] == OCI_MANIFEST
    assert headers["docker-content-digest"] == digest == "sha256:" + hashlib.sha256(body).hexdigest()
    manifest = json.loads(body)
    assert manifest["mediaType"] == OCI_MANIFEST and len(manifest["layers"]) == 1
    config_status, _, config = _get(f"{registry.url}/v2/team/app/blobs/{manifest['config']['digest']}",
                                    registry.ca_file)
    assert config_status == 200 and json.loads(config)["os"] == "linux"


def test_oci_manifest_needs_an_accept_header_naming_oci(registry: RunningRegistry) -> None:
    # distribution 2.8 quirk that a client must cope with: no OCI type in Accept -> 404 MANIFEST_UNKNOWN
    push_image(registry, "team/accept", "1.0")
    status, _, body = _get(f"{registry.url}/v2/team/accept/manifests/1.0", registry.ca_file)
    assert status == 404 and b"MANIFEST_UNKNOWN" in body


def test_repush_moves_the_tag_and_delete_removes_the_manifest(registry: RunningRegistry) -> None:
    client = registry.client()
    first = push_image(registry, "team/moving", "1.0")
    second = push_image(registry, "team/moving", "1.0")
    assert first != second
    assert client.manifest_json("team/moving", "1.0")[1] == second
    assert client.get_manifest("team/moving", first).status == 200  # still there by digest
    assert tag_manifest(registry, "team/moving", first, "1.0") == first
    assert client.manifest_json("team/moving", "1.0")[1] == first
    delete_manifest(registry, "team/moving", first)
    assert client.get_manifest("team/moving", first).status == 404
    assert client.get_manifest("team/moving", "1.0").status == 404  # the tag went with it
    assert client.get_manifest("team/moving", second).status == 200


# ---- cosign-format signatures -----------------------------------------------------------------------
def test_sign_pushes_a_cosign_signature_manifest(registry: RunningRegistry, tmp_path: Path) -> None:
    digest = push_image(registry, "team/signed", "1.0")
    key = generate_key()
    pub = write_public_key(key, tmp_path / "cosign.pub")
    pushed = sign(registry, "team/signed", digest, key)
    assert pushed.tag == signature_tag(digest) == "sha256-" + digest.split(":")[1] + ".sig"

    status, headers, body = _get(f"{registry.url}/v2/team/signed/manifests/{pushed.tag}", registry.ca_file,
                                 {"Accept": OCI_MANIFEST})
    assert status == 200 and headers["docker-content-digest"] == pushed.manifest_digest
    manifest = json.loads(body)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIMPLESIGNING_MEDIA_TYPE
    signature = layer["annotations"][SIGNATURE_ANNOTATION]

    _, _, payload = _get(f"{registry.url}/v2/team/signed/blobs/{layer['digest']}", registry.ca_file)
    assert payload == pushed.payload == simple_signing_payload(f"{registry.host}/team/signed", digest)
    assert json.loads(payload) == {
        "critical": {"identity": {"docker-reference": f"{registry.host}/team/signed"},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None,
    }
    assert verify_payload(pub.read_bytes(), payload, signature)
    assert not verify_payload(public_key_pem(generate_key()), payload, signature)
    assert not verify_payload(pub.read_bytes(), payload.replace(b"team/signed", b"team/other"), signature)


def test_signing_again_appends_and_signed_digest_can_differ(registry: RunningRegistry) -> None:
    digest = push_image(registry, "team/multi", "1.0")
    other = push_image(registry, "team/multi", "2.0")
    key = generate_key()
    sign(registry, "team/multi", digest, key)
    moved = sign(registry, "team/multi", digest, key, signed_digest=other, docker_reference="example.com/x")
    manifest, _ = registry.client().manifest_json("team/multi", signature_tag(digest))
    assert len(manifest["layers"]) == 2
    payloads = [json.loads(registry.client().get_blob("team/multi", layer["digest"])) for layer in manifest["layers"]]
    assert [p["critical"]["image"]["docker-manifest-digest"] for p in payloads] == [digest, other]
    assert payloads[1]["critical"]["identity"]["docker-reference"] == "example.com/x"
    assert moved.tag == signature_tag(digest) and moved.signed_digest == other
    replaced = sign(registry, "team/multi", digest, key, append=False)
    manifest, manifest_digest = registry.client().manifest_json("team/multi", signature_tag(digest))
    assert len(manifest["layers"]) == 1 and manifest_digest == replaced.manifest_digest


# ---- token authentication ---------------------------------------------------------------------------
def test_token_registry_challenges_anonymous_callers(token_registry: RunningRegistry) -> None:
    assert token_registry.token_server is not None and token_registry.username and token_registry.password
    status, headers, _ = _get(f"{token_registry.url}/v2/", token_registry.ca_file)
    assert status == 401
    scheme, challenge = parse_challenge(headers["www-authenticate"])
    assert scheme == "bearer"
    assert challenge["realm"] == token_registry.token_server.realm
    assert challenge["realm"].startswith("https://127.0.0.1:")
    assert challenge["service"] == "kaudit-test-registry"
    status, headers, _ = _get(f"{token_registry.url}/v2/team/app/tags/list", token_registry.ca_file)
    assert status == 401
    assert parse_challenge(headers["www-authenticate"])[1]["scope"] == "repository:team/app:pull"


def test_token_flow_by_hand(token_registry: RunningRegistry) -> None:
    assert token_registry.token_server is not None
    realm = token_registry.token_server.realm
    ca = token_registry.ca_file

    def token_for(user: str, password: str, scope: str = "") -> tuple[int, dict[str, object]]:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        query = "service=kaudit-test-registry" + (f"&scope={scope}" if scope else "")
        status, _, body = _get(f"{realm}?{query}", ca, {"Authorization": f"Basic {basic}"})
        return status, json.loads(body)

    assert token_registry.username is not None and token_registry.password is not None
    assert token_for(token_registry.username, "wrong")[0] == 401
    assert _get(f"{realm}?service=kaudit-test-registry", ca)[0] == 401  # no credentials at all
    status, answer = token_for(token_registry.username, token_registry.password)
    assert status == 200 and answer["expires_in"] == 300 and answer["token"] == answer["access_token"]
    token = str(answer["token"])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256" and len(header["x5c"]) == 1
    assert _get(f"{token_registry.url}/v2/", ca, {"Authorization": f"Bearer {token}"})[0] == 200

    # the registry really checks the signature: a token from an unknown signer is refused
    forged = TokenIssuer().issue(token_registry.username, [])
    assert _get(f"{token_registry.url}/v2/", ca, {"Authorization": f"Bearer {forged}"})[0] == 401

    # and the scope: a pull token does not let one push
    status, answer = token_for(token_registry.username, token_registry.password, "repository:team/app:pull")
    assert status == 200
    pull_only = token_registry.client()
    pull_only.tokens["team/app"] = str(answer["token"])
    started = pull_only.request("POST", "/v2/team/app/blobs/uploads/", body=b"", auth=False)
    assert started.status == 401 and "insufficient_scope" in (started.header("WWW-Authenticate") or "")


def test_push_sign_and_fetch_through_the_token_flow(token_registry: RunningRegistry) -> None:
    assert token_registry.token_server is not None
    digest = push_image(token_registry, "team/app", "1.0")
    sign(token_registry, "team/app", digest, generate_key())
    client = token_registry.client()
    assert client.ping().status == 200
    assert client.manifest_json("team/app", "1.0")[1] == digest
    assert signature_tag(digest) in client.tags("team/app")
    granted = [r for r in token_registry.token_server.requests if r.status == 200]
    assert any("repository:team/app:pull,push" in r.scopes for r in granted)
    assert all(r.user == token_registry.username for r in granted)
    refused = token_registry.client(password="wrong").ping()
    assert refused.status == 401 and refused.token_refusal is not None and refused.token_refusal.status == 401
    assert token_registry.client(anonymous=True).get_manifest("team/app", "1.0").status == 401


# ---- a signature made by the real cosign ------------------------------------------------------------
def test_real_cosign_triple_verifies() -> None:
    payload = (REAL_COSIGN / "payload.json").read_bytes()
    signature = (REAL_COSIGN / "signature.b64").read_text().strip()
    pub = (REAL_COSIGN / "cosign.pub").read_bytes()
    assert verify_payload(pub, payload, signature)
    assert not verify_payload(pub, payload + b"\n", signature)  # the exact bytes, not the JSON value
    document = json.loads(payload)
    assert document["critical"]["type"] == "cosign container image signature"
    # our payload builder writes the very bytes cosign signed
    assert simple_signing_payload(document["critical"]["identity"]["docker-reference"],
                                  document["critical"]["image"]["docker-manifest-digest"]) == payload
    assert (REAL_COSIGN / "SOURCE.md").is_file()
