"""RBAC beyond escalation: the new grant permissions (graded by where a grant reaches), service
accounts no binding names, and subjects holding many roles."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import CoverageGap, Severity
from kaudit.ruleset import load_builtin_rules
from kaudit.scan import rules_affected
from kaudit.sources.manifests import load_manifests

from .conftest import CliResult, every_fact

Kaudit = Callable[..., CliResult]
RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}
BOOTSTRAP = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kubernetes-bootstrap-rbac-v1.36.yaml"
RBAC = "rbac.authorization.k8s.io/v1"


def sa(name: str, namespace: str | None = "shop") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def binding(name: str, subjects: Any, role: str = "view", role_kind: str = "ClusterRole",
            namespace: str | None = None) -> dict[str, Any]:
    kind = "RoleBinding" if namespace or role_kind == "Role" else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}}


def role(kind: str, name: str, rules: list[Any], namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules}


def account(name: str, namespace: str = "shop") -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def findings(tmp_path: Path, objects: list[Any], rule_id: str, params: dict[str, Any] | None = None,
             *files: Path) -> list[Any]:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    rule = RULES[rule_id].with_params(params) if params else RULES[rule_id]
    result = run([rule], Inventory(load_manifests([str(f) for f in (*files, path)]).resources))
    assert not result.errors
    return [f for f in result.findings if f.rule == rule_id]


# --- service accounts no binding names ------------------------------------------------------------

UNBOUND = "unbound-service-account"
OTHER = binding("other", [account("someone-else")])


@pytest.mark.parametrize("subjects, bound", [
    ([account("ci")], True),
    ([{"kind": "ServiceAccount", "name": "ci"}], False),  # a ClusterRoleBinding subject needs its namespace
    ([{"kind": "User", "name": "system:serviceaccount:shop:ci"}], True),  # its username
    ([{"kind": "Group", "name": "system:serviceaccounts"}], True),  # every account
    ([{"kind": "Group", "name": "system:serviceaccounts:shop"}], True),  # every account of its namespace
    ([{"kind": "Group", "name": "system:serviceaccounts:staging"}], False),
    ([{"kind": "Group", "name": "system:authenticated"}], False),  # everyone's group names no account
    ([account("ci", "staging")], False),
    ([{"kind": "User", "name": "ci"}], False),
    ([None, 5, "ci", {"kind": "ServiceAccount", "name": 7}], False),  # malformed entries name nobody
])
def test_which_subjects_bind_an_account(tmp_path: Path, subjects: Any, bound: bool) -> None:
    found = findings(tmp_path, [sa("ci"), binding("b", subjects)], UNBOUND)
    assert (found == []) == bound


def test_accounts_without_namespace_are_bound_by_the_rolebindings_of_their_folder(tmp_path: Path) -> None:
    # objects without metadata.namespace in one folder are applied to one namespace together
    (tmp_path / "app").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "app" / "sa.yaml").write_text(yaml.safe_dump(sa("ci", None)))
    local = binding("ci", [{"kind": "ServiceAccount", "name": "ci"}], "r", "Role")
    (tmp_path / "other" / "rb.yaml").write_text(yaml.safe_dump(local))
    files = [str(tmp_path / "app" / "sa.yaml"), str(tmp_path / "other" / "rb.yaml")]
    assert len(run([RULES[UNBOUND]], Inventory(load_manifests(files).resources)).findings) == 1
    (tmp_path / "app" / "rb.yaml").write_text(yaml.safe_dump(local))
    files.append(str(tmp_path / "app" / "rb.yaml"))
    assert run([RULES[UNBOUND]], Inventory(load_manifests(files).resources)).findings == []


def test_a_scan_without_bindings_says_nothing(tmp_path: Path) -> None:
    assert findings(tmp_path, [sa("ci"), role("ClusterRole", "r", [])], UNBOUND) == []


def test_the_default_account_is_never_reported(tmp_path: Path) -> None:
    assert findings(tmp_path, [sa("default"), OTHER], UNBOUND) == []


def test_a_service_account_kind_of_another_api_group_is_not_judged(tmp_path: Path) -> None:
    lookalike = {**sa("ci"), "apiVersion": "iam.example.com/v1"}
    assert findings(tmp_path, [lookalike, OTHER], UNBOUND) == []


WORKLOADS = [
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
     "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {
         "serviceAccountName": "ci", "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
     "spec": {"serviceAccount": "ci", "containers": [{"name": "c", "image": "i"}]}},  # the deprecated field
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d", "namespace": "shop"},
     "spec": {"template": {"spec": {"serviceAccountName": "ci", "containers": [{"name": "c", "image": "i"}]}}}},
]


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["kind"])
def test_an_account_a_workload_runs_as_is_reported_only_on_request(tmp_path: Path, workload: Any) -> None:
    assert findings(tmp_path, [sa("ci"), workload, OTHER], UNBOUND) == []
    [found] = findings(tmp_path, [sa("ci"), workload, OTHER], UNBOUND, {"include-used": True})
    assert f"though {workload['kind']} {workload['metadata']['name']} runs as it" in found.message
    assert found.severity == Severity.INFO and found.path == ("metadata", "name")


def test_a_workload_in_another_namespace_does_not_use_the_account(tmp_path: Path) -> None:
    elsewhere = {**WORKLOADS[1], "metadata": {"name": "p", "namespace": "staging"}}
    [found] = findings(tmp_path, [sa("ci"), elsewhere, OTHER], UNBOUND)
    assert "no workload of the scan runs as it" in found.message


def test_the_bootstrap_policys_binding_of_every_account_does_not_bind_one(tmp_path: Path) -> None:
    # system:service-account-issuer-discovery binds system:serviceaccounts in every cluster
    [found] = findings(tmp_path, [sa("lonely")], UNBOUND, None, BOOTSTRAP)
    assert found.resource.name == "lonely"
    # the same group bound by the cluster's owner does bind it
    assert findings(tmp_path, [sa("lonely"), binding("all", [{"kind": "Group", "name": "system:serviceaccounts"}])],
                    UNBOUND, None, BOOTSTRAP) == []


def test_an_account_added_to_a_bootstrap_binding_is_bound(tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(BOOTSTRAP.read_text())
            if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "system:service-account-issuer-discovery"]
    docs[0]["subjects"].append(account("lonely"))
    assert findings(tmp_path, [sa("lonely"), *docs], UNBOUND) == []


def test_a_cluster_scan_that_could_not_read_bindings_does_not_run_it() -> None:
    gap = CoverageGap("rolebindings.rbac.authorization.k8s.io", "RoleBinding", None, "forbidden", "403")
    not_evaluated, _ = rules_affected([RULES[UNBOUND], RULES["subject-with-many-roles"]], [gap])
    assert {rule for rule, _ in not_evaluated} == {UNBOUND, "subject-with-many-roles"}


# --- subjects holding many roles ------------------------------------------------------------------

MANY = "subject-with-many-roles"


def test_distinct_roles_are_counted_and_the_finding_is_on_the_first_binding(tmp_path: Path) -> None:
    objects = [binding(f"b{i}", [None, {"kind": "User", "name": "alice"}], f"r{i}") for i in range(3)]
    objects += [binding("again", [{"kind": "User", "name": "alice"}], "r0", namespace="shop"),  # r0 again
                role("Role", "r0", [], "shop"),
                binding("local", [{"kind": "User", "name": "alice"}], "r0", "Role", "shop"),  # Role shop/r0: another
                binding("local", [{"kind": "User", "name": "alice"}], "r0", "Role", "staging")]
    assert findings(tmp_path, objects, MANY, {"min-roles": 6}) == []
    [found] = findings(tmp_path, objects, MANY)
    assert found.resource.name == "b0" and found.path == ("subjects", 1) and found.subject == "User:alice"
    assert "User alice holds 5 distinct roles (threshold 5) through 6 bindings: ClusterRole r0, ClusterRole r1, " \
           "ClusterRole r2, Role shop/r0, Role staging/r0" in found.message
    assert found.severity == Severity.LOW


def test_an_accounts_groups_count_but_everyones_do_not(tmp_path: Path) -> None:
    objects = [binding("own", [account("ci")], "r0"),
               binding("all-sa", [{"kind": "Group", "name": "system:serviceaccounts"}], "r1"),
               binding("ns-sa", [{"kind": "Group", "name": "system:serviceaccounts:shop"}], "r2"),
               binding("other-ns", [{"kind": "Group", "name": "system:serviceaccounts:staging"}], "r3"),
               binding("everyone", [{"kind": "Group", "name": "system:authenticated"}], "r4")]
    [*found] = findings(tmp_path, objects, MANY, {"min-roles": 3})
    assert [(f.resource.name, f.subject) for f in found] == [("own", "ServiceAccount:shop:ci")]
    assert "3 distinct roles" in found[0].message and "2 of them through its groups" in found[0].message


def test_a_binding_to_a_missing_role_kind_counts_nothing(tmp_path: Path) -> None:
    objects = [binding(f"b{i}", [{"kind": "User", "name": "alice"}], f"r{i}", "Role") for i in range(2)]
    objects[1]["kind"] = "ClusterRoleBinding"  # a ClusterRoleBinding cannot refer to a Role
    objects[1]["metadata"].pop("namespace", None)
    objects.append({**binding("bad", [{"kind": "User", "name": "alice"}]), "roleRef": "view"})
    found = findings(tmp_path, objects, MANY, {"min-roles": 2})
    assert found == []


def test_the_bootstrap_policy_and_the_control_plane_hold_many_roles_without_a_finding(tmp_path: Path) -> None:
    mine = [binding(f"ci-{i}", [account("ci")], f"r{i}") for i in range(3)]
    # with the bootstrap's default bindings (system:serviceaccounts, system:authenticated) an account
    # would hold 3 + 4 roles: the defaults do not count
    assert findings(tmp_path, mine, MANY, {"min-roles": 4}, BOOTSTRAP) == []
    assert findings(tmp_path, [], MANY, {"min-roles": 2}, BOOTSTRAP) == []
    shown = findings(tmp_path, [], MANY, {"min-roles": 2, "include-system-subjects": True}, BOOTSTRAP)
    assert shown == []  # a default binding's subjects are the platform's, counted for no one


@pytest.mark.parametrize("subjects", [None, "alice", {"kind": "User"}, [[]], [{"kind": "User", "name": None}]])
def test_hostile_subjects_never_raise(tmp_path: Path, subjects: Any) -> None:
    objects = [binding("b", subjects), sa("ci")]
    assert findings(tmp_path, objects, MANY, {"min-roles": 2}) == []
    findings(tmp_path, objects, UNBOUND)


# --- the new grant permissions --------------------------------------------------------------------

def scan(kaudit: Kaudit, tmp_path: Path, objects: list[Any]) -> list[dict[str, Any]]:
    path = tmp_path / "rbac.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    result = kaudit("scan", str(path), "-f", "json", "--fail-on", "never")
    assert result.code == 0, result.err
    return every_fact(result.json()["findings"])


CONFIGMAPS = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}


@pytest.mark.parametrize("objects, severity, words", [
    ([role("ClusterRole", "cm", [CONFIGMAPS]), binding("b", [account("a")], "cm")], "high", "reaching kube-system"),
    ([role("ClusterRole", "cm", [CONFIGMAPS]), binding("b", [account("a")], "cm", namespace="kube-system")],
     "high", "reaching kube-system"),
    ([role("ClusterRole", "cm", [CONFIGMAPS]), binding("b", [account("a")], "cm", namespace="shop")],
     "medium", "outside kube-system"),
    # one holder in kube-system is enough
    ([role("ClusterRole", "cm", [CONFIGMAPS]), binding("b", [account("a")], "cm", namespace="shop"),
      binding("c", [account("b")], "cm", namespace="kube-system")], "high", "reaching kube-system"),
    ([role("ClusterRole", "cm", [CONFIGMAPS])], "medium", "reaching kube-system"),  # latent, made to bind anywhere
    ([role("Role", "cm", [CONFIGMAPS], "kube-system")], "medium", "reaching kube-system"),  # latent
    ([role("Role", "cm", [CONFIGMAPS], "shop")], "low", "outside kube-system"),  # latent and elsewhere
    ([role("ClusterRole", "cm", [{**CONFIGMAPS, "resourceNames": ["coredns"]}]), binding("b", [account("a")], "cm")],
     "low", "only on the objects named coredns"),
])
def test_configmap_writes_are_graded_by_whether_they_reach_kube_system(
        kaudit: Kaudit, tmp_path: Path, objects: list[Any], severity: str, words: str) -> None:
    [found] = [f for f in scan(kaudit, tmp_path, objects) if f["rule"] == "rbac-configmaps-write"]
    assert found["severity"] == severity and words in found["message"]
    assert found["resource"]["kind"] in ("Role", "ClusterRole") and found["path"] == "rules[0]"


def test_a_builtin_role_bound_in_kube_system_is_high_on_the_binding(kaudit: Kaudit, tmp_path: Path) -> None:
    found = [f for f in scan(kaudit, tmp_path, [binding("ops", [account("a")], "edit", namespace="kube-system"),
                                                binding("dev", [account("a")], "edit", namespace="shop")])
             if f["rule"] == "rbac-configmaps-write"]
    assert {(f["resource"]["name"], f["path"], f["severity"]) for f in found} == {
        ("ops", "roleRef", "high"), ("dev", "roleRef", "medium")}


def test_one_rule_granting_several_dangerous_things_is_one_finding(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = [{"apiGroups": ["", "networking.k8s.io", "events.k8s.io"],
              "resources": ["secrets", "configmaps", "events", "networkpolicies"], "verbs": ["*"]}]
    path = tmp_path / "rbac.yaml"
    path.write_text(yaml.safe_dump_all([role("ClusterRole", "x", rules), binding("b", [account("a")], "x")]))
    report = kaudit("scan", str(path), "-f", "json", "--fail-on", "never").json()
    assert len(report["findings"]) == 1
    leader = report["findings"][0]
    assert {leader["rule"], *(j["rule"] for j in leader["joined"])} >= {
        "rbac-wildcard", "rbac-secrets-read", "rbac-destructive-delete", "rbac-events-delete",
        "rbac-configmaps-write", "rbac-networkpolicies-write"}


@pytest.mark.parametrize("rule, verbs, resource, group, fires", [
    ("rbac-destructive-delete", ["deletecollection"], "secrets", "", True),
    ("rbac-destructive-delete", ["delete"], "cronjobs", "batch", True),
    ("rbac-destructive-delete", ["delete"], "persistentvolumeclaims", "", True),
    ("rbac-destructive-delete", ["delete"], "persistentvolumes", "", False),
    ("rbac-destructive-delete", ["delete"], "pods/log", "", False),
    ("rbac-destructive-delete", ["delete"], "deployments", "extensions", False),
    ("rbac-events-delete", ["delete"], "events", "", True),
    ("rbac-events-delete", ["deletecollection"], "events", "events.k8s.io", True),
    ("rbac-events-delete", ["create", "patch"], "events", "", False),
    ("rbac-networkpolicies-write", ["patch"], "networkpolicies", "networking.k8s.io", True),
    ("rbac-networkpolicies-write", ["create"], "globalnetworkpolicies", "crd.projectcalico.org", True),
    ("rbac-networkpolicies-write", ["list"], "networkpolicies", "networking.k8s.io", False),
    ("rbac-configmaps-write", ["create"], "configmaps", "", False),
    ("rbac-configmaps-write", ["update"], "*", "", True),
])
def test_each_permission_reads_the_request_as_the_authorizer(
        tmp_path: Path, rule: str, verbs: list[str], resource: str, group: str, fires: bool) -> None:
    objects = [role("ClusterRole", "r", [{"apiGroups": [group], "resources": [resource], "verbs": verbs}]),
               binding("b", [account("a")], "r")]
    assert bool(findings(tmp_path, objects, rule)) == fires


def test_a_rolebinding_grants_delete_of_its_own_namespace_only(tmp_path: Path) -> None:
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["delete"]}]
    objects = [role("ClusterRole", "ns-deleter", rules), binding("b", [account("a")], "ns-deleter", namespace="shop")]
    [found] = findings(tmp_path, objects, "rbac-destructive-delete")
    assert "in namespace shop" in found.message


def test_kubernetes_own_bootstrap_policy_still_gives_zero_findings(kaudit: Kaudit) -> None:
    result = kaudit("scan", str(BOOTSTRAP), "-f", "json")
    assert result.code == 0 and result.json()["findings"] == []
    # not even hidden ones from the hygiene rules: the defaults bind, and are counted for, no one
    shown = kaudit("scan", str(BOOTSTRAP), "-f", "json", "--include-platform").json()["findings"]
    assert not {f["rule"] for f in every_fact(shown)} & {UNBOUND, MANY, "network-policy-egress-to-kubelet"}
