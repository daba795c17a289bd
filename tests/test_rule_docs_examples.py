"""Each rule's `docs.example` fails it and `docs.fix` passes it, read through the engine.

Docs that are whole manifests (or a pod `spec:` fragment, read as a Pod) are checked; prose or a
lone securityContext cannot be evaluated and is listed in NOT_MANIFESTS, so a new rule whose docs
are not a manifest is noticed."""
from __future__ import annotations

from typing import Any, Optional

import pytest
import yaml

from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, ResourceRef
from kaudit.ruleset import load_builtin_rules

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}


def manifest_objects(text: str) -> Optional[list[dict[str, Any]]]:
    """The objects a docs snippet shows, or None when it is not a manifest."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return None
    if not documents or not all(isinstance(d, dict) for d in documents):
        return None
    if all("kind" in d for d in documents):
        return documents
    if len(documents) == 1 and isinstance(documents[0].get("spec"), dict) and "containers" in documents[0]["spec"]:
        return [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "example", "namespace": "example"},
                 **documents[0]}]
    return None


def rule_findings(rule_id: str, objects: list[dict[str, Any]]) -> list[str]:
    resources = []
    for body in objects:
        meta = body.setdefault("metadata", {}) or {}
        ref = ResourceRef(str(body.get("apiVersion", "v1")), str(body["kind"]), str(meta.get("name", "example")),
                          meta.get("namespace"))
        resources.append(Resource(ref, body, Origin(file="docs.yaml", line=1)))
    rule = RULES[rule_id]
    if rule.fixture_params:  # a rule that reports nothing until configured: its docs show it configured
        rule = rule.with_params(rule.fixture_params)
    result = run([rule], Inventory(resources))
    assert not result.errors, result.errors
    return [f.message for f in result.findings if f.rule == rule_id]


# Docs whose example (or fix) does not yet evaluate as written: most show one object of a
# cross-object fact (a policy without the pods it selects, a workload without the probe context).
# The RBAC rules' examples (a role's rule) evaluate since grants are reported on the role, and the
# examples of rules that report nothing until configured evaluate with their `tests.params`. Strict: converting one makes its test pass and fail here.
KNOWN_DOCS_GAPS = {
    "missing-liveness-probe", "missing-readiness-probe", "namespace-without-default-deny",
    "network-policy-selects-nothing", "workload-not-isolated-egress", "workload-not-isolated-ingress",
    "workload-with-dangerous-permissions",
}
CHECKED = sorted(r for r in RULES if manifest_objects(RULES[r].docs["example"]) is not None)


def test_how_many_rules_have_manifest_docs() -> None:
    # reported by `pytest -rA`; the floor keeps docs from drifting back to prose
    print(f"{len(CHECKED)} of {len(RULES)} rules have a manifest docs example")
    assert len(CHECKED) >= 55


@pytest.mark.parametrize("rule_id", [
    pytest.param(r, marks=pytest.mark.xfail(strict=True, reason="docs not yet a self-contained manifest"))
    if r in KNOWN_DOCS_GAPS else r for r in CHECKED])
def test_docs_example_fails_and_fix_passes(rule_id: str) -> None:
    docs = RULES[rule_id].docs
    example = manifest_objects(docs["example"])
    assert example is not None
    assert rule_findings(rule_id, example), f"{rule_id}: docs.example does not fail the rule"
    fix = manifest_objects(docs["fix"])
    if fix is not None:
        assert rule_findings(rule_id, fix) == [], f"{rule_id}: docs.fix still fails the rule"
