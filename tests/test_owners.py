"""Owned pods collapse onto their controller, and a cluster scan and a manifest scan of the same
objects give the same findings. The cluster is served over HTTPS by tests/k8s_api with what a real
one holds (tests/k8s_api/stored.py): defaulted objects, the ReplicaSets, Jobs and pods their
controllers create, admission's service account token in each pod, an injected sidecar."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from kaudit import owners
from kaudit.model import Finding, Origin, Report, Resource, ResourceRef
from kaudit.scan import ScanRequest, scan_cluster, scan_manifests
from kaudit.sources.cluster import ClusterRequest
from tests.k8s_api import FakeApiServer
from tests.k8s_api.stored import cluster_state, istio_sidecar

MANIFESTS = Path(__file__).parent / "data" / "owners_manifests.yaml"
SIDECAR = {"istio-proxy", "istio-init"}
GENERATED_KINDS = {"ReplicaSet", "Job"}  # objects only controllers create


def manifests() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(MANIFESTS.read_text()))


def scan(objects: Sequence[Mapping[str, Any]], tmp_path: Path, **knobs: Any) -> Report:
    with FakeApiServer(objects, **knobs) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        return scan_cluster(ScanRequest(targets=(), fail_on="never"),
                            ClusterRequest(kubeconfig=str(kubeconfig), context="test"))


def facts(report: Report) -> dict[str, Any]:
    """Every fact by fingerprint: each finding and each finding joined to it (kaudit/relations.py)."""
    found: dict[str, Any] = {}
    for finding in report.findings:
        found[finding.fingerprint] = finding
        found.update((joined.fingerprint, joined) for joined in finding.joined)
    return found


def identity(fact: Any) -> tuple[str, str | None, str]:
    return fact.resource.kind, fact.resource.namespace, fact.resource.name


def generated_names(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the pods, ReplicaSets and Jobs the controllers made (random, new at each rollout)."""
    return {o["metadata"]["name"] for o in objects
            if o["kind"] in GENERATED_KINDS or o["kind"] == "Pod" and o["metadata"].get("ownerReferences")}


def texts(report: Report) -> list[str]:
    """Everything a finding says about where it is."""
    said = []
    for finding in report.findings:
        said += [finding.message, finding.resource.name, finding.path_text, finding.key_path]
        said += [part for joined in finding.joined for part in (joined.message, joined.resource.name)]
    return said


def deployment(name: str, namespace: str, replicas: int, image: str = "registry.example.com/app:1.0"
               ) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def as_resources(objects: Iterable[Mapping[str, Any]]) -> list[Resource]:
    return [Resource(ResourceRef(o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")),
                     o, Origin(context="test")) for o in objects]


def test_what_the_api_server_adds_to_every_pod_is_no_difference_from_its_template() -> None:
    """Token volume and mounts, default account, host ports of a host-network pod, AppArmor
    annotations mirroring fields, a StatefulSet's claims, labels, tolerations, node: the pods and
    the Job collapse without being judged; only the pods Istio changed are, once for their owner."""
    plain = deployment("api", "shop", replicas=2)  # no volume of its own: only the token's
    served = as_resources(cluster_state([*manifests(), plain], inject={"web": istio_sidecar}))
    collapsed = owners.collapse(served)
    assert {(r.kind, r.name) for r in collapsed.resources if r.kind in ("Pod", *GENERATED_KINDS)} == {("Pod", "toolbox")}
    assert [(i.owner.name, i.resource.kind, i.origin) for i in collapsed.instances] == [("web", "Pod", "admission")]


def test_a_cluster_scan_and_a_manifest_scan_of_the_same_objects_give_the_same_fingerprints(tmp_path: Path) -> None:
    from_files = scan_manifests(ScanRequest(targets=(str(MANIFESTS),), fail_on="never"))
    served = cluster_state(manifests(), inject={"web": istio_sidecar})
    from_cluster = scan(served, tmp_path)
    files, cluster = facts(from_files), facts(from_cluster)
    declared = {identity(fact) for fact in files.values()}
    both = {fp: fact for fp, fact in cluster.items() if identity(fact) in declared}
    assert len(files) > 60 and set(files) <= set(both)
    extra = [both[fp] for fp in set(both) - set(files)]
    # what the cluster has more: the sidecar Istio injected into the Deployment's pods, on the Deployment
    assert extra and {(identity(f), f.container) for f in extra} == {
        (("Deployment", "shop", "web"), container) for container in SIDECAR}
    # the rest of the cluster's findings are on objects the manifests do not declare: the cluster
    # itself and the default ServiceAccounts, never a pod, ReplicaSet or Job a controller made
    assert {fact.resource.kind for fp, fact in cluster.items() if fp not in both} == {"ClusterInfo", "ServiceAccount"}


def test_owned_pods_with_random_names_never_appear_in_findings_or_namespace_messages(tmp_path: Path) -> None:
    served = cluster_state(manifests(), inject={"web": istio_sidecar})
    report = scan(served, tmp_path)
    names = generated_names(served)
    assert len(names) >= 10  # 3 web pods and their ReplicaSet, 2 db-N, 2 node-agent, a Job and its pod
    said = texts(report)
    assert not [name for name in names if any(name in text for text in said)]
    kinds = {fact.resource.kind for fact in facts(report).values()}
    assert not kinds & GENERATED_KINDS
    assert {f.resource.name for f in facts(report).values() if f.resource.kind == "Pod"} == {"toolbox"}  # bare


def test_ten_replicas_of_one_deployment_are_one_workload(tmp_path: Path) -> None:
    served = cluster_state([deployment("docker-builder", "default", replicas=10)])
    report = scan(served, tmp_path)
    assert len([o for o in served if o["kind"] == "Pod"]) == 10
    [policy] = [f for f in facts(report).values() if f.rule == "namespace-without-network-policy"]
    assert policy.message.startswith('Namespace "default" runs 1 workload(s) (such as Deployment/default/docker-builder)')
    [default] = [f for f in facts(report).values() if f.rule == "default-namespace"]
    assert identity(default) == ("Deployment", "default", "docker-builder")


def test_workload_isolation_findings_count_the_controllers(tmp_path: Path) -> None:
    objects = [namespace("shop"), *(deployment(f"app-{i}", "shop", replicas=4) for i in range(5))]
    served = cluster_state(objects)
    report = scan(served, tmp_path)
    assert len([o for o in served if o["kind"] == "Pod"]) == 20
    for direction in ("ingress", "egress"):
        isolation = [f for f in facts(report).values() if f.rule == f"workload-not-isolated-{direction}"]
        assert sorted(f.resource.name for f in isolation) == [f"app-{i}" for i in range(5)]
    [policy] = [f for f in facts(report).values() if f.rule == "namespace-without-network-policy"]
    assert 'runs 5 workload(s)' in policy.message


def sidecar_findings(report: Report) -> dict[str, Finding]:
    return {f.fingerprint: f for f in report.findings if f.container in SIDECAR}


def test_an_injected_sidecar_is_reported_once_on_the_deployment_with_the_same_fingerprint_after_a_rollout(
        tmp_path: Path) -> None:
    objects = [namespace("shop"), deployment("web", "shop", replicas=4)]
    first = cluster_state(objects, seed="rollout-1", inject={"web": istio_sidecar})
    second = cluster_state(objects, seed="rollout-2", inject={"web": istio_sidecar})
    assert generated_names(first).isdisjoint(generated_names(second))  # every pod and ReplicaSet renamed
    before, after = sidecar_findings(scan(first, tmp_path)), sidecar_findings(scan(second, tmp_path))
    assert before and set(before) == set(after)
    assert {identity(f) for f in before.values()} == {("Deployment", "shop", "web")}
    # once per fact, not once per replica: one finding per rule, container and field
    places = [(f.rule, f.container, f.path_text) for f in before.values()]
    assert len(places) == len(set(places))
    privileged_init = [f for f in before.values() if f.rule == "dangerous-capabilities"]
    assert {f.path_text for f in privileged_init} == {
        "spec.template.spec.initContainers[0].securityContext.capabilities.add[0]",
        "spec.template.spec.initContainers[0].securityContext.capabilities.add[1]"}
    assert all("injected into its running pods at admission" in f.message for f in before.values())


def test_pods_of_an_earlier_revision_still_running_are_reported_on_the_deployment(tmp_path: Path) -> None:
    """A rollout under way: the old ReplicaSet still runs pods of the old template (a `latest`
    image); what they add is said once, on the Deployment, and the old ReplicaSet scaled to zero
    afterwards reports nothing."""
    old = cluster_state([namespace("shop"), deployment("web", "shop", 2, "registry.example.com/app:latest")], "r1")
    new = cluster_state([namespace("shop"), deployment("web", "shop", 2, "registry.example.com/app:1.1")], "r2")
    running_old = [o for o in old if o["kind"] in ("ReplicaSet", "Pod")]
    report = scan(new + running_old, tmp_path)
    [latest] = [f for f in report.findings if f.rule == "latest-tag"]
    assert identity(latest) == ("Deployment", "shop", "web")
    assert latest.path_text == "spec.template.spec.containers[0].image"
    assert latest.message.endswith("(in its pods of an earlier revision of the template)")
    assert {identity(f) for f in report.findings if f.resource.kind not in ("Namespace", "ClusterInfo", "ServiceAccount")
            } == {("Deployment", "shop", "web")}

    scaled_down = copy.deepcopy([o for o in old if o["kind"] == "ReplicaSet"])
    scaled_down[0]["spec"]["replicas"] = 0
    after = scan(new + scaled_down, tmp_path)
    assert not [f for f in after.findings if f.rule == "latest-tag"]


def test_pods_whose_controller_is_not_in_the_scan_are_judged_as_themselves(tmp_path: Path) -> None:
    served = cluster_state([namespace("shop"), deployment("web", "shop", replicas=2)])
    # ReplicaSets unreadable: the pods' controller is not in the scan, so each pod is judged
    report = scan(served, tmp_path, forbidden={("replicasets", None)})
    pods = {o["metadata"]["name"] for o in served if o["kind"] == "Pod"}
    on_pods = {f.resource.name for f in report.findings if f.rule == "run-as-root"}
    assert on_pods == pods | {"web"}
    # an owner reference whose uid is not the object of that name (it was deleted and made again)
    replaced = copy.deepcopy(served)
    for obj in replaced:
        if obj["kind"] == "ReplicaSet":
            obj["metadata"]["uid"] = "another-object-of-the-same-name"
    report = scan(replaced, tmp_path)
    assert {f.resource.name for f in report.findings if f.rule == "run-as-root"} == pods | {"web"}
