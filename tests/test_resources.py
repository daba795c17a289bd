"""Requests, limits and the guard rails, by the API server's semantics (kaudit/analyzers/limits.py).

Each case is a container's own `resources`, the pod's, and the LimitRanges beside it; the answer is
which of the six container rules still fire. The API server fills a request from the container's
limit, pod-level resources stand for cpu and memory, and LimitRanger fills what the LimitRanges of
the pod's own namespace give (a stored LimitRange's default takes its max, its defaultRequest its
default, then its min).
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from kaudit import parallel
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import CoverageGap
from kaudit.ruleset import load_builtin_rules
from kaudit.scan import rules_affected
from kaudit.sources.manifests import load_manifests

CONTAINER_RULES = ("missing-cpu-request", "missing-memory-request", "missing-ephemeral-storage-request",
                   "missing-cpu-limit", "missing-memory-limit", "missing-ephemeral-storage-limit")
NAMESPACE_RULES = ("namespace-without-limit-range", "namespace-without-resource-quota")
RULES = {rule.id: rule for rule in load_builtin_rules() if rule.id in CONTAINER_RULES + NAMESPACE_RULES}
EVERYTHING = set(CONTAINER_RULES)
REQUESTS = {"missing-cpu-request", "missing-memory-request", "missing-ephemeral-storage-request"}
LIMITS = {"missing-cpu-limit", "missing-memory-limit", "missing-ephemeral-storage-limit"}


def pod(resources: str = "{}", *, namespace: str = "shop", pod_resources: str = "", extra: str = "") -> str:
    meta = f"{{name: app, namespace: {namespace}}}" if namespace else "{name: app}"
    pod_level = f"\n  resources: {pod_resources}" if pod_resources else ""
    return f"""---
apiVersion: v1
kind: Pod
metadata: {meta}
spec:{pod_level}{extra}
  containers:
    - {{name: app, image: "registry.example.com/app:1.0", resources: {resources}}}
"""


def limit_range(items: str, *, name: str = "defaults", namespace: str = "shop", api_version: str = "v1") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    return f"---\napiVersion: {api_version}\nkind: LimitRange\nmetadata: {meta}\nspec:\n  limits: {items}\n"


def scan(tmp_path: Path, *files: tuple[str, str], rules: tuple[str, ...] = CONTAINER_RULES) -> list[Any]:
    for name, text in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    loaded = load_manifests([str(tmp_path)])
    assert not loaded.inputs.errors
    result = run([RULES[r] for r in rules], Inventory(loaded.resources))
    assert not result.errors, result.errors
    return result.findings


def fired(tmp_path: Path, text: str) -> set[str]:
    return {finding.rule for finding in scan(tmp_path, ("app.yaml", text))}


CASES = [
    # (case, the objects, the rules that still fire)
    ("nothing set", pod(), EVERYTHING),
    ("limits only: each request takes its limit",
     pod("{limits: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}"), set()),
    ("requests only: no limit follows from a request",
     pod("{requests: {cpu: 100m, memory: 128Mi, ephemeral-storage: 1Gi}}"), LIMITS),
    ("null and wrong-typed quantities are unset",
     pod("{requests: {cpu: null, memory: true, ephemeral-storage: ''}, limits: [cpu]}"), EVERYTHING),
    ("LimitRange default only: the defaultRequest takes the default",
     pod() + limit_range("[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]"),
     set()),
    ("LimitRange defaultRequest only: requests, no limits",
     pod() + limit_range("[{type: Container, defaultRequest: {cpu: 100m, memory: 128Mi, ephemeral-storage: 1Gi}}]"),
     LIMITS),
    ("LimitRange max only: the default limit takes the max, the request the default",
     pod() + limit_range("[{type: Container, max: {cpu: '2', memory: 1Gi}}]"),
     {"missing-ephemeral-storage-request", "missing-ephemeral-storage-limit"}),
    ("LimitRange min only: the default request takes the min, no limit",
     pod() + limit_range("[{type: Container, min: {cpu: 50m, memory: 64Mi}}]"),
     {"missing-ephemeral-storage-request"} | LIMITS),
    ("LimitRange in another namespace", pod() + limit_range(
        "[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]", namespace="other"),
     EVERYTHING),
    ("two LimitRanges each give what they have",
     pod() + limit_range("[{type: Container, default: {cpu: 500m}}]", name="cpu")
     + limit_range("[{type: Container, defaultRequest: {memory: 128Mi}}]", name="memory"),
     {"missing-ephemeral-storage-request", "missing-memory-limit", "missing-ephemeral-storage-limit"}),
    ("a Pod item bounds the pod and gives containers no default",
     pod() + limit_range("[{type: Pod, max: {cpu: '2', memory: 1Gi}, min: {cpu: 10m}}]"), EVERYTHING),
    ("a PersistentVolumeClaim item is about claims",
     pod() + limit_range("[{type: PersistentVolumeClaim, max: {storage: 10Gi}}]"), EVERYTHING),
    ("a LimitRange of another API group is not Kubernetes'", pod() + limit_range(
        "[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]",
        api_version="example.com/v1"), EVERYTHING),
    ("malformed LimitRange items give nothing",
     pod() + limit_range("[null, 5, {type: Container, default: [cpu]}, {type: Container, max: {cpu: null}}]"),
     EVERYTHING),
    ("pod-level requests stand for cpu and memory requests",
     pod(pod_resources="{requests: {cpu: '1', memory: 1Gi}}"),
     {"missing-ephemeral-storage-request"} | LIMITS),
    ("pod-level limits stand for cpu and memory, requests and limits",
     pod(pod_resources="{limits: {cpu: '1', memory: 1Gi}}"),
     {"missing-ephemeral-storage-request", "missing-ephemeral-storage-limit"}),
    ("pod-level ephemeral storage does not exist",
     pod(pod_resources="{requests: {ephemeral-storage: 1Gi}, limits: {ephemeral-storage: 1Gi}}"), EVERYTHING),
    ("pod-level resources are not supported on Windows pods",
     pod(pod_resources="{limits: {cpu: '1', memory: 1Gi}}", extra="\n  os: {name: windows}"), EVERYTHING),
]


@pytest.mark.parametrize("text, expected", [(text, expected) for _, text, expected in CASES],
                         ids=[case for case, _, _ in CASES])
def test_what_a_container_ends_up_with(tmp_path: Path, text: str, expected: set[str]) -> None:
    assert fired(tmp_path, text) == expected


def test_the_message_names_the_limit_range_that_falls_short(tmp_path: Path) -> None:
    text = pod() + limit_range("[{type: Container, default: {memory: 256Mi}}]", name="memory-defaults") \
        + limit_range("[{type: Pod, max: {cpu: '4'}}]", name="pod-ceiling")
    messages = {f.rule: f.message for f in scan(tmp_path, ("app.yaml", text))}
    assert messages["missing-cpu-limit"].endswith("(LimitRange memory-defaults sets a default memory limit "
                                                  "but no cpu one)")
    # the request is the default limit: SetDefaults_LimitRangeItem
    assert messages["missing-cpu-request"].endswith("(LimitRange memory-defaults sets a default memory request "
                                                    "but no cpu one)")
    assert "missing-memory-limit" not in messages and "missing-memory-request" not in messages
    # only LimitRanges that give none are named as giving none
    lone = pod() + limit_range("[{type: Pod, max: {cpu: '4'}}]", name="pod-ceiling")
    assert {f.message for f in scan(tmp_path / "b", ("app.yaml", lone)) if f.rule == "missing-cpu-limit"} == {
        'container "app" has no CPU limit: resources.limits.cpu is unset (LimitRange pod-ceiling sets no default '
        'limit)'}
    # and without any LimitRange, the message says nothing of one
    bare = scan(tmp_path / "c", ("app.yaml", pod()))
    assert all("LimitRange" not in f.message for f in bare)


def test_the_finding_is_at_the_field_to_set(tmp_path: Path) -> None:
    findings = scan(tmp_path, ("app.yaml", pod("{requests: {cpu: 100m}}")))
    [finding] = [f for f in findings if f.rule == "missing-cpu-limit"]
    assert finding.path == ("spec", "containers", 0, "resources", "limits", "cpu")
    assert finding.location.line == 7  # the container's line: `resources.limits` does not exist yet


WORKLOADS = {
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1",
    "CronJob": "batch/v1", "ReplicaSet": "apps/v1",
}


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_every_workload_kind_and_init_containers_get_the_namespace_defaults(tmp_path: Path, kind: str) -> None:
    spec = textwrap.indent(textwrap.dedent("""
        restartPolicy: OnFailure
        initContainers:
          - {name: init, image: "registry.example.com/init:1.0"}
        containers:
          - {name: app, image: "registry.example.com/app:1.0"}
        ephemeralContainers:
          - {name: debug, image: "busybox:1.36.1"}
        """).strip(), "      ")
    template = f"  template:\n    spec:\n{spec}\n"
    if kind == "CronJob":
        template = "  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n" + textwrap.indent(template, "    ")
    workload = f"---\napiVersion: {WORKLOADS[kind]}\nkind: {kind}\nmetadata: {{name: app, namespace: shop}}\nspec:\n" \
               + template
    findings = scan(tmp_path / "alone", ("app.yaml", workload))
    # init and app containers are judged; the ephemeral one cannot set resources and is not
    assert {(f.rule, f.container) for f in findings} == {(r, c) for r in CONTAINER_RULES for c in ("init", "app")}
    covered = workload + limit_range(
        "[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]")
    assert scan(tmp_path / "covered", ("app.yaml", covered)) == []


def test_a_limit_range_without_a_namespace_applies_to_its_own_folder_only(tmp_path: Path) -> None:
    defaults = limit_range("[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]",
                           namespace="")
    findings = scan(tmp_path, ("a/app.yaml", pod(namespace="")), ("a/limits.yaml", defaults),
                    ("b/app.yaml", pod(namespace="")), ("c/app.yaml", pod(namespace="shop")))
    folders = {Path(f.location.file or "").parent.name for f in findings}
    # a/ is covered by its own LimitRange; b/ is another folder (maybe another namespace); c/'s pod
    # names namespace shop, which a namespace-less LimitRange applied elsewhere says nothing about
    assert folders == {"b", "c"}


def test_default_namespace_puts_the_limit_range_and_the_pods_in_one_namespace(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "app.yaml").write_text(pod(namespace=""))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "limits.yaml").write_text(
        limit_range("[{type: Container, default: {cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}]",
                    namespace=""))
    loaded = load_manifests([str(tmp_path)], default_namespace="shop")
    result = run([RULES[r] for r in CONTAINER_RULES], Inventory(loaded.resources))
    assert result.findings == [] and not result.errors


GUARD_CASES = [
    ("no LimitRange, no quota", "", set(NAMESPACE_RULES)),
    ("both bound cpu and memory",
     limit_range("[{type: Container, default: {cpu: 1, memory: 1Gi}}]")
     + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\n"
       "spec: {hard: {requests.cpu: '4', limits.memory: 8Gi}}\n", set()),
    ("a ratio bounds nothing, object counts cap no compute",
     limit_range("[{type: Container, maxLimitRequestRatio: {cpu: 2, memory: 2}}]")
     + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\nspec: {hard: {pods: '10'}}\n",
     set(NAMESPACE_RULES)),
    ("malformed guard rails bound nothing",
     limit_range("null") + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\n"
                           "spec: {hard: [cpu], scopes: 5}\n", set(NAMESPACE_RULES)),
    ("a scoped quota does not cap the namespace",
     limit_range("[{type: Pod, max: {cpu: 2, memory: 2Gi}}]")
     + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\n"
       "spec: {hard: {cpu: '4', memory: 8Gi}, scopes: [NotTerminating]}\n", {"namespace-without-resource-quota"}),
    ("guard rails of another namespace",
     limit_range("[{type: Container, default: {cpu: 1, memory: 1Gi}}]", namespace="other")
     + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: other}\n"
       "spec: {hard: {cpu: '4', memory: 8Gi}}\n", set(NAMESPACE_RULES)),
]


@pytest.mark.parametrize("text, expected", [(text, expected) for _, text, expected in GUARD_CASES],
                         ids=[case for case, _, _ in GUARD_CASES])
def test_namespace_guard_rails(tmp_path: Path, text: str, expected: set[str]) -> None:
    findings = scan(tmp_path, ("app.yaml", pod() + text), rules=NAMESPACE_RULES)
    assert {f.rule for f in findings} == expected
    assert all(f.resource.kind == "Namespace" and f.resource.name == "shop" for f in findings)


def test_a_guard_rail_message_says_what_is_missing(tmp_path: Path) -> None:
    text = pod() + limit_range("[{type: Container, default: {memory: 1Gi}}]", name="memory-only") \
        + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: counts, namespace: shop}\n" \
          "spec: {hard: {pods: '9'}}\n" \
        + "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: batch, namespace: shop}\n" \
          "spec: {hard: {cpu: '4', memory: 8Gi}, scopes: [Terminating]}\n"
    messages = {f.rule: f.message for f in scan(tmp_path, ("app.yaml", text), rules=NAMESPACE_RULES)}
    assert messages == {
        "namespace-without-limit-range": 'Namespace "shop" runs 1 workload(s) (such as Pod/shop/app) but its '
                                         'LimitRange memory-only sets no default, min or max for cpu',
        "namespace-without-resource-quota": 'Namespace "shop" runs 1 workload(s) (such as Pod/shop/app) but its '
                                            'ResourceQuotas (batch, counts) set no hard limit on cpu or memory for '
                                            'all its pods (batch: scoped, it counts only the pods it selects)'}


def test_the_resource_rules_run_on_the_whole_inventory_and_read_only_resources() -> None:
    split = parallel.split_rules(list(RULES.values()))
    assert not split.local and {r.id for r in split.main} == set(RULES)
    assert {"LimitRange", "ResourceQuota"} <= split.full_kinds
    assert split.container_fields == {"resources"} and not split.whole_containers


def test_a_cluster_that_hides_its_limit_ranges_leaves_the_container_rules_unjudged() -> None:
    gap = CoverageGap("limitranges", "LimitRange", None, "forbidden", "403")
    not_evaluated, partial = rules_affected(list(RULES.values()), [gap])
    assert {rule for rule, _ in not_evaluated} == set(CONTAINER_RULES) | {"namespace-without-limit-range"}
    assert partial == []


def test_a_missing_request_with_no_limit_either_is_one_finding_on_the_limit(tmp_path: Path) -> None:
    from kaudit.scan import ScanRequest, scan_manifests

    (tmp_path / "app.yaml").write_text(pod() + pod("{requests: {cpu: 100m}}").replace("name: app,", "name: other,"))
    report = scan_manifests(ScanRequest(targets=(str(tmp_path),), fail_on="never"))
    ours = [f for f in report.active_findings if f.rule in CONTAINER_RULES]
    on_app = {(f.rule, tuple(j.rule for j in f.joined)) for f in ours if f.resource.name == "app"}
    assert on_app == {("missing-cpu-limit", ("missing-cpu-request",)),
                      ("missing-memory-limit", ("missing-memory-request",)),
                      ("missing-ephemeral-storage-limit", ("missing-ephemeral-storage-request",))}
    # a request without a limit: the limit finding alone, nothing to join
    on_other = {(f.rule, tuple(j.rule for j in f.joined)) for f in ours if f.resource.name == "other"}
    assert ("missing-cpu-limit", ()) in on_other and all(rule != "missing-cpu-request" for rule, _ in on_other)
