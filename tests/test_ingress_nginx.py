"""Ingress-NGINX rules: snippet annotations, IngressNightmare injection characters, and the mirror
host judgement (inside the cluster or not)."""
from __future__ import annotations

from typing import Any

import pytest

from kaudit.checks.ingress_nginx import mirror_host, outside_cluster
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, ResourceRef, format_path
from kaudit.ruleset import load_builtin_rules

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}
PREFIX = "nginx.ingress.kubernetes.io/"


def fired(rule_id: str, annotations: Any, kind: str = "Ingress", params: dict[str, Any] | None = None) -> list[str]:
    rule = RULES[rule_id] if params is None else RULES[rule_id].with_params(params)
    body = {"apiVersion": "networking.k8s.io/v1", "kind": kind, "metadata": {"name": "i", "annotations": annotations},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}
    result = run([rule], Inventory([Resource(ResourceRef("networking.k8s.io/v1", kind, "i", "ns"), body,
                                             Origin(file="i.yaml", line=1))]))
    assert not result.errors
    return [format_path(f.path) for f in result.findings if f.rule == rule_id]


# --- mirror host ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, host", [
    ("https://test.env.com/$request_uri", "test.env.com"),
    ("https://test.env.com$request_uri", "test.env.com"),
    ("http://user:secret@Evil.Example.COM.:8443/x", "evil.example.com"),
    ("http://[fd00::1]:8080/x", "fd00::1"),
    ("https://1.2.3.4/$request_uri", "1.2.3.4"),
    ("mirror.shop.svc:8080/x", "mirror.shop.svc"),
    ("$scheme://$host$request_uri", None),
    ("http://$host/x", None),
    ("", None),
    ("   ", None),
])
def test_mirror_host(target: str, host: str | None) -> None:
    assert mirror_host(target) == host


@pytest.mark.parametrize("host, outside", [
    ("shop.shop.svc", False), ("shop.shop.svc.cluster.local", False), ("shop.shop.svc.corp.internal", False),
    ("mirror", False), ("localhost", False), ("127.0.0.1", False), ("::1", False),
    ("10.96.0.12", True), ("fd00::1", True), ("collector.example.net", True), ("mirror.svc.example.com", True),
    ("shop.svc.cluster.local.evil.com", True), ("mirror.shop", True),
])
def test_outside_cluster(host: str, outside: bool) -> None:
    assert (outside_cluster(host, ("cluster.local", "corp.internal")) is not None) is outside


def test_a_mirror_message_shows_the_host_never_the_credentials() -> None:
    rule = RULES["ingress-nginx-mirror-outside-cluster"]
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "annotations": {PREFIX + "mirror-target": "https://u:Pa55w0rd@evil.example.net/x"}}}
    result = run([rule], Inventory([Resource(ResourceRef("networking.k8s.io/v1", "Ingress", "i", "ns"), body,
                                             Origin(file="i.yaml", line=1))]))
    [finding] = result.findings
    assert "evil.example.net" in finding.message and "Pa55w0rd" not in finding.message and "u:" not in finding.message


def test_a_custom_cluster_domain() -> None:
    annotations = {PREFIX + "mirror-target": "http://m.shop.svc.corp.internal/"}
    assert fired("ingress-nginx-mirror-outside-cluster", annotations) == [f'metadata.annotations["{PREFIX}mirror-target"]']
    assert fired("ingress-nginx-mirror-outside-cluster", annotations, params={"cluster-domains": ["corp.internal"]}) == []


def test_a_huge_mirror_target_is_bounded() -> None:
    host = mirror_host("http://" + "a." * 500_000 + "example.com/")
    assert host is not None and len(host) <= 253


# --- snippets and injection ---------------------------------------------------------------------------

@pytest.mark.parametrize("annotations", [None, "text", [], {PREFIX + "server-snippet": None},
                                         {PREFIX + "server-snippet": 12}, {PREFIX + "server-snippet": ["x"]},
                                         {PREFIX + "mirror-target": {"a": 1}}])
def test_odd_shapes_do_not_crash_or_fire(annotations: Any) -> None:
    for rule_id in ("ingress-nginx-snippet-annotation", "ingress-nginx-annotation-injection",
                    "ingress-nginx-mirror-outside-cluster"):
        assert fired(rule_id, annotations) == []


def test_one_finding_per_snippet_annotation_only_on_ingresses() -> None:
    annotations = {PREFIX + "server-snippet": "return 200;", PREFIX + "configuration-snippet": "  ",
                   PREFIX + "stream-snippet": "server {}"}
    assert fired("ingress-nginx-snippet-annotation", annotations) == [
        f'metadata.annotations["{PREFIX}server-snippet"]', f'metadata.annotations["{PREFIX}stream-snippet"]']
    assert fired("ingress-nginx-snippet-annotation", annotations, kind="Service") == []


def test_the_prefix_is_the_controllers_not_the_class() -> None:
    annotations = {"acme.example/server-snippet": "return 200;"}
    assert fired("ingress-nginx-snippet-annotation", annotations) == []
    params = {"annotation-prefixes": ["nginx.ingress.kubernetes.io", "acme.example"]}
    assert fired("ingress-nginx-snippet-annotation", annotations, params=params) == [
        'metadata.annotations["acme.example/server-snippet"]']


@pytest.mark.parametrize("value, injected", [
    ("https://auth.example.com/oauth2/auth?rd=$scheme://$host$request_uri", False),
    ("http://auth.shop.svc.cluster.local:4180/check", False),
    ("http://a/b\n}", True), ("http://a/b;", True), ('http://a/b"', True), ("http://a/#x", True),
    ("http://a/{x}", True), ("http://a/\tb", True), ("http://a/`id`", True),
])
def test_injection_characters_in_auth_url(value: str, injected: bool) -> None:
    assert bool(fired("ingress-nginx-annotation-injection", {PREFIX + "auth-url": value})) is injected


def test_a_match_cn_regular_expression_is_not_injection() -> None:
    assert fired("ingress-nginx-annotation-injection", {PREFIX + "auth-tls-match-cn": r"CN=(a|b)\.example\.com"}) == []
    assert fired("ingress-nginx-annotation-injection", {PREFIX + "auth-tls-match-cn": "CN=a ) { return 200; }"}) != []
