"""Static pods: pods a node's kubelet runs from files, not pods the API server's controllers run.

A static pod is the platform's (kubeadm runs the control plane this way), and it is recognised by
what makes it one, never by its name, namespace or labels:

- **In a cluster**, the kubelet mirrors each static pod into the API as a *mirror pod* whose one
  ownerReference is its Node: `{apiVersion: v1, kind: Node, name: <node>, controller: true}`
  (kubelet `pkg/kubelet/pod/mirror_client.go`, CreateMirrorPod; the NodeRestriction admission
  plugin requires that owner of the mirror pods a node creates, KEP 1314).
- **In a repository**, a Pod manifest in a kubelet's static pod directory: the defaults of the
  distributions below, the `static-pod-paths` a rule is given, or the `staticPodPath` of a
  KubeletConfiguration object in the scan. A repository mirrors a node's tree below some folder
  (`nodes/cp1/etc/kubernetes/manifests/etcd.yaml`), so a file is in the directory when the folder
  holding it ends with the directory's path components. The kubelet's `--pod-manifest-path` flag
  (a systemd drop-in) is not read, and a relative file path is matched as given: scan from above
  the directory, or name it by its absolute path.
"""
from __future__ import annotations

import functools
import posixpath
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

from kaudit.inventory import memoized
from kaudit.model import STDIN_NAME, Resource
from kaudit.workloads import mapping, sequence

if TYPE_CHECKING:
    from kaudit.checks.base import Lookup

# The kubelet's staticPodPath as each distribution configures it (their docs).
DEFAULT_STATIC_POD_PATHS = (
    "/etc/kubernetes/manifests",                    # kubeadm (and kind, kops, Cluster API's kubeadm)
    "/var/lib/rancher/k3s/agent/pod-manifests",     # k3s
    "/var/lib/rancher/rke2/agent/pod-manifests",    # RKE2
)
PARAMS_SCHEMA_PROPERTY = {
    "type": "array",
    "items": {"type": "string", "pattern": "^/"},
    "description": "more kubelet static pod directories (staticPodPath) besides "
                   + ", ".join(DEFAULT_STATIC_POD_PATHS),
}
MAX_PATH_CHARS = 4096  # a staticPodPath longer than PATH_MAX is not a directory


def _components(path: str) -> tuple[str, ...]:
    clean = posixpath.normpath("/" + path.replace("\\", "/").strip().lstrip("/"))
    return tuple(part for part in clean.split("/") if part)


def static_pod_dirs(extra: Iterable[str] = (), lookup: Optional["Lookup"] = None) -> tuple[tuple[str, ...], ...]:
    """The static pod directories, as path components: defaults, `extra`, and the staticPodPath of
    each KubeletConfiguration object in the scan (memoised per scan)."""
    found = list(extra)
    if lookup is not None:
        found.extend(memoized(lookup, "static-pod-paths", _configured_paths))
    return _dirs(tuple(found))


def _configured_paths(lookup: "Lookup") -> tuple[str, ...]:
    """The staticPodPath of each KubeletConfiguration object in the scan."""
    return tuple(path for config in lookup.of_kind("KubeletConfiguration")
                 if str(config.ref.api_version).startswith("kubelet.config.k8s.io/")
                 and isinstance(path := config.body.get("staticPodPath"), str) and 0 < len(path) <= MAX_PATH_CHARS)


@functools.lru_cache(maxsize=64)
def _dirs(paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The defaults and `paths` as path components, each once (`/` itself is no static pod directory)."""
    return tuple(dict.fromkeys(c for c in map(_components, DEFAULT_STATIC_POD_PATHS + paths) if c))


def node_controller(resource: Resource) -> bool:
    """Is the object's controller a Node (a mirror pod, as the kubelet creates it)?"""
    for ref in sequence(mapping(resource.body.get("metadata")).get("ownerReferences")):
        ref = mapping(ref)
        if ref.get("controller") is True:
            return ref.get("kind") == "Node" and ref.get("apiVersion") == "v1"
    return False


def in_static_pod_dir(file: Optional[str], dirs: Sequence[tuple[str, ...]]) -> bool:
    if not file or file == STDIN_NAME or len(file) > MAX_PATH_CHARS:
        return False
    folder = _components(posixpath.dirname(file.replace("\\", "/")))
    return any(len(folder) >= len(d) and folder[len(folder) - len(d):] == d for d in dirs)


def is_static_pod(resource: Resource, extra_dirs: Iterable[str] = (), lookup: Optional["Lookup"] = None) -> bool:
    """A mirror pod (owned by its Node) or a Pod manifest in a kubelet's static pod directory."""
    if resource.kind != "Pod" or resource.ref.api_version != "v1":
        return False
    if node_controller(resource):
        return True
    file = resource.origin.file
    return file is not None and in_static_pod_dir(file, static_pod_dirs(extra_dirs, lookup))


def controller_of(body: Any) -> Optional[Any]:
    """The ownerReference with `controller: true` (the API server allows at most one), if any."""
    for ref in sequence(mapping(mapping(body).get("metadata")).get("ownerReferences")):
        if mapping(ref).get("controller") is True:
            return ref
    return None
