"""The `schema` template's evaluator must agree with the jsonschema package on the subset it supports."""
from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaudit.checks.schema_lite import UnsupportedSchema, compile_schema, json_equal

SCHEMAS: list[Any] = [
    {"properties": {"privileged": {"not": {"const": True}}}},
    {"required": ["runAsNonRoot"], "properties": {"runAsNonRoot": {"const": True}}},
    {"anyOf": [{"required": ["a"], "properties": {"a": {"const": 1}}}, {"required": ["b"]}]},
    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    {"properties": {"x": {"type": ["string", "null"], "pattern": "^v[0-9]", "maxLength": 3}}},
    {"items": {"enum": ["a", 1, None, True]}, "minItems": 1, "maxItems": 3},
    {"contains": {"const": "ALL"}},
    {"oneOf": [{"type": "integer"}, {"type": "number", "exclusiveMaximum": 10}]},
    {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"not": {"required": ["c"]}}},
    {"allOf": [{"minimum": 1}, {"maximum": 5}, {"exclusiveMinimum": 1.5}]},
    {"properties": {"s": {"minLength": 2}}, "additionalProperties": False},
    {"const": {"a": [1, 2]}},
    True,
    False,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats(-3, 12, allow_nan=False) | st.sampled_from(
        ["", "a", "ALL", "v1", "v12", "abc", "x"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "x", "s", "privileged", "runAsNonRoot"]), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=300, deadline=None)
@given(instance=json_values)
def test_agrees_with_jsonschema(schema: Any, instance: Any) -> None:
    expected = jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert (compile_schema(schema)(instance) is None) == expected


def test_failure_paths_point_at_the_offending_field() -> None:
    check = compile_schema({"properties": {"sc": {"properties": {"privileged": {"not": {"const": True}}}}}})
    assert check({"sc": {"privileged": True}}) == ("sc", "privileged")
    assert compile_schema({"required": ["x"]})({}) == ("x",)
    assert compile_schema({"items": {"type": "string"}})(["a", 3]) == (1,)


def test_booleans_are_not_numbers() -> None:
    assert not json_equal(True, 1) and json_equal(1, 1.0) and not json_equal([True], [1])
    assert compile_schema({"const": 1})(True) == ()


def test_unsupported_keywords_are_refused() -> None:
    with pytest.raises(UnsupportedSchema, match="patternProperties"):
        compile_schema({"patternProperties": {"a": {}}})
