"""JSON Schema validation errors as `file:line: at path: message` lines (imports jsonschema)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jsonschema

from kaudit.model import format_path
from kaudit.sources.yamldoc import deepest_position


def schema_problems(
    schema: Mapping[str, Any],
    instance: Any,
    source: str,
    root: Optional[Any] = None,
    prefix: Sequence[Any] = (),
) -> list[str]:
    """Validate `instance`; `root` and `prefix` place it inside a larger parsed document for lines."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    document = instance if root is None else root
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(prefix) + tuple(error.absolute_path)
        position = deepest_position(document, path)
        line = position[0] if position else None
        where = f"{source}:{line}" if line else source
        at = f" {format_path(path)}:" if path else ""
        problems.append(f"{where}:{at} {_message(error)}")
    return problems


def _message(error: Any) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        return str(error.message).replace("Additional properties are not allowed", "unknown key(s)")
    message: str = error.message
    return message
