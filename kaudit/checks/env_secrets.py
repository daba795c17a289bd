"""`env-secret-literal`: literal env values that look like credentials (never echoed back)."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template, TemplateError
from kaudit.workloads import mapping, sequence

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name-patterns": {"type": "array", "items": {"type": "string", "format": "regex"}},
        "ignore-name-patterns": {"type": "array", "items": {"type": "string", "format": "regex"}},
        "value-patterns": {
            "type": "object",
            "additionalProperties": {"type": "string", "format": "regex"},
            "description": "what the value looks like -> regular expression",
        },
    },
}
_NOT_SECRET = re.compile(r"^(?:true|false|yes|no|on|off|enabled|disabled|none|null|\d+(?:\.\d+)?)$", re.I)


def _compile(patterns: Iterable[str], flags: int = re.I) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p, flags) for p in patterns]
    except re.error as error:
        raise TemplateError(f"bad regular expression: {error}") from None


def _bind(params: Mapping[str, Any], target: str) -> Check:
    names = _compile(params.get("name-patterns", ()))
    ignored = _compile(params.get("ignore-name-patterns", ()))
    values = [(label, regex) for label, [regex] in
              ((k, _compile([v], 0)) for k, v in params.get("value-patterns", {}).items())]

    def classify(name: str, value: str) -> str | None:
        for label, regex in values:
            if regex.search(value):
                return f"its value looks like {label}"
        if _NOT_SECRET.match(value.strip()) or value.startswith("$(") and value.endswith(")"):
            return None
        if any(r.search(name) for r in names) and not any(r.search(name) for r in ignored):
            return "its name suggests a secret"
        return None

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
