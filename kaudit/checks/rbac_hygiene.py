"""RBAC hygiene over the whole scan: service accounts no binding names, and subjects holding many roles.

Both read every RoleBinding and ClusterRoleBinding of the scan (kaudit/analyzers/rbac.py) and the
platform's verdict on each (kaudit/platform.py). The bootstrap policy binds groups every account is
in (`system:serviceaccounts` to `system:service-account-issuer-discovery`, `system:authenticated`
to discovery roles); those default subjects say nothing about one account, so they neither bind an
account nor add to anyone's roles. A binding's other subjects (a platform binding naming a
controller's own account, or a subject added to a default binding) count like any other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from kaudit.analyzers.permissions import is_system_subject
from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.inventory import Inventory, Scope, memoized
from kaudit.model import Resource
from kaudit.value import field, record, value
from kaudit.workloads import pod_specs, sequence

if TYPE_CHECKING:
    from kaudit.analyzers.rbac import RbacIndex, Subject

# The RBAC index and the platform's verdicts are imported where a scan's bindings are indexed: a
# scan without RBAC objects never loads them.

# Groups the API server puts every account in (and every caller, for the first two): they are
# everyone's, reported by binding-to-everyone / binding-to-all-service-accounts, not one subject's.
EVERYONE_GROUPS = frozenset({"system:authenticated", "system:unauthenticated"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})
WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob",
                            "ReplicationController"})
MAX_ROLES_NAMED = 6  # roles named in a message; the rest are counted


@value
class Named:
    """One `subjects[index]` entry of a binding, and the role the binding refers to."""

    binding: Resource
    index: int
    role: Optional[tuple[str, str]]  # (identity, text): ("ClusterRole:edit", "ClusterRole edit"); None: no role


@record
class SubjectIndex:
    """Who each binding of the scan names, and how many bindings there are."""

    named: dict[Subject, list[Named]] = field(default_factory=dict)  # in binding order
    first: dict[int, list[Subject]] = field(default_factory=dict)  # id(binding) -> subjects it names first
    bindings: int = 0  # bindings in the scan, platform ones included


def _role_of(index: RbacIndex, binding: Resource) -> Optional[tuple[str, str]]:
    role = index.role_for(binding)
    if role is None:
        return None
    scope = role.scope
    where = f"{role.namespace or scope.group or '?'}/" if role.kind == "Role" else ""
    return (f"{role.kind}:{scope.namespace}:{scope.group}:{role.name}", f"{role.kind} {where}{role.name}")


def subject_index(lookup: Any) -> SubjectIndex:
    """Who each binding of the scan names, without the platform's default subjects; once per scan."""
    return memoized(lookup, "rbac-subjects", _build_subject_index)


def _build_subject_index(lookup: Any) -> SubjectIndex:
    from kaudit.analyzers.rbac import parse_subject, rbac_index
    from kaudit.platform import verdict_of

    index = rbac_index(lookup)
    found = SubjectIndex(bindings=len(index.bindings))
    for binding in index.bindings:
        verdict = verdict_of(binding, lookup)
        if verdict is not None and verdict.is_default:
            continue  # identical to the platform's: every subject of it is a default one
        defaults = verdict.default_subjects if verdict is not None else frozenset()
        role = _role_of(index, binding)
        group = Inventory.scope(binding).group
        for position, entry in enumerate(sequence(binding.body.get("subjects"))):
            subject = parse_subject(entry, binding.namespace, group)
            if subject is None or subject.key() in defaults:
                continue
            if subject not in found.named:
                found.first.setdefault(id(binding), []).append(subject)
            found.named.setdefault(subject, []).append(Named(binding, position, role))
    return found


def _groups(subject: Subject) -> list[Subject]:
    """The groups the index resolves for `subject`, without the everyone groups."""
    return [g for g in subject.identities()[1:] if g.name not in EVERYONE_GROUPS]


# --- service accounts no binding names --------------------------------------------------------------

UNBOUND_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "include-used": {"type": "boolean", "default": False,
                         "description": "also report accounts a workload of the scan runs as (an identity with "
                                        "no API rights is least privilege, so off by default)"},
    },
}


def _accounts_in_use(lookup: Any) -> dict[tuple[Scope, str], Resource]:
    """(scope, account) -> the first workload of the scan whose pods run as it."""
    return memoized(lookup, "service-accounts-in-use", _build_accounts_in_use)


def _build_accounts_in_use(lookup: Any) -> dict[tuple[Scope, str], Resource]:
    used: dict[tuple[Scope, str], Resource] = {}
    for resource in lookup.resources:
        if resource.kind in BINDING_KINDS or resource.kind == "ServiceAccount":
            continue
        for pod in pod_specs(resource.body):
            if pod.pod_level:
                account = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default"
                used.setdefault((lookup.scope(resource), str(account)), resource)
    return used


def _unbound(params: Mapping[str, Any], target: str) -> Check:
    include_used = params.get("include-used", False)

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        account = subject.resource
        if account.ref.api_version != "v1" or account.name == "default":
            # every namespace's default account: what pods without serviceAccountName run as, and
            # unbound is where it should stay (CIS 5.1.5)
            return ()
        if not any(subject.lookup.of_kind(kind) for kind in BINDING_KINDS):
            return ()  # the scan holds no bindings: nothing to say who is bound
        found = subject_index(subject.lookup)
        if not found.bindings:
            return ()
        from kaudit.analyzers.rbac import Subject

        scope = subject.lookup.scope(account)
        identity = Subject("ServiceAccount", account.name, scope.namespace, scope.group)
        if identity in found.named or any(g in found.named for g in _groups(identity)):
            return ()
        user = _accounts_in_use(subject.lookup).get((scope, account.name))
        if user is not None and not include_used:
            return ()
        used = f", though {user.kind} {user.name} runs as it" if user is not None else \
            ", and no workload of the scan runs as it"
        return (Hit(("metadata", "name"), {"bindings": str(found.bindings), "used": used}),)

    return check


# --- subjects holding many roles ----------------------------------------------------------------------

MANY_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min-roles": {"type": "integer", "minimum": 2, "default": 5,
                      "description": "report a subject that holds at least this many distinct roles"},
        "include-system-subjects": {"type": "boolean", "default": False,
                                    "description": "also report control-plane identities (system:masters, system:*)"},
    },
}


def _many_roles(params: Mapping[str, Any], target: str) -> Check:
    threshold = int(params.get("min-roles", 5))
    include_system = params.get("include-system-subjects", False)

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        found = subject_index(subject.lookup)
        hits = []
        for member in found.first.get(id(subject.resource), ()):  # each subject once: on its first binding
            if is_system_subject(member) and not include_system:
                continue
            entries = found.named[member]
            first = entries[0]
            through = [(e, False) for e in entries] + [(e, True) for g in _groups(member)
                                                     for e in found.named.get(g, ())]
            roles: dict[str, str] = {}
            bindings: set[int] = set()
            from_groups: set[str] = set()
            for entry, via_group in through:
                if entry.role is None:
                    continue
                roles.setdefault(entry.role[0], entry.role[1])
                bindings.add(id(entry.binding))
                if via_group:
                    from_groups.add(entry.role[0])
            if len(roles) < threshold:
                continue
            names = sorted(roles.values())
            more = f" and {len(names) - MAX_ROLES_NAMED} more" if len(names) > MAX_ROLES_NAMED else ""
            groups = f", {len(from_groups)} of them through its groups" if from_groups else ""
            hits.append(Hit(("subjects", first.index), {
                "subject": member.describe(), "count": str(len(roles)), "threshold": str(threshold),
                "roles": ", ".join(names[:MAX_ROLES_NAMED]) + more,
                "bindings": f"{len(bindings)} binding{'s' if len(bindings) != 1 else ''}{groups}"},
                fact=member.key(), subject=member.key()))
        return hits

    return check


READS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
TEMPLATES = [
    Template("rbac-unbound-service-account", "ServiceAccounts no RoleBinding or ClusterRoleBinding of the scan names "
                                             "(directly or through their groups).",
             frozenset({"object"}), UNBOUND_PARAMS, _unbound, cross_object=True,
             reads=frozenset({"RoleBinding", "ClusterRoleBinding"}) | WORKLOAD_KINDS),
    Template("rbac-many-roles", "A subject holding at least a number of distinct roles, through its bindings and "
                                "groups.",
             frozenset({"object"}), MANY_PARAMS, _many_roles, cross_object=True, reads=READS),
]
