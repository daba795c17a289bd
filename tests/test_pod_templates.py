"""Issue 12 §1: every pod spec is judged, wherever it sits (templates without containers, custom
resources with pod templates, several per object), cluster-scoped kinds ignore metadata.namespace,
and an object declared twice is warned about."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaudit.cli import main
from kaudit.workloads import MAX_DEPTH, MAX_POD_SPECS, pod_specs

from .conftest import every_fact

CORPUS = Path(__file__).parent / "data" / "crds"
EXPECTED: dict[str, Any] = yaml.safe_load((CORPUS / "expectations.yaml").read_text())

PARTIAL_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: partial
  namespace: team
spec:
  template:
    spec:
      hostNetwork: true
      hostPID: true
      volumes:
        - name: root
          hostPath:
            path: /
"""
SANDBOX_TEMPLATE = """\
apiVersion: extensions.agents.x-k8s.io/v1alpha1
kind: SandboxTemplate
metadata:
  name: python
  namespace: agents
spec:
  podTemplate:
    spec:
      hostNetwork: true
      containers:
        - name: runtime
          image: python:3.12
          securityContext:
            privileged: true
"""
NAMESPACE_WITH_NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: payments
  namespace: payments
  labels:
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/warn: restricted
"""


def run(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def scan_json(*paths: Path) -> dict[str, Any]:
    return json.loads(run("scan", *map(str, paths), "--fail-on", "never", "-f", "json"))


def facts(report: dict[str, Any]) -> set[str]:
    return {f"{f['rule']} at {f['path']}" for f in every_fact(report["findings"])}


def test_template_without_containers_is_judged(tmp_path: Path) -> None:
    """A kustomize patch / Helm partial: pod-level fields are facts even without a containers list."""
    (tmp_path / "d.yaml").write_text(PARTIAL_DEPLOYMENT)
    found = facts(scan_json(tmp_path / "d.yaml"))
    assert {"host-network at spec.template.spec.hostNetwork", "host-pid at spec.template.spec.hostPID",
            "host-path-volume at spec.template.spec.volumes[0].hostPath.path"} <= found
    # the same pod spec as a Pod gets the same pod-level findings
    pod = yaml.safe_load(PARTIAL_DEPLOYMENT)
    pod.update(kind="Pod", apiVersion="v1", spec=pod["spec"]["template"]["spec"])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pod))
    as_pod = {fact.replace("spec.", "spec.template.spec.", 1) for fact in facts(scan_json(tmp_path / "p.yaml"))}
    # the rules that judge the kind itself: a bare Pod has no controller, a Deployment is long-running
    assert as_pod - {"naked-pod at kind"} == found - {"missing-priority-class at spec.template.spec.priorityClassName"}
    assert "naked-pod at kind" in as_pod


def test_custom_resource_pod_template_is_judged(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SANDBOX_TEMPLATE)
    report = scan_json(tmp_path / "s.yaml")
    assert {"host-network at spec.podTemplate.spec.hostNetwork",
            "privileged-container at spec.podTemplate.spec.containers[0].securityContext.privileged"} <= facts(report)
    assert report["inputs"]["workloads"] == [{
        "resource": {"apiVersion": "extensions.agents.x-k8s.io/v1alpha1", "kind": "SandboxTemplate",
                     "namespace": "agents", "name": "python"},
        "foundBy": "kind", "podSpecPaths": ["spec.podTemplate.spec"]}]


def test_text_report_counts_custom_workloads(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SANDBOX_TEMPLATE)
    assert "1 custom resource judged as workload (see -f json)" in run("scan", str(tmp_path / "s.yaml"), "--fail-on", "never")


def test_cluster_scoped_kind_ignores_namespace(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NAMESPACE_WITH_NAMESPACE + """\
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admins, namespace: payments}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: ops, apiGroup: rbac.authorization.k8s.io}]
""")
    report = scan_json(tmp_path / "ns.yaml")
    privileged = [f for f in report["findings"] if f["rule"] == "namespace-pod-security-privileged"]
    assert [(f["resource"]["name"], f["resource"]["namespace"]) for f in privileged] == [("payments", None)]
    assert all(f["resource"]["namespace"] is None for f in report["findings"]
               if f["resource"]["kind"] == "ClusterRoleBinding")
    warnings = [w["message"] for w in report["inputs"]["warnings"]]
    assert sum("is cluster-scoped: metadata.namespace 'payments' is ignored" in w for w in warnings) == 2


def test_object_declared_twice_is_warned_and_both_judged(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PARTIAL_DEPLOYMENT)
    (tmp_path / "b.yaml").write_text(PARTIAL_DEPLOYMENT.replace("hostPID: true", "hostPID: false"))
    report = scan_json(tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert [(w["file"], w["line"], w["message"]) for w in report["inputs"]["warnings"]] == [
        (str(tmp_path / "b.yaml"), 1, f"Deployment/team/partial is declared twice, here and at {tmp_path / 'a.yaml'}:1:"
         " what the cluster gets depends on the order they are applied; both are judged")]
    host_network = [f["location"]["file"] for f in report["findings"] if f["rule"] == "host-network"]
    assert sorted(host_network) == [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
    assert len({f["fingerprint"] for f in report["findings"]}) == len(report["findings"])


def test_generated_names_are_not_duplicates(tmp_path: Path) -> None:
    job = "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: run-}\nspec: {template: {spec: {}}}\n"
    (tmp_path / "a.yaml").write_text(job + "---\n" + job)
    assert scan_json(tmp_path / "a.yaml")["inputs"]["warnings"] == []


@pytest.fixture(scope="module")
def corpus_report() -> dict[str, Any]:
    return scan_json(CORPUS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_verdicts(name: str, corpus_report: dict[str, Any]) -> None:
    expected = EXPECTED[name]
    file = str(CORPUS / name)
    findings = [f for f in corpus_report["findings"] if f["location"]["file"] == file]
    listed = {(w["resource"]["kind"], w["resource"]["name"]): w for w in corpus_report["inputs"]["workloads"]}
    body = yaml.safe_load((CORPUS / name).read_text())
    entry = listed.get((body["kind"], body["metadata"].get("name") or body["metadata"].get("generateName")))
    if not expected["podSpecPaths"]:
        assert entry is None
        assert not [f for f in findings if f["path"].startswith("spec")], findings
        return
    assert entry is not None and entry["podSpecPaths"] == expected["podSpecPaths"]
    assert entry["foundBy"] == expected.get("foundBy", "kind")
    assert set(expected["findings"]) <= facts({"findings": findings})
    # every finding of a workload points into one of its pod templates (or at the object itself)
    templates = tuple(path.removesuffix("spec") for path in expected["podSpecPaths"])
    assert all(f["path"].startswith(templates) or f["path"].startswith("metadata")
               for f in findings), [f["path"] for f in findings]


def test_corpus_covers_fifteen_kinds_and_fingerprints_are_unique(corpus_report: dict[str, Any]) -> None:
    assert len([n for n, e in EXPECTED.items() if e["podSpecPaths"]]) >= 15
    prints = [f["fingerprint"] for f in corpus_report["findings"]]
    assert len(set(prints)) == len(prints)


def test_repeated_container_names_across_templates_have_distinct_fingerprints(
        corpus_report: dict[str, Any]) -> None:
    pytorch = [f for f in corpus_report["findings"]
               if f["resource"]["kind"] == "PyTorchJob" and f["rule"] == "run-as-root"]
    assert [f["container"] for f in pytorch] == ["pytorch", "pytorch"]
    assert len({f["fingerprint"] for f in pytorch}) == 2


def test_shape_search_is_bounded() -> None:
    pod = {"containers": [{"name": "c", "image": "x"}]}
    deep: dict[str, Any] = pod
    for _ in range(MAX_DEPTH + 2):
        deep = {"next": deep}
    assert pod_specs({"apiVersion": "example.com/v1", "kind": "Deep", "spec": deep}) == []
    many = {"apiVersion": "example.com/v1", "kind": "Many", "spec": {"items": [dict(pod) for _ in range(500)]}}
    assert len(pod_specs(many)) == MAX_POD_SPECS


@pytest.mark.parametrize("body", [
    {"apiVersion": "v1", "kind": "ConfigMap", "data": {"containers": "x"}},
    {"apiVersion": "example.com/v1", "kind": "Thing", "spec": {"containers": []}},
    {"apiVersion": "example.com/v1", "kind": "Thing", "spec": {"containers": ["a", "b"]}},
    {"apiVersion": "example.com/v1", "kind": "Thing", "status": {"containers": [{"name": "a"}]}},
])
def test_not_pods_by_shape(body: dict[str, Any]) -> None:
    assert pod_specs(body) == []
