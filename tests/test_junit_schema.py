"""kaudit's JUnit XML against the structure CI servers read: Jenkins' junit-10 schema
(tests/data/junit/junit-10.xsd, validated with xmlschema) and a real reader (junitparser)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from kaudit.model import Report, Severity
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.value import replace
from kaudit.writers import get_writer
from tests.report_fixture import REPO, build_report
from tests.test_writers import with_errors

xmlschema = pytest.importorskip("xmlschema")  # the test extra installs it
junitparser = pytest.importorskip("junitparser")

SCHEMA = Path(__file__).parent / "data" / "junit" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> object:
    return xmlschema.XMLSchema10(str(SCHEMA))


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report()


def junit(report: Report) -> str:
    out = io.StringIO()
    get_writer("junit")(report, out)
    return out.getvalue()


def variants(report: Report) -> dict[str, Report]:
    """Every kind of test case the writer makes: failures, passes below the gate, suppressed and
    not-run rules skipped, partly evaluated rules, input and rule errors, hostile text."""
    return {
        "failures, suppressed and not run": report,
        "below the gate": replace(report, fail_on=Severity.CRITICAL),
        "gate off": replace(report, fail_on=None),
        "errors": with_errors(report),
        "partly evaluated": replace(report, rules_partly_run=(("run-as-root", "could not read pods in namespace b"),)),
        "per file": scan_manifests(ScanRequest(targets=(str(REPO / "examples" / "manifests"),), jobs=1, per_file=True)),
        "nothing scanned": replace(report, findings=(), rules=(), rules_not_run=()),
    }


def test_junit_validates_against_jenkins_junit_10(schema: object, report: Report) -> None:
    for name, variant in variants(report).items():
        errors = list(schema.iter_errors(junit(variant)))  # type: ignore[attr-defined]
        assert not errors, f"{name}: {errors[0]}"


def test_the_schema_rejects_what_jenkins_rejects(schema: object, report: Report) -> None:
    """The check can fail: a root with `skipped` (which kaudit wrote before), a case with no name."""
    xml = junit(report)
    assert not schema.is_valid(xml.replace('<testsuites name="kaudit"', '<testsuites name="kaudit" skipped="1"', 1))  # type: ignore[attr-defined]
    assert not schema.is_valid(xml.replace("<testcase classname=", "<testcase nameless=", 1))  # type: ignore[attr-defined]


def test_junitparser_reads_the_verdicts_kaudit_counts(report: Report, tmp_path: Path) -> None:
    for name, variant in variants(report).items():
        path = tmp_path / "junit.xml"
        path.write_text(junit(variant), encoding="utf-8")
        document = junitparser.JUnitXml.fromfile(str(path))
        (suite,) = list(document)
        cases = list(suite)
        kinds = [type(result).__name__ for case in cases for result in case.result]
        assert suite.tests == len(cases), name
        assert (suite.failures, suite.errors, suite.skipped) == (
            kinds.count("Failure"), kinds.count("Error"), kinds.count("Skipped")), name
        skipped = {(case.classname, case.name): case.result[0].message for case in cases if case.is_skipped}
        if name == "failures, suppressed and not run":
            assert skipped["kaudit.unsigned-image", "not run"] == (
                "not run: needs --verify-images: image signatures were not checked")
        if name == "partly evaluated":
            assert skipped["kaudit.run-as-root", "not fully evaluated"].endswith("pods in namespace b")
        if name == "gate off":  # findings listed in passing cases, none a failure
            assert not kinds.count("Failure") and any(case.system_out for case in cases)
