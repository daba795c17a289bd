"""The attack graph's values: nodes, edges with the evidence that makes each true, paths and choke
points. Plain data, no I/O: the writers, the rule and `kaudit paths` read these.

Node ids are stable names, never indexes, so a path's fingerprint survives unrelated edits:
`Deployment/web/frontend` (ResourceRef.describe()), `ClusterRole/admin@shop` (a ClusterRole as a
RoleBinding grants it, in shop only), `Role/ops/pod-exec rules[1]` (one rule of a role, as granted
there), `node-of:Deployment/web/frontend`, `crown:cluster-admin`.
"""
from __future__ import annotations

import re
from typing import Optional

from kaudit.model import FieldPath, Location, Resource, ResourceRef, format_path
from kaudit.sha256 import sha256
from kaudit.value import computed_once, field, record, value

# The crown jewels: what is cluster-admin or one step from it. Ordered most direct first.
CROWNS: dict[str, str] = {
    "cluster-admin": "every verb on every resource: cluster-admin, or the power to become it (bind or escalate to "
                     "it, impersonate system:masters)",
    "pods-in-kube-system": "create pods in kube-system, as any of its service accounts and on any node",
    "secrets-in-kube-system": "read the Secrets of kube-system (controller tokens, bootstrap tokens, keys)",
    "nodes-proxy": "the kubelet API of every node through nodes/proxy: exec into any pod",
    "csr-signing": "approve certificate signing requests a signer turns into client certificates (any user or group)",
}
CROWN_PREFIX = "crown:"
ANY_NODE = "node:any"  # any node of the cluster: where a pod created with nodeName can run
_FOLDER = re.compile(r"/\?[^/|>]*/")  # the folder part of a namespace-less object's id


def crown_id(key: str) -> str:
    return CROWN_PREFIX + key


# Edge kinds, each read "<from> <verb> <to>".
EDGE_VERBS: dict[str, str] = {
    "routes": "routes traffic to",
    "exposes": "sends traffic to the pods of",
    "escapes-to-node": "can break out to",
    "shares-node": "can also run",
    "mounts-token": "holds the token of",
    "bound": "is granted",
    "holds": "holds",
    "exec-into": "can run commands in",
    "creates-pod-as": "can create a pod running as",
    "creates-pod-on-node": "can create a privileged pod on",
    "mints-token": "can create a token for",
    "impersonates": "can act as",
    "reads-secret": "can read",
    "secret-token": "is a token of",
    "kubelet-credential": "holds the kubelet credential, which reaches",
    "grants": "gives",
}


@record
class Evidence:
    """The field that makes an edge (or an entry point) true: an object, a path in it, and where
    that is written (a file and line, or the live cluster). `placed`: for an object a chart or an
    overlay rendered, the template or resource line that writes the field (kaudit/sources/provenance.py),
    set once the scan knows it."""

    resource: Resource
    path: FieldPath
    placed: Optional[Location] = None

    @property
    def ref(self) -> ResourceRef:
        return self.resource.ref

    @property
    def location(self) -> Location:
        if self.placed is None:
            from kaudit.engine import locate  # the engine's own positions: the same line a finding shows

            self.placed = locate(self.resource, self.path)
        return self.placed

    def describe(self) -> str:
        where = self.location.describe()
        return f"{where} {self.ref.describe()} {format_path(self.path)}"


@value(eq=False)
class GraphNode:
    """One node. `entry` marks an entry point (with why it is reachable from outside the cluster);
    `hidden` nodes only join edges (a set of pods that can share a node) and are left out of paths."""

    id: str
    kind: str  # entry | workload | node | service-account | role | rule | secret | crown | pool | kubelet
    label: str
    resource: Optional[ResourceRef] = None
    entry: Optional[Evidence] = None
    entry_why: str = ""
    hidden: bool = False


@value(eq=False)
class Edge:
    """`source` -> `target`, true because of `evidence` (every field listed must change to remove it
    by that route); `fix` is the change that removes it, when the user can make one."""

    kind: str  # a key of EDGE_VERBS
    source: str
    target: str
    evidence: tuple[Evidence, ...]
    why: str = ""
    fix: str = ""

    @property
    def key(self) -> str:
        return f"{self.source} -{self.kind}-> {self.target}"


@value(eq=False)
class AttackPath:
    """The shortest path from an entry point (or a workload, with `--from any`) to a crown jewel."""

    source: str
    target: str
    steps: tuple[Edge, ...]

    @computed_once
    def key(self) -> str:
        """The path's identity: its nodes and edge kinds, never lines, files or folders (baselines,
        fingerprints): a namespace-less object's folder, which keeps it apart in the graph
        (`ServiceAccount/?deploy/default`), is left out, as it is of every other fingerprint."""
        text = "|".join([self.source, *(f"{step.kind}>{step.target}" for step in self.steps)])
        return sha256(_FOLDER.sub("/?/", text).encode()).hexdigest()[:32]


@value(eq=False)
class ChokePoint:
    """One fix (an edge to remove) and the paths it cuts: (source, crown) pairs left with no path."""

    edge: Edge
    cuts: int
    paths: tuple[str, ...] = ()  # keys of the reported paths that used it and have no other route


@value(eq=False)
class AttackGraph:
    nodes: dict[str, GraphNode]
    edges: list[Edge]
    assumptions: tuple[str, ...] = ()  # what the scan could not see and the graph assumed


@value(eq=False)
class AttackAnalysis:
    graph: AttackGraph
    paths: list[AttackPath]
    choke_points: list[ChokePoint]
    sources: str = "entry"  # entry | any
    targets: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    def node(self, node_id: str) -> GraphNode:
        return self.graph.nodes[node_id]


@value(eq=False)
class AttackReport:
    """What a scan's report says of attack paths: the analysis, the paths whose findings are active
    (not suppressed, not in the baseline), and the choke points ranked by the active paths they cut."""

    analysis: AttackAnalysis
    active: frozenset[str]  # AttackPath.key of each path still reported
    choke_points: tuple[ChokePoint, ...]

    @property
    def paths(self) -> list[AttackPath]:
        return [path for path in self.analysis.paths if path.key in self.active]


def report_of(analysis: AttackAnalysis, active: frozenset[str]) -> AttackReport:
    """Choke points recounted over the active paths only: a path someone accepted is no reason to
    rank the fix that would cut it."""
    ranked = []
    for choke in analysis.choke_points:
        kept = tuple(key for key in choke.paths if key in active)
        if kept:
            ranked.append(ChokePoint(choke.edge, len(kept), kept))
    ranked.sort(key=lambda c: (-c.cuts, c.edge.fix))
    return AttackReport(analysis, active, tuple(ranked))
