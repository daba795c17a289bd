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

from typing import Any, Iterable, Mapping, Optional

from kaudit.analyzers import bootstrap_rbac
from kaudit.analyzers.permissions import (  # re-exported: the analysis speaks of them
    ALL, CLUSTER_SCOPED, PERMISSIONS, RBAC_GROUP, SYSTEM_GROUPS_FOR_EVERYONE, Permission, describe_rule,
    is_system_subject, rule_allows, rule_key,
)
from kaudit.inventory import CLUSTER, Inventory, Scope, memoized
from kaudit.model import Resource
from kaudit.selectors import Selector, labels_of, parse_selector
from kaudit.value import field, record, replace, value
from kaudit.workloads import mapping, sequence

# The API server reconciles these on every start ("rbac.authorization.kubernetes.io/autoupdate"): it adds
# back any rule or aggregation label a manifest of the same name lacks, and keeps any it adds.
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"


@value
class Subject:
    """A User, Group or ServiceAccount as RBAC bindings name it."""

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


@value
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


@value
class Role:
    """A Role or ClusterRole as the API server sees it: reconciled, aggregated, with where each rule is written."""

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


@value
class Grant:
    """One PolicyRule reaching one subject through one binding."""

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



@record
class RbacIndex:
    """The scan's roles, bindings and grants, indexed by subject, binding and rule."""

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
    if namespace is not None and not isinstance(namespace, str):
        return None  # `namespace: {…}`: the API server rejects the binding, which grants nothing
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
    """Who holds what in this inventory, built once per scan and kept in its memo."""
    return memoized(lookup, "rbac", _build_rbac_index)


def _build_rbac_index(lookup: Any) -> RbacIndex:
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
    return index
