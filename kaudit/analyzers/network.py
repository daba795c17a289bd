"""NetworkPolicy coverage over the whole inventory: which pods are isolated, for which direction.

Semantics follow the NetworkPolicy API:
- a policy selects pods in its own namespace by `podSelector` (`{}` = every pod); a policy without
  a namespace in the manifest selects only pods without one from its own folder (kaudit/inventory.py:
  one folder's objects are applied to one namespace, another folder's maybe to another);
- `policyTypes` says which directions it isolates; when omitted, Ingress always, and Egress only
  when the policy has an `egress` section;
- a pod is isolated for a direction once any policy selecting it isolates that direction;
- default-deny: a policy selecting every pod that isolates a direction and allows nothing in it.

Cilium and Calico policies are approximated: any namespaced CiliumNetworkPolicy or Calico
NetworkPolicy counts as isolating every pod of its namespace in both directions, and any
CiliumClusterwideNetworkPolicy or Calico GlobalNetworkPolicy counts for every namespace. Their
selector languages differ from the API's; counting them as coverage keeps clusters that use them
from drowning in false "not isolated" findings, at the price of trusting those policies' scope.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from kaudit.inventory import Scope, memoized
from kaudit.model import Resource
from kaudit.selectors import Selector, labels_of, parse_selector
from kaudit.value import field, record, value
from kaudit.workloads import mapping, pod_specs, sequence

DIRECTIONS = ("ingress", "egress")
NAMESPACED_THIRD_PARTY = {("cilium.io", "CiliumNetworkPolicy"), ("crd.projectcalico.org", "NetworkPolicy"),
                          ("projectcalico.org", "NetworkPolicy")}
CLUSTER_THIRD_PARTY = {("cilium.io", "CiliumClusterwideNetworkPolicy"), ("crd.projectcalico.org", "GlobalNetworkPolicy"),
                       ("projectcalico.org", "GlobalNetworkPolicy")}
OPEN_CIDRS = ("0.0.0.0/0", "::/0")


@value
class Policy:
    """A NetworkPolicy as parsed: the pods it selects and the directions it isolates."""

    resource: Resource
    pod_selector: Selector
    isolates: frozenset[str]  # "ingress", "egress"
    rules: Mapping[str, list[Any]]  # direction -> the rules (ingress / egress lists)

    def default_deny(self, direction: str) -> bool:
        return self.pod_selector.everything and direction in self.isolates and not self.rules[direction]


@value
class Workload:
    """A workload and the labels of its pods."""

    resource: Resource
    labels: Mapping[str, str]


@record
class NetworkIndex:
    """The scan's network policies and workloads by scope, and what isolates namespaces."""

    # by the scope of the objects (their namespace, or their group when they have none)
    policies: dict[Scope, list[Policy]] = field(default_factory=dict)
    workloads: dict[Scope, list[Workload]] = field(default_factory=dict)
    third_party: dict[Scope, list[Resource]] = field(default_factory=dict)
    cluster_wide: list[Resource] = field(default_factory=list)
    namespace_labels: dict[str, Mapping[str, str]] = field(default_factory=dict)  # declared Namespace objects

    def isolated(self, scope: Scope, labels: Mapping[str, str], direction: str) -> bool:
        if self.cluster_wide or self.third_party.get(scope):
            return True
        return any(direction in p.isolates and p.pod_selector.matches(labels) for p in self.policies.get(scope, ()))

    def namespaces_matching(self, selector: Selector) -> list[str]:
        return [name for name, labels in self.namespace_labels.items() if selector.matches(labels)]


def api_group(resource: Resource) -> str:
    return resource.ref.api_version.rpartition("/")[0]


def is_network_policy(resource: Resource) -> bool:
    """The Kubernetes NetworkPolicy, not Calico's kind of the same name."""
    return resource.kind == "NetworkPolicy" and api_group(resource) == "networking.k8s.io"


def parse_policy(resource: Resource) -> Policy:
    spec = mapping(resource.body.get("spec"))
    # podSelector is a value field: absent means {} (every pod), null likewise
    selector = parse_selector(spec.get("podSelector") if spec.get("podSelector") is not None else {})
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        isolates = frozenset(str(t).lower() for t in types if str(t).lower() in DIRECTIONS)
    else:
        isolates = frozenset({"ingress"} | ({"egress"} if "egress" in spec else set()))
    rules = {direction: sequence(spec.get(direction)) for direction in DIRECTIONS}
    return Policy(resource, selector, isolates, rules)


def network_index(lookup: Any) -> NetworkIndex:
    """The index for this inventory, built once per scan and kept in its memo."""
    return memoized(lookup, "network", _build_network_index)


def _build_network_index(lookup: Any) -> NetworkIndex:
    index = NetworkIndex()
    for resource in lookup.resources:
        key = (api_group(resource), resource.kind)
        if is_network_policy(resource):
            index.policies.setdefault(lookup.scope(resource), []).append(parse_policy(resource))
        elif key in NAMESPACED_THIRD_PARTY:
            index.third_party.setdefault(lookup.scope(resource), []).append(resource)
        elif key in CLUSTER_THIRD_PARTY:
            index.cluster_wide.append(resource)
        elif resource.kind == "Namespace":
            # the API server adds kubernetes.io/metadata.name to every namespace
            index.namespace_labels[resource.name] = {**labels_of(resource.body.get("metadata")),
                                                     "kubernetes.io/metadata.name": resource.name}
        else:
            for pod in pod_specs(resource.body):
                if pod.pod_level and pod.spec.get("hostNetwork") is not True:  # policies do not apply to those
                    index.workloads.setdefault(lookup.scope(resource), []).append(
                        Workload(resource, labels_of(pod.metadata)))
    return index


def allows_everything(rule: Any, direction: str) -> Optional[str]:
    """Why one ingress/egress rule lets every peer through, or None. Ports are not considered:
    the caller tells "everyone, on every port" from "everyone, on these ports" (`rule_ports`)."""
    rule = mapping(rule)
    peers_key = "from" if direction == "ingress" else "to"
    peers = sequence(rule.get(peers_key))
    if not peers:
        if not sequence(rule.get("ports")):
            return "an empty rule allows all peers on all ports"
        return f"it has no `{peers_key}`, which allows every {'source' if direction == 'ingress' else 'destination'}"
    for peer in peers:
        peer = mapping(peer)
        every_namespace = peer.get("namespaceSelector") is not None and \
            parse_selector(peer["namespaceSelector"]).everything
        every_pod = peer.get("podSelector") is None or parse_selector(peer["podSelector"]).everything
        if every_namespace and every_pod:
            return "an empty namespaceSelector (with no or an empty podSelector) allows every pod in every namespace"
        cidr = mapping(peer.get("ipBlock")).get("cidr")
        if cidr in OPEN_CIDRS:
            return f"ipBlock {cidr} allows every address"
    return None


def rule_ports(rule: Any) -> list[str]:
    """The ports one rule is limited to, as `TCP 8080`, `UDP 53`, `TCP 8000-8100`, `TCP metrics`
    (empty: every port). An entry without `port` is every port of its protocol."""
    described = []
    for entry in sequence(mapping(rule).get("ports")):
        entry = mapping(entry)
        protocol = str(entry.get("protocol") or "TCP")  # the API's default
        port, end = entry.get("port"), entry.get("endPort")
        if port is None:
            described.append(f"all {protocol} ports")
        else:
            described.append(f"{protocol} {port}" + (f"-{end}" if end is not None else ""))
    return described



