"""The pod spec inside any workload, its containers, and their effective security context.

Works for Pod, PodTemplate, every built-in controller and any custom resource that embeds a pod
template at `spec.template.spec` or `spec.jobTemplate.spec.template.spec` (Argo Rollouts,
OpenKruise, …): kube-linter's one-helper-finds-the-pod-template idea.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from kaudit.model import FieldPath

EMPTY: Mapping[str, Any] = {}

# Candidate places of the pod spec and its metadata, most specific first.
_POD_TEMPLATE_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec", "jobTemplate", "spec", "template"),
    ("spec", "template"),
    ("template",),  # PodTemplate
)

CONTAINER_LISTS = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)

# Fields of the pod-level securityContext that a container-level one overrides (kubelet semantics:
# DetermineEffectiveSecurityContext); windowsOptions is merged field by field.
OVERRIDABLE_FIELDS = ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions", "seccompProfile", "appArmorProfile")
CONTAINER_ONLY_FIELDS = ("privileged", "allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem", "procMount")


@dataclass(frozen=True)
class PodSpec:
    spec: Mapping[str, Any]
    path: FieldPath
    metadata: Mapping[str, Any]
    metadata_path: FieldPath

    @property
    def security_context(self) -> Mapping[str, Any]:
        return mapping(self.spec.get("securityContext"))

    @property
    def is_windows(self) -> bool:
        return mapping(self.spec.get("os")).get("name") == "windows"


@dataclass(frozen=True)
class Container:
    body: Mapping[str, Any]
    path: FieldPath
    name: str
    kind: str  # container | initContainer | ephemeralContainer

    @property
    def security_context(self) -> Mapping[str, Any]:
        return mapping(self.body.get("securityContext"))


@dataclass(frozen=True)
class EffectiveSecurityContext:
    """The security context a container runs with; `sources` says where each field was set."""

    values: Mapping[str, Any]
    sources: Mapping[str, FieldPath]
    container_path: FieldPath

    def object_path(self, view_path: FieldPath) -> FieldPath:
        """Map a path inside this view to the path in the object where it is (or belongs)."""
        if not view_path:
            return self.container_path + ("securityContext",)
        head, rest = view_path[0], view_path[1:]
        source = self.sources.get(head) if isinstance(head, str) else None
        if source is None:
            return self.container_path + ("securityContext",) + view_path
        return source + rest


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one: rules must survive `securityContext: null`."""
    return value if isinstance(value, dict) else EMPTY


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_spec(body: Mapping[str, Any]) -> Optional[PodSpec]:
    if body.get("kind") == "Pod" and isinstance(body.get("spec"), dict):
        return PodSpec(body["spec"], ("spec",), mapping(body.get("metadata")), ("metadata",))
    for path in _POD_TEMPLATE_PATHS:
        template: Any = body
        for key in path:
            template = mapping(template).get(key)
        spec = mapping(template).get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
            return PodSpec(spec, path + ("spec",), mapping(template.get("metadata")), path + ("metadata",))
    return None


def containers(pod: PodSpec) -> list[Container]:
    found = []
    for field_name, kind in CONTAINER_LISTS:
        for index, body in enumerate(sequence(pod.spec.get(field_name))):
            if isinstance(body, dict):
                name = body.get("name")
                found.append(Container(body, pod.path + (field_name, index), str(name or f"#{index}"), kind))
    return found


def effective_security_context(pod: PodSpec, container: Container) -> EffectiveSecurityContext:
    pod_sc, container_sc = pod.security_context, container.security_context
    pod_sc_path = pod.path + ("securityContext",)
    container_sc_path = container.path + ("securityContext",)
    values: dict[str, Any] = {}
    sources: dict[str, FieldPath] = {}
    for name in OVERRIDABLE_FIELDS:
        if container_sc.get(name) is not None:
            values[name], sources[name] = container_sc[name], container_sc_path + (name,)
        elif pod_sc.get(name) is not None:
            values[name], sources[name] = pod_sc[name], pod_sc_path + (name,)
    for name in CONTAINER_ONLY_FIELDS:
        if container_sc.get(name) is not None:
            values[name], sources[name] = container_sc[name], container_sc_path + (name,)
    windows = {**mapping(pod_sc.get("windowsOptions")), **mapping(container_sc.get("windowsOptions"))}
    if windows:
        values["windowsOptions"] = windows
        owner = container_sc_path if container_sc.get("windowsOptions") is not None else pod_sc_path
        sources["windowsOptions"] = owner + ("windowsOptions",)
    return EffectiveSecurityContext(values, sources, container.path)
