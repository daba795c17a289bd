"""Attack paths as the writers show them (issue 17): a SARIF codeFlow per path that the OASIS schema
and GitHub's ingestion rules accept, the chain under the finding in Markdown, and the HTML report's
chain (an inline SVG the page script draws) and its attack paths panel, in a real browser.

The scan is of tests/data/attack-paths plus one hostile Service, whose name tries to inject markup,
on a path of its own (it selects the storefront's privileged pods)."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import markupsafe
import pytest

from kaudit.attack.model import EDGE_VERBS, AttackPath, Edge, Evidence
from kaudit.model import Finding, Location, Origin, Report, Resource
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.value import replace
from kaudit.writers import html, markdown, sarif
from kaudit.writers.attack_steps import chain_text, node_label
from tests import html_data
from tests.github_sarif import github_problems
from tests.report_fixture import REPO
from tests.test_html import Opened, browser, open_page  # noqa: F401 (browser: the fixture)
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


# -- HTML -----------------------------------------------------------------------------------------

def html_page(report: Report) -> str:
    stream = io.StringIO()
    html.write(report, stream)
    return stream.getvalue()


@pytest.fixture(scope="module")
def page_html(report: Report) -> str:
    return html_page(report)


def test_html_data_holds_each_path_once_its_steps_interned(report: Report, page_html: str) -> None:
    data = html_data.report_data(page_html)
    strings, rows, paths, steps = data["s"], data["f"], data["paths"], data["steps"]
    assert len(rows) == len(report.findings)
    for row, finding in zip(rows, report.findings):
        if finding.attack_path is None:
            assert len(row) == 12
            continue
        entry, _text, indexes = paths[row[12]]
        path = finding.attack_path
        assert strings[entry] == node_label(path.source, report.attack)
        assert [strings[steps[s][0]] for s in indexes] == [step.kind for step in path.steps]
        assert [strings[steps[s][2]] for s in indexes] == [node_label(step.target, report.attack) for step in path.steps]
        for s, step in zip(indexes, path.steps):
            location = step.evidence[0].location
            assert strings[steps[s][5]] == f"{location.file}:{location.line}"
    assert len(steps) < sum(len(f.attack_path.steps) for f in path_findings(report))  # shared steps once


def test_html_a_step_links_to_the_finding_on_its_evidence(report: Report, page_html: str) -> None:
    data = html_data.report_data(page_html)
    strings, steps = data["s"], data["steps"]
    linked = {}
    for step in steps:
        if step[6] >= 0:
            finding = report.findings[step[6]]
            linked[strings[step[0]], strings[step[2]]] = finding
            assert finding.attack_path is None
    privileged = linked["escapes-to-node", "node of Deployment/web/frontend"]
    assert (privileged.rule, privileged.resource.describe()) == ("privileged-container", "Deployment/web/frontend")
    assert privileged.path_text == "spec.template.spec.containers[0].securityContext.privileged"
    # a step whose evidence is a line shared with an unrelated finding (a missing field reported at
    # its parent) is not linked to it: the same field, not only the same line
    assert not any(finding.rule == "missing-priority-class" for finding in linked.values())


def test_html_attack_panel_counts_paths_and_choke_points(report: Report, page_html: str) -> None:
    assert report.attack is not None
    active = [f for f in report.active_findings if f.attack_path is not None]
    assert f'id="attack-paths" data-paths="{len(active)}"' in page_html
    panel = page_html[page_html.index('id="attack-paths"'):page_html.index('<div class="panels">')]
    cuts = [int(n) for n in re.findall(r'<li data-cuts="(\d+)">', panel)]
    assert cuts == [c.cuts for c in report.attack.choke_points[:5]]
    assert report.attack.choke_points[0].edge.fix in markupsafe.Markup(panel).unescape()
    assert "cuts " in panel
    counted = html_page(replace(report, attack=None))  # no engine summary: counted from the findings
    panel = counted[counted.index('id="attack-paths"'):counted.index('<div class="panels">')]
    fixes = Counter(fix for f in active for fix in {step.fix for step in f.attack_path.steps if step.fix})
    assert [int(n) for n in re.findall(r'<li data-cuts="(\d+)">', panel)] == sorted(fixes.values(), reverse=True)[:5]
    assert "on " in panel and "cuts " not in panel
    quiet = html_page(replace(report, findings=tuple(f for f in report.findings if f.attack_path is None)))
    assert 'id="attack-paths"' not in quiet


def test_html_hostile_node_labels_stay_out_of_the_markup(page_html: str) -> None:
    assert "<img" not in page_html
    raw = html_data.DATA_BLOCK.search(page_html)
    assert raw is not None and HOSTILE not in raw.group(1)  # escaped in the data block
    assert f"Service/web/{HOSTILE}" in html_data.report_data(page_html)["s"]


@pytest.fixture(scope="module")
def report_file(page_html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attack-html") / "report.html"
    path.write_text(page_html, encoding="utf-8")
    return path


@pytest.fixture
def opened(browser: Any, report_file: Path) -> Iterator[Opened]:
    yield from open_page(browser, report_file)


def chains(opened: Opened) -> list[dict[str, Any]]:
    opened.page.eval_on_selector_all("details.group", "gs => gs.forEach(g => { g.open = true; g.dispatchEvent(new Event('toggle')); })")
    return opened.page.eval_on_selector_all("tbody.finding", """bodies => bodies.map(b => ({
        index: Number(b.dataset.index),
        svgs: b.querySelectorAll('svg.chain').length,
        nodes: Array.from(b.querySelectorAll('svg.chain g.node > title')).map(t => t.textContent),
        steps: b.querySelectorAll('svg.chain g.step').length,
        kinds: Array.from(b.querySelectorAll('svg.chain text.kind')).map(t => t.textContent)}))""")


def test_browser_each_path_finding_draws_its_chain(opened: Opened, report: Report) -> None:
    rule = path_findings(report)[0].rule
    opened.goto(f"#rule={rule}")
    shown = chains(opened)
    assert len(shown) == len([f for f in report.active_findings if f.rule == rule]) == opened.shown()
    for row in shown:
        path = report.findings[row["index"]].attack_path
        assert row["svgs"] == 1 and row["steps"] == len(path.steps)
        labels = [node_label(path.source, report.attack), *(node_label(s.target, report.attack) for s in path.steps)]
        assert row["nodes"] == labels  # one box per node, left to right
        assert row["kinds"] == [step.kind for step in path.steps]
    opened.goto("#q=privileged-container")  # findings that are no paths draw none
    assert all(row["svgs"] == 0 for row in chains(opened))


def test_browser_a_step_opens_its_finding_or_says_where_it_is(opened: Opened, report: Report, page_html: str) -> None:
    page = opened.page
    data = html_data.report_data(page_html)
    rule = path_findings(report)[0].rule
    opened.goto(f"#rule={rule}")
    chains(opened)
    step = page.locator("svg.chain g.step.linked").first
    target = data["steps"][int(step.get_attribute("data-step"))][6]
    step.click()
    assert page.get_attribute("tbody.is-target", "data-index") == str(target)
    assert page.is_visible("tbody.is-target")
    assert report.findings[target].rule in page.get_attribute("tbody.is-target", "data-rules")
    assert f"rule={rule}" not in page.evaluate("location.hash")  # the filter that hid it is cleared
    assert page.evaluate("document.activeElement.dataset.index") == str(target)

    opened.goto(f"#rule={rule}")
    chains(opened)
    plain = page.locator("svg.chain g.step:not(.linked)").first
    step_row = data["steps"][int(plain.get_attribute("data-step"))]
    plain.focus()
    page.keyboard.press("Enter")  # a step is a button: the keyboard works too
    detail = plain.locator("xpath=ancestor::div[contains(@class, 'chain')]").locator(".step-detail").text_content()
    strings = data["s"]
    assert strings[step_row[5]] in detail and strings[step_row[3]] in detail
    assert strings[step_row[4]] == "" or f"fix: {strings[step_row[4]]}" in detail


def test_browser_hostile_name_in_a_chain_is_text(opened: Opened) -> None:
    page = opened.page
    opened.goto("#q=evil-")
    shown = chains(opened)
    assert any(f"Service/web/{HOSTILE}" in row["nodes"] for row in shown)
    assert page.evaluate("document.querySelectorAll('img, b, iframe, object').length") == 0
    texts = page.eval_on_selector_all("svg.chain text", "ts => ts.map(t => t.textContent)")
    assert any("evil-<img" in text for text in texts)  # drawn as the characters it is
    assert page.evaluate("Array.from(document.querySelectorAll('svg.chain *')).every("
                         "n => Array.from(n.attributes).every(a => !a.name.startsWith('on')))")
