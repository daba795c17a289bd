"""kaudit.sources.helm: real rendering of the charts in tests/data/charts with Helm's own engine.

The SDK backend (helm-python-sdk, in the test extra) renders every chart here; the binary backend
is tested only where a helm binary is on PATH (none is installed by the test extra)."""
from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from kaudit.sources import helm
from kaudit.sources.helm import HelmOptions, HelmRender, RenderError, RendererMissing, render_chart

CHARTS = Path(__file__).parent / "data" / "charts"
# No helm binary can be installed where CI runs (PyPI and Debian have none): the `helm template`
# backend's cases run where a helm is on PATH, and are not collected (never skipped) elsewhere. Its
# output parser is tested on text in `helm template`'s format below.
BACKENDS = [helm.SDK] + ([helm.BINARY] if helm.helm_binary() is not None else [])


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The app chart with its second subchart packed as charts/sub-tgz-0.1.0.tgz, as `helm package` would."""
    chart = tmp_path / "app"
    shutil.copytree(CHARTS / "app", chart)
    with tarfile.open(chart / "charts" / "sub-tgz-0.1.0.tgz", "w:gz") as archive:
        archive.add(CHARTS / "sub-tgz", arcname="sub-tgz")
    return chart


def objects(render: HelmRender) -> dict[tuple[str, str], tuple[str, dict]]:  # type: ignore[type-arg]
    """(kind, name) -> (template, object)."""
    found = {}
    for document in render.documents:
        obj = yaml.safe_load(document.text)
        found[(obj["kind"], obj["metadata"]["name"])] = (document.template, obj)
    return found


def deployment(render: HelmRender, release: str = "release-name") -> dict:  # type: ignore[type-arg]
    return objects(render)[("Deployment", f"{release}-app")][1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_manifest_names_its_template_relative_to_the_chart(app: Path, backend: str) -> None:
    render = render_chart(str(app), HelmOptions(), renderer=backend)
    assert render.renderer == backend
    assert {key: template for key, (template, _) in objects(render).items()} == {
        ("StatefulSet", "release-name-cache-small"): "charts/cache/templates/statefulset.yaml",
        ("Service", "release-name-packed"): "charts/sub-tgz/templates/service.yaml",  # from the .tgz
        ("Deployment", "release-name-app"): "templates/deployment.yaml",
        ("Job", "release-name-app-migrate"): "templates/hook-job.yaml",  # a hook runs in the cluster too
        ("PodDisruptionBudget", "release-name-app"): "templates/pdb.yaml",
        ("Pod", "release-name-app-test"): "templates/tests.yaml",  # a test hook as well
        ("ConfigMap", "release-name-app-test-config"): "templates/tests.yaml",  # 2nd document, same template
    }
    # the false `if` of ingress.yaml gives no document; NOTES.txt is not a manifest
    assert not any(d.template in ("templates/ingress.yaml", "templates/NOTES.txt") for d in render.documents)


@pytest.mark.parametrize("backend", BACKENDS)
def test_include_tpl_range_and_release_options_render(app: Path, backend: str) -> None:
    render = render_chart(str(app), HelmOptions(release="shop", namespace="prod"), renderer=backend)
    obj = deployment(render, "shop")  # name from the include of _helpers.tpl
    assert obj["metadata"]["namespace"] == "prod"
    assert obj["metadata"]["annotations"]["built"] == "built-for-shop"  # tpl of a values string
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80}, {"containerPort": 443}]  # range


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_true_condition_renders_its_template(app: Path, backend: str) -> None:
    render = render_chart(str(app), HelmOptions(set_values=("ingress.enabled=true",)), renderer=backend)
    assert objects(render)[("Ingress", "release-name-app")][0] == "templates/ingress.yaml"


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_files_merge_in_order_and_set_values_win(app: Path, tmp_path: Path, backend: str) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("image: busybox:1\nprivileged: true\nreplicas: 2\n")
    second = tmp_path / "second.yaml"
    second.write_text("image: busybox:2\n")
    render = render_chart(str(app), HelmOptions(values_files=(str(first), str(second)),
                                                set_values=("replicas=5",)), renderer=backend)
    obj = deployment(render)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:2"  # the later file wins
    assert container["securityContext"]["privileged"] is True  # the earlier file's other keys stay
    assert obj["spec"]["replicas"] == 5  # --set on top of the files
    # and a nested map merges key by key: the subchart keeps its default beside the override
    render = render_chart(str(app), HelmOptions(set_values=("cache.size=large",)), renderer=backend)
    assert ("StatefulSet", "release-name-cache-large") in objects(render)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kube_version_and_api_versions_set_capabilities(app: Path, backend: str) -> None:
    def pdb(options: HelmOptions) -> dict:  # type: ignore[type-arg]
        return objects(render_chart(str(app), options, renderer=backend))[("PodDisruptionBudget", "release-name-app")][1]

    assert pdb(HelmOptions(kube_version="v1.30.0"))["apiVersion"] == "policy/v1"
    old = pdb(HelmOptions(kube_version="v1.20.0"))
    assert old["apiVersion"] == "policy/v1beta1"
    assert "annotations" not in old["metadata"]
    assert pdb(HelmOptions(api_versions=("example.com/v1",)))["metadata"]["annotations"] == {"example": "present"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_that_break_the_charts_schema_do_not_render(app: Path, backend: str) -> None:
    with pytest.raises(RenderError, match=r"/replicas.*minimum"):
        render_chart(str(app), HelmOptions(set_values=("replicas=-1",)), renderer=backend)
    with pytest.raises(RenderError, match=r"/replicas.*want integer"):
        render_chart(str(app), HelmOptions(set_values=("replicas=many",)), renderer=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_template_syntax_error_is_helms_message(backend: str) -> None:
    with pytest.raises(RenderError, match=r"templates/cm\.yaml.*unclosed action"):
        render_chart(str(CHARTS / "broken-syntax"), HelmOptions(), renderer=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_required_value_is_helms_message(backend: str) -> None:
    with pytest.raises(RenderError, match="image.repository is required"):
        render_chart(str(CHARTS / "needs-required"), HelmOptions(), renderer=backend)
    render = render_chart(str(CHARTS / "needs-required"), HelmOptions(set_values=("image.repository=x",)),
                          renderer=backend)
    assert [d.template for d in render.documents] == ["templates/cm.yaml"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dependency_not_vendored_is_an_error_naming_it(backend: str) -> None:
    with pytest.raises(RenderError, match="missing in charts/ directory: postgresql"):
        render_chart(str(CHARTS / "missing-dep"), HelmOptions(), renderer=backend)


def test_a_packed_subchart_that_is_missing_is_named(tmp_path: Path) -> None:
    shutil.copytree(CHARTS / "app", tmp_path / "app")  # without the .tgz the fixture builds
    with pytest.raises(RenderError, match=r"missing in charts/ directory: sub-tgz \("):
        render_chart(str(tmp_path / "app"), HelmOptions())


def test_output_over_the_cap_is_an_error() -> None:
    with pytest.raises(RenderError, match="over the cap of 1000000"):
        render_chart(str(CHARTS / "endless"), HelmOptions(), max_output_bytes=1_000_000)


def test_a_render_that_takes_too_long_is_an_error() -> None:
    # endless/ renders 20,000 documents of 2 kB: far longer than a millisecond
    with pytest.raises(RenderError, match="did not finish within 0.001 s"):
        render_chart(str(CHARTS / "endless"), HelmOptions(), timeout=0.001)


def test_a_directory_without_chart_yaml_is_not_a_chart(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="not a chart"):
        render_chart(str(tmp_path), HelmOptions())


def test_bad_set_and_values_file_are_render_errors(app: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="--set a: key \"a\" has no value"):
        render_chart(str(app), HelmOptions(set_values=("a",)))
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(RenderError, match="bad.yaml"):
        render_chart(str(app), HelmOptions(values_files=(str(bad),)))
    with pytest.raises(RenderError, match="absent.yaml: No such file"):
        render_chart(str(app), HelmOptions(values_files=(str(tmp_path / "absent.yaml"),)))


def test_the_binary_backend_without_helm_on_path_is_missing(tmp_path: Path) -> None:
    with pytest.raises(RendererMissing, match="no helm binary on PATH"):
        helm.select_renderer(helm.BINARY, path=str(tmp_path))
    with pytest.raises(RendererMissing):
        render_chart(str(CHARTS / "needs-required"), HelmOptions(), renderer=helm.BINARY, path=str(tmp_path))


def test_with_neither_renderer_the_message_says_how_to_get_one(tmp_path: Path) -> None:
    # a fresh interpreter where helm_python cannot be imported and PATH has no helm
    import subprocess
    import sys
    blocker = tmp_path / "helm_python.py"
    blocker.write_text("raise ImportError('blocked for the test')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PATH": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-c", "from kaudit.sources import helm; print(helm.select_renderer())"],
                          env=env, capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"kaudit.sources.helm.RendererMissing: {helm.INSTALL_HINT}"
    assert "pip install 'kaudit[helm]'" in last and "\n" not in helm.INSTALL_HINT


def test_the_sdk_backend_is_chosen_first() -> None:
    assert helm.select_renderer() == helm.SDK
    with pytest.raises(ValueError):
        helm.select_renderer("kustomize")


def test_the_helm_template_stream_is_split_by_its_source_comments() -> None:
    # the format `helm template` prints (Helm's releaseutil output), parsed without a binary
    stream = ("---\n# Source: app/charts/cache/templates/sts.yaml\napiVersion: apps/v1\nkind: StatefulSet\n"
              "---\n# Source: app/templates/tests.yaml\nkind: Pod\n---\n# Source: app/templates/tests.yaml\n"
              "kind: ConfigMap\n---\n# Source: app/templates/empty.yaml\n# only a comment\n"
              "---\n# Source: app/templates/NOTES.txt\nThanks\n")
    documents = helm._documents_from_stream(stream)
    assert [(d.template, d.text) for d in documents] == [
        ("charts/cache/templates/sts.yaml", "apiVersion: apps/v1\nkind: StatefulSet\n"),
        ("templates/tests.yaml", "kind: Pod\n"),
        ("templates/tests.yaml", "kind: ConfigMap\n"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_aliased_and_nested_subcharts_name_their_directory(backend: str) -> None:
    # charts/redis-dir holds chart `redis`, used twice under the aliases primary and replica, and
    # has its own subchart; Helm names them by alias, the files are under charts/redis-dir
    render = render_chart(str(CHARTS / "aliased"), HelmOptions(), renderer=backend)
    assert sorted((d.template, d.source, yaml.safe_load(d.text)["metadata"]["name"]) for d in render.documents) == [
        ("charts/redis-dir/charts/metrics/templates/service.yaml",
         "aliased/charts/primary/charts/metrics/templates/service.yaml", "release-name-metrics-of-none"),
        ("charts/redis-dir/charts/metrics/templates/service.yaml",
         "aliased/charts/replica/charts/metrics/templates/service.yaml", "release-name-metrics-of-none"),
        ("charts/redis-dir/templates/statefulset.yaml", "aliased/charts/primary/templates/statefulset.yaml",
         "release-name-primary"),
        ("charts/redis-dir/templates/statefulset.yaml", "aliased/charts/replica/templates/statefulset.yaml",
         "release-name-replica"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_false_dependency_condition_drops_the_subchart(backend: str) -> None:
    render = render_chart(str(CHARTS / "aliased"), HelmOptions(set_values=("replica.enabled=false",)),
                          renderer=backend)
    assert {d.source.split("/")[2] for d in render.documents} == {"primary"}
