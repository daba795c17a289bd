"""NetworkPolicy templates: namespace coverage, per-workload isolation, allow-all and dangling policies."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.analyzers.network import (DIRECTIONS, allows_everything, is_network_policy, network_index, parse_policy,
                                     rule_ports)
from kaudit.analyzers.egress import opens_destination, opens_ports, parse_network
from kaudit.checks.base import Check, Hit, Target, Template, TemplateError
from kaudit.inventory import namespace_applied_to
from kaudit.model import FieldPath
from kaudit.selectors import parse_selector
from kaudit.workloads import mapping, sequence

SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]
IGNORE_NAMESPACES = {"type": "array", "items": {"type": "string"}, "default": SYSTEM_NAMESPACES,
                     "description": "namespaces not judged (default: the system namespaces)"}

COVERAGE_PARAMS = {
    "type": "object",
    "required": ["require"],
    "additionalProperties": False,
    "properties": {
        "require": {"enum": ["any-policy", "default-deny"],
                    "description": ("any-policy: the namespace has at least one NetworkPolicy; default-deny: a "
                                    "policy selects every pod and denies all ingress (a missing egress deny is "
                                    "named alongside)")},
        "ignore-namespaces": IGNORE_NAMESPACES,
    },
}


def _coverage(params: Mapping[str, Any], target: str) -> Check:
    """A namespace's workloads, or those of a group of objects without a namespace: for a group,
    "the namespace" is the one its objects are applied to, and the finding sits on its first
    workload (there is no Namespace to point at), saying which folder it is about."""
    require = params["require"]
    ignored = set(params.get("ignore-namespaces", SYSTEM_NAMESPACES))

    def check(subject: Target) -> Iterable[Hit]:
        scope = subject.scope
        if scope is None or scope.namespace in ignored or subject.lookup is None:
            return ()
        index = network_index(subject.lookup)
        workloads = index.workloads.get(scope, [])
        if not workloads or index.cluster_wide or index.third_party.get(scope):
            return ()
        policies = index.policies.get(scope, [])
        example = workloads[0].resource.ref.describe()
        path: FieldPath = ("metadata", "name")
        where = f'Namespace "{scope.namespace}"'
        if scope.namespace is None:
            where = f"{namespace_applied_to(subject.resource.origin)} (its objects set no metadata.namespace)"
            path = ("metadata",)
        values = {"where": where, "workloads": str(len(workloads)), "example": example}
        if require == "any-policy":
            if policies:
                return ()
            return (Hit(path, values),)
        missing = [d for d in DIRECTIONS if not any(p.default_deny(d) for p in policies)]
        if "ingress" not in missing:
            return ()
        return (Hit(path, {**values, "missing": " and ".join(missing)}),)

    return check


ISOLATION_PARAMS = {
    "type": "object",
    "required": ["direction"],
    "additionalProperties": False,
    "properties": {
        "direction": {"enum": list(DIRECTIONS),
                      "description": "which traffic a NetworkPolicy must isolate the pod for: ingress or egress"},
        "ignore-namespaces": IGNORE_NAMESPACES,
    },
}


def _isolation(params: Mapping[str, Any], target: str) -> Check:
    direction = params["direction"]
    ignored = set(params.get("ignore-namespaces", SYSTEM_NAMESPACES))

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None and subject.lookup is not None
        if subject.resource.namespace in ignored or pod.spec.get("hostNetwork") is True:
            return ()  # NetworkPolicy does not apply to pods in the node's network namespace
        index = network_index(subject.lookup)
        scope = subject.lookup.scope(subject.resource)
        labels = {str(k): str(v) for k, v in mapping(pod.metadata.get("labels")).items()}
        if index.isolated(scope, labels, direction):
            return ()
        policies = index.policies.get(scope, [])
        selecting = [p.resource.name for p in policies if p.pod_selector.matches(labels)]
        if selecting:
            which = f"policy {selecting[0]} selects" if len(selecting) == 1 else f"policies {', '.join(selecting)} select"
            why = f"{which} it but does not isolate {direction}" if len(selecting) == 1 else \
                f"{which} it but none isolates {direction}"
        else:
            why = "no NetworkPolicy selects it"
        return (Hit(pod.metadata_path + ("labels",), {"direction": direction, "why": why}),)

    return check


ALLOWS_ALL_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ports": {"enum": ["all", "listed"], "default": "all",
                  "description": "report rules open to everyone on every port (all), or only on listed ports (listed)"},
    },
}


def _allows_all(params: Mapping[str, Any], target: str) -> Check:
    # Everyone on every port and everyone on a few ports (a metrics port scraped from any
    # namespace) are different risks, so they are reported by different rules and severities.
    listed = params.get("ports", "all") == "listed"

    def check(subject: Target) -> Iterable[Hit]:
        if not is_network_policy(subject.resource):
            return ()  # Calico's NetworkPolicy has the same kind and another language
        policy = parse_policy(subject.resource)
        hits = []
        for direction in DIRECTIONS:
            if direction not in policy.isolates:
                continue  # rules of a direction the policy does not isolate are ignored by the API
            for index, rule in enumerate(policy.rules[direction]):
                why = allows_everything(rule, direction)
                ports = rule_ports(rule)
                if why and bool(ports) == listed:
                    hits.append(Hit(("spec", direction, index), {"direction": direction, "why": why,
                                                                "ports": ", ".join(ports)}))
        return hits

    return check


def _selects_nothing(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        assert subject.lookup is not None
        if not is_network_policy(subject.resource):
            return ()
        index = network_index(subject.lookup)
        policy = parse_policy(subject.resource)
        hits = []
        workloads = index.workloads.get(subject.lookup.scope(subject.resource), [])
        if workloads and not policy.pod_selector.everything and \
                not any(policy.pod_selector.matches(w.labels) for w in workloads):
            hits.append(Hit(("spec", "podSelector"), {"what": f"its podSelector ({policy.pod_selector.describe()}) "
                                                              f"matches none of the {len(workloads)} workloads "
                                                              "in its namespace"}))
        if index.namespace_labels:  # only when the scan declares namespaces can it judge namespaceSelectors
            for direction, peers_key in (("ingress", "from"), ("egress", "to")):
                for i, rule in enumerate(policy.rules[direction]):
                    for j, peer in enumerate(sequence(mapping(rule).get(peers_key))):
                        selector_value = mapping(peer).get("namespaceSelector")
                        if selector_value is None:
                            continue
                        selector = parse_selector(selector_value)
                        if not selector.everything and not index.namespaces_matching(selector):
                            hits.append(Hit(("spec", direction, i, peers_key, j, "namespaceSelector"), {
                                "what": f"its {direction} peer namespaceSelector ({selector.describe()}) matches "
                                        f"none of the {len(index.namespace_labels)} namespaces in the scan"}))
        return hits

    return check


EGRESS_OPENS_PARAMS = {
    "type": "object",
    "required": ["destinations", "ports"],
    "additionalProperties": False,
    "properties": {
        "destinations": {"type": "array", "minItems": 1,
                         "items": {"type": "string", "pattern": "^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"},
                         "description": "addresses or CIDRs; a rule opens one when it allows every address of it"},
        "ports": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                  "description": "TCP ports; a rule opens a destination when it allows one of them"},
    },
}


def _egress_opens(params: Mapping[str, Any], target: str) -> Check:
    """An egress rule that lets traffic reach every address of a destination (the cloud metadata
    endpoint, the nodes' range) on one of the ports that serve it (kaudit/analyzers/egress.py)."""
    texts = [str(text) for text in params["destinations"]]
    ports = [int(p) for p in params["ports"]]
    parsed: list[tuple[str, Any]] = []  # parsed on first use: rules are bound on every scan's path

    def destinations() -> list[tuple[str, Any]]:
        if not parsed:
            for text in texts:
                network = parse_network(text)
                if network is None:
                    raise TemplateError(f"destinations: {text!r} is not an address or a CIDR")
                parsed.append((text, network))
        return parsed

    def check(subject: Target) -> Iterable[Hit]:
        if not is_network_policy(subject.resource):
            return ()
        policy = parse_policy(subject.resource)
        if "egress" not in policy.isolates:
            return ()  # egress rules of a policy that does not isolate egress are ignored by the API
        hits = []
        for index, rule in enumerate(policy.rules["egress"]):
            if rule is not None and not isinstance(rule, dict):
                continue  # not a rule (the API rejects it); null decodes as the empty rule
            on = opens_ports(rule, ports)
            if on is None:
                continue
            reached = [(text, why) for text, network in destinations()
                       if (why := opens_destination(rule, network)) is not None]
            if reached:
                hits.append(Hit(("spec", "egress", index), {
                    "destination": ", ".join(text for text, _ in reached), "why": reached[0][1], "ports": on}))
        return hits

    return check


OBJECT = {"type": "object", "additionalProperties": False}
TEMPLATES = [
    Template("network-policy-coverage", "Namespaces with workloads but no NetworkPolicy, or no default-deny.",
             frozenset({"namespace"}), COVERAGE_PARAMS, _coverage, cross_object=True, reads=frozenset({"NetworkPolicy", "CiliumNetworkPolicy"}),
             judges_groups=True),
    Template("network-isolation", "Workloads no NetworkPolicy isolates for ingress (or egress).",
             frozenset({"pod"}), ISOLATION_PARAMS, _isolation, cross_object=True, reads=frozenset({"NetworkPolicy", "CiliumNetworkPolicy"})),
    Template("network-policy-allows-all", "NetworkPolicy rules that let every peer in (on every port, or on listed ones).",
             frozenset({"object"}), ALLOWS_ALL_PARAMS, _allows_all),
    Template("network-policy-egress-opens", "NetworkPolicy egress rules that open given addresses (metadata "
                                            "endpoint, node range) on given TCP ports.",
             frozenset({"object"}), EGRESS_OPENS_PARAMS, _egress_opens),
    Template("network-policy-selects-nothing", "NetworkPolicies (or their namespace peers) that select nothing.",
             frozenset({"object"}), OBJECT, _selects_nothing, cross_object=True, reads=frozenset({"Namespace", "Pod", "Deployment"})),
]
