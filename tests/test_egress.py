"""What one NetworkPolicy egress rule opens: addresses (ipBlock, except, IPv6) and TCP ports
(numbers, endPort ranges, named ports), and the two rules built on it."""
from __future__ import annotations

from typing import Any, Optional

import pytest

from kaudit.analyzers.egress import opens_destination, opens_ports, parse_network
from kaudit.checks.base import Target
from kaudit.checks.network import _egress_opens
from kaudit.model import Origin, Resource, ResourceRef

METADATA = parse_network("169.254.169.254")
METADATA_V6 = parse_network("fd00:ec2::254")
NODES = parse_network("10.0.0.0/8")


def block(cidr: Any, *excepted: Any) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": cidr, **({"except": list(excepted)} if excepted else {})}}]}


@pytest.mark.parametrize("rule, destination, opened", [
    ({}, METADATA, True),  # no `to`: every destination
    ({"to": []}, METADATA, True),
    ({"to": None}, METADATA, True),
    (block("0.0.0.0/0"), METADATA, True),
    (block("169.254.169.254/32"), METADATA, True),
    (block("169.254.0.0/16"), METADATA, True),
    (block("169.254.169.254/16"), METADATA, True),  # host bits set: read as its network, like the API
    (block("0.0.0.0/0", "169.254.169.254/32"), METADATA, False),  # except honoured
    (block("0.0.0.0/0", "169.254.0.0/16"), METADATA, False),  # a wider except too
    (block("0.0.0.0/0", "169.254.169.253/32"), METADATA, True),  # an except beside it
    (block("0.0.0.0/0", "not-a-cidr", None, 7), METADATA, True),  # bad except entries take nothing away
    (block("10.0.0.0/8"), METADATA, False),
    (block("::/0"), METADATA, False),  # IPv6 never contains an IPv4 address
    (block("::/0"), METADATA_V6, True),
    (block("fd00:ec2::/32"), METADATA_V6, True),
    (block("::/0", "fd00::/8"), METADATA_V6, False),
    (block("0.0.0.0/0"), METADATA_V6, False),
    (block("0.0.0.0/0", "::/0"), METADATA, True),  # an except of the other family takes nothing
    (block("0.0.0.0/0"), NODES, True),
    (block("10.0.0.0/8"), NODES, True),
    (block("10.0.0.0/16"), NODES, False),  # part of the node range only
    (block("0.0.0.0/0", "10.1.2.3/32"), NODES, False),  # one node excepted: not every node
    ({"to": [{"namespaceSelector": {}}]}, METADATA, False),  # pods, not addresses
    ({"to": [{"podSelector": {}}, {"namespaceSelector": {}, "podSelector": {}}]}, NODES, False),
    ({"to": [{"podSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]}, METADATA, True),  # a union
    # malformed: the API server rejects these; they open nothing and never raise
    (block("999.1.1.1/8"), METADATA, False),
    (block("169.254.169.254/33"), METADATA, False),
    (block(None), METADATA, False),
    (block(["0.0.0.0/0"]), METADATA, False),
    (block("0" * 10_000), METADATA, False),
    ({"to": [{"ipBlock": "0.0.0.0/0"}]}, METADATA, False),
    ({"to": [None, 5, "x"]}, METADATA, False),
    ({"to": {"ipBlock": {"cidr": "0.0.0.0/0"}}}, METADATA, False),
    (None, METADATA, True),  # a null rule decodes as the empty rule
])
def test_destinations_a_rule_opens(rule: Any, destination: Any, opened: bool) -> None:
    assert (opens_destination(rule, destination) is not None) == opened


def ports(*entries: Any) -> dict[str, Any]:
    return {"ports": list(entries)}


KUBELET = [10250, 10255]


@pytest.mark.parametrize("rule, expected", [
    ({}, "every port"),
    (ports(), "every port"),
    ({"ports": None}, "every port"),
    (ports({"protocol": "TCP"}), "every TCP port"),
    (ports({}), None),  # not an entry the API accepts
    (ports({"port": 10250}), "TCP 10250"),
    (ports({"port": 10255, "protocol": "tcp"}), "TCP 10255"),
    (ports({"port": "10250"}), "TCP 10250"),  # digits as a string: read as the number
    (ports({"port": 10000, "endPort": 10300}), "TCP 10000-10300"),
    (ports({"port": 10251, "endPort": 10254}), None),  # between the two ports
    (ports({"port": 10255, "endPort": 10240}), "TCP 10255"),  # endPort below port: no range
    (ports({"port": 10000, "endPort": 99999}), "TCP 10000-65535"),
    (ports({"port": 443}), None),
    (ports({"port": 10250, "protocol": "UDP"}), None),
    (ports({"protocol": "SCTP"}), None),
    (ports({"port": "kubelet"}), None),  # named: resolved against destination pods, and the kubelet is none
    (ports({"port": "kubelet", "endPort": 20000}), None),
    (ports({"port": True}), None),
    (ports({"port": 10250.0}), None),
    (ports({"port": 443}, {"port": 10250}), "TCP 10250"),
    (ports(None, "x", 10250), None),
    ({"ports": "10250"}, None),  # not a list: rejected by the API
])
def test_ports_a_rule_opens(rule: Any, expected: Optional[str]) -> None:
    assert opens_ports(rule, KUBELET) == expected


@pytest.mark.parametrize("text, network", [
    ("169.254.169.254", "169.254.169.254/32"), ("fd00:ec2::254", "fd00:ec2::254/128"),
    (" 10.0.0.0/8 ", "10.0.0.0/8"), ("10.1.2.3/8", "10.0.0.0/8"),
    ("", None), (None, None), (8, None), ("10.0.0.0/-1", None), ("010.0.0.0/8", None), ("::/129", None),
])
def test_parse_network(text: Any, network: Optional[str]) -> None:
    parsed = parse_network(text)
    assert (str(parsed) if parsed is not None else None) == network


def _policy(spec: Any) -> Target:
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "shop"}, "spec": spec}
    return Target(Resource(ResourceRef("networking.k8s.io/v1", "NetworkPolicy", "p", "shop"), body, Origin()))


METADATA_PARAMS = {"destinations": ["169.254.169.254", "fd00:ec2::254"], "ports": [80]}


def test_each_egress_rule_is_its_own_finding_with_both_families_named() -> None:
    check = _egress_opens(METADATA_PARAMS, "object")
    hits = list(check(_policy({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"podSelector": {}}]}, {}, {"to": [{"ipBlock": {"cidr": "::/0"}}], "ports": [{"port": 80}]}]})))
    assert [(h.path, h.values["destination"]) for h in hits] == [
        (("spec", "egress", 1), "169.254.169.254, fd00:ec2::254"), (("spec", "egress", 2), "fd00:ec2::254")]
    assert hits[0].values["why"].startswith("it has no `to`") and hits[1].values["why"] == "ipBlock ::/0"


@pytest.mark.parametrize("spec", [
    {"podSelector": {}, "egress": [{}]},  # no policyTypes: Egress because the section exists
    {"podSelector": {}, "policyTypes": ["egress"], "egress": [None]},
])
def test_policies_isolating_egress_are_read(spec: Any) -> None:
    assert list(_egress_opens(METADATA_PARAMS, "object")(_policy(spec)))


@pytest.mark.parametrize("spec", [
    {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]},  # egress rules ignored by the API
    {"podSelector": {}, "policyTypes": ["Egress"], "egress": "all"},
    {"podSelector": {}, "policyTypes": ["Egress"], "egress": ["x", 5]},
    None, "spec", [],
])
def test_policies_that_open_nothing_or_are_malformed(spec: Any) -> None:
    assert list(_egress_opens(METADATA_PARAMS, "object")(_policy(spec))) == []


def test_calicos_network_policy_of_the_same_kind_is_not_read() -> None:
    target = _policy({"egress": [{}]})
    calico = Resource(ResourceRef("projectcalico.org/v3", "NetworkPolicy", "p", "shop"),
                      {**target.resource.body, "apiVersion": "projectcalico.org/v3"}, Origin())
    assert list(_egress_opens(METADATA_PARAMS, "object")(Target(calico))) == []


def test_the_node_ranges_are_a_parameter() -> None:
    subnet = _policy({"podSelector": {}, "policyTypes": ["Egress"],
                      "egress": [{"to": [{"ipBlock": {"cidr": "10.0.16.0/20"}}], "ports": [{"port": 10250}]}]})
    default = {"destinations": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"], "ports": [10250, 10255]}
    assert list(_egress_opens(default, "object")(subnet)) == []
    [hit] = _egress_opens({**default, "destinations": ["10.0.16.0/20"]}, "object")(subnet)
    assert hit.values == {"destination": "10.0.16.0/20", "why": "ipBlock 10.0.16.0/20", "ports": "TCP 10250"}


def test_a_destination_that_is_no_cidr_is_a_rule_error_not_a_silent_pass() -> None:
    from kaudit.checks.base import TemplateError

    with pytest.raises(TemplateError, match="999.0.0.0/8"):
        list(_egress_opens({"destinations": ["999.0.0.0/8"], "ports": [80]}, "object")(_policy({"egress": [{}]})))
