from __future__ import annotations

from pathlib import Path
from typing import Callable

from kaudit.engine import render, run
from kaudit.inventory import Inventory
from kaudit.ruleset import load_builtin_rules
from kaudit.sources.manifests import load_manifests
from kaudit.value import replace

RULES = {rule.id: rule for rule in load_builtin_rules()}

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: team
spec:
  securityContext:
    runAsNonRoot: false
  containers:
    - name: app
      image: registry.example.com/app:1.0
      securityContext:
        readOnlyRootFilesystem: true
    - name: bare
      image: registry.example.com/app:1.0
"""


def scan(path: Path, *rule_ids: str):  # type: ignore[no-untyped-def]
    loaded = load_manifests([str(path)])
    return run([RULES[r] for r in rule_ids], Inventory(loaded.resources))


def test_findings_point_at_the_offending_field_or_its_nearest_parent(write: Callable[..., Path]) -> None:
    result = scan(write("pod.yaml", POD), "run-as-root")
    located = [(f.container, f.location.line, f.location.column, ".".join(map(str, f.path))) for f in result.findings]
    # runAsNonRoot: false is set at pod level (line 8); both containers inherit it: point at it.
    assert located == [("app", 8, 5, "spec.securityContext.runAsNonRoot"),
                       ("bare", 8, 5, "spec.securityContext.runAsNonRoot")]


def test_a_missing_field_is_located_at_its_nearest_existing_parent(write: Callable[..., Path]) -> None:
    text = POD.replace("  securityContext:\n    runAsNonRoot: false\n", "")
    result = scan(write("pod.yaml", text), "run-as-root")
    located = {f.container: (f.location.line, ".".join(map(str, f.path))) for f in result.findings}
    assert located == {
        "app": (10, "spec.containers.0.securityContext.runAsNonRoot"),  # the container's securityContext key
        "bare": (12, "spec.containers.1.securityContext.runAsNonRoot"),  # the container item itself
    }


def test_fingerprints_survive_line_moves_and_file_reordering(write: Callable[..., Path], tmp_path: Path) -> None:
    first = scan(write("a/pod.yaml", POD), "run-as-root")
    moved = scan(write("b/pod.yaml", "# a comment\n\n" + POD.replace("name: p\n", "name: p\n  labels: {a: b}\n")),
                 "run-as-root")
    assert [f.location.line for f in first.findings] != [f.location.line for f in moved.findings]
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in moved.findings]
    assert len({f.fingerprint for f in first.findings}) == 2


def test_render_fills_known_placeholders_only_and_never_evaluates() -> None:
    values = {"container": "app", "name": "{kind}"}
    assert render('container "{container}" in {name} {unknown} {container.__class__}', values) == \
        'container "app" in {kind} {unknown} {container.__class__}'


def test_a_rule_that_crashes_is_reported_and_the_others_still_run(write: Callable[..., Path]) -> None:
    def explode(target):  # type: ignore[no-untyped-def]
        raise TypeError("boom")

    broken = replace(RULES["run-as-root"], id="broken", check=explode)
    loaded = load_manifests([str(write("pod.yaml", POD))])
    result = run([broken, RULES["run-as-root"]], Inventory(loaded.resources))
    assert result.errors == ["rule broken could not evaluate Pod/team/p: TypeError: boom"] * 2
    assert {f.rule for f in result.findings} == {"run-as-root"}


def test_workloads_group_covers_custom_resources_with_pod_templates(write: Callable[..., Path]) -> None:
    rollout = """
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata: {name: r}
    spec:
      template:
        spec:
          containers: [{name: app, image: "app:1"}]
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data: {a: b}
    """
    result = scan(write("r.yaml", rollout), "run-as-root")
    assert [(f.resource.kind, f.container) for f in result.findings] == [("Rollout", "app")]


def test_message_names_the_container_kind(write: Callable[..., Path]) -> None:
    text = POD.replace("  containers:", "  initContainers:\n    - {name: setup, image: \"app:1\"}\n  containers:")
    result = scan(write("pod.yaml", text), "run-as-root")
    assert any(f.message.startswith('init container "setup"') for f in result.findings)
