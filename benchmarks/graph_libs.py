"""networkx or rustworkx for attack paths (issue 17): build, paths and choke points at scale.

    python benchmarks/graph_libs.py                   # every library that is installed, each in a fresh process
    python benchmarks/graph_libs.py --lib networkx    # one library, in this process
    python benchmarks/graph_libs.py --verify 40       # also remove-and-recount 40 candidate edges per library
    python benchmarks/graph_libs.py --scale 3         # 30,000 workloads and 15,000 RBAC objects: headroom

Stand-alone: installs nothing, imports no kaudit code, says which library it found. Generates a synthetic
attack graph shaped like the issue 17 model for 10,000 workloads and 5,000 RBAC objects (seeded, the same
for both libraries), then measures per library, each in its own subprocess so import time and peak RSS are
its own: import, build (payloads with evidence), shortest path from every entry point to every crown
jewel, choke points (for every edge on one of those paths, how many entry->jewel pairs lose ALL their
paths when it is removed), and peak memory (ru_maxrss of the process; tracemalloc in a second run,
which sees Python allocations only, not rustworkx's Rust heap).

Shortest paths: one BFS per crown jewel on the REVERSED graph gives every node's next hop towards that
jewel, so all entries' paths to it are read off the tree: (jewels) x O(V+E), not (entries x jewels).

Choke points: edge e cuts the pair (s, t) iff every s->t path uses e. Split each candidate edge u->v
with a midpoint node m (u->m->v); in the reversed graph rooted at t, m dominates s exactly when every
s->t path crosses e. So one dominator tree per jewel, then each entry walks up its idom chain and
credits the midpoints it meets: (jewels) x dominators instead of (candidates x jewels) BFS runs.
`--verify N` checks the counts against the naive remove-and-recount on N candidates and times it.
"""
from __future__ import annotations

import abc
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

# benchmarks/html.py would shadow the standard library's html, which networkx imports: drop this folder.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

LIBRARIES = ("networkx", "rustworkx")
WORKLOADS = 10_000
RBAC_OBJECTS = 5_000
NAMESPACES = 40
NODE_GROUPS = 20
BUDGET_SECONDS = 5.0
BUDGET_MIB = 500.0

Evidence = dict[str, Any]
Edge = tuple[str, str, Evidence]


def _evidence(kind: str, namespace: str, name: str, field: str, rng: random.Random) -> Evidence:
    # What an edge carries in kaudit: the object, the field path that makes it true, file:line.
    return {"object": f"{kind}/{namespace}/{name}", "field": field,
            "file": f"manifests/{namespace}/{name}.yaml", "line": rng.randint(1, 400)}


def generate(seed: int = 17) -> tuple[dict[str, dict[str, Any]], list[Edge], list[str], list[str]]:
    """The attack graph as plain data (what the analyzers would hand over): nodes, edges, entries, jewels."""
    rng = random.Random(seed)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[Edge] = []

    def node(key: str, kind: str, **attrs: Any) -> str:
        nodes[key] = {"kind": kind, **attrs}
        return key

    jewels = [node(f"jewel:{j}", "crown-jewel") for j in (
        "cluster-admin", "create-pods-kube-system", "secrets-kube-system", "nodes-proxy", "csr-approve-sign",
        "impersonate-system-masters")]
    groups = [node(f"nodegroup:{g}", "node") for g in range(NODE_GROUPS)]
    namespaces = [f"ns{n}" for n in range(NAMESPACES)]

    # Service accounts (about one per 5 workloads) and their tokens: automounted, projected or a token Secret.
    sa_by_ns: dict[str, list[str]] = {ns: [] for ns in namespaces}
    for s in range(WORKLOADS // 5):
        ns = namespaces[s % NAMESPACES]
        sa = node(f"sa:{ns}/sa{s}", "serviceaccount", namespace=ns)
        token = node(f"token:{ns}/sa{s}", "token", namespace=ns, source=rng.choice(("automount", "projected", "secret")))
        edges.append((sa, token, _evidence("ServiceAccount", ns, f"sa{s}", "automountServiceAccountToken", rng)))
        sa_by_ns[ns].append(token)

    # Workloads, their containers, the token each mounts, the node groups they can be scheduled on.
    containers_by_ns: dict[str, list[str]] = {ns: [] for ns in namespaces}
    tokens_on_group: dict[str, set[str]] = {g: set() for g in groups}
    entries: list[str] = []
    for w in range(WORKLOADS):
        ns = namespaces[w % NAMESPACES]
        kind = rng.choices(("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"), (70, 10, 3, 10, 7))[0]
        workload = node(f"workload:{ns}/w{w}", "workload", namespace=ns, workload_kind=kind)
        mounted = rng.choice(sa_by_ns[ns]) if rng.random() < 0.8 else None    # 20%: automount off
        placement = groups if kind == "DaemonSet" else rng.sample(groups, rng.randint(1, 3))
        for c in range(rng.choice((1, 1, 1, 2, 2, 3))):
            container = node(f"container:{ns}/w{w}/c{c}", "container", namespace=ns)
            edges.append((workload, container, _evidence(kind, ns, f"w{w}", f"spec.template.spec.containers[{c}]", rng)))
            containers_by_ns[ns].append(container)
            if mounted:
                edges.append((container, mounted, _evidence(kind, ns, f"w{w}", "spec.template.spec.serviceAccountName", rng)))
            if rng.random() < 0.03:     # privileged, hostPID+SYS_PTRACE, writable hostPath of /, ...: escape
                for group in placement:
                    edges.append((container, group, _evidence(
                        kind, ns, f"w{w}", f"spec.template.spec.containers[{c}].securityContext.privileged", rng)))
        if mounted:
            for group in placement:
                tokens_on_group[group].add(mounted)
        if rng.random() < 0.05:     # Service LoadBalancer/NodePort, Ingress, hostNetwork: an entry point
            entry = node(f"entry:{ns}/svc{w}", "entry", namespace=ns)
            edges.append((entry, workload, _evidence("Service", ns, f"svc{w}", "spec.selector", rng)))
            entries.append(entry)
    for group, tokens in tokens_on_group.items():
        for token in sorted(tokens):
            edges.append((group, token, _evidence("Node", "-", group, "pods on this node mount the token", rng)))

    # Capabilities a grant gives, per scope (a namespace, or "*" for a ClusterRoleBinding), fanning out to the
    # tokens/containers they reach; the cluster-admin-equivalent ones lead to a crown jewel.
    def capability(scope: str, cap: str) -> str:
        key = f"cap:{scope}/{cap}"
        if key in nodes:
            return key
        node(key, "capability", scope=scope)
        scopes = namespaces if scope == "*" else [scope]
        for ns in scopes:
            if cap in ("create-pods", "serviceaccounts-token-create", "patch-workloads", "secrets-get"):
                for token in sa_by_ns[ns]:
                    edges.append((key, token, _evidence("Role", ns, cap, "rules[0]", rng)))
            elif cap == "pods-exec":
                for container in containers_by_ns[ns]:
                    edges.append((key, container, _evidence("Role", ns, cap, "rules[0]", rng)))
        if scope == "*" and cap in ("create-pods", "secrets-get"):
            edges.append((key, jewels[1] if cap == "create-pods" else jewels[2], _evidence("ClusterRole", "-", cap, "rules[0]", rng)))
        if cap == "bind-escalate" and scope == "*":
            edges.append((key, jewels[0], _evidence("ClusterRole", "-", cap, "rules[0]", rng)))
        if cap in ("star-star", "nodes-proxy", "csr", "impersonate"):
            target = {"star-star": jewels[0], "nodes-proxy": jewels[3], "csr": jewels[4], "impersonate": jewels[5]}[cap]
            edges.append((key, target, _evidence("ClusterRole", "-", cap, "rules[0]", rng)))
        return key

    ordinary = ("read-configmaps", "list-pods", "get-services", "watch-events", "pods-exec", "create-pods",
                "secrets-get", "patch-workloads", "serviceaccounts-token-create")
    dangerous = ("star-star", "bind-escalate", "nodes-proxy", "csr", "impersonate")
    roles = RBAC_OBJECTS // 2
    for r in range(roles):
        cluster_wide = r % 4 == 0       # a quarter are ClusterRole + ClusterRoleBinding
        ns = namespaces[r % NAMESPACES]
        scope = "*" if cluster_wide else ns
        kind = "ClusterRole" if cluster_wide else "Role"
        role = node(f"role:{scope}/r{r}", "role", rbac_kind=kind)
        binding = node(f"binding:{scope}/b{r}", "binding", rbac_kind=kind + "Binding")
        edges.append((binding, role, _evidence(kind + "Binding", ns, f"b{r}", "roleRef", rng)))
        for _ in range(rng.randint(1, 4)):
            cap = rng.choice(dangerous) if cluster_wide and rng.random() < 0.01 else rng.choice(ordinary)
            if cluster_wide and cap in ("pods-exec", "create-pods", "secrets-get") and rng.random() < 0.9:
                cap = "read-configmaps"     # most cluster-wide roles are read-only
            edges.append((role, capability(scope, cap), _evidence(kind, ns, f"r{r}", "rules[0]", rng)))
        for token in rng.sample(sa_by_ns[ns], rng.randint(1, 2)):
            edges.append((token, binding, _evidence(kind + "Binding", ns, f"b{r}", "subjects[0]", rng)))
    # One edge per (u, v), keeping the first evidence: rustworkx allows parallel edges, networkx's DiGraph not.
    unique: dict[tuple[str, str], Evidence] = {}
    for u, v, e in edges:
        unique.setdefault((u, v), e)
    return nodes, [(u, v, e) for (u, v), e in unique.items()], entries, jewels


class Graph(abc.ABC):
    """What the benchmark asks of a library; one subclass per library, each written the efficient way."""
    name = ""

    @abc.abstractmethod
    def build(self, nodes: dict[str, dict[str, Any]], edges: list[Edge]) -> None: ...

    @abc.abstractmethod
    def next_hops(self, jewel: str) -> dict[str, str]: ...  # node -> next node towards the jewel

    @abc.abstractmethod
    def idoms(self, jewel: str, split: list[tuple[str, str]]) -> dict[Any, Any]: ...  # reversed, candidates split

    @abc.abstractmethod
    def reachable_pairs_without(self, edge: tuple[str, str], entries: list[str], jewels: list[str]) -> int: ...

    @abc.abstractmethod
    def size(self) -> tuple[int, int]: ...


class NetworkxGraph(Graph):
    name = "networkx"

    def __init__(self) -> None:
        import networkx
        self.nx = networkx

    def build(self, nodes: dict[str, dict[str, Any]], edges: list[Edge]) -> None:
        self.g = self.nx.DiGraph()
        self.g.add_nodes_from(nodes.items())
        self.g.add_edges_from((u, v, {"evidence": e}) for u, v, e in edges)
        self.reversed = self.g.reverse(copy=False)      # a view: no copy

    def size(self) -> tuple[int, int]:
        return self.g.number_of_nodes(), self.g.number_of_edges()

    def next_hops(self, jewel: str) -> dict[str, str]:
        return dict(self.nx.bfs_predecessors(self.reversed, jewel))

    def idoms(self, jewel: str, split: list[tuple[str, str]]) -> dict[Any, Any]:
        if getattr(self, "split", None) is None:    # built once for all jewels
            r = self.nx.DiGraph(self.reversed.edges)    # structure only: no payloads needed here
            for u, v in split:      # reversed edge v->u becomes v->m->u
                r.remove_edge(v, u)
                m = ("mid", u, v)
                r.add_edge(v, m)
                r.add_edge(m, u)
            self.split = r
        return dict(self.nx.immediate_dominators(self.split, jewel))

    def reachable_pairs_without(self, edge: tuple[str, str], entries: list[str], jewels: list[str]) -> int:
        data = self.g.edges[edge]
        self.g.remove_edge(*edge)
        try:
            wanted = set(entries)
            return sum(len(wanted & self.nx.descendants(self.reversed, j)) for j in jewels)
        finally:
            self.g.add_edge(*edge, **data)


class RustworkxGraph(Graph):
    name = "rustworkx"

    def __init__(self) -> None:
        import rustworkx
        self.rx = rustworkx

    def build(self, nodes: dict[str, dict[str, Any]], edges: list[Edge]) -> None:
        self.g = self.rx.PyDiGraph()
        keys = list(nodes)
        self.index = dict(zip(keys, self.g.add_nodes_from([{"key": k, **nodes[k]} for k in keys])))
        self.key = keys     # indices are 0..n-1 in insertion order on a fresh graph
        index = self.index
        indexed = [(index[u], index[v], {"evidence": e}) for u, v, e in edges]
        self.g.add_edges_from(indexed)
        # The reversed graph built directly (payloads shared): PyDiGraph.reverse() took 3.3 s on 312,692 edges
        # in rustworkx 0.18.1, add_edges_from 0.03 s. multigraph=False is as slow (an edge lookup per insert).
        self.reversed = self.rx.PyDiGraph()
        self.reversed.add_nodes_from([self.g[n] for n in range(len(keys))])
        self.reversed.add_edges_from([(v, u, data) for u, v, data in indexed])

    def size(self) -> tuple[int, int]:
        return self.g.num_nodes(), self.g.num_edges()

    def next_hops(self, jewel: str) -> dict[str, str]:
        # Unit weights: Dijkstra in Rust is a BFS; a PathMapping of every node's path from the jewel.
        paths = self.rx.digraph_dijkstra_shortest_paths(self.reversed, self.index[jewel])
        key = self.key
        return {key[target]: key[path[-2]] for target, path in paths.items()}

    def idoms(self, jewel: str, split: list[tuple[str, str]]) -> dict[Any, Any]:
        if getattr(self, "split", None) is None:    # built once for all jewels
            r = self.reversed.copy()
            key: list[Any] = list(self.key)
            index = self.index
            for u, v in split:
                r.remove_edge(index[v], index[u])
                m = r.add_node(None)
                key.append(("mid", u, v))
                r.add_edge(index[v], m, None)
                r.add_edge(m, index[u], None)
            self.split, self.split_key = r, key
        key = self.split_key
        return {key[n]: key[d] for n, d in self.rx.immediate_dominators(self.split, self.index[jewel]).items()}

    def reachable_pairs_without(self, edge: tuple[str, str], entries: list[str], jewels: list[str]) -> int:
        u, v = self.index[edge[0]], self.index[edge[1]]
        data = self.reversed.get_edge_data(v, u)
        self.reversed.remove_edge(v, u)
        try:
            wanted = {self.index[e] for e in entries}
            return sum(len(wanted & self.rx.descendants(self.reversed, self.index[j])) for j in jewels)
        finally:
            self.reversed.add_edge(v, u, data)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(lib: str, verify: int) -> dict[str, Any]:
    import importlib.metadata
    rss_before_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    graph_cls = {"networkx": NetworkxGraph, "rustworkx": RustworkxGraph}[lib]
    graph, import_s = timed(graph_cls)
    (nodes, edges, entries, jewels), generate_s = timed(generate)
    rss_input = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _, build_s = timed(lambda: graph.build(nodes, edges))
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def shortest_paths() -> dict[tuple[str, str], list[str]]:
        paths: dict[tuple[str, str], list[str]] = {}
        for jewel in jewels:
            hops = graph.next_hops(jewel)
            for entry in entries:
                if entry in hops:
                    path = [entry]
                    while path[-1] != jewel:
                        path.append(hops[path[-1]])
                    paths[entry, jewel] = path
        return paths
    paths, paths_s = timed(shortest_paths)

    def choke_points() -> dict[tuple[str, str], int]:
        candidates = sorted({(p[i], p[i + 1]) for p in paths.values() for i in range(len(p) - 1)})
        cuts: dict[tuple[str, str], int] = dict.fromkeys(candidates, 0)
        for jewel in jewels:
            idom = graph.idoms(jewel, candidates)
            for entry in entries:
                if (entry, jewel) not in paths:
                    continue
                n = entry
                while n != jewel:       # the idom chain: every dominator of the entry, midpoints among them
                    n = idom[n]
                    if isinstance(n, tuple):
                        cuts[n[1], n[2]] += 1
        return cuts
    cuts, choke_s = timed(choke_points)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    top = sorted(cuts.items(), key=lambda kv: -kv[1])[:5]
    result: dict[str, Any] = {
        "library": lib, "version": importlib.metadata.version(lib), "python": sys.version.split()[0],
        "nodes_edges": graph.size(), "entries": len(entries), "jewels": len(jewels), "paths": len(paths),
        "mean_path_len": round(sum(len(p) - 1 for p in paths.values()) / max(1, len(paths)), 2),
        "candidate_edges": len(cuts), "edges_cutting_any": sum(1 for c in cuts.values() if c),
        "top_choke_points": [[u, v, c] for (u, v), c in top],
        "import_s": import_s, "generate_s": generate_s, "build_s": build_s, "paths_s": paths_s,
        "choke_s": choke_s, "paths_plus_choke_s": paths_s + choke_s,
        "rss_before_import_mib": rss_before_import, "rss_input_mib": rss_input, "rss_built_mib": rss_built,
        "rss_peak_mib": rss_peak}
    if verify:
        rng = random.Random(1)
        sample = rng.sample(sorted(cuts), min(verify, len(cuts)))
        # Always include the top choke points: they are the ones a wrong count would hurt most.
        sample = sorted(set(sample) | {(u, v) for (u, v), _ in top})
        full = len(paths)
        start = time.perf_counter()
        wrong = [(e, cuts[e], full - graph.reachable_pairs_without(e, entries, jewels)) for e in sample]
        naive_s = time.perf_counter() - start
        result["verify"] = {"checked": len(sample), "disagree": [w for w in wrong if w[1] != w[2]],
                            "naive_s_per_edge": naive_s / len(sample),
                            "naive_s_extrapolated_all": naive_s / len(sample) * len(cuts)}
    return result


def measure_tracemalloc(lib: str) -> dict[str, Any]:
    """A second run under tracemalloc (slower, Python allocations only): the peak of build+paths+chokes."""
    tracemalloc.start()
    result = measure(lib, 0)
    _, peak = tracemalloc.get_traced_memory()
    return {"tracemalloc_peak_mib": peak / 2**20, "tracemalloc_run_s": result["paths_plus_choke_s"]}


def installed(lib: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(lib) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", choices=LIBRARIES, help="measure one library in this process (JSON on stdout)")
    parser.add_argument("--tracemalloc", action="store_true", help="with --lib: the tracemalloc run instead")
    parser.add_argument("--verify", type=int, default=0, metavar="N", help="naive remove-and-recount on N candidates")
    parser.add_argument("--scale", type=int, default=1, help="multiply workloads and RBAC objects (headroom)")
    args = parser.parse_args()
    global WORKLOADS, RBAC_OBJECTS
    WORKLOADS, RBAC_OBJECTS = WORKLOADS * args.scale, RBAC_OBJECTS * args.scale
    if args.lib:
        print(json.dumps(measure_tracemalloc(args.lib) if args.tracemalloc else measure(args.lib, args.verify)))
        return 0
    found = [lib for lib in LIBRARIES if installed(lib)]
    print(f"installed: {', '.join(found) or 'neither networkx nor rustworkx'} (python {sys.executable})")
    over = False
    for lib in found:
        cmd = [sys.executable, os.path.abspath(__file__), "--lib", lib, "--scale", str(args.scale)]
        result = json.loads(subprocess.run(cmd + ["--verify", str(args.verify)], check=True, capture_output=True,
                                           text=True).stdout)
        result.update(json.loads(subprocess.run(cmd + ["--tracemalloc"], check=True, capture_output=True,
                                                text=True).stdout))
        print(json.dumps(result, indent=1))
        over |= result["paths_plus_choke_s"] > BUDGET_SECONDS or result["rss_peak_mib"] > BUDGET_MIB
    return 1 if over or not found else 0


if __name__ == "__main__":
    sys.exit(main())
