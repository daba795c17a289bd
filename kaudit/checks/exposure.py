"""Exposure: Services reachable from outside the cluster, Ingress hosts served without TLS."""
from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

# Cloud annotations that make a LoadBalancer internal (reachable only from the VPC / VNet).
# Values compare case-insensitively: an unquoted YAML `true` arrives as a boolean.
INTERNAL_LB_ANNOTATIONS: Mapping[str, frozenset[str]] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": frozenset({"true", "0.0.0.0/0"}),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": frozenset({"internal"}),
    "networking.gke.io/load-balancer-type": frozenset({"internal"}),
    "cloud.google.com/load-balancer-type": frozenset({"internal"}),
    "service.beta.kubernetes.io/azure-load-balancer-internal": frozenset({"true"}),
    "service.beta.kubernetes.io/oci-load-balancer-internal": frozenset({"true"}),
}
# The annotation form of spec.loadBalancerSourceRanges, used when the field is empty.
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
OPEN_RANGES = ("0.0.0.0/0", "::/0")

SERVICE_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"allow-internal-load-balancers": {
        "type": "boolean", "default": True,
        "description": "a LoadBalancer annotated internal (cloud provider annotations) is not reported"}},
}


def _service_exposure(params: Mapping[str, Any], target: str) -> Check:
    allow_internal = params.get("allow-internal-load-balancers", True)

    def check(subject: Target) -> Iterable[Hit]:
        spec = mapping(subject.body.get("spec"))
        kind = spec.get("type")
        hits = []
        if kind == "NodePort":
            hits.append(Hit(("spec", "type"), {"exposure": "type NodePort opens a port on every node"}))
        elif kind == "LoadBalancer":
            annotations = mapping(mapping(subject.body.get("metadata")).get("annotations"))
            internal = allow_internal and any(
                str(annotations.get(k)).lower() in v for k, v in INTERNAL_LB_ANNOTATIONS.items())
            ranges = [str(r).strip() for r in sequence(spec.get("loadBalancerSourceRanges"))]
            if not ranges and isinstance(annotations.get(SOURCE_RANGES_ANNOTATION), str):
                ranges = [r.strip() for r in annotations[SOURCE_RANGES_ANNOTATION].split(",")]
            ranges = [r for r in ranges if r and r not in OPEN_RANGES]
            if not internal and not ranges:
                hits.append(Hit(("spec", "type"), {
                    "exposure": "type LoadBalancer with no loadBalancerSourceRanges and no internal annotation"}))
        if sequence(spec.get("externalIPs")):
            hits.append(Hit(("spec", "externalIPs"), {"exposure": "externalIPs route outside traffic to it"}))
        return hits

    return check


def host_covered(host: str, tls_hosts: Iterable[str]) -> bool:
    """Does a TLS entry cover `host`? `*.example.com` covers exactly one label, like certificates."""
    for pattern in tls_hosts:
        if pattern == host:
            return True
        if pattern.startswith("*.") and host.count(".") == pattern.count(".") and fnmatch.fnmatchcase(host, pattern):
            return True
    return False


def _ingress_tls(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        spec = mapping(subject.body.get("spec"))
        tls = [mapping(entry) for entry in sequence(spec.get("tls"))]
        tls_hosts = [h for entry in tls for h in sequence(entry.get("hosts")) if isinstance(h, str)]
        rules = [mapping(rule) for rule in sequence(spec.get("rules"))]
        if not tls:
            return (Hit(("spec", "tls"), {"hosts": ", ".join(_hosts(rules)) or "any host"}),)
        hits = []
        for index, rule in enumerate(rules):
            host = rule.get("host")
            if isinstance(host, str) and host and not host_covered(host, tls_hosts):
                hits.append(Hit(("spec", "rules", index, "host"), {"hosts": host}))
        return hits

    return check


def _hosts(rules: list[Mapping[str, Any]]) -> list[str]:
    return [str(rule["host"]) for rule in rules if rule.get("host")]


TEMPLATES = [
    Template("service-exposure", "Services reachable from outside: NodePort, public LoadBalancer, externalIPs.",
             frozenset({"object"}), SERVICE_PARAMS, _service_exposure),
    Template("ingress-tls", "Ingress without TLS, or with hosts no TLS entry covers.",
             frozenset({"object"}), {"type": "object", "additionalProperties": False}, _ingress_tls),
]
