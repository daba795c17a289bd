"""Every built-in rule: valid, documented, and proven by its own failing and passing fixtures."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from kaudit.fixtures import evaluate_fixture
from kaudit.model import format_path
from kaudit.paths import builtin_rules_dir
from kaudit.ruleset import RuleFileError, load_builtin_rules, load_rule_file, rule_files, validate_rule
from kaudit.sources.yamldoc import deepest_position

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}  # YAML: fixtures keep their lines
FIXTURES = [(rule_id, kind, index) for rule_id, rule in sorted(RULES.items())
            for kind in ("fail", "pass") for index in range(len(rule.fixtures[kind]))]


def test_there_are_built_in_rules_and_ids_are_unique() -> None:
    files = rule_files(builtin_rules_dir())
    assert len(files) == len(RULES) >= 20


@pytest.mark.parametrize("path", rule_files(builtin_rules_dir()), ids=lambda p: p.stem)
def test_rule_file_is_valid_and_named_after_its_id(path: Path) -> None:
    rule = load_rule_file(path, validate=True)
    assert path.stem == rule.id
    assert path.parent.name == rule.category or path.parent.name in {"host-isolation"}


@pytest.mark.parametrize("rule_id, kind, index", FIXTURES, ids=[f"{r}-{k}{i}" for r, k, i in FIXTURES])
def test_fixture(rule_id: str, kind: str, index: int) -> None:
    rule = RULES[rule_id]
    scan, result = evaluate_fixture(rule, kind, index)
    assert not scan.inputs.errors and not result.errors and scan.resources
    fired = [f for f in result.findings if f.rule == rule_id]
    if kind == "pass":
        assert fired == []
        return
    assert fired, f"{rule_id} did not fire on tests.fail[{index}]"
    for finding in fired:
        # The reported path exists in the object, or names a missing field under the reported line's parent
        # (a namespace implied by its objects has no body of its own: it is located at its first object).
        body = next((r.body for r in scan.resources if r.ref == finding.resource), None)
        if body is not None:
            assert deepest_position(body, finding.path) is not None, format_path(finding.path)
        assert finding.location.file == rule.source and finding.location.line is not None
        assert "{" not in finding.message, f"unfilled placeholder in {finding.message!r}"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_docs_are_complete(rule_id: str) -> None:
    docs = RULES[rule_id].docs
    assert all(docs[key].strip() for key in ("what", "why", "example", "fix"))
    assert RULES[rule_id].references


def _rule_without(write: Callable[..., Path], remove: str) -> list[str]:
    source = (builtin_rules_dir() / "workload-hardening" / "run-as-root.yaml").read_text()
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{remove}:"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    path = write("custom/rule.yaml", "\n".join(lines[:start] + lines[end:]) + "\n")
    with pytest.raises(RuleFileError) as error:
        load_rule_file(path, validate=True)
    return error.value.problems


@pytest.mark.parametrize("section", ["tests", "docs"])
def test_a_rule_without_fixtures_or_docs_is_rejected(write: Callable[..., Path], section: str) -> None:
    problems = _rule_without(write, section)
    assert any(f"'{section}' is a required property" in p for p in problems)


def test_a_rule_with_an_empty_pass_list_or_a_missing_doc_field_is_rejected(write: Callable[..., Path]) -> None:
    source = (builtin_rules_dir() / "workload-hardening" / "run-as-root.yaml").read_text()
    broken = source.replace("  why: >-", "  whyy: >-", 1)
    path = write("custom/rule.yaml", broken)
    with pytest.raises(RuleFileError) as error:
        load_rule_file(path, validate=True)
    text = "\n".join(error.value.problems)
    assert "'why' is a required property" in text and "whyy" in text
    assert f"{path}:" in text  # problems carry the file and the line


def test_validation_names_the_line_of_a_bad_param(write: Callable[..., Path]) -> None:
    path = write("r.yaml", """
        id: bad-view
        title: t
        severity: high
        category: test
        target: pod
        template: schema
        params:
          view: container
          schema: {properties: {x: {patternProperties: {}}}}
        message: m
        docs: {what: a, why: b, example: c, fix: d}
        tests:
          fail: [{apiVersion: v1, kind: Pod}]
          pass: [{apiVersion: v1, kind: Pod}]
        """)
    from kaudit.sources.yamldoc import parse_documents

    [document] = list(parse_documents(path.read_text()))
    problems = validate_rule(document.data, str(path))
    assert problems and all(p.startswith(f"{path}:") for p in problems)
    assert any(":9:" in p or ":8:" in p for p in problems), problems


def test_compiled_index_is_current_and_equivalent() -> None:
    from kaudit.ruleset import INDEX_NAME, compile_builtin_index

    index = builtin_rules_dir() / INDEX_NAME
    assert index.read_text(encoding="utf-8") == compile_builtin_index(), \
        "rules/index.json is stale: run `kaudit rules compile`"
    from_index = {r.id: (r.params, r.frameworks, r.message, r.severity, r.kinds) for r in load_builtin_rules()}
    from_yaml = {r.id: (r.params, r.frameworks, r.message, r.severity, r.kinds) for r in RULES.values()}
    assert from_index == from_yaml


def test_a_stale_index_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from kaudit import ruleset

    copy = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), copy)
    edited = copy / "workload-hardening" / "run-as-root.yaml"
    edited.write_text(edited.read_text().replace("severity: high", "severity: low", 1))
    monkeypatch.setattr(ruleset, "builtin_rules_location", lambda: str(copy))
    rules = {r.id: r for r in ruleset.load_builtin_rules()}
    assert rules["run-as-root"].severity.label == "low"
