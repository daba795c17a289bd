"""Attack paths (issue 17): how an attacker who reaches an exposed workload chains kaudit's facts
(exposure, container escape, mounted tokens, RBAC grants) to a cluster-admin-equivalent "crown
jewel", and which single fix cuts the most of those chains.

- model.py: the graph's values (nodes, edges with evidence, paths, choke points); no I/O.
- build.py: the graph from an inventory, fed by the existing analyzers (RBAC index, workloads,
  selectors, scheduling); no new parsing.
- scheduling.py: which pods can share a node (nodeSelector, required affinity, taints/tolerations).
- search.py: shortest paths and choke points; the only module that imports rustworkx.

`analyse(lookup)` is the one entry point the rule, `kaudit paths` and the report summary use; its
result is memoized per scan.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from kaudit.attack.model import AttackAnalysis, AttackGraph


def could_have_paths(lookup: Any) -> bool:
    """Every crown jewel is reached through an RBAC grant, which needs a binding in the scan, or
    through a kubelet whose API server has NodeRestriction off, which needs the API server's flags
    (a kube-system Pod, a kubeadm ClusterConfiguration or its kube-system ConfigMap). Without
    either there is nothing to build: a one-file pre-commit scan does not load the graph code.
    Asked once per object by the rule: answered once per scan."""
    from kaudit.inventory import memoized

    def could(_: Any) -> bool:
        if lookup.of_kind("RoleBinding") or lookup.of_kind("ClusterRoleBinding") or \
                lookup.of_kind("ClusterConfiguration"):
            return True
        return any(r.namespace == "kube-system" for kind in ("Pod", "ConfigMap") for r in lookup.of_kind(kind))

    return memoized(lookup, "attack.could-have-paths", could)


def analyse(lookup: Any, sources: str = "entry", targets: Optional[Sequence[str]] = None) -> AttackAnalysis:
    """The attack paths of a scan: from every entry point (`sources="any"`: from every workload too)
    to every crown jewel (or those named in `targets`), with the choke points that cut them."""
    from kaudit.inventory import memoized

    if not could_have_paths(lookup):
        return AttackAnalysis(AttackGraph({}, []), [], [], sources, tuple(targets or ()))
    from kaudit.attack.build import build_graph
    from kaudit.attack.search import search

    graph = memoized(lookup, "attack.graph", build_graph)
    if sources == "entry" and targets is None:
        return memoized(lookup, "attack.analysis", lambda _: search(graph, "entry", None))
    return search(graph, sources, targets)


def paths_by_source(lookup: Any) -> dict[str, tuple[Any, list[Any], dict[str, int]]]:
    """For the rule: each entry point's node id -> (its entry Evidence, its paths, cuts by fix text)."""
    from kaudit.inventory import memoized

    def index(_: Any) -> dict[str, tuple[Any, list[Any], dict[str, int]]]:
        analysis = analyse(lookup)
        fixes: dict[str, int] = {}
        for choke in analysis.choke_points:
            fixes[choke.edge.fix] = max(fixes.get(choke.edge.fix, 0), choke.cuts)
        found: dict[str, tuple[Any, list[Any], dict[str, int]]] = {}
        for path in analysis.paths:
            entry = analysis.node(path.source).entry
            if entry is not None:
                found.setdefault(path.source, (entry, [], fixes))[1].append(path)
        return found

    return memoized(lookup, "attack.by-source", index)
