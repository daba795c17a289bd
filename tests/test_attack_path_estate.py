"""The attack-path test estate (issue 17) and its answer key, checked before the engine exists.

tests/data/attack-paths/expected.yaml names every step of every known path and every near-miss
with its evidence (file, object, field path, line). These tests hold the key to the estate:
each evidence field exists at exactly that line as kaudit's own loader reads it, each path is a
chain from its entry to its target through objects that are in the estate, and the estate scans
without input errors. The engine's tests will compare `kaudit paths` with the same file.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from kaudit.attack.model import EDGE_VERBS
from kaudit.model import Resource, format_path
from kaudit.sources.manifests import load_manifests
from kaudit.sources.yamldoc import position_of

from .conftest import CliResult

ESTATE = Path(__file__).parent / "data" / "attack-paths"
EXPECTED = ESTATE / "expected.yaml"
EDGE_KINDS = set(EDGE_VERBS) - {"holds"}  # "holds" leads into a hidden rule node, never a shown step
BOOTSTRAP_OBJECTS = {"ClusterRole/cluster-admin"}  # API-server defaults the estate binds to but does not declare
PATH_PART = re.compile(r'(?:^|\.)([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


@functools.cache
def expected() -> dict[str, Any]:
    with open(EXPECTED, encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@functools.cache
def estate() -> dict[tuple[str, str], Resource]:
    """Every object of the estate by (file relative to the estate, ResourceRef.describe())."""
    scan = load_manifests([str(ESTATE)])
    assert not scan.inputs.errors and not scan.inputs.warnings
    objects: dict[tuple[str, str], Resource] = {}
    for resource in scan.resources:
        assert resource.origin.file is not None
        key = (os.path.relpath(resource.origin.file, ESTATE), resource.ref.describe())
        assert key not in objects, f"{key} declared twice"
        objects[key] = resource
    return objects


def parse_path(text: str) -> tuple[str | int, ...]:
    """`spec.containers[0].image` -> ('spec', 'containers', 0, 'image'): format_path's inverse."""
    parts: list[str | int] = []
    end = 0
    for match in PATH_PART.finditer(text):
        assert match.start() == end, f"cannot read field path {text!r} at {end}"
        key, index, quoted = match.groups()
        parts.append(key if key is not None else int(index) if index is not None else yaml.safe_load(quoted))
        end = match.end()
    assert end == len(text) and parts, f"cannot read field path {text!r}"
    assert format_path(tuple(parts)) == text, f"{text!r} is not written as kaudit writes field paths"
    return tuple(parts)


def field_line(evidence: dict[str, Any]) -> int:
    """The line of the evidence's field in its object; fails when the object or the field is missing."""
    resource = estate().get((evidence["file"], evidence["object"]))
    assert resource is not None, f"no {evidence['object']} in {evidence['file']}"
    data: Any = resource.body
    position = None
    for part in parse_path(evidence["path"]):
        position = position_of(data, part)
        assert position is not None, f"{evidence['object']} has no {evidence['path']} (stops at {part!r})"
        data = data[part]
    assert position is not None and data is not None, f"{evidence['object']}: {evidence['path']} is empty"
    return position[0]


def every_evidence() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in expected()["paths"]:
        yield f"{path['id']}/entry", path["entry"]["evidence"]
        for number, step in enumerate(path["steps"], 1):
            found = step["evidence"]
            for part, evidence in enumerate(found if isinstance(found, list) else [found], 1):
                yield f"{path['id']}/step-{number}" + (f".{part}" if isinstance(found, list) else ""), evidence
    for miss in expected()["near_misses"]:
        for number, evidence in enumerate(miss["evidence"], 1):
            yield f"{miss['id']}/evidence-{number}", evidence


EVIDENCE = list(every_evidence())


@pytest.mark.parametrize("evidence", [e for _, e in EVIDENCE], ids=[name for name, _ in EVIDENCE])
def test_evidence_line_is_the_line_of_its_field(evidence: dict[str, Any]) -> None:
    assert field_line(evidence) == evidence["line"]


def test_field_paths_read_back_as_kaudit_writes_them() -> None:
    assert parse_path('metadata.annotations["kubernetes.io/x"]') == ("metadata", "annotations", "kubernetes.io/x")
    assert parse_path("spec.containers[0].ports[1].hostPort") == ("spec", "containers", 0, "ports", 1, "hostPort")
    for bad in ("spec..x", "spec.[0]", "spec.x[a]", ""):
        with pytest.raises(AssertionError):
            parse_path(bad)


def test_a_wrong_line_or_field_is_caught() -> None:
    """The check above can fail: a line one off, or a field the object does not have."""
    _, evidence = EVIDENCE[0]
    assert field_line(evidence) != evidence["line"] + 1
    with pytest.raises(AssertionError, match="has no"):
        field_line({**evidence, "path": "spec.noSuchField"})
    with pytest.raises(AssertionError, match="no Service/web/nothing"):
        field_line({**evidence, "object": "Service/web/nothing"})


def estate_node(node: str) -> bool:
    """An object node id names an object in the estate (or a bootstrap one); abstract ids pass."""
    if node.startswith(("crown:", "node-of:", "Group/system:serviceaccounts")) or node == "node:any":
        return True
    node = node.split("@", 1)[0]  # ClusterRole/NAME@NS: granted by a RoleBinding in NS
    return node in BOOTSTRAP_OBJECTS or any(described == node for _, described in estate())


def test_the_key_has_the_six_shapes_and_as_many_near_misses() -> None:
    key = expected()
    assert key["version"] == 2
    ids = [p["id"] for p in key["paths"]] + [m["id"] for m in key["near_misses"]]
    assert len(ids) == len(set(ids))
    assert len(key["paths"]) >= 6 and len(key["near_misses"]) >= 6
    shapes = {step["edge"] for path in key["paths"] for step in path["steps"]}
    # the six shapes: node escape to a DaemonSet token, exec, create-pods-as, impersonation
    # (a grant), a projected token, a token Secret
    assert {"escapes-to-node", "shares-node", "exec-into", "creates-pod-as", "mints-token", "secret-token"} <= shapes
    assert "impersonator" in " ".join(step["from"] for path in key["paths"] for step in path["steps"])


@pytest.mark.parametrize("path", expected()["paths"], ids=[p["id"] for p in expected()["paths"]])
def test_each_path_is_a_chain_from_its_entry_to_its_target(path: dict[str, Any]) -> None:
    steps = path["steps"]
    assert steps and path["target"].startswith("crown:")
    assert steps[0]["from"] == path["entry"]["node"] == path["entry"]["evidence"]["object"]
    for before, after in zip(steps, steps[1:]):
        assert before["to"] == after["from"], f"{path['id']}: {before['to']} does not lead to {after['from']}"
    assert steps[-1]["to"] == path["target"]
    visited = [steps[0]["from"]] + [s["to"] for s in steps]
    assert len(visited) == len(set(visited)), f"{path['id']} visits a node twice: not a shortest path"
    for step in steps:
        assert step["edge"] in EDGE_KINDS
        assert estate_node(step["from"]) and estate_node(step["to"]), step


@pytest.mark.parametrize("miss", expected()["near_misses"], ids=[m["id"] for m in expected()["near_misses"]])
def test_each_near_miss_names_an_edge_no_path_uses(miss: dict[str, Any]) -> None:
    absent = miss["absent"]
    assert absent["edge"] in EDGE_KINDS and miss["why"] and miss["evidence"]
    assert estate_node(absent["from"]) and estate_node(absent["to"]), absent
    assert miss["would_reach"].startswith("crown:")
    used = {(s["edge"], s["from"], s["to"]) for p in expected()["paths"] for s in p["steps"]}
    assert (absent["edge"], absent["from"], absent["to"]) not in used


def test_the_estate_scans_without_input_errors(kaudit: Callable[..., CliResult]) -> None:
    result = kaudit("scan", str(ESTATE), "-f", "json", "--fail-on", "never")
    assert result.code == 0, result.err
    report = result.json()
    inputs = report["inputs"]
    assert inputs["errors"] == [] and inputs["warnings"] == [] and report["ruleErrors"] == []
    # the answer key sits beside the manifests: read, and skipped as no Kubernetes object
    assert [Path(s["file"]).name for s in inputs["skipped"]] == ["expected.yaml"]
    assert inputs["resources"] == len(estate())
