"""Attack paths (issue 17) from a live cluster: the test estate (tests/data/attack-paths) applied to
the test API server, as kube-apiserver, its controllers, the scheduler and the kubelets leave it
(tests/k8s_api/stored.py), scanned through the real `kubernetes` client. The inventory a cluster
scan builds must hold what a manifest scan of the same files holds, with the fields the graph
reads, so the same paths come out; what a cluster adds by itself (system namespaces, default
ServiceAccounts, bootstrap RBAC, controllers' ReplicaSets and pods) is named here, one by one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from kaudit.attack import analyse
from kaudit.checks.attack import READS
from kaudit.inventory import Inventory
from kaudit.kubeadm import components
from kaudit.model import Resource
from kaudit.owners import collapse
from kaudit.scan import ScanRequest, scan_cluster
from kaudit.sources.cluster import ClusterRequest, ClusterScan, load_cluster
from kaudit.sources.manifests import load_manifests
from kaudit.static_pods import is_static_pod
from tests.k8s_api import FakeApiServer
from tests.k8s_api.server import ResourceType
from tests.k8s_api.stored import SYSTEM_NAMESPACES, cluster_state

ESTATE = Path(__file__).parent / "data" / "attack-paths"
RULE = "attack-path-to-cluster-admin"
# The estate's static pod: the kubelet of cp-1 runs it from /etc/kubernetes/manifests; the API shows
# its mirror pod, owned by Node cp-1.
STATIC_PODS = {"kube-system/kube-apiserver-cp-1": "cp-1"}
# Every kind the attack graph reads that the estate has.
KINDS = ("Namespace", "Node", "Service", "Ingress", "ServiceAccount", "Secret", "Pod", "Deployment", "DaemonSet",
         "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
SA_NAME = "kubernetes.io/service-account.name"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
# What a kubelet labels its own Node with (kubelet_node_status.go): the only labels a manifest lacks.
KUBELET_LABELS = {"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
                  "beta.kubernetes.io/arch"}
APISERVER_FLAGS = ("authorization-mode", "enable-admission-plugins", "disable-admission-plugins",
                   "service-account-issuer", "api-audiences")
Key = tuple[str, Any, str]

# Gateway API routes beside the estate, to two ClusterIP Services with paths behind them: HTTPRoute in
# v1 (the preferred version), TCPRoute served only in v1alpha2.
GATEWAY = "gateway.networking.k8s.io"
ROUTES = [
    {"apiVersion": f"{GATEWAY}/v1", "kind": "Gateway", "metadata": {"name": "public", "namespace": "web"},
     "spec": {"gatewayClassName": "external", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}},
    {"apiVersion": f"{GATEWAY}/v1", "kind": "HTTPRoute", "metadata": {"name": "dashboard", "namespace": "tools"},
     "spec": {"parentRefs": [{"name": "public", "namespace": "web"}],
              "rules": [{"backendRefs": [{"name": "dashboard", "port": 80}]}]}},
    {"apiVersion": f"{GATEWAY}/v1alpha2", "kind": "TCPRoute", "metadata": {"name": "wiki", "namespace": "docs"},
     "spec": {"parentRefs": [{"name": "public", "namespace": "web"}],
              "rules": [{"backendRefs": [{"name": "wiki", "port": 80}]}]}},
]
# The same CRDs also serve HTTPRoute and Gateway in v1beta1, as Gateway API's standard channel does.
GATEWAY_TYPES = [ResourceType(GATEWAY, "v1beta1", "HTTPRoute", "httproutes", True),
                 ResourceType(GATEWAY, "v1beta1", "Gateway", "gateways", True),
                 ResourceType(GATEWAY, "v1", "GRPCRoute", "grpcroutes", True)]


def estate_manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(ESTATE.glob("[0-9]*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return documents


def manifest_inventory(extra: list[dict[str, Any]] | None = None, tmp_path: Path | None = None) -> Inventory:
    targets = [str(ESTATE)]
    if extra:
        assert tmp_path is not None
        (tmp_path / "routes.yaml").write_text(yaml.safe_dump_all(extra))
        targets.append(str(tmp_path / "routes.yaml"))
    return Inventory(load_manifests(targets).resources)


def cluster_scan(api: FakeApiServer, tmp_path: Path) -> tuple[ClusterScan, Inventory]:
    """What `kaudit scan --context` builds: the lists read, pods folded into their controllers."""
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    scanned = load_cluster(ClusterRequest(kubeconfig=str(kubeconfig), context="test"))
    return scanned, Inventory(collapse(scanned.resources).resources)


def served(extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return cluster_state([*estate_manifests(), *(extra or [])], static_pods=STATIC_PODS, bootstrap=True)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClusterScan, Inventory, FakeApiServer]]:
    with FakeApiServer(served()) as api:
        scan, inventory = cluster_scan(api, tmp_path_factory.mktemp("estate"))
        yield scan, inventory, api


def keys(inventory: Inventory, kind: str) -> set[Key]:
    return {(r.kind, r.namespace, r.name) for r in inventory.of_kind(kind)}


def one(inventory: Inventory, kind: str, namespace: str | None, name: str) -> Resource:
    [found] = [r for r in inventory.of_kind(kind) if (r.namespace, r.name) == (namespace, name)]
    return found


def cluster_additions(files: Inventory) -> set[Key]:
    """What a cluster holds that nobody applied: the system namespaces, a `default` ServiceAccount
    in every namespace (the ServiceAccount controller), the bootstrap RBAC (cluster-admin for
    system:masters, system:basic-user for system:authenticated)."""
    namespaces = {r.name for r in files.of_kind("Namespace")} | set(SYSTEM_NAMESPACES)
    declared = keys(files, "ServiceAccount")
    added: set[Key] = {("Namespace", None, name) for name in SYSTEM_NAMESPACES}
    added |= {("ServiceAccount", ns, "default") for ns in namespaces} - declared
    added |= {(kind, None, name) for kind in ("ClusterRole", "ClusterRoleBinding")
              for name in ("cluster-admin", "system:basic-user")}
    return added


def test_a_cluster_scan_reads_every_kind_the_graph_needs(scanned: Any) -> None:
    scan, _, api = scanned
    assert scan.gaps == [] and scan.warnings == []
    served_kinds = {o["kind"] for o in served()}
    # every kind the attack-path template reads that this cluster serves objects of was listed
    assert READS & served_kinds <= scan.kinds_read
    assert {"Node", "Service", "Ingress", "ServiceAccount", "Secret", "Namespace", "Pod", "Deployment", "DaemonSet",
            "ReplicaSet", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} <= scan.kinds_read
    # Secrets: only the token ones, metadata only; their data (the token controller wrote it) never asked for
    secret_requests = [r for r in api.requests if r.path.endswith("/secrets")]
    assert secret_requests and all(r.field_selector == "type=kubernetes.io/service-account-token" and
                                   "PartialObjectMetadataList" in (r.accept or "") for r in secret_requests)
    assert "fake-token" not in json.dumps([r.body for r in scan.resources])
    stored_secret = next(o for o in served() if o["kind"] == "Secret")
    assert stored_secret["data"]["token"]  # the server holds a token: the scan did not read it


def test_the_cluster_holds_the_estate_s_objects_and_only_what_a_cluster_adds(scanned: Any) -> None:
    _, inventory, _ = scanned
    files = manifest_inventory()
    added = cluster_additions(files)
    for kind in KINDS:
        from_files, from_cluster = keys(files, kind), keys(inventory, kind)
        assert from_cluster == from_files | {k for k in added if k[0] == kind}, kind
    # the controllers' ReplicaSets and pods were read and folded into their Deployments and DaemonSets
    scan, _, _ = scanned
    assert {r.kind for r in scan.resources} >= {"ReplicaSet", "Pod"}
    owned = [r for r in scan.resources if r.kind in ("Pod", "ReplicaSet") and r.body["metadata"].get("ownerReferences")
             and r.body["metadata"]["ownerReferences"][0]["kind"] != "Node"]
    assert owned and not {(r.kind, r.namespace, r.name) for r in owned} & keys(inventory, "Pod")


def test_the_fields_the_graph_reads_are_the_same(scanned: Any) -> None:
    _, inventory, _ = scanned
    files = manifest_inventory()
    # token Secrets: the type (a field selector fixed it: metadata-only items do not carry it) and
    # the account they hold a token of
    for secret in files.of_kind("Secret"):
        live = one(inventory, "Secret", secret.namespace, secret.name)
        assert live.body["type"] == secret.body["type"] == "kubernetes.io/service-account-token"
        assert live.body["metadata"]["annotations"][SA_NAME] == secret.body["metadata"]["annotations"][SA_NAME]
        assert "data" not in live.body
    # Nodes: the labels applied plus only the kubelet's own, the same taints
    for node in files.of_kind("Node"):
        live = one(inventory, "Node", None, node.name)
        labels, applied = live.body["metadata"]["labels"], node.body["metadata"].get("labels") or {}
        assert {k: labels[k] for k in applied} == applied and set(labels) - set(applied) <= KUBELET_LABELS
        assert (live.body.get("spec") or {}).get("taints") == (node.body.get("spec") or {}).get("taints")
    # Pod Security labels of the namespaces
    for namespace in files.of_kind("Namespace"):
        live = one(inventory, "Namespace", None, namespace.name)
        assert (live.body["metadata"].get("labels") or {}).get(PSA_ENFORCE) == \
            (namespace.body["metadata"].get("labels") or {}).get(PSA_ENFORCE)
    # the API server's flags, read from its mirror pod, which the cluster shows owned by its Node
    static = one(inventory, "Pod", "kube-system", "kube-apiserver-cp-1")
    assert is_static_pod(static) and static.body["spec"]["nodeName"] == "cp-1"
    [applied_server] = components(one(files, "Pod", "kube-system", "kube-apiserver-cp-1"))
    [live_server] = components(static)
    for flag in APISERVER_FLAGS:
        assert [item for item, _ in live_server.flags.items(flag)] == \
            [item for item, _ in applied_server.flags.items(flag)], flag
    # the bare pod on the edge node: scheduled there by its nodeSelector and toleration
    proxy = one(inventory, "Pod", "edge", "ingress-proxy")
    assert proxy.body["spec"]["nodeName"] == "edge-1"
    assert proxy.body["spec"]["nodeSelector"] == one(files, "Pod", "edge", "ingress-proxy").body["spec"]["nodeSelector"]


def test_gateway_api_routes_are_read_from_the_version_that_serves_them(tmp_path: Path) -> None:
    with FakeApiServer(served(ROUTES), resources=GATEWAY_TYPES) as api:
        scan, inventory = cluster_scan(api, tmp_path)
        listed = {r.path for r in api.requests if r.path.startswith(f"/apis/{GATEWAY}/") and r.path.count("/") == 4}
    assert scan.gaps == [] and {"Gateway", "HTTPRoute", "TCPRoute"} <= scan.kinds_read
    # each type once, from the preferred version when it serves it (v1), else the version that does
    assert listed == {f"/apis/{GATEWAY}/v1/gateways", f"/apis/{GATEWAY}/v1/httproutes",
                      f"/apis/{GATEWAY}/v1/grpcroutes", f"/apis/{GATEWAY}/v1alpha2/tcproutes"}
    files = manifest_inventory(ROUTES, tmp_path)
    for kind in ("Gateway", "HTTPRoute", "TCPRoute"):
        assert keys(inventory, kind) == keys(files, kind)
        for route in files.of_kind(kind):
            assert one(inventory, kind, route.namespace, route.name).body["spec"] == route.body["spec"]


@pytest.mark.parametrize("plural, namespace", [("nodes", None), ("services", None), ("ingresses", None),
                                               ("serviceaccounts", None), ("secrets", "monitoring"),
                                               ("rolebindings", None), ("httproutes", None)])
def test_an_unreadable_kind_of_the_graph_is_a_gap_and_the_rule_says_so(
        plural: str, namespace: str | None, tmp_path: Path) -> None:
    forbidden = {(plural, None)} if namespace is None else {(plural, ""), (plural, namespace)}
    with FakeApiServer(served(ROUTES), resources=GATEWAY_TYPES, forbidden=forbidden) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        report = scan_cluster(ScanRequest(targets=(), allow_gaps=True),
                              ClusterRequest(kubeconfig=str(kubeconfig), context="test"))
    assert {g.reason for g in report.coverage.gaps} == {"forbidden"}
    assert plural in {g.resource.split(".")[0] for g in report.coverage.gaps}
    not_evaluated = dict(report.coverage.rules_not_evaluated)
    partly = dict(report.coverage.rules_partially_evaluated)
    found = [f for f in report.findings if f.rule == RULE]
    if plural in ("nodes", "serviceaccounts"):
        # unread taints or automount settings would be taken at their defaults and could make a path
        # up: no verdict, not a clean one
        assert RULE in not_evaluated and plural in not_evaluated[RULE] and not found
    else:
        # an unread Secret, Service, binding or route can only hide a path: the paths found stand,
        # and the rule says it judged part of the cluster
        assert RULE not in not_evaluated and plural in partly[RULE]
        assert found


def test_the_served_cluster_places_pods_as_the_scheduler_would() -> None:
    """The placement the test server's objects have: taints keep pods off nodes, a toleration or a
    nodeSelector puts them on, a DaemonSet has a pod on each node its template fits, a pod that fits
    none stays Pending, a mirror pod has no token."""
    from tests.k8s_api.stored import fits

    tainted = {"metadata": {"name": "n", "labels": {"pool": "a"}},
               "spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"},
                                   {"key": "soft", "effect": "PreferNoSchedule"}]}}
    assert not fits({}, tainted)  # NoSchedule blocks; PreferNoSchedule alone would not
    assert fits({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "x"}]}, tainted)
    assert not fits({"tolerations": [{"key": "dedicated", "value": "y"}]}, tainted)
    assert not fits({"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]}, tainted)
    assert fits({"tolerations": [{"operator": "Exists"}]}, tainted)  # an empty key with Exists: every taint
    assert not fits({"tolerations": [{"operator": "Exists"}], "nodeSelector": {"pool": "b"}}, tainted)
    affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]},
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}]}}
    assert fits({"tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": affinity}}, tainted)
    state = served()
    pods = {o["metadata"]["name"]: o for o in state if o["kind"] == "Pod"}
    daemon_nodes = {p["spec"]["nodeName"] for name, p in pods.items() if name.startswith("gpu-plugin-")}
    assert daemon_nodes == {"gpu-1"}  # its nodeSelector picks gpu-1 alone, its toleration admits the taint
    assert all(p["spec"]["nodeName"] == "worker-1" for n, p in pods.items() if n.startswith("frontend-"))
    mirror = pods["kube-apiserver-cp-1"]
    assert "serviceAccountName" not in mirror["spec"] and not any(
        v["name"].startswith("kube-api-access-") for v in mirror["spec"].get("volumes", []))
    unschedulable = cluster_state([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x"},
                                    "spec": {"nodeSelector": {"pool": "none"}, "containers": [{"name": "c"}]}}])
    [pending] = [o for o in unschedulable if o["kind"] == "Pod"]
    assert pending["status"]["phase"] == "Pending" and "nodeName" not in pending["spec"]


def test_the_in_cluster_example_may_list_every_type_a_cluster_scan_reads() -> None:
    """examples/deploy grants `list` on exactly what kaudit reads: a type missing there would be a
    gap in every in-cluster scan (the attack-path rule not evaluated). Secrets are left out on
    purpose (see the example's header)."""
    from kaudit.sources.cluster import WANTED
    from tests.test_cluster_deploy import EXAMPLE, authorizer

    allowed = authorizer(EXAMPLE)
    assert [(g, p) for g, p in WANTED if (g, p) != ("", "secrets") and not allowed("list", g, p, None)] == []
    assert not allowed("list", "", "secrets", None)


def paths(inventory: Inventory) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    return sorted((p.source, p.target, [(e.kind, e.source, e.target) for e in p.steps])
                  for p in analyse(inventory).paths)


@pytest.mark.parametrize("extra", [[], ROUTES], ids=["estate", "estate-and-gateway-routes"])
def test_a_cluster_scan_gives_the_same_attack_paths(extra: list[dict[str, Any]], tmp_path: Path) -> None:
    files = paths(manifest_inventory(extra, tmp_path))
    with FakeApiServer(served(extra), resources=GATEWAY_TYPES) as api:
        _, inventory = cluster_scan(api, tmp_path)
    assert files  # the estate has paths: an empty comparison proves nothing
    assert all(any(p[0] == f"{r['kind']}/{r['metadata']['namespace']}/{r['metadata']['name']}" for p in files)
               for r in extra if r["kind"].endswith("Route"))  # each route is an entry point with a path
    assert paths(inventory) == files


def test_kaudit_paths_and_the_rule_agree_on_the_cluster_and_the_manifests(tmp_path: Path) -> None:
    """The whole user path: `kaudit scan --context` reports the paths as findings with the manifest
    scan's fingerprints (a baseline taken on manifests holds for the cluster), and the report's
    choke points are the same fixes."""
    from kaudit.scan import scan_manifests

    manifests = scan_manifests(ScanRequest(targets=(str(ESTATE),), select=(RULE,)))
    with FakeApiServer(served()) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        cluster = scan_cluster(ScanRequest(targets=(), select=(RULE,)),
                               ClusterRequest(kubeconfig=str(kubeconfig), context="test"))
    assert cluster.complete and not cluster.coverage.gaps

    def facts(report: Any) -> set[tuple[str, str]]:
        return {(f.fingerprint, f.message) for f in report.findings if f.rule == RULE}

    assert facts(cluster) == facts(manifests) and len(facts(cluster)) == 10
    assert [(c.edge.fix, c.cuts) for c in cluster.attack.choke_points] == \
        [(c.edge.fix, c.cuts) for c in manifests.attack.choke_points]
