"""PolicyRules read without an inventory: what a rule allows, how it is described and keyed, and
the dangerous permissions RBAC rules are judged by (kaudit/analyzers/rbac.py builds the index of
who holds what). Apart from the index so that templates can name the permissions in their params
schemas, and the hook path can load them, without importing the RBAC analysis: a scan without RBAC
objects never needs it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kaudit.value import computed_once, value
from kaudit.workloads import sequence

if TYPE_CHECKING:
    from kaudit.analyzers.rbac import Subject

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"
SYSTEM_GROUPS_FOR_EVERYONE = ("system:authenticated", "system:unauthenticated", "system:anonymous",
                              "system:serviceaccounts")
# Resources a RoleBinding cannot grant. Not `namespaces`: a request on namespace X (get, update,
# delete of /api/v1/namespaces/X) carries X as its namespace (the API server's RequestInfo), so a
# RoleBinding in X that grants verbs on `namespaces` grants them on X itself.
CLUSTER_SCOPED = frozenset({
    "nodes", "nodes/proxy", "persistentvolumes", "certificatesigningrequests", "certificatesigningrequests/approval",
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations", "validatingadmissionpolicies",
    "validatingadmissionpolicybindings", "users", "groups", "uids", "userextras/*",
    "clusterroles", "clusterrolebindings", "ciliumclusterwidenetworkpolicies", "globalnetworkpolicies",
})


def describe_rule(rule: Mapping[str, Any]) -> str:
    def join(key: str) -> str:
        return ",".join(str(v) for v in sequence(rule.get(key))) or "-"

    groups = ",".join(repr(g) if g == "" else str(g) for g in sequence(rule.get("apiGroups"))) or "-"
    text = f"verbs {join('verbs')} on {join('resources')} in groups {groups}"
    if sequence(rule.get("resourceNames")):
        text += f" named {join('resourceNames')}"
    return text


def rule_key(rule: Mapping[str, Any]) -> str:
    """A PolicyRule's identity, whatever the order of its lists or of the role's rules (fingerprints)."""
    keys = ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
    return ";".join(f"{k}={','.join(sorted(str(v) for v in sequence(rule.get(k))))}" for k in keys if rule.get(k))


def rule_allows(rule: Mapping[str, Any], verb: str, group: str, resource: str) -> bool:
    """Does one PolicyRule allow `verb` on `resource` ("pods" or "pods/exec") in API group `group`?"""
    verbs = sequence(rule.get("verbs"))
    if ALL not in verbs and verb not in verbs:
        return False
    groups = sequence(rule.get("apiGroups"))
    if ALL not in groups and group not in groups:
        return False
    subresource = resource.partition("/")[2]
    for candidate in sequence(rule.get("resources")):
        if candidate == ALL or candidate == resource:
            return True
        if subresource and candidate == f"*/{subresource}":
            return True
    return False


# --- dangerous permissions: each a name, a description and the requests that reveal it ------------

@value
class Permission:
    """A dangerous permission: what it lets a subject do and the requests that reveal it."""

    key: str
    does: str  # "can read secrets": completes "<subject> ..."
    requests: tuple[tuple[str, str, str], ...] = ()  # (verb, group, resource) any of which reveals it
    # Namespaces where the permission is at its worst (ConfigMaps in kube-system: CoreDNS's Corefile).
    # A grant that reaches none of them (a RoleBinding elsewhere) is reported one level lower.
    sensitive_namespaces: tuple[str, ...] = ()
    sensitive_why: str = ""  # what is there: "where CoreDNS reads its Corefile"

    def matches(self, rule: Mapping[str, Any], namespaced: bool = False) -> bool:
        """Does `rule` give this permission? `namespaced`: it arrives through a RoleBinding (or is in
        a Role), which cannot grant cluster-scoped resources or nonResourceURLs."""
        if namespaced and all(isinstance(r, str) and r in CLUSTER_SCOPED for r in sequence(rule.get("resources"))):
            return False  # nothing it names exists in a namespace (nonResourceURLs: no resources at all)
        if self.key == "wildcard":
            return any(ALL in sequence(rule.get(k)) for k in ("verbs", "resources", "apiGroups"))
        if self.key == "cluster-admin":
            return all(ALL in sequence(rule.get(k)) for k in ("verbs", "resources", "apiGroups"))
        # Most rules a role holds share no verb or no API group with a given permission: each of
        # the ~20 permission rules reads every rule of every role, so rule those out in one pass.
        verbs, groups = self._verbs_and_groups
        if not _names_any(rule.get("verbs"), verbs) or not _names_any(rule.get("apiGroups"), groups):
            return False
        return any(rule_allows(rule, verb, group, resource) for verb, group, resource in self.requests
                   if not (namespaced and resource in CLUSTER_SCOPED))

    @computed_once
    def _verbs_and_groups(self) -> tuple[frozenset[str], frozenset[str]]:
        return (frozenset(verb for verb, _, _ in self.requests), frozenset(group for _, group, _ in self.requests))


def _names_any(listed: Any, names: frozenset[str]) -> bool:
    """Does a PolicyRule list (verbs, apiGroups) hold `*` or one of `names`?"""
    for item in sequence(listed):
        if isinstance(item, str) and (item == ALL or item in names):
            return True
    return False


def _requests(verbs: Iterable[str], group: str, resources: Iterable[str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((verb, group, resource) for verb in verbs for resource in resources)


WORKLOAD_RESOURCES = {"": ("pods", "replicationcontrollers"),
                      "apps": ("deployments", "daemonsets", "statefulsets", "replicasets"),
                      "batch": ("jobs", "cronjobs")}
# Deleting these loses what the cluster runs and keeps: workloads, credentials, volumes' claims (with
# the Delete reclaim policy, the disk), and namespaces with everything in them.
DESTROYABLE = {"": ("pods", "replicationcontrollers", "secrets", "persistentvolumeclaims", "namespaces"),
               "apps": WORKLOAD_RESOURCES["apps"], "batch": WORKLOAD_RESOURCES["batch"]}
# The API's NetworkPolicy, and Cilium's and Calico's, which kaudit/analyzers/network.py counts as
# isolating their namespaces (or the cluster) too.
NETWORK_POLICY_RESOURCES = {"networking.k8s.io": ("networkpolicies",),
                            "cilium.io": ("ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"),
                            "crd.projectcalico.org": ("networkpolicies", "globalnetworkpolicies"),
                            "projectcalico.org": ("networkpolicies", "globalnetworkpolicies")}
PERMISSIONS: dict[str, Permission] = {p.key: p for p in (
    Permission("wildcard", "holds a wildcard (*) rule"),
    Permission("cluster-admin", "holds every permission on every resource (cluster-admin or equivalent)"),
    Permission("secrets-read", "can read secrets", _requests(("get", "list", "watch"), "", ("secrets",))),
    Permission("pod-exec", "can exec into, attach to or port-forward to pods (or add ephemeral containers)",
               _requests(("create", "get"), "", ("pods/exec", "pods/attach", "pods/portforward"))
               + _requests(("update", "patch"), "", ("pods/ephemeralcontainers",))),
    Permission("create-workloads", "can create pods or pod controllers, and so run as any service account "
                                   "in the namespace",
               tuple(r for group, resources in WORKLOAD_RESOURCES.items() for r in _requests(("create",), group,
                                                                                             resources))),
    Permission("escalate-bind-impersonate", "can escalate, bind roles or impersonate",
               _requests(("escalate", "bind"), RBAC_GROUP, ("roles", "clusterroles"))
               + _requests(("impersonate",), "", ("users", "groups", "serviceaccounts"))
               + _requests(("impersonate",), "authentication.k8s.io", ("uids", "userextras/*"))),
    Permission("nodes-proxy", "can reach the kubelet API through nodes/proxy",
               _requests(("get", "create"), "", ("nodes/proxy",))),
    Permission("csr-approval", "can approve certificate signing requests",
               _requests(("update", "patch"), "certificates.k8s.io", ("certificatesigningrequests/approval",))),
    Permission("webhook-write", "can write admission webhooks or admission policies",
               _requests(("create", "update", "patch", "delete"), "admissionregistration.k8s.io",
                         ("validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                          "validatingadmissionpolicies", "validatingadmissionpolicybindings"))),
    Permission("token-create", "can create service account tokens",
               _requests(("create",), "", ("serviceaccounts/token",))),
    Permission("create-persistentvolumes", "can create persistent volumes (and so mount node paths)",
               _requests(("create",), "", ("persistentvolumes",))),
    Permission("destructive-delete", "can delete workloads, secrets, persistent volume claims or namespaces",
               tuple(r for group, resources in DESTROYABLE.items()
                     for r in _requests(("delete", "deletecollection"), group, resources))),
    Permission("events-delete", "can delete events, the cluster's record of what happened",
               _requests(("delete", "deletecollection"), "", ("events",))
               + _requests(("delete", "deletecollection"), "events.k8s.io", ("events",))),
    Permission("configmaps-write", "can update or patch ConfigMaps",
               _requests(("update", "patch"), "", ("configmaps",)),
               sensitive_namespaces=("kube-system",),
               sensitive_why="where CoreDNS reads its Corefile and kube-proxy its configuration"),
    Permission("networkpolicies-write", "can create, change or delete network policies, and so lift network "
                                        "isolation",
               tuple(r for group, resources in NETWORK_POLICY_RESOURCES.items()
                     for r in _requests(("create", "update", "patch", "delete", "deletecollection"), group,
                                        resources))),
)}


def is_system_subject(subject: Subject) -> bool:
    """Built-in control-plane identities, which legitimately hold broad rights."""
    if subject.kind == "Group" and subject.name == "system:masters":
        return True
    if subject.kind in ("User", "Group") and subject.name.startswith("system:") and \
            subject.name not in SYSTEM_GROUPS_FOR_EVERYONE and not subject.name.startswith("system:serviceaccount"):
        return True
    return False
