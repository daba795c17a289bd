"""Fingerprints: one per fact, stable across line moves, file moves, list reordering and between a
manifest and a cluster scan of the same object; unique within a report (a baseline matches on them,
so a collision would let a new finding hide behind a known one).

A fact is: the rule, the object's identity (API group, kind, namespace, name), the container, the
field it is about — with each list index replaced by the identity of the item it points at
(`containers[name=web]`, `subjects[Group:contractors]`), so inserting a container or a subject does
not renumber the others — and, where one field carries several facts, what the fact is about
(`Hit.fact`: the subject and grant of an RBAC finding, the permission of a workload's token).
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from kaudit.model import FieldPath, Finding
from kaudit.value import replace

# Bumped whenever the identity below changes: a baseline written with another version would match
# nothing (or, worse, the wrong things), so it is refused with a clear message instead.
FINGERPRINT_VERSION = 3  # 3: pod-level findings inside a container name it (Hit.container)


# Parsed objects (YAML, JSON from a cluster) are dicts: an isinstance test against an ABC, let alone
# typing.Mapping, costs several times more on the path every finding takes.


def item_key(item: Any) -> Optional[str]:
    """What names a list item in Kubernetes (the merge keys of containers, volumes, env, ports, …;
    RBAC subjects by kind, namespace and name); None for items that have no name."""
    if not isinstance(item, dict):
        return None
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None
    kind = item.get("kind")
    if isinstance(kind, str) and kind:
        namespace = item.get("namespace")
        return f"{kind}:{namespace}:{name}" if isinstance(namespace, str) and namespace else f"{kind}:{name}"
    return f"name={name}"


# Key counts per list, computed once: a pod of 10,000 containers has 10,000 findings per rule, and
# counting siblings for each would be quadratic. The list is kept with its counts, so its id cannot
# be reused by another list while the entry lives.
_COUNTS: dict[int, tuple[list[Any], Counter[Optional[str]]]] = {}
_COUNTS_KEPT = 4096


def _key_counts(items: list[Any]) -> Counter[Optional[str]]:
    entry = _COUNTS.get(id(items))
    if entry is None or entry[0] is not items:
        if len(_COUNTS) >= _COUNTS_KEPT:
            _COUNTS.clear()
        entry = _COUNTS[id(items)] = (items, Counter(item_key(item) for item in items))
    return entry[1]


def identity_path(body: Mapping[str, Any], path: FieldPath, start: str = "") -> str:
    """`spec.containers[name=web].securityContext` for `('spec', 'containers', 0, 'securityContext')`;
    with `start`, the identity of where `body` is, `path` is read from there on."""
    parts: list[str] = [start] if start else []
    node: Any = body
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            key = item_key(item)
            if key is not None and _key_counts(node)[key] > 1:
                key = None  # two items of one name (an invalid object): only the position tells them apart
            parts.append(f"[{key}]" if key is not None else f"[{part}]")
            node = item
        else:
            parts.append(f".{part}" if parts else part)
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def make_unique(findings: Sequence[Finding]) -> list[Finding]:
    """Exact repeats of a fact (same fingerprint, message and place) are one finding. Distinct
    findings that still share a fingerprint (the same object declared in two files) are told apart
    by their file, then by their order, so no two findings in a report share one."""
    by_print: dict[str, list[int]] = {}
    for index, finding in enumerate(findings):
        by_print.setdefault(finding.fingerprint, []).append(index)
    if all(len(group) == 1 for group in by_print.values()):
        return list(findings)
    result: list[Optional[Finding]] = list(findings)
    taken = set(by_print)
    for group in by_print.values():
        if len(group) == 1:
            continue
        seen: set[tuple[str, str, Optional[str], Optional[int]]] = set()
        where = _distinct_places({findings[index].location.file or "" for index in group})
        # The findings of a group share their identity, so a suffix gives each of them the same
        # candidate: one that was tried is taken for good. Each place and each `#n` is tried once
        # per group (a thousand copies of one object cost a thousand tries, not half a million).
        places_tried: set[str] = set()
        number = 2
        for index in group:
            finding = findings[index]
            key = (finding.message, finding.path_text, finding.location.file, finding.location.line)
            if key in seen:
                result[index] = None  # the same fact found twice: report it once
                continue
            first = not seen
            seen.add(key)
            if first:
                continue  # the first keeps its fingerprint: the one an earlier baseline knows
            place = where[finding.location.file or ""]
            if place not in places_tried:
                places_tried.add(place)
                candidate = replace(finding, fact=f"{finding.fact}@{place}")
                if candidate.fingerprint not in taken:
                    taken.add(candidate.fingerprint)
                    result[index] = candidate
                    continue
            while number < len(group) + 2:
                candidate = replace(finding, fact=f"{finding.fact}@#{number}")
                number += 1
                if candidate.fingerprint not in taken:
                    taken.add(candidate.fingerprint)
                    result[index] = candidate
                    break
    return [finding for finding in result if finding is not None]


def _distinct_places(files: set[str]) -> dict[str, str]:
    """Each file relative to the folder the declarations share (`staging/app.yaml`, `prod/app.yaml`):
    stable when the whole tree moves or is scanned from elsewhere."""
    folders = {os.path.dirname(os.path.abspath(f)) for f in files if f}
    common = os.path.commonpath(sorted(folders)) if folders else ""
    return {f: os.path.relpath(os.path.abspath(f), common) if f and common else f for f in files}
