"""RBAC resolution, who-can and explain on a realistic set (namespaces, aggregation, groups)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from kaudit.analyzers.rbac import Subject, rbac_index, rule_allows
from kaudit.inventory import Inventory
from kaudit.sources.manifests import load_manifests

from .conftest import CliResult

REALISTIC = Path(__file__).parent / "data" / "rbac" / "realistic.yaml"
Kaudit = Callable[..., CliResult]


def index():  # type: ignore[no-untyped-def]
    return rbac_index(Inventory(load_manifests([str(REALISTIC)]).resources))


@pytest.mark.parametrize("rule, request_, allowed", [
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, ("get", "", "pods"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, ("list", "", "pods"), False),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, ("get", "apps", "pods"), False),
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, ("delete", "apps", "deployments"), True),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, ("get", "", "pods/log"), True),
    ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}, ("create", "", "pods/exec"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, ("create", "", "pods/exec"), False),
    ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}, ("create", "", "pods/exec"), False),
])
def test_rule_matching_follows_the_authorizer(rule: dict, request_: tuple, allowed: bool) -> None:  # type: ignore[type-arg]
    assert rule_allows(rule, *request_) is allowed


def test_aggregation_is_resolved_through_labels_to_a_fixpoint() -> None:
    roles = index().cluster_roles
    view = roles["team-view"]
    assert set(view.aggregated_from) == {"view-workloads", "view-logs"}
    debug = roles["team-debug"]
    # team-debug aggregates exec-pods and team-view-into-debug, which itself aggregates the view roles
    assert any(rule_allows(r, "create", "", "pods/exec") for r in debug.rules)
    assert any(rule_allows(r, "get", "", "pods/log") for r in debug.rules)


def test_who_can_exec_names_subjects_with_their_paths(kaudit: Kaudit) -> None:
    result = kaudit("rbac", "who-can", "create", "pods/exec", REALISTIC)
    assert result.code == 0
    assert "Group sre\n    via ClusterRoleBinding sre-debug -> ClusterRole team-debug" in result.out
    assert "Group system:masters" in result.out and "2 subjects" in result.out


def test_who_can_respects_namespaces_and_groups(kaudit: Kaudit) -> None:
    team_a = kaudit("rbac", "who-can", "list", "deployments.apps", "-n", "team-a", REALISTIC).out
    assert "Group team-a-devs" in team_a and "Group team-b-devs" not in team_a and "User alice@example.com" not in team_a
    assert "ServiceAccount monitoring/prometheus" in team_a  # cluster-wide binding applies everywhere
    team_b = kaudit("rbac", "who-can", "list", "deployments.apps", "-n", "team-b", REALISTIC).out
    assert "User alice@example.com" in team_b and "Group team-a-devs" not in team_b
    create = kaudit("rbac", "who-can", "create", "deployments.apps", "-n", "team-a", REALISTIC).out
    assert "ServiceAccount team-a/ci" in create and "RoleBinding team-a/ci-deployer -> Role team-a/deployer" in create


def test_explain_lists_effective_permissions_with_paths(kaudit: Kaudit) -> None:
    result = kaudit("rbac", "explain", "ServiceAccount:team-a:ci", REALISTIC)
    assert result.code == 0
    assert "in namespace team-a:" in result.out
    assert "verbs get on secrets in groups '' named registry-credentials" in result.out
    assert "2 rules through 1 bindings" in result.out
    prometheus = kaudit("rbac", "explain", "system:serviceaccount:monitoring:prometheus", REALISTIC).out
    assert "cluster-wide:" in prometheus and "ClusterRole team-view (aggregating view-logs, view-workloads)" in prometheus


def test_explain_includes_group_membership_of_service_accounts() -> None:
    grants = index().grants_of(Subject("ServiceAccount", "x", "team-b"))
    assert grants == []  # no binding names its groups in this set
    assert Subject.parse("Group:sre") == Subject("Group", "sre")
    with pytest.raises(ValueError):
        Subject.parse("ServiceAccount:noname")


def test_rbac_commands_report_bad_input(kaudit: Kaudit, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("a: [\n")
    result = kaudit("rbac", "explain", "User:alice", tmp_path / "bad.yaml")
    assert result.code == 2 and "error:" in result.err
    assert kaudit("rbac", "explain", "Nobody", REALISTIC).code == 2
