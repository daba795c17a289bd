"""docs/rules.md is generated; it must be current (regenerate: kaudit rules docs -o docs/rules.md)."""
from __future__ import annotations

from pathlib import Path

from kaudit.docs import render
from kaudit.ruleset import load_builtin_rules

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def test_rules_reference_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(load_builtin_rules()), \
        "docs/rules.md is out of date: run `kaudit rules docs -o docs/rules.md`"


def test_every_rule_is_documented_with_all_sections() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for rule in load_builtin_rules():
        section = text.split(f"### {rule.id}\n", 1)[1].split("\n### ", 1)[0]
        for heading in ("**What it does.**", "**Why is this bad?**", "**Example**", "**Use instead**", "**References**"):
            assert heading in section, (rule.id, heading)
