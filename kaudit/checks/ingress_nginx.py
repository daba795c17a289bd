"""Ingress-NGINX annotations that write raw nginx configuration or send traffic elsewhere.

The controller reads annotations under its `--annotations-prefix` (default `nginx.ingress.kubernetes.io`),
and serves Ingresses by class, but an Ingress without `ingressClassName` may still be served by it
(`--watch-ingress-without-class`, or its IngressClass marked default), and a class name is only a
name: the annotation prefix is what these checks judge, never the class. Values are read as text,
never evaluated; only the annotation's key (and a mirror's host) appears in a message.
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any, Iterable, Mapping, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping

DEFAULT_PREFIXES = ("nginx.ingress.kubernetes.io",)
# ingress-nginx's snippet annotations: raw nginx (or ModSecurity) configuration (CVE-2021-25742)
DEFAULT_SNIPPETS = ("server-snippet", "configuration-snippet", "auth-snippet", "stream-snippet",
                    "modsecurity-snippet")
# annotations whose value is pasted into an nginx directive: the IngressNightmare injections
# (CVE-2025-24514 auth-url, CVE-2025-1097 auth-tls-match-cn, CVE-2025-1098 mirror-target/mirror-host)
DEFAULT_INJECTABLE = ("auth-url", "auth-tls-match-cn", "mirror-target", "mirror-host")
# what ends an nginx directive or block, opens a quoted string or a comment, or starts a new line:
# none of these annotation values needs them
# (a backslash is not among them: auth-tls-match-cn is a regular expression, `CN=.*\.example\.com`)
_BREAKOUT = r"[\x00-\x1f\x7f\"';{}#`]"
MAX_HOST = 253

_PREFIXES_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                    "description": "annotation prefixes the controllers read (--annotations-prefix)"}
_NAMES_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _annotations(subject: Target, prefixes: Iterable[str], names: Iterable[str]) -> Iterable[tuple[str, str]]:
    """(annotation key, value) for each of `names` under each prefix, with a string value."""
    annotations = mapping(mapping(subject.body.get("metadata")).get("annotations"))
    for prefix in prefixes:
        for name in names:
            key = f"{prefix}/{name}"
            value = annotations.get(key)
            if isinstance(value, str):
                yield key, value


@cache
def _breakout() -> re.Pattern[str]:
    return re.compile(_BREAKOUT)  # compiled on first use: checks are imported on the hook path


def _snippets(params: Mapping[str, Any], target: str) -> Check:
    prefixes = tuple(params.get("annotation-prefixes", DEFAULT_PREFIXES))
    names = tuple(params.get("snippet-annotations", DEFAULT_SNIPPETS))

    def check(subject: Target) -> Iterable[Hit]:
        return [Hit(("metadata", "annotations", key), {"annotation": key})
                for key, value in _annotations(subject, prefixes, names) if value.strip()]

    return check


def _injection(params: Mapping[str, Any], target: str) -> Check:
    prefixes = tuple(params.get("annotation-prefixes", DEFAULT_PREFIXES))
    names = tuple(params.get("annotations", DEFAULT_INJECTABLE))

    def check(subject: Target) -> Iterable[Hit]:
        return [Hit(("metadata", "annotations", key), {"annotation": key})
                for key, value in _annotations(subject, prefixes, names) if _breakout().search(value)]

    return check


def mirror_host(target: str) -> Optional[str]:
    """The host a `mirror-target` URL sends to (lower case, no port), or None when there is none
    to judge: empty, or an nginx variable (`$host`), known only per request."""
    rest = target.strip()
    scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}://", rest)
    if scheme:
        rest = rest[scheme.end():]
    authority = re.split(r"[/?#\s]", rest, maxsplit=1)[0]
    authority = authority.rsplit("@", 1)[-1]  # user:password@ is never shown
    authority = authority.split("$", 1)[0] if not authority.startswith("$") else ""  # host$request_uri
    if authority.startswith("["):  # [IPv6]:port
        host = authority[1:].split("]", 1)[0]
    else:
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
    host = host.lower().rstrip(".")
    return host[:MAX_HOST] or None


def outside_cluster(host: str, cluster_domains: Iterable[str]) -> Optional[str]:
    """Why a mirror host is outside the cluster, or None: a Service name (`*.svc`, `*.svc.<domain>`),
    a single-label name (only resolvable through the cluster's search domains) and loopback are inside."""
    import ipaddress  # only when an Ingress mirrors

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return None if address.is_loopback else "an IP address, not a cluster Service name"
    if host == "localhost" or "." not in host:
        return None
    if host.endswith(".svc") or any(host.endswith(f".svc.{domain.lower().strip('.')}") for domain in cluster_domains):
        return None
    return "not a cluster Service name (*.svc)"


def _mirror(params: Mapping[str, Any], target: str) -> Check:
    prefixes = tuple(params.get("annotation-prefixes", DEFAULT_PREFIXES))
    domains = tuple(params.get("cluster-domains", ("cluster.local",)))

    def check(subject: Target) -> Iterable[Hit]:
        hits = []
        for key, value in _annotations(subject, prefixes, ("mirror-target",)):
            host = mirror_host(value)
            why = outside_cluster(host, domains) if host else None
            if why:
                hits.append(Hit(("metadata", "annotations", key), {"annotation": key, "host": host or "", "why": why}))
        return hits

    return check


TEMPLATES = [
    Template("ingress-nginx-snippet", "Ingress-NGINX snippet annotations (raw nginx configuration).",
             frozenset({"object"}),
             {"type": "object", "additionalProperties": False,
              "properties": {"annotation-prefixes": _PREFIXES_SCHEMA, "snippet-annotations": {
                  **_NAMES_SCHEMA, "description": "snippet annotation names, after the prefix (server-snippet, ...)"}}},
             _snippets),
    Template("ingress-nginx-annotation-injection",
             "Ingress-NGINX annotations whose value could break out of its nginx directive.",
             frozenset({"object"}),
             {"type": "object", "additionalProperties": False,
              "properties": {"annotation-prefixes": _PREFIXES_SCHEMA, "annotations": {
                  **_NAMES_SCHEMA, "description": "annotation names, after the prefix, whose values nginx pastes into "
                                                  "a directive (auth-url, ...)"}}},
             _injection),
    Template("ingress-nginx-mirror-outside", "Ingress-NGINX mirror-target sending copies of requests outside the cluster.",
             frozenset({"object"}),
             {"type": "object", "additionalProperties": False,
              "properties": {"annotation-prefixes": _PREFIXES_SCHEMA,
                             "cluster-domains": {"type": "array", "items": {"type": "string", "minLength": 1},
                                                 "description": "the cluster DNS domains (kubelet --cluster-domain)"}}},
             _mirror),
]
