"""What part of a target a `schema` rule looks at, and how a path in it maps back to the object."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from kaudit.checks.base import Target
from kaudit.model import FieldPath
from kaudit.workloads import effective_security_context

View = tuple[Any, Callable[[FieldPath], FieldPath]]

# view name -> the targets it is defined for
VIEW_TARGETS: Mapping[str, frozenset[str]] = {
    "object": frozenset({"object", "pod", "container"}),
    "pod": frozenset({"pod", "container"}),
    "pod-spec": frozenset({"pod", "container"}),
    "container": frozenset({"container"}),
    "effective-security-context": frozenset({"container"}),
}


# target -> the view a `schema` rule gets when it names none: the part the rule is about (a
# container rule sees its container, not the whole Deployment). Every built-in rule names its view.
DEFAULT_VIEWS: Mapping[str, str] = {"object": "object", "pod": "pod-spec", "container": "container"}


def build_view(name: str, target: Target) -> View:
    if name == "object":
        return target.body, lambda path: path
    pod = target.pod
    assert pod is not None, f"view {name} needs a pod target"
    if name == "pod-spec":
        return pod.spec, lambda path: pod.path + path
    if name == "pod":
        def pod_path(path: FieldPath) -> FieldPath:
            if path and path[0] == "metadata":
                return pod.metadata_path + path[1:]
            return pod.path + path[1:] if path else pod.path

        return {"metadata": pod.metadata, "spec": pod.spec}, pod_path
    container = target.container
    assert container is not None, f"view {name} needs a container target"
    if name == "container":
        return container.body, lambda path: container.path + path
    effective = target.memo.get(name)
    if effective is None:
        effective = target.memo[name] = effective_security_context(pod, container)
    return effective.values, effective.object_path
