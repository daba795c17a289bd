from __future__ import annotations

import codecs
import io
import os
from pathlib import Path
from typing import Callable

import pytest

from kaudit.sources.manifests import load_manifests

Write = Callable[[str, "str | bytes"], Path]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: app, image: "app:1"}]
"""


def names(scan) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.ref.describe() for r in scan.resources]


def test_multi_document_yaml_json_and_lists_are_flattened(write: Write, tmp_path: Path) -> None:
    write("a.yaml", DEPLOYMENT + "---\n" + """
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: s1}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c1}}
""")
    write("b.json", '{"apiVersion": "v1", "kind": "ServiceList", "items": [{"apiVersion": "v1", "kind": "Service", '
                    '"metadata": {"name": "s2", "namespace": "x"}}]}')
    scan = load_manifests([str(tmp_path)])
    assert names(scan) == ["Deployment/shop/web", "Service/s1", "ConfigMap/c1", "Service/x/s2"]
    assert scan.inputs.files == 2 and scan.inputs.documents == 3 and scan.inputs.resources == 4
    assert [r.origin.line for r in scan.resources[:3]] == [1, 13, 14]


def test_directories_recurse_skip_hidden_and_non_manifest_files(write: Write, tmp_path: Path) -> None:
    write("deep/nested/x.yml", DEPLOYMENT)
    write(".git/config.yaml", DEPLOYMENT)
    write("notes.txt", "kind: nope")
    scan = load_manifests([str(tmp_path)])
    assert scan.inputs.files == 1 and names(scan) == ["Deployment/shop/web"]


def test_globs_and_the_same_file_twice(write: Write, tmp_path: Path) -> None:
    path = write("one.yaml", DEPLOYMENT)
    scan = load_manifests([str(tmp_path / "*.yaml"), str(path)])
    assert scan.inputs.files == 1
    missing = load_manifests([str(tmp_path / "*.nothing")])
    assert [e.message for e in missing.inputs.errors] == ["no files match this pattern"]


def test_stdin(tmp_path: Path) -> None:
    scan = load_manifests(["-"], stdin=io.BytesIO(DEPLOYMENT.encode()))
    assert names(scan) == ["Deployment/shop/web"] and scan.resources[0].origin.file == "<stdin>"


def test_non_kubernetes_yaml_is_skipped_with_a_reason(write: Write, tmp_path: Path) -> None:
    write("tree/values.yaml", "image: {repository: nginx}\n")
    write("tree/.github/workflows/ci.yml", "on: push\njobs: {}\n")
    write("tree/ci.yml", "on: push\njobs: {build: {runs-on: ubuntu}}\n")
    write("tree/empty-doc.yaml", "---\n---\n" + DEPLOYMENT)
    scan = load_manifests([str(tmp_path / "tree")])
    reasons = {os.path.relpath(s.file, tmp_path): s.reason for s in scan.inputs.skipped}
    assert reasons == {
        "tree/values.yaml": "Helm values, not a Kubernetes object",
        "tree/.github": "hidden directory, not entered (name it to scan it)",
        "tree/ci.yml": "not a Kubernetes object (no apiVersion and kind)",
        "tree/empty-doc.yaml": "empty document",
    }
    assert not scan.inputs.errors and names(scan) == ["Deployment/shop/web"]


def test_chart_and_kustomization_directories_are_rendered_not_read_as_manifests(write: Write, tmp_path: Path) -> None:
    write("chart/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 1.0.0\n")
    write("chart/values.yaml", "image: {repository: nginx}\n")
    write("chart/templates/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n")
    write("overlay/kustomization.yaml", "resources: [deploy.yaml]\nnamePrefix: o-\n")
    write("overlay/deploy.yaml", DEPLOYMENT)
    write("plain/deploy.yaml", DEPLOYMENT.replace("name: web", "name: plain"))
    scan = load_manifests([str(tmp_path)])
    assert not scan.inputs.errors
    assert scan.inputs.files == 1  # only plain/ was read as a manifest
    assert sorted(names(scan)) == ["Deployment/release-name", "Deployment/shop/o-web", "Deployment/shop/plain"]
    assert [(u.directory, u.kind, u.objects) for u in scan.inputs.rendered] == [
        (str(tmp_path / "chart"), "helm", 1), (str(tmp_path / "overlay"), "kustomize", 1)]
    named = load_manifests([str(tmp_path / "chart" / "templates" / "deploy.yaml"),
                            str(tmp_path / "chart" / "values.yaml")])
    # named files of a chart (as the pre-commit hook names changed ones) stand for the chart, rendered once
    assert named.inputs.files == 0 and names(named) == ["Deployment/release-name"]
    assert [u.directory for u in named.inputs.rendered] == [os.path.relpath(tmp_path / "chart")
                                                            if not os.path.relpath(tmp_path / "chart").startswith("..")
                                                            else str(tmp_path / "chart")]
    kustomization = load_manifests([str(tmp_path / "overlay" / "kustomization.yaml")])
    assert names(kustomization) == ["Deployment/shop/o-web"]


def test_broken_objects_are_errors_not_skips(write: Write, tmp_path: Path) -> None:
    write("x.yaml", "kind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: 5\n---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata: [1]\n")
    scan = load_manifests([str(tmp_path)])
    assert [(e.line, e.message) for e in scan.inputs.errors] == [
        (1, "Deployment without apiVersion"),
        (4, "apiVersion and kind must be non-empty strings"),
        (7, "Pod: metadata must be a mapping"),
    ]


def test_encodings_bom_crlf_and_utf16(write: Write, tmp_path: Path) -> None:
    write("bom.yaml", b"\xef\xbb\xbf" + DEPLOYMENT.encode())
    write("crlf.yaml", DEPLOYMENT.replace("web", "crlf").replace("\n", "\r\n").encode())
    write("utf16.yaml", DEPLOYMENT.replace("web", "wide").encode("utf-16"))
    scan = load_manifests([str(tmp_path)])
    assert sorted(names(scan)) == ["Deployment/shop/crlf", "Deployment/shop/web", "Deployment/shop/wide"]
    assert not scan.inputs.errors


def test_binary_and_invalid_utf8_are_errors_with_lines(write: Write, tmp_path: Path) -> None:
    write("bin.yaml", b"a: 1\nb: \x00\x01\x02")
    write("latin1.yaml", "a: 1\nname: caf\xe9\n".encode("latin-1"))
    scan = load_manifests([str(tmp_path)])
    assert [(os.path.basename(e.file), e.line, e.message) for e in scan.inputs.errors] == [
        ("bin.yaml", 2, "binary content (NUL byte); not scanned"),
        ("latin1.yaml", 2, "not valid UTF-8 text (binary file?); not scanned"),
    ]


def test_size_limit(write: Write, tmp_path: Path) -> None:
    big = write("big.yaml", DEPLOYMENT + "#" * 2_000_000)
    scan = load_manifests([str(big)], max_file_mb=1)
    assert scan.inputs.errors[0].message == "larger than 1 MiB; not scanned (raise --max-file-size to scan it)"
    assert names(load_manifests([str(big)], max_file_mb=3)) == ["Deployment/shop/web"]


def test_missing_paths_empty_dirs_and_special_files(write: Write, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")
    os.symlink(tmp_path / "gone.yaml", tmp_path / "dangling.yaml")
    scan = load_manifests([str(tmp_path / "nope.yaml"), str(tmp_path / "empty"), str(tmp_path)])
    messages = [(os.path.basename(e.file), e.message) for e in scan.inputs.errors]
    assert ("nope.yaml", "no such file or directory") in messages
    assert ("empty", "no .yaml, .yml or .json files in this directory") in messages
    assert ("dangling.yaml", "cannot read: No such file or directory") in messages
    assert [(os.path.basename(s.file), s.reason) for s in scan.inputs.skipped] == [("fifo.yaml", "not a regular file")]


def test_symlink_loops_are_not_followed(write: Write, tmp_path: Path) -> None:
    write("a/x.yaml", DEPLOYMENT)
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    scan = load_manifests([str(tmp_path)])
    assert names(scan) == ["Deployment/shop/web"]


def test_warnings_are_listed_up_to_a_cap_then_counted(tmp_path: Path) -> None:
    from kaudit.sources.manifests import MAX_WARNINGS_PER_FILE
    keys = "".join("  k: v\n" for _ in range(MAX_WARNINGS_PER_FILE + 11))
    (tmp_path / "dups.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n{keys}")
    scan = load_manifests([str(tmp_path)])
    warnings = scan.inputs.warnings
    assert len(warnings) == MAX_WARNINGS_PER_FILE + 1
    assert [w.line for w in warnings[:2]] == [6, 7]  # each duplicate's own line
    assert warnings[-1].message == "10 more warning(s) in this file, not listed" and warnings[-1].line is None
    assert scan.inputs.resources == 1


def test_a_named_pipe_given_by_name_is_read(tmp_path: Path) -> None:
    # `kaudit scan <(helm template …)`: the shell passes a pipe; files found in a folder must be regular
    read_end, write_end = os.pipe()
    os.write(write_end, b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: piped}\n")
    os.close(write_end)
    try:
        scan = load_manifests([f"/dev/fd/{read_end}"])
    finally:
        os.close(read_end)
    assert [r.name for r in scan.resources] == ["piped"] and not scan.inputs.errors


def test_utf32_with_a_byte_order_mark_is_decoded(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wide}\n"
    (tmp_path / "le.yaml").write_bytes(codecs.BOM_UTF32_LE + text.encode("utf-32-le"))
    (tmp_path / "be.yaml").write_bytes(codecs.BOM_UTF32_BE + text.encode("utf-32-be"))
    scan = load_manifests([str(tmp_path)])
    assert [r.name for r in scan.resources] == ["wide", "wide"] and not scan.inputs.errors


def test_paths_are_named_one_way_however_they_were_reached() -> None:
    from kaudit.sources.manifests import tidy_path

    assert tidy_path("./k8s/web.yaml") == tidy_path("k8s//web.yaml") == tidy_path("k8s/./web.yaml") == "k8s/web.yaml"
    assert tidy_path(".") == tidy_path("./") == "." and tidy_path("/srv//./x.yaml") == "/srv/x.yaml"
    assert tidy_path("k8s/") == "k8s/" and tidy_path("/") == "/"
    assert tidy_path("../up/x.yaml") == "../up/x.yaml" and tidy_path("a/../b.yaml") == "a/../b.yaml"  # links


def test_a_tree_scan_and_a_scan_of_named_files_print_and_fingerprint_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kaudit scan .` (the kaudit-all hook) and `kaudit scan k8s/a.yaml` (the kaudit hook): the same
    file names, and the same fingerprints, also for an object declared twice (told apart by file)."""
    from kaudit.scan import ScanRequest, scan_manifests

    (tmp_path / "k8s").mkdir()
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n" \
          "    - {name: app, image: nginx, securityContext: {privileged: true}}\n"
    (tmp_path / "k8s" / "a.yaml").write_text(pod)
    (tmp_path / "k8s" / "b.yaml").write_text(pod)
    monkeypatch.chdir(tmp_path)

    def seen(*targets: str) -> set[tuple[str, str, str]]:
        report = scan_manifests(ScanRequest(targets=targets, jobs=1))
        return {(f.rule, f.location.describe(), f.fingerprint) for f in report.findings}

    tree = seen(".")
    assert tree and all(where.startswith("k8s/") for _, where, _ in tree)
    assert tree == seen("./k8s") == seen("k8s/a.yaml", "k8s/b.yaml") == seen("./k8s//a.yaml", "k8s/./b.yaml")
    assert len({fingerprint for *_, fingerprint in tree}) == len(tree)  # the twice-declared pod, told apart
