"""Charts and kustomizations scanned end to end: real rendering (Helm's SDK, kubectl kustomize), each
finding at the line to change (template, values key, resource file, patch), every report format,
suppression and baselines on rendered objects, and failures that never pass."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest

from tests.conftest import CliResult, run_process

Kaudit = Callable[..., CliResult]
DATA = Path(__file__).resolve().parent / "data"
WEB = DATA / "charts" / "scan-web"
KUSTOMIZE = DATA / "kustomize"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "reports" / "report.schema.json").read_text())


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the scan-web chart, scanned from its parent folder (paths as a user types them)."""
    shutil.copytree(WEB, tmp_path / "web")
    monkeypatch.chdir(tmp_path)
    return Path("web")


def findings(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == rule or rule in (j["rule"] for j in f.get("joined", []))]


def at(finding: dict[str, Any]) -> str:
    location = finding["location"]
    return f"{location['file']}:{location.get('line')}"


def values_of(finding: dict[str, Any]) -> str | None:
    values = finding["location"]["rendered"].get("values")
    return None if values is None else f"{values['file']}:{values['line']} {values['key']}"


def one(report: dict[str, Any], rule: str, name: str, container: str | None = None) -> dict[str, Any]:
    [found] = [f for f in findings(report, rule) if f["resource"]["name"] == name
               and (container is None or f["container"] == container)]
    return found


def test_a_chart_with_helpers_ranges_conditionals_and_a_subchart(kaudit: Kaudit, web: Path) -> None:
    result = kaudit("scan", web, "-f", "json")
    assert result.code == 1
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    [unit] = report["inputs"]["rendered"]
    assert (unit["directory"], unit["kind"], unit["renderer"], unit["objects"]) == ("web", "helm", "helm-python-sdk", 2)
    privileged = one(report, "privileged-container", "release-name-web")
    # toYaml of values writes the field: the template line that emits it, and the values key behind it
    assert at(privileged) == "web/templates/deployment.yaml:27"
    assert values_of(privileged) == "web/values.yaml:6 securityContext.privileged"
    assert privileged["location"]["rendered"]["exact"] is False
    # a literal line of a `range` body, for its second rendered container
    escalation = one(report, "privilege-escalation-allowed", "release-name-web", "shipper")
    assert at(escalation) == "web/templates/deployment.yaml:32"
    assert escalation["location"]["rendered"]["exact"] is True and values_of(escalation) is None
    # a subchart's template, judged in the same release
    [cache] = [f for f in report["findings"] if f["resource"]["kind"] == "StatefulSet" and f["rule"] == "run-as-root"]
    assert at(cache) == "web/charts/cache/templates/statefulset.yaml:15"
    # an `if` that is false renders nothing: no host network, no debug pod
    assert not findings(report, "host-network") and not findings(report, "host-pid")
    assert {f["resource"]["name"] for f in report["findings"]} <= {"release-name-web", "release-name-cache",
                                                                   "release-name"}


def test_values_files_and_set_values_are_the_source_of_what_they_change(kaudit: Kaudit, web: Path) -> None:
    report = kaudit("scan", web, "--helm-values", web / "ci" / "prod-values.yaml", "--helm-set", "debug.enabled=true",
                    "--helm-release", "shop", "-f", "json").json()
    jsonschema.validate(report, SCHEMA)
    assert report["inputs"]["rendered"][0]["options"] == [
        "--helm-values web/ci/prod-values.yaml", "--helm-set debug.enabled=…", "--helm-release shop"]
    host_pid = one(report, "host-pid", "shop-cache")  # the parent's values file sets the subchart's value
    assert at(host_pid) == "web/charts/cache/templates/statefulset.yaml:13"
    assert values_of(host_pid) == "web/ci/prod-values.yaml:3 cache.hostPID"
    host_network = one(report, "host-network", "shop-web")
    assert at(host_network) == "web/templates/deployment.yaml:19"  # the literal inside the `if`
    assert host_network["location"]["rendered"]["values"] == {  # and the flag that turns it on
        "file": "web/ci/prod-values.yaml", "line": 1, "key": "hostNetwork", "how": "switch"}
    assert at(one(report, "host-pid", "shop-web-debug")) == "web/templates/debug.yaml:7"  # --helm-set turned it on
    privileged = kaudit("scan", web, "--helm-set", "securityContext.privileged=true", "--rule", "privileged-container",
                        "-f", "json").json()
    [finding] = privileged["findings"]
    assert finding["location"]["rendered"]["values"] == {"file": "--helm-set", "line": None,
                                                         "key": "securityContext.privileged"}


def test_the_release_namespace_is_where_objects_without_one_are_installed(kaudit: Kaudit, web: Path) -> None:
    report = kaudit("scan", web, "--helm-namespace", "shop", "-f", "json").json()
    assert {f["resource"]["namespace"] for f in report["findings"] if f["resource"]["kind"] != "Namespace"} == {"shop"}
    plain = kaudit("scan", web, "-f", "json").json()
    assert {f["resource"]["namespace"] for f in plain["findings"] if f["resource"]["kind"] != "Namespace"} == {None}
    # one release, one namespace: the subchart's pods count in the chart's namespace, not apart by folder
    messages = [f["message"] for f in findings(plain, "namespace-without-network-policy")]
    assert messages and all("the chart web is installed into" in m for m in messages), messages
    assert len(messages) == 1


def test_text_sarif_html_markdown_and_junit_carry_the_source(kaudit: Kaudit, web: Path, tmp_path: Path) -> None:
    args = ("scan", web, "--rule", "privileged-container")
    text = kaudit(*args).out
    assert "CRITICAL  Deployment release-name-web  rendered from chart " in text
    assert "\n  web/templates/deployment.yaml:27  privileged-container  " in text
    assert "values: web/values.yaml:6 securityContext.privileged" in text
    assert "rendered: web (helm, helm-python-sdk): 2 objects" in text
    sarif = kaudit(*args, "-f", "sarif").json()
    [result] = sarif["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("web/templates/deployment.yaml")
    assert physical["region"]["startLine"] == 27
    [related] = result["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"]["uri"].endswith("web/values.yaml")
    assert related["physicalLocation"]["region"]["startLine"] == 6
    assert result["properties"]["rendered"]["unit"] == "web"
    html = kaudit(*args, "-f", "html").out
    assert "values: web/values.yaml:6 securityContext.privileged" in html and 'id="rendered"' in html
    assert "web/templates/deployment.yaml:27 (values: web/values.yaml:6" in kaudit(*args, "-f", "markdown").out
    junit = ElementTree.fromstring(kaudit(*args, "-f", "junit").out)
    failure = "".join(node.text or "" for node in junit.iter("failure"))
    assert "web/templates/deployment.yaml:27" in failure and "values: web/values.yaml:6" in failure


def test_an_annotation_in_a_template_suppresses_and_config_excludes_by_chart_path(kaudit: Kaudit, web: Path) -> None:
    template = web / "templates" / "deployment.yaml"
    template.write_text(template.read_text().replace(
        "  annotations:\n", "  annotations:\n    kaudit.io/ignore: privileged-container\n"
                           "    kaudit.io/ignore-reason: the node agent needs it\n"))
    report = kaudit("scan", web, "--rule", "privileged-container", "-f", "json").json()
    [finding] = report["findings"]
    assert finding["suppressed"]["by"] == "annotation" and finding["suppressed"]["reason"] == "the node agent needs it"
    Path(".kaudit.yaml").write_text("exclude:\n  - paths: ['web/charts/**']\n    reason: vendored subchart\n")
    excluded = kaudit("scan", web, "--rule", "run-as-root", "-f", "json").json()
    by_kind = {f["resource"]["kind"]: f["suppressed"] for f in excluded["findings"]}
    assert by_kind["StatefulSet"] == {"by": "config", "reason": "vendored subchart"}
    assert by_kind["Deployment"] is None
    Path(".kaudit.yaml").write_text("exclude:\n  - paths: ['web']\n    reason: the whole chart\n")
    whole = kaudit("scan", web, "--rule", "run-as-root", "-f", "json").json()
    assert whole["findings"] and all(f["suppressed"] for f in whole["findings"])


def test_fingerprints_of_rendered_findings_survive_unrelated_template_changes(kaudit: Kaudit, web: Path) -> None:
    before = kaudit("scan", web, "-f", "json").json()
    Path("baseline.json").write_text(json.dumps(before))
    (web / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {a: b}\n")
    template = web / "templates" / "deployment.yaml"
    template.write_text("# a comment that moves every line\n\n" + template.read_text())
    after = kaudit("scan", web, "-f", "json").json()
    assert {f["fingerprint"] for f in after["findings"]} == {f["fingerprint"] for f in before["findings"]}
    assert at(one(after, "privileged-container", "release-name-web")) == "web/templates/deployment.yaml:29"
    gated = kaudit("scan", web, "--baseline", "baseline.json")
    assert gated.code == 0, gated.out
    # a new fact in a changed template is new, whatever the baseline holds
    template.write_text(template.read_text().replace("      securityContext:\n        {{- toYaml .Values.pod",
                                                     "      hostIPC: true\n      securityContext:\n"
                                                     "        {{- toYaml .Values.pod"))
    assert kaudit("scan", web, "--baseline", "baseline.json").code == 1


def test_a_chart_that_does_not_render_is_an_error_at_the_chart(kaudit: Kaudit, web: Path) -> None:
    (web / "values.schema.json").write_text(json.dumps(
        {"type": "object", "properties": {"hostNetwork": {"type": "boolean"}}}))
    result = kaudit("scan", web, "--helm-set", "hostNetwork=yes-please", "-f", "json")
    assert result.code == 2
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    [error] = report["inputs"]["errors"]
    assert error["file"] == "web" and error["message"].startswith("Helm chart does not render: ")
    assert "hostNetwork" in error["message"]
    assert report["inputs"]["rendered"][0]["error"] == error["message"]
    assert report["summary"]["verdict"] == "incomplete"
    (web / "charts" / "cache" / "Chart.yaml").unlink()  # a declared dependency that is not vendored
    shutil.rmtree(web / "charts" / "cache")
    missing = kaudit("scan", web)
    assert missing.code == 2 and "missing in charts/ directory: cache" in missing.out


def test_with_no_helm_renderer_the_scan_stops_with_how_to_get_one(web: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "helm_python.py").write_text("raise ImportError('not installed')\n")
    done = run_process("scan", web, cwd=Path.cwd(), env={"PYTHONPATH": f"{blocker}{os.pathsep}{Path(__file__).parents[1]}",
                                                         "PATH": str(tmp_path / "no-helm-here")})
    assert done.code == 2
    assert done.err.strip().splitlines() == [
        "kaudit: web: Helm chart, and no Helm renderer: install the extra (pip install 'kaudit[helm]') or put a "
        "helm binary on PATH (https://helm.sh/docs/intro/install/)"]
    assert "Traceback" not in done.out + done.err


def test_an_overlay_points_at_the_patch_and_the_base_line(kaudit: Kaudit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(KUSTOMIZE)
    report = kaudit("scan", "fields-overlay", "-f", "json").json()
    jsonschema.validate(report, SCHEMA)
    privileged = one(report, "privileged-container", "api")
    assert at(privileged) == "fields-overlay/privileged.yaml:11"
    rendered = privileged["location"]["rendered"]
    assert rendered["patch"] == "fields-overlay/privileged.yaml:11" and rendered["how"] == "strategic merge patch"
    assert rendered["source"] == "fields-base/deployment.yaml" and rendered["unit"] == "fields-overlay"
    assert privileged["resource"]["namespace"] == "fields"  # the overlay's namespace
    # a field the overlay left alone: the base's own line
    worker = one(report, "run-as-root", "worker")
    assert at(worker) == "fields-base/worker.yaml:16" and "patch" not in worker["location"]["rendered"]
    # a container a component adds: the component's patch
    proxy = one(report, "run-as-root", "api", "proxy")
    assert at(proxy) == "fields-sidecar/sidecar.yaml:12"  # runAsUser: 0
    # the images transformer wrote the tag: its entry in the kustomization
    assert at(one(report, "image-not-pinned-by-digest", "api", "app")) == "fields-overlay/kustomization.yaml:33"
    # an inline JSON 6902 patch: the op inside the kustomization
    assert at(one(report, "host-network", "api")).startswith("fields-overlay/kustomization.yaml:")


def test_a_repository_renders_each_top_level_overlay_once(kaudit: Kaudit, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    shutil.copytree(KUSTOMIZE / "base", tmp_path / "repo" / "base")
    shutil.copytree(KUSTOMIZE / "overlays", tmp_path / "repo" / "overlays")
    shutil.copytree(KUSTOMIZE / "components", tmp_path / "repo" / "components")
    monkeypatch.chdir(tmp_path)
    report = kaudit("scan", "repo", "-f", "json").json()
    assert [u["directory"] for u in report["inputs"]["rendered"]] == ["repo/overlays/prod"]
    skipped = {s["file"]: s["reason"] for s in report["inputs"]["skipped"]}
    assert skipped["repo/base"] == ("kustomization included by repo/overlays/prod: rendered as part of it, "
                                    "not on its own")
    assert skipped["repo/components/probes"].startswith("kustomization included by repo/overlays/prod")
    assert {f["resource"]["namespace"] for f in report["findings"] if f["resource"]["kind"] != "Namespace"} == {"prod"}


def test_an_overlay_that_does_not_render_and_a_remote_base_are_errors(kaudit: Kaudit,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(KUSTOMIZE / "bad")
    result = kaudit("scan", "bad-patch", "remote-base", "-f", "json")
    assert result.code == 2
    errors = {e["file"]: e["message"] for e in result.json()["inputs"]["errors"]}
    assert errors["bad-patch"].startswith("kustomization does not render: ")
    assert "remote bases are off unless allowed explicitly" in errors["remote-base"]


def test_render_options_without_a_unit_to_use_them_are_a_warning(kaudit: Kaudit, tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n")
    result = kaudit("scan", tmp_path / "pod.yaml", "--helm-values", tmp_path / "prod.yaml", "--kustomize-allow-remote",
                    "-f", "json")
    warnings = {w["file"]: w["message"] for w in result.json()["inputs"]["warnings"]}
    assert warnings["--helm-values"] == "no Helm chart among the inputs: the Helm options did nothing"
    assert warnings["--kustomize-allow-remote"] == "no kustomization among the inputs: the option did nothing"
