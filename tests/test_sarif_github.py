"""SARIF that GitHub code scanning accepts: repository-relative URIs, a physical location for every
result (cluster and stdin objects too), GitHub's limits and severity bands (tests/github_sarif.py)."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from kaudit.model import Finding, Location, Report, ResourceRef, RuleInfo, Severity, Suppression
from kaudit.value import replace
from kaudit.writers import sarif
from tests.conftest import REPO, ROOT_POD, CliResult, run_process
from tests.github_sarif import MAX_RESULTS_PER_RUN, github_problems
from tests.k8s_api import FakeApiServer
from tests.report_fixture import build_report
from tests.test_cluster import objects
from tests.test_writers import assert_valid_sarif

Kaudit = Callable[..., CliResult]


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report()


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main",
                    *args], cwd=cwd, check=True, capture_output=True)


def repository(root: Path) -> Path:
    """A real git repository holding deploy/app.yaml (one pod that runs as root)."""
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "app.yaml").write_text(ROOT_POD.lstrip(), encoding="utf-8")
    git("init", "-q", cwd=root)
    return root


def outside_any_repository(path: Path) -> None:
    assert not any((parent / ".git").exists() for parent in (path, *path.parents)), "tmp_path is inside a repository"


def sarif_of(result: CliResult, out: Path) -> dict[str, Any]:
    assert result.code == 1, result.err
    log: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert_valid_sarif(log)
    return log


def artifacts(log: dict[str, Any]) -> list[dict[str, Any]]:
    return [result["locations"][0]["physicalLocation"]["artifactLocation"] for result in log["runs"][0]["results"]]


# -- repository-relative URIs ---------------------------------------------------------------------

def test_uris_are_repository_relative_from_any_working_directory(tmp_path: Path) -> None:
    outside_any_repository(tmp_path)
    repo = repository(tmp_path / "repo")
    (tmp_path / "elsewhere").mkdir()
    runs = {"from deploy/": (repo / "deploy", "app.yaml"),
            "from the root": (repo, "deploy/app.yaml"),
            "from outside, by absolute path": (tmp_path / "elsewhere", str(repo / "deploy" / "app.yaml"))}
    for how, (cwd, target) in runs.items():
        out = tmp_path / "out.sarif"
        log = sarif_of(run_process("scan", target, "-f", "sarif", "-o", out, cwd=cwd), out)
        (run,) = log["runs"]
        assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": repo.resolve().as_uri() + "/"}}, how
        assert {json.dumps(a) for a in artifacts(log)} == {json.dumps({"uri": "deploy/app.yaml",
                                                                       "uriBaseId": "SRCROOT"})}, how
        assert github_problems(log) == [], how


def test_a_git_worktree_is_its_own_repository_root(kaudit: Kaudit, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A worktree's `.git` is a file naming the real git directory: the worktree is the top level."""
    outside_any_repository(tmp_path)
    main = repository(tmp_path / "main")
    git("add", ".", cwd=main)
    git("commit", "-q", "-m", "app", cwd=main)
    git("worktree", "add", "-q", str(tmp_path / "feature"), cwd=main)
    worktree = tmp_path / "feature"
    assert (worktree / ".git").is_file()
    monkeypatch.chdir(worktree / "deploy")
    out = tmp_path / "out.sarif"
    log = sarif_of(kaudit("scan", ".", "-f", "sarif", "-o", out), out)
    assert log["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"] == worktree.resolve().as_uri() + "/"
    assert {a["uri"] for a in artifacts(log)} == {"deploy/app.yaml"}


def test_outside_any_repository_uris_are_relative_to_the_working_directory(
        kaudit: Kaudit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside_any_repository(tmp_path)
    (tmp_path / "work" / "k8s").mkdir(parents=True)
    (tmp_path / "work" / "k8s" / "app.yaml").write_text(ROOT_POD.lstrip(), encoding="utf-8")
    (tmp_path / "other.yaml").write_text(ROOT_POD.replace("root-pod", "other-pod").lstrip(), encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    out = tmp_path / "out.sarif"
    log = sarif_of(kaudit("scan", "k8s", tmp_path / "other.yaml", "-f", "sarif", "-o", out), out)
    assert log["runs"][0]["originalUriBaseIds"] == {"SRCROOT": {"uri": (tmp_path / "work").resolve().as_uri() + "/"}}
    uris = {json.dumps(a, sort_keys=True) for a in artifacts(log)}
    assert uris == {json.dumps({"uri": "k8s/app.yaml", "uriBaseId": "SRCROOT"}, sort_keys=True),
                    json.dumps({"uri": (tmp_path / "other.yaml").as_uri()})}


def test_stdin_findings_get_a_per_object_location(tmp_path: Path) -> None:
    out = tmp_path / "out.sarif"
    log = sarif_of(run_process("scan", "-", "-f", "sarif", "-o", out, cwd=tmp_path, stdin=ROOT_POD.encode()), out)
    results = log["runs"][0]["results"]
    assert results and github_problems(log) == []
    expected = {"Pod/team/root-pod": "stdin/Pod/team/root-pod.yaml",
                "Namespace/team": "stdin/Namespace/_cluster/team.yaml"}  # the namespace the pod implies
    for result in results:
        location = result["locations"][0]
        uri = expected[location["logicalLocations"][0]["fullyQualifiedName"]]
        assert location["physicalLocation"] == {"artifactLocation": {"uri": uri, "uriBaseId": "SRCROOT"},
                                                "region": {"startLine": 1}}
    on_pod = [r for r in results if "/Pod/" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]]
    assert on_pod and all(r["properties"]["stdinLine"] >= 2 for r in on_pod)  # where in the stream the field was


# -- cluster objects ------------------------------------------------------------------------------

def cluster_finding(template: Finding, kind: str, namespace: str | None, name: str, context: str) -> Finding:
    return replace(template, resource=ResourceRef("v1", kind, name, namespace),
                               location=Location(context=context, server="https://10.0.0.1:6443"))


def test_cluster_findings_get_a_per_object_artifact(report: Report) -> None:
    first = report.findings[0]
    eks = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
    findings = (cluster_finding(first, "Deployment", "shop", "web", "prod"),
                cluster_finding(first, "ClusterRole", None, "system:controller:x", "prod"),
                cluster_finding(first, "Pod", "team a", "web-1", eks),
                cluster_finding(first, "..", "..", "../../etc/passwd", "."),
                cluster_finding(first, "ConfigMap", "", "ünïcode", ""))
    log = sarif.to_dict(replace(report, findings=findings))
    assert_valid_sarif(log)
    assert github_problems(log) == []
    results = log["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"] for r in results] == [
        {"artifactLocation": {"uri": uri, "uriBaseId": "SRCROOT"}, "region": {"startLine": 1}} for uri in (
            "cluster/prod/Deployment/shop/web.yaml",
            "cluster/prod/ClusterRole/_cluster/system%3Acontroller%3Ax.yaml",
            "cluster/arn%3Aaws%3Aeks%3Aeu-west-1%3A123456789012%3Acluster%2Fprod/Pod/team%20a/web-1.yaml",
            "cluster/_./_../_../..%2F..%2Fetc%2Fpasswd.yaml",
            "cluster/https%3A%2F%2F10.0.0.1%3A6443/ConfigMap/_cluster/%C3%BCn%C3%AFcode.yaml")]  # no context
    for finding, result in zip(findings, results):
        assert result["locations"][0]["logicalLocations"] == [{
            "name": finding.resource.name, "fullyQualifiedName": finding.resource.describe(), "kind": "resource"}]


def test_cluster_scan_sarif_through_the_api_server_is_accepted_by_github(kaudit: Kaudit, tmp_path: Path) -> None:
    """The README's `kaudit scan --context prod -f sarif` against a real (test) API server."""
    out = tmp_path / "kaudit.sarif"
    with FakeApiServer(objects()) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context="prod")
        log = sarif_of(kaudit("scan", "--kubeconfig", kubeconfig, "--context", "prod", "-f", "sarif", "-o", out), out)
    assert github_problems(log) == []
    results = log["runs"][0]["results"]
    by_uri: dict[str, set[str]] = {}
    for result in results:
        by_uri.setdefault(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], set()).add(
            result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"])
    # the replicas' findings, the injected sidecar's too, are the Deployment's: no pod is a location
    assert by_uri["cluster/prod/Deployment/shop/web.yaml"] == {"Deployment/shop/web"}
    assert not [uri for uri in by_uri if "/Pod/" in uri]
    assert all(uri.startswith("cluster/prod/") for uri in by_uri)


# -- GitHub's rules on real and large reports -----------------------------------------------------

def test_sarif_of_the_examples_is_accepted_by_github(kaudit: Kaudit, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "examples")
    out = tmp_path / "examples.sarif"
    log = sarif_of(kaudit("scan", "manifests", "-f", "sarif", "-o", out), out)
    assert github_problems(log) == []
    assert {a["uri"].split("/", 2)[1] for a in artifacts(log)} == {"manifests"}
    assert all(a["uri"].startswith("examples/manifests/insecure/") for a in artifacts(log))


def synthetic(report: Report, count: int) -> Report:
    """`count` distinct findings (distinct fingerprints) of every severity, some suppressed."""
    template = next(f for f in report.findings if f.location.file is not None)
    severities = list(Severity)
    findings = tuple(replace(
        template, severity=severities[i % len(severities)],
        resource=ResourceRef("apps/v1", "Deployment", f"app-{i}", f"ns-{i % 97}"),
        location=Location(file=f"deploy/ns-{i % 97}/app-{i}.yaml", line=1 + i % 40, column=3),
        suppressed=Suppression("config", "accepted") if i % 11 == 0 else None) for i in range(count))
    return replace(report, findings=findings)


def test_more_results_than_github_takes_keeps_the_most_severe(report: Report) -> None:
    big = synthetic(report, MAX_RESULTS_PER_RUN + 5_000)
    out = io.StringIO()
    errors = io.StringIO()
    sarif.write(big, out, stderr=errors)
    log = json.loads(out.getvalue())
    assert github_problems(log) == []
    (run,) = log["runs"]
    results = run["results"]
    assert len(results) == MAX_RESULTS_PER_RUN
    kept = {r["partialFingerprints"]["kaudit/v1"] for r in results}
    dropped = [f for f in big.findings if f.fingerprint not in kept]
    kept_findings = [f for f in big.findings if f.fingerprint in kept]
    assert len(dropped) == 5_000
    # suppressed results go first (2,728 of them), then the least severe active ones
    assert not any(f.suppressed for f in kept_findings)
    assert min(f.severity for f in kept_findings if f.suppressed is None) >= \
        max(f.severity for f in dropped if f.suppressed is None)
    order = [f.fingerprint for f in big.findings if f.fingerprint in kept]
    assert [r["partialFingerprints"]["kaudit/v1"] for r in results] == order  # report order is kept
    note = run["invocations"][0]["toolExecutionNotifications"][-1]
    assert note["level"] == "warning" and "25000 most severe of 30000" in note["message"]["text"]
    assert run["properties"]["kaudit"]["omittedResults"] == 5_000
    assert "kaudit: warning: SARIF holds the 25000 most severe of 30000 results" in errors.getvalue()


def test_a_report_at_the_limit_is_written_whole(report: Report) -> None:
    log = sarif.to_dict(synthetic(report, MAX_RESULTS_PER_RUN))
    assert github_problems(log) == []
    assert len(log["runs"][0]["results"]) == MAX_RESULTS_PER_RUN
    assert "omittedResults" not in log["runs"][0]["properties"]["kaudit"]


GITHUB_BANDS = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"), (0.1, "low"))


def github_label(score: str) -> str:
    return next(label for floor, label in GITHUB_BANDS if float(score) >= floor)


def test_security_severity_and_level_follow_githubs_mapping() -> None:
    expected = {Severity.CRITICAL: ("critical", "error"), Severity.HIGH: ("high", "error"),
                Severity.MEDIUM: ("medium", "warning"), Severity.LOW: ("low", "note"), Severity.INFO: ("low", "note")}
    for severity, (label, level) in expected.items():
        assert github_label(sarif.SECURITY_SEVERITY[severity]) == label, severity
        assert sarif.LEVELS[severity] == level, severity


def test_rule_tags_stay_within_what_github_shows() -> None:
    info = RuleInfo("many", "Many controls", Severity.HIGH, "workload-hardening",
                    {"cis": tuple(f"5.{i}" for i in range(30))}, "", ())
    tags = sarif._rule(info)["properties"]["tags"]
    assert len(tags) == 10 and tags[:2] == ["security", "workload-hardening"]
    assert tags[2:] == [f"cis-5.{i}" for i in range(8)]
