"""Suppression (annotations, config exclusions, disallow-annotation-exemptions) and baselines."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from .conftest import CliResult, every_fact

Kaudit = Callable[..., CliResult]
Write = Callable[[str, "str | bytes"], Path]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
  annotations: {annotations}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {template_annotations}
    spec:
      containers:
        - name: app
          image: registry.example.com/app:1.0
"""


def deployment(name: str = "web", namespace: str = "shop", annotations: str = "{}",
               template_annotations: str = "{}") -> str:
    return DEPLOYMENT.format(name=name, namespace=namespace, annotations=annotations,
                             template_annotations=template_annotations)


def findings(result: CliResult) -> list[dict]:  # type: ignore[type-arg]
    return result.json()["findings"]  # type: ignore[no-any-return]


def by_rule(result: CliResult, rule: str) -> list[dict]:  # type: ignore[type-arg]
    return [f for f in findings(result) if f["rule"] == rule]


def test_annotation_suppresses_named_rules_and_keeps_them_with_the_reason(kaudit: Kaudit, write: Write) -> None:
    path = write("d.yaml", deployment(annotations='{kaudit.io/ignore: "run-as-root, latest-tag", '
                                                  'kaudit.io/ignore-reason: "legacy image, ticket SEC-42"}'))
    result = kaudit("scan", path, "-f", "json", "--rule", "run-as-root", "--rule", "missing-memory-limit")
    [root] = by_rule(result, "run-as-root")
    assert root["suppressed"] == {"by": "annotation", "reason": "legacy image, ticket SEC-42"}
    assert all(f["suppressed"] is None for f in by_rule(result, "missing-memory-limit"))
    assert result.code == 0  # the only high finding is suppressed: the gate passes
    report = result.json()
    assert report["summary"]["suppressed"] == 1 and report["summary"]["failing"] == 0
    text = kaudit("scan", path, "--rule", "run-as-root", "--rule", "missing-memory-limit").out
    assert "1 suppressed" in text and "run-as-root" not in text.split("\n\n")[0]


def test_pod_template_annotation_and_wildcard(kaudit: Kaudit, write: Write) -> None:
    path = write("d.yaml", deployment(template_annotations='{kaudit.io/ignore: "*"}'))
    result = kaudit("scan", path, "-f", "json")
    own = [f for f in findings(result) if f["resource"]["kind"] == "Deployment"]
    assert own and all(f["suppressed"]["by"] == "annotation" for f in own)
    assert all("no reason given" in f["suppressed"]["reason"] for f in own)
    # the namespace's own findings (no NetworkPolicy, LimitRange or quota) are not the Deployment's to exempt
    assert {f["rule"] for f in findings(result) if f["suppressed"] is None} <= {
        "namespace-without-network-policy", "namespace-without-default-deny", "namespace-without-limit-range",
        "namespace-without-resource-quota"}


@pytest.mark.parametrize("annotated", [0, 1], ids=["first-copy", "second-copy"])
def test_annotation_on_one_of_two_declarations_in_one_file_suppresses_only_that_one(
        kaudit: Kaudit, write: Write, annotated: int) -> None:
    # The same Deployment pasted twice into one file: each declaration is judged on its own, so its
    # annotation exempts its own findings only (the first copy's used to exempt both, the second's none)
    copies = [deployment(), deployment()]
    copies[annotated] = deployment(annotations="{kaudit.io/ignore: run-as-root}")
    path = write("d.yaml", copies[0] + "---" + copies[1])
    second_starts = len(copies[0].splitlines()) + 1
    result = kaudit("scan", path, "-f", "json", "--rule", "run-as-root")
    state = sorted((f["location"]["line"] >= second_starts, f["suppressed"] is not None)
                   for f in by_rule(result, "run-as-root"))
    assert state == [(False, annotated == 0), (True, annotated == 1)]


def test_unknown_rule_in_annotation_is_a_warning(kaudit: Kaudit, write: Write) -> None:
    path = write("d.yaml", deployment(annotations='{kaudit.io/ignore: "run-as-rot"}'))
    result = kaudit("scan", path)
    assert "warning:" in result.out and "names unknown rule(s): run-as-rot" in result.out
    assert result.code == 1


def test_config_can_forbid_annotation_exemptions(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    path = write("d.yaml", deployment(annotations='{kaudit.io/ignore: run-as-root}'))
    config = write("auditor.yaml", "disallow-annotation-exemptions: true\n")
    result = kaudit("scan", path, "--config", config, "-f", "json")
    assert all(f["suppressed"] is None for f in by_rule(result, "run-as-root"))
    [warning] = result.json()["inputs"]["warnings"]
    assert "forbids annotation exemptions" in warning["message"]
    assert result.code == 1


@pytest.mark.parametrize("exclude, suppressed", [
    ("{namespaces: [shop]}", {"web", "api"}),
    ("{namespaces: ['team-*']}", {"worker"}),
    ("{kinds: [Deployment], names: ['w*']}", {"web", "worker"}),
    ("{names: [api]}", {"api"}),
    ("{paths: ['*/legacy/*']}", {"worker"}),
    ("{rules: [run-as-root]}", {"web", "api", "worker"}),
    ("{namespaces: [shop], rules: [latest-tag]}", set()),  # every criterion must match: no latest-tag here
    ("{namespaces: [shop, 'team-*'], kinds: [StatefulSet]}", set()),
])
def test_every_exclusion_form(kaudit: Kaudit, write: Write, tmp_path: Path, exclude: str,
                              suppressed: set[str]) -> None:
    write("m/shop.yaml", deployment("web") + "---\n" + deployment("api"))
    write("m/legacy/worker.yaml", deployment("worker", "team-a"))
    config = write("c.yaml", f"exclude:\n  - {exclude[:-1]}, reason: 'owned elsewhere'}}\n")
    result = kaudit("scan", tmp_path / "m", "--config", config, "-f", "json", "--rule", "run-as-root")
    got = {f["resource"]["name"] for f in findings(result) if f["suppressed"]}
    assert got == suppressed
    assert all(f["suppressed"] == {"by": "config", "reason": "owned elsewhere"}
               for f in findings(result) if f["suppressed"])


@pytest.mark.parametrize("config, key", [
    ("exclude: [{reason: only a reason}]\n", "exclude[0]"),
    ("exclude: [{namespace: [shop]}]\n", "exclude[0]"),
    ("disallow-annotation-exemptions: yes-please\n", "disallow-annotation-exemptions"),
    ("fail-on: severe\n", "fail-on"),
    ("unknown-key: 1\n", "unknown key 'unknown-key'"),
])
def test_invalid_config_names_key_and_file(kaudit: Kaudit, write: Write, config: str, key: str) -> None:
    path = write("d.yaml", deployment())
    config_path = write("bad.yaml", config)
    result = kaudit("scan", path, "--config", config_path)
    assert result.code == 2 and str(config_path) in result.err and key in result.err
    assert result.err.count("\n") == 1


def test_baseline_survives_moved_lines_and_reordered_files(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("m/a.yaml", deployment("web"))
    write("m/b.yaml", deployment("api"))
    baseline = tmp_path / "baseline.json"
    created = kaudit("baseline", "create", tmp_path / "m", "-o", baseline)
    assert created.code == 0 and "baseline written" in created.out
    assert kaudit("scan", tmp_path / "m").code == 1  # without the baseline the gate fails
    # move lines (a comment and a label on top), swap the files' contents and names
    shutil.rmtree(tmp_path / "m")
    write("m/z-first.yaml", "# moved\n\n" + deployment("api").replace("namespace: shop", "namespace: shop\n  labels: {a: b}"))
    write("m/a-second.yaml", "---\n" + deployment("web"))
    result = kaudit("scan", tmp_path / "m", "--baseline", baseline, "-f", "json")
    assert result.code == 0
    assert all(f["suppressed"]["by"] == "baseline" for f in findings(result))


def test_a_new_finding_fails_the_gate_despite_the_baseline(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("m/a.yaml", deployment("web"))
    baseline = tmp_path / "baseline.json"
    kaudit("baseline", "create", tmp_path / "m", "-o", baseline)
    write("m/b.yaml", deployment("new-app"))
    result = kaudit("scan", tmp_path / "m", "--baseline", baseline, "-f", "json")
    assert result.code == 1
    known = {f["fingerprint"] for f in every_fact(json.loads(baseline.read_text())["findings"])}
    new = {f["resource"]["name"] for f in every_fact(findings(result)) if f["fingerprint"] not in known}
    assert new == {"new-app"}
    # every active finding is active for a new fact: the namespace's "no NetworkPolicy" joins the
    # new workload's "not isolated" (kaudit/relations.py), so it is new too, with new-app in it
    for finding in findings(result):
        if finding["suppressed"] is None:
            assert any(f["fingerprint"] not in known for f in every_fact([finding]))


def test_baseline_errors_are_clear(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    path = write("d.yaml", deployment())
    missing = kaudit("scan", path, "--baseline", tmp_path / "none.json")
    assert missing.code == 2 and "baseline not found" in missing.err
    broken = write("b.json", '{"findings": [')
    result = kaudit("scan", path, "--baseline", broken)
    assert result.code == 2 and "baseline is not valid JSON" in result.err
    other = write("o.json", json.dumps({"findings": []}))
    assert "not a kaudit JSON report" in kaudit("scan", path, "--baseline", other).err


def test_baseline_from_config_and_incomplete_scans_write_none(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write("m/a.yaml", deployment("web"))
    kaudit("baseline", "create", tmp_path / "m", "-o", tmp_path / "base.json")
    write(".kaudit.yaml", "baseline: base.json\n")
    monkeypatch.chdir(tmp_path)
    assert kaudit("scan", "m").code == 0
    write("m/broken.yaml", "a: [\n")
    result = kaudit("baseline", "create", "m", "-o", "new.json")
    assert result.code == 2 and "no baseline written" in result.err and not (tmp_path / "new.json").exists()
