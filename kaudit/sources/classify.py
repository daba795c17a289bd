"""Is a parsed YAML document a Kubernetes object, something to skip (and why), or broken?"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

from kaudit.kubeadm import CONFIG_KINDS, is_config_kind
from kaudit.model import InputError, Skipped
from kaudit.value import value

# Configuration of tools that produce or deploy manifests: valid YAML with apiVersion and kind,
# but never sent to a cluster. Keyed by API group (the part of apiVersion before '/').
TOOLING_GROUPS = {
    "kustomize.config.k8s.io": "kustomize configuration; scan `kustomize build` output instead",
    "kind.x-k8s.io": "kind cluster configuration, not a cluster object",
    # kubeadm's Init/Join/ClusterConfiguration and KubeletConfiguration are judged (kaudit/kubeadm.py);
    # its other kinds (ResetConfiguration, UpgradeConfiguration, CredentialProviderConfig, ...) are not
    "kubeadm.k8s.io": "kubeadm configuration kaudit does not judge, not a cluster object",
    "kubelet.config.k8s.io": "kubelet configuration kaudit does not judge, not a cluster object",
    "kubeproxy.config.k8s.io": "kube-proxy configuration, not a cluster object",
    "apiserver.config.k8s.io": "API server configuration, not a cluster object",
    "audit.k8s.io": "API server audit policy, not a cluster object",
    "config.kubernetes.io": "KRM function configuration, not a cluster object",
}
TOOLING_PREFIXES = {"skaffold/": "skaffold configuration, not a cluster object"}

# Cluster-scoped kinds of the Kubernetes API, by API group. The API server ignores a
# metadata.namespace on them, and so does kaudit: a Namespace carrying one is still a declaration.
CLUSTER_SCOPED: dict[str, frozenset[str]] = {
    "": frozenset({"Namespace", "Node", "PersistentVolume", "ComponentStatus"}),
    "rbac.authorization.k8s.io": frozenset({"ClusterRole", "ClusterRoleBinding"}),
    "storage.k8s.io": frozenset({"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"}),
    "apiextensions.k8s.io": frozenset({"CustomResourceDefinition"}),
    "admissionregistration.k8s.io": frozenset({
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}),
    "scheduling.k8s.io": frozenset({"PriorityClass"}),
    "node.k8s.io": frozenset({"RuntimeClass"}),
    "networking.k8s.io": frozenset({"IngressClass", "IPAddress", "ServiceCIDR"}),
    "apiregistration.k8s.io": frozenset({"APIService"}),
    "certificates.k8s.io": frozenset({"CertificateSigningRequest", "ClusterTrustBundle"}),
    "flowcontrol.apiserver.k8s.io": frozenset({"FlowSchema", "PriorityLevelConfiguration"}),
    "resource.k8s.io": frozenset({"DeviceClass", "ResourceSlice"}),
    "policy": frozenset({"PodSecurityPolicy"}),
}


def cluster_scoped(api_version: str, kind: str) -> bool:
    """Is this a cluster-scoped kind of the Kubernetes API? Other kinds, custom ones included, are
    taken as namespaced (most are; a scan cannot ask the API server's discovery). kubeadm and kubelet
    configuration files count as cluster-scoped: they are in no namespace."""
    group = api_version.rpartition("/")[0]
    return kind in CLUSTER_SCOPED.get(group, ()) or kind in CONFIG_KINDS.get(group, ())


@value
class ObjectDoc:
    """A parsed document that is a Kubernetes object (or a List of them)."""

    api_version: str
    kind: str
    name: str
    namespace: Optional[str]
    body: Mapping[str, Any]
    items: Optional[list[Any]] = None  # set for List kinds, whose items are the objects
    warning: Optional[str] = None  # something the API server would ignore or change, said once


Outcome = Union[ObjectDoc, Skipped, InputError]


def classify_document(data: Any, file: str) -> Outcome:
    if data is None:
        return Skipped(file, None, "empty document")
    if not isinstance(data, dict):
        return Skipped(file, None, f"not a Kubernetes object (a YAML {_yaml_type(data)}, not a mapping)")
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version is None or kind is None:
        return _not_an_object(data, file, api_version, kind)
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return InputError(file, None, "apiVersion and kind must be non-empty strings")
    if is_config_kind(api_version, kind):
        return _config_document(api_version, kind, data, file)
    tooling = _tooling_reason(api_version)
    if tooling:
        return Skipped(file, None, tooling)
    if kind.endswith("List") and "items" in data:
        items = data.get("items")
        if not isinstance(items, list):
            return InputError(file, None, f"{kind}: items must be a list")
        return ObjectDoc(api_version, kind, "", None, data, items)
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        return InputError(file, None, f"{kind}: metadata must be a mapping")
    name = metadata.get("name") or metadata.get("generateName") or "<unnamed>"
    namespace = metadata.get("namespace")
    if not isinstance(name, str) or not (namespace is None or isinstance(namespace, str)):
        return InputError(file, None, f"{kind}: metadata.name and metadata.namespace must be strings")
    if namespace and cluster_scoped(api_version, kind):
        return ObjectDoc(api_version, kind, name, None, data,
                         warning=f"{kind}/{name} is cluster-scoped: metadata.namespace {namespace!r} is ignored, "
                                 "as the API server ignores it")
    return ObjectDoc(api_version, kind, name, namespace or None, data)


def _config_document(api_version: str, kind: str, data: Mapping[str, Any], file: str) -> Outcome:
    """A kubeadm or kubelet configuration file: no metadata, so it is named by what identifies it to
    kubeadm (clusterName, default `kubernetes`; the node's name) where it says, else `<unnamed>`."""
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return InputError(file, None, f"{kind}: metadata must be a mapping")
    if kind == "ClusterConfiguration":
        name = data.get("clusterName") or "kubernetes"  # kubeadm's default clusterName
    else:
        registration = data.get("nodeRegistration")
        name = registration.get("name") if isinstance(registration, dict) else None
    if not isinstance(name, str) or not name:
        name = "<unnamed>"
    return ObjectDoc(api_version, kind, name, None, data)


def _not_an_object(data: Mapping[str, Any], file: str, api_version: Any, kind: Any) -> Outcome:
    # A document that is clearly meant as an object but lacks apiVersion or kind is broken, not foreign.
    if kind is not None and ("metadata" in data or "spec" in data):
        return InputError(file, None, f"{kind} without apiVersion")
    if api_version is not None and "metadata" in data:
        return InputError(file, None, "object without kind")
    base = os.path.basename(file).lower()
    if base == "chart.yaml":
        return Skipped(file, None, "Helm chart metadata, not a Kubernetes object")
    if base.startswith("values") and base.endswith((".yaml", ".yml")):
        return Skipped(file, None, "Helm values, not a Kubernetes object")
    return Skipped(file, None, "not a Kubernetes object (no apiVersion and kind)")


def _tooling_reason(api_version: str) -> Optional[str]:
    for prefix, reason in TOOLING_PREFIXES.items():
        if api_version.startswith(prefix):
            return reason
    group = api_version.rpartition("/")[0]
    return TOOLING_GROUPS.get(group)


def _yaml_type(data: Any) -> str:
    if isinstance(data, list):
        return "list"
    if isinstance(data, str):
        return "string"
    if isinstance(data, bool):
        return "boolean"
    if isinstance(data, (int, float)):
        return "number"
    return type(data).__name__
