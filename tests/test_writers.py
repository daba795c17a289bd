"""SARIF, JUnit and Markdown writers, on the shared report (tests/report_fixture.py)."""
from __future__ import annotations

import datetime
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest

from kaudit.model import Finding, InputError, Inputs, Location, Report, Severity
from kaudit.value import replace
from kaudit.writers import get_writer, markdown, sarif
from tests.report_fixture import HOSTILE, REPO, build_report

HOSTILE_NAME = "xss-<script>window.__pwned=1</script>"
HOSTILE_NAMESPACE = "evil-<img src=x onerror=window.__pwned=2>"
HOSTILE_CONTAINER = "<svg onload=window.__pwned=4>"


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report()


def render(name: str, report: Report) -> str:
    out = io.StringIO()
    get_writer(name)(report, out)
    return out.getvalue()


def with_errors(report: Report) -> Report:
    inputs = Inputs(files=report.inputs.files, documents=report.inputs.documents, resources=report.inputs.resources,
                    errors=[InputError("broken <b>.yaml", 3, "mapping values are not allowed <here>"),
                            InputError("missing/", None, "no such file or directory")])
    return replace(report, inputs=inputs, rule_errors=("rule odd-rule: template failed: KeyError 'x'",))


# -- SARIF ---------------------------------------------------------------------------------------

_URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or (bool(urlsplit(value).scheme) and bool(_URI_CHARS.fullmatch(value)))


@FORMATS.checks("uri-reference")
def _is_uri_reference(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI_CHARS.fullmatch(value))


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((REPO / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema, format_checker=FORMATS)


def assert_valid_sarif(log: Any) -> None:
    errors = sorted(sarif_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_sarif_validates_against_the_oasis_schema(report: Report) -> None:
    log = json.loads(render("sarif", report))
    assert_valid_sarif(log)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json" and log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kaudit" and driver["semanticVersion"] == report.tool_version
    assert "informationUri" not in driver
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    # the examples hold insecure and hardened versions of the same objects: warnings, not errors
    assert {n["level"] for n in invocation.get("toolExecutionNotifications", [])} <= {"warning"}
    assert run["properties"]["kaudit"]["findings"] == len(report.active_findings)


def test_sarif_rules_carry_help_tags_and_security_severity(report: Report) -> None:
    driver = sarif.to_dict(report)["runs"][0]["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == [info.id for info in report.rules]
    by_id = {rule["id"]: rule for rule in driver["rules"]}
    for info in report.rules:
        rule = by_id[info.id]
        assert rule["shortDescription"]["text"] == info.title
        assert rule["fullDescription"]["text"] == info.docs["what"].strip()
        assert "```yaml\n" in rule["help"]["markdown"] and info.docs["why"].strip() in rule["help"]["text"]
        assert rule["helpUri"] == info.references[0]
        assert float(rule["properties"]["security-severity"]) > 0
        assert "security" in rule["properties"]["tags"] and info.category in rule["properties"]["tags"]
        for framework, controls in info.frameworks.items():
            assert {f"{framework}-{control}" for control in controls} <= set(rule["properties"]["tags"])
    run_as_root = by_id["run-as-root"]
    assert run_as_root["name"] == "RunAsRoot"
    assert run_as_root["defaultConfiguration"]["level"] == "error"
    assert run_as_root["properties"]["security-severity"] == "8.0"


def test_sarif_results_follow_the_findings(report: Report) -> None:
    run = sarif.to_dict(report)["runs"][0]
    results, rules = run["results"], run["tool"]["driver"]["rules"]
    assert len(results) == len(report.findings)
    levels = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
              Severity.LOW: "note", Severity.INFO: "note"}
    for finding, result in zip(report.findings, results):
        assert result["ruleId"] == finding.rule == rules[result["ruleIndex"]]["id"]
        assert result["level"] == levels[finding.severity]
        assert result["partialFingerprints"] == {"kaudit/v1": finding.fingerprint}
        (location,) = result["locations"]
        assert location["logicalLocations"] == [{"name": finding.resource.name, "kind": "resource",
                                                 "fullyQualifiedName": finding.resource.describe()}]
        assert ("suppressions" in result) == (finding.suppressed is not None)
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == 1 and suppressed[0]["ruleId"] == "latest-tag"
    assert suppressed[0]["suppressions"][0]["kind"] == "inSource"
    assert suppressed[0]["suppressions"][0]["justification"] == "base image is rebuilt nightly <b>by CI</b>"


def test_sarif_regions_point_at_real_lines_of_relative_files(report: Report) -> None:
    lines: dict[str, list[str]] = {}
    for result in sarif.to_dict(report)["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        artifact, region = physical["artifactLocation"], physical["region"]
        assert artifact["uriBaseId"] == "SRCROOT"
        uri = artifact["uri"]
        assert not urlsplit(uri).scheme and not uri.startswith(("/", "./", "../"))
        text = lines.setdefault(uri, (REPO / unquote(uri)).read_text(encoding="utf-8").splitlines())
        line = text[region["startLine"] - 1]
        assert 1 <= region["startColumn"] <= len(line) and not line[region["startColumn"] - 1].isspace(), (uri, region)
    assert HOSTILE in lines and "examples/manifests/insecure/node-agent.yaml" in lines


def test_sarif_locations_of_stdin_absolute_paths_and_cluster_objects(
        report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outside = tmp_path.parent / "elsewhere dir" / "x.yaml"
    first = report.findings[0]
    files = ["<stdin>", str(tmp_path / "k8s" / "app #1.yaml"), "./k8s/../k8s/a.yaml", str(outside), None]
    findings = tuple(replace(first, location=replace(first.location, file=file) if file
                                         else Location(context="prod")) for file in files)
    log = sarif.to_dict(replace(report, findings=findings))
    assert_valid_sarif(log)
    locations = [result["locations"][0] for result in log["runs"][0]["results"]]
    artifacts = [loc["physicalLocation"]["artifactLocation"] for loc in locations]
    ref = first.resource
    assert artifacts == [  # tmp_path is in no repository: SRCROOT is the working directory
        {"uri": f"stdin/{ref.kind}/{ref.namespace or '_cluster'}/{ref.name}.yaml", "uriBaseId": "SRCROOT"},
        {"uri": "k8s/app%20%231.yaml", "uriBaseId": "SRCROOT"},
        {"uri": "k8s/a.yaml", "uriBaseId": "SRCROOT"},
        {"uri": outside.as_uri()},
        {"uri": f"cluster/prod/{ref.kind}/{ref.namespace or '_cluster'}/{ref.name}.yaml", "uriBaseId": "SRCROOT"},
    ]
    assert locations[-1]["logicalLocations"][0]["fullyQualifiedName"] == first.resource.describe()


def test_sarif_reports_input_and_rule_errors_as_notifications(report: Report) -> None:
    log = json.loads(render("sarif", with_errors(report)))
    assert_valid_sarif(log)
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error", "error", "error"]
    assert notes[0]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "broken%20%3Cb%3E.yaml", "uriBaseId": "SRCROOT"}, "region": {"startLine": 3}}
    assert notes[2] == {"level": "error", "message": {"text": "rule odd-rule: template failed: KeyError 'x'"}}


def test_sarif_message_text_cannot_forge_embedded_links() -> None:
    assert sarif.plain_text("drop: [ALL]") == "drop: [ALL]"
    assert sarif.plain_text("see [here](1)") == "see \\[here\\](1)"
    assert sarif.camel_case("run-as-root") == "RunAsRoot"
    assert sarif.yaml_block("a: ```x```") == "````yaml\na: ```x```\n````"


# -- JUnit ---------------------------------------------------------------------------------------

def test_junit_has_one_testcase_per_rule_and_resource(report: Report) -> None:
    root = ET.fromstring(render("junit", report))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    groups: dict[tuple[str, Any], list[Finding]] = {}
    for finding in report.findings:
        groups.setdefault((finding.rule, finding.resource), []).append(finding)
        for joined in finding.joined:  # a rule joined to another's finding failed on that object too
            groups.setdefault((joined.rule, joined.resource), []).append(replace(finding, severity=joined.severity))
    assert any(finding.joined for finding in report.findings)
    assert report.fail_on is not None
    failing = sum(1 for fs in groups.values() if any(f.suppressed is None and f.severity >= report.fail_on
                                                     for f in fs))
    suppressed = sum(1 for fs in groups.values() if all(f.suppressed is not None for f in fs))
    not_run = {rule for rule, _ in report.rules_not_run}
    assert {"unsigned-image", "no-admission-policy-engine"} <= not_run  # no --verify-images, no cluster
    idle = ({info.id for info in report.rules} | not_run) - {rule for rule, _ in groups}
    expected = {"tests": len(groups) + len(idle), "failures": failing, "errors": 0,
                "skipped": suppressed + len(idle & not_run)}
    assert {k: int(suite.get(k, -1)) for k in expected} == expected
    # the root as Jenkins' junit-10 schema has it: no `skipped` there
    assert dict(root.attrib) == {"name": "kaudit", **{k: str(v) for k, v in expected.items() if k != "skipped"}}
    assert len(cases) == expected["tests"]
    assert Counter(c.get("classname") for c in cases) == Counter(
        [f"kaudit.{rule}" for rule, _ in groups] + [f"kaudit.{rule}" for rule in idle])
    skips = [c for c in cases if c.find("skipped") is not None]
    assert len(skips) == expected["skipped"]
    (unsigned,) = [c for c in cases if c.get("classname") == "kaudit.unsigned-image"]
    assert unsigned.get("name") == "not run"
    assert unsigned.find("skipped").get("message") == (  # type: ignore[union-attr]
        "not run: needs --verify-images: image signatures were not checked")
    skip = next(c for c in skips if c.get("classname") == "kaudit.latest-tag")
    assert skip.find("skipped").get("message") == "suppressed: base image is rebuilt nightly <b>by CI</b>"  # type: ignore[union-attr]
    failure = next(c for c in cases if c.get("classname") == "kaudit.privileged-container").find("failure")
    assert failure is not None and failure.get("type") == "critical"
    assert "examples/manifests/insecure/node-agent.yaml:23" in (failure.text or "")


def test_junit_fails_only_at_or_above_the_gate(report: Report) -> None:
    """A case fails as the gate does: findings below --fail-on are listed in a passing case."""
    low = next(f for f in report.findings if f.suppressed is None and f.severity < Severity.HIGH and not f.joined)
    root = ET.fromstring(render("junit", replace(report, findings=(low,), fail_on=Severity.HIGH)))
    (case,) = [c for c in root.iter("testcase") if c.get("classname") == f"kaudit.{low.rule}"]
    assert case.find("failure") is None and root.get("failures") == "0"
    assert (case.findtext("system-out") or "").startswith("1 finding(s), below --fail-on high:")
    failed = ET.fromstring(render("junit", replace(report, findings=(low,), fail_on=low.severity)))
    assert failed.get("failures") == "1"
    off = ET.fromstring(render("junit", replace(report, findings=(low,), fail_on=None)))
    assert off.get("failures") == "0" and "the gate is off" in "".join(off.itertext())


def test_junit_round_trips_hostile_strings_as_text(report: Report) -> None:
    xml = render("junit", report)
    assert "<script" not in xml and "<svg" not in xml and "<img" not in xml
    cases = ET.fromstring(xml).iter("testcase")
    hostile = [c for c in cases if c.get("name") == f"Deployment/{HOSTILE_NAMESPACE}/{HOSTILE_NAME}"]
    assert hostile
    texts = "\n".join(c.findtext("failure") or "" for c in hostile)
    assert f'container "{HOSTILE_CONTAINER}"' in texts and HOSTILE + ":" in texts


def test_junit_passing_rules_errors_and_control_characters(report: Report) -> None:
    kept = tuple(replace(f, message=f.message + " bell\x07") if f.rule == "host-pid" else f
                 for f in report.findings if "run-as-root" not in f.rules)
    root = ET.fromstring(render("junit", with_errors(replace(report, findings=kept))))
    cases = list(root.iter("testcase"))
    (passing,) = [c for c in cases if c.get("classname") == "kaudit.run-as-root"]
    assert passing.get("name") == "no findings" and len(passing) == 0
    inputs = [c for c in cases if c.get("classname") == "kaudit.inputs"]
    assert [c.get("name") for c in inputs] == ["broken <b>.yaml", "missing/"]
    assert inputs[0].find("error").get("message") == "mapping values are not allowed <here>"  # type: ignore[union-attr]
    (rules,) = [c for c in cases if c.get("classname") == "kaudit.rules"]
    assert "KeyError" in (rules.findtext("error") or "")
    assert root.get("errors") == "3"
    bell = next(c for c in cases if c.get("classname") == "kaudit.host-pid").find("failure")
    assert bell is not None and "bell\\x07" in (bell.get("message") or "")


# -- Markdown ------------------------------------------------------------------------------------

def table_rows(text: str, header: str) -> list[str]:
    """The rows of every table under `header` (the findings make one table per severity)."""
    lines = text.splitlines()
    rows = []
    for start in [i for i, line in enumerate(lines) if line == header]:
        for line in lines[start + 2:]:
            if not line.startswith("|"):
                break
            rows.append(line)
    return rows


def severity_tables(text: str) -> list[tuple[str, list[str]]]:
    """(heading, rows) of each severity's findings table, in order."""
    lines = text.splitlines()
    return [(lines[i], table_rows("\n".join(lines[i + 2:]).split("\n\n", 1)[0], FINDINGS_HEADER))
            for i, line in enumerate(lines) if line.startswith("#### ")]


def unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


FINDINGS_HEADER = markdown.TABLE_HEADER


def test_markdown_summary_table_and_top_findings(report: Report) -> None:
    text = render("markdown", report)
    assert text.startswith("### ❌ kaudit failed: ")
    (counts,) = table_rows(text, "| critical | high | medium | low | info | suppressed |")
    active = report.active_findings
    expected = [sum(1 for f in active if f.severity == s) for s in sorted(Severity, reverse=True)] + [1]
    assert counts == "| " + " | ".join(map(str, expected)) + " |"
    rows = table_rows(text, FINDINGS_HEADER)
    assert len(rows) == markdown.MAX_FINDINGS
    assert all(unescaped_pipes(row) == 5 for row in rows)
    # most severe first, one table per severity, each object named on the first of its rows only
    tables = severity_tables(text)
    ranks = [Severity.parse(heading.split()[1]) for heading, _ in tables]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] == max(f.severity for f in active)
    for heading, table in tables:
        named = [row.split(" | ")[0].lstrip("| ") for row in table]
        assert named[0].startswith("**") and len(set(n for n in named if n)) == sum(1 for n in named if n)
        assert f"({len(table)}" in heading
    assert f"… and {len(active) - markdown.MAX_FINDINGS} more" in text
    assert "1 suppressed finding not listed." in text
    assert "base image is rebuilt nightly" not in text
    top = max(f.severity for f in active)
    assert f"- **{sum(1 for f in active if f.severity == top)} {top.label}:** " in text  # the top risks
    assert "controls pass" not in text  # no framework was asked for
    asked = render("markdown", replace(report, framework_selected=True))
    for result in report.frameworks:
        assert f"**{markdown.escape(result.title)}**: {result.count('pass')} controls pass" in asked
    assert f"**Inputs:** {report.inputs.files} files" in text


def test_markdown_escapes_everything_from_manifests(report: Report) -> None:
    hostile = replace(report, findings=tuple(f for f in report.findings if f.location.file == HOSTILE))
    text = render("markdown", with_errors(hostile))
    for raw in ("<script", "<img", "<svg", "<b>", "<here>"):
        assert raw not in text
    assert "xss-&lt;script&gt;window.\\_\\_pwned=1&lt;/script&gt;" in text
    assert "broken &lt;b&gt;.yaml:3: mapping values are not allowed &lt;here&gt;" in text
    rows = table_rows(text, FINDINGS_HEADER)
    assert rows and all(unescaped_pipes(row) == 5 for row in rows)
    assert markdown.escape("a|b`c`*d*_e_[f](g)\nh & <i> ~j~ \\") == (
        "a\\|b\\`c\\`\\*d\\*\\_e\\_\\[f\\](g) h &amp; &lt;i&gt; \\~j\\~ \\\\")
    assert markdown.escape('image "@org/team" nginx@sha256') == 'image "@\u200borg/team" nginx@sha256'
    long = replace(hostile, findings=(replace(hostile.findings[0], message="<" * 5000),))
    (row,) = table_rows(render("markdown", long), FINDINGS_HEADER)
    message = row.rsplit(" | ", 1)[1]
    assert message == "&lt;" * (markdown.MAX_CELL - 1) + "… |"


@pytest.mark.parametrize("change, heading", [
    (lambda r: r, "### ❌ kaudit failed: "),
    (lambda r: replace(r, fail_on=None), "### ✅ kaudit {active} findings, gate off"),
    (lambda r: replace(r, findings=r.findings[:0]), "### ✅ kaudit passed: no findings at or above high"),
    (lambda r: replace(r, findings=tuple(f for f in r.findings if f.severity < Severity.HIGH)),
     "### ✅ kaudit passed: no findings at or above high ({below} below)"),
    (with_errors, "### ⚠️ kaudit scan incomplete (3 errors), {active} findings"),
])
def test_markdown_verdict_icon(report: Report, change: Callable[[Report], Report], heading: str) -> None:
    changed = change(report)
    below = sum(1 for f in changed.active_findings if f.severity < Severity.HIGH)
    expected = heading.format(active=len(changed.active_findings), below=below)
    assert render("markdown", changed).startswith(expected)


# -- CLI -----------------------------------------------------------------------------------------

def test_scan_writes_sarif_junit_and_markdown_in_one_run(
        kaudit: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = {name: tmp_path / f"x.{name}" for name in ("sarif", "xml", "md")}
    result = kaudit("scan", "examples/manifests/insecure", "-f", "sarif", "-o", out["sarif"],
                    "-f", "junit", "-o", out["xml"], "-f", "markdown", "-o", out["md"])
    assert result.code == 1 and result.out == ""
    log = json.loads(out["sarif"].read_text(encoding="utf-8"))
    assert_valid_sarif(log)
    results = log["runs"][0]["results"]
    assert results and all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                           .startswith("examples/manifests/insecure/") for r in results)
    root = ET.parse(out["xml"]).getroot()
    assert int(root.get("failures", 0)) >= 1
    assert out["md"].read_text(encoding="utf-8").startswith("### ❌ kaudit failed")


def test_json_on_the_shared_report_validates_against_the_published_schema(report: Report) -> None:
    import jsonschema

    from kaudit.paths import reports_dir

    document = json.loads(render("json", report))
    jsonschema.Draft202012Validator(json.loads((reports_dir() / "report.schema.json").read_text())).validate(document)
    assert document["summary"]["suppressed"] == 1 and len(document["findings"]) == len(report.findings)
    assert any(f["suppressed"] == {"by": "annotation", "reason": "base image is rebuilt nightly <b>by CI</b>"}
               for f in document["findings"])


def test_text_on_the_shared_report(report: Report) -> None:
    text = render("text", report)
    assert text.splitlines()[-1].startswith(f"{len(report.active_findings)} findings") and "1 suppressed" in text
