"""Cluster-level templates: Kubernetes version support, admission policy engines, Pod Security
Admission labels, the default service account. Cluster facts arrive as a `ClusterInfo` object
(apiVersion kaudit.io/v1) that live scans add to the inventory. Control-plane flags are judged in
kaudit/checks/control_plane.py."""
from __future__ import annotations

import datetime
import functools
import re
from typing import Any, Iterable, Mapping, Optional

import yaml

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.inventory import CLUSTER
from kaudit.workloads import mapping, sequence

RELEASES_FILE = "kubernetes-releases.yaml"
ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
_MINOR = re.compile(r"^v?(\d+)\.(\d+)")


@functools.lru_cache(maxsize=1)
def releases() -> dict[str, datetime.date]:
    """minor version ("1.29") -> end of upstream maintenance."""
    from kaudit.paths import package_data

    data = yaml.safe_load(package_data(RELEASES_FILE).read_text(encoding="utf-8"))
    return {str(minor): entry["end-of-life"] for minor, entry in data["releases"].items()}


def minor_of(version: str) -> Optional[str]:
    match = _MINOR.match(version.strip())
    return f"{match.group(1)}.{match.group(2)}" if match else None


VERSION_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "end-of-life": {"type": "object", "additionalProperties": {"type": "string", "format": "date"},
                        "description": "minor -> date, overriding the built-in table (e.g. a vendor's support)"},
        "today": {"type": "string", "format": "date", "description": "evaluate as of this date (reports, tests)"},
    },
}


def _version(params: Mapping[str, Any], target: str) -> Check:
    overrides = {k: datetime.date.fromisoformat(v) for k, v in params.get("end-of-life", {}).items()}
    today = datetime.date.fromisoformat(params["today"]) if params.get("today") else None

    def judge(version: str) -> Optional[str]:
        minor = minor_of(version)
        table = {**releases(), **overrides}
        if minor is None:
            return f"{version}, which cannot be parsed as a Kubernetes version"
        end = table.get(minor)
        if end is None:
            oldest = min(table, key=lambda m: tuple(int(p) for p in m.split(".")))
            if tuple(int(p) for p in minor.split(".")) < tuple(int(p) for p in oldest.split(".")):
                return f"{version}, older than every release in the support table"
            return None  # newer than the table: not known to be unsupported
        now = today or datetime.date.today()
        return f"{version}, whose minor {minor} left upstream support on {end}" if end < now else None

    def check(subject: Target) -> Iterable[Hit]:
        hits = []
        server = str(subject.body.get("serverVersion", ""))
        why = judge(server) if server else None
        if why:
            hits.append(Hit(("serverVersion",), {"what": f"the API server runs {why}"}))
        for index, node in enumerate(sequence(subject.body.get("nodes"))):
            kubelet = str(mapping(node).get("kubeletVersion", ""))
            why = judge(kubelet) if kubelet else None
            if why:
                hits.append(Hit(("nodes", index, "kubeletVersion"),
                                {"what": f"node {mapping(node).get('name')} runs kubelet {why}"}))
        return hits

    return check


KNOWN_ENGINES = {
    "gatekeeper": ("gatekeeper",),
    "kyverno": ("kyverno",),
    "sigstore policy-controller": ("policy.sigstore.dev", "policy-controller"),
    "kubewarden": ("kubewarden",),
    "jspolicy": ("jspolicy",),
}
ENGINE_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"engines": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                               "description": "engine name -> substrings of webhook configuration or webhook names"}},
}


def _admission_engine(params: Mapping[str, Any], target: str) -> Check:
    engines = {name: tuple(parts) for name, parts in params.get("engines", KNOWN_ENGINES).items()}

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        if subject.lookup.of_kind("ValidatingAdmissionPolicy"):
            return ()  # in-tree CEL policies are a policy control mechanism too
        if any(ENFORCE in mapping(mapping(ns.body.get("metadata")).get("labels"))
               for ns in subject.lookup.of_kind("Namespace") if ns.name not in SYSTEM_NAMESPACES):
            return ()  # Pod Security Admission enforcing somewhere is the built-in mechanism CIS 5.2.1 accepts
        names = []
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            for config in subject.lookup.of_kind(kind):
                names.append(config.name.lower())
                names.extend(str(mapping(w).get("name", "")).lower() for w in sequence(config.body.get("webhooks")))
        if any(part in name for parts in engines.values() for part in parts for name in names):
            return ()
        return (Hit(("metadata", "name"), {"engines": ", ".join(sorted(engines))}),)

    return check


PSA_PARAMS = {
    "type": "object",
    "required": ["require"],
    "additionalProperties": False,
    "properties": {
        "require": {"enum": ["enforce-label", "not-privileged"],
                    "description": "enforce-label: a declared Namespace has a pod-security.kubernetes.io/enforce label; "
                                   "not-privileged: that label is not privileged"},
        "ignore-namespaces": {"type": "array", "items": {"type": "string"}, "default": list(SYSTEM_NAMESPACES),
                              "description": "namespaces not judged (default: the system namespaces)"},
    },
}



def _pod_security_labels(params: Mapping[str, Any], target: str) -> Check:
    require = params["require"]
    ignored = set(params.get("ignore-namespaces", SYSTEM_NAMESPACES))

    def check(subject: Target) -> Iterable[Hit]:
        namespace = subject.resource
        declared = subject.lookup is not None and subject.lookup.get("Namespace", CLUSTER, namespace.name) is not None
        if namespace.name in ignored or not declared:
            return ()  # a namespace only implied by objects: its labels are unknown
        labels = mapping(mapping(namespace.body.get("metadata")).get("labels"))
        level = labels.get(ENFORCE)
        if require == "enforce-label" and level is None:
            return (Hit(("metadata", "labels"), {"detail": f"no {ENFORCE} label"}),)
        if require == "not-privileged" and level == "privileged":
            return (Hit(("metadata", "labels", ENFORCE), {"detail": f"{ENFORCE}: privileged"}),)
        return ()

    return check


DEFAULT_SA_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"ignore-namespaces": {"type": "array", "items": {"type": "string"},
                                         "default": list(SYSTEM_NAMESPACES),
                                         "description": "namespaces not judged (default: the system namespaces)"}},
}


def _default_sa_automount(params: Mapping[str, Any], target: str) -> Check:
    ignored = set(params.get("ignore-namespaces", SYSTEM_NAMESPACES))

    def check(subject: Target) -> Iterable[Hit]:
        # Judged on the ServiceAccount itself, so the finding points where the fix goes (its
        # automountServiceAccountToken), in the file that declares it, not at the Namespace.
        account = subject.resource
        if account.kind != "ServiceAccount" or account.name != "default" or account.namespace in ignored:
            return ()
        setting = account.body.get("automountServiceAccountToken")
        if setting is False:
            return ()
        where = ("automountServiceAccountToken",) if "automountServiceAccountToken" in account.body else ("metadata", "name")
        return (Hit(where, {"setting": "unset" if setting is None else repr(setting).lower()}),)

    return check


OBJECT = {"type": "object", "additionalProperties": False}
TEMPLATES = [
    Template("kubernetes-version", "API server or kubelets on a Kubernetes minor past upstream end of life.",
             frozenset({"object"}), VERSION_PARAMS, _version),
    Template("admission-engine", "No admission policy engine (Gatekeeper, Kyverno, policy-controller, CEL policies).",
             frozenset({"object"}), ENGINE_PARAMS, _admission_engine, cross_object=True,
             # Namespace too: Pod Security Admission labels count as an engine, so unread namespaces
             # leave "no engine" unfounded
             reads=frozenset({"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
                              "ValidatingAdmissionPolicy", "Namespace"})),
    Template("pod-security-labels", "Namespaces without a Pod Security Admission enforce level, or privileged.",
             frozenset({"namespace"}), PSA_PARAMS, _pod_security_labels, reads=frozenset({"Namespace"})),
    Template("default-service-account-automount", "A namespace's default ServiceAccount leaves its token automounted.",
             frozenset({"object"}), DEFAULT_SA_PARAMS, _default_sa_automount),
]
