"""Rules a scan loaded but did not run, or ran blind: said with the reason (Report.rules_not_run),
never counted as passing (framework controls, JUnit), never making a scan the user chose incomplete."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kaudit.errors import KauditError
from kaudit.model import Report
from kaudit.scan import CROSS_ONLY_LEFT_OUT, PER_FILE_LEFT_OUT, ScanRequest, scan_manifests
from kaudit.writers import get_writer
from tests.k8s_api import FakeApiServer
from tests.report_fixture import REPO
from tests.test_cluster import objects, scan

EXAMPLES = (str(REPO / "examples" / "manifests"),)
NO_VERIFY = "needs --verify-images: image signatures were not checked"
NO_CLUSTER = "needs a live cluster scan (--context): it judges the cluster itself"


def control(report: Report, framework: str, control_id: str) -> Any:
    result = next(f for f in report.frameworks if f.id == framework)
    return next(c for c in result.controls if c.id == control_id)


def junit_cases(report: Report) -> dict[tuple[str, str], ET.Element]:
    out = io.StringIO()
    get_writer("junit")(report, out)
    root = ET.fromstring(out.getvalue())
    return {(case.get("classname", "").removeprefix("kaudit."), case.get("name", "")): case
            for case in root.iter("testcase")}


def skipped_message(case: ET.Element) -> str:
    skipped = case.find("skipped")
    assert skipped is not None, ET.tostring(case)
    return skipped.get("message", "")


def facts(report: Report) -> list[tuple[str, str, str]]:
    """Every rule's finding (joined ones too) as (rule, file:line:column, fingerprint)."""
    out = []
    for finding in report.findings:
        out.append((finding.rule, finding.location.describe(), finding.fingerprint))
        out += [(j.rule, j.location.describe(), j.fingerprint) for j in finding.joined]
    return out


@pytest.fixture(scope="module")
def manifests() -> Report:
    return scan_manifests(ScanRequest(targets=EXAMPLES, jobs=1))


def test_a_manifest_scan_names_the_rules_that_need_image_verification_or_a_cluster(manifests: Report) -> None:
    not_run = dict(manifests.rules_not_run)
    for rule in ("unsigned-image", "image-signed-by-untrusted-key", "image-signature-for-another-subject"):
        assert not_run[rule] == NO_VERIFY
    assert not_run["no-admission-policy-engine"] == not_run["unsupported-kubernetes-version"] == NO_CLUSTER
    assert "privileged-container" not in not_run and not manifests.rules_partly_run
    assert manifests.complete  # the user's choice (no --verify-images, a manifest scan), not a failure


def test_a_control_whose_rules_did_not_run_is_not_evaluated_with_the_reason(manifests: Report) -> None:
    provenance = control(manifests, "cis", "5.5.1")  # untrusted-registry ran; the signature rules did not
    assert provenance.status == "not-evaluated" and "untrusted-registry" in provenance.rules
    assert f"unsigned-image: {NO_VERIFY}" in provenance.gap
    engine = control(manifests, "cis", "5.2.1")
    assert engine.status == "not-evaluated" and f"no-admission-policy-engine: {NO_CLUSTER}" in engine.gap
    assert control(manifests, "cis", "5.2.2").status == "fail"  # rules that ran still judge


def test_junit_skips_rules_that_did_not_run_with_the_reason(manifests: Report) -> None:
    cases = junit_cases(manifests)
    assert skipped_message(cases["unsigned-image", "not run"]) == f"not run: {NO_VERIFY}"
    assert skipped_message(cases["no-admission-policy-engine", "not run"]) == f"not run: {NO_CLUSTER}"
    assert ("unsigned-image", "no findings") not in cases  # never counted as a pass


def test_per_file_leaves_cross_object_rules_out_and_says_so() -> None:
    report = scan_manifests(ScanRequest(targets=EXAMPLES, jobs=1, per_file=True))
    not_run = dict(report.rules_not_run)
    assert not_run["namespace-without-network-policy"] == not_run["cluster-admin-binding"] == PER_FILE_LEFT_OUT
    assert "privileged-container" not in not_run and report.complete
    network = control(report, "cis", "5.3.2")
    assert network.status == "not-evaluated" and PER_FILE_LEFT_OUT in network.gap
    cases = junit_cases(report)
    assert skipped_message(cases["namespace-without-network-policy", "not run"]) == f"not run: {PER_FILE_LEFT_OUT}"


def test_per_file_and_cross_object_only_divide_a_scan_exactly() -> None:
    """The two pre-commit hooks: each fact of the full scan is reported by exactly one of them."""
    full = facts(scan_manifests(ScanRequest(targets=EXAMPLES, jobs=1)))
    local = scan_manifests(ScanRequest(targets=EXAMPLES, jobs=1, per_file=True))
    cross = scan_manifests(ScanRequest(targets=EXAMPLES, jobs=1, cross_object_only=True))
    assert facts(local) and facts(cross)
    assert not set(facts(local)) & set(facts(cross))
    assert sorted(facts(local) + facts(cross)) == sorted(full)
    # binding-to-everyone (object-local) implies cluster-admin-binding: run beside it for the join,
    # reported only by the per-file half, and not listed as a rule the cross-object half ran
    assert {info.id for info in cross.rules} == {rule for rule, why in local.rules_not_run if why == PER_FILE_LEFT_OUT}
    assert dict(cross.rules_not_run)["binding-to-everyone"] == CROSS_ONLY_LEFT_OUT
    assert cross.complete and control(cross, "cis", "5.2.2").status == "not-evaluated"


def test_per_file_and_cross_object_only_together_are_refused() -> None:
    with pytest.raises(KauditError, match="--per-file and --cross-object-only"):
        scan_manifests(ScanRequest(targets=EXAMPLES, per_file=True, cross_object_only=True))


def test_cluster_rules_not_evaluated_or_partly_evaluated_are_skipped_in_junit(tmp_path: Path) -> None:
    with FakeApiServer(objects(), forbidden={("pods", ""), ("pods", "team-b"), ("rolebindings", None)}) as api:
        report = scan(api, tmp_path)
    not_run, partly = dict(report.rules_not_run), dict(report.rules_partly_run)
    assert dict(report.coverage.rules_not_evaluated).items() <= not_run.items()
    assert dict(report.coverage.rules_partially_evaluated) == partly
    assert "rbac-secrets-read" in not_run and "run-as-root" in partly
    assert "no-admission-policy-engine" not in not_run  # a cluster scan: it ran
    cases = junit_cases(report)
    assert skipped_message(cases["rbac-secrets-read", "not run"]) == f"not run: {not_run['rbac-secrets-read']}"
    # its findings in shop stand, beside a skipped case for the pods it could not read
    assert "could not read pods in namespace team-b" in skipped_message(cases["run-as-root", "not fully evaluated"])
    assert cases["run-as-root", "Deployment/shop/web"].find("failure") is not None


def test_image_rules_are_partly_run_when_some_signatures_could_not_be_checked() -> None:
    from kaudit.model import ImageSummary
    from kaudit.ruleset import load_builtin_rules
    from kaudit.scan import rules_not_run

    rules = [rule for rule in load_builtin_rules() if rule.id in ("unsigned-image", "run-as-root")]
    checked = ImageSummary(signatures_checked=True, digests_resolved=True, gaps=(("registry.example.com/a:1", "timeout"),))
    assert rules_not_run(rules, {"Pod"}, None, checked) == (
        [], [("unsigned-image", "the signatures of 1 image(s) could not be checked")])
    assert rules_not_run(rules, {"Pod"}, None, ImageSummary(digests_resolved=True)) == (
        [("unsigned-image", NO_VERIFY)], [])  # --resolve-digests alone checks no signature


def test_json_lists_the_rules_not_run_and_validates(manifests: Report) -> None:
    import json

    import jsonschema

    out = io.StringIO()
    get_writer("json")(manifests, out)
    document = json.loads(out.getvalue())
    jsonschema.validate(document, json.loads((REPO / "reports/report.schema.json").read_text()))
    listed = {entry["rule"]: entry["reason"] for entry in document["rulesNotRun"]}
    assert listed["unsigned-image"] == NO_VERIFY
    assert listed == dict(manifests.rules_not_run)
    assert document["baseline"] is None


def test_text_lists_the_rules_not_run_only_when_verbose(kaudit: Any) -> None:
    web = REPO / "examples/manifests/insecure/web-deployment.yaml"
    verbose, plain = kaudit("scan", web, "-v").out, kaudit("scan", web).out
    assert f"not run: unsigned-image: {NO_VERIFY}" in verbose
    assert f"not run: unsupported-kubernetes-version: {NO_CLUSTER}" in verbose
    assert "not run:" not in plain
