"""Resource requests and limits as the API server completes them, and the namespace guard rails.

`container-resource`: a container's request or limit for one resource, set by the container, by
the defaulting of a request from the limit, by pod-level resources, or by a LimitRange default of
its scope (kaudit/analyzers/limits.py says how each applies). `namespace-limit-range` and
`namespace-resource-quota`: a namespace (or a group of objects without one) that runs workloads
and has no LimitRange / ResourceQuota bounding cpu and memory.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from kaudit.analyzers.limits import (GUARDED, POD_LEVEL_RESOURCES, LimitRangeDefaults, LimitsIndex, is_set,
                                     limits_index, names, set_keys)
from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.checks.network import IGNORE_NAMESPACES, SYSTEM_NAMESPACES
from kaudit.inventory import namespace_applied_to
from kaudit.model import FieldPath
from kaudit.workloads import mapping

RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
CONTAINER_PARAMS = {
    "type": "object",
    "required": ["resource", "field"],
    "additionalProperties": False,
    "properties": {
        "resource": {"enum": list(RESOURCE_NAMES), "description": "the resource the container must set"},
        "field": {"enum": ["requests", "limits"], "description": "resources.requests or resources.limits"},
    },
}
NOUN = {"requests": "request", "limits": "limit"}


def _container_resource(params: Mapping[str, Any], target: str) -> Check:
    resource, field = params["resource"], params["field"]

    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None
        given = _given(subject)
        if resource in given[field]:
            return ()
        path = container.path + ("resources", field, resource)
        return (Hit(path, {"limitRange": _what_ranges_give(given["ranges"], resource, field)}),)

    return check


_GIVEN = "resources.given"  # Target.memo key: what a container's requests and limits come to


def _given(subject: Target) -> dict[str, Any]:
    """The resources whose request (`requests`) and limit (`limits`) the container ends up with, and
    its scope's LimitRanges (`ranges`): worked out once per container for the six rules that ask."""
    given: Optional[dict[str, Any]] = subject.memo.get(_GIVEN)
    if given is not None:
        return given
    container, pod, lookup = subject.container, subject.pod, subject.lookup
    assert container is not None and pod is not None and lookup is not None
    own = mapping(container.body.get("resources"))
    limits = set(set_keys(own.get("limits")))
    # SetDefaults_Pod: an unset request of a container or init container takes its limit.
    requests = set(set_keys(own.get("requests"))) | limits
    if not pod.is_windows:
        pod_level = mapping(pod.spec.get("resources"))
        # A pod-level request (or limit: defaultPodRequests) is what scheduling and QoS use; a
        # pod-level limit bounds every container of the pod together.
        pod_limits = set_keys(pod_level.get("limits")) & POD_LEVEL_RESOURCES
        requests |= (set_keys(pod_level.get("requests")) & POD_LEVEL_RESOURCES) | pod_limits
        limits |= pod_limits
    ranges = limits_index(lookup).limit_ranges.get(lookup.scope(subject.resource), [])
    for limit_range in ranges:
        requests |= limit_range.requests
        limits |= limit_range.limits
    given = subject.memo[_GIVEN] = {"requests": requests, "limits": limits, "ranges": ranges}
    return given


def _gives(limit_range: LimitRangeDefaults, field: str) -> frozenset[str]:
    return limit_range.requests if field == "requests" else limit_range.limits


def _what_ranges_give(ranges: list[LimitRangeDefaults], resource: str, field: str) -> str:
    """How the LimitRanges of the scope fall short, for the message ("" where there is none)."""
    if not ranges:
        return ""
    noun = NOUN[field]
    giving = [r for r in ranges if _gives(r, field)]
    named = giving or ranges
    which = f"LimitRange {names(named)} sets" if len(named) == 1 else f"LimitRanges {names(named)} set"
    if giving:
        others = sorted(set().union(*(_gives(r, field) for r in giving)))
        return f" ({which} a default {' and '.join(others)} {noun} but no {resource} one)"
    return f" ({which} no default {noun})"


NAMESPACE_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"ignore-namespaces": IGNORE_NAMESPACES},
}


def _namespace_check(params: Mapping[str, Any], problem: Any) -> Check:
    """A namespace with workloads, or a group of objects without a namespace (judged as the one it
    is applied to, the finding on its first workload), for which `problem(index, scope)` says what
    is missing, or "" when nothing is."""
    ignored = set(params.get("ignore-namespaces", SYSTEM_NAMESPACES))

    def check(subject: Target) -> Iterable[Hit]:
        scope = subject.scope
        if scope is None or scope.namespace in ignored or subject.lookup is None:
            return ()
        index = limits_index(subject.lookup)
        workloads = index.workloads.get(scope, [])
        if not workloads:
            return ()
        what = problem(index, scope)
        if not what:
            return ()
        path: FieldPath = ("metadata", "name")
        where = f'Namespace "{scope.namespace}"'
        if scope.namespace is None:
            where = f"{namespace_applied_to(subject.resource.origin)} (its objects set no metadata.namespace)"
            path = ("metadata",)
        return (Hit(path, {"where": where, "workloads": str(len(workloads)),
                           "example": workloads[0].ref.describe(), "problem": what}),)

    return check


def _limit_range_problem(index: LimitsIndex, scope: Any) -> str:
    ranges = index.limit_ranges.get(scope, [])
    if not ranges:
        return "has no LimitRange"
    bounded = set().union(*(r.bounded for r in ranges))
    missing = [name for name in GUARDED if name not in bounded]
    if not missing:
        return ""
    which = f"its LimitRange {names(ranges)} sets" if len(ranges) == 1 else f"its LimitRanges ({names(ranges)}) set"
    return f"{which} no default, min or max for {' or '.join(missing)}"


def _quota_problem(index: LimitsIndex, scope: Any) -> str:
    quotas = index.quotas.get(scope, [])
    if not quotas:
        return "has no ResourceQuota"
    whole = [q for q in quotas if not q.scoped]
    bounded = set().union(*(q.bounded for q in whole)) if whole else set()
    missing = [name for name in GUARDED if name not in bounded]
    if not missing:
        return ""
    which = f"its ResourceQuota {names(quotas)} sets" if len(quotas) == 1 else \
        f"its ResourceQuotas ({names(quotas)}) set"
    scoped = [q for q in quotas if q.scoped and q.bounded]
    caveat = f" ({names(scoped)}: scoped, it counts only the pods it selects)" if scoped else ""
    return f"{which} no hard limit on {' or '.join(missing)} for all its pods{caveat}"


def _limit_range_coverage(params: Mapping[str, Any], target: str) -> Check:
    return _namespace_check(params, _limit_range_problem)


def _quota_coverage(params: Mapping[str, Any], target: str) -> Check:
    return _namespace_check(params, _quota_problem)


TEMPLATES = [
    Template("container-resource",
             "A container without a request (or limit) for a resource once defaulting, pod-level resources "
             "and its namespace's LimitRanges are applied.",
             frozenset({"container"}), CONTAINER_PARAMS, _container_resource, cross_object=True,
             reads=frozenset({"LimitRange"}), container_fields=frozenset({"resources"}), local_without_reads=True),
    Template("namespace-limit-range", "Namespaces with workloads and no LimitRange bounding cpu and memory.",
             frozenset({"namespace"}), NAMESPACE_PARAMS, _limit_range_coverage, cross_object=True,
             reads=frozenset({"LimitRange"}), judges_groups=True),
    Template("namespace-resource-quota", "Namespaces with workloads and no ResourceQuota bounding cpu and memory.",
             frozenset({"namespace"}), NAMESPACE_PARAMS, _quota_coverage, cross_object=True,
             reads=frozenset({"ResourceQuota"}), judges_groups=True),
]
