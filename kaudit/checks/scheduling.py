"""`node-selection`: where node pools are required (the `required` param, in all namespaces or the
`namespaces` globs), pods must select nodes.

Selecting nodes is `nodeName`, a `nodeSelector` entry, or required node affinity whose every term
(terms are ORed) constrains a label with `In` or `Exists` (`NotIn` and `DoesNotExist` only exclude);
with `label-keys`, the labels must be among those (the pool labels of the cluster, e.g.
`cloud.google.com/gke-nodepool`). Preferred affinity and tolerations select nothing: a toleration
allows a tainted pool, it does not keep the pod off the others.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "required": {"type": "boolean", "default": False,
                     "description": "report pods that select no nodes (off by default: the rule reports nothing)"},
        "label-keys": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
                       "description": "node labels that name a pool; empty: any label selects"},
        "namespaces": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
                       "description": "only in these namespaces (globs, e.g. tenant-*); empty: everywhere, objects "
                                      "without a namespace included"},
    },
}
SELECTING_OPERATORS = ("In", "Exists")


def _selects(key: Any, keys: Optional[frozenset[str]]) -> bool:
    return isinstance(key, str) and bool(key) and (keys is None or key in keys)


def _term_selects(term: Any, keys: Optional[frozenset[str]]) -> bool:
    term = mapping(term)
    expressions = sequence(term.get("matchExpressions")) + sequence(term.get("matchFields"))
    return any(_selects(mapping(e).get("key"), keys) and mapping(e).get("operator") in SELECTING_OPERATORS
               for e in expressions)


def selects_nodes(spec: Mapping[str, Any], keys: Optional[frozenset[str]] = None) -> bool:
    """Does the pod spec confine the pod to chosen nodes (by `keys`, when given)?"""
    node_name = spec.get("nodeName")
    if isinstance(node_name, str) and node_name:
        return True
    if any(_selects(key, keys) for key in mapping(spec.get("nodeSelector"))):
        return True
    required = mapping(mapping(mapping(spec.get("affinity")).get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution"))
    terms = sequence(required.get("nodeSelectorTerms"))
    return bool(terms) and all(_term_selects(term, keys) for term in terms)


def _bind(params: Mapping[str, Any], target: str) -> Check:
    required = bool(params.get("required", False))
    keys = frozenset(params.get("label-keys") or ()) or None
    namespaces = tuple(params.get("namespaces") or ())

    def in_scope(namespace: Optional[str]) -> bool:
        return not namespaces or namespace is not None and any(fnmatchcase(namespace, p) for p in namespaces)

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None
        if not required or not in_scope(subject.resource.namespace) or selects_nodes(pod.spec, keys):
            return ()
        wanted = f"a node label among {', '.join(sorted(keys))}" if keys else "a node label"
        return (Hit(pod.path + ("nodeSelector",), {"wanted": wanted}),)

    return check


TEMPLATES = [
    Template(
        key="node-selection",
        description="Where node pools are required (param `required`), the pod must select nodes by label.",
        targets=frozenset({"pod"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
