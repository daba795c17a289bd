"""Secret data stays out of kaudit's process: it lists only the Secrets a rule needs (the
service-account-token ones, by field selector), as metadata only, and drops the last-applied
annotation (a client-side `kubectl apply` puts the whole Secret, data included, in it) while decoding."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kaudit.scan import ScanRequest, scan_cluster
from kaudit.sources.cluster import ClusterRequest, load_cluster
from kaudit.writers.json_report import to_dict
from tests.k8s_api import FakeApiServer

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SELECTOR = f"type={TOKEN_TYPE}"
OPAQUE_VALUE = "c2VjcmV0"  # base64 of "secret"
TOKEN_VALUE = "ZXlKaGJHY2lPaUpTVXpJMU5pSjkuZmFrZQ=="


def secret(name: str, namespace: str, kind: str, data: dict[str, str], **annotations: str) -> dict[str, Any]:
    applied = {"apiVersion": "v1", "kind": "Secret", "type": kind, "data": data,
               "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations)}}
    return {**applied, "metadata": {**applied["metadata"], "annotations": {
        **annotations, LAST_APPLIED: json.dumps(applied)}}}  # as client-side `kubectl apply` leaves it


OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("shop", "ci")
] + [
    secret("db", "shop", "Opaque", {"password": OPAQUE_VALUE}),
    secret("deployer-token", "ci", TOKEN_TYPE, {"token": TOKEN_VALUE},
           **{"kubernetes.io/service-account.name": "deployer"}),
]


def assert_asked_only_for_token_metadata(api: FakeApiServer) -> None:
    asked = [r for r in api.requests if r.path.endswith("/secrets")]
    assert asked, "no Secret list at all"
    for request in asked:
        assert request.field_selector == SELECTOR, request
        # every media range asks for metadata: no plain-JSON fallback that a server could answer with data
        assert all("as=PartialObjectMetadataList" in part for part in (request.accept or "").split(",")), request


def test_only_service_account_token_secrets_are_listed_as_metadata(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        scanned = load_cluster(ClusterRequest(kubeconfig=kubeconfig, context="test"))
        assert_asked_only_for_token_metadata(api)
    secrets = [r for r in scanned.resources if r.kind == "Secret"]
    assert [s.ref.describe() for s in secrets] == ["Secret/ci/deployer-token"]  # "db" never reached kaudit
    [token] = secrets
    # the metadata, minus the last-applied annotation and managedFields, and the type the selector fixed
    assert set(token.body) == {"apiVersion", "kind", "metadata", "type"} and token.body["type"] == TOKEN_TYPE
    assert token.body["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "deployer"}
    assert TOKEN_VALUE not in json.dumps([r.body for r in scanned.resources])


def test_the_selector_holds_on_the_per_namespace_fallback(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, forbidden={("secrets", ""), ("secrets", "shop")}) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        report = scan_cluster(ScanRequest(targets=()), ClusterRequest(kubeconfig=kubeconfig, context="test"))
        assert_asked_only_for_token_metadata(api)
        assert {r.path for r in api.requests if r.path.endswith("/secrets")} == {
            "/api/v1/secrets", "/api/v1/namespaces/shop/secrets", "/api/v1/namespaces/ci/secrets"}
    legacy = [f for f in report.findings if f.rule == "legacy-service-account-token-secret"]
    assert [f.resource.describe() for f in legacy] == ["Secret/ci/deployer-token"]
    dumped = json.dumps(to_dict(report))
    assert TOKEN_VALUE not in dumped and OPAQUE_VALUE not in dumped and LAST_APPLIED not in dumped
