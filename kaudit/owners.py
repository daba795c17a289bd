"""Findings belong to the controller that owns a pod, not to each of its replicas.

A running pod whose owner (through ReplicaSet -> Deployment, Job -> CronJob) is in the inventory is
dropped when it matches the owner's template in everything rules look at. A pod that differs, e.g.
a sidecar injected at admission, is kept (one per owner and difference) and reports only what the
owner does not already report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from kaudit.model import FieldPath, Finding, Resource, ResourceRef
from kaudit.workloads import mapping, pod_spec, sequence

CONTAINER_FIELDS = ("name", "image", "securityContext", "ports", "env", "volumeMounts")
POD_FIELDS = ("securityContext", "hostNetwork", "hostPID", "hostIPC", "serviceAccountName",
              "automountServiceAccountToken", "runtimeClassName", "volumes")


@dataclass(frozen=True)
class KeptPod:
    pod: ResourceRef
    owner: ResourceRef
    owner_spec_path: FieldPath


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def signature(spec: Mapping[str, Any]) -> str:
    """What rules see of a pod spec, normalised (admission defaults nil structs to {})."""
    def container(c: Any) -> dict[str, Any]:
        c = mapping(c)
        return {k: c[k] for k in CONTAINER_FIELDS if not _empty(c.get(k))}

    view = {k: spec[k] for k in POD_FIELDS if not _empty(spec.get(k))}
    for key in ("initContainers", "containers"):
        view[key] = [container(c) for c in sequence(spec.get(key))]
    return json.dumps(view, sort_keys=True, default=str)


def _controller(resource: Resource) -> Optional[tuple[str, str]]:
    for ref in sequence(mapping(resource.body.get("metadata")).get("ownerReferences")):
        ref = mapping(ref)
        if ref.get("controller") is True and ref.get("kind") and ref.get("name"):
            return str(ref["kind"]), str(ref["name"])
    return None


def collapse(resources: Sequence[Resource]) -> tuple[list[Resource], list[KeptPod]]:
    by_identity = {(r.kind, r.namespace, r.name): r for r in resources}

    def top_owner(resource: Resource) -> Optional[Resource]:
        owner: Optional[Resource] = None
        current = resource
        for _ in range(3):  # Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob
            parent = _controller(current)
            found = by_identity.get((parent[0], current.namespace, parent[1])) if parent else None
            if found is None:
                break
            owner = current = found
        return owner

    kept: list[Resource] = []
    kept_pods: list[KeptPod] = []
    seen: set[tuple[ResourceRef, str]] = set()
    for resource in resources:
        pod = pod_spec(resource.body)
        owner = top_owner(resource) if pod is not None else None
        owner_pod = pod_spec(owner.body) if owner is not None else None
        if owner is None or owner_pod is None or pod is None:
            kept.append(resource)  # not owned, or its owner is not readable: judge it itself
            continue
        if resource.kind != "Pod" and mapping(resource.body.get("spec")).get("replicas") == 0:
            continue  # an old ReplicaSet revision, scaled to zero: nothing runs from it
        pod_signature = signature(pod.spec)
        if pod_signature == signature(owner_pod.spec) or (owner.ref, pod_signature) in seen:
            continue
        seen.add((owner.ref, pod_signature))
        kept.append(resource)
        kept_pods.append(KeptPod(resource.ref, owner.ref, owner_pod.path))
    return kept, kept_pods


def drop_inherited(findings: Sequence[Finding], kept_pods: Sequence[KeptPod]) -> list[Finding]:
    """On a kept pod, drop findings its owner already has (same rule, container and field)."""
    if not kept_pods:
        return list(findings)
    owner_of = {k.pod: k for k in kept_pods}
    owners = {k.owner for k in kept_pods}
    owner_findings = {(f.resource, f.rule, f.container, f.path) for f in findings if f.resource in owners}
    result = []
    for finding in findings:
        kept = owner_of.get(finding.resource)
        if kept is not None:
            relative = finding.path[1:] if finding.path[:1] == ("spec",) else finding.path
            if (kept.owner, finding.rule, finding.container, kept.owner_spec_path + relative) in owner_findings:
                continue
        result.append(finding)
    return result
