"""Issue 13: objects without a namespace are grouped by where they came from, never pooled.

Two projects' installs side by side (folders a/ and b/), neither naming a namespace: each folder is
applied to its own namespace (`kubectl apply -f a/`), so a NetworkPolicy, a RoleBinding or a
ServiceAccount of one folder says nothing about the other's objects. `-n NS` puts them all in NS,
as `kubectl apply -n NS` would. No finding is ever about a namespace nobody named.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from kaudit.scan import ScanRequest, scan_manifests
from kaudit.writers.json_report import to_dict

from .conftest import CliResult, scan_on_workers

Kaudit = Callable[..., CliResult]
Write = Callable[[str, str], Path]
Fact = tuple[str, str, str, str, str]  # rule, kind, namespace, name, fingerprint

DIGEST = "registry.example.com/web@sha256:" + "a" * 64
NETWORK_RULES = ("workload-not-isolated-ingress", "workload-not-isolated-egress", "namespace-without-network-policy",
                 "namespace-without-default-deny")


def deployment(name: str, *, account: str = "", namespace: str = "") -> str:
    meta = f"{{name: {name}{', namespace: ' + namespace if namespace else ''}}}"
    service_account = f"\n      serviceAccountName: {account}" if account else ""
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {meta}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:{service_account}
      containers:
        - {{name: web, image: "{DIGEST}"}}
"""


POLICY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
"""


ROLE = textwrap.dedent("""
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: secrets-reader}
    rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
    """)
BINDING = textwrap.dedent("""
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: app-reads-secrets}
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secrets-reader}
    subjects: [{kind: ServiceAccount, name: app}]
    """)
QUIET_ACCOUNT = textwrap.dedent("""
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: app}
    automountServiceAccountToken: false
    """)


@pytest.fixture
def projects(write: Write, tmp_path: Path) -> Path:
    """Project A: a Deployment and the NetworkPolicy that isolates it. Project B: a Deployment with
    the same labels and no policy. Neither names a namespace."""
    write("installs/a/app.yaml", deployment("web-a") + POLICY)
    write("installs/b/app.yaml", deployment("web-b"))
    return tmp_path / "installs"


def report(*targets: Path | str, **options: Any) -> dict[str, Any]:
    data = to_dict(scan_manifests(ScanRequest(targets=tuple(map(str, targets)), fail_on="never", **options)))
    data.pop("generatedAt")
    return data


def facts(data: dict[str, Any], rules: Iterable[str] = (), name: str = "") -> set[Fact]:
    """Every finding and every finding joined to another (one fact each), optionally of some rules
    or on one object."""
    found = set()
    for finding in data["findings"]:
        for fact in [finding, *finding.get("joined", [])]:
            resource = fact["resource"]
            if (not rules or fact["rule"] in rules) and (not name or resource["name"] == name):
                found.add((fact["rule"], resource["kind"], resource["namespace"] or "", resource["name"],
                           fact["fingerprint"]))
    return found


def rules_on(data: dict[str, Any], name: str) -> set[str]:
    return {rule for rule, _, _, _, _ in facts(data, name=name)}


def test_a_policy_in_one_folder_isolates_nothing_in_another(projects: Path) -> None:
    together = report(projects)
    alone = report(projects / "b")
    assert {"workload-not-isolated-ingress", "workload-not-isolated-egress"} <= rules_on(together, "web-b")
    assert facts(together, name="web-b") == facts(alone, name="web-b")  # exactly as when scanned alone
    assert not rules_on(together, "web-a") & {"workload-not-isolated-ingress", "workload-not-isolated-egress"}
    assert facts(together, name="web-a") == facts(report(projects / "a"), name="web-a")


def test_no_finding_is_about_a_namespace_nobody_named(projects: Path) -> None:
    data = report(projects)
    assert "(no namespace)" not in json.dumps(data["findings"])
    assert not [f for f in data["findings"] if f["resource"]["kind"] == "Namespace"]


def test_the_group_without_a_policy_is_reported_once_on_its_first_workload(projects: Path) -> None:
    data = report(projects, select=NETWORK_RULES)
    # B's: the namespace fact leads, its workload's facts join it (A's policy is no default deny)
    [finding] = [f for f in data["findings"] if f["resource"]["name"] == "web-b"]
    assert finding["rule"] == "namespace-without-network-policy"
    assert finding["resource"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": None, "name": "web-b"}
    assert finding["location"]["file"] == str(projects / "b" / "app.yaml") and finding["location"]["line"] == 4
    assert finding["message"].startswith(f"The namespace {projects / 'b'}/ is applied to (its objects set no "
                                         "metadata.namespace) runs 1 workload(s) (such as Deployment/web-b)")
    assert {j["rule"] for j in finding["joined"]} == {"namespace-without-default-deny",
                                                      "workload-not-isolated-ingress", "workload-not-isolated-egress"}


def test_a_sub_folder_is_a_group_of_its_own(write: Write, tmp_path: Path) -> None:
    write("app/policy.yaml", POLICY)
    write("app/web.yaml", deployment("web"))  # same folder, another file: applied together
    write("app/jobs/worker.yaml", deployment("worker"))
    data = report(tmp_path / "app", select=("workload-not-isolated-ingress",))
    assert not rules_on(data, "web")
    assert rules_on(data, "worker") == {"workload-not-isolated-ingress"}


def test_standard_input_is_one_group_apart_from_the_folders(write: Write, tmp_path: Path) -> None:
    from kaudit.cli import main

    write("a/app.yaml", deployment("web-a") + POLICY)
    out = tmp_path / "report.json"
    stdin = deployment("piped").encode()
    import io
    import sys

    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        assert main(["scan", "-", str(tmp_path / "a"), "-f", "json", "-o", str(out), "--fail-on", "never"]) == 0
    finally:
        sys.stdin = saved
    data = json.loads(out.read_text())
    assert "workload-not-isolated-ingress" in rules_on(data, "piped")
    assert not rules_on(data, "web-a") & {"workload-not-isolated-ingress", "namespace-without-network-policy"}


def test_a_rolebinding_grants_only_in_its_own_folder(write: Write, tmp_path: Path) -> None:
    write("a/rbac.yaml", ROLE)
    write("b/rbac.yaml", BINDING + deployment("web-b", account="app"))
    write("c/app.yaml", deployment("web-c", account="app"))
    together = report(tmp_path / "a", tmp_path / "b", tmp_path / "c")
    # B's binding names a Role B does not have: A's Role stays unbound (latent), as when A is alone
    assert facts(together, name="secrets-reader") == facts(report(tmp_path / "a"), name="secrets-reader")
    role_finding = next(f for f in together["findings"] if f["resource"]["name"] == "secrets-reader")
    assert "not bound in the scanned objects" in role_finding["message"]
    assert "workload-with-dangerous-permissions" not in rules_on(together, "web-b")
    assert "workload-with-dangerous-permissions" not in rules_on(together, "web-c")


def test_a_binding_without_namespace_grants_its_own_folder_s_workloads_only(write: Write, tmp_path: Path) -> None:
    write("b/rbac.yaml", ROLE + BINDING + deployment("web-b", account="app"))
    write("c/app.yaml", deployment("web-c", account="app"))
    together = report(tmp_path / "b", tmp_path / "c")
    assert "workload-with-dangerous-permissions" in rules_on(together, "web-b")
    assert "workload-with-dangerous-permissions" not in rules_on(together, "web-c")
    assert facts(together, name="web-c") == facts(report(tmp_path / "c"), name="web-c")


def test_a_pod_s_service_account_is_looked_up_in_its_own_folder(write: Write, tmp_path: Path) -> None:
    write("a/account.yaml", QUIET_ACCOUNT + deployment("web-a", account="app"))
    write("b/app.yaml", deployment("web-b", account="app"))
    together = report(tmp_path / "a", tmp_path / "b")
    assert "automount-service-account-token" not in rules_on(together, "web-a")
    assert "automount-service-account-token" in rules_on(together, "web-b")
    assert facts(together, name="web-b") == facts(report(tmp_path / "b"), name="web-b")


def test_same_name_in_two_folders_is_not_declared_twice(write: Write, tmp_path: Path) -> None:
    write("a/app.yaml", deployment("web"))
    write("b/app.yaml", deployment("web"))
    write("b/again.yaml", deployment("web"))
    warnings = report(tmp_path / "a", tmp_path / "b")["inputs"]["warnings"]
    twice = [w for w in warnings if "declared twice" in w["message"]]
    assert [w["file"] for w in twice] == [str(tmp_path / "b" / "app.yaml")]  # b/ only: one folder, one namespace


# --- -n / --default-namespace: the namespace the user applies to -----------------------------------

def test_n_puts_every_folder_in_that_namespace_as_kubectl_apply_n_would(projects: Path) -> None:
    data = report(projects, default_namespace="team-a")
    # one namespace now: A's policy selects B's pods too (same labels), as it would in the cluster
    assert not facts(data, rules=("workload-not-isolated-ingress", "workload-not-isolated-egress"))
    workloads = [f for f in data["findings"] if f["resource"]["kind"] == "Deployment"]
    assert workloads and all(f["resource"]["namespace"] == "team-a" for f in workloads)
    namespaces = [f for f in data["findings"] if f["resource"]["kind"] == "Namespace"]
    assert {f["resource"]["name"] for f in namespaces} == {"team-a"}  # implied by the objects -n placed there


def test_n_gives_the_findings_and_fingerprints_of_objects_written_with_it(projects: Path, write: Write,
                                                                           tmp_path: Path) -> None:
    for project, text in (("a", deployment("web-a", namespace="team-a") + POLICY.replace(
            "{name: web}", "{name: web, namespace: team-a}")), ("b", deployment("web-b", namespace="team-a"))):
        write(f"written/{project}/app.yaml", text)
    given = facts(report(projects, default_namespace="team-a"))
    written = facts(report(tmp_path / "written"))
    assert given == written and given


def test_n_sets_default_so_the_default_namespace_rule_sees_it(projects: Path) -> None:
    data = report(projects / "b", default_namespace="default", select=("default-namespace",))
    [finding] = data["findings"]
    assert finding["resource"]["name"] == "web-b" and finding["path"] == "metadata.namespace"
    assert finding["location"]["line"] == 4  # the field is not in the file: its parent, metadata


def test_n_leaves_cluster_scoped_objects_and_objects_with_a_namespace_as_written(write: Write,
                                                                                tmp_path: Path) -> None:
    write("m/all.yaml", """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: reader}
        rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: other}
        """)
    data = report(tmp_path / "m", default_namespace="team-a")
    resources = {f["resource"]["name"]: f["resource"]["namespace"] for f in data["findings"]}
    assert resources.get("reader", "absent") is None
    [warning] = [w for w in data["inputs"]["warnings"] if "ConfigMap" in w["message"]]
    assert warning["line"] == 6
    assert warning["message"] == ("ConfigMap/other/settings names namespace other, not team-a (-n): "
                                  "`kubectl apply -n team-a` would refuse it; judged in other, as written")


# --- the same with worker processes, and for the pre-commit hook ----------------------------------

@pytest.mark.parametrize("namespace", [None, "team-a"])
def test_worker_processes_group_as_one_process_does(projects: Path, namespace: str | None) -> None:
    request = ScanRequest(targets=(str(projects),), fail_on="never", default_namespace=namespace)
    single = to_dict(scan_manifests(request))
    spread = to_dict(scan_on_workers(request, 2))
    single.pop("generatedAt"), spread.pop("generatedAt")
    assert spread == single
    isolated_b = "workload-not-isolated-ingress" not in rules_on(spread, "web-b")
    assert isolated_b == (namespace is not None)


def test_worker_processes_find_a_pod_s_service_account_in_another_file_of_its_folder(write: Write,
                                                                                      tmp_path: Path) -> None:
    write("a/1-account.yaml", QUIET_ACCOUNT)
    write("a/2-app.yaml", deployment("web-a", account="app"))
    write("b/app.yaml", deployment("web-b", account="app"))
    request = ScanRequest(targets=(str(tmp_path),), fail_on="never", select=("automount-service-account-token",))
    single, spread = to_dict(scan_manifests(request)), to_dict(scan_on_workers(request, 2))
    assert [f["resource"]["name"] for f in spread["findings"]] == ["web-b"]
    assert spread["findings"] == single["findings"]


def test_a_per_file_scan_of_several_folders_judges_each_folder_as_alone(projects: Path, write: Write) -> None:
    # what the pre-commit hook does with the staged files of several projects
    write("installs/a/account.yaml", QUIET_ACCOUNT.replace("{name: app}", "{name: default}"))
    files = [projects / "a" / "account.yaml", projects / "a" / "app.yaml", projects / "b" / "app.yaml"]
    together = report(*files, per_file=True)
    apart = report(*files[:2], per_file=True)["findings"] + report(files[2], per_file=True)["findings"]
    assert facts(together) == facts({"findings": apart})
    assert "automount-service-account-token" in rules_on(together, "web-b")  # A's account is not B's
    assert not {rule for rule, *_ in facts(together)} & set(NETWORK_RULES)


# --- the command line --------------------------------------------------------------------------------

def test_the_command_line_takes_n_or_default_namespace_for_manifests(kaudit: Kaudit, projects: Path) -> None:
    for option in ("-n", "--default-namespace"):
        result = kaudit("scan", projects, option, "team-a", "-f", "json", "--fail-on", "never")
        assert result.code == 0, result.err
        assert {f["resource"]["namespace"] for f in result.json()["findings"]
                if f["resource"]["kind"] == "Deployment"} == {"team-a"}


@pytest.mark.parametrize("args, says", [
    (("-n", "team-a", "-n", "team-b"), "a manifest scan takes one namespace"),
    (("-n", "team-a", "--default-namespace", "team-b"), "a manifest scan takes one namespace"),
    (("-n", "Team_A"), "not a namespace name"),
    (("--default-namespace", ""), "not a namespace name"),
])
def test_a_bad_namespace_is_a_usage_error_without_traceback(kaudit: Kaudit, projects: Path, args: tuple[str, ...],
                                                           says: str) -> None:
    result = kaudit("scan", projects, *args)
    assert result.code == 2 and says in result.err and "Traceback" not in result.err


def test_a_baseline_made_with_n_matches_scans_with_n(kaudit: Kaudit, projects: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert kaudit("baseline", "create", projects, "-n", "team-a", "-o", baseline).code == 0
    result = kaudit("scan", projects, "-n", "team-a", "--baseline", baseline, "-f", "json")
    assert result.code == 0 and result.json()["findings"]
    assert all(f["suppressed"] and f["suppressed"]["by"] == "baseline" for f in result.json()["findings"])


def test_default_namespace_is_for_manifest_scans_only(kaudit: Kaudit) -> None:
    result = kaudit("scan", "--context", "prod", "--default-namespace", "team-a")
    assert result.code == 2 and "--default-namespace is for manifest scans" in result.err


def test_a_folder_is_one_group_however_its_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaudit.inventory import CLUSTER, Scope, scope_of
    from kaudit.model import STDIN_NAME, ResourceRef

    monkeypatch.chdir(tmp_path)
    pod = ResourceRef("v1", "Pod", "web")
    groups = {scope_of(pod, file) for file in ("a/x.yaml", "./a/y.yaml", str(tmp_path / "a" / "z.yaml"), "a/b/../w.yaml")}
    assert groups == {Scope(None, str(tmp_path / "a"))}
    assert len({scope_of(pod, "x.yaml"), scope_of(pod, STDIN_NAME), scope_of(pod, "a/sub/x.yaml")}) == 3
    assert scope_of(ResourceRef("rbac.authorization.k8s.io/v1", "ClusterRole", "r"), "a/x.yaml") == CLUSTER
    assert scope_of(ResourceRef("v1", "Pod", "web", "shop"), "a/x.yaml") == Scope("shop")
    assert scope_of(pod, None) == CLUSTER  # from a cluster: a namespaced object always has its namespace
