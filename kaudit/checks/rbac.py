"""RBAC templates: dangerous grants per binding, risky subjects, and workloads that inherit them."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.analyzers.rbac import PERMISSIONS, SYSTEM_GROUPS_FOR_EVERYONE, Subject, binding_subjects, \
    is_system_subject, rbac_index, rule_key
from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

BINDING_PARAMS = {
    "type": "object",
    "required": ["permission"],
    "additionalProperties": False,
    "properties": {
        "permission": {"enum": sorted(PERMISSIONS)},
        "include-system-subjects": {"type": "boolean", "default": False,
                                    "description": "also report control-plane identities (system:masters, system:*)"},
    },
}


def _binding_grants(params: Mapping[str, Any], target: str) -> Check:
    permission = PERMISSIONS[params["permission"]]
    include_system = params.get("include-system-subjects", False)

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        index = rbac_index(subject.lookup)
        hits = []
        reported: set[tuple[Subject, int]] = set()
        for grant in index.grants_by_binding.get(id(subject.resource), ()):
            if not include_system and is_system_subject(grant.subject):
                continue
            if (grant.subject, grant.rule_index) in reported or \
                    not permission.matches(grant.rule, namespaced=grant.scope is not None):
                continue
            reported.add((grant.subject, grant.rule_index))
            hits.append(Hit(("roleRef",), {"does": permission.does, "grant": grant.path(),
                                           "subject": grant.subject.describe()},
                            fact=f"{grant.subject.key()} {rule_key(grant.rule)}"))
        return hits

    return check


SUBJECT_PARAMS = {
    "type": "object",
    "required": ["subjects"],
    "additionalProperties": False,
    "properties": {"subjects": {"enum": ["everyone", "default-service-account"]}},
}


def _risky_subjects(params: Mapping[str, Any], target: str) -> Check:
    which = params["subjects"]

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        role = rbac_index(subject.lookup).role_for(subject.resource)
        role_text = role.describe() if role is not None else "an unresolvable roleRef"
        hits = []
        for index, member in enumerate(binding_subjects(subject.resource)):
            if which == "everyone" and member.kind in ("Group", "User") and member.name in SYSTEM_GROUPS_FOR_EVERYONE:
                hits.append(Hit(("subjects", index), {"subject": member.describe(), "role": role_text},
                                fact=member.key()))
            if which == "default-service-account" and member.kind == "ServiceAccount" and member.name == "default":
                hits.append(Hit(("subjects", index), {"subject": member.describe(), "role": role_text},
                                fact=member.key()))
        return hits

    return check


WORKLOAD_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"permissions": {"type": "array", "minItems": 1, "items": {"enum": sorted(PERMISSIONS)}}},
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
    sa = target.lookup.get("ServiceAccount", target.resource.namespace, str(account)) if target.lookup else None
    return not (sa is not None and sa.body.get("automountServiceAccountToken") is False)


def _workload_identity(params: Mapping[str, Any], target: str) -> Check:
    wanted = [PERMISSIONS[key] for key in params.get("permissions", DANGEROUS)]

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None and subject.lookup is not None
        if not token_mounted(subject):
            return ()
        account = str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")
        identity = Subject("ServiceAccount", account, subject.resource.namespace)
        # the token works wherever its account is bound, not only in the pod's own namespace
        index = rbac_index(subject.lookup)
        hits = []
        for permission in wanted:
            grant = index.first_grant(identity, permission)
            if grant is not None:
                where = pod.path + ("serviceAccountName",)
                hits.append(Hit(where, {"does": permission.does, "grant": grant.path(),
                                        "serviceAccount": identity.describe()}, fact=permission.key))
        return hits

    return check


TEMPLATES = [
    Template("rbac-binding-grants", "A binding grants its subjects a dangerous permission (named by path).",
             frozenset({"object"}), BINDING_PARAMS, _binding_grants, cross_object=True, reads=frozenset({"Role", "ClusterRole"})),
    Template("rbac-risky-subjects", "Bindings to everyone (anonymous / all users) or to the default service account.",
             frozenset({"object"}), SUBJECT_PARAMS, _risky_subjects),
    Template("workload-rbac", "A workload's mounted service account token carries dangerous permissions.",
             frozenset({"pod"}), WORKLOAD_PARAMS, _workload_identity, cross_object=True, reads=frozenset({"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})),
]
