"""Run a rule against its own `tests` fixtures: every fail fixture fires it, no pass fixture does."""
from __future__ import annotations

from typing import Any, Mapping

from kaudit.engine import EngineResult, run
from kaudit.inventory import Inventory
from kaudit.ruleset import Rule
from kaudit.sources.manifests import ManifestScan, add_document
from kaudit.sources.yamldoc import Document, position_of


def evaluate_fixture(rule: Rule, expectation: str, index: int) -> tuple[ManifestScan, EngineResult]:
    """Scan fixture `index` of `tests.<expectation>` with this rule alone (a List fixture is several objects)."""
    fixture: Mapping[str, Any] = rule.fixtures[expectation][index]
    line, column = position_of(rule.fixtures[expectation], index) or (1, 1)
    scan = ManifestScan()
    add_document(rule.source, Document(fixture, line, column), scan)
    if rule.fixture_params:
        rule = rule.with_params(rule.fixture_params)
    inventory = Inventory(scan.resources)
    if rule.fixture_images:
        from kaudit.registry.cosign import SignatureCheck
        from kaudit.registry.verify import ImageFacts

        inventory.memo["images"] = {
            image: ImageFacts(image, facts.get("digest"), SignatureCheck(facts["status"], facts.get("detail", ""))
                              if facts.get("status") else None)
            for image, facts in rule.fixture_images.items()}
    return scan, run([rule], inventory)


def fixture_problems(rule: Rule) -> list[str]:
    problems: list[str] = []
    for expectation in ("fail", "pass"):
        for index in range(len(rule.fixtures[expectation])):
            scan, result = evaluate_fixture(rule, expectation, index)
            line, column = position_of(rule.fixtures[expectation], index) or (1, 1)
            where = f"{rule.source}:{line}:{column}: tests.{expectation}[{index}]"
            problems.extend(f"{where}: {e.message}" for e in scan.inputs.errors)
            problems.extend(f"{where}: {e}" for e in result.errors)
            if not scan.resources:
                problems.append(f"{where}: the fixture is not a Kubernetes object")
            fired = [f for f in result.findings if f.rule == rule.id]
            if expectation == "fail" and not fired:
                problems.append(f"{where}: expected rule {rule.id} to fire, it did not"
                                + (f" (template {rule.template}, view {_view(rule)})" if rule.template == "schema" else ""))
            if expectation == "pass" and fired:
                problems.append(f"{where}: expected no finding, got: {fired[0].message}")
    return problems


def _view(rule: Rule) -> str:
    from kaudit.checks.views import DEFAULT_VIEWS

    return str(rule.params.get("view") or DEFAULT_VIEWS.get(rule.target, "object"))
