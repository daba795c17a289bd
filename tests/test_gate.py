"""The gate tells the truth: it never passes on what it did not see, and it never fails silently."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import jsonschema
import pytest

from tests.conftest import PRIVILEGED_TEMPLATE, ROOT_POD, CliResult, run_process

Kaudit = Callable[..., CliResult]
Write = Callable[[str, str], Path]

PRIVILEGED_DEPLOYMENT = PRIVILEGED_TEMPLATE.replace("{{ .Release.Name }}", "web")
WORKFLOW = "name: ci\non: [push]\njobs: {test: {runs-on: ubuntu-latest}}\n"


def report_schema() -> dict[str, object]:
    return json.loads((Path(__file__).resolve().parents[1] / "reports" / "report.schema.json").read_text())


def make_chart(write: Write, root: str = "chart") -> None:
    write(f"{root}/Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    write(f"{root}/values.yaml", "replicaCount: 1\n")
    write(f"{root}/templates/deployment.yaml", PRIVILEGED_TEMPLATE)


def test_a_chart_directory_is_rendered_and_fails_the_gate_at_the_template_line(kaudit: Kaudit, write: Write,
                                                                               tmp_path: Path) -> None:
    make_chart(write)
    result = kaudit("scan", tmp_path / "chart", "-f", "json")
    assert result.code == 1
    report = result.json()
    jsonschema.validate(report, report_schema())
    assert report["inputs"]["resources"] == 1 and report["inputs"]["files"] == 0  # no template read as a manifest
    [unit] = report["inputs"]["rendered"]
    assert unit["directory"] == str(tmp_path / "chart") and unit["kind"] == "helm" and unit["objects"] == 1
    [finding] = [f for f in report["findings"] if f["rule"] == "privileged-container"]
    assert finding["location"]["file"] == str(tmp_path / "chart" / "templates" / "deployment.yaml")
    assert finding["location"]["line"] == 12  # `privileged: true` in the template
    assert finding["resource"]["name"] == "release-name"  # Helm's own default release name


def test_a_chart_inside_a_tree_is_rendered_and_the_rest_scanned(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    make_chart(write, "repo/charts/web")
    write("repo/deploy/pod.yaml", ROOT_POD)
    result = kaudit("scan", tmp_path / "repo", "-f", "json")
    assert result.code == 1
    report = result.json()
    outcomes = {Path(e["file"]).name: e["outcome"] for e in report["inputs"]["perFile"]}
    assert outcomes["web"] == "scanned" and outcomes["pod.yaml"] == "scanned"
    assert any(f["rule"] == "run-as-root" and f["location"]["file"].endswith("pod.yaml") for f in report["findings"])
    assert any(f["rule"] == "privileged-container" and f["location"]["file"].endswith("templates/deployment.yaml")
               for f in report["findings"])


def test_a_chart_that_does_not_render_never_passes(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    make_chart(write)
    write("chart/templates/broken.yaml", "kind: {{ .Values.kind | required \"kind is required\" }}\n")
    result = kaudit("scan", tmp_path / "chart", "-f", "json")
    assert result.code == 2
    report = result.json()
    jsonschema.validate(report, report_schema())
    [error] = report["inputs"]["errors"]
    assert error["file"] == str(tmp_path / "chart")
    assert error["message"].startswith("Helm chart does not render: ") and "kind is required" in error["message"]
    assert report["inputs"]["resources"] == 0 and report["findings"] == []
    assert report["summary"]["verdict"] == "incomplete"


def test_a_kustomization_directory_is_rendered_in_its_namespace(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("kz/kustomization.yaml", "resources: [deployment.yaml]\nnamespace: shop\n")
    write("kz/deployment.yaml", PRIVILEGED_DEPLOYMENT)
    result = kaudit("scan", tmp_path / "kz", "-f", "json")
    assert result.code == 1
    report = result.json()
    [finding] = [f for f in report["findings"] if f["rule"] == "privileged-container"]
    assert finding["resource"]["namespace"] == "shop"  # kustomize's namespace, not invented
    assert finding["location"]["file"] == str(tmp_path / "kz" / "deployment.yaml")
    assert finding["location"]["line"] == 12
    assert report["inputs"]["rendered"][0]["kind"] == "kustomize"


@pytest.mark.parametrize("args", [("{tmp}/nope",), ("{tmp}/workflows",)])
def test_a_scan_of_nothing_exits_2_with_one_line_and_no_control_passes(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                                       args: tuple[str, ...]) -> None:
    write("workflows/ci.yaml", WORKFLOW)
    result = kaudit("scan", *(a.format(tmp=tmp_path) for a in args), "-f", "json")
    assert result.code == 2
    report = result.json()
    assert report["inputs"]["resources"] == 0 and report["summary"]["verdict"] == "incomplete"
    for framework in report["frameworks"]:
        assert framework["pass"] == 0 and framework["notEvaluated"] > 0, framework["id"]
        assert {c["status"] for c in framework["controls"]} <= {"not-evaluated", "not-covered"}
    text = kaudit("scan", *(a.format(tmp=tmp_path) for a in args))
    assert text.out.count("no Kubernetes objects in the inputs") == 1
    assert " pass /" not in text.out.replace("0 pass /", "")


def test_allow_empty_accepts_a_scan_of_other_yaml(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    path = write("ci.yaml", WORKFLOW)
    result = kaudit("scan", "--allow-empty", path)
    assert result.code == 0
    assert "nothing judged (--allow-empty)" in result.out
    assert "error:" not in result.out


def test_controls_of_rules_that_did_not_run_are_not_evaluated(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    report = kaudit("scan", path, "--rule", "privileged-container", "-f", "json").json()
    baseline = next(f for f in report["frameworks"] if f["id"] == "pss-baseline")
    statuses = {c["id"]: c["status"] for c in baseline["controls"]}
    assert statuses["privileged-containers"] == "pass"  # its one rule ran on a pod and found nothing
    assert statuses["host-namespaces"] == "not-evaluated"
    control = next(c for c in baseline["controls"] if c["id"] == "host-namespaces")
    assert "did not run" in control["gap"]
    per_file = kaudit("scan", path, "--per-file", "-f", "json").json()
    cis = {c["id"]: c for c in next(f for f in per_file["frameworks"] if f["id"] == "cis")["controls"]}
    assert cis["5.3.2"]["status"] == "not-evaluated"  # NetworkPolicy coverage does not run per file


def test_hidden_files_in_a_walked_directory_are_accounted_for(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("m/pod.yaml", ROOT_POD)
    write("m/.markdownlint.json", "{}")
    write("m/.github/workflows/ci.yaml", WORKFLOW)
    report = kaudit("scan", tmp_path / "m", "-f", "json").json()
    skipped = {Path(s["file"]).name: s["reason"] for s in report["inputs"]["skipped"]}
    assert skipped[".markdownlint.json"].startswith("hidden file")
    assert skipped[".github"].startswith("hidden directory")


# --- failures are never silent ---------------------------------------------------------------------

def test_errors_and_the_verdict_go_to_stderr_when_every_report_goes_to_a_file(tmp_path: Path) -> None:
    done = run_process("scan", tmp_path / "nope", "-f", "sarif", "-o", tmp_path / "k.sarif", cwd=tmp_path)
    assert done.code == 2 and done.out == ""
    assert "no such file or directory" in done.err and "scan incomplete" in done.err
    (tmp_path / "pod.yaml").write_text(ROOT_POD)
    done = run_process("scan", "pod.yaml", "-f", "json", "-o", "r.json", "-f", "html", "-o", "r.html", cwd=tmp_path)
    assert done.code == 1 and done.out == ""
    assert done.err.strip().splitlines()[-1].endswith("at or above high") and "gate fail" in done.err
    done = run_process("scan", "pod.yaml", "-f", "json", cwd=tmp_path)  # stdout is JSON: the verdict on stderr
    assert done.code == 1 and json.loads(done.out) and "gate fail" in done.err


# --- config paths ----------------------------------------------------------------------------------

def test_exclude_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "vendor").mkdir(parents=True)
    (repo / "vendor" / "x.yaml").write_text(ROOT_POD)
    (repo / ".kaudit.yaml").write_text('exclude:\n  - {paths: ["vendor/*"], reason: "audited upstream"}\n')
    config = str(repo / ".kaudit.yaml")
    spellings = [
        (repo, ["vendor/x.yaml"]),
        (repo, ["./vendor/x.yaml"]),
        (repo, [str(repo / "vendor" / "x.yaml")]),
        (repo / "vendor", ["x.yaml"]),
        (repo / "vendor", ["."]),
        (tmp_path, ["repo/vendor", "--config", config]),
        (tmp_path, [str(repo / "vendor" / "x.yaml"), "--config", config]),
    ]
    for cwd, args in spellings:
        done = run_process("scan", *args, "-f", "json", cwd=cwd)
        report = json.loads(done.out)
        assert report["findings"], (cwd, args)
        assert all(f["suppressed"] and f["suppressed"]["by"] == "config" for f in report["findings"]), (cwd, args)
        assert done.code == 0, (cwd, args, done.err)
