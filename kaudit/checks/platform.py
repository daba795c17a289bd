"""`platform-default-modified`: each way an object with a bootstrap RBAC object's identity differs
from Kubernetes' default (kaudit/platform.py), at the field that differs."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.platform import verdict_of


def _bind(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        verdict = verdict_of(subject.resource, subject.lookup)
        if verdict is None:
            return ()
        return [Hit(d.path, {"difference": d.text}, fact=d.fact) for d in verdict.differences]

    return check


TEMPLATES = [
    Template(
        key="platform-default-modified",
        description="An object with the identity of a Kubernetes bootstrap RBAC object differs from it.",
        targets=frozenset({"object"}),
        params_schema={"type": "object", "additionalProperties": False},
        bind=_bind,
    )
]
