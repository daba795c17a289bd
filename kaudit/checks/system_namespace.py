"""`system-namespace`: a workload placed in a namespace Kubernetes keeps for itself.

The platform's own workloads there are recognised by what makes them the platform's, not by names
or labels: static pods (a mirror pod owned by its Node, or a manifest in a kubelet's static pod
directory: kaudit/static_pods.py), which the kubelet runs before any API object exists. Nothing
else in these namespaces is created by Kubernetes itself: add-ons (DNS, kube-proxy, the CNI) are
installed there by a distribution or an operator, and are reported like any other workload.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.static_pods import PARAMS_SCHEMA_PROPERTY, is_static_pod

# The namespaces the API server creates and keeps for the system (SystemNamespaces in
# pkg/controlplane: kube-system, kube-public, kube-node-lease).
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "namespaces": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": list(SYSTEM_NAMESPACES),
                       "description": "the namespaces reserved for the platform"},
        "static-pod-paths": PARAMS_SCHEMA_PROPERTY,
    },
}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    reserved = frozenset(params.get("namespaces", SYSTEM_NAMESPACES))
    extra = tuple(params.get("static-pod-paths", ()))

    def check(subject: Target) -> Iterable[Hit]:
        resource = subject.resource
        if resource.namespace not in reserved:
            return ()
        if is_static_pod(resource, extra, subject.lookup):
            return ()
        return (Hit(("metadata", "namespace")),)

    return check


TEMPLATES = [
    Template(
        key="system-namespace",
        description="A workload in a namespace reserved for the platform (kube-system, kube-public, kube-node-lease), "
                    "other than a static pod.",
        targets=frozenset({"object"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
