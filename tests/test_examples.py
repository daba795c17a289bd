"""The README's scan runs on examples/manifests: the insecure set fires every rule, the hardened set none."""
from __future__ import annotations

from pathlib import Path

from kaudit.ruleset import load_builtin_rules

from .conftest import run_process

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIG = EXAMPLES / "kaudit.yaml"  # configures the allowlist, so untrusted-registry has something to say


def test_every_built_in_rule_fires_on_the_insecure_examples() -> None:
    result = run_process("scan", "--config", CONFIG, EXAMPLES / "manifests" / "insecure", "-f", "json")
    assert result.code == 1
    report = result.json()
    fired = set(report["summary"]["byRule"])
    assert fired == {rule.id for rule in load_builtin_rules()}
    assert not report["inputs"]["errors"] and not report["inputs"]["skipped"]


def test_the_hardened_examples_produce_zero_findings() -> None:
    result = run_process("scan", "--config", CONFIG, "--fail-on", "info", EXAMPLES / "manifests" / "hardened")
    assert result.code == 0, result.out
    assert result.out.splitlines()[-1].startswith("0 findings")


def test_the_readme_scan_of_all_examples() -> None:
    result = run_process("scan", "examples/manifests/", cwd=EXAMPLES.parent)
    assert result.code == 1  # the insecure examples have high findings: the gate fails, as intended
    assert "examples/manifests/insecure/node-agent.yaml:" in result.out
    assert "examples/manifests/hardened" not in result.out.split("\n\n")[-1]  # the summary is last
