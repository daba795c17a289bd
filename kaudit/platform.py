"""Objects the platform owns, recognised by their content, never by their name or labels.

A Kubernetes cluster comes with objects nobody installed: the API server's bootstrap RBAC policy
(`cluster-admin`, `system:*` roles and bindings, reconciled at every start) and a few objects the
control plane creates and keeps as they are. Findings on them are about Kubernetes, not about the
cluster's owners, so a scan does not report them (they are counted; `--include-platform` shows them).

- **Bootstrap RBAC** (kaudit/data/bootstrap-rbac.json, per minor): a ClusterRole, Role, ClusterRoleBinding
  or RoleBinding is a platform default when it is *identical* to its definition: same kind, namespace
  and name; the same rules (lists compared as sets, an empty list as a missing one); the same
  aggregationRule and `aggregate-to-*` labels; the same roleRef; the same subjects or fewer. An
  aggregating ClusterRole's rules are the aggregation controller's copy: only its aggregationRule is
  compared. A cluster scan compares with the server's minor (the nearest shipped one when that minor
  is not shipped); a manifest scan does not know its server, so any shipped minor will do.
- **Control-plane objects**: the `kubernetes` Service of namespace `default` as the API server keeps it
  (ClusterIP, no selector, one port 443 named https, no external IPs), and each namespace's
  `kube-root-ca.crt` ConfigMap as the root-ca-cert-publisher writes it (data key `ca.crt` only).
  Both are put back by their controller when changed. And each namespace's `default`
  ServiceAccount as its controller creates it (nothing beyond metadata but the legacy token
  controller's `default-token-*` secrets), which nobody can delete or move: a finding that it
  exists or where it is (it is "in the default namespace") is noise.
- **Except what the owner is asked to set**: `automountServiceAccountToken: false` on the `default`
  ServiceAccount is a hardening step the cluster's owner takes (CIS 5.1.5); the controller never
  resets it. So `default-service-account-automount` keeps reporting default ServiceAccounts
  (RULES_KEPT), and one that sets the field either way is still recognised.

A name, a `system:` prefix or the `kubernetes.io/bootstrapping` label proves nothing: anyone can write
them. An object with a bootstrap object's identity that differs from it is *modified*: the rule
`modified-platform-default` reports each difference where it is written, findings on its unmodified
parts (a default rule, a default subject's grants) stay hidden, and findings on the difference are
reported as on any object.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from kaudit.analyzers import bootstrap_rbac
from kaudit.analyzers.permissions import RBAC_GROUP, describe_rule
from kaudit.model import FieldPath, Finding, PlatformSummary, Resource, ResourceRef
from kaudit.value import value
from kaudit.workloads import mapping, sequence

if TYPE_CHECKING:
    from kaudit.analyzers.rbac import Subject

# Subjects and selectors are parsed (kaudit/analyzers/rbac.py, kaudit/selectors.py) only for an
# object with a bootstrap RBAC object's kind: a scan without RBAC objects never imports them.

MODIFIED_RULE = "modified-platform-default"
# Rules reported on platform defaults too: the differences themselves, and settings of a platform
# object that are the owner's to make and that no controller puts back.
RULES_KEPT = frozenset({MODIFIED_RULE, "default-service-account-automount"})
AGGREGATE_PREFIX = "rbac.authorization.k8s.io/aggregate-to-"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
SECTIONS = {"ClusterRole": "clusterRoles", "ClusterRoleBinding": "clusterRoleBindings", "Role": "roles",
            "RoleBinding": "roleBindings"}
RULE_KEYS = ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
MEMO = "platform"


@value
class Versions:
    """Which shipped minors objects are compared with: the server's minor ("1.37") or the nearest
    shipped one in a cluster scan; every shipped minor when the server is unknown (manifests)."""

    server: Optional[str] = None

    @classmethod
    def of(cls, server_version: Optional[str]) -> "Versions":
        """From the server's version ("v1.36.2"); unknown when there is none or it is unreadable."""
        found = re.match(r"v?1\.(\d+)", server_version or "")
        return cls(f"1.{found.group(1)}" if found else None)

    @property
    def minors(self) -> tuple[str, ...]:
        # read on use: a scan without RBAC objects never loads the policy data
        if self.server is None:
            return tuple(bootstrap_rbac.minors())
        return (bootstrap_rbac.nearest(self.server),)

    def compared_with_nearest(self) -> bool:
        return self.server is not None and self.minors != (self.server,)


@value
class Difference:
    """One way an object differs from the platform default with its identity, at its field."""

    path: FieldPath
    text: str  # "adds subject User alice to the Kubernetes v1.36 default (subjects: Group system:authenticated)"
    fact: str  # tells apart differences at one path (fingerprints)


@value
class Verdict:
    """What kaudit makes of an object with a platform object's identity."""

    source: str  # bootstrap (the API server's RBAC policy) | control-plane
    minors: tuple[str, ...] = ()  # a default: identical in these; modified: the minor it is compared with
    differences: tuple[Difference, ...] = ()
    default_rules: frozenset[int] = frozenset()  # indexes i of `rules[i]` that are default rules
    default_subjects: frozenset[str] = frozenset()  # `Subject.key()` of each default subject (same roleRef)

    @property
    def is_default(self) -> bool:
        return not self.differences

    def hides(self, finding: Finding) -> bool:
        """Is this finding about the default (hidden unless --include-platform), not a difference?"""
        if finding.rule in RULES_KEPT:
            return False
        if self.is_default:
            return True
        path = finding.path
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            return path[1] in self.default_rules
        return finding.subject is not None and finding.subject in self.default_subjects


# --- bootstrap RBAC -----------------------------------------------------------------------------

def _rule(rule: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A PolicyRule's meaning: each list as a set, empty lists as missing ones."""
    rule = mapping(rule)
    return tuple((key, tuple(sorted({str(v) for v in sequence(rule.get(key))})))
                 for key in RULE_KEYS if sequence(rule.get(key)))


def _selectors(value: Any) -> frozenset[Any]:
    from kaudit.selectors import parse_selector

    return frozenset(parse_selector(s) if isinstance(s, dict) else None
                     for s in sequence(mapping(value).get("clusterRoleSelectors")))


def _describe_selectors(value: Any) -> str:
    from kaudit.selectors import parse_selector

    selectors = [parse_selector(s).describe() for s in sequence(mapping(value).get("clusterRoleSelectors"))]
    return "; ".join(selectors) or "nothing"


def _aggregate_labels(metadata: Any) -> dict[str, str]:
    labels = mapping(mapping(metadata).get("labels"))
    return {str(k): str(v) for k, v in labels.items() if str(k).startswith(AGGREGATE_PREFIX)}


def _subject_text(subjects: Sequence[Subject]) -> str:
    return f"subjects: {', '.join(s.describe() for s in subjects)}" if subjects else "no subjects"


def _reconciled(resource: Resource) -> bool:
    annotations = mapping(mapping(resource.body.get("metadata")).get("annotations"))
    return str(annotations.get(AUTOUPDATE, "true")).lower() != "false"


def _role_verdict(resource: Resource, default: Mapping[str, Any], minor: str) -> Verdict:
    body = resource.body
    version = f"Kubernetes v{minor} default"
    differences: list[Difference] = []
    default_rules: set[int] = set()
    if resource.kind == "ClusterRole":
        mine, theirs = body.get("aggregationRule"), default.get("aggregationRule")
        if _selectors(mine) != _selectors(theirs):
            if mine is None:
                text = f"has no aggregationRule; the {version} aggregates the ClusterRoles labelled " \
                       f"{_describe_selectors(theirs)}"
            elif theirs is None:
                text = f"aggregates the ClusterRoles labelled {_describe_selectors(mine)}; the {version} " \
                       "aggregates nothing and has rules of its own"
            else:
                text = f"aggregates the ClusterRoles labelled {_describe_selectors(mine)}; the {version} " \
                       f"aggregates those labelled {_describe_selectors(theirs)}"
            differences.append(Difference(("aggregationRule",), text, "aggregationRule"))
        labels, wanted = _aggregate_labels(body.get("metadata")), dict(default.get("labels") or {})
        for key in sorted(set(labels) | set(wanted)):
            if labels.get(key) == wanted.get(key):
                continue
            if key not in wanted:
                text = f"adds the aggregation label {key}={labels[key]}, which the {version} lacks " \
                       "(its rules join the roles that aggregate that label)"
                differences.append(Difference(("metadata", "labels", key), text, f"label {key}"))
            elif key not in labels:
                text = f"lacks the aggregation label {key}={wanted[key]} of the {version}"
                differences.append(Difference(("metadata", "labels"), text, f"label {key}"))
            else:
                text = f"sets the aggregation label {key}={labels[key]}; the {version} has {key}={wanted[key]}"
                differences.append(Difference(("metadata", "labels", key), text, f"label {key}"))
    if resource.kind == "Role" or body.get("aggregationRule") is None:  # else its rules are the controller's
        wanted_rules = {_rule(r): r for r in sequence(default.get("rules"))}
        written = sequence(body.get("rules"))
        seen = set()
        for index, rule in enumerate(written):
            meaning = _rule(rule)
            seen.add(meaning)
            if meaning in wanted_rules:
                default_rules.add(index)
                continue
            text = f"adds rules[{index}] ({describe_rule(mapping(rule))}) to the {version} " \
                   f"({len(wanted_rules)} rule{'s' if len(wanted_rules) != 1 else ''})"
            differences.append(Difference(("rules", index), text, "rule " + repr(meaning)))
        back = ("; the API server adds it back at its next start" if _reconciled(resource) else
                "; autoupdate is off, so the API server does not add it back")
        for meaning, rule in wanted_rules.items():
            if meaning not in seen:
                text = f"lacks the rule ({describe_rule(mapping(rule))}) of the {version}{back}"
                differences.append(Difference(("rules",), text, "missing rule " + repr(meaning)))
    return Verdict("bootstrap", (minor,), tuple(differences), frozenset(default_rules))


def _binding_verdict(resource: Resource, default: Mapping[str, Any], minor: str) -> Verdict:
    from kaudit.analyzers.rbac import parse_subject

    body = resource.body
    version = f"Kubernetes v{minor} default"
    ref, wanted_ref = mapping(body.get("roleRef")), mapping(default.get("roleRef"))
    wanted = [s for s in (parse_subject(e, resource.namespace) for e in sequence(default.get("subjects"))) if s]
    differences: list[Difference] = []
    same_role = (ref.get("kind"), ref.get("name")) == (wanted_ref.get("kind"), wanted_ref.get("name"))
    if not same_role:
        text = f"refers to {ref.get('kind')} {ref.get('name')}; the {version} refers to " \
               f"{wanted_ref.get('kind')} {wanted_ref.get('name')}"
        differences.append(Difference(("roleRef",), text, "roleRef"))
    for index, entry in enumerate(sequence(body.get("subjects"))):
        subject = parse_subject(entry, resource.namespace)
        if subject is not None and subject not in wanted:
            text = f"adds subject {subject.describe()} to the {version} ({_subject_text(wanted)})"
            differences.append(Difference(("subjects", index), text, subject.key()))
    defaults = frozenset(s.key() for s in wanted) if same_role else frozenset()
    return Verdict("bootstrap", (minor,), tuple(differences), default_subjects=defaults)


def _judge_rbac(resource: Resource, versions: Versions) -> Optional[Verdict]:
    section = SECTIONS.get(resource.kind)
    if section is None or resource.ref.api_version.rpartition("/")[0] != RBAC_GROUP:
        return None
    namespaced = resource.kind in ("Role", "RoleBinding")
    if namespaced and not resource.namespace:
        return None  # applied wherever `kubectl -n` says: not the kube-system object
    key = f"{resource.namespace}/{resource.name}" if namespaced else resource.name
    compare = _binding_verdict if resource.kind.endswith("Binding") else _role_verdict
    verdicts = []
    for minor in versions.minors:
        default = bootstrap_rbac.policy(minor)[section].get(key)
        if default is not None:
            verdicts.append(compare(resource, default, minor))
    if not verdicts:
        return None
    identical = tuple(m for v in verdicts if v.is_default for m in v.minors)
    if identical:
        return Verdict("bootstrap", identical)
    # modified in every minor: compared with the one it is closest to (the newest on a tie)
    return min(reversed(verdicts), key=lambda v: len(v.differences))


# --- objects the control plane creates and keeps -------------------------------------------------

def _is_kubernetes_service(resource: Resource) -> bool:
    spec = mapping(resource.body.get("spec"))
    ports = sequence(spec.get("ports"))
    if len(ports) != 1 or spec.get("selector") or spec.get("externalIPs") or spec.get("externalName"):
        return False
    port = mapping(ports[0])
    return (spec.get("type") in (None, "ClusterIP") and port.get("port") == 443 and port.get("name") == "https"
            and port.get("protocol") in (None, "TCP"))


def _is_root_ca_configmap(resource: Resource) -> bool:
    body = resource.body
    data = body.get("data")
    return isinstance(data, dict) and set(data) == {"ca.crt"} and not body.get("binaryData")


SERVICE_ACCOUNT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "secrets", "automountServiceAccountToken"})


def _is_default_service_account(resource: Resource) -> bool:
    body = resource.body
    if not set(body) <= SERVICE_ACCOUNT_FIELDS or body.get("automountServiceAccountToken") not in (None, True, False):
        return False
    secrets = body.get("secrets")  # what the legacy token controller (before 1.24) added
    return secrets is None or isinstance(secrets, list) and all(
        str(mapping(s).get("name", "")).startswith("default-token-") for s in secrets)


CONTROL_PLANE = {
    ("v1", "Service"): lambda r: r.namespace == "default" and r.name == "kubernetes" and _is_kubernetes_service(r),
    ("v1", "ConfigMap"): lambda r: bool(r.namespace) and r.name == "kube-root-ca.crt" and _is_root_ca_configmap(r),
    ("v1", "ServiceAccount"): lambda r: bool(r.namespace) and r.name == "default" and _is_default_service_account(r),
}


def judge(resource: Resource, versions: Versions) -> Optional[Verdict]:
    """The object's verdict, or None when it is no platform object (judged as any other)."""
    if resource.kind in SECTIONS:
        return _judge_rbac(resource, versions)
    recognise = CONTROL_PLANE.get((resource.ref.api_version, resource.kind))
    return Verdict("control-plane") if recognise is not None and recognise(resource) else None


def verdict_of(resource: Resource, lookup: Any) -> Optional[Verdict]:
    """`judge` once per object of a scan (rules and the report both ask), with the scan's versions:
    the server's when the inventory holds the cluster's facts (kind ClusterInfo)."""
    if resource.kind not in SECTIONS and (resource.ref.api_version, resource.kind) not in CONTROL_PLANE:
        return None  # nearly every object: no look-up, nothing remembered
    memo = lookup.memo.setdefault(MEMO, {})
    if "versions" not in memo:
        info = lookup.of_kind("ClusterInfo")
        memo["versions"] = Versions.of(str(info[0].body.get("serverVersion", "")) if info else None)
    key = id(resource)
    if key not in memo:
        memo[key] = judge(resource, memo["versions"])
    return memo[key]  # type: ignore[no-any-return]


# --- the report ----------------------------------------------------------------------------------

def _minors(defaults: Sequence[Verdict]) -> tuple[str, ...]:
    """The minors every bootstrap default is identical to; if they share none, each one's."""
    if not defaults:
        return ()
    common = set(defaults[0].minors).intersection(*(v.minors for v in defaults))
    wanted = common or {m for v in defaults for m in v.minors}
    return tuple(m for m in bootstrap_rbac.minors() if m in wanted)


def hide(findings: Iterable[Finding], resources: Sequence[Resource], lookup: Any, versions: Versions,
         include: bool) -> tuple[list[Finding], PlatformSummary]:
    """Drop the findings on platform defaults and on the default parts of modified ones (all kept
    with `include`), and count them."""
    lookup.memo.setdefault(MEMO, {})["versions"] = versions
    # findings know their object by these: identity, file and declaration (one object twice in a file is two)
    verdicts: dict[tuple[ResourceRef, Optional[str], Optional[tuple[int, int]]], Verdict] = {}
    defaults: list[Verdict] = []
    modified = 0
    for resource in resources:
        verdict = verdict_of(resource, lookup)
        if verdict is not None:
            verdicts[(resource.ref, resource.origin.file, resource.origin.declaration)] = verdict
            if verdict.is_default:
                defaults.append(verdict)
            else:
                modified += 1
    kept, hidden = [], 0
    for finding in findings:
        declared = (finding.resource, finding.location.file, finding.declaration)
        verdict = verdicts.get(declared) if verdicts else None
        if verdict is not None and verdict.hides(finding):
            hidden += 1
            if not include:
                continue
        kept.append(finding)
    bootstrap = [v for v in defaults if v.source == "bootstrap"]
    return kept, PlatformSummary(
        objects=len(defaults), bootstrap=len(bootstrap), minors=_minors(bootstrap), modified=modified,
        findings_hidden=0 if include else hidden, findings_shown=hidden if include else 0, included=include,
        server_minor=versions.server if versions.compared_with_nearest() else None)
