"""RBAC templates: dangerous grants where they are written (role rules, or bindings to roles outside
the scan), risky subjects, and workloads that inherit them.

Severity is graded per finding (`Hit.demote`, levels below the rule's severity): a grant nobody
holds yet (latent) is one level lower, a rule narrowed by resourceNames two, a wildcard confined to
named non-core API groups one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kaudit.analyzers.permissions import ALL, PERMISSIONS, Permission, describe_rule, is_system_subject, rule_key
from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

if TYPE_CHECKING:
    from kaudit.analyzers.rbac import Grant, RbacIndex, RuleSource, Subject

# The RBAC index (kaudit/analyzers/rbac.py) is imported by the checks that use it, when a rule first
# meets an RBAC object or a scan with bindings: a manifest scan without them never loads it.
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")

BINDING_PARAMS = {
    "type": "object",
    "required": ["permission"],
    "additionalProperties": False,
    "properties": {
        "permission": {"enum": sorted(PERMISSIONS),
                       "description": "the dangerous permission a role grants or a binding hands out"},
        "include-system-subjects": {"type": "boolean", "default": False,
                                    "description": "also report control-plane identities (system:masters, system:*)"},
    },
}
LATENT = 1  # levels below the rule's severity for a grant no binding of the scan gives anyone
NAMED = 2  # ... for a rule narrowed by resourceNames: those objects only
GROUP_SCOPED = 1  # ... for a wildcard confined to named API groups other than the core one
ELSEWHERE = 1  # ... for a grant that reaches none of the permission's sensitive namespaces
MAX_HOLDERS = 3  # holders named in a message; the rest are counted


def grade(permission: Permission, rule: Mapping[str, Any]) -> tuple[int, str]:
    """How far below the rule's severity a grant of `rule` sits, and the words that say why."""
    demote, notes = 0, []
    names = [str(n) for n in sequence(rule.get("resourceNames"))]
    if names:
        demote += NAMED
        notes.append(f"only on the objects named {', '.join(names)}")
    groups = [str(g) for g in sequence(rule.get("apiGroups"))]
    if permission.key == "wildcard" and groups and ALL not in groups and "" not in groups:
        demote += GROUP_SCOPED
        notes.append(f"in API group{'s' if len(groups) > 1 else ''} {', '.join(groups)} only")
    return demote, "".join(f", {note}" for note in notes)


def reaches_sensitive(permission: Permission, grants: Iterable[Grant]) -> bool:
    """Does one of these grants reach a namespace where the permission is at its worst: cluster-wide
    (a ClusterRoleBinding), or through a RoleBinding in that namespace? A RoleBinding without a
    namespace is applied wherever its folder goes: not known to, so not counted."""
    return any(not g.namespaced or g.scope in permission.sensitive_namespaces for g in grants)


def _place(permission: Permission, reaches: bool) -> tuple[int, str]:
    """Levels below and the words for where a grant of a namespace-graded permission reaches."""
    if not permission.sensitive_namespaces:
        return 0, ""
    where = " or ".join(permission.sensitive_namespaces)
    if reaches:
        return 0, f", reaching {where} ({permission.sensitive_why})"
    return ELSEWHERE, f", outside {where}"


def _holders_text(grants: list[Grant]) -> str:
    by_subject: dict[Subject, list[str]] = {}
    for grant in grants:
        via = f"{grant.binding_text()} {grant.where()}"
        if via not in by_subject.setdefault(grant.subject, []):
            by_subject[grant.subject].append(via)
    parts = [f"{subject.describe()} (via {'; '.join(vias)})" for subject, vias in by_subject.items()]
    more = f" and {len(parts) - MAX_HOLDERS} more" if len(parts) > MAX_HOLDERS else ""
    return ", ".join(parts[:MAX_HOLDERS]) + more


def _role_rule_hits(index: RbacIndex, target: Target, permission: Permission, include_system: bool) -> list[Hit]:
    """On a Role or ClusterRole: each `rules[i]` it writes that gives the permission, with who holds
    it and through which bindings, or latent (lower) when no binding of the scan gives it anyone."""
    role = index.role_of(target.resource)
    if role is None or permission.key == "cluster-admin":  # cluster-admin bound is the binding's fact
        return []
    hits = []
    own = [(rule, source) for rule, source in zip(role.rules, role.sources) if source.resource is target.resource]
    for rule, source in own:
        holders = index.holders(target.resource, source.index)
        held = [g for g in holders if permission.matches(rule, namespaced=g.namespaced)]
        if held:
            shown = [g for g in held if include_system or not is_system_subject(g.subject)]
            if not shown:
                continue  # the control plane's own grant
            hits.append(_rule_hit(permission, rule, source, _holders_text(shown), rule_key(rule), 0,
                                  reaches_sensitive(permission, shown)))
        elif not holders and permission.matches(rule, namespaced=role.kind == "Role"):
            # latent: one `kubectl create rolebinding` away. A role bound only through RoleBindings
            # that cannot carry this rule (cluster-scoped resources) grants it to nobody: not reported.
            # A ClusterRole is made to be bound anywhere (cluster-wide too); a Role where it is.
            who = "Whoever it is bound to (not bound in the scanned objects)"
            reaches = role.kind == "ClusterRole" or role.namespace in permission.sensitive_namespaces
            hits.append(_rule_hit(permission, rule, source, who, f"latent {rule_key(rule)}", LATENT, reaches))
    return hits


def _rule_hit(permission: Permission, rule: Mapping[str, Any], source: RuleSource, subject: str, fact: str,
              demote: int, reaches: bool) -> Hit:
    """The finding on `rules[i]` of a role; its words are made only for a rule that grants (each
    role is read by every grant rule, and most of its rules grant none of their permissions)."""
    graded, note = grade(permission, rule)
    placed, where = _place(permission, reaches)
    return Hit(("rules", source.index), {"does": permission.does + where + note,
                                         "grant": f"{source.describe()} ({describe_rule(rule)})", "subject": subject},
               fact=fact, demote=demote + graded + placed)


def _binding_hits(index: RbacIndex, target: Target, permission: Permission, include_system: bool) -> list[Hit]:
    """On a binding: grants of rules written outside the scan (built-in or foreign roles), which have
    no line of their own to point at; and cluster-admin (or an equivalent) bound, whatever wrote it."""
    hits = []
    reported: set[tuple[Subject, str]] = set()
    for grant in index.grants_by_binding.get(id(target.resource), ()):
        in_scan = grant.source is not None and grant.source.resource is not None
        if (in_scan and permission.key != "cluster-admin") or \
                (not include_system and is_system_subject(grant.subject)) or \
                not permission.matches(grant.rule, namespaced=grant.namespaced):
            continue
        key = (grant.subject, rule_key(grant.rule))
        if key in reported:
            continue
        reported.add(key)
        demote, note = grade(permission, grant.rule)
        placed, where = _place(permission, reaches_sensitive(permission, [grant]))
        hits.append(Hit(("roleRef",), {"does": permission.does + where + note, "grant": grant.path(),
                                       "subject": grant.subject.describe()},
                        fact=f"{grant.subject.key()} {rule_key(grant.rule)}", demote=demote + placed,
                        subject=grant.subject.key()))
    return hits


def _binding_grants(params: Mapping[str, Any], target: str) -> Check:
    permission = PERMISSIONS[params["permission"]]
    include_system = params.get("include-system-subjects", False)

    from kaudit.analyzers.rbac import rbac_index

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        index = rbac_index(subject.lookup)
        if subject.resource.kind in ("Role", "ClusterRole"):
            return _role_rule_hits(index, subject, permission, include_system)
        return _binding_hits(index, subject, permission, include_system)

    return check


SUBJECT_PARAMS = {
    "type": "object",
    "required": ["subjects"],
    "additionalProperties": False,
    "properties": {"subjects": {
        "enum": ["everyone", "all-service-accounts", "default-service-account"],
        "description": "everyone: system:authenticated, system:unauthenticated or system:anonymous; "
                       "all-service-accounts: system:serviceaccounts; default-service-account: a namespace's default"}},
}
# Who each `subjects` value means, by the names the API server gives them (not by look-alikes).
EVERYONE = {("Group", "system:authenticated"), ("Group", "system:unauthenticated"), ("User", "system:anonymous")}
ALL_SERVICE_ACCOUNTS = {("Group", "system:serviceaccounts")}


def _risky_subjects(params: Mapping[str, Any], target: str) -> Check:
    which = params["subjects"]
    from kaudit.analyzers.rbac import indexed_binding_subjects, rbac_index

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        role = rbac_index(subject.lookup).role_for(subject.resource)
        role_text = role.describe() if role is not None else "an unresolvable roleRef"
        hits = []
        for index, member in indexed_binding_subjects(subject.resource):
            if (which == "everyone" and (member.kind, member.name) in EVERYONE) or \
                    (which == "all-service-accounts" and (member.kind, member.name) in ALL_SERVICE_ACCOUNTS):
                hits.append(Hit(("subjects", index), {"subject": member.describe(), "role": role_text},
                                fact=member.key(), subject=member.key()))
            if which == "default-service-account" and member.kind == "ServiceAccount" and member.name == "default":
                hits.append(Hit(("subjects", index), {"subject": member.describe(), "role": role_text},
                                fact=member.key(), subject=member.key()))
        return hits

    return check


WORKLOAD_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"permissions": {"type": "array", "minItems": 1, "items": {"enum": sorted(PERMISSIONS)},
                                   "description": "the permissions a workload's service account must not hold "
                                                  "(default: the dangerous ones)"}},
}
DANGEROUS = ["cluster-admin", "wildcard", "secrets-read", "pod-exec", "create-workloads", "escalate-bind-impersonate",
             "nodes-proxy", "csr-approval", "webhook-write", "token-create", "create-persistentvolumes"]


def token_mounted(target: Target) -> bool:
    """Is a token of the pod's service account in the pod: automounted, or projected by a volume."""
    pod = target.pod
    assert pod is not None
    for volume in sequence(pod.spec.get("volumes")):
        sources = sequence(mapping(mapping(volume).get("projected")).get("sources"))
        if any(mapping(source).get("serviceAccountToken") is not None for source in sources):
            return True
    setting = pod.spec.get("automountServiceAccountToken")
    if setting is not None:
        return setting is not False
    account = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default"
    lookup = target.lookup
    sa = lookup.get("ServiceAccount", lookup.scope(target.resource), str(account)) if lookup is not None else None
    return not (sa is not None and sa.body.get("automountServiceAccountToken") is False)


def _workload_identity(params: Mapping[str, Any], target: str) -> Check:
    wanted = [PERMISSIONS[key] for key in params.get("permissions", DANGEROUS)]

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None and subject.lookup is not None
        if not token_mounted(subject):
            return ()
        # Only the scan's bindings grant (kaudit/analyzers/rbac.py): without one, no token carries anything.
        if not any(subject.lookup.of_kind(kind) for kind in BINDING_KINDS):
            return ()
        from kaudit.analyzers.rbac import Subject, rbac_index

        account = str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")
        scope = subject.lookup.scope(subject.resource)
        identity = Subject("ServiceAccount", account, scope.namespace, scope.group)
        # the token works wherever its account is bound, not only in the pod's own namespace
        index = rbac_index(subject.lookup)
        found = [(permission, grant) for permission in wanted
                 if (grant := index.first_grant(identity, permission)) is not None]
        if not found:
            return ()
        # One fact: this token carries these permissions. cluster-admin (or its equal) says all.
        keys = {permission.key for permission, _ in found}
        shown = [(p, g) for p, g in found if p.key == "cluster-admin"] if "cluster-admin" in keys else found
        grants = {g.path() for _, g in found}
        more = f" (and {len(grants) - 1} more grant{'s' if len(grants) > 2 else ''})" if len(grants) > 1 else ""
        return (Hit(pod.path + ("serviceAccountName",),
                    {"does": _and([permission.does for permission, _ in shown]), "grant": shown[0][1].path() + more,
                     "serviceAccount": identity.describe(), "permissions": ", ".join(sorted(keys))}),)

    return check


def _and(phrases: list[str]) -> str:
    """"can read secrets", "can exec into pods" -> "can read secrets and can exec into pods"."""
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


TEMPLATES = [
    Template("rbac-binding-grants", "A role rule grants a dangerous permission (with who holds it), or a binding "
                                    "grants one from a role outside the scan.",
             frozenset({"object"}), BINDING_PARAMS, _binding_grants, cross_object=True,
             reads=frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})),
    Template("rbac-risky-subjects", "Bindings to everyone (anonymous / all users), to every service account, or to "
                                    "the default service account.",
             frozenset({"object"}), SUBJECT_PARAMS, _risky_subjects),
    Template("workload-rbac", "A workload's mounted service account token carries dangerous permissions.",
             frozenset({"pod"}), WORKLOAD_PARAMS, _workload_identity, cross_object=True, reads=frozenset({"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})),
]
