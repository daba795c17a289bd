"""Image signatures against a real OCI registry (Debian docker-registry on 127.0.0.1).

Images are built and pushed by tests/oci; signatures are made by tests/oci/cosign_sign.py, written from
cosign's published layout independently of kaudit's verifier; tests/data/cosign-real holds a triple the
real cosign produced.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from kaudit.registry.cosign import TrustedKey, verify_signature
from tests.oci.cosign_sign import generate_key, sign, write_public_key
from tests.oci.push import push_image
from tests.oci.registry import RunningRegistry

from .conftest import CliResult

Kaudit = Callable[..., CliResult]
REAL = Path(__file__).parent / "data" / "cosign-real"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with RunningRegistry(tmp_path) as running:
        yield running


def manifest(tmp_path: Path, images: dict[str, str]) -> Path:
    """A Deployment with one container per image."""
    containers = [{"name": name, "image": image} for name, image in images.items()]
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                                    "metadata": {"name": "app", "namespace": "shop"},
                                    "spec": {"template": {"spec": {"containers": containers}}}}))
    return path


def verify(kaudit: Kaudit, path: Path, registry: RunningRegistry, key: Path, tmp_path: Path, *extra: Any) -> CliResult:
    return kaudit("scan", path, "--verify-images", "--cosign-key", key, "--registry-ca", registry.ca_file,
                  "--image-cache", tmp_path / "cache.json", "-f", "json", "--fail-on", "never", *extra)


def signature_findings(result: CliResult) -> dict[str, str]:
    """container -> rule, for the signature rules."""
    rules = {"unsigned-image", "image-signed-by-untrusted-key", "image-signature-for-another-subject"}
    return {f["container"]: f["rule"] for f in result.json()["findings"] if f["rule"] in rules}


def test_every_signature_case_against_a_real_registry(kaudit: Kaudit, registry: RunningRegistry,
                                                      tmp_path: Path) -> None:
    trusted, other = generate_key(), generate_key()
    key = write_public_key(trusted, tmp_path / "cosign.pub")
    images = {}
    # signed by the trusted key
    digest = push_image(registry, "team/good", "1.0")
    sign(registry, "team/good", digest, trusted)
    images["good"] = registry.reference("team/good", "1.0")
    # signed, but by another key
    digest = push_image(registry, "team/stranger", "1.0")
    sign(registry, "team/stranger", digest, other)
    images["stranger"] = registry.reference("team/stranger", "1.0")
    # never signed
    push_image(registry, "team/unsigned", "1.0")
    images["unsigned"] = registry.reference("team/unsigned", "1.0")
    # a trusted signature of another image, stored under this image's .sig tag
    digest = push_image(registry, "team/moved", "1.0")
    elsewhere = push_image(registry, "team/moved", "0.9")
    sign(registry, "team/moved", digest, trusted, signed_digest=elsewhere)
    images["moved"] = registry.reference("team/moved", "1.0")
    # signed, then the tag was pushed again: the new image has no signature
    digest = push_image(registry, "team/repushed", "1.0")
    sign(registry, "team/repushed", digest, trusted)
    push_image(registry, "team/repushed", "1.0")
    images["repushed"] = registry.reference("team/repushed", "1.0")
    # a trusted signature naming another repository
    digest = push_image(registry, "team/renamed", "1.0")
    sign(registry, "team/renamed", digest, trusted, docker_reference=f"{registry.host}/team/original")
    images["renamed"] = registry.reference("team/renamed", "1.0")
    # pinned by digest and signed
    digest = push_image(registry, "team/pinned", None)
    sign(registry, "team/pinned", digest, trusted)
    images["pinned"] = registry.reference("team/pinned", digest)

    result = verify(kaudit, manifest(tmp_path, images), registry, key, tmp_path)
    assert result.code == 0, result.err
    assert signature_findings(result) == {
        "stranger": "image-signed-by-untrusted-key",
        "unsigned": "unsigned-image",
        "moved": "image-signature-for-another-subject",
        "repushed": "unsigned-image",
        "renamed": "image-signature-for-another-subject",
    }
    report = result.json()
    assert report["images"]["signaturesChecked"] and report["images"]["checked"] == len(images)
    assert not report["images"]["gaps"]


def test_the_cache_saves_every_round_trip_on_a_second_run(kaudit: Kaudit, registry: RunningRegistry,
                                                          tmp_path: Path) -> None:
    trusted = generate_key()
    key = write_public_key(trusted, tmp_path / "cosign.pub")
    images = {}
    for index in range(5):
        digest = push_image(registry, f"team/app{index}", "1.0")
        sign(registry, f"team/app{index}", digest, trusted)
        images[f"c{index}"] = registry.reference(f"team/app{index}", "1.0")
    path = manifest(tmp_path, images)
    first = verify(kaudit, path, registry, key, tmp_path).json()["images"]
    second = verify(kaudit, path, registry, key, tmp_path).json()["images"]
    assert first["roundTrips"] >= 15 and first["fromCache"] == 0
    assert second["roundTrips"] == 0 and second["fromCache"] == 5
    no_cache = verify(kaudit, path, registry, key, tmp_path, "--image-cache-ttl", "0").json()["images"]
    assert no_cache["roundTrips"] == first["roundTrips"]


def test_token_auth_with_credentials_for_that_registry_only(kaudit: Kaudit, tmp_path: Path) -> None:
    trusted = generate_key()
    key = write_public_key(trusted, tmp_path / "cosign.pub")
    with RunningRegistry(tmp_path / "a", token_auth=True) as private, RunningRegistry(
            tmp_path / "b", token_auth=True) as foreign:
        digest = push_image(private, "team/app", "1.0")
        sign(private, "team/app", digest, trusted)
        push_image(foreign, "team/other", "1.0")
        auth = base64.b64encode(f"{private.username}:{private.password}".encode()).decode()
        docker_config = tmp_path / "config.json"
        docker_config.write_text(json.dumps({"auths": {private.host: {"auth": auth}}}))
        images = {"app": private.reference("team/app", "1.0"), "other": foreign.reference("team/other", "1.0")}
        seeded = len(foreign.token_server.requests)  # the test's own pushes, with the foreign registry's user
        bundle = tmp_path / "cas.pem"  # each test registry has its own CA: one bundle trusts both
        bundle.write_bytes(Path(private.ca_file).read_bytes() + Path(foreign.ca_file).read_bytes())
        result = kaudit("scan", manifest(tmp_path, images), "--verify-images", "--cosign-key", key,
                        "--registry-ca", bundle, "--registry-config", docker_config, "--image-cache-ttl", "0",
                        "-f", "json", "--fail-on", "never")
        foreign_requests = foreign.token_server.requests[seeded:]
    report = result.json()
    assert signature_findings(result) == {}  # app verified through the token flow
    # the foreign registry needed credentials kaudit does not hold for it: a gap, never a pass
    assert [g["image"] for g in report["images"]["gaps"]] == [images["other"]]
    assert result.code == 2 and report["summary"]["verdict"] == "incomplete"
    assert foreign_requests and all(r.user is None for r in foreign_requests)  # no credentials went there
    assert "token request refused" in report["images"]["gaps"][0]["message"]


def test_registry_down_is_a_gap_not_a_pass(kaudit: Kaudit, tmp_path: Path) -> None:
    trusted = generate_key()
    key = write_public_key(trusted, tmp_path / "cosign.pub")
    with RunningRegistry(tmp_path / "r") as registry:
        image = registry.reference("team/app", "1.0")
        ca = registry.ca_file
    path = manifest(tmp_path, {"app": image})  # the registry has stopped
    result = kaudit("scan", path, "--verify-images", "--cosign-key", key, "--registry-ca", ca,
                    "--image-cache-ttl", "0")
    assert result.code == 2 and f"gap: image {image} could not be checked" in result.out
    assert "unreachable" in result.out
    allowed = kaudit("scan", path, "--verify-images", "--cosign-key", key, "--registry-ca", ca,
                     "--image-cache-ttl", "0", "--allow-gaps", "--fail-on", "never")
    assert allowed.code == 0


def test_resolve_digests_suggests_the_pin(kaudit: Kaudit, registry: RunningRegistry, tmp_path: Path) -> None:
    digest = push_image(registry, "team/app", "2.1")
    image = registry.reference("team/app", "2.1")
    result = kaudit("scan", manifest(tmp_path, {"app": image}), "--resolve-digests", "--registry-ca",
                    registry.ca_file, "--image-cache-ttl", "0", "-f", "json", "--fail-on", "never")
    report = result.json()
    assert report["images"]["resolved"] == [{"image": image, "digest": digest}]
    assert not report["images"]["signaturesChecked"]
    [pin] = [f["message"] for f in report["findings"] if f["rule"] == "image-not-pinned-by-digest"]
    assert f"pin it as {registry.host}/team/app@{digest}" in pin


def test_without_verify_images_no_network_and_the_report_says_so(kaudit: Kaudit, tmp_path: Path) -> None:
    path = manifest(tmp_path, {"app": "127.0.0.1:1/team/app:1.0"})  # nothing listens there
    result = kaudit("scan", path, "--fail-on", "never")
    assert result.code == 0 and "image signatures not checked" in result.out
    report = kaudit("scan", path, "--fail-on", "never", "-f", "json").json()
    assert report["images"]["signaturesChecked"] is False and report["images"]["roundTrips"] == 0


def test_verify_images_needs_a_key(kaudit: Kaudit, tmp_path: Path) -> None:
    result = kaudit("scan", manifest(tmp_path, {"app": "nginx:1.25"}), "--verify-images")
    assert result.code == 2 and "needs at least one trusted key" in result.err


def test_the_verifier_accepts_a_signature_made_by_the_real_cosign() -> None:
    key = TrustedKey("cosign.pub", (REAL / "cosign.pub").read_bytes()).load()
    payload = (REAL / "payload.json").read_bytes()
    signature = base64.b64decode((REAL / "signature.b64").read_text().strip())
    assert verify_signature(key, payload, signature)
    assert not verify_signature(key, payload.replace(b"busybox", b"busyboy"), signature)
    assert json.loads(payload)["critical"]["type"] == "cosign container image signature"


def test_plain_http_only_for_registries_listed_as_insecure(kaudit: Kaudit, tmp_path: Path) -> None:
    trusted = generate_key()
    key = write_public_key(trusted, tmp_path / "cosign.pub")
    with RunningRegistry(tmp_path / "r", tls=False) as registry:
        digest = push_image(registry, "team/app", "1.0")
        sign(registry, "team/app", digest, trusted)
        path = manifest(tmp_path, {"app": registry.reference("team/app", "1.0")})
        refused = kaudit("scan", path, "--verify-images", "--cosign-key", key, "--image-cache-ttl", "0",
                         "-f", "json", "--fail-on", "never")
        listed = kaudit("scan", path, "--verify-images", "--cosign-key", key, "--image-cache-ttl", "0",
                        "--insecure-registry", registry.host, "-f", "json", "--fail-on", "never")
    assert refused.code == 2 and refused.json()["images"]["gaps"]  # HTTPS to a plain-HTTP registry fails
    assert listed.code == 0 and not listed.json()["images"]["gaps"] and signature_findings(listed) == {}
