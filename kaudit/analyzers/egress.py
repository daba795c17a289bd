"""Which destinations and ports one NetworkPolicy egress rule opens: addresses (ipBlock CIDRs with
their `except`) and TCP ports (numbers, `endPort` ranges, named ports).

Semantics of the NetworkPolicy API (networking.k8s.io/v1):
- `to` missing, null or `[]`: every destination. Otherwise the union of its peers. Only an `ipBlock`
  peer selects addresses: `podSelector` and `namespaceSelector` peers select pods (by their pod IPs),
  never a node's address nor a link-local one such as the cloud metadata endpoint. (What a pod
  selector does for hostNetwork pods is undefined by the API; kaudit reads it as pods only.)
- An `ipBlock` allows `cidr` minus each `except` range. A CIDR with host bits set is read as its
  network; one that does not parse (the API server rejects it) allows nothing. IPv4 and IPv6 never
  contain each other.
- `ports` missing, null or `[]`: every port. An entry allows its `protocol` (default TCP) on `port`,
  or on `port`..`endPort`, or on every port when it has no `port`.
- A named port (`port: metrics`) is resolved by the implementation against the *destination pod's*
  container ports. The metadata endpoint and the kubelet are not pods, so a named port never opens
  them: kaudit does not count it (a hostNetwork pod that names its port 10250 is not the kubelet).
  A port written as a string of digits ("10250", which the API server rejects as a port name) is
  read as that number, so that a typo does not hide an opening.

Malformed values (a `to` or `ports` that is not a list, an `ipBlock` that is not a mapping) are
objects the API server rejects: they open nothing and never raise. Work is bounded: CIDR texts are
capped in length and `except` lists in entries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from kaudit.workloads import mapping, sequence

if TYPE_CHECKING:
    from ipaddress import IPv4Network, IPv6Network

    Network = Union[IPv4Network, IPv6Network]

MAX_CIDR_TEXT = 64  # the longest IPv6 CIDR is 43 characters
MAX_EXCEPT = 1000  # entries of one `except` list looked at (the API has no limit; real ones have a few)
MAX_PORT = 65535


def parse_network(value: Any) -> Optional["Network"]:
    """A CIDR text (or a bare address) as a network; None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > MAX_CIDR_TEXT:
        return None
    from ipaddress import ip_network  # off the import path of a scan without NetworkPolicies

    try:
        return ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def _contains(outer: "Network", inner: "Network") -> bool:
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _overlaps(a: "Network", b: "Network") -> bool:
    return a.version == b.version and a.overlaps(b)


def block_covers(ip_block: Any, destination: "Network") -> bool:
    """Does this `ipBlock` allow every address of `destination` (cidr contains it, and no `except`
    range takes any of it away)?"""
    block = mapping(ip_block)
    network = parse_network(block.get("cidr"))
    if network is None or not _contains(network, destination):
        return False
    for entry in sequence(block.get("except"))[:MAX_EXCEPT]:
        excepted = parse_network(entry)
        if excepted is not None and _overlaps(excepted, destination):
            return False
    return True


def opens_destination(rule: Any, destination: "Network") -> Optional[str]:
    """Why this egress rule lets traffic go to every address of `destination`, or None."""
    rule = mapping(rule)
    peers = rule.get("to")
    if peers is None or peers == []:
        return "it has no `to`, which allows every destination"
    for peer in sequence(peers):
        block = mapping(peer).get("ipBlock")
        if block is not None and block_covers(block, destination):
            cidr = str(mapping(block).get("cidr"))
            excepted = [str(e) for e in sequence(mapping(block).get("except"))]
            return f"ipBlock {cidr}" + (f" (except {', '.join(excepted[:3])}{', …' if len(excepted) > 3 else ''})"
                                         if excepted else "")
    return None


def _port_number(value: Any) -> Optional[int]:
    """A numeric port (or a string of digits); None for a named port or anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 5:
        return int(value)
    return None


def opens_ports(rule: Any, ports: Iterable[int], protocol: str = "TCP") -> Optional[str]:
    """How this rule allows one of `ports` on `protocol` ("every port", "TCP 10250",
    "TCP 10000-10300", "every TCP port"), or None."""
    rule = mapping(rule)
    entries = rule.get("ports")
    wanted = sorted(set(ports))
    if entries is None or entries == []:
        return "every port"
    for entry in sequence(entries):
        entry = mapping(entry)
        if not entry:
            continue  # not a port entry (the API rejects null or non-mapping entries)
        if str(entry.get("protocol") or "TCP").upper() != protocol:
            continue
        if entry.get("port") is None:
            return f"every {protocol} port"
        start = _port_number(entry.get("port"))
        if start is None:
            continue  # a named port: resolved against destination pods only (module doc)
        end = _port_number(entry.get("endPort"))
        if end is None or end < start:
            end = start  # no range (an endPort below port is rejected by the API: read as no range)
        end = min(end, MAX_PORT)
        if any(start <= port <= end for port in wanted):
            return f"{protocol} {start}" + (f"-{end}" if end != start else "")
    return None
