"""Which pods can share a node: the scheduler's hard constraints, as far as a scan can see them.

A pod can run on a node when `spec.nodeName` names it (the scheduler is bypassed), every
`nodeSelector` label matches, one term of the required node affinity matches (matchExpressions on
labels, matchFields on metadata.name), and it tolerates every NoSchedule and NoExecute taint
(kube-scheduler's NodeName, NodeAffinity and TaintToleration filters; PreferNoSchedule and preferred
affinity only rank). With Node objects in the scan each pod's set of nodes is computed; without them
two pods can share a node unless their constraints conflict on their face (two nodeNames, one
nodeSelector key with two values). Resources, pod (anti-)affinity and topology spread are not
modelled: they decide where a pod lands, not where it may.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Sequence

from kaudit.model import Resource
from kaudit.selectors import OPERATORS, Requirement, labels_of
from kaudit.workloads import PodSpec, mapping, sequence

HARD_EFFECTS = ("NoSchedule", "NoExecute")


class Constraints:
    """One pod spec's hard scheduling constraints, with a canonical key (pods alike share a pool)."""

    __slots__ = ("node_name", "selector", "terms", "tolerations", "key")

    def __init__(self, pod: PodSpec) -> None:
        spec = pod.spec
        name = spec.get("nodeName")
        self.node_name: Optional[str] = name if isinstance(name, str) and name else None
        self.selector = {str(k): str(v) for k, v in mapping(spec.get("nodeSelector")).items()}
        required = mapping(mapping(mapping(spec.get("affinity")).get("nodeAffinity")).get(
            "requiredDuringSchedulingIgnoredDuringExecution"))
        self.terms = [mapping(term) for term in sequence(required.get("nodeSelectorTerms"))]
        self.tolerations = [mapping(t) for t in sequence(spec.get("tolerations"))]
        self.key = json.dumps([self.node_name, self.selector, self.terms, self.tolerations], sort_keys=True,
                              default=str)

    def fits(self, node: Resource) -> bool:
        """Can this pod run on `node` (a Node object)?"""
        if self.node_name is not None and self.node_name != node.name:
            return False
        labels = labels_of(node.body.get("metadata"))
        if any(labels.get(key) != value for key, value in self.selector.items()):
            return False
        if self.terms and not any(_term_matches(term, labels, node.name) for term in self.terms):
            return False
        for taint in sequence(mapping(node.body.get("spec")).get("taints")):
            taint = mapping(taint)
            if taint.get("effect") in HARD_EFFECTS and not any(_tolerates(t, taint) for t in self.tolerations):
                return False
        return True

    def may_share(self, other: "Constraints") -> bool:
        """Without Node objects: no conflict on their face."""
        if self.node_name is not None and other.node_name is not None and self.node_name != other.node_name:
            return False
        return all(other.selector.get(key, value) == value for key, value in self.selector.items())


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if not key:
        return False  # Equal with an empty key is invalid: tolerates nothing
    return str(toleration.get("value") or "") == str(taint.get("value") or "")


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    expressions = sequence(term.get("matchExpressions"))
    fields = sequence(term.get("matchFields"))
    if not expressions and not fields:
        return False  # an empty term matches no node
    return all(_expression(mapping(e), labels) for e in expressions) and \
        all(_expression(mapping(f), {"metadata.name": name}) for f in fields)


def _expression(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A node selector requirement: the label selector's operators (kaudit/selectors.py), and Gt/Lt
    on integer label values."""
    key = str(expression.get("key"))
    values = [str(v) for v in sequence(expression.get("values"))]
    operator = expression.get("operator")
    if operator in OPERATORS:
        return Requirement(key, str(operator), frozenset(values)).matches(labels)
    if operator in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def shared_nodes(pools: Sequence[Constraints], nodes: Sequence[Resource]) -> list[list[tuple[int, str]]]:
    """For each pool, the pools whose pods can share a node with its pods, each with the name of
    one such node ("" without Node objects)."""
    if nodes:
        fits = [[node.name for node in nodes if pool.fits(node)] for pool in pools]
        sets = [set(names) for names in fits]
        return [[(j, min(mine & sets[j])) for j in range(len(pools)) if mine & sets[j]] for mine in sets]
    return [[(j, "") for j, other in enumerate(pools) if pool.may_share(other) and other.may_share(pool)]
            for pool in pools]
