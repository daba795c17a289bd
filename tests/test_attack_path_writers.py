"""Attack paths as the writers show them (issue 17): a SARIF codeFlow per path that the OASIS schema
and GitHub's ingestion rules accept, the chain under the finding in Markdown, and the HTML report's
chain (an inline SVG the page script draws) and its attack paths panel, in a real browser.

The scan is of tests/data/attack-paths plus one hostile Service, whose name tries to inject markup,
on a path of its own (it selects the storefront's privileged pods)."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from kaudit.attack.model import EDGE_VERBS, AttackPath, Edge, Evidence
from kaudit.model import Finding, Location, Origin, Report, Resource
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.value import replace
from kaudit.writers import markdown, sarif
from kaudit.writers.attack_steps import chain_text, node_label
from tests.github_sarif import github_problems
from tests.report_fixture import REPO
from tests.test_writers import assert_valid_sarif

HOSTILE = "evil-<img src=x onerror=window.__pwned=3>[x](1)"
HOSTILE_SERVICE = f"""\
apiVersion: v1
kind: Service
metadata:
  name: "{HOSTILE}"
  namespace: web
spec:
  type: LoadBalancer
  selector:
    app: frontend
  ports:
    - port: 443
      targetPort: http
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scanned tree, outside any repository: SARIF URIs are relative to it (the working directory)."""
    root = tmp_path_factory.mktemp("attack-writers")
    shutil.copytree(REPO / "tests/data/attack-paths", root / "attack-paths")
    (root / "attack-paths" / "99-hostile.yaml").write_text(HOSTILE_SERVICE, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def report(workdir: Path) -> Report:
    here = os.getcwd()
    os.chdir(workdir)
    try:
        return scan_manifests(ScanRequest(targets=("attack-paths",)))
    finally:
        os.chdir(here)


def path_findings(report: Report) -> list[Finding]:
    return [finding for finding in report.findings if finding.attack_path is not None]


def sarif_log(report: Report, cwd: Path) -> dict[str, Any]:
    here = os.getcwd()
    os.chdir(cwd)
    try:
        stream = io.StringIO()
        sarif.write(report, stream)
    finally:
        os.chdir(here)
    log: dict[str, Any] = json.loads(stream.getvalue())
    return log


def test_the_scan_has_paths_and_one_through_the_hostile_service(report: Report) -> None:
    found = path_findings(report)
    assert len(found) > 5 and report.attack is not None
    assert any(finding.attack_path.source == f"Service/web/{HOSTILE}" for finding in found)


# -- SARIF ----------------------------------------------------------------------------------------

def test_sarif_code_flow_is_the_entry_point_then_each_step_at_its_evidence(report: Report, workdir: Path) -> None:
    log = sarif_log(report, workdir)
    assert_valid_sarif(log)
    assert github_problems(log) == []
    results = log["runs"][0]["results"]
    by_fingerprint = {result["partialFingerprints"]["kaudit/v1"]: result for result in results}
    for finding in report.findings:
        result = by_fingerprint[finding.fingerprint]
        if finding.attack_path is None:
            assert "codeFlows" not in result
            continue
        path = finding.attack_path
        (flow,) = result["codeFlows"]
        (thread,) = flow["threadFlows"]
        stops = thread["locations"]
        assert len(stops) == len(path.steps) + 1
        assert [stop["executionOrder"] for stop in stops] == list(range(1, len(stops) + 1))
        assert all("index" not in stop for stop in stops)  # no run.threadFlowLocations to point into
        assert stops[0]["location"]["physicalLocation"] == result["locations"][0]["physicalLocation"]
        assert stops[0]["location"]["message"]["text"].startswith(sarif.plain_text(node_label(path.source, report.attack)))
        for stop, step in zip(stops[1:], path.steps):
            evidence = step.evidence[0]
            physical = stop["location"]["physicalLocation"]
            assert physical["artifactLocation"] == {"uri": evidence.location.file, "uriBaseId": "SRCROOT"}
            assert physical["region"] == {"startLine": evidence.location.line, "startColumn": evidence.location.column}
            assert stop["location"]["logicalLocations"][0]["fullyQualifiedName"] == evidence.ref.describe()
            text = stop["location"]["message"]["text"]
            assert EDGE_VERBS[step.kind] in text and (not step.why or text.endswith(sarif.plain_text(step.why)))
            assert stop["properties"]["edge"] == step.kind
        assert flow["message"]["text"] == f"{len(path.steps)} steps to {path.target.partition(':')[2]}"


def test_sarif_code_flow_text_cannot_forge_links(report: Report, workdir: Path) -> None:
    log = sarif_log(report, workdir)
    texts = [stop["location"]["message"]["text"] for result in log["runs"][0]["results"]
             for flow in result.get("codeFlows", ()) for stop in flow["threadFlows"][0]["locations"]]
    hostile = [text for text in texts if "evil-" in text]
    assert hostile and all("\\[x\\](1)" in text for text in hostile)


def on_cluster(report: Report, context: str) -> Report:
    """The same report as a live-cluster scan would give it: no files, only the context."""
    def moved(evidence: Evidence) -> Evidence:
        resource = evidence.resource
        return Evidence(Resource(resource.ref, resource.body, Origin(context=context)), evidence.path)

    findings = []
    for finding in report.findings:
        if finding.attack_path is not None:
            path = finding.attack_path
            steps = tuple(replace(step, evidence=tuple(moved(e) for e in step.evidence)) for step in path.steps)
            finding = replace(finding, location=Location(context=context),
                              attack_path=AttackPath(path.source, path.target, steps))
            findings.append(finding)
    return replace(report, findings=tuple(findings))


def test_sarif_code_flow_of_a_live_cluster_names_each_object(report: Report, workdir: Path) -> None:
    cluster = on_cluster(report, "prod")
    log = sarif_log(cluster, workdir)
    assert_valid_sarif(log)
    assert github_problems(log) == []
    for result, finding in zip(log["runs"][0]["results"], cluster.findings):
        stops = result["codeFlows"][0]["threadFlows"][0]["locations"]
        for stop, step in zip(stops[1:], finding.attack_path.steps):
            ref = step.evidence[0].ref
            location = stop["location"]
            assert location["physicalLocation"]["artifactLocation"]["uri"].startswith(f"cluster/prod/{ref.kind}/")
            assert location["physicalLocation"]["region"] == {"startLine": 1}
            assert location["logicalLocations"] == [{"name": ref.name, "fullyQualifiedName": ref.describe(),
                                                     "kind": "resource"}]


def test_sarif_step_without_evidence_stays_at_the_previous_stop(report: Report, workdir: Path) -> None:
    finding = path_findings(report)[0]
    path = finding.attack_path
    bare = Edge(path.steps[1].kind, path.steps[1].source, path.steps[1].target, (), "", "")
    changed = replace(finding, attack_path=AttackPath(path.source, path.target, (path.steps[0], bare, *path.steps[2:])))
    log = sarif_log(replace(report, findings=(changed,)), workdir)
    assert github_problems(log) == []
    stops = log["runs"][0]["results"][0]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert stops[2]["location"]["physicalLocation"] == stops[1]["location"]["physicalLocation"]
    assert "fix" not in stops[2]["properties"]


def test_sarif_without_the_attack_summary_reads_labels_from_ids(report: Report, workdir: Path) -> None:
    """A report read back (no Report.attack) still writes each step in words."""
    log = sarif_log(replace(report, attack=None), workdir)
    assert github_problems(log) == []
    texts = [stop["location"]["message"]["text"] for result in log["runs"][0]["results"]
             for flow in result.get("codeFlows", ()) for stop in flow["threadFlows"][0]["locations"]]
    assert any(text.startswith("node of Deployment/web/frontend ") for text in texts)
    assert not any("crown:" in text or "node-of:" in text for text in texts)


# -- Markdown -------------------------------------------------------------------------------------

def test_markdown_shows_each_chain_under_its_finding_escaped(report: Report) -> None:
    text = markdown.render(report)
    rows = [line for line in text.splitlines() if "| attack-path-to-cluster-admin |" in line]
    listed = [f for f in sorted(report.active_findings, key=lambda f: -f.severity)[:markdown.MAX_FINDINGS]
              if f.attack_path is not None]
    assert rows and len(rows) == len(listed)
    for row, finding in zip(rows, listed):
        chain = row.rsplit("<br>", 1)[1].rstrip(" |")
        assert chain == markdown.escape(markdown.clip(chain_text(finding.attack_path, report.attack), markdown.MAX_CHAIN))
        assert chain.count("-&gt; ") == len(finding.attack_path.steps)
    assert "<img" not in text and "&lt;img src=x onerror=window.\\_\\_pwned=3&gt;\\[x\\](1)" in text


def test_chain_text_names_every_step() -> None:
    step = Edge("escapes-to-node", "Deployment/web/a", "node-of:Deployment/web/a", ())
    crown = Edge("grants", "node-of:Deployment/web/a", "crown:cluster-admin", ())
    assert chain_text(AttackPath("Deployment/web/a", "crown:cluster-admin", (step, crown))) == (
        "Deployment/web/a -escapes-to-node-> node of Deployment/web/a -grants-> cluster-admin")
