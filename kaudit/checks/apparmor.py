"""`apparmor-profile-set`: a container whose AppArmor profile nobody chose (no field, no annotation).

What counts as set follows the API server: the container's `securityContext.appArmorProfile`, else
the pod's (GA in v1.30; the container's overrides the pod's), else the deprecated annotation
`container.apparmor.security.beta.kubernetes.io/<container>`, which the API server still copies into
the container's field. Any profile counts, `Unconfined` too: that one is the PSS rule
`apparmor-unconfined`'s fact, not this rule's.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.checks.pss import APPARMOR_ANNOTATION_PREFIX
from kaudit.workloads import mapping


def profile_set(profile: Any) -> bool:
    """A field naming a profile type; the API server validates the type and the Localhost name."""
    kind = mapping(profile).get("type")
    return isinstance(kind, str) and kind != ""


def _bind(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        pod, container = subject.pod, subject.container
        assert pod is not None and container is not None
        if profile_set(container.security_context.get("appArmorProfile")):
            return ()
        if profile_set(pod.security_context.get("appArmorProfile")):
            return ()
        annotation = mapping(pod.metadata.get("annotations")).get(APPARMOR_ANNOTATION_PREFIX + container.name)
        if isinstance(annotation, str) and annotation.strip():
            return ()
        return (Hit(container.path + ("securityContext", "appArmorProfile")),)

    return check


TEMPLATES = [
    Template("apparmor-profile-set", "Containers with no AppArmor profile chosen (field or annotation).",
             frozenset({"container"}), {"type": "object", "additionalProperties": False}, _bind),
]
