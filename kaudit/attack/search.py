"""Shortest attack paths and choke points over an AttackGraph; the one module that imports rustworkx
(benchmarks/GRAPH_LIBS.md: why rustworkx, and why dominators).

- Paths: one breadth-first search per crown jewel on the reversed graph gives every node's distance
  to it; each source's path is read off by walking forward to a successor one step closer. Ties are
  broken by node id, edge kind and evidence, never by input order, so a path (and the fingerprint
  of its finding) does not change when unrelated objects are added or reordered.
- A path from an entry point that passes through another entry point is that entry's path with a
  step in front: it is left out (one finding per fact).
- Choke points: an edge cuts a (source, crown) pair when every path between them uses it, which is
  what removing the edge and recounting would find. Computed exactly, without recounting: each edge
  is split by a midpoint node, and in the reversed graph rooted at the crown the midpoint dominates
  the source exactly then (one dominator tree per crown; checked against remove-and-recount in
  tests/test_attack_paths.py).
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

from kaudit.attack.model import CROWN_PREFIX, CROWNS, AttackAnalysis, AttackGraph, AttackPath, ChokePoint, Edge

INTERNAL = ("holds",)  # edge kinds that only lead into a hidden node; the next edge says what it gives


def search(graph: AttackGraph, sources: str = "entry", targets: Optional[Sequence[str]] = None) -> AttackAnalysis:
    import rustworkx as rx

    started = time.perf_counter()
    ids = list(graph.nodes)
    index = {node_id: i for i, node_id in enumerate(ids)}
    edges = graph.edges
    reverse = rx.PyDiGraph(multigraph=True)
    reverse.add_nodes_from(range(len(ids)))
    reverse.add_edges_from_no_data([(index[e.target], index[e.source]) for e in edges])
    hidden = [graph.nodes[n].hidden for n in ids]
    outgoing: list[list[int]] = [[] for _ in ids]
    for k, edge in enumerate(edges):
        outgoing[index[edge.source]].append(k)

    crowns = [n for n in ids if n.startswith(CROWN_PREFIX) and (not targets or n[len(CROWN_PREFIX):] in targets)]
    entries = {n for n, node in graph.nodes.items() if node.entry is not None}
    starts = sorted(entries) if sources == "entry" else \
        sorted(entries | {n for n, node in graph.nodes.items() if node.kind == "workload"})
    paths: list[AttackPath] = []
    pairs: dict[int, list[tuple[int, AttackPath]]] = {}
    for crown in sorted(crowns):
        distance = _distances(rx, reverse, index[crown], len(ids))
        for start in starts:
            s = index[start]
            if distance[s] < 0 or s == index[crown]:
                continue
            walked = _walk(s, distance, outgoing, edges, index, hidden)
            if sources == "entry" and any(edge.target in entries for edge in walked[:-1]):
                continue  # through another entry point: its own path says this
            path = AttackPath(start, crown, tuple(_display(walked, graph)))
            paths.append(path)
            pairs.setdefault(index[crown], []).append((s, path))
    order = {key: rank for rank, key in enumerate(CROWNS)}
    paths.sort(key=lambda p: (p.source, order.get(p.target[len(CROWN_PREFIX):], len(order))))
    chokes = _choke_points(rx, len(ids), edges, index, pairs)
    return AttackAnalysis(graph, paths, chokes, sources, tuple(targets or ()), time.perf_counter() - started)


def _distances(rx: object, reverse: object, root: int, count: int) -> list[int]:
    distance = [-1] * count
    for depth, layer in enumerate(rx.bfs_layers(reverse, [root])):  # type: ignore[attr-defined]
        for node in layer:
            distance[node] = depth
    return distance


def _walk(start: int, distance: list[int], outgoing: list[list[int]], edges: list[Edge], index: dict[str, int],
          hidden: list[bool]) -> list[Edge]:
    walked: list[Edge] = []
    node = start
    while distance[node] > 0:
        closer = [k for k in outgoing[node] if distance[index[edges[k].target]] == distance[node] - 1]
        best = closer[0]
        if len(closer) > 1:
            ranked = sorted((_tie(k, distance, outgoing, edges, index, hidden), k) for k in closer)
            tied = [k for rank, k in ranked if rank == ranked[0][0]]
            best = min(tied, key=lambda k: _evidence_text(edges[k])) if len(tied) > 1 else tied[0]
        walked.append(edges[best])
        node = index[edges[best].target]
    return walked


def _tie(k: int, distance: list[int], outgoing: list[list[int]], edges: list[Edge], index: dict[str, int],
         hidden: list[bool]) -> tuple[str, ...]:
    """An edge's rank among equally short ones: the first node it shows (through a hidden node, the
    best node beyond it), its kind, then its evidence (only looked at when all else is equal: where
    a field is written costs a walk of the object). Hidden nodes' ids (a pool's number) say nothing."""
    edge = edges[k]
    target = index[edge.target]
    if not hidden[target]:
        return (edge.target, edge.kind)
    onward = [j for j in outgoing[target] if distance[index[edges[j].target]] == distance[target] - 1]
    beyond = min((_tie(j, distance, outgoing, edges, index, hidden) for j in onward), default=("",))
    return (*beyond, edge.kind)


def _evidence_text(edge: Edge) -> tuple[str, ...]:
    return tuple(e.describe() for e in edge.evidence)


def _display(walked: list[Edge], graph: AttackGraph) -> list[Edge]:
    """Steps as shown: a hidden node (one rule of a role, a set of pods that share a node) is joined
    to the step that leaves it."""
    steps: list[Edge] = []
    pending: Optional[Edge] = None
    for edge in walked:
        if pending is not None:
            kind = edge.kind if pending.kind in INTERNAL else pending.kind
            evidence = tuple({(id(e.resource), e.path): e for e in (*pending.evidence, *edge.evidence)}.values())
            why = "; ".join(w for w in (pending.why, edge.why) if w)
            edge = Edge(kind, pending.source, edge.target, evidence, why, pending.fix or edge.fix)
            pending = None
        if graph.nodes[edge.target].hidden:
            pending = edge
        else:
            steps.append(edge)
    return steps


def _choke_points(rx: object, count: int, edges: list[Edge], index: dict[str, int],
                  pairs: dict[int, list[tuple[int, AttackPath]]]) -> list[ChokePoint]:
    """For every fixable edge, the (source, crown) pairs with no path left without it."""
    if not pairs:
        return []
    split = rx.PyDiGraph(multigraph=True)  # type: ignore[attr-defined]
    split.add_nodes_from(range(count + len(edges)))
    # reversed, each edge u -> v as v -> m -> u with its own midpoint m = count + k
    split.add_edges_from_no_data([pair for k, e in enumerate(edges)
                                  for pair in ((index[e.target], count + k), (count + k, index[e.source]))])
    cut: dict[int, list[AttackPath]] = {}
    for root, reached in pairs.items():
        dominators = rx.immediate_dominators(split, root)  # type: ignore[attr-defined]
        for source, path in reached:
            node = source
            while node != root:
                node = dominators[node]
                if node >= count and edges[node - count].fix:
                    cut.setdefault(node - count, []).append(path)
    ranked = sorted(cut.items(), key=lambda item: (-len(item[1]), edges[item[0]].fix, item[0]))
    return [ChokePoint(edges[k], len(found), tuple(p.key for p in found)) for k, found in ranked]
