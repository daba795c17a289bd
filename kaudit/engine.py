"""run(rules, inventory) -> findings. Pure: no I/O, no knowledge of where objects came from."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Mapping, Optional, Sequence

from kaudit.checks import TEMPLATES
from kaudit.checks.base import Check, Hit, Target
from kaudit.fingerprint import identity_path
from kaudit.inventory import Inventory, Scope
from kaudit.model import FieldPath, Finding, Location, Resource, Severity, format_path
from kaudit.ruleset import Rule, bound_check
from kaudit.sources.yamldoc import deepest_position
from kaudit.value import field, record
from kaudit.workloads import PodSpec, containers, pod_specs

_PLACEHOLDER_SPLIT = re.compile(r"(\{[A-Za-z_][A-Za-z0-9_-]*\})")
Emit = Callable[[Rule, Target, Hit], Optional[Finding]]  # a hit -> its finding, or None: dropped
CONTAINER_KIND_WORDS = {"container": "container", "initContainer": "init container",
                        "ephemeralContainer": "ephemeral container"}


@record
class EngineResult:
    """What running rules over an inventory gave: findings, and rules that could not evaluate."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a rule that could not evaluate an object


def run(rules: Sequence[Rule], inventory: Inventory) -> EngineResult:
    result = EngineResult()
    applicable: dict[tuple[str, bool], list[tuple[Rule, Check]]] = {}
    namespace_rules = [(r, bound_check(r)) for r in rules if r.target == "namespace"]
    group_rules = [(r, check) for r, check in namespace_rules if TEMPLATES[r.template].judges_groups]
    groups: dict[Scope, Resource] = {}  # each group of objects without a namespace -> its first workload
    for resource in inventory:
        pods = pod_specs(resource.body)
        key = (resource.kind, bool(pods))
        if key not in applicable:
            applicable[key] = [(r, bound_check(r)) for r in rules if r.applies_to(resource.kind, bool(pods))]
        if group_rules and pods and resource.namespace is None:
            groups.setdefault(inventory.scope(resource), resource)
        targets = _targets(resource, pods, inventory)
        for rule, check in applicable[key]:
            _judge(rule, check, targets.get(rule.target, ()), result)
    if namespace_rules:
        for namespace in inventory.namespace_resources():
            target = Target(namespace, lookup=inventory, scope=Scope(namespace.name))
            for rule, check in namespace_rules:
                _evaluate(rule, check, target, result)
    for scope, first in groups.items():
        if scope.group is not None:  # not a cluster-scoped object
            target = Target(first, lookup=inventory, scope=scope)
            for rule, check in group_rules:
                _evaluate(rule, check, target, result)
    result.findings.sort(key=sort_key)
    return result


def judge_pods(rules: Sequence[Rule], resource: Resource, pods: Sequence[PodSpec], inventory: Inventory,
               emit: Emit, result: EngineResult) -> None:
    """The pod and container rules among `rules` on `pods` of `resource`, an object outside the
    inventory (a running pod that differs from its controller's template: kaudit/instances.py);
    `emit` makes each hit a finding, or None to drop it."""
    targets = _targets(resource, pods, inventory)
    for rule in rules:
        if rule.target in ("pod", "container"):
            _judge(rule, bound_check(rule), targets[rule.target], result, emit)


def _judge(rule: Rule, check: Check, targets: Sequence[Target], result: EngineResult,
           emit: Optional[Emit] = None) -> None:
    for target in targets:
        if target.container is not None and target.container.kind not in rule.container_kinds:
            continue
        if rule.linux_only and target.pod is not None and target.pod.is_windows:
            continue
        _evaluate(rule, check, target, result, emit)


def _targets(resource: Resource, pods: Sequence[PodSpec], inventory: Inventory) -> dict[str, list[Target]]:
    """The object, and each of its pod specs and their containers (an object may hold several)."""
    targets: dict[str, list[Target]] = {"object": [Target(resource, lookup=inventory)], "pod": [], "container": []}
    for pod in pods:
        pod_containers = tuple(containers(pod))
        if pod.pod_level:
            targets["pod"].append(Target(resource, pod, lookup=inventory, containers=pod_containers))
        targets["container"].extend(Target(resource, pod, c, lookup=inventory, containers=pod_containers)
                                    for c in pod_containers)
    return targets


def _evaluate(rule: Rule, check: Check, target: Target, result: EngineResult, emit: Optional[Emit] = None) -> None:
    # Called for every rule on every object, pod and container it applies to (most find nothing):
    # nothing is built for a check that returned no hits.
    try:
        found = check(target)
        # a generator runs here, inside the try
        hits: Sequence[Hit] = found if isinstance(found, (tuple, list)) else list(found)
    except Exception as error:  # a rule bug must not hide the rest of the scan
        result.errors.append(
            f"rule {rule.id} could not evaluate {target.resource.ref.describe()}: {type(error).__name__}: {error}")
        return
    if not hits:
        return
    if emit is None:
        result.findings.extend([make_finding(rule, target, hit) for hit in hits])
        return
    for hit in hits:
        finding = emit(rule, target, hit)
        if finding is not None:
            result.findings.append(finding)


def make_finding(rule: Rule, target: Target, hit: Hit) -> Finding:
    resource = target.resource
    container = target.container
    message = rule.message
    if "{" in message:  # a message without placeholders needs no values
        values: dict[str, str] = {"kind": resource.kind, "name": resource.name,
                                  "namespace": resource.namespace or "-"}
        if "{path}" in message:
            values["path"] = format_path(hit.path)
        if container is not None:
            values["container"] = container.name
            values["containerKind"] = CONTAINER_KIND_WORDS[container.kind]
        values.update(hit.values)
        message = render(message, values)
    location, key_path = _place(target, hit.path)
    return Finding(
        rule=rule.id,
        severity=rule.severity if not hit.demote else Severity(max(Severity.INFO, rule.severity - hit.demote)),
        title=rule.title,
        message=message,
        resource=resource.ref,
        path=hit.path,
        location=location,
        container=container.name if container is not None else hit.container,
        category=rule.category,
        frameworks=rule.frameworks,
        remediation=rule.docs.get("fix", ""),
        references=rule.references,
        key_path=key_path,
        fact=hit.fact,
        subject=hit.subject,
        declaration=resource.origin.declaration,
        attack_path=hit.attack_path,
    )


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill `{name}` placeholders; no attribute access, no format specs, unknown names left as they are."""
    parts = _compiled(template)
    if len(parts) == 1:
        return template
    get = values.get
    return "".join([get(part[1:-1], part) if i & 1 else part for i, part in enumerate(parts)])


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> list[str]:
    """Literal text and `{placeholder}`s alternating: each rule's message is split once per run."""
    return _PLACEHOLDER_SPLIT.split(template)


def _place(target: Target, path: FieldPath) -> tuple[Location, str]:
    """Where a hit at `path` is (file, line, column) and its identity path (fingerprint.py). Most
    findings are in a container or a pod spec, several to one: its own place and identity are
    found once per target, and each finding walks only the fields inside it."""
    resource = target.resource
    anchor = _anchor(target, path)
    if anchor is None:
        return locate(resource, path), identity_path(resource.body, path)
    anchor_path, anchor_body = anchor
    start = target.memo.get(_ANCHOR_PLACE)
    if start is None:
        start = target.memo[_ANCHOR_PLACE] = (identity_path(resource.body, anchor_path),
                                              deepest_position(resource.body, anchor_path))
    inside = path[len(anchor_path):]
    key_path = identity_path(anchor_body, inside, start[0])
    origin = resource.origin
    if origin.file is None:
        return Location(context=origin.context, server=origin.server), key_path
    position = deepest_position(anchor_body, inside) or start[1]
    line, column = position if position else (origin.line, origin.column)
    return Location(file=origin.file, line=line, column=column), key_path


def _anchor(target: Target, path: FieldPath) -> Optional[tuple[FieldPath, Mapping[str, Any]]]:
    """The target's container, or else its pod spec, when `path` is inside it: (its path, its body)."""
    container = target.container
    if container is not None:
        return (container.path, container.body) if path[:len(container.path)] == container.path else None
    pod = target.pod
    if pod is not None and path[:len(pod.path)] == pod.path:
        return pod.path, pod.spec
    return None


_ANCHOR_PLACE = "engine.anchor-place"  # Target.memo key: (identity path, position) of its container or pod


def locate(resource: Resource, path: FieldPath) -> Location:
    origin = resource.origin
    if origin.file is None:
        return Location(context=origin.context, server=origin.server)
    position = deepest_position(resource.body, path)
    line, column = position if position else (origin.line, origin.column)
    return Location(file=origin.file, line=line, column=column)


def sort_key(finding: Finding) -> tuple[str, int, int, int, str]:
    # The sort is stable and the engine's order is deterministic, so ties need no fingerprint.
    location = finding.location
    return (location.file or "", location.line or 0, location.column or 0, -finding.severity, finding.rule)



