"""What one RBAC PolicyRule lets its holder reach, in the attacker's terms.

Matching is the authorizer's (kaudit.analyzers.permissions.rule_allows): `*` verbs, groups and
resources, `*/sub` subresources. resourceNames narrow a capability to the named objects (None: all);
`list` and `watch` ignore them for reading (a list returns every object), as the API server does
when no field selector names one.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional

from kaudit.analyzers.permissions import ALL, RBAC_GROUP, WORKLOAD_RESOURCES, rule_allows
from kaudit.model import FieldPath
from kaudit.workloads import sequence

CERTIFICATES = "certificates.k8s.io"
# Signers whose certificates the API server accepts as client credentials for any name in the CSR.
CLIENT_SIGNERS = ("kubernetes.io/kube-apiserver-client", "kubernetes.io/legacy-unknown")


class Capability(NamedTuple):
    kind: str  # exec | create-pods | patch-workloads | token | secrets | impersonate-sa | impersonate-user |
    # bind | escalate | create-bindings | update-roles | nodes-proxy | csr-approve | signer-approve | all
    names: Optional[tuple[str, ...]]  # resourceNames it is narrowed to; None: every object
    path: FieldPath  # within the rule: the field that gives it (for the evidence)


def _names(rule: Mapping[str, Any]) -> Optional[tuple[str, ...]]:
    names = tuple(str(n) for n in sequence(rule.get("resourceNames")))
    return names or None


def _field(rule: Mapping[str, Any], key: str, wanted: tuple[str, ...]) -> FieldPath:
    """The path of the first item of `rule[key]` that is one of `wanted` (or `*`): the word to change."""
    for index, item in enumerate(sequence(rule.get(key))):
        if item == ALL or item in wanted:
            return (key, index)
    return (key,)


def _allows(rule: Mapping[str, Any], verbs: tuple[str, ...], group: str, resources: tuple[str, ...]) -> bool:
    return any(rule_allows(rule, verb, group, resource) for verb in verbs for resource in resources)


def capabilities(rule: Mapping[str, Any]) -> list[Capability]:
    """Every attacker capability the rule gives, each with where it is written in the rule."""
    names = _names(rule)
    found: list[Capability] = []

    def add(kind: str, key: str, wanted: tuple[str, ...], narrowed: Optional[tuple[str, ...]] = names) -> None:
        found.append(Capability(kind, narrowed, _field(rule, key, wanted)))

    verbs, resources, groups = (sequence(rule.get(k)) for k in ("verbs", "resources", "apiGroups"))
    if ALL in verbs and ALL in resources and ALL in groups and names is None:
        add("all", "resources", ("*",))
        return found
    if _allows(rule, ("create", "get"), "", ("pods/exec", "pods/attach")) or \
            _allows(rule, ("update", "patch"), "", ("pods/ephemeralcontainers",)):
        add("exec", "resources", ("pods/exec", "pods/attach", "pods/ephemeralcontainers"))
    workload = [(group, resource) for group, listed in WORKLOAD_RESOURCES.items() for resource in listed]
    if any(rule_allows(rule, "create", group, resource) for group, resource in workload):
        add("create-pods", "verbs", ("create",), None)  # a new object has no name to be narrowed to
    controllers = [(g, r) for g, r in workload if r != "pods"]
    if any(rule_allows(rule, verb, g, r) for verb in ("update", "patch") for g, r in controllers):
        add("patch-workloads", "verbs", ("update", "patch"))
    if rule_allows(rule, "create", "", "serviceaccounts/token"):
        add("token", "resources", ("serviceaccounts/token",))
    if _allows(rule, ("list", "watch"), "", ("secrets",)):
        add("secrets", "resources", ("secrets",), None)
    elif rule_allows(rule, "get", "", "secrets"):
        add("secrets", "resources", ("secrets",))
    if rule_allows(rule, "impersonate", "", "serviceaccounts"):
        add("impersonate-sa", "verbs", ("impersonate",))
    if _allows(rule, ("impersonate",), "", ("users", "groups")) and \
            (names is None or "system:masters" in names or ALL in names):
        add("impersonate-user", "verbs", ("impersonate",))
    if _allows(rule, ("bind",), RBAC_GROUP, ("clusterroles", "roles")):
        add("bind", "verbs", ("bind",))
    if _allows(rule, ("escalate",), RBAC_GROUP, ("clusterroles", "roles")):
        add("escalate", "verbs", ("escalate",))
    if _allows(rule, ("create",), RBAC_GROUP, ("clusterrolebindings",)):
        add("create-cluster-bindings", "verbs", ("create",))
    if _allows(rule, ("create",), RBAC_GROUP, ("rolebindings",)):
        add("create-bindings", "verbs", ("create",))
    if _allows(rule, ("update", "patch"), RBAC_GROUP, ("clusterroles",)):
        add("update-cluster-roles", "verbs", ("update", "patch"))
    if _allows(rule, ("get", "create"), "", ("nodes/proxy",)):
        add("nodes-proxy", "resources", ("nodes/proxy",))
    if _allows(rule, ("update", "patch"), CERTIFICATES, ("certificatesigningrequests/approval",)):
        add("csr-approve", "resources", ("certificatesigningrequests/approval",))
    if rule_allows(rule, "approve", CERTIFICATES, "signers") and \
            (names is None or any(n in names for n in (*CLIENT_SIGNERS, ALL, "kubernetes.io/*"))):
        add("signer-approve", "resources", ("signers",))
    return found


def binds_cluster_admin(names: Optional[tuple[str, ...]]) -> bool:
    """bind narrowed by resourceNames reaches cluster-admin only when it names it."""
    return names is None or "cluster-admin" in names or ALL in names
