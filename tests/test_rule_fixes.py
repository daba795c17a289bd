"""Regression tests for issue 12 section 3 (rule fixes), with the literal inputs the issue quotes."""
from __future__ import annotations

from typing import Any

import pytest

from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Finding, Origin, Resource, ResourceRef
from kaudit.ruleset import load_builtin_rules

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}


def resource(body: dict[str, Any]) -> Resource:
    meta = body.setdefault("metadata", {})
    meta.setdefault("name", "x")
    ref = ResourceRef(body.get("apiVersion", "v1"), body["kind"], meta["name"], meta.get("namespace"))
    return Resource(ref, body, Origin(file="case.yaml", line=1))


def findings(rule_id: str, *bodies: dict[str, Any]) -> list[Finding]:
    result = run([RULES[rule_id]], Inventory([resource(b) for b in bodies]))
    assert not result.errors
    return [f for f in result.findings if f.rule == rule_id]


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": list(containers) or [{"name": "app", "image": "app:1.0"}], **spec}}


# --- container-runtime-socket -------------------------------------------------------------------

RUNTIME_SOCKET_PATHS = [
    "/run/k3s/containerd/containerd.sock",               # k3s, and RKE2 (same path)
    "/run/k0s/containerd.sock",                          # k0s
    "/var/snap/microk8s/common/run/containerd.sock",     # MicroK8s
    "/run/cri-dockerd.sock", "/var/run/cri-dockerd.sock",  # cri-dockerd
    "/run/user/1000/docker.sock",                        # rootless Docker
    "/var/run/docker", "/run", "/var/run",               # parents
    "/run/k3s", "/run/user/1000", "/run/user", "/var/snap/microk8s/common/run",  # directories holding a socket
    "/run/k0s/", "//run//k0s/./containerd.sock", "/var/lib/../run/k3s/containerd",  # spellings
]


@pytest.mark.parametrize("path", RUNTIME_SOCKET_PATHS)
def test_runtime_socket_paths_and_their_directories_are_reported(path: str) -> None:
    [finding] = findings("container-runtime-socket", pod(volumes=[{"name": "rt", "hostPath": {"path": path}}]))
    assert finding.path == ("spec", "volumes", 0, "hostPath", "path")


@pytest.mark.parametrize("path", ["/run/k3s-backup", "/run/user/1000/cache", "/var/lib/rancher/k3s/storage",
                                  "/var/snap/microk8s/common/var/lib", "/run/udev", "/var/lib/docker"])
def test_runtime_socket_look_alikes_are_not(path: str) -> None:
    assert findings("container-runtime-socket", pod(volumes=[{"name": "d", "hostPath": {"path": path}}])) == []


# --- image references: only @<algorithm>:<hex of the right length> pins -----------------------

SHA256 = "sha256:" + "0123456789abcdef" * 4


def image_rules(image: str) -> set[str]:
    fired = set()
    for rule_id in ("latest-tag", "image-not-pinned-by-digest"):
        if findings(rule_id, pod({"name": "c", "image": image})):
            fired.add(rule_id)
    return fired


@pytest.mark.parametrize("image, fired", [
    # the inputs: none of them pins anything
    ("nginx@", {"latest-tag", "image-not-pinned-by-digest"}),
    ("nginx@foo", {"latest-tag", "image-not-pinned-by-digest"}),
    ("@sha256:abc", {"image-not-pinned-by-digest"}),  # no name: not an image at all, so no tag to judge
    ("nginx:latest@sha256:abc", {"latest-tag", "image-not-pinned-by-digest"}),
    ("nginx@sha256:" + "a" * 32, {"latest-tag", "image-not-pinned-by-digest"}),  # 32 hex: sha256 needs 64
    ("nginx@sha256:" + "A" * 64, {"latest-tag", "image-not-pinned-by-digest"}),  # the runtime wants lower case
    ("nginx@md5:" + "a" * 32, {"latest-tag", "image-not-pinned-by-digest"}),
    # a valid digest pins; the runtime then ignores the tag, `latest` included (documented decision)
    ("nginx:latest@" + SHA256, set()),
    ("nginx@" + SHA256, set()),
    ("nginx@sha512:" + "ab" * 64, set()),
    ("nginx:1.25", {"image-not-pinned-by-digest"}),
])
def test_only_a_valid_digest_pins(image: str, fired: set[str]) -> None:
    assert image_rules(image) == fired


def test_a_broken_digest_is_explained() -> None:
    [finding] = findings("image-not-pinned-by-digest", pod({"name": "c", "image": "nginx@sha256:" + "a" * 32}))
    assert "not a valid image reference" in finding.message and "32 hex digits, not 64" in finding.message


# --- network-policy-allows-all: everyone on listed ports is its own, lower-severity finding ---------

ARGO_CD_CONTROLLER_POLICY = {  # argo-cd install.yaml
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "argocd-application-controller-network-policy", "namespace": "argocd"},
    "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-application-controller"}},
             "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8082}]}]}}
FLUX_SCRAPING_POLICY = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "allow-scraping", "namespace": "flux-system"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]}}


@pytest.mark.parametrize("policy, ports", [(ARGO_CD_CONTROLLER_POLICY, "TCP 8082"), (FLUX_SCRAPING_POLICY, "TCP 8080")])
def test_everyone_on_listed_ports_is_reported_with_the_ports_at_low_severity(policy: dict[str, Any], ports: str) -> None:
    assert findings("network-policy-allows-all", policy) == []
    [finding] = findings("network-policy-allows-all-on-ports", policy)
    assert f"lets everyone through on {ports}:" in finding.message
    assert finding.severity < RULES["network-policy-allows-all"].severity
    assert finding.path == ("spec", "ingress", 0)


def test_everyone_on_every_port_is_still_the_medium_rule() -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "open", "namespace": "a"},
              "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}}
    assert len(findings("network-policy-allows-all", policy)) == 1
    assert findings("network-policy-allows-all-on-ports", policy) == []


# --- default-service-account-automount: reported on the ServiceAccount, where the fix goes --------

def test_default_service_account_finding_points_at_the_service_account() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    unset = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}}
    [finding] = findings("default-service-account-automount", namespace, unset)
    assert (finding.resource.kind, finding.resource.name, finding.path) == ("ServiceAccount", "default", ("metadata", "name"))
    assert "automountServiceAccountToken unset" in finding.message
    explicit = {**unset, "automountServiceAccountToken": True}
    [finding] = findings("default-service-account-automount", explicit)  # no Namespace in the scan: still judged
    assert finding.path == ("automountServiceAccountToken",) and "automountServiceAccountToken true" in finding.message
    assert findings("default-service-account-automount", {**unset, "automountServiceAccountToken": False}) == []
    other = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "billing", "namespace": "shop"}}
    assert findings("default-service-account-automount", namespace, other) == []
    system = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "kube-system"}}
    assert len(findings("default-service-account-automount", system)) == len(
        findings("default-service-account-automount", {**system, "metadata": {"name": "default", "namespace": "x"}}))


# --- the JSON `container` field: every container-level finding carries its container -----------

def test_pod_level_rules_name_the_container_they_found_the_problem_in() -> None:
    bad = {"privileged": True, "runAsUser": 0, "procMount": "Unmasked", "allowPrivilegeEscalation": True,
           "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}, "seccompProfile": {"type": "Unconfined"},
           "seLinuxOptions": {"type": "spc_t"}, "appArmorProfile": {"type": "Unconfined"}}
    spec = pod({"name": "good", "image": "app:1"},
               {"name": "bad", "image": "app:1", "securityContext": bad, "ports": [{"containerPort": 80, "hostPort": 80}],
                "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
               initContainers=[{"name": "init-bad", "image": "app:1", "securityContext": {"runAsUser": 0}}])
    checked = 0
    for rule_id, rule in RULES.items():
        if rule.target != "pod":
            continue
        for finding in findings(rule_id, spec):
            where = [p for p in finding.path if isinstance(p, str)]
            if "containers" in where or "initContainers" in where:
                index = finding.path[finding.path.index("containers" if "containers" in where else "initContainers") + 1]
                group = spec["spec"]["containers" if "containers" in where else "initContainers"]
                assert finding.container == group[index]["name"], (rule_id, finding.path)
                checked += 1
    assert checked >= 10
