"""Running pods that differ from their controller's template, reported on the controller.

An `Instance` (kaudit/owners.py) is not an object of the scan: it is judged by the rules about a
pod's own spec (targets pod and container, the kinds of rules that apply to its owner), and each
finding moves onto the owner, where the fix goes and where it stays across rollouts:

- its field is the same field in the owner's pod template, list items matched by their `name`
  (`containers[name=web]`); a container or volume only the pod has (an injected `istio-proxy`)
  keeps its place in the pod's list, under the template's path, and its fingerprint names it by
  name, so it is the same fact whatever the pod is called;
- a finding the owner already has (same rule, container and field: the same fingerprint) is
  dropped, and so is a repeat from another instance of the same owner;
- the message says where it was seen: in the pods, added at admission, or in pods of an
  earlier revision of the template.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from kaudit.checks.base import Hit, Target
from kaudit.engine import EngineResult, judge_pods, locate, make_finding
from kaudit.fingerprint import identity_path, item_key
from kaudit.inventory import Inventory
from kaudit.model import FieldPath, Finding, PathPart
from kaudit.owners import Instance
from kaudit.ruleset import Rule
from kaudit.value import replace

SEEN = {
    "injected": " (injected into its running pods at admission: not in its template)",
    "admission": " (in its running pods, not in its template: set at admission)",
    "revision": " (in its pods of an earlier revision of the template)",
    "ephemeral": " (in a running pod: an ephemeral container, added with kubectl debug or the API)",
}


def judge_instances(rules: Sequence[Rule], inventory: Inventory, instances: Sequence[Instance],
                    findings: Sequence[Finding]) -> EngineResult:
    """The findings `instances` add to their owners' `findings`."""
    result = EngineResult()
    if not instances:
        return result
    owners = {instance.owner.ref for instance in instances}
    known = {f.fingerprint for f in findings if f.resource in owners}
    applicable: dict[str, list[Rule]] = {}
    for instance in instances:
        kind = instance.owner.kind
        if kind not in applicable:
            applicable[kind] = [r for r in rules if r.target in ("pod", "container") and r.applies_to(kind, True)]
        place = _Place(instance)

        def emit(rule: Rule, target: Target, hit: Hit, place: _Place = place) -> Optional[Finding]:
            finding = place.finding(rule, target, hit)
            if finding.fingerprint in known:
                return None  # the owner says it already, or another instance of it did
            known.add(finding.fingerprint)
            return finding

        judge_pods(applicable[kind], instance.resource, [instance.pod], inventory, emit, result)
    return result


class _Place:
    """Where a field of an instance's pod is in its owner's template."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        pod, owner = instance.pod, instance.owner_pod
        body, owner_body = instance.resource.body, instance.owner.body
        # (the instance's prefix, the owner's, and each one's identity text): spec first, then metadata
        self.prefixes = [(prefix, target, identity_path(body, prefix), identity_path(owner_body, target))
                         for prefix, target in ((pod.path, owner.path), (pod.metadata_path, owner.metadata_path))]
        self.positions: dict[int, dict[str, int]] = {}  # the owner's lists, kept alive by its body

    def finding(self, rule: Rule, target: Target, hit: Hit) -> Finding:
        instance = self.instance
        path, only_in = hit.path, None
        key = identity_path(instance.resource.body, hit.path)
        for prefix, owner_prefix, key_prefix, owner_key_prefix in self.prefixes:
            if hit.path[:len(prefix)] == prefix:
                rest, only_in = self._matched(_get(instance.resource.body, prefix),
                                              _get(instance.owner.body, owner_prefix), hit.path[len(prefix):])
                path = owner_prefix + rest
                key = owner_key_prefix + key[len(key_prefix):]
                break
        finding = make_finding(rule, replace(target, resource=instance.owner),
                               replace(hit, path=path))
        if target.container is not None and target.container.kind == "ephemeralContainer":
            seen = SEEN["ephemeral"]
        elif instance.origin == "admission" and only_in in ("containers", "initContainers"):
            seen = SEEN["injected"]
        else:
            seen = SEEN[instance.origin]
        return replace(finding, key_path=key, message=finding.message + seen,
                                   location=locate(instance.owner, path))

    def _matched(self, node: Any, owner_node: Any, rest: FieldPath) -> tuple[FieldPath, Optional[str]]:
        """`rest`, a path below `node`, as the path to the same field below `owner_node`: list items
        by their name, else by position. With it, the list where an item is only in the instance
        (that item keeps its own index)."""
        mapped: list[PathPart] = []
        only_in: Optional[str] = None
        list_name = ""
        for part in rest:
            if not isinstance(part, int):
                mapped.append(part)
                list_name = str(part)
                node = node.get(part) if isinstance(node, dict) else None
                owner_node = owner_node.get(part) if isinstance(owner_node, dict) else None
                continue
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name = item_key(item)
            index: Optional[int] = None
            if isinstance(owner_node, list):
                if name is not None:
                    index = self._positions(owner_node).get(name)
                elif 0 <= part < len(owner_node):
                    index = part
            if index is None and only_in is None:
                only_in = list_name
            mapped.append(part if index is None else index)
            node, owner_node = item, (owner_node[index] if index is not None else None)
        return tuple(mapped), only_in

    def _positions(self, items: list[Any]) -> dict[str, int]:
        """Each named item's index, once per list (a template of 10,000 containers happens)."""
        found = self.positions.get(id(items))
        if found is None:
            found = self.positions[id(items)] = {}
            for index, item in enumerate(items):
                name = item_key(item)
                if name is not None:
                    found.setdefault(name, index)
        return found


def _get(body: Any, path: FieldPath) -> Any:
    for part in path:
        if isinstance(part, int):
            body = body[part] if isinstance(body, list) and 0 <= part < len(body) else None
        else:
            body = body.get(part) if isinstance(body, dict) else None
    return body
