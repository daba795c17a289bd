"""A fast evaluator for the JSON Schema subset that `schema` rules use.

The `jsonschema` package validates rule and config files, where its thoroughness matters; but at
~17 µs a validation and ~90 ms to import it is too slow to run inside every check of every
container. This compiles a schema once into closures (no code generation, no `exec`) that return
the path of the first violation, which is also what a finding needs to point at a line.

Semantics follow JSON Schema draft 2020-12 for the supported keywords (tests cross-check against
`jsonschema`); `kaudit/schemas/rule.schema.json` rejects anything else when a rule is validated.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional, Sequence

from kaudit.model import FieldPath

Violation = Optional[FieldPath]
Check = Callable[[Any, FieldPath], Violation]

ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default"})
KEYWORDS = frozenset(
    {
        "type", "const", "enum", "properties", "required", "additionalProperties", "items", "contains",
        "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "pattern", "not", "anyOf", "allOf", "oneOf", "if", "then", "else",
    }
) | ANNOTATIONS


class UnsupportedSchema(ValueError):
    pass


def compile_schema(schema: Any) -> Callable[[Any], Violation]:
    """Compile `schema`; the result returns None when an instance satisfies it, else the failing path."""
    check = _compile(schema)
    return lambda instance: check(instance, ())


def _compile(schema: Any) -> Check:
    if schema is True:
        return _accept
    if schema is False:
        return _reject
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"a schema must be an object or a boolean, not {schema!r}")
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise UnsupportedSchema(f"unsupported schema keyword(s): {', '.join(sorted(unknown))}")
    checks = [check for name in _ORDER if name in schema for check in [_BUILDERS[name](schema)] if check]
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]

    def all_of(instance: Any, path: FieldPath) -> Violation:
        for check in checks:
            failure = check(instance, path)
            if failure is not None:
                return failure
        return None

    return all_of


def _accept(instance: Any, path: FieldPath) -> Violation:
    return None


def _reject(instance: Any, path: FieldPath) -> Violation:
    return path


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def _type(schema: Mapping[str, Any]) -> Check:
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    tests = [_TYPES[name] for name in names]

    def check(instance: Any, path: FieldPath) -> Violation:
        return None if any(test(instance) for test in tests) else path

    return check


def _const(schema: Mapping[str, Any]) -> Check:
    expected = schema["const"]
    return lambda instance, path: None if json_equal(instance, expected) else path


def _enum(schema: Mapping[str, Any]) -> Check:
    options = list(schema["enum"])
    return lambda instance, path: None if any(json_equal(instance, o) for o in options) else path


def _properties(schema: Mapping[str, Any]) -> Check:
    children = [(name, _compile(sub)) for name, sub in schema["properties"].items()]

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, dict):
            for name, child in children:
                if name in instance:
                    failure = child(instance[name], path + (name,))
                    if failure is not None:
                        return failure
        return None

    return check


def _required(schema: Mapping[str, Any]) -> Check:
    names: Sequence[str] = schema["required"]

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, dict):
            for name in names:
                if name not in instance:
                    return path + (name,)
        return None

    return check


def _additional_properties(schema: Mapping[str, Any]) -> Check:
    known = set(schema.get("properties", {}))
    extra = _compile(schema["additionalProperties"])

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, dict):
            for name, value in instance.items():
                if name not in known:
                    failure = extra(value, path + (name,))
                    if failure is not None:
                        return failure
        return None

    return check


def _items(schema: Mapping[str, Any]) -> Check:
    item = _compile(schema["items"])

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, list):
            for index, value in enumerate(instance):
                failure = item(value, path + (index,))
                if failure is not None:
                    return failure
        return None

    return check


def _contains(schema: Mapping[str, Any]) -> Check:
    item = _compile(schema["contains"])

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, list) and not any(item(v, ()) is None for v in instance):
            return path
        return None

    return check


def _bound(keyword: str, applies: Callable[[Any], bool], measure: Callable[[Any], Any],
           ok: Callable[[Any, Any], bool]) -> Callable[[Mapping[str, Any]], Check]:
    def build(schema: Mapping[str, Any]) -> Check:
        limit = schema[keyword]

        def check(instance: Any, path: FieldPath) -> Violation:
            if applies(instance) and not ok(measure(instance), limit):
                return path
            return None

        return check

    return build


def _pattern(schema: Mapping[str, Any]) -> Check:
    regex = re.compile(schema["pattern"])

    def check(instance: Any, path: FieldPath) -> Violation:
        if isinstance(instance, str) and not regex.search(instance):
            return path
        return None

    return check


def _not(schema: Mapping[str, Any]) -> Check:
    inner = _compile(schema["not"])
    return lambda instance, path: path if inner(instance, path) is None else None


def _all_of(schema: Mapping[str, Any]) -> Check:
    parts = [_compile(s) for s in schema["allOf"]]

    def check(instance: Any, path: FieldPath) -> Violation:
        for part in parts:
            failure = part(instance, path)
            if failure is not None:
                return failure
        return None

    return check


def _any_of(schema: Mapping[str, Any]) -> Check:
    parts = [_compile(s) for s in schema["anyOf"]]

    def check(instance: Any, path: FieldPath) -> Violation:
        failures = [part(instance, path) for part in parts]
        if any(f is None for f in failures):
            return None
        # When every branch fails at the same field, that field is the one to point at.
        return failures[0] if failures and all(f == failures[0] for f in failures) else path

    return check


def _one_of(schema: Mapping[str, Any]) -> Check:
    parts = [_compile(s) for s in schema["oneOf"]]

    def check(instance: Any, path: FieldPath) -> Violation:
        passing = sum(1 for part in parts if part(instance, path) is None)
        return None if passing == 1 else path

    return check


def _if_then_else(schema: Mapping[str, Any]) -> Optional[Check]:
    if "if" not in schema:
        return None
    condition = _compile(schema["if"])
    then = _compile(schema.get("then", True))
    otherwise = _compile(schema.get("else", True))

    def check(instance: Any, path: FieldPath) -> Violation:
        branch = then if condition(instance, path) is None else otherwise
        return branch(instance, path)

    return check


def _length(value: Any) -> int:
    return len(value)


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Optional[Check]]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "items": _items,
    "contains": _contains,
    "minItems": _bound("minItems", lambda v: isinstance(v, list), _length, lambda n, lim: n >= lim),
    "maxItems": _bound("maxItems", lambda v: isinstance(v, list), _length, lambda n, lim: n <= lim),
    # JSON Schema counts characters (code points), which is what len() of a str gives
    "minLength": _bound("minLength", lambda v: isinstance(v, str), _length, lambda n, lim: n >= lim),
    "maxLength": _bound("maxLength", lambda v: isinstance(v, str), _length, lambda n, lim: n <= lim),
    "minimum": _bound("minimum", _is_number, lambda v: v, lambda n, lim: n >= lim),
    "maximum": _bound("maximum", _is_number, lambda v: v, lambda n, lim: n <= lim),
    "exclusiveMinimum": _bound("exclusiveMinimum", _is_number, lambda v: v, lambda n, lim: n > lim),
    "exclusiveMaximum": _bound("exclusiveMaximum", _is_number, lambda v: v, lambda n, lim: n < lim),
    "pattern": _pattern,
    "not": _not,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "if": _if_then_else,
}
# Cheap structural checks first, so the reported path is the most specific violation.
_ORDER = (
    "type", "const", "enum", "required", "properties", "additionalProperties", "items", "contains",
    "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "pattern", "not", "allOf", "anyOf", "oneOf", "if",
)


def _ref() -> dict[str, str]:
    return {"$ref": "#/$defs/checkSchema"}


def _schema_list() -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": _ref()}


_COUNT = {"type": "integer", "minimum": 0}
_TYPE_NAMES = sorted(_TYPES)

# The meta-schema of the supported subset, for rule validation: an unsupported keyword in a rule
# is an error with the rule's file and line, not a silently ignored constraint.
META_SCHEMA_DEFS: dict[str, Any] = {
    "checkSchema": {
        "anyOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "$comment": {"type": "string"},
                    "examples": {"type": "array"},
                    "default": {},
                    "type": {
                        "anyOf": [
                            {"enum": _TYPE_NAMES},
                            {"type": "array", "minItems": 1, "items": {"enum": _TYPE_NAMES}},
                        ]
                    },
                    "const": {},
                    "enum": {"type": "array", "minItems": 1},
                    "properties": {"type": "object", "additionalProperties": _ref()},
                    "required": {"type": "array", "items": {"type": "string"}},
                    "additionalProperties": _ref(),
                    "items": _ref(),
                    "contains": _ref(),
                    "minItems": _COUNT,
                    "maxItems": _COUNT,
                    "minLength": _COUNT,
                    "maxLength": _COUNT,
                    "minimum": {"type": "number"},
                    "maximum": {"type": "number"},
                    "exclusiveMinimum": {"type": "number"},
                    "exclusiveMaximum": {"type": "number"},
                    "pattern": {"type": "string", "format": "regex"},
                    "not": _ref(),
                    "anyOf": _schema_list(),
                    "allOf": _schema_list(),
                    "oneOf": _schema_list(),
                    "if": _ref(),
                    "then": _ref(),
                    "else": _ref(),
                },
            },
        ]
    }
}
