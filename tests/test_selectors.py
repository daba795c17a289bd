"""Label selector semantics, operator by operator, with the empty and null cases."""
from __future__ import annotations

from typing import Any

import pytest

from kaudit.selectors import parse_selector

LABELS = {"app": "web", "tier": "front", "env": "prod"}

CASES: list[tuple[str, Any, dict[str, str], bool]] = [
    ("null selects nothing", None, LABELS, False),
    ("null selects nothing, even unlabelled", None, {}, False),
    ("empty selects everything", {}, LABELS, True),
    ("empty selects unlabelled too", {}, {}, True),
    ("empty parts select everything", {"matchLabels": {}, "matchExpressions": []}, {}, True),
    ("matchLabels equal", {"matchLabels": {"app": "web"}}, LABELS, True),
    ("matchLabels differ", {"matchLabels": {"app": "api"}}, LABELS, False),
    ("matchLabels missing key", {"matchLabels": {"team": "a"}}, LABELS, False),
    ("matchLabels all must match", {"matchLabels": {"app": "web", "env": "dev"}}, LABELS, False),
    ("In matches", {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "prod"]}]}, LABELS, True),
    ("In other value", {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, LABELS, False),
    ("In absent key", {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, LABELS, False),
    ("NotIn other value", {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, LABELS, True),
    ("NotIn listed value", {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, LABELS, False),
    ("NotIn absent key matches", {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, LABELS, True),
    ("Exists present", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, LABELS, True),
    ("Exists absent", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, LABELS, False),
    ("Exists with empty value label", {"matchExpressions": [{"key": "x", "operator": "Exists"}]}, {"x": ""}, True),
    ("DoesNotExist absent", {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, LABELS, True),
    ("DoesNotExist present", {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, LABELS, False),
    ("labels and expressions are ANDed", {"matchLabels": {"app": "web"},
                                          "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
     LABELS, False),
    ("In without values is invalid: nothing", {"matchExpressions": [{"key": "env", "operator": "In", "values": []}]},
     LABELS, False),
    ("Exists with values is invalid: nothing", {"matchExpressions": [{"key": "env", "operator": "Exists",
                                                                      "values": ["x"]}]}, LABELS, False),
    ("unknown operator is invalid: nothing", {"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]},
     LABELS, False),
    ("non-string label values compare as text", {"matchLabels": {"version": 2}}, {"version": "2"}, True),
]


@pytest.mark.parametrize("name, selector, labels, expected", CASES, ids=[c[0] for c in CASES])
def test_selector(name: str, selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected
