"""The pre-commit hook, run by the real `pre-commit` from this repository on a temporary git repository."""
from __future__ import annotations

import os
import re

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import pytest

from . import text_layout
from .conftest import PRIVILEGED_TEMPLATE, hardened_pod
from .tools import require_tool

REPO = Path(__file__).resolve().parents[1]

GOOD = hardened_pod("good", "shop")
BAD = """apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: shop}
spec:
  containers:
    - name: app
      image: nginx
      securityContext:
        privileged: true
"""


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")  # one hook environment for the module's tests


def run_hook(project: Path, home: Path, hook: Optional[str], *files: str) -> subprocess.CompletedProcess[str]:
    """Run `hook` (None: every hook of the repository, in one environment) on `files` (none: all)."""
    pre_commit = require_tool("pre-commit")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    command = [pre_commit, "try-repo", str(REPO), *([hook] if hook else []), "--verbose", "--color", "never"]
    command += ["--files", *files] if files else ["--all-files"]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require_tool("git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "values.yaml").write_text("replicaCount: 2\n")  # not a manifest: skipped, never a failure
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    return tmp_path


def test_hook_fails_a_bad_manifest_with_file_and_line(project: Path, pre_commit_home: Path) -> None:
    done = run_hook(project, pre_commit_home, "kaudit", "good.yaml", "bad.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Failed" in done.stdout
    assert "bad.yaml:9:9" in done.stdout and "privileged-container" in done.stdout
    assert "good.yaml:" not in done.stdout  # the good file has nothing to report


def test_the_two_hooks_together_report_each_finding_once(project: Path, pre_commit_home: Path) -> None:
    """Both hooks in one run, as the recommended configuration has them: `kaudit` on the files,
    `kaudit-all` on the tree (`.`), each rule in exactly one, every file named alike."""
    (project / "k8s").mkdir()
    (project / "k8s" / "web.yaml").write_text(BAD.replace("name: bad", "name: web"))
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    done = run_hook(project, pre_commit_home, None)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.count("kaudit (whole tree, cross-object analysis)") == 1  # both hooks ran
    found = Counter((shown.where, shown.rule) for shown in text_layout.findings(done.stdout))
    assert found[("k8s/web.yaml:9:9", "privileged-container")] == 1  # from `kaudit`
    assert found[("bad.yaml:9:9", "privileged-container")] == 1
    assert any(rule == "namespace-without-network-policy" for _, rule in found)  # from `kaudit-all`
    assert not [where for where, _ in found if where.startswith("./")]
    assert [line for line, seen in found.items() if seen > 1] == []
    per_file = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", "--per-file", "good.yaml"], cwd=project,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "namespace-without-network-policy" not in per_file.stdout


def test_hook_definition_matches_the_cli() -> None:
    import yaml

    hooks = {hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["kaudit"]["entry"] == "kaudit scan --per-file --allow-empty"
    files = re.compile(hooks["kaudit"]["files"])
    for changed in ("a.yaml", "b.yml", "c.json", "chart/templates/_helpers.tpl", "k/Kustomization", "chart/values.yaml"):
        assert files.search(changed), changed
    for other in ("README.md", "main.go", "chart/templates/NOTES.txt"):
        assert not files.search(other), other
    assert hooks["kaudit-all"]["entry"] == "kaudit scan --cross-object-only --allow-empty ."
    assert hooks["kaudit-all"]["pass_filenames"] is False


WORKFLOW = "name: ci\non: [push]\njobs:\n  test: {runs-on: ubuntu-latest, steps: [{run: make}]}\n"


def test_hook_passes_a_commit_of_other_yaml_and_says_nothing_was_judged(project: Path, pre_commit_home: Path) -> None:
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yaml").write_text(WORKFLOW)
    (project / "compose.yaml").write_text("services: {web: {image: nginx}}\n")
    done = run_hook(project, pre_commit_home, "kaudit", ".github/workflows/ci.yaml", "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing judged" in done.stdout


def test_hook_re_renders_a_chart_and_an_overlay_when_their_files_change(project: Path, pre_commit_home: Path) -> None:
    chart = project / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("privileged: false\n")
    (chart / "templates" / "_helpers.tpl").write_text('{{- define "demo.name" -}}demo{{- end }}\n')
    # the good pod, with its name from the release and `privileged` from values (line 17)
    (chart / "templates" / "pod.yaml").write_text(GOOD.replace("name: good\n", "name: {{ .Release.Name }}\n").replace(
        "        allowPrivilegeEscalation: false\n",
        "        allowPrivilegeEscalation: false\n        privileged: {{ .Values.privileged }}\n"))
    overlay = project / "deploy"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [pod.yaml]\npatches: [{path: patch.yaml}]\n")
    (overlay / "pod.yaml").write_text(GOOD.replace("name: good\n", "name: web\n"))
    (overlay / "patch.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
                                        "spec:\n  containers:\n    - name: app\n      securityContext:\n"
                                        "        privileged: false\n")
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    # each try-repo run installs the hook environment afresh (pre-commit's own temporary store): few runs
    done = run_hook(project, pre_commit_home, "kaudit", "chart/templates/_helpers.tpl", "deploy/patch.yaml",
                    "good.yaml", "values.yaml")
    assert done.returncode == 0, done.stdout + done.stderr  # rendered with privileged: false
    assert "Passed" in done.stdout
    assert "rendered: chart (helm" in done.stdout and "rendered: deploy (kustomize" in done.stdout
    (chart / "values.yaml").write_text("privileged: true\n")
    (overlay / "patch.yaml").write_text((overlay / "patch.yaml").read_text().replace("false", "true"))
    done = run_hook(project, pre_commit_home, "kaudit", "chart/values.yaml", "chart/templates/pod.yaml",
                    "deploy/patch.yaml", "deploy/kustomization.yaml", "good.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    # at the template line that writes the field, and the values key that set it
    assert "chart/templates/pod.yaml:17" in done.stdout and "privileged-container" in done.stdout
    assert "values: chart/values.yaml:1 privileged" in done.stdout
    # the overlay's finding at the patch line that sets it
    assert "deploy/patch.yaml:8" in done.stdout and "rendered from kustomization deploy" in done.stdout
    # one render per unit however many of its files changed
    assert done.stdout.count("rendered: chart (helm") == 1 and done.stdout.count("rendered: deploy (kustomize") == 1
    assert "good.yaml:" not in done.stdout


def test_hook_environment_installs_the_renderer_extras() -> None:
    import yaml

    from tests.test_project import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text()):
        assert hook["additional_dependencies"] == [*extras["helm"], *extras["kustomize"]], hook["id"]
