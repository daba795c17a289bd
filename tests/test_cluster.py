"""Live-cluster scans: the real kubernetes client against an HTTPS Kubernetes API on 127.0.0.1."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from kaudit.scan import ScanRequest, scan_cluster, scan_manifests
from kaudit.sources.cluster import ClusterRequest
from tests.k8s_api import FakeApiServer, make_unrelated_ca

from .conftest import CliResult

Kaudit = Callable[..., CliResult]
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0"}]}}


def deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "dep-1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}


def replica_set() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d9f", "namespace": "shop", "uid": "rs-1",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": "dep-1", "controller": True}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}


def pod(name: str, containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec = {"containers": containers or [{"name": "web", "image": "registry.example.com/web:1.0"}]}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9f",
                                              "uid": "rs-1", "controller": True}]},
            "spec": spec}


SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "db", "namespace": "shop", "annotations": {
              "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"c2VjcmV0"}}'}},
          "data": {"password": "c2VjcmV0"}}
NAMESPACES = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("shop", "team-b")]
SIDECAR = {"name": "mesh-proxy", "image": "registry.example.com/proxy:2.0", "securityContext": {"privileged": True}}


def objects() -> list[dict[str, Any]]:
    return [*NAMESPACES, deployment(), replica_set(), pod("web-5d9f-a"), pod("web-5d9f-b"),
            pod("web-5d9f-c", [{"name": "web", "image": "registry.example.com/web:1.0"}, SIDECAR]), SECRET]


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer(objects()) as server:
        yield server


def scan(api: FakeApiServer, tmp_path: Path, **request: Any) -> Any:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    cluster = ClusterRequest(kubeconfig=str(kubeconfig), context="test", **request)
    return scan_cluster(ScanRequest(targets=(), fail_on="high", allow_gaps=False), cluster)


def test_findings_go_to_the_controller_not_its_replicas(api: FakeApiServer, tmp_path: Path) -> None:
    report = scan(api, tmp_path)
    assert report.complete and report.coverage.version == "v1.29.4"
    # the Deployment is judged; its identical replicas are not; what the pod whose sidecar was
    # injected adds (the sidecar) is reported on the Deployment, where the fix goes
    assert {f.resource.kind for f in report.findings} == {"Deployment", "Namespace", "ClusterInfo"}
    run_as_root = {(f.resource.describe(), f.container) for f in report.findings if f.rule == "run-as-root"}
    assert run_as_root == {("Deployment/shop/web", "web"), ("Deployment/shop/web", "mesh-proxy")}
    [sidecar] = [f for f in report.findings if f.rule == "privileged-container"]
    assert (sidecar.container, sidecar.path_text) == ("mesh-proxy", "spec.template.spec.containers[1].securityContext.privileged")
    assert "injected into its running pods at admission" in sidecar.message
    finding = next(f for f in report.findings if f.resource.kind == "Deployment")
    assert finding.location.context == "test" and finding.location.server == api.url and finding.location.file is None


def test_fingerprints_match_a_manifest_scan_of_the_same_object(api: FakeApiServer, tmp_path: Path) -> None:
    import yaml

    (tmp_path / "web.yaml").write_text(yaml.safe_dump(deployment()))
    from_files = scan_manifests(ScanRequest(targets=(str(tmp_path / "web.yaml"),)))
    from_cluster = scan(api, tmp_path)
    files = {f.fingerprint for f in from_files.findings if f.resource.kind == "Deployment"}
    cluster = {f.fingerprint: f for f in from_cluster.findings if f.resource.kind == "Deployment"}
    assert files and files <= set(cluster)
    # the rest is the sidecar injected into one of its pods, which the manifest does not have
    assert {cluster[extra].container for extra in set(cluster) - files} == {"mesh-proxy"}


def test_secrets_are_read_as_metadata_only(api: FakeApiServer, tmp_path: Path) -> None:
    report = scan(api, tmp_path)
    secret_requests = [r for r in api.requests if r.path.endswith("/secrets")]
    assert secret_requests and all("PartialObjectMetadataList" in (r.accept or "") for r in secret_requests)
    from kaudit.writers.json_report import to_dict

    dumped = json.dumps(to_dict(report))
    assert "c2VjcmV0" not in dumped and "last-applied-configuration" not in dumped
    assert all(r.method == "GET" for r in api.requests)  # a scan never writes


def test_managed_fields_are_stripped_and_pagination_is_followed(tmp_path: Path) -> None:
    many = [pod(f"web-5d9f-{i:02d}") for i in range(7)]
    with FakeApiServer([*NAMESPACES, deployment(), replica_set(), *many]) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        from kaudit.sources.cluster import load_cluster

        scanned = load_cluster(ClusterRequest(kubeconfig=str(kubeconfig), context="test", page_size=2))
        pod_pages = [r for r in api.requests if r.path == "/api/v1/pods"]
        assert len(pod_pages) == 4 and any("continue" in r.query for r in pod_pages)
    pods = [r for r in scanned.resources if r.kind == "Pod"]
    assert len(pods) == 7  # every page was followed
    assert all("managedFields" not in r.body["metadata"] for r in scanned.resources)  # the server sent them
    assert all(r.body["apiVersion"] and r.body["kind"] for r in scanned.resources)  # list items lack them


def test_forbidden_reads_are_coverage_gaps_not_crashes(tmp_path: Path) -> None:
    with FakeApiServer(objects(), forbidden={("rolebindings", None), ("secrets", "team-b"),
                                             ("secrets", "")}) as api:
        report = scan(api, tmp_path)
    gaps = {(g.resource, g.namespace, g.reason) for g in report.coverage.gaps}
    # forbidden everywhere: after the cluster-wide list, each namespace is tried, and each is a gap
    assert {("rolebindings.rbac.authorization.k8s.io", ns, "forbidden") for ns in ("shop", "team-b")} <= gaps
    assert ("secrets", "team-b", "forbidden") in gaps  # cluster-wide was forbidden: read per namespace
    assert ("secrets", "shop", "forbidden") not in gaps
    not_evaluated = dict(report.coverage.rules_not_evaluated)
    partial = dict(report.coverage.rules_partially_evaluated)
    # binding-to-everyone judges bindings: what it found on the ClusterRoleBindings read stands. A role
    # rule's grant needs every binding to say who holds it (or that nobody does): not evaluated.
    assert "binding-to-everyone" in partial and "workload-with-dangerous-permissions" in not_evaluated
    assert "rbac-secrets-read" in not_evaluated
    assert "run-as-root" not in not_evaluated and "run-as-root" not in partial
    assert not report.complete  # gaps make the scan incomplete unless allowed


def test_retries_then_gaps_for_flaky_slow_and_dropped_reads(tmp_path: Path) -> None:
    with FakeApiServer(objects(), flaky={"pods": 2, "services": 10}, slow={"nodes": 3.0},
                       drop_connection={"configmaps"}) as api:
        report = scan(api, tmp_path, timeout=0.5)
        assert len([r for r in api.requests if r.path == "/api/v1/pods"]) == 3  # two 500s, then success
    gaps = {g.resource: g for g in report.coverage.gaps}
    assert "pods" not in gaps and gaps["services"].reason == "failed" and gaps["nodes"].reason == "failed"


def test_an_expired_continue_token_falls_back_to_one_full_list(tmp_path: Path) -> None:
    many = [pod(f"web-5d9f-{i:02d}") for i in range(5)]
    with FakeApiServer([*NAMESPACES, *many], expire_continue={"pods"}) as api:
        report = scan(api, tmp_path, page_size=2)
        pod_requests = [r.query for r in api.requests if r.path == "/api/v1/pods"]
    assert not [g for g in report.coverage.gaps if g.resource == "pods"]
    assert "continue" in pod_requests[1] and "limit" not in pod_requests[-1]  # 410, then one full list
    assert sum(1 for r in report.inputs.warnings) == 0 and report.inputs.documents >= 7


def test_cluster_facts_feed_cluster_rules(api: FakeApiServer, tmp_path: Path) -> None:
    report = scan(api, tmp_path)
    info = next(f for f in report.findings if f.resource.kind == "ClusterInfo")
    assert info.resource.name == "test"
    rules = {f.rule for f in report.findings if f.resource.kind == "ClusterInfo"}
    assert "unsupported-kubernetes-version" in rules and "no-admission-policy-engine" in rules


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_failures_are_one_clear_line_and_exit_2(kaudit: Kaudit, api: FakeApiServer,
                                                            tmp_path: Path) -> None:
    unreachable = api.kubeconfig(tmp_path / "down", server=f"https://127.0.0.1:{free_port()}")
    result = kaudit("scan", "--kubeconfig", unreachable, "--context", "test")
    assert result.code == 2 and "context test (server https://127.0.0.1:" in result.err
    assert "cannot reach the server" in result.err and result.err.count("\n") == 1
    wrong_ca = api.kubeconfig(tmp_path / "ca", ca=make_unrelated_ca(tmp_path / "other-ca.pem"))
    result = kaudit("scan", "--kubeconfig", wrong_ca, "--context", "test")
    assert result.code == 2 and "TLS verification failed" in result.err
    bad_token = api.kubeconfig(tmp_path / "token", token="wrong")
    result = kaudit("scan", "--kubeconfig", bad_token, "--context", "test")
    assert result.code == 2 and "credentials rejected (401)" in result.err
    (tmp_path / "broken").write_text("apiVersion: v1\nclusters: [\n")
    result = kaudit("scan", "--kubeconfig", tmp_path / "broken", "--context", "test")
    assert result.code == 2 and "kubeconfig" in result.err and "Traceback" not in result.err


def test_cli_gaps_exit_2_unless_allowed_and_json_reports_them(kaudit: Kaudit, tmp_path: Path) -> None:
    with FakeApiServer(objects(), forbidden={("rolebindings", None)}) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        strict = kaudit("scan", "--kubeconfig", kubeconfig, "--context", "test", "-f", "json")
        assert strict.code == 2
        report = strict.json()
        assert report["scanned"]["source"] == "cluster"
        assert report["scanned"]["cluster"]["gaps"][0]["reason"] == "forbidden"
        assert report["summary"]["verdict"] == "incomplete"
        allowed = kaudit("scan", "--kubeconfig", kubeconfig, "--context", "test", "--allow-gaps")
        assert allowed.code == 1 and "gap: could not read rolebindings" in allowed.out
        assert "not evaluated: workload-with-dangerous-permissions" in allowed.out
        assert "partially evaluated: binding-to-everyone" in allowed.out
        assert "not evaluated: rbac-secrets-read" in allowed.out


def test_namespaces_and_exclusions(api: FakeApiServer, tmp_path: Path) -> None:
    only = scan(api, tmp_path, namespaces=("team-b",))
    assert all(f.resource.namespace in (None, "team-b") for f in only.findings)
    excluded = scan(api, tmp_path, exclude_namespaces=("shop",))
    assert not [f for f in excluded.findings if f.resource.namespace == "shop"]


def test_all_contexts_are_scanned_and_reported_separately(kaudit: Kaudit, tmp_path: Path) -> None:
    with FakeApiServer(objects()) as prod, FakeApiServer(objects(), version="v1.37.1") as staging:
        kubeconfig = tmp_path / "kubeconfig"
        prod.kubeconfig(kubeconfig, context="prod")
        staging.kubeconfig(kubeconfig, context="staging")
        result = kaudit("scan", "--kubeconfig", kubeconfig, "--all-contexts", "-f", "json", "-o",
                        tmp_path / "report.json", "-f", "text")
    assert result.code == 1
    assert "== context prod ==" in result.out and "== context staging ==" in result.out
    versions = {json.loads((tmp_path / f"report.{c}.json").read_text())["scanned"]["cluster"]["version"]
                for c in ("prod", "staging")}
    assert versions == {"v1.29.4", "v1.37.1"}


ADMISSION_TYPES = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations", "validatingadmissionpolicies")
KYVERNO = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "kyverno-resource-validating-webhook-cfg"},
           "webhooks": [{"name": "validate.kyverno.svc-fail"}]}


def control(report: Any, framework: str, control_id: str) -> Any:
    result = next(f for f in report.frameworks if f.id == framework)
    return next(c for c in result.controls if c.id == control_id)


def test_a_rule_not_evaluated_does_not_report(tmp_path: Path) -> None:
    """The webhook and policy types are forbidden: whether an engine is installed is unknown, so the
    absence rule says nothing (and its control does not pass), though Kyverno is there."""
    with FakeApiServer([*objects(), KYVERNO], forbidden={(p, None) for p in ADMISSION_TYPES}) as api:
        report = scan(api, tmp_path)
    assert "no-admission-policy-engine" in dict(report.coverage.rules_not_evaluated)
    assert not [f for f in report.findings if f.rule == "no-admission-policy-engine"]
    assert control(report, "cis", "5.2.1").status != "pass"
    with FakeApiServer([*objects(), KYVERNO]) as api:  # readable: the engine is seen, the rule is silent
        readable = scan(api, tmp_path)
    assert not readable.coverage.rules_not_evaluated and control(readable, "cis", "5.2.1").status == "pass"


def test_absence_rules_are_not_evaluated_without_namespaces(tmp_path: Path) -> None:
    """Pod Security Admission labels on namespaces count as an engine: unread namespaces, no verdict."""
    with FakeApiServer(objects(), forbidden={("namespaces", None)}) as api:
        report = scan(api, tmp_path)
    assert "no-admission-policy-engine" in dict(report.coverage.rules_not_evaluated)
    assert not [f for f in report.findings if f.rule == "no-admission-policy-engine"]


def test_a_per_object_rule_with_a_gap_is_partially_evaluated(tmp_path: Path) -> None:
    """Pods of team-b unreadable: what run-as-root found in shop is still true, and it is kept."""
    with FakeApiServer(objects(), forbidden={("pods", ""), ("pods", "team-b")}) as api:
        report = scan(api, tmp_path)
    partial = dict(report.coverage.rules_partially_evaluated)
    assert "run-as-root" in partial and "could not read pods in namespace team-b" in partial["run-as-root"]
    assert "run-as-root" not in dict(report.coverage.rules_not_evaluated)
    assert {(f.resource.describe(), f.container) for f in report.findings if f.rule == "run-as-root"} == {
        ("Deployment/shop/web", "web"), ("Deployment/shop/web", "mesh-proxy")}
    from kaudit.writers.json_report import to_dict

    cluster = to_dict(report)["scanned"]["cluster"]
    assert {"rule": "run-as-root", "why": partial["run-as-root"]} in cluster["rulesPartiallyEvaluated"]
