"""`fieldSelector` as kube-apiserver evaluates it on a list: only the field labels a type declares.

Every type selects on `metadata.name` and `metadata.namespace`; Secrets add `type` (their
`SelectableFields` in pkg/registry/core/secret/strategy.go), Pods a few of theirs. A label the type
does not declare is a 400 `field label not supported: x`, as on the real server. Requirements are
`key=value`, `key==value` or `key!=value`, joined by commas (all must hold).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Obj = dict[str, Any]
Field = Callable[[Obj], str]


def _meta(key: str) -> Field:
    return lambda obj: str((obj.get("metadata") or {}).get(key) or "")


COMMON: Mapping[str, Field] = {"metadata.name": _meta("name"), "metadata.namespace": _meta("namespace")}
# (group, plural) -> its own selectable fields. A Secret without `type` is defaulted to Opaque on create.
BY_TYPE: Mapping[tuple[str, str], Mapping[str, Field]] = {
    ("", "secrets"): {"type": lambda obj: str(obj.get("type") or "Opaque")},
    ("", "pods"): {"spec.nodeName": lambda obj: str((obj.get("spec") or {}).get("nodeName") or ""),
                   "status.phase": lambda obj: str((obj.get("status") or {}).get("phase") or "")},
}


class UnsupportedField(ValueError):
    """The selector names a field the type does not declare (the server answers 400)."""


def matcher(group: str, plural: str, selector: str) -> Callable[[Obj], bool]:
    """A predicate for `selector` on objects of (group, plural); raises UnsupportedField / ValueError."""
    fields = {**COMMON, **BY_TYPE.get((group, plural), {})}
    requirements: list[tuple[Field, bool, str]] = []  # (field, equal?, value)
    for part in (p.strip() for p in selector.split(",")):
        if not part:
            continue
        for operator, equal in (("!=", False), ("==", True), ("=", True)):
            key, found, value = part.partition(operator)
            if found:
                break
        else:
            raise ValueError(f'invalid selector: "{part}"; can\'t understand "{part}"')
        key = key.strip()
        if key not in fields:
            raise UnsupportedField(f'field label not supported: {key}')
        requirements.append((fields[key], equal, value.strip()))
    return lambda obj: all((field(obj) == value) is equal for field, equal, value in requirements)
