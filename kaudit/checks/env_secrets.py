"""`env-secret-literal`: literal env values that look like credentials (never echoed back); the
detection itself is kaudit/checks/credentials.py, shared with the ConfigMap rule."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.checks.credentials import PARAMS_PROPERTIES, classifier
from kaudit.workloads import mapping, sequence

PARAMS_SCHEMA = {"type": "object", "additionalProperties": False, "properties": dict(PARAMS_PROPERTIES)}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    classify = classifier(params)

    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None
        hits = []
        for index, entry in enumerate(sequence(container.body.get("env"))):
            entry = mapping(entry)
            name, value = entry.get("name"), entry.get("value")
            if not isinstance(name, str) or not isinstance(value, str) or not value.strip():
                continue
            why = classify(name, value)
            if why:
                hits.append(Hit(container.path + ("env", index, "value"), {"variable": name, "why": why}))
        return hits

    return check


TEMPLATES = [
    Template(
        key="env-secret-literal",
        description="Literal env values whose name or shape says they are credentials.",
        targets=frozenset({"container"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
