"""`schema`: the view of the target must satisfy a JSON Schema describing the passing shape (Polaris)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template, TemplateError
from kaudit.checks.schema_lite import KEYWORDS, META_SCHEMA_DEFS, UnsupportedSchema, compile_schema
from kaudit.checks.views import DEFAULT_VIEWS, VIEW_TARGETS, build_view
from kaudit.model import FieldPath

PARAMS_SCHEMA = {
    "type": "object",
    "required": ["schema"],
    "additionalProperties": False,
    "properties": {
        "view": {
            "enum": sorted(VIEW_TARGETS),
            "description": ("what the schema is matched against: object (the whole object), pod ({metadata, spec} "
                            "of the pod template), pod-spec, container (one container), effective-security-context "
                            "(the container's securityContext merged over the pod's). Default by target: "
                            + ", ".join(f"{target}: {view}" for target, view in DEFAULT_VIEWS.items()) + "; "
                            "paths in findings point back into the object"),
        },
        "schema": {
            "$ref": "#/$defs/checkSchema",
            "description": ("a JSON Schema (draft 2020-12 subset) the view must satisfy: the PASSING shape; the "
                            "rule fires where it fails. Keywords: " + ", ".join(sorted(KEYWORDS)) + ""),
        },
        "path": {
            "type": "string",
            "description": "dot path (in the view) to point at when the schema fails as a whole",
        },
    },
    "$defs": META_SCHEMA_DEFS,
}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    view = params.get("view") or DEFAULT_VIEWS.get(target, "object")
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
