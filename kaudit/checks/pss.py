"""`pss`: the Pod Security Standards checks with the exact semantics of the Pod Security admission
controller (k8s.io/pod-security-admission/policy), every versioned variant of each check ID, v1.0 to
v1.37 (`VersionedCheck`: the controller's `Versions: []VersionedCheck{MinimumVersion, ...}`).
tests/data/pss_spec.md records the semantics and where each was read; pss_cases.yaml and
pss_version_cases.yaml the cases. Which version judges a pod: kaudit/pod_security.py.

Each check looks at the pod spec and every container (init and ephemeral ones included), and
returns one hit per offending field. A pod passes a level when no check of that level hits.
Where kaudit's own rules are stricter or differently shaped (run-as-root, seccomp-unconfined,
capabilities-not-dropped), these checks stay separate so `--framework pss-*` answers exactly
what admission would decide.
"""
from __future__ import annotations


from typing import Any, Callable, Iterable, Mapping, Optional

from kaudit import pod_security
from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.model import FieldPath
from kaudit.pod_security import NEWEST, Choice, Version
from kaudit.value import replace, value
from kaudit.workloads import Container, PodSpec, containers, mapping, sequence


class _Strings(frozenset):  # type: ignore[type-arg]
    """An allowed set of strings: anything else (a number, a list or map where a string belongs) is
    not a member, rather than an unhashable-type crash. The API server rejects such values; for the
    policy they are simply not allowed."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and frozenset.__contains__(self, item)


BASELINE_CAPABILITIES = _Strings({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
# The safe sysctls, grown by policy version (check_sysctls.go: sysctlsAllowedV1Dot0 ... V1Dot37)
SAFE_SYSCTLS_1_0 = _Strings({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
})
SAFE_SYSCTLS_1_27 = _Strings(SAFE_SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"})
SAFE_SYSCTLS_1_29 = _Strings(SAFE_SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
SAFE_SYSCTLS_1_32 = _Strings(SAFE_SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})
SAFE_SYSCTLS = _Strings(SAFE_SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})
SELINUX_TYPES_1_0 = _Strings({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES = _Strings(SELINUX_TYPES_1_0 | {"container_engine_t"})  # since v1.31
RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret",
})
# Every other volume source the API knows. A volume that sets no source at all is not one of them: the API
# server defaults it to emptyDir before admission sees it, so admission of such a manifest allows it.
OTHER_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)
SECCOMP_ALLOWED = _Strings({"RuntimeDefault", "Localhost"})
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

PodCheck = Callable[[PodSpec, list[Container]], list[Hit]]


def _set(value: Any) -> bool:
    """A pointer field the API server would see as set (not omitted, not null)."""
    return value is not None


def _sc(container: Container) -> Mapping[str, Any]:
    return container.security_context


def _sc_path(container: Container, *rest: str | int) -> FieldPath:
    return container.path + ("securityContext",) + tuple(rest)


def _pod_sc_path(pod: PodSpec, *rest: str | int) -> FieldPath:
    return pod.path + ("securityContext",) + tuple(rest)


def host_process(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    if mapping(pod.security_context.get("windowsOptions")).get("hostProcess") is True:
        hits.append(Hit(_pod_sc_path(pod, "windowsOptions", "hostProcess"), {"detail": "hostProcess: true"}))
    for c in all_containers:
        if mapping(_sc(c).get("windowsOptions")).get("hostProcess") is True:
            hits.append(Hit(_sc_path(c, "windowsOptions", "hostProcess"), {"detail": f'container "{c.name}" hostProcess: true'}))
    return hits


def host_namespaces(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    return [Hit(pod.path + (field,), {"detail": f"{field}: true"})
            for field in ("hostNetwork", "hostPID", "hostIPC") if pod.spec.get(field) is True]


def privileged(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    return [Hit(_sc_path(c, "privileged"), {"detail": f'container "{c.name}" privileged: true'})
            for c in all_containers if _sc(c).get("privileged") is True]


def capabilities_baseline(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    for c in all_containers:
        for index, capability in enumerate(sequence(mapping(_sc(c).get("capabilities")).get("add"))):
            if capability not in BASELINE_CAPABILITIES:
                hits.append(Hit(_sc_path(c, "capabilities", "add", index),
                                {"detail": f'container "{c.name}" adds {capability}'}))
    return hits


def host_path_volumes(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    return [Hit(pod.path + ("volumes", i, "hostPath"), {"detail": f'volume "{mapping(v).get("name")}" is a hostPath'})
            for i, v in enumerate(sequence(pod.spec.get("volumes"))) if _set(mapping(v).get("hostPath"))]


def host_ports(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    # The API server defaults a host-network pod's unset hostPorts to their containerPorts
    # (SetDefaults_Pod) before admission judges it: a manifest and its pods on a cluster say the same.
    host_network = pod.spec.get("hostNetwork") is True
    for c in all_containers:
        for index, port in enumerate(sequence(c.body.get("ports"))):
            host_port = mapping(port).get("hostPort")
            defaulted = host_network and not host_port and c.kind != "ephemeralContainer"
            if defaulted:
                host_port = mapping(port).get("containerPort")
            if _set(host_port) and host_port != 0:
                how = " (hostNetwork: the containerPort is the node's)" if defaulted else ""
                hits.append(Hit(c.path + ("ports", index, "hostPort"),
                                {"detail": f'container "{c.name}" hostPort {host_port}{how}'}))
    return hits


def apparmor(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []

    def bad_profile(profile: Any) -> bool:
        kind = mapping(profile).get("type")
        return _set(profile) and kind not in ("RuntimeDefault", "Localhost")

    if bad_profile(pod.security_context.get("appArmorProfile")):
        hits.append(Hit(_pod_sc_path(pod, "appArmorProfile", "type"), {"detail": "pod appArmorProfile is not RuntimeDefault or Localhost"}))
    for c in all_containers:
        if bad_profile(_sc(c).get("appArmorProfile")):
            hits.append(Hit(_sc_path(c, "appArmorProfile", "type"),
                            {"detail": f'container "{c.name}" appArmorProfile is not RuntimeDefault or Localhost'}))
    by_name = {c.name: c for c in all_containers}
    pod_profile = pod.security_context.get("appArmorProfile")
    for key, value in mapping(pod.metadata.get("annotations")).items():
        if isinstance(key, str) and key.startswith(APPARMOR_ANNOTATION_PREFIX):
            if not (value == "runtime/default" or (isinstance(value, str) and value.startswith("localhost/")) or value == ""):
                detail = {"detail": f"annotation {key}={value}"}
                container = by_name.get(key[len(APPARMOR_ANNOTATION_PREFIX):])
                field = apparmor_field(value)
                if container is None or field is None or pod.is_windows:
                    hits.append(Hit(pod.metadata_path + ("annotations", key), detail))
                    continue
                # Since v1.30 the API server keeps the annotation and the container's field in step
                # (applyAppArmorVersionSkew): one fact, reported at the field whichever one says it.
                decided_by = _sc(container).get("appArmorProfile") or pod_profile
                if decided_by is None:
                    hits.append(Hit(_sc_path(container, "appArmorProfile", "type"), detail))
                elif mapping(decided_by) != field:
                    hits.append(Hit(pod.metadata_path + ("annotations", key), detail))  # they disagree: both count
    return hits


def apparmor_field(annotation: Any) -> Optional[dict[str, str]]:
    """The appArmorProfile field an AppArmor annotation value stands for (podutil.ApparmorFieldForAnnotation),
    or None for a value the API server does not copy into the field."""
    if annotation == "runtime/default":
        return {"type": "RuntimeDefault"}
    if annotation == "unconfined":
        return {"type": "Unconfined"}
    if isinstance(annotation, str) and annotation.startswith("localhost/") and annotation != "localhost/":
        return {"type": "Localhost", "localhostProfile": annotation[len("localhost/"):]}
    return None


def _selinux(allowed_types: frozenset[str]) -> PodCheck:
    def check(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
        return selinux(pod, all_containers, allowed_types)

    return check


def selinux(pod: PodSpec, all_containers: list[Container], allowed_types: frozenset[str] = SELINUX_TYPES) -> list[Hit]:
    hits = []

    def check(options: Any, path: FieldPath, who: str) -> None:
        options = mapping(options)
        if options.get("type", "") not in allowed_types and _set(options.get("type")):
            hits.append(Hit(path + ("type",), {"detail": f"{who} seLinuxOptions.type {options.get('type')}"}))
        for field in ("user", "role"):
            if options.get(field) not in (None, ""):
                hits.append(Hit(path + (field,), {"detail": f"{who} seLinuxOptions.{field} {options.get(field)}"}))

    check(pod.security_context.get("seLinuxOptions"), _pod_sc_path(pod, "seLinuxOptions"), "pod")
    for c in all_containers:
        check(_sc(c).get("seLinuxOptions"), _sc_path(c, "seLinuxOptions"), f'container "{c.name}"')
    return hits


def seccomp_annotations(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    """Policy before v1.19: only the alpha seccomp annotations count, the fields do not
    (seccompProfileBaseline_1_0). A container annotation counts for a container of that name only."""
    annotations = mapping(pod.metadata.get("annotations"))

    def allowed(value: Any) -> bool:
        return value in ("runtime/default", "docker/default") or (isinstance(value, str) and value.startswith("localhost/"))

    names = [c.body.get("name") for c in all_containers]  # as Go has c.Name: "" when unset
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + (n if isinstance(n, str) else "")
                                       for n in names]
    return [Hit(pod.metadata_path + ("annotations", key), {"detail": f"annotation {key}={annotations[key]}"})
            for key in dict.fromkeys(keys) if key in annotations and not allowed(annotations[key])]


def proc_mount(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    return [Hit(_sc_path(c, "procMount"), {"detail": f'container "{c.name}" procMount {_sc(c)["procMount"]}'})
            for c in all_containers if _set(_sc(c).get("procMount")) and _sc(c).get("procMount") != "Default"]


def seccomp_baseline(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    """A profile that is set must be RuntimeDefault or Localhost; unset passes (unlike restricted)."""
    hits = []
    profile = pod.security_context.get("seccompProfile")
    if _set(profile) and mapping(profile).get("type") not in SECCOMP_ALLOWED:
        hits.append(Hit(_pod_sc_path(pod, "seccompProfile", "type"),
                        {"detail": f"pod seccompProfile {mapping(profile).get('type')}"}))
    for c in all_containers:
        profile = _sc(c).get("seccompProfile")
        if _set(profile) and mapping(profile).get("type") not in SECCOMP_ALLOWED:
            hits.append(Hit(_sc_path(c, "seccompProfile", "type"),
                            {"detail": f'container "{c.name}" seccompProfile {mapping(profile).get("type")}'}))
    return hits


def _sysctls(allowed: frozenset[str]) -> PodCheck:
    def check(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
        return sysctls(pod, all_containers, allowed)

    return check


def sysctls(pod: PodSpec, all_containers: list[Container], allowed: frozenset[str] = SAFE_SYSCTLS) -> list[Hit]:
    return [Hit(_pod_sc_path(pod, "sysctls", i, "name"), {"detail": f"sysctl {mapping(s).get('name')}"})
            for i, s in enumerate(sequence(pod.security_context.get("sysctls")))
            if mapping(s).get("name") not in allowed]


def host_probes(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    for c in all_containers:
        handlers: list[tuple[FieldPath, Any]] = [
            ((probe,), c.body.get(probe)) for probe in ("livenessProbe", "readinessProbe", "startupProbe")]
        lifecycle = mapping(c.body.get("lifecycle"))
        handlers += [(("lifecycle", hook), lifecycle.get(hook)) for hook in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = mapping(mapping(handler).get(action)).get("host")
                if host not in (None, ""):
                    hits.append(Hit(c.path + where + (action, "host"),
                                    {"detail": f'container "{c.name}" {".".join(map(str, where))} {action}.host {host}'}))
    return hits


def restricted_volumes(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
        volume = mapping(volume)
        for source in OTHER_VOLUME_SOURCES:
            if _set(volume.get(source)):
                hits.append(Hit(pod.path + ("volumes", index, source),
                                {"detail": f'volume "{volume.get("name")}" uses {source}'}))
    return hits


def allow_privilege_escalation(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    return [Hit(_sc_path(c, "allowPrivilegeEscalation"),
                {"detail": f'container "{c.name}" allowPrivilegeEscalation is not false'})
            for c in all_containers if _sc(c).get("allowPrivilegeEscalation") is not False]


def _user_namespaced(pod: PodSpec) -> bool:
    """`hostUsers: false`: UID 0 in the pod is not UID 0 on the node (relaxed since policy v1.35)."""
    return pod.spec.get("hostUsers") is False


def _relaxed_for_user_namespaces(check: PodCheck) -> PodCheck:
    """The v1.35 variants of procMount, runAsNonRoot and runAsUser: a `hostUsers: false` pod passes."""
    def relaxed(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
        return [] if _user_namespaced(pod) else check(pod, all_containers)

    return relaxed


def _not_for_windows(check: PodCheck) -> PodCheck:
    """The v1.25 variants of allowPrivilegeEscalation, seccompProfile_restricted, capabilities_restricted."""
    def exempting(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
        return [] if pod.is_windows else check(pod, all_containers)

    return exempting


def run_as_non_root(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    pod_value = pod.security_context.get("runAsNonRoot")
    if pod_value is False:
        hits.append(Hit(_pod_sc_path(pod, "runAsNonRoot"), {"detail": "pod runAsNonRoot: false"}))
    for c in all_containers:
        value = _sc(c).get("runAsNonRoot")
        if value is True:
            continue
        if value is False:
            hits.append(Hit(_sc_path(c, "runAsNonRoot"), {"detail": f'container "{c.name}" runAsNonRoot: false'}))
        elif value is not None:  # "true" quoted is text, which the API server refuses: never counts as true
            hits.append(Hit(_sc_path(c, "runAsNonRoot"),
                            {"detail": f'container "{c.name}" runAsNonRoot: {value!r} is not a boolean'}))
        elif pod_value is not True:
            hits.append(Hit(_sc_path(c, "runAsNonRoot"),
                            {"detail": f'container "{c.name}" does not set runAsNonRoot: true, nor does the pod'}))
    return hits


def run_as_user(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    if pod.security_context.get("runAsUser") == 0:
        hits.append(Hit(_pod_sc_path(pod, "runAsUser"), {"detail": "pod runAsUser: 0"}))
    for c in all_containers:
        if _sc(c).get("runAsUser") == 0:
            hits.append(Hit(_sc_path(c, "runAsUser"), {"detail": f'container "{c.name}" runAsUser: 0'}))
    return hits


def seccomp_restricted(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    pod_profile = pod.security_context.get("seccompProfile")
    pod_type = mapping(pod_profile).get("type")
    pod_valid = _set(pod_profile) and pod_type in SECCOMP_ALLOWED
    if _set(pod_profile) and not pod_valid:
        hits.append(Hit(_pod_sc_path(pod, "seccompProfile", "type"), {"detail": f"pod seccompProfile {pod_type}"}))
    for c in all_containers:
        profile = _sc(c).get("seccompProfile")
        kind = mapping(profile).get("type")
        if _set(profile) and kind not in SECCOMP_ALLOWED:
            hits.append(Hit(_sc_path(c, "seccompProfile", "type"), {"detail": f'container "{c.name}" seccompProfile {kind}'}))
        elif not _set(profile) and not pod_valid:
            hits.append(Hit(_sc_path(c, "seccompProfile", "type"),
                            {"detail": f'container "{c.name}" sets no seccompProfile, nor does the pod'}))
    return hits


def capabilities_restricted(pod: PodSpec, all_containers: list[Container]) -> list[Hit]:
    hits = []
    for c in all_containers:
        caps = mapping(_sc(c).get("capabilities"))
        if "ALL" not in sequence(caps.get("drop")):
            hits.append(Hit(_sc_path(c, "capabilities", "drop"), {"detail": f'container "{c.name}" does not drop ALL'}))
        for index, capability in enumerate(sequence(caps.get("add"))):
            if capability != "NET_BIND_SERVICE":
                hits.append(Hit(_sc_path(c, "capabilities", "add", index),
                                {"detail": f'container "{c.name}" adds {capability}'}))
    return hits


@value
class VersionedCheck:
    """One admission check: its level, its variants by MinimumVersion (ascending), and the baseline
    check it overrides at restricted (OverrideCheckIDs; every variant of ours names the same one)."""

    level: str
    variants: tuple[tuple[Version, PodCheck], ...]
    overrides: Optional[str] = None

    def at(self, version: Version) -> Optional[PodCheck]:
        """The variant with the highest MinimumVersion <= version; None: the check does not run."""
        chosen = None
        for minimum, check in self.variants:
            if minimum <= version:
                chosen = check
        return chosen

    @property
    def since(self) -> Version:
        return self.variants[0][0]


def _v(minor: int) -> Version:
    return (1, minor)


# check id (the admission controller's) -> its versions (policy/check_*.go)
CHECKS: dict[str, VersionedCheck] = {
    "windowsHostProcess": VersionedCheck("baseline", ((_v(0), host_process),)),
    "hostNamespaces": VersionedCheck("baseline", ((_v(0), host_namespaces),)),
    "privileged": VersionedCheck("baseline", ((_v(0), privileged),)),
    "capabilities_baseline": VersionedCheck("baseline", ((_v(0), capabilities_baseline),)),
    "hostPathVolumes": VersionedCheck("baseline", ((_v(0), host_path_volumes),)),
    "hostPorts": VersionedCheck("baseline", ((_v(0), host_ports),)),
    "hostProbesAndHostLifecycle": VersionedCheck("baseline", ((_v(34), host_probes),)),
    "appArmorProfile": VersionedCheck("baseline", ((_v(0), apparmor),)),
    "seLinuxOptions": VersionedCheck("baseline", ((_v(0), _selinux(SELINUX_TYPES_1_0)), (_v(31), _selinux(SELINUX_TYPES)))),
    "procMount": VersionedCheck("baseline", ((_v(0), proc_mount), (_v(35), _relaxed_for_user_namespaces(proc_mount)))),
    "seccompProfile_baseline": VersionedCheck("baseline", ((_v(0), seccomp_annotations), (_v(19), seccomp_baseline))),
    "sysctls": VersionedCheck("baseline", (
        (_v(0), _sysctls(SAFE_SYSCTLS_1_0)), (_v(27), _sysctls(SAFE_SYSCTLS_1_27)), (_v(29), _sysctls(SAFE_SYSCTLS_1_29)),
        (_v(32), _sysctls(SAFE_SYSCTLS_1_32)), (_v(37), _sysctls(SAFE_SYSCTLS)))),
    "restrictedVolumes": VersionedCheck("restricted", ((_v(0), restricted_volumes),), overrides="hostPathVolumes"),
    "allowPrivilegeEscalation": VersionedCheck("restricted", (
        (_v(8), allow_privilege_escalation), (_v(25), _not_for_windows(allow_privilege_escalation)))),
    "runAsNonRoot": VersionedCheck("restricted", (
        (_v(0), run_as_non_root), (_v(35), _relaxed_for_user_namespaces(run_as_non_root)))),
    "runAsUser": VersionedCheck("restricted", ((_v(23), run_as_user), (_v(35), _relaxed_for_user_namespaces(run_as_user)))),
    "seccompProfile_restricted": VersionedCheck("restricted", (
        (_v(19), seccomp_restricted), (_v(25), _not_for_windows(seccomp_restricted))), overrides="seccompProfile_baseline"),
    "capabilities_restricted": VersionedCheck("restricted", (
        (_v(22), capabilities_restricted), (_v(25), _not_for_windows(capabilities_restricted))),
        overrides="capabilities_baseline"),
    "procMount_restricted": VersionedCheck("restricted", ((_v(35), proc_mount),), overrides="procMount"),
}

PARAMS_SCHEMA = {
    "type": "object",
    "required": ["check"],
    "additionalProperties": False,
    "properties": {"check": {"enum": sorted(CHECKS),
                             "description": "the Pod Security admission check (k8s.io/pod-security-admission) to run"}},
}


def evaluate(check_id: str, pod: PodSpec, pod_containers: Optional[list[Container]] = None,
             version: Version = NEWEST) -> list[Hit]:
    """What the admission controller's check `check_id` objects to in this pod spec at policy `version`.

    A restricted check that overrides a baseline one but does not exist yet at `version` (seccomp
    before v1.19, capabilities before v1.22, procMount before v1.35) overrides nothing there, so
    the restricted level runs that baseline check: its rule (the restricted control) answers with it."""
    versioned = CHECKS[check_id]
    function = versioned.at(version)
    if function is None:
        return evaluate(versioned.overrides, pod, pod_containers, version) if versioned.overrides else []
    return function(pod, containers(pod) if pod_containers is None else pod_containers)


def _bind(params: Mapping[str, Any], target: str) -> Check:
    check_id = params["check"]

    def check(subject: Target) -> Iterable[Hit]:
        assert subject.pod is not None
        versions = getattr(subject.lookup, "pod_security", None)
        choice = versions.for_namespace(subject.resource.namespace) if versions is not None else Choice(NEWEST)
        hits = evaluate(check_id, subject.pod, list(subject.containers), choice.version)
        if choice.note:  # said in the finding (its message): the fingerprint stays rule+identity+path+fact
            suffix = f" (Pod Security {pod_security.text(choice.version)}, {choice.note})"
            hits = [replace(hit, values={**hit.values, "detail": f"{hit.values.get('detail', '')}{suffix}"})
                    for hit in hits]
        return with_containers(hits, subject.containers)

    return check


def with_containers(hits: Iterable[Hit], pod_containers: Iterable[Container]) -> list[Hit]:
    """Each hit under a container's path names that container (the JSON `container` field): the
    checks judge the whole pod, but most of what they find is in one container."""
    # By path, looked up by each prefix length: one pass, however many containers (10,000 happen).
    owners = {tuple(c.path): c.name for c in pod_containers}
    lengths = sorted({len(path) for path in owners})
    named = []
    for hit in hits:
        owner = next((owners[hit.path[:n]] for n in lengths if hit.path[:n] in owners), None)
        named.append(replace(hit, container=owner) if owner is not None and hit.container is None else hit)
    return named


TEMPLATES = [
    Template("pss", "One Pod Security Standards check with the admission controller's exact semantics.",
             frozenset({"pod"}), PARAMS_SCHEMA, _bind)
]
