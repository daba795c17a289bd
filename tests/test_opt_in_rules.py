"""Opt-in rules (`enabled: false` in the rule file): off unless the config or --rule turns them on;
while off they do not run and their framework controls do not count them. The built-in one is
apparmor-profile-missing (AppArmor required), whose check is tested here too."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from kaudit.checks.apparmor import profile_set
from kaudit.config import Config, RuleSettings, apply_rule_settings
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, ResourceRef, format_path
from kaudit.ruleset import load_builtin_rules
from kaudit.scan import ScanRequest, scan_manifests

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}
RULE_ID = "apparmor-profile-missing"
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
    - {name: web, image: registry.example.com/web:1.0}
"""

Write = Callable[[str, "str | bytes"], Path]


# --- the mechanism -------------------------------------------------------------------------------------

def test_the_rule_file_field_loads_and_is_indexed() -> None:
    assert RULES[RULE_ID].enabled is False
    assert {rule.id for rule in load_builtin_rules() if not rule.enabled} == {RULE_ID}  # rules/index.json too
    assert all(rule.enabled for rule_id, rule in RULES.items() if rule_id != RULE_ID)


@pytest.mark.parametrize("settings, selected, runs", [
    (None, (), False),
    (RuleSettings(enabled=True), (), True),
    (RuleSettings(severity=None), (), False),  # settings that do not say `enabled` leave it off
    (None, (RULE_ID,), True),  # --rule names it
    (RuleSettings(enabled=False), (RULE_ID,), False),  # the config's "off" wins over --rule
])
def test_apply_rule_settings(settings: RuleSettings | None, selected: tuple[str, ...], runs: bool) -> None:
    config = Config(rules={RULE_ID: settings} if settings else {})
    kept = {rule.id for rule in apply_rule_settings(list(RULES.values()), config, selected)}
    assert (RULE_ID in kept) is runs
    assert "run-as-root" in kept


def _scan(pod: Path, config: Path | None = None, **options: Any) -> Any:
    return scan_manifests(ScanRequest(targets=(str(pod),), config=str(config) if config else None,
                                      fail_on="never", **options))


def _controls(report: Any, framework: str) -> dict[str, Any]:
    return {c.id: c for f in report.frameworks if f.id == framework for c in f.controls}


def test_off_by_default_it_does_not_run_and_its_controls_do_not_wait_for_it(write: Write, tmp_path: Path) -> None:
    pod = write("pod.yaml", POD)
    empty = write("empty.yaml", "fail-on: high\n")
    report = _scan(pod, empty)
    assert RULE_ID not in {f.rule for f in report.findings}
    assert RULE_ID not in {info.id for info in report.rules}
    cis = _controls(report, "cis")["5.7.3"]
    assert RULE_ID not in cis.rules and RULE_ID not in cis.gap and cis.status == "fail"  # writable-root-filesystem


def test_enabled_by_config_it_runs_and_counts(write: Write) -> None:
    pod = write("pod.yaml", POD)
    config = write("on.yaml", f"rules:\n  {RULE_ID}: {{enabled: true, severity: high}}\n")
    report = _scan(pod, config)
    [finding] = [f for f in report.findings if f.rule == RULE_ID]
    assert finding.severity.label == "high"
    assert format_path(finding.path) == "spec.containers[0].securityContext.appArmorProfile"
    assert RULE_ID in _controls(report, "cis")["5.7.3"].rules


def test_named_with_rule_it_runs(write: Write) -> None:
    report = _scan(write("pod.yaml", POD), write("empty.yaml", "fail-on: high\n"), select=(RULE_ID,))
    assert [f.rule for f in report.findings] == [RULE_ID]


def test_a_framework_selection_does_not_turn_it_on(write: Write) -> None:
    report = _scan(write("pod.yaml", POD), write("empty.yaml", "fail-on: high\n"), frameworks=("cis",))
    assert RULE_ID not in {f.rule for f in report.findings}


def test_rules_list_show_and_docs_say_it_is_off(kaudit: Callable[..., Any]) -> None:
    listed = kaudit("rules", "list").out
    [line] = [line for line in listed.splitlines() if line.startswith(RULE_ID + " ")]
    assert line.endswith("[off: opt-in]")
    assert "(1 opt-in, off unless enabled)" in listed.splitlines()[-1]
    assert "opt-in: off unless enabled" in kaudit("rules", "show", RULE_ID).out
    assert f"{RULE_ID} [off: opt-in]" in kaudit("rules", "list", "--framework", "cis").out
    docs = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text()
    assert f"[{RULE_ID}](#{RULE_ID}) (opt-in)" in docs and "**Opt-in:** off unless enabled" in docs


def test_a_custom_rule_can_be_opt_in(write: Write, tmp_path: Path) -> None:
    source = (Path(__file__).resolve().parents[1] / "rules" / "workload-hardening" / f"{RULE_ID}.yaml").read_text()
    write("custom/custom-apparmor.yaml", source.replace(f"id: {RULE_ID}", "id: custom-apparmor"))
    pod = write("pod.yaml", POD)
    empty = write("empty.yaml", "fail-on: high\n")
    off = _scan(pod, empty, rule_dirs=(str(tmp_path / "custom"),))
    assert "custom-apparmor" not in {f.rule for f in off.findings}
    on = _scan(pod, write("on.yaml", "rules:\n  custom-apparmor: {enabled: true}\n"), rule_dirs=(str(tmp_path / "custom"),))
    assert "custom-apparmor" in {f.rule for f in on.findings}


def test_the_schemas_document_the_field() -> None:
    root = Path(__file__).resolve().parents[1] / "kaudit" / "schemas"
    rule_schema = json.loads((root / "rule.schema.json").read_text())
    assert rule_schema["properties"]["enabled"]["type"] == "boolean"
    config_schema = json.loads((root / "config.schema.json").read_text())
    assert "opt-in" in config_schema["properties"]["rules"]["additionalProperties"]["properties"]["enabled"]["description"]


# --- the AppArmor check --------------------------------------------------------------------------------

def _findings(body: dict[str, Any]) -> list[str]:
    rule = RULES[RULE_ID]
    meta = body.get("metadata") or {}
    resource = Resource(ResourceRef(body["apiVersion"], body["kind"], meta.get("name", "x"), "ns"), body,
                        Origin(file="x.yaml", line=1))
    result = run([rule], Inventory([resource]))
    assert not result.errors
    return [format_path(f.path) for f in result.findings if f.rule == RULE_ID]


def _pod(spec: dict[str, Any], annotations: Any = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


APP = {"name": "app", "image": "registry.example.com/app:1.0"}


@pytest.mark.parametrize("profile, chosen", [
    ({"type": "RuntimeDefault"}, True), ({"type": "Localhost", "localhostProfile": "p"}, True),
    ({"type": "Unconfined"}, True), ({}, False), (None, False), ({"type": ""}, False), ({"type": 3}, False),
    ("RuntimeDefault", False), ([], False),
])
def test_profile_set(profile: Any, chosen: bool) -> None:
    assert profile_set(profile) is chosen


def test_every_container_kind_without_a_profile_is_reported_at_its_own_field() -> None:
    spec = {"initContainers": [{"name": "init", "image": "i"}], "containers": [APP],
            "ephemeralContainers": [{"name": "debug", "image": "d"}]}
    assert sorted(_findings(_pod(spec))) == ["spec.containers[0].securityContext.appArmorProfile",
                                             "spec.ephemeralContainers[0].securityContext.appArmorProfile",
                                             "spec.initContainers[0].securityContext.appArmorProfile"]


@pytest.mark.parametrize("annotations, expected", [
    ({"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}, []),
    ({"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}, []),  # apparmor-unconfined's fact
    ({"container.apparmor.security.beta.kubernetes.io/app": ""}, ["spec.containers[0].securityContext.appArmorProfile"]),
    ({"container.apparmor.security.beta.kubernetes.io/other": "runtime/default"},
     ["spec.containers[0].securityContext.appArmorProfile"]),
    ({"container.apparmor.security.beta.kubernetes.io/app": None}, ["spec.containers[0].securityContext.appArmorProfile"]),
    ("not a mapping", ["spec.containers[0].securityContext.appArmorProfile"]),
])
def test_the_deprecated_annotation(annotations: Any, expected: list[str]) -> None:
    assert _findings(_pod({"containers": [APP]}, annotations)) == expected


def test_the_pod_field_covers_every_container_and_odd_shapes_do_not_crash() -> None:
    assert _findings(_pod({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
                           "containers": [APP, {"name": "b", "image": "b"}]})) == []
    for odd in (None, "x", [], {"appArmorProfile": None}, {"appArmorProfile": "RuntimeDefault"}):
        assert len(_findings(_pod({"securityContext": odd, "containers": [{**APP, "securityContext": odd}]}))) == 1


def test_cronjob_templates_and_windows_pods() -> None:
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
               "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                   "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
                   "spec": {"containers": [APP, {"name": "side", "image": "s"}]}}}}}}
    assert _findings(cronjob) == ["spec.jobTemplate.spec.template.spec.containers[1].securityContext.appArmorProfile"]
    assert _findings(_pod({"os": {"name": "windows"}, "containers": [APP]})) == []


def test_an_ignore_annotation_may_name_an_opt_in_rule_that_is_off(write: Write) -> None:
    annotated = POD.replace("metadata: {name: web, namespace: shop}",
                            f"metadata: {{name: web, namespace: shop, annotations: {{kaudit.io/ignore: {RULE_ID},"
                            " kaudit.io/ignore-reason: 'AppArmor is not on these nodes'}}")
    report = _scan(write("pod.yaml", annotated), write("empty.yaml", "fail-on: high\n"))
    assert not [w for w in report.inputs.warnings if "unknown rule" in w.message]
    typo = _scan(write("typo.yaml", annotated.replace(RULE_ID, "apparmor-profile-mising")),
                 write("empty2.yaml", "fail-on: high\n"))
    assert [w for w in typo.inputs.warnings if "unknown rule" in w.message]
