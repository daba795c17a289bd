"""Several contexts in one run: a failing context costs only its own report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from tests.conftest import REPO, run_process
from tests.k8s_api import FakeApiServer

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
       "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0",
                                "securityContext": {"privileged": True}}]}}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer([NAMESPACE, POD]) as server:
        yield server


def schema() -> Any:
    return json.loads((REPO / "reports" / "report.schema.json").read_text())


def kubeconfig(api: FakeApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    api.kubeconfig(path, context="alpha")
    api.kubeconfig(path, context="revoked", token="not-a-valid-token")
    api.kubeconfig(path, context="omega")
    return path


def test_one_failing_context_keeps_the_healthy_reports(api: FakeApiServer, tmp_path: Path) -> None:
    config = kubeconfig(api, tmp_path)
    done = run_process("scan", "--all-contexts", "--kubeconfig", config, "-f", "json", "-o", tmp_path / "r.json",
                       "--fail-on", "never", cwd=tmp_path)
    assert done.code == 2
    assert {p.name for p in tmp_path.glob("r.*.json")} == {"r.alpha.json", "r.omega.json"}
    for name in ("alpha", "omega"):
        report = json.loads((tmp_path / f"r.{name}.json").read_text())
        jsonschema.validate(report, schema())
        assert report["scanned"]["cluster"]["context"] == name
        assert any(f["rule"] == "privileged-container" for f in report["findings"])
    failure = [line for line in done.err.splitlines() if "revoked" in line and line.startswith("kaudit:")]
    assert len(failure) == 1, done.err


def test_several_contexts_as_json_on_stdout_are_json_lines(api: FakeApiServer, tmp_path: Path) -> None:
    config = kubeconfig(api, tmp_path)
    done = run_process("scan", "--context", "alpha", "--context", "omega", "--kubeconfig", config, "-f", "json",
                       cwd=tmp_path)
    assert done.code == 1  # the privileged pod, in both
    lines = done.out.splitlines()
    assert len(lines) == 2
    reports = [json.loads(line) for line in lines]
    for report in reports:
        jsonschema.validate(report, schema())
    assert [r["scanned"]["cluster"]["context"] for r in reports] == ["alpha", "omega"]


def test_several_contexts_refuse_single_document_formats_on_stdout(api: FakeApiServer, tmp_path: Path) -> None:
    config = kubeconfig(api, tmp_path)
    done = run_process("scan", "--all-contexts", "--kubeconfig", config, "-f", "sarif", cwd=tmp_path)
    assert done.code == 2 and done.out == ""
    assert "need -o FILE" in done.err


def test_exclude_namespace_excludes_the_namespace_object_too(api: FakeApiServer, tmp_path: Path) -> None:
    config = kubeconfig(api, tmp_path)
    done = run_process("scan", "--context", "alpha", "--kubeconfig", config, "-f", "json", cwd=tmp_path)
    on_shop = [f for f in json.loads(done.out)["findings"] if f["resource"]["kind"] == "Namespace"]
    assert on_shop, "the Namespace shop has findings of its own (no Pod Security label)"
    done = run_process("scan", "--context", "alpha", "--kubeconfig", config, "--exclude-namespace", "shop",
                       "-f", "json", cwd=tmp_path)
    report = json.loads(done.out)
    assert not [f for f in report["findings"] if f["resource"]["name"] == "shop" or f["resource"]["namespace"] == "shop"]
