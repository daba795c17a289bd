"""Findings belong to the controller that owns a pod, not to each of its replicas.

Kubernetes says who controls what: an ownerReference with `controller: true` (Pod -> ReplicaSet ->
Deployment, Pod -> Job -> CronJob, Pod -> StatefulSet or DaemonSet). `collapse` keeps, as objects
rules judge, only what no workload in the scan controls. An object owned by one (a pod, a
ReplicaSet, a Job) becomes part of its top controller in the scan:

- the same as the owner's template in everything rules judge (`signature`): gone, the owner's
  findings say it all;
- different (a sidecar injected at admission, a pod of an earlier revision still running): an
  `Instance`, one per owner and difference, judged by the rules about a pod's own spec and
  reported on the owner (kaudit/instances.py); never an object of its own, so network isolation,
  namespace rules and their counts see the controller only.

An object whose controller is not in the scan (unreadable, or a kind kaudit does not read) or is
not a workload (the Node of a static pod) is judged as itself. A ReplicaSet scaled to zero (an old
revision) runs nothing: dropped.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Optional, Sequence

from kaudit.checks.pss import APPARMOR_ANNOTATION_PREFIX, apparmor_field
from kaudit.model import Resource
from kaudit.value import field, record, value
from kaudit.workloads import EMPTY, PodSpec, mapping, pod_spec, sequence

# What rules read of a container and of a pod spec. Not `resources`: LimitRanger and the vertical
# pod autoscaler rewrite them in every pod, and rules only ask whether the template declares limits.
CONTAINER_FIELDS = ("name", "image", "imagePullPolicy", "securityContext", "ports", "env", "envFrom",
                    "volumeMounts", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle")
POD_FIELDS = ("securityContext", "hostNetwork", "hostPID", "hostIPC", "hostUsers", "automountServiceAccountToken",
              "runtimeClassName", "os")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
MAX_DEPTH = 8  # owner chains are 2 or 3 long; a cycle of references must not loop forever


@value
class Instance:
    """Running objects of one owner that differ from its template in one way: the first seen."""

    resource: Resource  # a Pod, or a ReplicaSet / Job whose template differs from its owner's
    pod: PodSpec
    owner: Resource  # the top controller in the scan
    owner_pod: PodSpec
    # admission: it differs from the template it was made from (a webhook changed it);
    # revision: it was made from an earlier template of the owner (a rollout under way)
    origin: str


@record
class Collapsed:
    """A cluster's objects with pods folded into their controllers, and the pods that differ."""

    resources: list[Resource]  # what rules judge as objects
    instances: list[Instance] = field(default_factory=list)


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _api_token_volume(volume: Any) -> bool:
    """The volume ServiceAccount admission adds to every pod that automounts a token: a projected
    token for the API server's own audience. Whether it is there follows from the pod's and its
    account's automountServiceAccountToken, which the owner's template is judged on."""
    sources = sequence(mapping(mapping(volume).get("projected")).get("sources"))
    return any(isinstance(s, dict) and isinstance(s.get("serviceAccountToken"), dict)
               and not s["serviceAccountToken"].get("audience") for s in sources)


def _apparmor(field: Any, annotation: Any, pod_field: Any) -> Any:
    """The AppArmor profile a container runs with: its field, else its annotation (since v1.30 the
    API server copies each into the other in every pod), else the pod's field."""
    if field is not None:
        return field
    if annotation is not None:
        return apparmor_field(annotation) or {"annotation": annotation}
    return pod_field


def signature(spec: Mapping[str, Any], metadata: Mapping[str, Any] = EMPTY, claims: Iterable[str] = ()) -> str:
    """What rules see of a pod spec, with what the API server adds to every pod normalised away:
    nil structs defaulted to {}, the account named `default` when none is, the API token volume,
    a host-network pod's ports defaulted to host ports, AppArmor fields and annotations kept in
    step, a StatefulSet's claim volumes (`claims`: the names of its volumeClaimTemplates, which the
    controller adds to each pod, claim per pod)."""
    token_volumes = {mapping(v).get("name") for v in sequence(spec.get("volumes")) if _api_token_volume(v)}
    host_network = spec.get("hostNetwork") is True
    annotations = mapping(metadata.get("annotations"))
    pod_apparmor = mapping(spec.get("securityContext")).get("appArmorProfile")
    names: set[Any] = set()

    def container(c: Any) -> dict[str, Any]:
        c = mapping(c)
        view = {k: c[k] for k in CONTAINER_FIELDS if not _empty(c.get(k))}
        names.add(c.get("name"))
        context = dict(mapping(c.get("securityContext")))
        view["apparmor"] = _apparmor(context.pop("appArmorProfile", None),
                                     annotations.get(f"{APPARMOR_ANNOTATION_PREFIX}{c.get('name')}"), pod_apparmor)
        view["securityContext"] = context
        if token_volumes and "volumeMounts" in view:
            view["volumeMounts"] = [m for m in sequence(view["volumeMounts"]) if mapping(m).get("name") not in token_volumes]
            if not view["volumeMounts"]:
                del view["volumeMounts"]
        if host_network and "ports" in view:  # SetDefaults_Pod: hostPort = containerPort
            view["ports"] = [{**p, "hostPort": p.get("hostPort") or p.get("containerPort")} if isinstance(p, dict) else p
                             for p in sequence(view["ports"])]
        return view

    view: dict[str, Any] = {k: spec[k] for k in POD_FIELDS if not _empty(spec.get(k))}
    view["serviceAccountName"] = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    volumes = {str(mapping(v).get("name")): v for v in sequence(spec.get("volumes"))
               if mapping(v).get("name") not in token_volumes}
    for claim in claims:
        volumes[claim] = {"name": claim, "persistentVolumeClaim": {}}
    for name, volume in volumes.items():
        if isinstance(mapping(volume).get("persistentVolumeClaim"), dict):
            volumes[name] = {"name": name, "persistentVolumeClaim": {}}  # the claim's name is per pod
    view["volumes"] = [volumes[name] for name in sorted(volumes)]  # a map keyed by name: order is no difference
    for key in CONTAINER_LISTS:
        view[key] = [container(c) for c in sequence(spec.get(key))]
    view["annotations"] = {k: v for k, v in annotations.items() if isinstance(k, str) and k.startswith(
        APPARMOR_ANNOTATION_PREFIX) and k[len(APPARMOR_ANNOTATION_PREFIX):] not in names}
    return json.dumps(view, sort_keys=True, default=str)


def _group(api_version: Any) -> str:
    return str(api_version).rpartition("/")[0]


class _Owners:
    """Who controls what, by ownerReferences with `controller: true`; each answer computed once."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.by_identity = {(_group(r.ref.api_version), r.kind, r.namespace, r.name): r for r in resources}
        self.by_uid = {str(uid): r for r in resources if (uid := mapping(r.body.get("metadata")).get("uid"))}
        self.pods: dict[int, Optional[PodSpec]] = {}
        self.tops: dict[int, Optional[Resource]] = {}
        self.signatures: dict[int, str] = {}

    def pod(self, resource: Resource) -> Optional[PodSpec]:
        key = id(resource)
        if key not in self.pods:
            self.pods[key] = pod_spec(resource.body)
        return self.pods[key]

    def controller(self, resource: Resource) -> Optional[Resource]:
        metadata = mapping(resource.body.get("metadata"))
        for ref in sequence(metadata.get("ownerReferences")):
            ref = mapping(ref)
            if ref.get("controller") is not True or not ref.get("kind") or not ref.get("name"):
                continue
            # the uid is the owner (its apiVersion may be one the server no longer serves)
            ref_uid = str(ref.get("uid") or "")
            if ref_uid in self.by_uid:
                return self.by_uid[ref_uid]
            key = (_group(ref.get("apiVersion", "")), str(ref["kind"]), resource.namespace, str(ref["name"]))
            found = self.by_identity.get(key) or self.by_identity.get(key[:2] + (None,) + key[3:])
            if found is not None and ref_uid and mapping(found.body.get("metadata")).get("uid"):
                return None  # a namesake created after the owner was deleted: not the owner
            return found
        return None

    def top(self, resource: Resource, depth: int = 0) -> Optional[Resource]:
        """The highest of `resource` and its controllers that holds a pod template."""
        key = id(resource)
        if key not in self.tops:
            self.tops[key] = None  # a cycle of references ends here
            above = self.controller(resource) if depth < MAX_DEPTH else None
            higher = self.top(above, depth + 1) if above is not None else None
            self.tops[key] = higher or (resource if self.pod(resource) is not None else None)
        return self.tops[key]

    def signature(self, resource: Resource) -> str:
        key = id(resource)
        if key not in self.signatures:
            pod = self.pod(resource)
            assert pod is not None
            claims = [str(mapping(mapping(claim).get("metadata")).get("name"))
                      for claim in sequence(mapping(resource.body.get("spec")).get("volumeClaimTemplates"))]
            self.signatures[key] = signature(pod.spec, pod.metadata, claims)
        return self.signatures[key]


def collapse(resources: Sequence[Resource]) -> Collapsed:
    owners = _Owners(resources)
    kept: list[Resource] = []
    instances: list[Instance] = []
    seen: set[tuple[int, str]] = set()
    for resource in resources:
        pod = owners.pod(resource)
        parent = owners.controller(resource) if pod is not None else None
        owner = owners.top(parent) if parent is not None else None
        owner_pod = owners.pod(owner) if owner is not None else None
        if pod is None or parent is None or owner is None or owner_pod is None:
            kept.append(resource)  # not controlled by a workload in the scan: judged as itself
            continue
        if resource.kind != "Pod" and mapping(resource.body.get("spec")).get("replicas") == 0:
            continue  # an old ReplicaSet revision, scaled to zero: nothing runs from it
        pod_signature = signature(pod.spec, pod.metadata)
        if pod_signature == owners.signature(owner) or (id(owner), pod_signature) in seen:
            continue
        seen.add((id(owner), pod_signature))
        # a pod is made from its parent's template: any difference from it was made at admission
        made_from = parent if owners.pod(parent) is not None else owner
        admitted = resource.kind == "Pod" and pod_signature != owners.signature(made_from)
        instances.append(Instance(resource, pod, owner, owner_pod, "admission" if admitted else "revision"))
    # an earlier revision's findings first: what is left on a pod of it was added at admission
    instances.sort(key=lambda instance: instance.origin != "revision")
    return Collapsed(kept, instances)
