"""`schema`: the view of the target must satisfy a JSON Schema describing the passing shape (Polaris)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template, TemplateError
from kaudit.checks.schema_lite import META_SCHEMA_DEFS, UnsupportedSchema, compile_schema
from kaudit.checks.views import VIEW_TARGETS, build_view
from kaudit.model import FieldPath

PARAMS_SCHEMA = {
    "type": "object",
    "required": ["schema"],
    "additionalProperties": False,
    "properties": {
        "view": {"enum": sorted(VIEW_TARGETS), "default": "object"},
        "schema": {"$ref": "#/$defs/checkSchema"},
        "path": {
            "type": "string",
            "description": "dot path (in the view) to point at when the schema fails as a whole",
        },
    },
    "$defs": META_SCHEMA_DEFS,
}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    view = params.get("view", "object")
    if target not in VIEW_TARGETS[view]:
        raise TemplateError(f"view {view!r} is not available for target {target!r}")
    try:
        validate = compile_schema(params["schema"])
    except (UnsupportedSchema, ValueError) as error:  # re.error is a ValueError
        raise TemplateError(f"params.schema: {error}") from None
    focus: FieldPath = tuple(_parse_dot_path(params["path"])) if params.get("path") else ()

    def check(subject: Target) -> Iterable[Hit]:
        data, to_object = build_view(view, subject)
        failure = validate(data)
        if failure is None:
            return ()
        if focus and failure == focus[: len(failure)]:
            failure = focus  # the schema failed above the field the rule is about: point at that field
        return (Hit(to_object(failure), {"value": _describe(data, failure)}),)

    return check


def _parse_dot_path(text: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in text.split(".")]


def _describe(data: Any, path: FieldPath) -> str:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return "unset"
    text = str(data).lower() if isinstance(data, bool) else str(data)
    return text if len(text) <= 80 else text[:77] + "..."


TEMPLATES = [
    Template(
        key="schema",
        description="The chosen view of the target must satisfy a JSON Schema (the passing shape).",
        targets=frozenset({"object", "pod", "container"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
