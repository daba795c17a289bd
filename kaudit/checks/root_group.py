"""`root-supplemental-group`: GID 0 among a pod's groups (fsGroup, supplementalGroups).

Both are pod-level only (PodSecurityContext): the kubelet adds each to the supplementary groups of
every container's first process, and fsGroup also owns (and setgids) the pod's volumes. `runAsGroup`
(a container may override the pod's) is the `schema` rule run-as-root-group on the effective view.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import sequence


def is_gid_zero(value: Any) -> bool:
    """GID 0 as the API reads an int64: `0`, not `false` (YAML booleans are no numbers) or "0"."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0


def _bind(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None
        context = pod.security_context
        where = pod.path + ("securityContext",)
        hits = []
        if is_gid_zero(context.get("fsGroup")):
            hits.append(Hit(where + ("fsGroup",), {"field": "fsGroup"}))
        for index, group in enumerate(sequence(context.get("supplementalGroups"))):
            if is_gid_zero(group):
                hits.append(Hit(where + ("supplementalGroups", index), {"field": f"supplementalGroups[{index}]"}))
        return hits

    return check


TEMPLATES = [
    Template(
        key="root-supplemental-group",
        description="The pod adds GID 0 (root) to its containers' groups: fsGroup or supplementalGroups.",
        targets=frozenset({"pod"}),
        params_schema={"type": "object", "additionalProperties": False},
        bind=_bind,
    )
]
