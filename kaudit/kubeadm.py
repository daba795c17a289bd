"""Control-plane and kubelet configuration as kubeadm writes it: what each component effectively runs with.

Three places hold it, and the checks read all three the same way:
- static pod manifests (`/etc/kubernetes/manifests`, or the mirror pods a cluster scan lists in
  kube-system): the container's command line (kaudit/flags.py);
- kubeadm's own configuration files: `ClusterConfiguration` (`apiServer.extraArgs`,
  `etcd.local.extraArgs`, `etcd.external`), `InitConfiguration` / `JoinConfiguration`
  (`nodeRegistration.kubeletExtraArgs`) and a `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1).
  kubeadm.k8s.io/v1beta3 writes extraArgs as a map, v1beta4 as a list of {name, value};
- the two ConfigMaps kubeadm keeps in kube-system and reads back on `join` and `upgrade`:
  `kubeadm-config` (a ClusterConfiguration in data.ClusterConfiguration) and `kubelet-config`
  (`kubelet-config-1.NN` before kubeadm 1.24; a KubeletConfiguration in data.kubelet). Their names
  are kubeadm's contract, so they are recognised by namespace, name and key; the embedded YAML is
  parsed by kaudit's safe loader, at most MAX_EMBEDDED characters, and never evaluated.

Effective values: kubeadm generates each component's flags from defaults (below) that the user's
extraArgs replace by name; the kubelet takes its config file's fields, defaulted as v1beta1 defaults
them, and a command-line flag (kubeletExtraArgs) overrides the file's field.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

from kaudit.flags import Flags, container_flags, map_flags, merged
from kaudit.model import FieldPath, InputError, Resource
from kaudit.sources.yamldoc import position_of
from kaudit.workloads import containers, mapping, pod_specs, sequence

KUBEADM_GROUP = "kubeadm.k8s.io"
KUBELET_GROUP = "kubelet.config.k8s.io"
KUBEADM_KINDS = frozenset({"ClusterConfiguration", "InitConfiguration", "JoinConfiguration"})
# kubeadm and kubelet configuration kinds kaudit judges (others of those groups stay skipped).
CONFIG_KINDS: Mapping[str, frozenset[str]] = {KUBEADM_GROUP: KUBEADM_KINDS,
                                              KUBELET_GROUP: frozenset({"KubeletConfiguration"})}
MAX_EMBEDDED = 256 * 1024  # a ConfigMap holds at most 1 MiB; kubeadm's configs are a few KiB
SYSTEM_NAMESPACE = "kube-system"
_KUBELET_CONFIG_MAP = re.compile(r"^kubelet-config(-1\.\d{1,3})?$")

# What kubeadm puts on the command lines it generates (app/phases/controlplane and etcd), before
# the user's extraArgs: only the flags the checks read.
# It sets no --anonymous-auth, --profiling, --kubelet-certificate-authority or --audit-* flag
# (getAPIServerCommand): the API server's own defaults apply to those.
APISERVER_DEFAULTS = {"authorization-mode": "Node,RBAC", "enable-admission-plugins": "NodeRestriction"}
APISERVER_LOCAL_ETCD = {"etcd-servers": "https://127.0.0.1:2379", "etcd-cafile": "/etc/kubernetes/pki/etcd/ca.crt",
                        "etcd-certfile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                        "etcd-keyfile": "/etc/kubernetes/pki/apiserver-etcd-client.key"}
ETCD_DEFAULTS = {"client-cert-auth": "true", "peer-client-cert-auth": "true"}


def is_config_kind(api_version: str, kind: str) -> bool:
    return kind in CONFIG_KINDS.get(api_version.rpartition("/")[0], ())


def group_of(body: Mapping[str, Any]) -> str:
    api_version = body.get("apiVersion")
    return api_version.rpartition("/")[0] if isinstance(api_version, str) else ""


def _same(path: FieldPath) -> FieldPath:
    return path


class Component(NamedTuple):  # NamedTuples, not dataclasses: cheaper to define on the hook path
    """One control-plane program and its effective flags, wherever they were written."""

    program: str  # kube-apiserver | etcd
    flags: Flags
    add_at: FieldPath  # where a missing flag is added (object path)
    where: str  # what the user edits: 'container "kube-apiserver"', 'apiServer.extraArgs', ...
    place: Callable[[FieldPath], FieldPath] = _same  # flag path -> object path
    container: Optional[str] = None
    env: Mapping[str, tuple[str, FieldPath]] = {}  # literal env values (etcd reads ETCD_*); never changed
    version: Optional[str] = None  # the Kubernetes version it runs, when known (image tag, kubernetesVersion)


# ---- embedded configuration in kubeadm's ConfigMaps ----

class Embedded(NamedTuple):
    kind: str  # the kind expected: ClusterConfiguration | KubeletConfiguration
    key: str  # the data key
    body: Optional[Mapping[str, Any]]
    problem: Optional[str] = None  # why it could not be read (body is None then)


def embedded_config(resource: Resource) -> Optional[Embedded]:
    """The configuration a kubeadm ConfigMap in kube-system holds, or None for any other object."""
    if resource.kind != "ConfigMap" or resource.namespace != SYSTEM_NAMESPACE or group_of(resource.body):
        return None
    if resource.name == "kubeadm-config":
        kind, key = "ClusterConfiguration", "ClusterConfiguration"
    elif _KUBELET_CONFIG_MAP.match(resource.name):
        kind, key = "KubeletConfiguration", "kubelet"
    else:
        return None
    data = resource.body.get("data")
    if not isinstance(data, dict) or key not in data:
        return None  # not kubeadm's (it always writes the key): nothing to judge, nothing broken
    text = data[key]
    if not isinstance(text, str):
        return Embedded(kind, key, None, f"data.{key} is not a string")
    body, problem = _parse(text)
    if body is None:
        return Embedded(kind, key, None, f"data.{key}: {problem}")
    group = KUBELET_GROUP if kind == "KubeletConfiguration" else KUBEADM_GROUP
    if body.get("kind") != kind or group_of(body) != group:
        return Embedded(kind, key, None,
                        f"data.{key} holds {body.get('kind')!r} ({body.get('apiVersion')!r}), not a {kind}")
    return Embedded(kind, key, body)


@functools.lru_cache(maxsize=32)  # the same ConfigMap is read by several rules
def _parse(text: str) -> tuple[Optional[Mapping[str, Any]], Optional[str]]:
    from kaudit.sources.yamldoc import Document, parse_documents

    if len(text) > MAX_EMBEDDED:
        return None, f"{len(text)} characters, more than the {MAX_EMBEDDED} kaudit reads"
    try:
        for parsed in parse_documents(text):
            if not isinstance(parsed, Document):
                return None, f"line {parsed.line}: {parsed.message}" if parsed.line else parsed.message
            if parsed.data is None:
                continue
            if not isinstance(parsed.data, dict):
                return None, "not a YAML mapping"
            return parsed.data, None
    except Exception as error:  # the loader's own refusals: never a crash of the rule
        return None, f"cannot be parsed: {type(error).__name__}"
    return None, "empty"


def embedded_problems(resources: Iterable[Resource]) -> list[InputError]:
    """kubeadm ConfigMaps whose configuration cannot be read: input errors for the report, each
    where the ConfigMap came from (its file and the line of the data key, or the cluster)."""
    found = []
    for resource in resources:
        if resource.kind != "ConfigMap":
            continue
        embedded = embedded_config(resource)
        if embedded is None or embedded.problem is None:
            continue
        origin = resource.origin
        where = origin.file if origin.file is not None else f"context {origin.context}"
        position = position_of(resource.body.get("data"), embedded.key) if origin.file is not None else None
        line = position[0] if position is not None else origin.line
        found.append(InputError(where, line, f"{resource.ref.describe()}: {embedded.problem}; the {embedded.kind} "
                                             "kubeadm keeps there is not judged"))
    return found


# ---- control-plane components ----

def components(resource: Resource) -> list[Component]:
    """The kube-apiserver and etcd command lines an object defines: its containers that run them,
    a ClusterConfiguration's, or the one in the kubeadm-config ConfigMap."""
    body = resource.body
    if resource.kind == "ClusterConfiguration" and group_of(body) == KUBEADM_GROUP:
        return cluster_configuration(body)
    if resource.kind == "ConfigMap":
        embedded = embedded_config(resource)
        if embedded is None or embedded.body is None or embedded.kind != "ClusterConfiguration":
            return []
        spot: FieldPath = ("data", embedded.key)
        return cluster_configuration(embedded.body, lambda path: spot, f"data.{embedded.key}: ")
    found = []
    for pod in pod_specs(body):
        for container in containers(pod):
            flags = container_flags(container.body, container.path)
            if flags is None or flags.program not in ("kube-apiserver", "etcd"):
                continue
            key = "command" if sequence(container.body.get("command")) else "args"
            found.append(Component(flags.program, flags, container.path + (key,), f'container "{container.name}"',
                                   container=container.name, env=_literal_env(container.body, container.path),
                                   version=_image_version(container.body.get("image"))))
    return found


def cluster_configuration(body: Mapping[str, Any], relocate: Optional[Callable[[FieldPath], FieldPath]] = None,
                          prefix: str = "") -> list[Component]:
    """kube-apiserver and (local) etcd as kubeadm runs them for this ClusterConfiguration."""
    place = relocate or _same
    version = body.get("kubernetesVersion") if isinstance(body.get("kubernetesVersion"), str) else None
    api_server = mapping(body.get("apiServer"))
    etcd = mapping(body.get("etcd"))
    external = etcd.get("external")
    defaults = dict(APISERVER_DEFAULTS)
    if isinstance(external, dict):  # kubeadm passes on only what etcd.external names
        defaults["etcd-servers"] = ",".join(str(s) for s in sequence(external.get("endpoints")))
        for flag, key in (("etcd-cafile", "caFile"), ("etcd-certfile", "certFile"), ("etcd-keyfile", "keyFile")):
            if isinstance(external.get(key), str) and external[key]:
                defaults[flag] = external[key]
    else:
        defaults.update(APISERVER_LOCAL_ETCD)
    given = map_flags("kube-apiserver", api_server.get("extraArgs"), ("apiServer", "extraArgs"))
    add_at: FieldPath = ("apiServer", "extraArgs") if "extraArgs" in api_server else \
        ("apiServer",) if "apiServer" in body else ("kind",)
    found = [Component("kube-apiserver", merged(defaults, given, add_at), place(add_at),
                       prefix + "apiServer.extraArgs", place, version=version)]
    if not isinstance(external, dict):
        local = mapping(etcd.get("local"))
        given = map_flags("etcd", local.get("extraArgs"), ("etcd", "local", "extraArgs"))
        etcd_at: FieldPath = ("etcd", "local", "extraArgs") if "extraArgs" in local else \
            ("etcd", "local") if "local" in etcd else ("etcd",) if "etcd" in body else ("kind",)
        found.append(Component("etcd", merged(ETCD_DEFAULTS, given, etcd_at), place(etcd_at),
                               prefix + "etcd.local.extraArgs", place, version=version))
    return found


def external_etcd_path(body: Mapping[str, Any]) -> Optional[FieldPath]:
    etcd = mapping(body.get("etcd"))
    return ("etcd", "external") if isinstance(etcd.get("external"), Mapping) else None


def _literal_env(container: Mapping[str, Any], base: FieldPath) -> dict[str, tuple[str, FieldPath]]:
    env: dict[str, tuple[str, FieldPath]] = {}
    for index, entry in enumerate(sequence(container.get("env"))[:1000]):
        entry = mapping(entry)
        name, value = entry.get("name"), entry.get("value")
        if isinstance(name, str) and isinstance(value, (str, int, bool)) and "valueFrom" not in entry:
            env[name] = (str(value).lower() if isinstance(value, bool) else str(value), base + ("env", index, "value"))
    return env


_TAG_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?")


def _image_version(image: Any) -> Optional[str]:
    """`v1.36.2` from `registry.k8s.io/kube-apiserver:v1.36.2@sha256:…`; None when the tag says nothing."""
    if not isinstance(image, str):
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return tag if _TAG_VERSION.match(tag) else None


def minor(version: Optional[str]) -> Optional[tuple[int, int]]:
    match = _TAG_VERSION.match(version.strip()) if isinstance(version, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


# ---- kubelet ----

class KubeletSetting(NamedTuple):
    """One kubelet setting: its KubeletConfiguration field, its flag, the v1beta1 default."""

    field: tuple[str, ...]
    flag: str
    default: Any
    bad: Callable[[Any], bool]  # on the field's or flag's parsed value
    parse_flag: Callable[[str], Any]
    describe_bad: Callable[[Any], str]


def _port(text: str) -> Optional[int]:
    return int(text) if re.fullmatch(r"-?\d{1,6}", text.strip()) else None


def _bool_flag(text: str) -> Optional[bool]:
    from kaudit.flags import parse_bool

    return parse_bool(text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


KUBELET_SETTINGS: Mapping[str, KubeletSetting] = {
    "anonymous-auth": KubeletSetting(("authentication", "anonymous", "enabled"), "anonymous-auth", False,
                                     lambda v: v is True, _bool_flag, lambda v: "anonymous requests are served"),
    "authorization-mode": KubeletSetting(("authorization", "mode"), "authorization-mode", "Webhook",
                                         lambda v: v == "AlwaysAllow", str.strip,
                                         lambda v: "every request that gets past authentication is allowed"),
    "read-only-port": KubeletSetting(("readOnlyPort",), "read-only-port", 0,
                                     lambda v: _is_int(v) and v != 0, _port,
                                     lambda v: f"the unauthenticated read-only port {v} is open"),
    "protect-kernel-defaults": KubeletSetting(("protectKernelDefaults",), "protect-kernel-defaults", False,
                                              lambda v: v is False, _bool_flag,
                                              lambda v: "kernel tunables that differ from the kubelet's defaults are changed, not refused"),
    "rotate-certificates": KubeletSetting(("rotateCertificates",), "rotate-certificates", False,
                                          lambda v: v is False, _bool_flag,
                                          lambda v: "its client certificate is not rotated"),
}


class KubeletVerdict(NamedTuple):
    path: FieldPath
    detail: str


def _get(body: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any, FieldPath]:
    """(present, value, deepest existing path) of `path` in `body`."""
    node: Any = body
    done: FieldPath = ()
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None, done
        node = node[part]
        done = done + (part,)
    return True, node, done


def judge_kubelet_config(setting: KubeletSetting, body: Mapping[str, Any], kubeadm_managed: bool,
                         place: Callable[[FieldPath], FieldPath], prefix: str = "") -> Optional[KubeletVerdict]:
    """A KubeletConfiguration's own value of `setting` (its field, else the default), if bad.
    `kubeadm_managed`: kubeadm reads this file (it hardcodes rotateCertificates to true)."""
    if setting.flag == "rotate-certificates" and kubeadm_managed:
        return None
    present, value, deepest = _get(body, setting.field)
    name = ".".join(setting.field)
    if not present:
        value = setting.default
        if not setting.bad(value):
            return None
        return KubeletVerdict(place(deepest or ("kind",)),
                              f"{prefix}{name} is not set and defaults to {_yaml(value)}: {setting.describe_bad(value)}")
    if not setting.bad(value):
        return None
    return KubeletVerdict(place(deepest), f"{prefix}{name} is {_yaml(value)}: {setting.describe_bad(value)}")


def kubelet_flags(body: Mapping[str, Any]) -> Flags:
    """kubeadm Init/JoinConfiguration nodeRegistration.kubeletExtraArgs (flags on the node's kubelet)."""
    registration = mapping(body.get("nodeRegistration"))
    return map_flags("kubelet", registration.get("kubeletExtraArgs"), ("nodeRegistration", "kubeletExtraArgs"))


def judge_kubelet_flag(setting: KubeletSetting, flags: Flags) -> Optional[KubeletVerdict]:
    flag = flags.last(setting.flag)
    if flag is None:
        return None
    value = setting.parse_flag(flag.value)
    if value is None or not setting.bad(value):
        return None
    return KubeletVerdict(flag.path, f"--{setting.flag}={flag.value} in nodeRegistration.kubeletExtraArgs "
                                     f"(it overrides the config file): {setting.describe_bad(value)}")


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
