"""The pre-commit hook, run by the real `pre-commit` from this repository on a temporary git repository."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest
import yaml

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


@dataclass(frozen=True)
class HookRepo:
    home: Path  # PRE_COMMIT_HOME: the store that keeps the hook environment between the module's runs
    url: str  # a git repository whose commit `rev` is this checkout, uncommitted changes included
    rev: str


def _git(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookRepo]:
    """This checkout as a hook repository, made once for the module.

    `pre-commit try-repo` would do the same (a shadow clone with the uncommitted changes of the
    tracked files committed), but it gives every run a fresh store, so each of its runs built the
    hook environment again (a venv and a pip install of kaudit and the renderer extras, ~30 s). A
    `.pre-commit-config.yaml` naming the repository and commit, as a user's does, with one store
    for the module, builds it once."""
    require_tool("git")
    root = tmp_path_factory.mktemp("pre-commit")
    shadow = root / "shadow-repo"
    _git("clone", "-q", str(REPO), str(shadow), cwd=root)
    _git("checkout", "-q", _git("rev-parse", "HEAD", cwd=REPO), "-b", "_pc_tmp", cwd=shadow)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    into_shadow = {**env, "GIT_INDEX_FILE": str(shadow / ".git" / "index"),
                   "GIT_OBJECT_DIRECTORY": str(shadow / ".git" / "objects")}
    staged = _git("diff", "--cached", "--name-only", "--no-renames", "-z", cwd=REPO).split("\0")
    if [name for name in staged if name]:
        subprocess.run(["git", "add", "--", *[name for name in staged if name]], cwd=REPO, env=into_shadow, check=True)
    subprocess.run(["git", "add", "-u"], cwd=REPO, env=into_shadow, check=True)
    identity = {"GIT_AUTHOR_NAME": "kaudit-tests", "GIT_COMMITTER_NAME": "kaudit-tests",
                "GIT_AUTHOR_EMAIL": "tests@kaudit.invalid", "GIT_COMMITTER_EMAIL": "tests@kaudit.invalid"}
    subprocess.run(["git", "commit", "-q", "--allow-empty", "--no-edit", "--no-gpg-sign", "-n", "-m", "this checkout"],
                   cwd=shadow, env={**env, **identity}, check=True)
    yield HookRepo(root / "home", str(shadow), _git("rev-parse", "HEAD", cwd=shadow))
    shutil.rmtree(root, ignore_errors=True)  # the hook environment (a venv with Helm and kubectl) is big


def run_hook(project: Path, hook_repo: HookRepo, hook: Optional[str], *files: str) -> subprocess.CompletedProcess[str]:
    """Run `hook` (None: every hook of the repository, in one environment) on `files` (none: all)."""
    pre_commit = require_tool("pre-commit")
    hooks = [hook] if hook else [h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())]
    config = project.parent / f"{project.name}-pre-commit-config.yaml"  # outside the project: never staged
    config.write_text(yaml.safe_dump({"repos": [{"repo": hook_repo.url, "rev": hook_repo.rev,
                                                 "hooks": [{"id": h} for h in hooks]}]}))
    env = {**os.environ, "PRE_COMMIT_HOME": str(hook_repo.home), "NO_COLOR": "1"}
    command = [pre_commit, "run", "--config", str(config), "--verbose", "--color", "never"]
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


def test_hook_fails_a_bad_manifest_with_file_and_line(project: Path, hook_repo: HookRepo) -> None:
    done = run_hook(project, hook_repo, "kaudit", "good.yaml", "bad.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Failed" in done.stdout
    assert "bad.yaml:9:9" in done.stdout and "privileged-container" in done.stdout
    assert "good.yaml:" not in done.stdout  # the good file has nothing to report


def test_the_two_hooks_together_report_each_finding_once(project: Path, hook_repo: HookRepo) -> None:
    """Both hooks in one run, as the recommended configuration has them: `kaudit` on the files,
    `kaudit-all` on the tree (`.`), each rule in exactly one, every file named alike."""
    (project / "k8s").mkdir()
    (project / "k8s" / "web.yaml").write_text(BAD.replace("name: bad", "name: web"))
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    done = run_hook(project, hook_repo, None)
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


def test_hook_passes_a_commit_of_other_yaml_and_says_nothing_was_judged(project: Path, hook_repo: HookRepo) -> None:
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yaml").write_text(WORKFLOW)
    (project / "compose.yaml").write_text("services: {web: {image: nginx}}\n")
    done = run_hook(project, hook_repo, "kaudit", ".github/workflows/ci.yaml", "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing judged" in done.stdout


def test_hook_re_renders_a_chart_and_an_overlay_when_their_files_change(project: Path, hook_repo: HookRepo) -> None:
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
    done = run_hook(project, hook_repo, "kaudit", "chart/templates/_helpers.tpl", "deploy/patch.yaml",
                    "good.yaml", "values.yaml")
    assert done.returncode == 0, done.stdout + done.stderr  # rendered with privileged: false
    assert "Passed" in done.stdout
    assert "rendered: chart (helm" in done.stdout and "rendered: deploy (kustomize" in done.stdout
    (chart / "values.yaml").write_text("privileged: true\n")
    (overlay / "patch.yaml").write_text((overlay / "patch.yaml").read_text().replace("false", "true"))
    done = run_hook(project, hook_repo, "kaudit", "chart/values.yaml", "chart/templates/pod.yaml",
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
    from tests.test_project import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text()):
        assert hook["additional_dependencies"] == [*extras["helm"], *extras["kustomize"]], hook["id"]
