"""RBAC over the whole inventory: roles (with aggregation), bindings, and subjects' effective rules.

A grant is one PolicyRule reaching one subject through one binding: subject -> binding -> role ->
rule. Everything a finding or `kaudit rbac who-can` says is a list of grants, so each answer names
its path. Rule matching follows the API server's authorizer (rbac/v1 helpers): `*` matches any verb,
group or resource; `*/sub` matches that subresource of any resource. A rule narrowed by resourceNames
still matches (its grant names the objects), so reviewers see narrowed access too. A RoleBinding
never grants cluster-scoped resources (nodes, PVs, CSRs, webhooks, users) or nonResourceURLs, whatever
its role says, and grants in its own namespace: one without a namespace in the manifest grants in
whichever namespace it is applied to, never cluster-wide, with the Roles and service accounts of its
own group (kaudit/inventory.py: the objects of one folder without a namespace are applied together;
another folder's may land elsewhere).

Every rule remembers where it is written (`RuleSource`: a role's `rules[i]`), through aggregation too,
so a finding can sit on the line to fix. The bootstrap ClusterRoles of the API server (`admin`,
`edit`, `view`, `cluster-admin`, the `system:` ones; see bootstrap_rbac.py) are known even when a scan
of manifests does not contain them, and one the scan does contain is reconciled with the built-in one
as the API server does: its extra rules count, the built-in rules stay.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Optional

from kaudit.analyzers import bootstrap_rbac
from kaudit.inventory import CLUSTER, Inventory, Scope
from kaudit.model import Resource
from kaudit.selectors import Selector, labels_of, parse_selector
from kaudit.workloads import mapping, sequence

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


# The API server reconciles these on every start ("rbac.authorization.kubernetes.io/autoupdate"): it adds
# back any rule or aggregation label a manifest of the same name lacks, and keeps any it adds.
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


@dataclass(frozen=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: Optional[str] = None  # ServiceAccount only
    # A ServiceAccount without a namespace in the manifest: the group (folder) of the binding or pod
    # naming it, so that groups stay apart. Never shown, nor in its key: a group is not a namespace.
    group: Optional[str] = None

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
class RuleSource:
    """Where a rule is written: `rules[index]` of a role. `resource` is None when that role is not in
    the scan (built in, or from elsewhere): then the binding is the only place kaudit can point at."""

    role: str  # "ClusterRole view-logs", "Role shop/deployer"
    index: int
    resource: Optional[Resource] = None

    def describe(self) -> str:
        return f"{self.role} rules[{self.index}]"

    def key(self) -> tuple[str, int]:
        return (self.role, self.index)


@dataclass(frozen=True)
class Role:
    resource: Optional[Resource]  # None for a ClusterRole referenced but not in the scan
    kind: str  # Role | ClusterRole
    name: str
    namespace: Optional[str]
    rules: tuple[Mapping[str, Any], ...]
    aggregated_from: tuple[str, ...] = ()
    sources: tuple[RuleSource, ...] = ()  # parallel to rules
    labels: Mapping[str, str] = field(default_factory=dict)
    selectors: tuple[Selector, ...] = ()  # aggregationRule: its own rules are the controller's
    builtin: bool = False  # one of the API server's bootstrap ClusterRoles
    scope: Scope = CLUSTER  # a Role's namespace, or its group when it has none (kaudit/inventory.py)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.kind == "Role" and self.namespace else ""
        via = f" (aggregating {', '.join(self.aggregated_from)})" if self.aggregated_from else ""
        missing = ""
        if self.resource is None:
            missing = " (built in, not in the scan)" if self.builtin else " (not in the scan)"
        return f"{self.kind} {where}{self.name}{via}{missing}"

    def source_of(self, index: int) -> RuleSource:
        return self.sources[index] if index < len(self.sources) else RuleSource(self.label(), index, self.resource)

    def label(self) -> str:
        where = f"{self.namespace or '?'}/" if self.kind == "Role" else ""
        return f"{self.kind} {where}{self.name}"


def _role(resource: Resource, kind: str) -> Role:
    """A Role or ClusterRole as written in the scan; an aggregating ClusterRole's own rules are
    dropped (the controller overwrites them with its sources', which is where they are written)."""
    body = resource.body
    selectors = tuple(parse_selector(s) for s in sequence(mapping(body.get("aggregationRule")).get(
        "clusterRoleSelectors"))) if kind == "ClusterRole" else ()
    written = [] if selectors else [(mapping(r), i) for i, r in enumerate(sequence(body.get("rules")))
                                    if isinstance(r, dict)]
    namespace = resource.namespace if kind == "Role" else None
    role = Role(resource, kind, resource.name, namespace, tuple(r for r, _ in written),
                labels=labels_of(body.get("metadata")), selectors=selectors,
                scope=Inventory.scope(resource) if kind == "Role" else CLUSTER)
    return replace(role, sources=tuple(RuleSource(role.label(), i, resource) for _, i in written))


def _builtin_roles(minor: Optional[str] = None) -> dict[str, Role]:
    roles = {}
    for name, data in bootstrap_rbac.cluster_roles(minor).items():
        rules = tuple(mapping(r) for r in data["rules"])
        selectors = tuple(parse_selector(s) for s in mapping(data.get("aggregationRule")).get("clusterRoleSelectors", ()))
        roles[name] = Role(None, "ClusterRole", name, None, rules,
                           sources=tuple(RuleSource(f"ClusterRole {name}", i) for i in range(len(rules))),
                           labels=dict(data["labels"]), selectors=selectors, builtin=True)
    return roles


def _reconcile(scanned: Role, builtin: Role) -> Role:
    """What the API server makes of a bootstrap ClusterRole it finds changed: the built-in rules and
    aggregation labels are put back, anything the object adds stays. `autoupdate: "false"` opts out."""
    assert scanned.resource is not None
    annotations = mapping(mapping(scanned.resource.body.get("metadata")).get("annotations"))
    if str(annotations.get(AUTOUPDATE, "true")).lower() == "false":
        return scanned
    extra = [(rule, source) for rule, source in zip(scanned.rules, scanned.sources) if rule not in builtin.rules]
    rules = builtin.rules + tuple(rule for rule, _ in extra)
    sources = builtin.sources + tuple(source for _, source in extra)
    return replace(scanned, rules=rules, sources=sources, labels={**scanned.labels, **builtin.labels},
                   selectors=scanned.selectors or builtin.selectors, builtin=True)


@dataclass(frozen=True)
class Grant:
    subject: Subject
    binding: Resource
    role: Role
    rule_index: int
    rule: Mapping[str, Any]
    scope: Optional[str]  # the namespace a RoleBinding grants in (None: not in the manifest)
    namespaced: bool = False  # through a RoleBinding; False = cluster-wide
    source: Optional[RuleSource] = None  # where the rule is written

    def where(self) -> str:
        if not self.namespaced:
            return "cluster-wide"
        return f"in namespace {self.scope}" if self.scope else "in the namespace the RoleBinding is applied to"

    def binding_text(self) -> str:
        return f"{self.binding.kind} {binding_name(self.binding)}"

    def path(self) -> str:
        source = self.source or self.role.source_of(self.rule_index)
        return (f"{self.subject.describe()} -> {self.binding_text()} -> {self.role.describe()} -> "
                f"{source.describe()} ({describe_rule(self.rule)}), {self.where()}")


def binding_name(binding: Resource) -> str:
    return f"{binding.namespace}/{binding.name}" if binding.namespace else binding.name


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
    roles: dict[tuple[Scope, str], Role] = field(default_factory=dict)  # (scope, name) of Roles
    cluster_roles: dict[str, Role] = field(default_factory=dict)
    bindings: list[Resource] = field(default_factory=list)
    grants_by_binding: dict[int, list[Grant]] = field(default_factory=dict)  # id(binding resource)
    grants_by_subject: dict[Subject, list[Grant]] = field(default_factory=dict)
    grants_by_source: dict[tuple[int, int], list[Grant]] = field(default_factory=dict)  # (id(role), index)
    # Earlier declarations of a role the scan declares twice (by id of the object): the cluster keeps
    # whichever is applied last, so each is judged as if it were the one, bindings included.
    shadowed: dict[int, Role] = field(default_factory=dict)
    _first_grant: dict[tuple[Subject, str], Optional[Grant]] = field(default_factory=dict)

    def role_for(self, binding: Resource) -> Optional[Role]:
        ref = mapping(binding.body.get("roleRef"))
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            return self.cluster_roles.get(name) or Role(None, "ClusterRole", name, None, ())
        if kind == "Role" and binding.kind == "RoleBinding":
            scope = Inventory.scope(binding)
            return self.roles.get((scope, name)) or Role(None, "Role", name, binding.namespace, (), scope=scope)
        return None

    def roles_for(self, binding: Resource) -> list[Role]:
        """The role a binding refers to, and each earlier declaration of it in the scan."""
        role = self.role_for(binding)
        if role is None:
            return []
        others = [r for r in self.shadowed.values() if r.kind == role.kind and r.name == role.name
                  and r.scope == role.scope]
        return [role, *others]

    def grants_of(self, subject: Subject) -> list[Grant]:
        seen: list[Grant] = []
        for identity in subject.identities():
            seen.extend(self.grants_by_subject.get(identity, ()))
        return seen

    def role_of(self, resource: Resource) -> Optional[Role]:
        """The effective Role or ClusterRole a scanned object is (reconciled, aggregated)."""
        role = self.roles.get((Inventory.scope(resource), resource.name)) if resource.kind == "Role" else \
            self.cluster_roles.get(resource.name)
        if role is not None and role.resource is resource:
            return role
        return self.shadowed.get(id(resource))

    def holders(self, role: Resource, index: int) -> list[Grant]:
        """The grants of `rules[index]` of this Role or ClusterRole of the scan, whichever role
        (aggregating it) and binding they come through."""
        return self.grants_by_source.get((id(role), index), [])

    def first_grant(self, subject: Subject, permission: "Permission") -> Optional[Grant]:
        """The first grant giving `subject` (or a group it is in) this permission; cached, since many
        workloads share one service account."""
        key = (subject, permission.key)
        if key not in self._first_grant:
            self._first_grant[key] = next((g for g in self.grants_of(subject)
                                           if permission.matches(g.rule, namespaced=g.namespaced)), None)
        return self._first_grant[key]

    def who_can(self, verb: str, group: str, resource: str, namespace: Optional[str]) -> list[Grant]:
        """Grants that allow it: cluster-wide ones always, namespaced ones in `namespace` (any if None)."""
        found = []
        for grants in self.grants_by_subject.values():
            for grant in grants:
                if namespace is not None and grant.namespaced and grant.scope not in (None, namespace):
                    continue  # a RoleBinding with no namespace may be applied to any
                if grant.namespaced and (resource in CLUSTER_SCOPED or not sequence(grant.rule.get("resources"))):
                    continue
                if rule_allows(grant.rule, verb, group, resource):
                    found.append(grant)
        return found


def binding_subjects(binding: Resource) -> list[Subject]:
    return [subject for _, subject in indexed_binding_subjects(binding)]


def indexed_binding_subjects(binding: Resource) -> list[tuple[int, Subject]]:
    """Each subject the binding grants to, with its index in `subjects` (entries naming no User,
    Group or ServiceAccount are skipped, so the index is not the position in the result)."""
    group = Inventory.scope(binding).group  # a RoleBinding without a namespace: its folder's accounts
    parsed = ((index, parse_subject(entry, binding.namespace, group))
              for index, entry in enumerate(sequence(binding.body.get("subjects"))))
    return [(index, subject) for index, subject in parsed if subject is not None]


def parse_subject(entry: Any, binding_namespace: Optional[str], group: Optional[str] = None) -> Optional[Subject]:
    """One `subjects[j]` as the API server reads it; None when it names no User, Group or ServiceAccount.
    `group`: the folder of a namespace-less RoleBinding, for its namespace-less service accounts."""
    entry = mapping(entry)
    kind, name = entry.get("kind"), entry.get("name")
    if kind not in ("User", "Group", "ServiceAccount") or not isinstance(name, str):
        return None
    namespace = entry.get("namespace") if kind == "ServiceAccount" else None
    if kind == "ServiceAccount" and not namespace:
        namespace = binding_namespace  # RoleBinding subjects default to the binding's namespace
    if kind == "User" and name.startswith("system:serviceaccount:") and name.count(":") == 3:
        kind, (_, _, namespace, name) = "ServiceAccount", name.split(":")  # a service account by its username
    return Subject(kind, name, namespace, group if kind == "ServiceAccount" and not namespace else None)


def _aggregate(cluster_roles: dict[str, Role]) -> dict[str, Role]:
    """Fill aggregating ClusterRoles with the rules of the roles their selectors pick, built-in or
    scanned (to a fixpoint: an aggregated role can aggregate other aggregated roles). Each rule keeps
    the place it is written."""
    aggregating = [name for name, role in cluster_roles.items() if role.selectors]
    current = dict(cluster_roles)
    for _ in range(len(aggregating) + 1):
        changed = False
        for name in aggregating:
            role = cluster_roles[name]
            picked = sorted(other for other, candidate in current.items()
                            if other != name and any(s.matches(candidate.labels) for s in role.selectors))
            pairs = list(zip(role.rules, role.sources))
            seen = {source.key() for _, source in pairs}
            for other in picked:
                for rule, source in zip(current[other].rules, current[other].sources):
                    if source.key() not in seen:
                        seen.add(source.key())
                        pairs.append((rule, source))
            if len(pairs) != len(current[name].rules):
                current[name] = replace(role, rules=tuple(r for r, _ in pairs), sources=tuple(s for _, s in pairs),
                                        aggregated_from=tuple(picked))
                changed = True
        if not changed:
            break
    return current


def rbac_index(lookup: Any) -> RbacIndex:
    cached = lookup.memo.get("rbac")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    index = RbacIndex()
    builtins = _builtin_roles()
    cluster_roles = dict(builtins)
    earlier: list[Role] = []
    for resource in lookup.resources:
        if not resource.ref.api_version.startswith(RBAC_GROUP + "/"):
            continue
        if resource.kind == "Role":
            role = _role(resource, "Role")
            previous = index.roles.get((role.scope, resource.name))
            if previous is not None:
                earlier.append(previous)
            index.roles[(role.scope, resource.name)] = role
        elif resource.kind == "ClusterRole":
            scanned = _role(resource, "ClusterRole")
            builtin = builtins.get(resource.name)
            previous = cluster_roles.get(resource.name)
            if previous is not None and previous.resource is not None:
                earlier.append(previous)
            cluster_roles[resource.name] = _reconcile(scanned, builtin) if builtin is not None else scanned
        elif resource.kind in ("RoleBinding", "ClusterRoleBinding"):
            index.bindings.append(resource)
    index.cluster_roles = _aggregate(cluster_roles)
    index.shadowed = {id(role.resource): role for role in earlier}
    for binding in index.bindings:
        grants: list[Grant] = []
        for role in index.roles_for(binding):
            namespaced = binding.kind == "RoleBinding"
            scope = binding.namespace if namespaced else None
            for subject in binding_subjects(binding):
                for rule_index, rule in enumerate(role.rules):
                    source = role.source_of(rule_index)
                    grant = Grant(subject, binding, role, rule_index, rule, scope, namespaced, source)
                    grants.append(grant)
                    index.grants_by_subject.setdefault(subject, []).append(grant)
                    if source.resource is not None:
                        index.grants_by_source.setdefault((id(source.resource), source.index), []).append(grant)
        index.grants_by_binding[id(binding)] = grants
    lookup.memo["rbac"] = index
    return index


# --- dangerous permissions: each a name, a description and the requests that reveal it ------------

@dataclass(frozen=True)
class Permission:
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
        return any(rule_allows(rule, verb, group, resource) for verb, group, resource in self.requests
                   if not (namespaced and resource in CLUSTER_SCOPED))


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
