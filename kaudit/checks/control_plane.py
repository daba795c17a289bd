"""Control-plane and kubelet configuration: kube-apiserver and etcd flags (static pods, kubeadm
ClusterConfiguration, the kubeadm-config ConfigMap) and kubelet settings (KubeletConfiguration,
kubeletExtraArgs, the kubelet-config ConfigMap). What counts as effective is kaudit/kubeadm.py's."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.flags import Flag, parse_bool
from kaudit.kubeadm import (
    KUBEADM_GROUP, KUBEADM_KINDS, KUBELET_SETTINGS, Component, components, embedded_config, external_etcd_path,
    group_of, judge_kubelet_config, judge_kubelet_flag, kubelet_flags, minor,
)
from kaudit.model import FieldPath, format_path

Verdict = Optional[tuple[FieldPath, str, int]]  # (object path, detail, severity levels to demote)


class FlagCheck(NamedTuple):
    program: str
    judge: Callable[[Component], Verdict]


def _at(component: Component, flag: Optional[Flag]) -> FieldPath:
    return component.place(flag.path) if flag is not None else component.add_at


def _named(component: Component, flag: Flag) -> str:
    """`--name=value` and, when the flag sits inside embedded text, where in it."""
    inner = component.place(flag.path) != flag.path
    return f"--{flag.name}={flag.value}" + (f" (at {format_path(flag.path)})" if inner else "")


def _authorization(component: Component) -> Verdict:
    flags = component.flags
    for item, flag in flags.items("authorization-mode"):
        if item == "AlwaysAllow":  # modes are case-sensitive: the API server refuses any other spelling
            return _at(component, flag), f"{_named(component, flag)} authorizes every request", 0
    if "authorization-mode" not in flags and not flags.value("authorization-config"):
        return component.add_at, "--authorization-mode is not set, and it defaults to AlwaysAllow (every request is authorized)", 0
    return None


def _insecure_port(component: Component) -> Verdict:
    flags = component.flags
    port, address = flags.last("insecure-port"), flags.last("insecure-bind-address")
    flag = port if port is not None and port.value.strip() != "0" else address
    if flag is None:
        return None
    release = minor(component.version)
    if release is not None and release >= (1, 24):
        return (_at(component, flag), f"{_named(component, flag)} was removed in Kubernetes 1.24: this "
                f"{component.version} API server refuses to start with it (a broken manifest)", 3)
    if release is not None and release >= (1, 20):
        effect = ("only 0 is accepted since 1.20: this API server refuses to start (a broken manifest)"
                  if flag.name == "insecure-port" else "has had no effect since 1.20 and is removed in 1.24")
        return _at(component, flag), f"{_named(component, flag)} {effect} (version {component.version})", 3
    age = f"version {component.version}, before 1.20" if release is not None else \
        "the version is unknown: before 1.20"
    return (_at(component, flag), f"{_named(component, flag)}: {age}, the API server serves the whole API "
            "on a port without authentication or authorization", 0)


def _token_file(component: Component) -> Verdict:
    flag = component.flags.last("token-auth-file")
    if flag is None or not flag.value.strip():
        return None
    return _at(component, flag), f"{_named(component, flag)} accepts static bearer tokens from a file", 0


def _etcd_servers_plain(component: Component) -> Verdict:
    for item, flag in component.flags.items("etcd-servers"):
        if item.lower().startswith("http://"):
            return _at(component, flag), f"--etcd-servers names {item}: the API server talks to etcd over plain HTTP", 0
    return None


def _etcd_client_cert(component: Component) -> Verdict:
    plain = _etcd_servers_plain(component)
    if plain is not None:
        return plain
    flags = component.flags
    missing = [name for name in ("etcd-certfile", "etcd-keyfile") if not (flags.value(name) or "").strip()]
    if not missing:
        return None
    flag = flags.last(missing[0])
    names = " and ".join(f"--{name}" for name in missing)
    return _at(component, flag), f"no {names}: the API server presents no client certificate to etcd", 0


def _etcd_ca(component: Component) -> Verdict:
    if _etcd_servers_plain(component) is not None:
        return None  # said by etcd-client-cert: no TLS at all
    flag = component.flags.last("etcd-cafile")
    if flag is not None and flag.value.strip():
        return None
    return _at(component, flag), "no --etcd-cafile: the API server does not verify etcd's certificate against the etcd CA", 0


def _encryption(component: Component) -> Verdict:
    flag = component.flags.last("encryption-provider-config")
    if flag is not None and flag.value.strip():
        return None
    return _at(component, flag), "no --encryption-provider-config: Secrets are stored in etcd unencrypted", 0


def _node_restriction(component: Component) -> Verdict:
    flags = component.flags
    for item, flag in flags.items("disable-admission-plugins"):
        if item == "NodeRestriction":
            return _at(component, flag), f"{_named(component, flag)} turns NodeRestriction off", 0
    if any(item == "NodeRestriction" for item, _ in flags.items("enable-admission-plugins")):
        return None
    enabled = flags.last("enable-admission-plugins")
    said = f"{_named(component, enabled)} does not include NodeRestriction" if enabled is not None else \
        "no --enable-admission-plugins: NodeRestriction is not among the API server's default plugins"
    return _at(component, enabled), said, 0


def _always_admit(component: Component) -> Verdict:
    for item, flag in component.flags.items("enable-admission-plugins"):
        if item == "AlwaysAdmit":
            return _at(component, flag), f"{_named(component, flag)} enables the deprecated AlwaysAdmit plugin", 0
    return None


def _set(flag: Optional[Flag]) -> bool:
    return flag is not None and bool(flag.value.strip())


def _on_unless_false(flag_name: str, what: str, decided_by: Optional[str] = None) -> Callable[[Component], Verdict]:
    """A boolean kube-apiserver flag that defaults to true: only a false value turns `what` off.
    `decided_by`: a flag naming a configuration file that, when the flag is absent, decides instead."""

    def judge(component: Component) -> Verdict:
        flags = component.flags
        flag = flags.last(flag_name)  # pflag: the last occurrence wins
        if flag is None:
            if decided_by is not None and _set(flags.last(decided_by)):
                return None  # the file on the node (not read) decides
            besides = f" and no --{decided_by}" if decided_by is not None else ""
            return component.add_at, f"no --{flag_name}{besides}: it defaults to true, so {what}", 0
        if parse_bool(flag.value.strip()) is False:
            return None
        return _at(component, flag), f"{_named(component, flag)}: {what}", 0

    return judge


def _audit_logging(component: Component) -> Verdict:
    """The API server records audit events only with a policy (--audit-policy-file; without one it
    records nothing) and a backend to write them to (a log file or a webhook)."""
    flags = component.flags
    policy = flags.last("audit-policy-file")
    backends = [flags.last(name) for name in ("audit-log-path", "audit-webhook-config-file")]
    backend = next((flag for flag in backends if _set(flag)), None)
    if _set(policy) and backend is not None:
        return None
    if backend is not None:
        return (_at(component, policy), f"{_named(component, backend)} but no --audit-policy-file: without a "
                "policy the API server records no audit events", 0)
    empty_backend = next((flag for flag in backends if flag is not None), None)
    if policy is not None and _set(policy):
        return (_at(component, empty_backend), f"{_named(component, policy)} but no --audit-log-path or "
                "--audit-webhook-config-file: audit events are written nowhere", 0)
    return (_at(component, policy if policy is not None else empty_backend),
            "no --audit-policy-file and no --audit-log-path or --audit-webhook-config-file: audit logging is off, "
            "API requests leave no audit trail", 0)


def _kubelet_ca(component: Component) -> Verdict:
    flag = component.flags.last("kubelet-certificate-authority")
    if _set(flag):
        return None
    return (_at(component, flag), "no --kubelet-certificate-authority: the API server does not verify the kubelets' "
            "serving certificates, so its exec, logs and port-forward connections to nodes can be intercepted", 0)


def _etcd_auth(flag_name: str, what: str) -> Callable[[Component], Verdict]:
    env_name = "ETCD_" + flag_name.upper().replace("-", "_")

    def judge(component: Component) -> Verdict:
        flag = component.flags.last(flag_name)
        if flag is not None:
            value, path, said = flag.value, _at(component, flag), _named(component, flag)
        elif env_name in component.env:  # etcd reads ETCD_<FLAG> when the flag is not given
            value, path = component.env[env_name]
            said = f"environment {env_name}={value}"
        else:
            return component.add_at, f"no --{flag_name}: it defaults to false, so {what}", 0
        if parse_bool(value.strip()) is True:
            return None
        return path, f"{said}: {what}", 0

    return judge


FLAG_CHECKS: Mapping[str, FlagCheck] = {
    "authorization-always-allow": FlagCheck("kube-apiserver", _authorization),
    "insecure-port": FlagCheck("kube-apiserver", _insecure_port),
    "token-auth-file": FlagCheck("kube-apiserver", _token_file),
    "etcd-client-certificate": FlagCheck("kube-apiserver", _etcd_client_cert),
    "etcd-certificate-authority": FlagCheck("kube-apiserver", _etcd_ca),
    "encryption-provider-config": FlagCheck("kube-apiserver", _encryption),
    "node-restriction": FlagCheck("kube-apiserver", _node_restriction),
    "always-admit": FlagCheck("kube-apiserver", _always_admit),
    # kubeadm sets none of these four on the command lines it generates (kaudit/kubeadm.py APISERVER_DEFAULTS)
    "anonymous-auth": FlagCheck("kube-apiserver", _on_unless_false(
        "anonymous-auth", "any request without credentials is served as system:anonymous", "authentication-config")),
    "profiling": FlagCheck("kube-apiserver", _on_unless_false(
        "profiling", "/debug/pprof exposes the API server's internals and can load it on demand")),
    "audit-logging": FlagCheck("kube-apiserver", _audit_logging),
    "kubelet-certificate-authority": FlagCheck("kube-apiserver", _kubelet_ca),
    "etcd-client-cert-auth": FlagCheck("etcd", _etcd_auth(
        "client-cert-auth", "any client that reaches its client port reads and writes all cluster data without a certificate")),
    "etcd-peer-client-cert-auth": FlagCheck("etcd", _etcd_auth(
        "peer-client-cert-auth", "any host that reaches its peer port is accepted as an etcd peer without a certificate")),
}
MEMO_KEY = "control-plane-components"
COMPONENT_PARAMS = {"type": "object", "required": ["check"], "additionalProperties": False,
                    "properties": {"check": {"enum": sorted(FLAG_CHECKS),
                                            "description": "the control plane setting to check (one per rule)"}}}


def _component_flags(params: Mapping[str, Any], target: str) -> Check:
    which = FLAG_CHECKS[params["check"]]

    def check(subject: Target) -> Iterable[Hit]:
        hits = []
        found = subject.memo.get(MEMO_KEY)
        if found is None:  # many rules read the same command lines: parse them once per object
            found = subject.memo[MEMO_KEY] = components(subject.resource)
        for component in found:
            if component.program != which.program:
                continue
            verdict = which.judge(component)
            if verdict is None:
                continue
            path, detail, demote = verdict
            if params["check"] in ("etcd-client-certificate", "etcd-certificate-authority") and component.container is None:
                external = external_etcd_path(_config_body(subject))
                if external is not None and path == component.add_at:
                    path = component.place(external)  # kubeadm passes etcd.external's files on
            hits.append(Hit(path, {"component": f"{component.program} ({component.where})", "detail": detail},
                            demote=demote, container=component.container))
        return hits

    return check


def _config_body(subject: Target) -> Mapping[str, Any]:
    """The ClusterConfiguration itself, or the one embedded in the kubeadm-config ConfigMap."""
    if subject.resource.kind == "ConfigMap":
        embedded = embedded_config(subject.resource)
        return embedded.body if embedded is not None and embedded.body is not None else {}
    return subject.body


KUBELET_PARAMS = {"type": "object", "required": ["check"], "additionalProperties": False,
                  "properties": {"check": {"enum": sorted(KUBELET_SETTINGS),
                                            "description": "the kubelet setting to check (one per rule)"}}}


def _kubelet_config(params: Mapping[str, Any], target: str) -> Check:
    setting = KUBELET_SETTINGS[params["check"]]

    def check(subject: Target) -> Iterable[Hit]:
        resource = subject.resource
        group = group_of(resource.body)
        if resource.kind in ("InitConfiguration", "JoinConfiguration") and group == KUBEADM_GROUP:
            verdict = judge_kubelet_flag(setting, kubelet_flags(resource.body))
        elif resource.kind == "KubeletConfiguration" and group == "kubelet.config.k8s.io":
            siblings = _same_file_kubeadm(subject)
            nodes = [s for s in siblings if s.kind != "ClusterConfiguration"]
            if nodes and all(setting.flag in kubelet_flags(node.body) for node in nodes):
                return ()  # every node configuration here overrides the field with its flag: judged there
            verdict = judge_kubelet_config(setting, resource.body, bool(siblings), lambda path: path)
        elif resource.kind == "ConfigMap":
            embedded = embedded_config(resource)
            if embedded is None or embedded.body is None or embedded.kind != "KubeletConfiguration":
                return ()
            spot: FieldPath = ("data", embedded.key)
            # kubeadm wrote it, after defaulting (rotateCertificates forced to true)
            verdict = judge_kubelet_config(setting, embedded.body, True, lambda path: spot, f"data.{embedded.key}: ")
        else:
            return ()
        if verdict is None:
            return ()
        return (Hit(verdict.path, {"detail": verdict.detail}),)

    return check


def _same_file_kubeadm(subject: Target) -> list[Any]:
    """kubeadm configurations from the same file: kubeadm reads a KubeletConfiguration together with them."""
    file = subject.resource.origin.file
    if file is None or subject.lookup is None:
        return []
    return [other for kind in sorted(KUBEADM_KINDS) for other in subject.lookup.of_kind(kind)
            if other.origin.file == file and group_of(other.body) == KUBEADM_GROUP]


TEMPLATES = [
    Template("component-flags", "kube-apiserver and etcd flags, from static pods, kubeadm ClusterConfiguration "
                                "and the kubeadm-config ConfigMap.",
             frozenset({"object"}), COMPONENT_PARAMS, _component_flags),
    Template("kubelet-config", "Kubelet settings, from KubeletConfiguration, kubeadm kubeletExtraArgs and the "
                               "kubelet-config ConfigMap.",
             frozenset({"object"}), KUBELET_PARAMS, _kubelet_config),
]
