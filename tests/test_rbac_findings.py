"""Issue 12, section 2: RBAC findings sit where the fix goes, with the right scope and severity.

Each test quotes the issue's literal input. Findings are read from `kaudit scan -f json`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from kaudit.analyzers.rbac import PERMISSIONS, Subject, rbac_index
from kaudit.inventory import Inventory
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.sources.manifests import load_manifests

from .conftest import CliResult, every_fact

Kaudit = Callable[..., CliResult]
BOOTSTRAP_RBAC = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / \
    "kubernetes-bootstrap-rbac-v1.36.yaml"
RBAC = "apiVersion: rbac.authorization.k8s.io/v1\n"


def _findings(kaudit: Kaudit, tmp_path: Path, text: str, *extra: str) -> list[dict[str, Any]]:
    path = tmp_path / "rbac.yaml"
    path.write_text(text)
    result = kaudit("scan", str(path), *extra, "-f", "json")
    assert result.code in (0, 1), result.err
    return result.json()["findings"]  # type: ignore[no-any-return]


def _on(findings: list[dict[str, Any]], rule: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [f for f in every_fact(findings) if f["rule"] == rule and (kind is None or f["resource"]["kind"] == kind)]


def _role(kind: str, name: str, rules: str, namespace: str = "", labels: str = "") -> str:
    meta = f"{{name: {name}{', namespace: ' + namespace if namespace else ''}{', labels: ' + labels if labels else ''}}}"
    return f"---\n{RBAC}kind: {kind}\nmetadata: {meta}\nrules:\n{rules}"


def _binding(kind: str, name: str, role_kind: str, role: str, subject: str, namespace: str = "") -> str:
    meta = f"{{name: {name}{', namespace: ' + namespace if namespace else ''}}}"
    return (f"---\n{RBAC}kind: {kind}\nmetadata: {meta}\nsubjects: [{subject}]\n"
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role_kind}, name: {role}}}\n")


STAR = '  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}\n'
CI = "{kind: ServiceAccount, name: ci, namespace: shop}"


def test_unbound_wildcard_role_is_reported_on_its_rule_as_latent(kaudit: Kaudit, tmp_path: Path) -> None:
    findings = _findings(kaudit, tmp_path, _role("Role", "everything", STAR, "shop"), "--framework", "cis")
    wildcard = _on(findings, "rbac-wildcard")
    assert len(wildcard) == 1
    assert wildcard[0]["resource"]["kind"] == "Role" and wildcard[0]["path"] == "rules[0]"
    assert wildcard[0]["severity"] == "medium"  # high, one level lower: one `kubectl create rolebinding` away
    assert "not bound in the scanned objects" in wildcard[0]["message"]


def test_cis_5_1_3_fails_with_an_unbound_wildcard_role(kaudit: Kaudit, tmp_path: Path) -> None:
    path = tmp_path / "rbac.yaml"
    path.write_text(_role("ClusterRole", "everything", STAR))
    report = kaudit("scan", str(path), "-f", "json").json()
    cis = next(f for f in report["frameworks"] if f["id"] == "cis")
    control = next(c for c in cis["controls"] if c["id"] == "5.1.3")
    assert control["status"] == "fail"


def test_unbound_clusterrole_grants_are_each_on_their_rule(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = ('  - {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}\n'
             '  - {apiGroups: [""], resources: ["pods/exec"], verbs: ["create"]}\n'
             '  - {apiGroups: [""], resources: ["users"], verbs: ["impersonate"]}\n'
             '  - {apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"]}\n')
    findings = _findings(kaudit, tmp_path, _role("ClusterRole", "latent", rules))
    placed = {(f["rule"], f["path"]) for f in findings}
    assert placed == {("rbac-secrets-read", "rules[0]"), ("rbac-pod-exec", "rules[1]"),
                      ("rbac-escalate-bind-impersonate", "rules[2]"), ("rbac-nodes-proxy", "rules[3]")}


def test_bound_role_rule_names_holders_and_the_binding_is_not_reported(kaudit: Kaudit, tmp_path: Path) -> None:
    text = (_role("Role", "deployer", '  - {apiGroups: [""], resources: ["secrets"], verbs: ["list"]}\n', "shop")
            + _binding("RoleBinding", "ci-deployer", "Role", "deployer", CI, "shop"))
    secrets = _on(_findings(kaudit, tmp_path, text), "rbac-secrets-read")
    assert len(secrets) == 1
    assert secrets[0]["resource"]["kind"] == "Role" and secrets[0]["path"] == "rules[0]"
    assert secrets[0]["severity"] == "high"
    assert "ServiceAccount shop/ci (via RoleBinding shop/ci-deployer in namespace shop)" in secrets[0]["message"]


def test_grant_through_a_builtin_role_is_on_the_binding_with_the_real_rules(kaudit: Kaudit, tmp_path: Path) -> None:
    # the built-in edit role (aggregated from system:aggregate-to-edit) creates service account tokens
    text = _binding("RoleBinding", "devs-edit", "ClusterRole", "edit", "{kind: Group, name: devs}", "shop")
    findings = _findings(kaudit, tmp_path, text)
    token = _on(findings, "rbac-token-create")
    assert token and all(f["resource"]["kind"] == "RoleBinding" and f["path"] == "roleRef" for f in token)
    assert "ClusterRole system:aggregate-to-edit rules[" in token[0]["message"]


def test_rolebinding_without_namespace_is_never_cluster_wide(kaudit: Kaudit, tmp_path: Path) -> None:
    text = (_role("Role", "deployer", '  - {apiGroups: [""], resources: ["pods/exec"], verbs: ["create"]}\n')
            + _binding("RoleBinding", "ci-deployer", "Role", "deployer", "{kind: User, name: ci}")
            + _binding("RoleBinding", "ci-admin", "ClusterRole", "admin", "{kind: User, name: ci}"))
    findings = [f for f in _findings(kaudit, tmp_path, text) if f["rule"].startswith("rbac-")]
    assert findings
    assert not [f["message"] for f in findings if "cluster-wide" in f["message"]]
    assert all("in the namespace the RoleBinding is applied to" in f["message"] for f in findings)


def test_rolebinding_cannot_grant_non_resource_urls(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = '  - nonResourceURLs: ["*"]\n    verbs: ["*"]\n'
    text = (_role("ClusterRole", "urls", rules) + _binding("RoleBinding", "urls", "ClusterRole", "urls", CI, "shop")
            + _binding("RoleBinding", "admin", "ClusterRole", "cluster-admin", CI, "shop"))
    wildcard = _on(_findings(kaudit, tmp_path, text), "rbac-wildcard")
    # only the built-in cluster-admin's `*` on `*` rule, on its binding; no nonResourceURLs rule
    assert [f["path"] for f in wildcard] == ["roleRef"]
    assert "ClusterRole cluster-admin rules[0] (verbs * on * in groups *)" in wildcard[0]["message"]


def test_resource_names_narrow_the_severity(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = '  - {apiGroups: [""], resources: ["secrets"], resourceNames: [argocd-redis], verbs: ["get"]}\n'
    text = (_role("Role", "argocd-redis", rules, "argocd")
            + _binding("RoleBinding", "argocd-redis", "Role", "argocd-redis",
                       "{kind: ServiceAccount, name: argocd-redis}", "argocd"))
    secrets = _on(_findings(kaudit, tmp_path, text), "rbac-secrets-read")
    assert [f["severity"] for f in secrets] == ["low"]
    assert "only on the objects named argocd-redis" in secrets[0]["message"]


def test_wildcard_in_one_api_group_is_lower_and_names_the_group(kaudit: Kaudit, tmp_path: Path) -> None:
    text = (_role("ClusterRole", "prometheus-operator",
                  '  - {apiGroups: ["monitoring.coreos.com"], resources: ["*"], verbs: ["*"]}\n' + STAR)
            + _binding("ClusterRoleBinding", "prometheus-operator", "ClusterRole", "prometheus-operator", CI))
    wildcard = {f["path"]: f for f in _on(_findings(kaudit, tmp_path, text), "rbac-wildcard")}
    assert wildcard["rules[0]"]["severity"] == "medium" and wildcard["rules[1]"]["severity"] == "high"
    assert "in API group monitoring.coreos.com only" in wildcard["rules[0]"]["message"]
    assert "only" not in wildcard["rules[1]"]["message"]


def test_cluster_admin_in_the_scan_does_not_weaken_the_builtin_one(kaudit: Kaudit, tmp_path: Path) -> None:
    text = (_role("ClusterRole", "cluster-admin", '  - {apiGroups: [""], resources: ["pods"], verbs: ["get"]}\n')
            + _binding("ClusterRoleBinding", "ci-admin", "ClusterRole", "cluster-admin", CI))
    bound = _on(_findings(kaudit, tmp_path, text), "cluster-admin-binding")
    assert [f["resource"]["name"] for f in bound] == ["ci-admin"]


def test_scanned_role_aggregated_into_builtin_edit_is_held_by_edit_bindings(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = '  - {apiGroups: ["example.com"], resources: ["widgets"], verbs: ["create"]}\n' \
            '  - {apiGroups: [""], resources: ["secrets"], verbs: ["watch"]}\n'
    text = (_role("ClusterRole", "widgets-edit", rules, labels='{rbac.authorization.k8s.io/aggregate-to-edit: "true"}')
            + _binding("RoleBinding", "devs-edit", "ClusterRole", "edit", "{kind: Group, name: devs}", "shop"))
    secrets = [f for f in _on(_findings(kaudit, tmp_path, text), "rbac-secrets-read")
               if f["resource"]["name"] == "widgets-edit"]
    assert [f["path"] for f in secrets] == ["rules[1]"]
    assert "Group devs (via RoleBinding shop/devs-edit in namespace shop)" in secrets[0]["message"]


def test_aggregation_selecting_another_label_does_not_hold_the_rule(kaudit: Kaudit, tmp_path: Path) -> None:
    text = (f"---\n{RBAC}kind: ClusterRole\nmetadata: {{name: ops-reader}}\naggregationRule:\n  clusterRoleSelectors:\n"
            "    - matchLabels: {rbac.example.com/aggregate-to-ops-reader: \"true\"}\nrules: []\n"
            + _role("ClusterRole", "admin-secrets", '  - {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}\n',
                    labels='{rbac.example.com/aggregate-to-ops-admin: "true"}')
            + _binding("RoleBinding", "ops-reader", "ClusterRole", "ops-reader", "{kind: Group, name: ops}", "payments"))
    secrets = _on(_findings(kaudit, tmp_path, text), "rbac-secrets-read")
    assert [(f["resource"]["name"], f["severity"]) for f in secrets] == [("admin-secrets", "medium")]
    assert "not bound" in secrets[0]["message"]


def test_binding_to_all_service_accounts_is_its_own_fact(kaudit: Kaudit, tmp_path: Path) -> None:
    text = _binding("ClusterRoleBinding", "all-sa", "ClusterRole", "view",
                    '{kind: Group, name: "system:serviceaccounts", apiGroup: rbac.authorization.k8s.io}')
    findings = _findings(kaudit, tmp_path, text)
    assert not _on(findings, "binding-to-everyone")
    [found] = _on(findings, "binding-to-all-service-accounts")
    assert "every service account of every namespace" in found["message"]
    assert "every caller of the API server" not in found["message"]


def test_risky_subject_points_at_its_own_entry_after_a_malformed_one(kaudit: Kaudit, tmp_path: Path) -> None:
    # subjects[0] names no User, Group or ServiceAccount: the finding on subjects[1] said subjects[0]
    text = _binding("ClusterRoleBinding", "open", "ClusterRole", "view",
                    '{kind: Robot, name: r2d2}, {kind: Group, name: "system:authenticated", '
                    'apiGroup: rbac.authorization.k8s.io}')
    findings = _findings(kaudit, tmp_path, text)
    [found] = _on(findings, "binding-to-everyone")
    assert found["path"] == "subjects[1]", found
    assert found["location"]["line"] == 5  # the flow sequence holding both entries


@pytest.mark.parametrize("namespace", ["{unexpected: {deeper: [1]}}", "[shop, other]", "7"])
def test_a_subject_namespace_that_is_not_a_string_breaks_no_rule(kaudit: Kaudit, tmp_path: Path,
                                                                namespace: str) -> None:
    # Found by tests/test_properties.py: `namespace: {…}` made every RBAC rule fail on an unhashable
    # subject. The API server rejects such a binding, so it grants nothing and nothing is reported on it.
    path = tmp_path / "rbac.yaml"
    path.write_text(_binding("RoleBinding", "app", "ClusterRole", "admin",
                             f"{{kind: ServiceAccount, name: default, namespace: {namespace}}}", "shop"))
    result = kaudit("scan", str(path), "-f", "json", "--fail-on", "never")
    assert result.code == 0 and "could not evaluate" not in result.err, result.err
    assert not [f for f in every_fact(result.json()["findings"]) if f["resource"]["kind"] == "RoleBinding"]


def test_workload_finding_names_the_role_rule(kaudit: Kaudit, tmp_path: Path) -> None:
    pod = ("---\napiVersion: v1\nkind: Pod\nmetadata: {name: ci, namespace: shop}\n"
           "spec: {serviceAccountName: ci, containers: [{name: c, image: busybox}]}\n")
    text = (_role("Role", "deployer", '  - {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}\n', "shop")
            + _binding("RoleBinding", "ci-deployer", "Role", "deployer", CI, "shop") + pod)
    workload = _on(_findings(kaudit, tmp_path, text), "workload-with-dangerous-permissions")
    assert workload and "Role shop/deployer rules[0]" in workload[0]["message"]


def _permissions(resources: list[Any], subject: Subject) -> set[str]:
    grants = rbac_index(Inventory(resources)).grants_of(subject)
    return {key for key, permission in PERMISSIONS.items()
            if any(permission.matches(g.rule, namespaced=g.namespaced) for g in grants)}


def test_manifest_and_cluster_scans_agree_on_builtin_roles(tmp_path: Path) -> None:
    # A manifest scan knows the built-in roles from the generated data; a cluster scan reads them
    # (here: the objects a v1.36 API server creates). The same bindings grant the same permissions.
    bindings = tmp_path / "bindings.yaml"
    bindings.write_text(
        _binding("RoleBinding", "devs-edit", "ClusterRole", "edit", CI, "shop")
        + _binding("RoleBinding", "devs-admin", "ClusterRole", "admin", "{kind: User, name: alice}", "shop")
        + _binding("ClusterRoleBinding", "ops-view", "ClusterRole", "view", "{kind: Group, name: ops}"))
    manifest = load_manifests([str(bindings)]).resources
    cluster = load_manifests([str(BOOTSTRAP_RBAC), str(bindings)]).resources
    for subject in (Subject("ServiceAccount", "ci", "shop"), Subject("User", "alice"), Subject("Group", "ops")):
        assert _permissions(manifest, subject) == _permissions(cluster, subject)
    assert "token-create" in _permissions(manifest, Subject("ServiceAccount", "ci", "shop"))
    # rule by rule through the binding to edit (the cluster also has its own discovery bindings)
    assert _rules_via(manifest, "devs-edit") == _rules_via(cluster, "devs-edit")


def _rules_via(resources: list[Any], binding: str) -> set[str]:
    index = rbac_index(Inventory(resources))
    return {str(g.rule) for grants in index.grants_by_subject.values() for g in grants if g.binding.name == binding}


def test_a_role_declared_twice_is_judged_in_both_declarations_whatever_the_order(tmp_path: Path) -> None:
    """Two copies of a ClusterRole (a project's own install and a bundle that vendors it): the cluster
    keeps whichever is applied last, so the dangerous copy is reported in either file order."""
    first = tmp_path / "a.yaml"
    first.write_text("""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: dup}
rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dup}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: dup}
subjects: [{kind: ServiceAccount, name: app, namespace: shop}]
""")
    second = tmp_path / "b.yaml"
    second.write_text("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: dup}\n"
                      "rules:\n  - {apiGroups: [\"\"], resources: [configmaps], verbs: [get]}\n")
    for order in ((first, second), (second, first)):
        report = scan_manifests(ScanRequest(targets=tuple(str(p) for p in order)))
        found = [(Path(f.location.file or "").name, f.location.line) for f in report.findings
                 if f.rule == "rbac-secrets-read"]
        assert found == [("a.yaml", 5)], (order, found)


def test_a_live_cluster_scan_agrees_with_the_manifest_scan_on_builtin_roles(tmp_path: Path) -> None:
    """The same, with the v1.36 bootstrap objects read from an HTTPS API server by the real client."""
    import yaml

    from kaudit.sources.cluster import ClusterRequest, load_cluster
    from tests.k8s_api import FakeApiServer

    bindings = tmp_path / "bindings.yaml"
    bindings.write_text(
        _binding("RoleBinding", "devs-edit", "ClusterRole", "edit", CI, "shop")
        + _binding("ClusterRoleBinding", "ops-view", "ClusterRole", "view", "{kind: Group, name: ops}"))
    served = [o for o in yaml.safe_load_all(BOOTSTRAP_RBAC.read_text()) if isinstance(o, dict)]
    served += [o for o in yaml.safe_load_all(bindings.read_text()) if isinstance(o, dict)]
    with FakeApiServer(served, version="v1.36.2") as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        live = load_cluster(ClusterRequest(kubeconfig=str(kubeconfig), context="test")).resources
    assert any(r.kind == "ClusterRole" and r.name == "system:aggregate-to-edit" for r in live)
    manifest = load_manifests([str(bindings)]).resources
    for subject in (Subject("ServiceAccount", "ci", "shop"), Subject("Group", "ops")):
        assert _permissions(manifest, subject) == _permissions(live, subject)
    assert _rules_via(manifest, "devs-edit") == _rules_via(live, "devs-edit")
