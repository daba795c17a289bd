"""RBAC over the whole inventory: roles (with aggregation), bindings, and subjects' effective rules.

A grant is one PolicyRule reaching one subject through one binding: subject -> binding -> role ->
rule. Everything a finding or `kaudit rbac who-can` says is a list of grants, so each answer names
its path. Rule matching follows the API server's authorizer (rbac/v1 helpers): `*` matches any verb,
group or resource; `*/sub` matches that subresource of any resource. A rule narrowed by resourceNames
still matches (its grant names the objects), so reviewers see narrowed access too. A RoleBinding
never grants cluster-scoped resources (nodes, PVs, CSRs, webhooks, users), whatever its role says.

The default user-facing ClusterRoles (cluster-admin, admin, edit, view) are known even when a scan of
manifests does not contain them: every cluster has them, and a binding to them is the common case.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from kaudit.model import Resource
from kaudit.selectors import labels_of, parse_selector
from kaudit.workloads import mapping, sequence

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"
SYSTEM_GROUPS_FOR_EVERYONE = ("system:authenticated", "system:unauthenticated", "system:anonymous",
                              "system:serviceaccounts")
CLUSTER_SCOPED = frozenset({
    "nodes", "nodes/proxy", "persistentvolumes", "certificatesigningrequests", "certificatesigningrequests/approval",
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations", "validatingadmissionpolicies",
    "validatingadmissionpolicybindings", "users", "groups", "uids", "userextras/*", "namespaces",
    "clusterroles", "clusterrolebindings",
})


def _rules(*items: tuple[list[str], list[str], list[str]]) -> tuple[Mapping[str, Any], ...]:
    return tuple({"apiGroups": groups, "resources": resources, "verbs": verbs} for groups, resources, verbs in items)


_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = (["apps"], ["deployments", "daemonsets", "statefulsets", "replicasets"], _READ + _WRITE)
# The dangerous parts of the default ClusterRoles (the API server's bootstrap policy), for bindings
# to roles a manifest scan does not contain. view reads no secrets; edit and admin do.
BUILTIN_CLUSTER_ROLES: dict[str, tuple[Mapping[str, Any], ...]] = {
    "cluster-admin": _rules((["*"], ["*"], ["*"])),
    "admin": _rules(([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                            "services", "configmaps", "persistentvolumeclaims", "serviceaccounts"], _READ + _WRITE),
                    ([""], ["serviceaccounts"], ["impersonate"]), _WORKLOADS,
                    (["batch"], ["jobs", "cronjobs"], _READ + _WRITE),
                    ([RBAC_GROUP], ["roles", "rolebindings"], _READ + _WRITE)),
    "edit": _rules(([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                           "services", "configmaps", "persistentvolumeclaims", "serviceaccounts"], _READ + _WRITE),
                   ([""], ["serviceaccounts"], ["impersonate"]), _WORKLOADS,
                   (["batch"], ["jobs", "cronjobs"], _READ + _WRITE)),
    "view": _rules(([""], ["pods", "services", "configmaps", "persistentvolumeclaims", "serviceaccounts"], _READ),
                   (["apps"], ["deployments", "daemonsets", "statefulsets", "replicasets"], _READ)),
}


@dataclass(frozen=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: Optional[str] = None  # ServiceAccount only

    def describe(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace or '?'}/{self.name}"
        return f"{self.kind} {self.name}"

    def key(self) -> str:
        """The subject's identity, for fingerprints."""
        return f"{self.kind}:{self.namespace}:{self.name}" if self.kind == "ServiceAccount" else f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> "Subject":
        """`User:alice`, `Group:devs`, `ServiceAccount:ns:name` or `system:serviceaccount:ns:name`."""
        if text.startswith("system:serviceaccount:") and text.count(":") == 3:
            _, _, namespace, name = text.split(":")
            return cls("ServiceAccount", name, namespace)
        kind, _, rest = text.partition(":")
        kind = {"user": "User", "group": "Group", "serviceaccount": "ServiceAccount", "sa": "ServiceAccount"}.get(
            kind.lower(), "")
        if not kind or not rest:
            raise ValueError(f"subject {text!r}: use User:NAME, Group:NAME or ServiceAccount:NAMESPACE:NAME")
        if kind == "ServiceAccount":
            namespace, _, name = rest.partition(":")
            if not name:
                raise ValueError(f"subject {text!r}: a service account is ServiceAccount:NAMESPACE:NAME")
            return cls(kind, name, namespace)
        return cls(kind, rest)

    def identities(self) -> list["Subject"]:
        """This subject and the groups the API server puts it in (service accounts' groups)."""
        if self.kind != "ServiceAccount":
            return [self]
        return [self, Subject("Group", "system:serviceaccounts"),
                Subject("Group", f"system:serviceaccounts:{self.namespace}"), Subject("Group", "system:authenticated")]


@dataclass(frozen=True)
class Role:
    resource: Optional[Resource]  # None for a ClusterRole referenced but not in the scan
    kind: str  # Role | ClusterRole
    name: str
    namespace: Optional[str]
    rules: tuple[Mapping[str, Any], ...]
    aggregated_from: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.kind == "Role" and self.namespace else ""
        via = f" (aggregating {', '.join(self.aggregated_from)})" if self.aggregated_from else ""
        missing = ""
        if self.resource is None:
            missing = " (built in, not in the scan)" if self.rules else " (not in the scan)"
        return f"{self.kind} {where}{self.name}{via}{missing}"


@dataclass(frozen=True)
class Grant:
    subject: Subject
    binding: Resource
    role: Role
    rule_index: int
    rule: Mapping[str, Any]
    scope: Optional[str]  # the namespace the grant applies in; None = cluster-wide

    def path(self) -> str:
        scope = f"in namespace {self.scope}" if self.scope else "cluster-wide"
        return (f"{self.subject.describe()} -> {self.binding.kind} {self.binding.ref.describe().split('/', 1)[1]} -> "
                f"{self.role.describe()} -> rule {self.rule_index} ({describe_rule(self.rule)}), {scope}")


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


@dataclass
class RbacIndex:
    roles: dict[tuple[Optional[str], str], Role] = field(default_factory=dict)  # (namespace, name) of Roles
    cluster_roles: dict[str, Role] = field(default_factory=dict)
    bindings: list[Resource] = field(default_factory=list)
    grants_by_binding: dict[int, list[Grant]] = field(default_factory=dict)  # id(binding resource)
    grants_by_subject: dict[Subject, list[Grant]] = field(default_factory=dict)
    _first_grant: dict[tuple[Subject, str], Optional[Grant]] = field(default_factory=dict)

    def role_for(self, binding: Resource) -> Optional[Role]:
        ref = mapping(binding.body.get("roleRef"))
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            return self.cluster_roles.get(name) or Role(None, "ClusterRole", name, None,
                                                        BUILTIN_CLUSTER_ROLES.get(name, ()))
        if kind == "Role" and binding.kind == "RoleBinding":
            return self.roles.get((binding.namespace, name)) or Role(None, "Role", name, binding.namespace, ())
        return None

    def grants_of(self, subject: Subject) -> list[Grant]:
        seen: list[Grant] = []
        for identity in subject.identities():
            seen.extend(self.grants_by_subject.get(identity, ()))
        return seen

    def first_grant(self, subject: Subject, permission: "Permission") -> Optional[Grant]:
        """The first grant giving `subject` (or a group it is in) this permission; cached, since many
        workloads share one service account."""
        key = (subject, permission.key)
        if key not in self._first_grant:
            self._first_grant[key] = next((g for g in self.grants_of(subject)
                                           if permission.matches(g.rule, namespaced=g.scope is not None)), None)
        return self._first_grant[key]

    def who_can(self, verb: str, group: str, resource: str, namespace: Optional[str]) -> list[Grant]:
        """Grants that allow it: cluster-wide ones always, namespaced ones in `namespace` (any if None)."""
        found = []
        for grants in self.grants_by_subject.values():
            for grant in grants:
                if namespace is not None and grant.scope not in (None, namespace):
                    continue
                if rule_allows(grant.rule, verb, group, resource):
                    found.append(grant)
        return found


def binding_subjects(binding: Resource) -> list[Subject]:
    subjects = []
    for entry in sequence(binding.body.get("subjects")):
        entry = mapping(entry)
        kind, name = entry.get("kind"), entry.get("name")
        if kind not in ("User", "Group", "ServiceAccount") or not isinstance(name, str):
            continue
        namespace = entry.get("namespace") if kind == "ServiceAccount" else None
        if kind == "ServiceAccount" and not namespace:
            namespace = binding.namespace  # RoleBinding subjects default to the binding's namespace
        if kind == "User" and name.startswith("system:serviceaccount:") and name.count(":") == 3:
            kind, (_, _, namespace, name) = "ServiceAccount", name.split(":")  # a service account by its username
        subjects.append(Subject(kind, name, namespace))
    return subjects


def _aggregate(cluster_roles: dict[str, Role]) -> dict[str, Role]:
    """Fill aggregated ClusterRoles with the rules of the roles their selectors pick (to a fixpoint:
    an aggregated role can aggregate other aggregated roles)."""
    selectors = {}
    for name, role in cluster_roles.items():
        assert role.resource is not None
        rule = mapping(role.resource.body.get("aggregationRule"))
        chosen = [parse_selector(s) for s in sequence(rule.get("clusterRoleSelectors"))]
        if chosen:
            selectors[name] = chosen
    current = dict(cluster_roles)
    for _ in range(len(selectors) + 1):
        changed = False
        for name, chosen in selectors.items():
            sources = sorted(other for other, role in current.items() if other != name and role.resource is not None
                             and any(s.matches(labels_of(role.resource.body.get("metadata"))) for s in chosen))
            rules = list(cluster_roles[name].rules)
            for source in sources:
                rules.extend(r for r in current[source].rules if r not in rules)
            if tuple(rules) != current[name].rules:
                old = current[name]
                current[name] = Role(old.resource, old.kind, old.name, None, tuple(rules), tuple(sources))
                changed = True
        if not changed:
            break
    return current


def rbac_index(lookup: Any) -> RbacIndex:
    cached = lookup.memo.get("rbac")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    index = RbacIndex()
    cluster_roles: dict[str, Role] = {}
    for resource in lookup.resources:
        if not resource.ref.api_version.startswith(RBAC_GROUP + "/"):
            continue
        rules = tuple(mapping(r) for r in sequence(resource.body.get("rules")) if isinstance(r, dict))
        if resource.kind == "Role":
            index.roles[(resource.namespace, resource.name)] = Role(resource, "Role", resource.name,
                                                                    resource.namespace, rules)
        elif resource.kind == "ClusterRole":
            cluster_roles[resource.name] = Role(resource, "ClusterRole", resource.name, None, rules)
        elif resource.kind in ("RoleBinding", "ClusterRoleBinding"):
            index.bindings.append(resource)
    index.cluster_roles = _aggregate(cluster_roles)
    for binding in index.bindings:
        role = index.role_for(binding)
        grants = []
        if role is not None:
            scope = binding.namespace if binding.kind == "RoleBinding" else None
            for subject in binding_subjects(binding):
                for rule_index, rule in enumerate(role.rules):
                    grant = Grant(subject, binding, role, rule_index, rule, scope)
                    grants.append(grant)
                    index.grants_by_subject.setdefault(subject, []).append(grant)
        index.grants_by_binding[id(binding)] = grants
    lookup.memo["rbac"] = index
    return index


# --- dangerous permissions: each a name, a description and the requests that reveal it ------------

@dataclass(frozen=True)
class Permission:
    key: str
    does: str  # "can read secrets": completes "<subject> ..."
    requests: tuple[tuple[str, str, str], ...] = ()  # (verb, group, resource) any of which reveals it

    def matches(self, rule: Mapping[str, Any], namespaced: bool = False) -> bool:
        """Does `rule` give this permission? `namespaced`: it arrives through a RoleBinding, which
        cannot grant cluster-scoped resources."""
        if self.key == "wildcard":
            return any(ALL in sequence(rule.get(k)) for k in ("verbs", "resources", "apiGroups"))
        if self.key == "cluster-admin":
            return all(ALL in sequence(rule.get(k)) for k in ("verbs", "resources", "apiGroups"))
        return any(rule_allows(rule, verb, group, resource) for verb, group, resource in self.requests
                   if not (namespaced and resource in CLUSTER_SCOPED))


def _requests(verbs: Iterable[str], group: str, resources: Iterable[str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((verb, group, resource) for verb in verbs for resource in resources)


WORKLOAD_RESOURCES = {"": ("pods", "replicationcontrollers"),
                      "apps": ("deployments", "daemonsets", "statefulsets", "replicasets"),
                      "batch": ("jobs", "cronjobs")}
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
)}


def is_system_subject(subject: Subject) -> bool:
    """Built-in control-plane identities, which legitimately hold broad rights."""
    if subject.kind == "Group" and subject.name == "system:masters":
        return True
    if subject.kind in ("User", "Group") and subject.name.startswith("system:") and \
            subject.name not in SYSTEM_GROUPS_FOR_EVERYONE and not subject.name.startswith("system:serviceaccount"):
        return True
    return False
