"""Container escape: the fields of a pod spec that give code in one of its containers the node.

Each is a known route out of the container, not a hardening gap:
- `privileged: true` (every device, every capability, no seccomp or AppArmor confinement);
- `hostPID` with `SYS_PTRACE` (or privileged): ptrace and /proc/<pid>/root of the node's processes;
- the capabilities `SYS_ADMIN` (mount, cgroup release_agent) and `SYS_MODULE` (load a kernel module);
- a hostPath of the node's root, of the kubelet's state (every pod's tokens and the kubelet's
  credentials), of a container runtime socket (run any container), or, writable, of /etc
  (cron, static pod manifests, kubeconfigs), /proc, /sys, /dev, /boot, /root; mounted by a
  container that may run as root (these files and sockets are root's: a container pinned to
  another user, runAsUser or runAsNonRoot, reads the node's tree but not them).

Not counted: `hostIPC` (shared memory of host processes: data, not code execution, for most
workloads), `hostNetwork` (an entry point and a view of node-local services, kaudit/attack/build.py),
and capabilities such as NET_ADMIN or NET_RAW (network attacks, not the node).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from kaudit.checks.host_path import access, exposes, normalize
from kaudit.model import FieldPath
from kaudit.workloads import Container, PodSpec, containers, effective_security_context, mapping, sequence

# Mounted even read-only, these give the node: its whole tree, every pod's token and the kubelet's
# credentials, or a runtime's API (a socket needs no write access to the mount to be connected to).
ANY_ACCESS = ("/", "/var/lib/kubelet/**", "/run/docker.sock", "/run/containerd/containerd.sock",
              "/run/crio/crio.sock", "/run/k3s/containerd/containerd.sock", "/run/cri-dockerd.sock",
              "/run/podman/podman.sock", "/var/snap/microk8s/common/run/containerd.sock")
# Writable, these give the node (a cron job or static pod in /etc, a kernel setting, a device).
WRITABLE = ("/etc/**", "/proc/**", "/sys/**", "/dev/**", "/boot/**", "/root/**")
ESCAPE_CAPABILITIES = ("SYS_ADMIN", "SYS_MODULE")


class Route(NamedTuple):
    path: FieldPath
    why: str  # 'container "app" is privileged'
    what: str  # what to remove: 'privileged (container "app")'


def escape_routes(pod: PodSpec, listed: Optional[list[Container]] = None) -> list[Route]:
    """Every field of the pod that lets a container reach the node, with what it does; the fix is
    removing all of them."""
    found: list[Route] = []
    all_containers = listed if listed is not None else containers(pod)
    ptrace = False
    for container in all_containers:
        context = container.security_context
        if context.get("privileged") is True:
            found.append(Route(container.path + ("securityContext", "privileged"),
                               f'container "{container.name}" is privileged', f'privileged (container "{container.name}")'))
        for index, capability in _added(container):
            name = capability.upper().removeprefix("CAP_")
            if name == "SYS_PTRACE":
                ptrace = True
            if name in ESCAPE_CAPABILITIES or name == "ALL":
                found.append(Route(container.path + ("securityContext", "capabilities", "add", index),
                                   f'container "{container.name}" adds {name}', f'{name} (container "{container.name}")'))
    if pod.spec.get("hostPID") is True and (ptrace or any(c.security_context.get("privileged") is True
                                                          for c in all_containers)):
        found.append(Route(pod.path + ("hostPID",), "hostPID with SYS_PTRACE: the node's processes", "hostPID"))
    for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
        host_path = mapping(mapping(volume).get("hostPath")).get("path")
        if not isinstance(host_path, str) or not host_path.strip():
            continue
        path = normalize(host_path)
        mounted = access(mapping(volume).get("name"), [c for c in all_containers if _may_be_root(pod, c)])
        if mounted == "not mounted":
            continue  # by no container that may run as root (the node's files are root's)
        writable = mounted == "writable"
        if any(exposes(path, wanted) for wanted in ANY_ACCESS) or \
                (writable and any(exposes(path, wanted) for wanted in WRITABLE)):
            found.append(Route(pod.path + ("volumes", index, "hostPath", "path"), f"hostPath {path} ({mounted})",
                               f"the hostPath volume of {path}"))
    return found


def _added(container: Container) -> list[tuple[int, str]]:
    added = sequence(mapping(container.security_context.get("capabilities")).get("add"))
    return [(index, item) for index, item in enumerate(added) if isinstance(item, str)]


def _may_be_root(pod: PodSpec, container: Container) -> bool:
    """Can the container's processes run as UID 0? A host path is only as open as its owner's
    permissions: the kubelet's pod directories, the runtime sockets and /etc are root's."""
    if container.security_context.get("privileged") is True:
        return True
    values = effective_security_context(pod, container).values
    uid = values.get("runAsUser")
    if isinstance(uid, int) and not isinstance(uid, bool):
        return uid == 0
    return values.get("runAsNonRoot") is not True  # the image's user, unknown here: maybe root
