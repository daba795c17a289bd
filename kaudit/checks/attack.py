"""`attack-path`: the shortest attack path from an entry point to a crown jewel, one finding per
(entry point, crown jewel), on the entry point's exposing field, fingerprinted by the path's steps
(kaudit/attack/). The graph is built once per scan; the rule loader imports nothing of it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template

CROWN_KEYS = ["cluster-admin", "pods-in-kube-system", "secrets-in-kube-system", "nodes-proxy", "csr-signing"]
PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"targets": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": CROWN_KEYS},
                               "description": "the crown jewels paths are reported to (default: all of them)"}},
}
# What the graph reads besides the entry point itself (a cluster scan lists these: coverage gaps).
READS = frozenset({"Service", "Ingress", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "Node",
                   "ServiceAccount", "Secret", "Namespace", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
                   "Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob",
                   "ReplicationController"})
# Unread, these only hide steps (a token Secret, a grant, an entry point): a gap leaves the paths
# found true. Not so Node, ServiceAccount and Namespace: unread taints, automount settings or Pod
# Security labels would be taken at their defaults, which can make a path up.
READS_PARTLY = READS - {"Node", "ServiceAccount", "Namespace"}
MAX_CHAIN = 12  # steps named in the message; the finding carries them all


def _bind(params: Mapping[str, Any], target: str) -> Check:
    wanted = frozenset(params.get("targets", CROWN_KEYS))

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        from kaudit.attack import could_have_paths, paths_by_source

        if not could_have_paths(subject.lookup):
            return ()
        found = paths_by_source(subject.lookup).get(subject.resource.ref.describe())
        if not found:
            return ()
        entry, paths, fixes = found
        if entry.resource is not subject.resource:
            return ()  # another declaration of the same object holds the entry point
        hits = []
        for path in paths:
            crown = path.target.partition(":")[2]
            if crown not in wanted:
                continue
            chain = " -> ".join([path.source, *(step.target for step in path.steps[:MAX_CHAIN])])
            if len(path.steps) > MAX_CHAIN:
                chain += f" -> ... ({len(path.steps) - MAX_CHAIN} more)"
            best = max((step for step in path.steps if step.fix), key=lambda s: fixes.get(s.fix, 0), default=None)
            hits.append(Hit(entry.path, {"crown": crown, "steps": str(len(path.steps)), "chain": chain,
                                         "fix": best.fix if best is not None else "see the steps"},
                            fact=path.key, attack_path=path))
        return hits

    return check


TEMPLATES = [
    Template("attack-path", "An entry point has an attack path to a crown jewel (cluster-admin or its equal).",
             frozenset({"object"}), PARAMS, _bind, cross_object=True, reads=READS, reads_partly=READS_PARTLY,
             # what the graph reads of containers: escapes, host ports and named ports, read-only mounts,
             # and a kube-apiserver's command line (NodeRestriction, API audiences)
             container_fields=frozenset({"securityContext", "ports", "volumeMounts", "command", "args"})),
]
