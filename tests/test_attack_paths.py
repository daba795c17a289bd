"""Attack paths (issue 17): the engine against the test estate's answer key, step by step; every
near-miss absent; choke points equal to removing each edge and recounting; paths and fingerprints
that do not depend on input order or unrelated objects; the rule's findings with the gate, a
baseline and suppression."""
from __future__ import annotations

import functools
import os
import random
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from kaudit.attack import analyse
from kaudit.attack.model import AttackAnalysis, AttackGraph, Edge, Evidence, GraphNode, ResourceRef
from kaudit.attack.search import search
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, format_path
from kaudit.sources.manifests import load_manifests

from .conftest import CliResult

ESTATE = Path(__file__).parent / "data" / "attack-paths"
RULE = "attack-path-to-cluster-admin"


@functools.cache
def key() -> dict[str, Any]:
    with open(ESTATE / "expected.yaml", encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def estate_resources() -> list[Resource]:
    return load_manifests([str(ESTATE)]).resources


@functools.cache
def estate_analysis() -> AttackAnalysis:
    return analyse(Inventory(estate_resources()))


def described(evidence: Evidence) -> dict[str, Any]:
    location = evidence.location
    assert location.file is not None
    return {"file": os.path.relpath(location.file, ESTATE), "object": evidence.ref.describe(),
            "path": format_path(evidence.path), "line": location.line}


def as_key(step: Edge) -> dict[str, Any]:
    evidence = [described(e) for e in step.evidence]
    return {"edge": step.kind, "from": step.source, "to": step.target,
            "evidence": evidence if len(evidence) > 1 else evidence[0]}


def shown_edges(graph: AttackGraph) -> set[tuple[str, str, str]]:
    """Every edge as a step shows it: through hidden nodes (a role's rule, a hub, a pool of pods),
    joined to each edge leaving them, as search._display joins them."""
    leaving: dict[str, list[Edge]] = {}
    for edge in graph.edges:
        leaving.setdefault(edge.source, []).append(edge)
    shown = set()

    def follow(source: str, kind: str, node: str, seen: frozenset[str]) -> None:
        if not graph.nodes[node].hidden:
            shown.add((kind, source, node))
            return
        for after in leaving.get(node, ()):
            if after.target not in seen:
                follow(source, after.kind if kind == "holds" else kind, after.target, seen | {after.target})

    for edge in graph.edges:
        if not graph.nodes[edge.source].hidden:
            follow(edge.source, edge.kind, edge.target, frozenset({edge.target}))
    return shown


# --- the answer key ----------------------------------------------------------------------------

def test_every_path_of_the_estate_is_found_and_no_other() -> None:
    found = {(p.source, p.target) for p in estate_analysis().paths}
    wanted = {(p["entry"]["node"], p["target"]) for p in key()["paths"]}
    assert found == wanted


@pytest.mark.parametrize("expected", key()["paths"], ids=[p["id"] for p in key()["paths"]])
def test_each_path_step_by_step_with_its_evidence(expected: dict[str, Any]) -> None:
    analysis = estate_analysis()
    path = next(p for p in analysis.paths if (p.source, p.target) == (expected["entry"]["node"], expected["target"]))
    entry = analysis.node(path.source).entry
    assert entry is not None and described(entry) == expected["entry"]["evidence"]
    wanted = [{k: v for k, v in step.items() if k != "why"} for step in expected["steps"]]
    assert [as_key(step) for step in path.steps] == wanted


@pytest.mark.parametrize("miss", key()["near_misses"], ids=[m["id"] for m in key()["near_misses"]])
def test_each_near_miss_is_no_edge(miss: dict[str, Any]) -> None:
    absent = miss["absent"]
    graph = estate_analysis().graph
    assert (absent["edge"], absent["from"], absent["to"]) not in shown_edges(graph)
    # ...and nothing else joins the two either (a rule node of the role, say)
    assert not any(e.source.startswith(absent["from"]) and e.target == absent["to"] and e.kind == absent["edge"]
                   for e in graph.edges)


def test_the_near_misses_hold_for_the_right_reason() -> None:
    """Each near-miss's would-be edge exists once the fact that blocks it is taken away."""
    resources = estate_resources()

    def edited(kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> set[tuple[str, str, str]]:
        changed = []
        for resource in resources:
            if resource.kind == kind and resource.name == name:
                body = yaml.safe_load(yaml.safe_dump(dict(_plain(resource.body))))
                change(body)
                resource = Resource(resource.ref, body, resource.origin)
            changed.append(resource)
        return shown_edges(analyse(Inventory(changed)).graph)

    def pod(body: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = body["spec"]["template"]["spec"]
        return spec

    status = edited("Deployment", "status-page", lambda b: pod(b).pop("automountServiceAccountToken"))
    assert ("mounts-token", "Deployment/web/status-page", "ServiceAccount/web/status-reader") in status
    gpu = edited("Deployment", "frontend", lambda b: pod(b).update(tolerations=[{"operator": "Exists"}]))
    assert ("shares-node", "node-of:Deployment/web/frontend", "DaemonSet/kube-system/gpu-plugin") in gpu
    psa = edited("Namespace", "ci", lambda b: b["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce"))
    assert ("creates-pod-on-node", "Role/ci/pod-launcher", "node:any") in psa
    debug = edited("Deployment", "exporter-debug",
                   lambda b: pod(b)["containers"][0]["ports"][0].update(name="web"))
    assert ("exposes", "Service/monitoring/exporter-public", "Deployment/monitoring/exporter-debug") in debug


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_entry_points_that_lead_nowhere_have_no_path() -> None:
    analysis = estate_analysis()
    entries = {n.id for n in analysis.graph.nodes.values() if n.entry is not None}
    dead_ends = {"Pod/kube-system/kube-apiserver-cp-1", "Service/web/status", "Service/monitoring/exporter-public",
                 "Service/payments/fraud", "Service/team-a/build-ui", "Service/web/admin-lb"}
    assert dead_ends <= entries
    assert entries - dead_ends == {p.source for p in analysis.paths}


def test_a_path_through_another_entry_point_is_left_to_that_one() -> None:
    """Ingress/docs/wiki routes to Service/docs/wiki; were that Service a LoadBalancer, the path
    would be the Service's (the Ingress's would only add a step in front)."""
    resources = []
    for resource in estate_resources():
        if resource.kind == "Service" and resource.ref.describe() == "Service/docs/wiki":
            body = _plain(resource.body)
            body["spec"]["type"] = "LoadBalancer"
            resource = Resource(resource.ref, body, resource.origin)
        resources.append(resource)
    sources = {(p.source, p.target) for p in analyse(Inventory(resources)).paths}
    assert ("Service/docs/wiki", "crown:nodes-proxy") in sources
    assert ("Ingress/docs/wiki", "crown:nodes-proxy") not in sources


def test_paths_do_not_depend_on_input_order() -> None:
    resources = estate_resources()
    reference = [(p.source, p.target, p.key) for p in estate_analysis().paths]
    chokes = [(c.edge.fix, c.cuts) for c in estate_analysis().choke_points]
    for seed in range(3):
        shuffled = list(resources)
        random.Random(seed).shuffle(shuffled)
        analysis = analyse(Inventory(shuffled))
        assert sorted((p.source, p.target, p.key) for p in analysis.paths) == sorted(reference)
        assert [(c.edge.fix, c.cuts) for c in analysis.choke_points] == chokes


def test_from_any_adds_paths_from_every_workload_with_one() -> None:
    analysis = analyse(Inventory(estate_resources()), sources="any")
    sources = {p.source for p in analysis.paths}
    assert {p.source for p in estate_analysis().paths} <= sources
    assert "Deployment/ops/backup-agent" in sources  # not exposed, but its token reads kube-system's Secrets
    assert "Deployment/web/status-page" not in sources
    only = analyse(Inventory(estate_resources()), targets=["nodes-proxy"])
    assert {p.target for p in only.paths} == {"crown:nodes-proxy"}


# --- choke points ------------------------------------------------------------------------------

def reachable(graph: AttackGraph, start: str, goal: str, without: int) -> bool:
    leaving: dict[str, list[str]] = {}
    for k, edge in enumerate(graph.edges):
        if k != without:
            leaving.setdefault(edge.source, []).append(edge.target)
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for after in leaving.get(node, ()):
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return False


def recount(analysis: AttackAnalysis) -> dict[int, int]:
    """The definition: remove each fixable edge, count the (source, crown) pairs left with no path."""
    graph = analysis.graph
    cuts = {}
    for k, edge in enumerate(graph.edges):
        if edge.fix:
            lost = sum(not reachable(graph, p.source, p.target, k) for p in analysis.paths)
            if lost:
                cuts[k] = lost
    return cuts


def test_choke_points_equal_removing_each_edge_and_recounting() -> None:
    analysis = estate_analysis()
    position = {id(edge): k for k, edge in enumerate(analysis.graph.edges)}
    found = {position[id(c.edge)]: c.cuts for c in analysis.choke_points}
    assert found == recount(analysis) and found
    top = analysis.choke_points[0]
    assert top.cuts == max(found.values())
    assert len(top.paths) == top.cuts


def _graph(size: int, pairs: Iterable[tuple[int, int]], entries: Iterable[int]) -> AttackGraph:
    origin = Origin(file="x.yaml", line=1)
    resource = Resource(ResourceRef("v1", "Service", "s", "n"), {}, origin)
    nodes = {f"n{i}": GraphNode(f"n{i}", "workload", f"n{i}") for i in range(size)}
    for i in entries:
        nodes[f"n{i}"] = GraphNode(f"n{i}", "entry", f"n{i}", entry=Evidence(resource, ("spec",)))
    nodes["crown:cluster-admin"] = GraphNode("crown:cluster-admin", "crown", "cluster-admin")
    edges = [Edge("bound", f"n{a}", f"n{b}" if b < size else "crown:cluster-admin", (), fix=f"fix {a}-{b}-{k}")
             for k, (a, b) in enumerate(pairs) if a != b]
    return AttackGraph(nodes, edges)


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 9).flatmap(lambda size: st.tuples(
    st.just(size), st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size)), max_size=3 * size),
    st.sets(st.integers(0, size - 1), min_size=1, max_size=3))))
def test_dominator_choke_points_equal_recounting_on_any_graph(case: tuple[int, list[tuple[int, int]], set[int]]) -> None:
    size, pairs, entries = case
    analysis = search(_graph(size, pairs, entries), "any")
    position = {id(edge): k for k, edge in enumerate(analysis.graph.edges)}
    assert {position[id(c.edge)]: c.cuts for c in analysis.choke_points} == recount(analysis)
    for path in analysis.paths:  # shortest: no node twice, each step leads on
        nodes = [path.source, *(s.target for s in path.steps)]
        assert len(nodes) == len(set(nodes)) and nodes[-1] == path.target


# --- the rule ----------------------------------------------------------------------------------

def findings(result: CliResult, rule: str = RULE) -> list[dict[str, Any]]:
    return [f for f in result.json()["findings"] if f["rule"] == rule]


def test_the_rule_reports_each_path_at_its_entry_point(kaudit: Callable[..., CliResult]) -> None:
    result = kaudit("scan", str(ESTATE), "-f", "json", "--fail-on", "critical")
    assert result.code == 1
    found = findings(result)
    assert len(found) == len(key()["paths"])
    for expected in key()["paths"]:
        entry = expected["entry"]["evidence"]
        match = [f for f in found if f["location"]["line"] == entry["line"] and
                 Path(f["location"]["file"]).name == entry["file"] and expected["target"][6:] in f["message"]]
        assert len(match) == 1, expected["id"]
        assert match[0]["severity"] == "critical"


def copy_estate(tmp_path: Path) -> Path:
    target = tmp_path / "estate"
    shutil.copytree(ESTATE, target, ignore=shutil.ignore_patterns("expected.yaml"))
    return target


def test_fingerprints_follow_the_steps_not_lines_or_unrelated_objects(kaudit: Callable[..., CliResult],
                                                                        tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    before = {f["fingerprint"] for f in findings(kaudit("scan", str(estate), "-f", "json", "--fail-on", "never"))}
    web = estate / "20-web.yaml"
    web.write_text("# moved down\n\n" + web.read_text())
    (estate / "90-unrelated.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "other", "namespace": "web"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "nothing-here"}, "ports": [{"port": 80}]}}))
    after = {f["fingerprint"] for f in findings(kaudit("scan", str(estate), "-f", "json", "--fail-on", "never"))}
    assert after == before


def test_a_baseline_fails_exactly_when_a_path_is_added(kaudit: Callable[..., CliResult], tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    baseline = tmp_path / "baseline.json"
    assert kaudit("baseline", "create", str(estate), "-o", str(baseline)).code == 0
    same = kaudit("scan", str(estate), "--baseline", str(baseline), "--fail-on", "critical", "-f", "json")
    assert same.code == 0, same.out
    # the exposed dashboard's account bound to cluster-admin: one new path (web/frontend's node also
    # carries that token now, but its path through the log-shipper DaemonSet is as short and ranks first)
    (estate / "91-new-grant.yaml").write_text(yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "dashboard-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "dashboard", "namespace": "tools"}]}))
    added = kaudit("scan", str(estate), "--baseline", str(baseline), "--fail-on", "critical", "-f", "json")
    assert added.code == 1
    new = [f for f in findings(added) if not f.get("suppressed")]
    assert [(f["resource"]["kind"], f["resource"]["name"], f["message"].split(" steps")[0]) for f in new] == \
        [("Ingress", "dashboard", 'Ingress "dashboard" reaches cluster-admin in 5')]


def test_suppressing_a_step_does_not_hide_the_path_but_suppressing_the_path_does(
        kaudit: Callable[..., CliResult], tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    web = estate / "20-web.yaml"
    documents = list(yaml.safe_load_all(web.read_text()))
    for document in documents:
        if document and document["kind"] == "Deployment" and document["metadata"]["name"] == "frontend":
            document["metadata"].setdefault("annotations", {}).update({
                "kaudit.io/ignore": "privileged-container", "kaudit.io/ignore-reason": "needs the GPU driver"})
    web.write_text(yaml.safe_dump_all(documents))
    result = kaudit("scan", str(estate), "-f", "json", "--fail-on", "never")
    privileged = [f for f in result.json()["findings"] if f["rule"] == "privileged-container"
                  and f["resource"]["name"] == "frontend"]
    assert privileged and all(f["suppressed"] for f in privileged)
    from_frontend = [f for f in findings(result) if f["resource"]["name"] == "frontend"]
    assert len(from_frontend) == 3 and not any(f["suppressed"] for f in from_frontend)
    for document in documents:
        if document and document["kind"] == "Service" and document["metadata"]["name"] == "frontend":
            document["metadata"].setdefault("annotations", {}).update({
                "kaudit.io/ignore": RULE, "kaudit.io/ignore-reason": "accepted until the node pool split"})
    web.write_text(yaml.safe_dump_all(documents))
    result = kaudit("scan", str(estate), "-f", "json", "--fail-on", "never")
    from_frontend = [f for f in findings(result) if f["resource"]["name"] == "frontend"]
    assert len(from_frontend) == 3 and all(f["suppressed"] for f in from_frontend)


# --- kaudit paths ------------------------------------------------------------------------------

def test_the_readme_example_is_the_real_output(kaudit: Callable[..., CliResult],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).parent.parent
    monkeypatch.chdir(repo)
    result = kaudit("paths", "examples/manifests")
    assert result.code == 1
    readme = (repo / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- paths-output -->\n```text\n", 1)[1].split("```", 1)[0]
    assert block == result.out


def test_paths_json_is_the_graph_with_its_evidence(kaudit: Callable[..., CliResult], tmp_path: Path) -> None:
    out = tmp_path / "graph.json"
    result = kaudit("paths", str(ESTATE), "-f", "json", "-o", str(out), "--to", "cluster-admin")
    assert result.code == 1, result.err
    import json

    graph = json.loads(out.read_text())
    assert graph["schema"] == "kaudit-attack-graph/1" and graph["targets"] == ["cluster-admin"]
    assert {p["target"] for p in graph["paths"]} == {"crown:cluster-admin"}
    wanted = [p for p in key()["paths"] if p["target"] == "crown:cluster-admin"]
    assert len(graph["paths"]) == len(wanted)
    ids = {node["id"] for node in graph["nodes"]}
    for edge in graph["edges"]:
        assert edge["from"] in ids and edge["to"] in ids
        for evidence in edge["evidence"]:
            assert evidence["file"].endswith(".yaml") and evidence["line"] >= 1
    assert graph["chokePoints"][0]["cuts"] >= graph["chokePoints"][-1]["cuts"] >= 1
    assert graph["inputs"]["errors"] == []


def test_paths_exit_codes_and_usage(kaudit: Callable[..., CliResult], tmp_path: Path) -> None:
    harmless = tmp_path / "web.yaml"
    harmless.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "w"},
                                        "spec": {"type": "LoadBalancer", "selector": {"app": "w"}}}))
    none = kaudit("paths", str(harmless))
    assert none.code == 0 and none.out.startswith("No attack path")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kaudit("paths", str(empty)).code == 2  # nothing was seen: never a pass
    bad = kaudit("paths", str(ESTATE), "--to", "root")
    assert bad.code == 2 and "not a crown jewel" in bad.err
    both = kaudit("paths", str(ESTATE), "--context", "prod")
    assert both.code == 2 and "not both" in both.err


# --- the pieces: scheduling, grants, escapes, odd input ----------------------------------------

def _pod_spec(spec: dict[str, Any]) -> Any:
    from kaudit.workloads import pod_specs

    return pod_specs({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})[0]


def _node(name: str, labels: dict[str, str], taints: list[dict[str, Any]]) -> Resource:
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}}
    return Resource(ResourceRef("v1", "Node", name), body, Origin(file="n.yaml", line=1))


@pytest.mark.parametrize("spec, fits", [
    ({}, False),  # the NoSchedule taint
    ({"tolerations": [{"operator": "Exists"}]}, True),  # no key, Exists: every taint
    ({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "edge"}]}, True),
    ({"tolerations": [{"key": "dedicated", "value": "other"}]}, False),
    ({"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]}, False),  # effect differs
    ({"tolerations": [{"operator": "Equal", "value": "edge"}]}, False),  # Equal needs a key
    ({"tolerations": [{"operator": "Exists"}], "nodeSelector": {"zone": "b"}}, False),
    ({"tolerations": [{"operator": "Exists"}], "nodeName": "other"}, False),
    ({"tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]},
                              {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}]}}}}, True),
    ({"tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}}}, False),  # an empty term matches no node
    ({"tolerations": None, "nodeSelector": "zone=a", "affinity": [1]}, False),  # odd shapes: no crash
])
def test_scheduling_follows_the_scheduler_filters(spec: dict[str, Any], fits: bool) -> None:
    from kaudit.attack.scheduling import Constraints

    node = _node("edge-1", {"zone": "a", "cores": "16"}, [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"},
                                                         {"key": "soft", "effect": "PreferNoSchedule"}])
    assert Constraints(_pod_spec(spec)).fits(node) is fits


def test_without_node_objects_only_conflicting_constraints_keep_pods_apart() -> None:
    from kaudit.attack.scheduling import Constraints, shared_nodes

    pools = [Constraints(_pod_spec(s)) for s in ({"nodeSelector": {"zone": "a"}}, {"nodeSelector": {"zone": "b"}},
                                                 {}, {"nodeName": "n1"}, {"nodeName": "n2"})]
    shared = [{j for j, _ in row} for row in shared_nodes(pools, [])]
    assert shared[0] == {0, 2, 3, 4} and shared[1] == {1, 2, 3, 4} and shared[3] == {0, 1, 2, 3}


@pytest.mark.parametrize("rule, kinds", [
    ({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}, {"exec"}),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, {"exec"}),
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"], "resourceNames": ["x"]}, {"secrets"}),
    ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}, {"patch-workloads"}),
    ({"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]}, {"create-pods"}),
    ({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["developers"]}, set()),
    ({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["system:masters"]},
     {"impersonate-user"}),
    ({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}, {"bind"}),
    ({"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": ["example.com/internal"]}, set()),
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"all"}),
    ({"apiGroups": [""], "resources": "secrets", "verbs": None}, set()),  # odd shapes: nothing, no crash
])
def test_rule_capabilities_follow_the_authorizer(rule: dict[str, Any], kinds: set[str]) -> None:
    from kaudit.attack.grants import capabilities

    assert {c.kind for c in capabilities(rule)} == kinds


@pytest.mark.parametrize("spec, escapes", [
    ({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["cap_sys_admin"]}}}]}, True),
    ({"hostPID": True, "containers": [{"name": "a"}]}, False),  # hostPID alone: no ptrace
    ({"hostPID": True, "containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]},
     True),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
      "containers": [{"name": "a", "volumeMounts": [{"name": "root", "mountPath": "/host", "readOnly": True}]}]}, True),
    ({"volumes": [{"name": "etc", "hostPath": {"path": "/etc"}}],
      "containers": [{"name": "a", "volumeMounts": [{"name": "etc", "mountPath": "/e", "readOnly": True}]}]}, False),
    ({"volumes": [{"name": "etc", "hostPath": {"path": "/etc/"}}],
      "containers": [{"name": "a", "volumeMounts": [{"name": "etc", "mountPath": "/e"}]}]}, True),
    ({"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/containerd/containerd.sock"}}],
      "containers": [{"name": "a", "volumeMounts": [{"name": "sock", "mountPath": "/s", "readOnly": True}]}]}, True),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}], "containers": [{"name": "a"}]}, False),  # unmounted
    ({"initContainers": [{"name": "i", "securityContext": {"privileged": True}}], "containers": [{"name": "a"}]},
     True),
    ({"volumes": "nope", "containers": [{"name": "a", "securityContext": {"capabilities": {"add": "SYS_ADMIN"}}}]},
     False),
])
def test_escape_routes(spec: dict[str, Any], escapes: bool) -> None:
    from kaudit.attack.escape import escape_routes

    assert bool(escape_routes(_pod_spec(spec))) is escapes


def test_odd_objects_never_break_the_graph() -> None:
    """Wrong types and nulls where the graph reads: no exception, no path out of nonsense."""
    odd = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"},
         "spec": {"type": "LoadBalancer", "selector": ["app"], "ports": "80"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t", "namespace": "a"},
         "spec": {"type": "NodePort", "selector": {"app": None}, "ports": [None, {"targetPort": None}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "a"},
         "spec": {"rules": [None, {"http": {"paths": "x"}}], "defaultBackend": {"service": None}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "a"},
         "spec": {"parentRefs": [{"name": "g"}], "rules": [{"backendRefs": [None, {"name": None}]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"app": None}},
         "spec": {"serviceAccountName": 7, "containers": [{"name": "c", "ports": [{"hostPort": "80"}]}],
                  "volumes": [{"projected": {"sources": [None, {"serviceAccountToken": None}]}}], "tolerations": "x"}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": "k", "namespace": "a", "annotations": {"kubernetes.io/service-account.name": ["x"]}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
         "subjects": [None, {"kind": "ServiceAccount", "name": "7"}], "roleRef": {"kind": "ClusterRole", "name": None}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "None"},
         "rules": [None, {"verbs": "*", "resources": {"a": 1}}]},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": None}, "spec": {"taints": [None, 3]}},
    ]
    resources = [Resource(ResourceRef(body["apiVersion"], body["kind"], body["metadata"]["name"],
                                      body["metadata"].get("namespace")), body, Origin(file="odd.yaml", line=1))
                 for body in odd]
    analysis = analyse(Inventory(resources), sources="any")
    assert analysis.paths == []


def test_steps_of_a_rendered_chart_point_at_template_lines(kaudit: Callable[..., CliResult], tmp_path: Path) -> None:
    """Evidence on rendered objects is placed as findings are: the template line that writes the field."""
    chart = tmp_path / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text("serviceType: LoadBalancer\n")
    (chart / "templates" / "all.yaml").write_text(
        "# a comment line, so rendered and template lines differ\n"
        "{{- if true }}\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n"
        "  type: {{ .Values.serviceType }}\n  selector:\n    app: web\n"
        "{{- end }}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n"
        "      serviceAccountName: deployer\n      containers: [{name: app, image: web:1.0}]\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: deployer-admin}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        "subjects:\n  - {kind: ServiceAccount, name: deployer, namespace: shop}\n")
    result = kaudit("paths", str(chart), "-f", "json")
    assert result.code == 1, result.err
    import json

    [path] = json.loads(result.out)["paths"]
    template = str(chart / "templates" / "all.yaml")
    template_lines = (chart / "templates" / "all.yaml").read_text().splitlines()
    for step in path["steps"]:
        for evidence in step["evidence"]:
            assert evidence["file"] == template
            written = template_lines[evidence["line"] - 1]
            assert evidence["path"].split(".")[-1].split("[")[0] in written or "roleRef" in evidence["path"], \
                (evidence, written)
    assert [step["kind"] for step in path["steps"]] == ["exposes", "mounts-token", "bound", "grants"]
    scan = kaudit("scan", str(chart), "-f", "json", "--fail-on", "never").json()
    [finding] = [f for f in scan["findings"] if f["rule"] == RULE]
    assert template_lines[finding["location"]["line"] - 1].strip().startswith("type:")
    assert finding["attackPath"]["steps"] == path["steps"]


@pytest.mark.parametrize("security, escapes", [
    ({}, True),  # the image's user: maybe root
    ({"runAsNonRoot": True}, False),
    ({"runAsUser": 65534}, False),
    ({"runAsUser": 0, "runAsNonRoot": False}, True),
])
def test_a_host_path_is_an_escape_only_for_a_container_that_may_be_root(security: dict[str, Any],
                                                                        escapes: bool) -> None:
    """prometheus-node-exporter mounts / read-only as user 65534: the kubelet's pod directories
    (0750 root) are closed to it."""
    from kaudit.attack.escape import escape_routes

    spec = {"securityContext": security, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "a", "volumeMounts": [{"name": "root", "mountPath": "/host", "readOnly": True}]}]}
    assert bool(escape_routes(_pod_spec(spec))) is escapes


def test_the_rule_asks_the_inventory_once_per_scan_not_once_per_object() -> None:
    """Without a binding the rule answers "no path" for every object; that answer was recomputed
    per object over every Pod (8,000 pods: 20 s -> 9 s once memoized). Counted, not timed."""
    from kaudit.engine import run
    from kaudit.ruleset import load_builtin_rules

    class Counting(Inventory):
        calls = 0

        def of_kind(self, kind: str) -> list[Resource]:
            Counting.calls += 1
            return super().of_kind(kind)

    def pods(count: int) -> list[Resource]:
        return [Resource(ResourceRef("v1", "Pod", f"p{i}", "a"),
                         {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "a"},
                          "spec": {"containers": [{"name": "c", "image": "x:1"}]}}, Origin(file="p.yaml", line=1))
                for i in range(count)]

    [rule] = [r for r in load_builtin_rules() if r.id == RULE]
    asked = []
    for count in (10, 1000):
        Counting.calls = 0
        assert run([rule], Counting(pods(count))).findings == []
        asked.append(Counting.calls)
    assert asked[0] == asked[1]


def test_the_rule_s_targets_are_the_engine_s_crown_jewels() -> None:
    """kaudit/checks/attack.py names the crown jewels itself (the rule loader must not import the
    engine's model on the pre-commit path): the two lists stay one."""
    from kaudit.attack.model import CROWNS
    from kaudit.checks.attack import CROWN_KEYS

    assert CROWN_KEYS == list(CROWNS)
