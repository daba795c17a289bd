"""`naked-pod`: a Pod nothing controls, so nothing recreates it when it or its node goes.

A controller is the ownerReference with `controller: true` (a ReplicaSet, Job, StatefulSet,
DaemonSet, an operator's custom resource): the garbage collector and that controller own the pod's
life. A Node as controller is a mirror pod, and a manifest in a kubelet's static pod directory is a
static pod: the kubelet restarts those itself (kaudit/static_pods.py).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.static_pods import PARAMS_SCHEMA_PROPERTY, controller_of, is_static_pod

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"static-pod-paths": PARAMS_SCHEMA_PROPERTY},
}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    extra = tuple(params.get("static-pod-paths", ()))

    def check(subject: Target) -> Iterable[Hit]:
        resource = subject.resource
        if resource.kind != "Pod" or resource.ref.api_version != "v1":
            return ()
        if controller_of(resource.body) is not None or is_static_pod(resource, extra, subject.lookup):
            return ()
        return (Hit(("kind",)),)

    return check


TEMPLATES = [
    Template(
        key="naked-pod",
        description="A Pod without a controller (no ownerReference with controller: true) that is not a static pod.",
        targets=frozenset({"object"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
