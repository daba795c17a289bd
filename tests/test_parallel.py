"""Scans spread over worker processes give exactly the report a single process gives."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kaudit import parallel
from kaudit.scan import ScanRequest, _prepare, scan_manifests
from kaudit.sources.manifests import load_manifests, plan
from kaudit.sources.units import RenderOptions
from kaudit.writers.json_report import to_dict

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "manifests"
sys.path.insert(0, str(REPO / "benchmarks"))
from generate_corpus import generate  # noqa: E402  (the benchmark's own generator: realistic, seeded)

from .conftest import scan_on_workers  # noqa: E402


def report_of(request: ScanRequest, jobs: int) -> dict[str, Any]:
    """The JSON report of a scan, forced through worker processes (jobs > 1) or not."""
    data = to_dict(scan_manifests(request) if jobs == 1 else scan_on_workers(request, jobs))
    data.pop("generatedAt")
    for unit in data["inputs"]["rendered"]:  # timings, like generatedAt
        unit.pop("milliseconds")
    return data


@pytest.mark.parametrize("jobs", [2, 3])
def test_examples_give_the_same_report_on_several_processes(jobs: int, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: Pod\nmetadata: {name: x}\n---\nbad: [\n---\nk: v\nk: w\n")
    # tests/data holds charts and overlays: rendered in the main process, their objects judged there
    # (the values trace is left out: bounded by a deadline, it may find more on a quieter run)
    data = REPO / "tests" / "data"
    # all of tests/data but the chart that renders 20,000 ConfigMaps (a render-limit fixture)
    every = [str(p) for p in sorted(data.iterdir()) if p.name != "charts"]
    every += [str(p) for p in sorted((data / "charts").iterdir()) if p.name != "endless"]
    request = ScanRequest(targets=(str(EXAMPLES), *every, str(tmp_path)),
                          config=str(REPO / "examples" / "kaudit.yaml"), fail_on="never",
                          render=RenderOptions(trace_values=False))
    single, spread = report_of(request, 1), report_of(request, jobs)
    inputs = single["inputs"]
    assert single["findings"] and inputs["errors"] and inputs["skipped"] and inputs["warnings"]
    assert spread == single


def test_a_generated_tree_gives_the_same_report_with_its_inputs_in_order(tmp_path: Path) -> None:
    generate(tmp_path / "tree", 1.5)
    (tmp_path / "tree" / "broken.yaml").write_text("a: [\n")
    targets = (str(tmp_path / "tree"), str(tmp_path / "missing"), str(EXAMPLES / "insecure"))
    request = ScanRequest(targets=targets, fail_on="never")
    single, spread = report_of(request, 1), report_of(request, 2)
    assert len(single["findings"]) > 1000
    assert [e["file"] for e in single["inputs"]["errors"]][-1] == str(tmp_path / "missing")
    assert spread == single


def test_rules_that_read_limit_ranges_run_in_the_workers_only_when_no_file_holds_one(tmp_path: Path) -> None:
    rules = list(_prepare(ScanRequest(targets=("x",))).rules)
    cpu = "missing-cpu-request"
    assert cpu in {r.id for r in parallel.split_rules(rules).main}
    assert cpu in {r.id for r in parallel.split_rules(rules, frozenset({"LimitRange"})).local}
    # the same reports either way: without a LimitRange, and with one in a file of its own batch
    generate(tmp_path / "tree", 1.5)
    request = ScanRequest(targets=(str(tmp_path / "tree"),), fail_on="never")
    without = report_of(request, 1)
    assert report_of(request, 2) == without
    namespace = sorted(p.name for p in (tmp_path / "tree").iterdir() if p.is_dir())[0]
    (tmp_path / "tree" / "zz-limits.yaml").write_text(
        f"apiVersion: v1\nkind: LimitRange\nmetadata: {{name: defaults, namespace: {namespace}}}\n"
        "spec:\n  limits:\n    - type: Container\n      default: {cpu: 500m, memory: 256Mi}\n")
    single, spread = report_of(request, 1), report_of(request, 2)
    assert spread == single
    limited = [f for f in without["findings"] if f["rule"] == "missing-cpu-limit"
               and f["resource"]["namespace"] == namespace]
    assert limited and len([f for f in single["findings"] if f["rule"] == "missing-cpu-limit"
                            and f["resource"]["namespace"] == namespace]) < len(limited)  # the default applies


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("parallel") / "big"
    generate(tree, parallel.MIN_BYTES / 1024 / 1024 + 1)
    return tree


def test_only_large_scans_of_files_use_workers(big_tree: Path) -> None:
    assert not parallel.worthwhile(plan([str(EXAMPLES)]), 4)  # small: not worth starting processes
    big = plan([str(big_tree)])
    assert parallel.worthwhile(big, 2)
    assert not parallel.worthwhile(big, 1)
    assert not parallel.worthwhile(plan([str(big_tree), "-"]), 2)  # stdin is read here, once


def test_one_file_that_is_most_of_the_work_is_scanned_in_one_process(tmp_path: Path) -> None:
    document = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
    (tmp_path / "huge.yaml").write_text(document * (parallel.MIN_BYTES // len(document) + 1))
    (tmp_path / "small.yaml").write_text(document)
    assert not parallel.worthwhile(plan([str(tmp_path)]), 2)


def test_the_command_line_scan_over_all_cores_matches_jobs_1(big_tree: Path, tmp_path: Path) -> None:
    outputs = []
    for jobs in ("0", "1"):
        out = tmp_path / f"report-{jobs}.json"
        done = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", str(big_tree), "-j", jobs,
                               "-f", "json", "-o", str(out), "--fail-on", "never"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        data = json.loads(out.read_text())
        data.pop("generatedAt")
        outputs.append(data)
    assert outputs[0] == outputs[1] and len(outputs[0]["findings"]) > 5000


def test_lean_resources_keep_what_whole_inventory_rules_read() -> None:
    scan = load_manifests([str(EXAMPLES)])
    split = parallel.split_rules(list(_prepare(ScanRequest(targets=("x",))).rules))
    assert {"NetworkPolicy", "RoleBinding", "ClusterRole", "Namespace", "ServiceAccount"} <= split.full_kinds
    for resource in scan.resources:
        lean = parallel._lean(resource, split)
        body, kept = resource.body, lean.body
        # (kubeadm and kubelet configuration files have no metadata)
        assert kept.get("metadata") == body.get("metadata")
        assert kept.positions.get("metadata") == body.positions.get("metadata")
        if resource.kind in ("Pod", "DaemonSet", "StatefulSet", "Job", "CronJob"):
            assert set(kept) == set(body)
        elif resource.kind in split.full_kinds and resource.kind != "Deployment":
            assert kept is body
        elif resource.kind == "Deployment":  # workloads travel without their containers' bodies
            template, lean_template = body["spec"]["template"], kept["spec"]["template"]
            assert lean_template["metadata"] == template["metadata"]
            assert [c["name"] for c in lean_template["spec"]["containers"]] == \
                [c["name"] for c in template["spec"]["containers"]]
            # ...but their name and what main-process rules read of containers: the resource rules
            # (LimitRanges), the attack graph (escapes, ports, mounts, an API server's flags)
            read = {"resources", "securityContext", "ports", "volumeMounts", "command", "args"}
            assert split.container_fields == read and not split.whole_containers
            for container, lean_container in zip(template["spec"]["containers"], lean_template["spec"]["containers"]):
                assert set(lean_container) == ({"name"} | read) & set(container)
                assert all(lean_container.get(key) == container.get(key) for key in read)
            assert lean_template["spec"].positions == template["spec"].positions
