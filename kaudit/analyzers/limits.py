"""The LimitRanges and ResourceQuotas of each scope, read with the API server's own defaulting.

What gives a container a request or a limit it does not declare (Kubernetes source, v1.34):
- `SetDefaults_Pod` (pkg/apis/core/v1/defaults.go) copies each limit of a container or init
  container into its unset request: `limits.cpu: 1` and no `requests.cpu` is a request of 1.
  (It runs on Pods, so a controller's template keeps the field unset; every pod it creates has it.)
- Pod Level Resources (beta in 1.34, cpu and memory only; not for Windows pods): `spec.resources`
  on the pod. Its requests take precedence over the containers' for scheduling and the QoS class,
  and its limits bound the pod; `defaultPodRequests` fills an unset pod request from the pod limit.
- The LimitRanger admission plugin (plugin/pkg/admission/limitranger) sets, on every container and
  init container that lacks them, the `default` limits and `defaultRequest` requests of each
  `type: Container` item of every LimitRange in the pod's namespace. The LimitRange object is
  itself defaulted when stored (`SetDefaults_LimitRangeItem`): an unset `default` takes `max`, an
  unset `defaultRequest` takes `default`, then `min`. So `max.cpu` alone gives containers a cpu
  limit and request, and `min.cpu` alone a cpu request.

A LimitRange applies only within its own scope (kaudit/inventory.py): its namespace, or for one
without a namespace, the objects of its own folder.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.inventory import Scope, memoized
from kaudit.model import Resource
from kaudit.value import field, record, value
from kaudit.workloads import mapping, pod_specs, sequence

POD_LEVEL_RESOURCES = frozenset({"cpu", "memory"})  # of those kaudit checks; hugepages too
GUARDED = ("cpu", "memory")  # what the namespace guard rails must bound
# ResourceQuota `hard` keys that bound the pods' cpu or memory (the compute resource quotas).
QUOTA_KEYS: Mapping[str, tuple[str, ...]] = {
    "cpu": ("cpu", "requests.cpu", "limits.cpu"),
    "memory": ("memory", "requests.memory", "limits.memory"),
}


def is_set(value: Any) -> bool:
    """A quantity is set: a string or a number (`cpu: null` or `cpu: {}` is not one)."""
    return (isinstance(value, str) and value != "") or (isinstance(value, (int, float)) and not isinstance(value, bool))


def set_keys(value: Any) -> frozenset[str]:
    return frozenset(str(key) for key, quantity in mapping(value).items() if is_set(quantity))


@value
class LimitRangeDefaults:
    """What one LimitRange gives containers at admission, and what it bounds at all."""

    name: str
    requests: frozenset[str]  # resources a container without a request gets one for
    limits: frozenset[str]  # resources a container without a limit gets one for
    bounded: frozenset[str]  # resources any Container or Pod item defaults or bounds (min/max)


def parse_limit_range(resource: Resource) -> LimitRangeDefaults:
    requests: set[str] = set()
    limits: set[str] = set()
    bounded: set[str] = set()
    for item in sequence(mapping(resource.body.get("spec")).get("limits"))[:256]:
        item = mapping(item)
        kind = item.get("type")
        if kind not in ("Container", "Pod"):
            continue  # PersistentVolumeClaim items bound storage claims, not pods
        default, default_request = set_keys(item.get("default")), set_keys(item.get("defaultRequest"))
        minimum, maximum = set_keys(item.get("min")), set_keys(item.get("max"))
        bounded |= default | default_request | minimum | maximum
        if kind == "Container":  # only Container items are defaulted and give defaults
            item_limits = default | maximum
            limits |= item_limits
            requests |= default_request | item_limits | minimum
    return LimitRangeDefaults(resource.name, frozenset(requests), frozenset(limits), frozenset(bounded))


@value
class Quota:
    """A ResourceQuota: which compute resources its `hard` limits bound, and whether it is scoped."""
    name: str
    bounded: frozenset[str]  # of GUARDED, what its `hard` limits
    scoped: bool  # `scopes` or `scopeSelector`: it counts only the pods it selects


def parse_quota(resource: Resource) -> Quota:
    spec = mapping(resource.body.get("spec"))
    hard = set_keys(spec.get("hard"))
    bounded = frozenset(name for name in GUARDED if any(key in hard for key in QUOTA_KEYS[name]))
    selector = mapping(spec.get("scopeSelector"))
    scoped = bool(sequence(spec.get("scopes"))) or bool(sequence(selector.get("matchExpressions")))
    return Quota(resource.name, bounded, scoped)


@record
class LimitsIndex:
    """Each scope's LimitRanges and ResourceQuotas, built once per scan."""
    limit_ranges: dict[Scope, list[LimitRangeDefaults]] = field(default_factory=dict)
    quotas: dict[Scope, list[Quota]] = field(default_factory=dict)
    workloads: dict[Scope, list[Resource]] = field(default_factory=dict)  # objects with a pod spec


def limits_index(lookup: Any) -> LimitsIndex:
    """The index for this inventory, built once per scan and kept in its memo."""
    return memoized(lookup, "limits", _build_limits_index)


def _build_limits_index(lookup: Any) -> LimitsIndex:
    index = LimitsIndex()
    for resource in lookup.resources:
        if resource.kind == "LimitRange" and _core(resource):
            index.limit_ranges.setdefault(lookup.scope(resource), []).append(parse_limit_range(resource))
        elif resource.kind == "ResourceQuota" and _core(resource):
            index.quotas.setdefault(lookup.scope(resource), []).append(parse_quota(resource))
        elif any(pod.pod_level for pod in pod_specs(resource.body)):
            index.workloads.setdefault(lookup.scope(resource), []).append(resource)
    for ranges in index.limit_ranges.values():
        ranges.sort(key=lambda r: r.name)
    for quotas in index.quotas.values():
        quotas.sort(key=lambda q: q.name)
    return index


def _core(resource: Resource) -> bool:
    return resource.ref.api_version == "v1"


def names(items: Iterable[Any], most: int = 3) -> str:
    """`a`, `a, b`, `a, b, c and 2 more`: the names of LimitRanges or quotas, for a message."""
    listed = [item.name for item in items]
    shown = ", ".join(listed[:most])
    return shown + (f" and {len(listed) - most} more" if len(listed) > most else "")
