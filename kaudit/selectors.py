"""Kubernetes label selectors with the API's exact semantics (metav1.LabelSelectorAsSelector).

- a null (absent) selector selects nothing; an empty one `{}` selects everything;
- matchLabels and matchExpressions are ANDed;
- In / NotIn need values; Exists / DoesNotExist must have none (an invalid selector selects nothing,
  as the API server would have rejected the object);
- NotIn and DoesNotExist match objects that lack the key.
Callers decide what "absent" means for their field: NetworkPolicy's podSelector is a value (absent
is `{}`), a peer's namespaceSelector is a pointer (absent means "this namespace only").
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from kaudit.value import value



OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@value
class Requirement:
    """One requirement of a label selector: key, operator, values."""

    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@value
class Selector:
    """A label selector as the API server reads it: every requirement must hold."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # the null selector, or an invalid one

    @property
    def everything(self) -> bool:
        return not self.nothing and not self.requirements

    def matches(self, labels: Optional[Mapping[str, Any]]) -> bool:
        if self.nothing:
            return False
        labels = labels if isinstance(labels, dict) else {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def describe(self) -> str:
        if self.nothing:
            return "nothing"
        if not self.requirements:
            return "everything"
        parts = []
        for r in self.requirements:
            if r.operator == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({', '.join(sorted(r.values))})")
            else:
                parts.append(("" if r.operator == "Exists" else "!") + r.key)
        return ", ".join(parts)


NOTHING = Selector(nothing=True)
EVERYTHING = Selector()


def parse_selector(value: Any) -> Selector:
    """A selector from its manifest form; None (null / absent) selects nothing."""
    if value is None:
        return NOTHING
    if not isinstance(value, dict):
        return NOTHING
    requirements = []
    match_labels = value.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        return NOTHING
    for key, label in match_labels.items():
        requirements.append(Requirement(str(key), "In", frozenset({str(label)})))
    expressions = value.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return NOTHING
    for expression in expressions:
        if not isinstance(expression, dict):
            return NOTHING
        operator, key = expression.get("operator"), expression.get("key")
        values = expression.get("values") or []
        if operator not in OPERATORS or not isinstance(key, str) or not key or not isinstance(values, list):
            return NOTHING
        if operator in ("In", "NotIn") and not values or operator in ("Exists", "DoesNotExist") and values:
            return NOTHING
        requirements.append(Requirement(key, operator, frozenset(str(v) for v in values)))
    return Selector(tuple(requirements))


def labels_of(metadata: Any) -> Mapping[str, str]:
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
