"""Issue 14's workload themes beyond their inline fixtures: root groups, naked pods and static pods,
the default service account, system namespaces, sensitive host paths (spellings, parents, trees,
read-only grading), priority classes and node selection (off until configured)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import pytest

from kaudit.checks.host_path import access, exposes, normalize
from kaudit.checks.scheduling import selects_nodes
from kaudit.checks.service_account import service_account_field
from kaudit.config import apply_rule_settings, load_config
from kaudit.engine import run
from kaudit.errors import KauditError
from kaudit.inventory import Inventory
from kaudit.model import Finding, Origin, Resource, ResourceRef, Severity, format_path
from kaudit.relations import Relations, join
from kaudit.ruleset import Rule, load_builtin_rules
from kaudit.static_pods import in_static_pod_dir, is_static_pod, static_pod_dirs
from kaudit.value import replace
from kaudit.workloads import Container

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}
NODE_OWNER = {"apiVersion": "v1", "kind": "Node", "name": "cp1", "uid": "9c8b7a6d", "controller": True}


def resource(body: Mapping[str, Any], file: Optional[str] = "case.yaml") -> Resource:
    meta = body.get("metadata") or {}
    ref = ResourceRef(str(body.get("apiVersion")), str(body["kind"]), str(meta.get("name", "x")), meta.get("namespace"))
    return Resource(ref, body, Origin(file=file, line=1))


def findings(rule: str | Rule, *bodies: Mapping[str, Any], file: Optional[str] = "case.yaml",
             extra: tuple[Resource, ...] = ()) -> list[Finding]:
    chosen = RULES[rule] if isinstance(rule, str) else rule
    result = run([chosen], Inventory([resource(b, file) for b in bodies] + list(extra)))
    assert not result.errors, result.errors
    return [f for f in result.findings if f.rule == chosen.id]


def paths(found: list[Finding]) -> list[str]:
    return [format_path(f.path) for f in found]


def pod(spec: Mapping[str, Any], namespace: Optional[str] = "shop", **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", **metadata}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "app:1"}], **spec}}


def cronjob(spec: Mapping[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": namespace},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "app", "image": "app:1"}], **spec}}}}}}


def deployment(spec: Mapping[str, Any], kind: str = "Deployment", api: str = "apps/v1",
               namespace: str = "shop") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "d", "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}], **spec}}}}


# --- root group ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, fires", [(0, True), (0.0, True), (False, False), ("0", False), (None, False),
                                          (1, False), (-0, True), (10 ** 30, False)])
def test_run_as_root_group_values(value: Any, fires: bool) -> None:
    assert bool(findings("run-as-root-group", pod({"securityContext": {"runAsGroup": value}}))) is fires


def test_run_as_root_group_points_at_the_field_used_for_every_container_kind() -> None:
    body = pod({"securityContext": {"runAsGroup": 0},
                "initContainers": [{"name": "init", "image": "i:1", "securityContext": {"runAsGroup": 5}}],
                "ephemeralContainers": [{"name": "debug", "image": "d:1"}]})
    found = findings("run-as-root-group", body)
    assert sorted((f.container, format_path(f.path)) for f in found) == [
        ("app", "spec.securityContext.runAsGroup"), ("debug", "spec.securityContext.runAsGroup")]
    in_cronjob = findings("run-as-root-group", cronjob({"containers": [
        {"name": "app", "image": "app:1", "securityContext": {"runAsGroup": 0}}]}))
    assert paths(in_cronjob) == ["spec.jobTemplate.spec.template.spec.containers[0].securityContext.runAsGroup"]


def test_run_as_root_group_survives_odd_shapes() -> None:
    for context in (None, [], "root", 0, {"runAsGroup": [0]}, {"runAsGroup": {"id": 0}}):
        assert findings("run-as-root-group", pod({"securityContext": context})) == []


def test_root_supplemental_group_each_zero_at_its_index() -> None:
    body = pod({"securityContext": {"fsGroup": 0, "supplementalGroups": [0, 7, 0, True, None, "0"]}})
    found = findings("root-supplemental-group", body)
    assert paths(found) == ["spec.securityContext.fsGroup", "spec.securityContext.supplementalGroups[0]",
                            "spec.securityContext.supplementalGroups[2]"]
    assert "supplementalGroups[2] to 0" in found[2].message


@pytest.mark.parametrize("context", [None, [], "x", {"supplementalGroups": 0}, {"supplementalGroups": {"a": 0}},
                                     {"supplementalGroups": None}, {"fsGroup": [0]}])
def test_root_supplemental_group_survives_odd_shapes(context: Any) -> None:
    assert findings("root-supplemental-group", pod({"securityContext": context})) == []


def test_root_group_rules_skip_windows_pods_only() -> None:
    context = {"securityContext": {"runAsGroup": 0, "fsGroup": 0}}
    for rule in ("run-as-root-group", "root-supplemental-group"):
        assert findings(rule, pod({**context, "os": {"name": "windows"}})) == []
        assert findings(rule, pod({**context, "os": {"name": "linux"}}))


# --- static pods and naked pods ---------------------------------------------------------------------

@pytest.mark.parametrize("file, static", [
    ("/etc/kubernetes/manifests/kube-apiserver.yaml", True),
    ("nodes/cp1/etc/kubernetes/manifests/etcd.yaml", True),
    ("etc/kubernetes/manifests/etcd.yaml", True),
    ("nodes\\cp1\\etc\\kubernetes\\manifests\\etcd.yaml", True),
    ("nodes/cp1/etc/kubernetes/manifests/../manifests/etcd.yaml", True),
    ("k3s/var/lib/rancher/k3s/agent/pod-manifests/x.yaml", True),
    ("etc/kubernetes/manifests/sub/etcd.yaml", False),  # the kubelet does not descend into folders
    ("etc/kubernetes/manifests-backup/etcd.yaml", False),
    ("my-etc/kubernetes/manifests/etcd.yaml", False),
    ("kubernetes/manifests/etcd.yaml", False),
    ("etcd.yaml", False),
    ("<stdin>", False),
    (None, False),
])
def test_static_pod_directory(file: Optional[str], static: bool) -> None:
    assert in_static_pod_dir(file, static_pod_dirs()) is static


def test_static_pod_directories_from_params_and_kubelet_configuration() -> None:
    body = pod({})
    assert not is_static_pod(resource(body, "repo/opt/static/a.yaml"))
    assert is_static_pod(resource(body, "repo/opt/static/a.yaml"), extra_dirs=["/opt/static/"])
    config = resource({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                       "staticPodPath": "/srv/pods"}, "kubelet.yaml")
    odd = resource({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                    "staticPodPath": ["/x"]}, "odd.yaml")
    inventory = Inventory([config, odd])
    assert is_static_pod(resource(body, "node/srv/pods/a.yaml"), lookup=inventory)
    assert not is_static_pod(resource(body, "node/srv/other/a.yaml"), lookup=inventory)
    # the same object kind from another API group configures no kubelet
    fake = resource({"apiVersion": "example.com/v1", "kind": "KubeletConfiguration", "staticPodPath": "/srv/x"})
    assert not is_static_pod(resource(body, "node/srv/x/a.yaml"), lookup=Inventory([fake]))


def test_only_a_node_controller_makes_a_mirror_pod() -> None:
    assert is_static_pod(resource(pod({}, ownerReferences=[NODE_OWNER])))
    for owner in ({**NODE_OWNER, "controller": False}, {**NODE_OWNER, "apiVersion": "example.com/v1"},
                  {**NODE_OWNER, "kind": "ReplicaSet"}, {**NODE_OWNER, "controller": "true"}):
        assert not is_static_pod(resource(pod({}, ownerReferences=[owner]))), owner
    # a Deployment is never a static pod, wherever its file is
    assert not is_static_pod(resource(deployment({}), "etc/kubernetes/manifests/d.yaml"))


def test_naked_pod_in_a_static_pod_directory_is_not_reported() -> None:
    assert paths(findings("naked-pod", pod({}), file="deploy/debug.yaml")) == ["kind"]
    assert findings("naked-pod", pod({}), file="nodes/cp1/etc/kubernetes/manifests/etcd.yaml") == []
    configured = RULES["naked-pod"].with_params({"static-pod-paths": ["/opt/pods"]})
    assert findings(configured, pod({}), file="node/opt/pods/a.yaml") == []


@pytest.mark.parametrize("owners", [None, "x", [None, 3, "ref"], [{"controller": True}], {"controller": True}])
def test_naked_pod_survives_odd_owner_references(owners: Any) -> None:
    body = pod({}, ownerReferences=owners)
    found = findings("naked-pod", body)
    # a controller reference without kind or name still names a controller (the API refuses it anyway)
    assert bool(found) is (owners != [{"controller": True}])


def test_naked_pod_judges_only_core_pods() -> None:
    custom = {"apiVersion": "example.com/v1", "kind": "Pod", "metadata": {"name": "p"},
              "spec": {"containers": [{"name": "a", "image": "a:1"}]}}
    assert findings("naked-pod", custom) == []


# --- default service account ------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ({}, ("default", None)),
    ({"serviceAccountName": "default"}, ("default", "serviceAccountName")),
    ({"serviceAccount": "default"}, ("default", "serviceAccount")),
    ({"serviceAccountName": "", "serviceAccount": "default"}, ("default", "serviceAccount")),
    ({"serviceAccountName": None, "serviceAccount": "web"}, ("web", "serviceAccount")),
    ({"serviceAccountName": "web", "serviceAccount": "default"}, ("web", "serviceAccountName")),
    ({"serviceAccountName": 0}, (None, "serviceAccountName")),
    ({"serviceAccountName": ["default"]}, (None, "serviceAccountName")),
])
def test_service_account_field(spec: Mapping[str, Any], expected: tuple[Optional[str], Optional[str]]) -> None:
    assert service_account_field(spec) == expected


def test_default_service_account_used_where_the_fix_goes() -> None:
    assert paths(findings("default-service-account-used", cronjob({}))) == [
        "spec.jobTemplate.spec.template.spec.serviceAccountName"]
    assert paths(findings("default-service-account-used", pod({"serviceAccount": "default"}))) == [
        "spec.serviceAccount"]
    assert findings("default-service-account-used", pod({"serviceAccountName": 7})) == []
    # a static pod in a repository runs as no service account
    assert findings("default-service-account-used", pod({}), file="cp/etc/kubernetes/manifests/etcd.yaml") == []
    # a Deployment's file location does not make it a static pod
    assert findings("default-service-account-used", deployment({}), file="cp/etc/kubernetes/manifests/d.yaml")


def test_default_service_account_used_is_its_own_finding_next_to_automount() -> None:
    rules = [RULES["default-service-account-used"], RULES["automount-service-account-token"]]
    result = run(rules, Inventory([resource(deployment({}))]))
    joined = join(result.findings, Relations.of(rules))
    assert sorted(f.rule for f in joined) == ["automount-service-account-token", "default-service-account-used"]
    assert all(not f.joined for f in joined)


# --- system namespaces ------------------------------------------------------------------------------

@pytest.mark.parametrize("namespace, fires", [
    ("kube-system", True), ("kube-public", True), ("kube-node-lease", True), ("Kube-System", False),
    ("kube-systems", False), ("default", False), (None, False)])
def test_workload_in_system_namespace(namespace: Optional[str], fires: bool) -> None:
    found = findings("workload-in-system-namespace", deployment({}, namespace=namespace or "x")
                     if namespace else pod({}, namespace=None))
    assert bool(found) is fires
    if fires:
        assert paths(found) == ["metadata.namespace"] and namespace in found[0].message


def test_system_namespace_platform_is_static_pods_only() -> None:
    mirror = pod({}, namespace="kube-system", ownerReferences=[NODE_OWNER])
    assert findings("workload-in-system-namespace", mirror) == []
    in_dir = pod({}, namespace="kube-system")
    assert findings("workload-in-system-namespace", in_dir, file="cp/etc/kubernetes/manifests/kube-scheduler.yaml") == []
    assert findings("workload-in-system-namespace", in_dir, file="apps/kube-scheduler.yaml")
    # a DaemonSet whose name, labels and priority class look like the platform's is still reported
    proxy = deployment({"priorityClassName": "system-node-critical"}, kind="DaemonSet", namespace="kube-system")
    proxy["metadata"]["labels"] = {"k8s-app": "kube-proxy", "addonmanager.kubernetes.io/mode": "Reconcile"}
    assert findings("workload-in-system-namespace", proxy)
    # a custom resource holding a pod template is a workload too
    rollout = deployment({}, kind="Rollout", api="argoproj.io/v1alpha1", namespace="kube-system")
    assert findings("workload-in-system-namespace", rollout)


def test_system_namespaces_are_a_param() -> None:
    rule = RULES["workload-in-system-namespace"].with_params({"namespaces": ["platform"]})
    assert findings(rule, deployment({}, namespace="platform"))
    assert findings(rule, deployment({}, namespace="kube-system")) == []


# --- sensitive host paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("/etc/", "/etc"), ("//etc", "/etc"), ("/etc/../etc", "/etc"), ("/etc/./", "/etc"), ("etc", "/etc"),
    (" /etc ", "/etc"), ("/../../etc", "/etc"), ("/var/run/docker.sock", "/run/docker.sock"), ("/", "/")])
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


@pytest.mark.parametrize("mounted, sensitive, expected", [
    ("/", "/etc", True), ("/etc", "/etc", True), ("/etc/ssl", "/etc", False), ("/et", "/etc", False),
    ("/etc/kubernetes", "/etc/kubernetes/pki/**", True), ("/etc/kubernetes/pki", "/etc/kubernetes/pki/**", True),
    ("/etc/kubernetes/pki/etcd/ca.key", "/etc/kubernetes/pki/**", True),
    ("/etc/kubernetes/pkix", "/etc/kubernetes/pki/**", False),
    ("/etc/kubernetes/admin.conf", "/etc/kubernetes/*.conf", True),
    ("/etc/kubernetes/admin.conf.bak", "/etc/kubernetes/*.conf", False),
    ("/etc/kubernetes/x/admin.conf", "/etc/kubernetes/*.conf", False),
    ("/etc/kubernetes", "/etc/kubernetes/*.conf", True),
    ("/run/user/1000", "/run/user/*/docker.sock", True),
    ("/?", "/etc", False), ("?", "/etc/kubernetes/pki/**", False),
])
def test_exposes(mounted: str, sensitive: str, expected: bool) -> None:
    assert exposes(normalize(mounted), sensitive) is expected


def container(*mounts: Any) -> Container:
    return Container({"name": "c", "volumeMounts": list(mounts)}, ("spec", "containers", 0), "c", "container")


@pytest.mark.parametrize("containers, mode", [
    ([container({"name": "v", "readOnly": True})], "read-only"),
    ([container({"name": "v", "readOnly": True}), container({"name": "v"})], "writable"),
    ([container({"name": "v", "readOnly": "true"})], "writable"),  # a string is no boolean
    ([container({"name": "other"})], "not mounted"),
    ([], "not mounted"),
    ([container(None, "x", 3, {"name": "v", "readOnly": True})], "read-only"),
])
def test_access(containers: list[Container], mode: str) -> None:
    assert access("v", containers) == mode
    assert access(None, containers) == "writable"


def host_path_pod(path: Any, read_only: Optional[bool] = None, kind: str = "containers") -> dict[str, Any]:
    mount: dict[str, Any] = {"name": "host", "mountPath": "/host"}
    if read_only is not None:
        mount["readOnly"] = read_only
    spec: dict[str, Any] = {"volumes": [{"name": "host", "hostPath": {"path": path}}]}
    spec[kind] = [{"name": kind, "image": "x:1", "volumeMounts": [mount]}]
    body = pod(spec)
    if kind != "containers":
        body["spec"]["containers"] = [{"name": "app", "image": "app:1"}]
    return body


def test_sensitive_host_path_grades_writable_and_read_only() -> None:
    [writable] = findings("sensitive-host-path", host_path_pod("/var/lib/kubelet"))
    [read_only] = findings("sensitive-host-path", host_path_pod("/var/lib/kubelet", read_only=True))
    assert writable.severity == Severity.CRITICAL and "(writable)" in writable.message
    assert read_only.severity == Severity.HIGH and "(read-only)" in read_only.message
    # an ephemeral or init container writing through it makes it writable
    for kind in ("initContainers", "ephemeralContainers"):
        [found] = findings("sensitive-host-path", host_path_pod("/var/lib/kubelet", kind=kind))
        assert found.severity == Severity.CRITICAL, kind
    # a config that grades the rule keeps the one-level difference
    lower = replace(RULES["sensitive-host-path"], severity=Severity.MEDIUM)
    [graded] = findings(lower, host_path_pod("/etc", read_only=True))
    assert graded.severity == Severity.LOW


def test_sensitive_host_path_message_lists_a_few_exposed_paths() -> None:
    [found] = findings("sensitive-host-path", host_path_pod("/"))
    assert "more" in found.message and found.message.count(",") <= 4
    [kubelet] = findings("sensitive-host-path", host_path_pod("/var/lib/kubelet/pods/"))
    assert kubelet.message.endswith("/var/lib/kubelet/pods") and "**" not in kubelet.message


@pytest.mark.parametrize("path", [None, 7, ["/etc"], {"p": "/etc"}, "", "C:\\Windows", "x" * 100_000])
def test_sensitive_host_path_survives_odd_paths(path: Any) -> None:
    found = findings("sensitive-host-path", host_path_pod(path))
    assert found == [] or path == ""  # "" is "/" after normalising: the node's root


def test_sensitive_host_path_joins_the_generic_finding_and_leads() -> None:
    rules = [RULES["sensitive-host-path"], RULES["host-path-volume"], RULES["container-runtime-socket"]]
    result = run(rules, Inventory([resource(host_path_pod("/etc", read_only=True))]))
    [one] = join(result.findings, Relations.of(rules))
    assert one.rule == "sensitive-host-path" and [j.rule for j in one.joined] == ["host-path-volume"]
    root = run(rules, Inventory([resource(host_path_pod("/"))]))
    [together] = join(root.findings, Relations.of(rules))
    assert {together.rule, *(j.rule for j in together.joined)} == {r.id for r in rules}


def test_sensitive_host_path_in_every_workload_kind() -> None:
    volume = {"volumes": [{"name": "h", "hostPath": {"path": "/etc/kubernetes/azure.json"}}]}
    assert paths(findings("sensitive-host-path", cronjob(volume))) == [
        "spec.jobTemplate.spec.template.spec.volumes[0].hostPath.path"]
    rollout = deployment(volume, kind="Rollout", api="argoproj.io/v1alpha1")
    [found] = findings("sensitive-host-path", rollout)
    assert found.severity == Severity.HIGH and "not mounted" in found.message


# --- scheduling -------------------------------------------------------------------------------------

def test_missing_priority_class_kinds() -> None:
    for kind, api in (("Deployment", "apps/v1"), ("StatefulSet", "apps/v1"), ("DaemonSet", "apps/v1"),
                      ("ReplicaSet", "apps/v1"), ("Rollout", "argoproj.io/v1alpha1"),
                      ("CloneSet", "apps.kruise.io/v1alpha1")):
        found = findings("missing-priority-class", deployment({}, kind=kind, api=api))
        assert paths(found) == ["spec.template.spec.priorityClassName"], kind
    for spec in ({"priorityClassName": "high"},):
        assert findings("missing-priority-class", deployment(spec)) == []
    for spec in ({"priorityClassName": 5}, {"priorityClassName": ["high"]}, {"priorityClassName": ""}):
        assert findings("missing-priority-class", deployment(spec)), spec
    assert findings("missing-priority-class", cronjob({})) == []
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}
    assert findings("missing-priority-class", job) == []


@pytest.mark.parametrize("spec, keys, selects", [
    ({}, None, False),
    ({"nodeName": "n1"}, None, True),
    ({"nodeName": ""}, None, False),
    ({"nodeSelector": {"pool": "a"}}, None, True),
    ({"nodeSelector": {"pool": "a"}}, frozenset({"pool"}), True),
    ({"nodeSelector": {"kubernetes.io/os": "linux"}}, frozenset({"pool"}), False),
    ({"nodeSelector": None}, None, False),
    ({"nodeSelector": ["pool"]}, None, False),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]}}}}, None, True),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}]}}}}, None, False),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {}]}}}}, None, False),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}, None, True),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": "pool"}, None]}}}}, None, False),
    ({"affinity": "yes"}, None, False),
])
def test_selects_nodes(spec: Mapping[str, Any], keys: Optional[frozenset[str]], selects: bool) -> None:
    assert selects_nodes(spec, keys) is selects


def test_missing_node_selection_is_silent_by_default() -> None:
    rule = RULES["missing-node-selection"]
    assert findings(rule, deployment({})) == [] and findings(rule, pod({})) == []
    required = rule.with_params({"required": True, "namespaces": ["tenant-*"]})
    assert findings(required, deployment({}, namespace="tenant-a"))
    assert findings(required, deployment({}, namespace="shop")) == []
    assert findings(required, pod({}, namespace=None)) == []  # no namespace: not in the listed ones
    everywhere = rule.with_params({"required": True})
    assert paths(findings(everywhere, pod({}, namespace=None))) == ["spec.nodeSelector"]
    daemonset = deployment({}, kind="DaemonSet")
    assert findings(everywhere, daemonset) == []


def test_missing_node_selection_is_turned_on_by_config(write: Callable[..., Path]) -> None:
    config_file = write(".kaudit.yaml", """
        rules:
          missing-node-selection:
            params: {required: true, label-keys: [pool]}
          naked-pod:
            params: {static-pod-paths: [/opt/pods]}
        """)
    config = load_config(str(config_file))
    rules = {r.id: r for r in apply_rule_settings(list(RULES.values()), config)}
    [found] = findings(rules["missing-node-selection"], deployment({"nodeSelector": {"zone": "a"}}))
    assert "a node label among pool" in found.message
    assert findings(rules["naked-pod"], pod({}), file="node/opt/pods/p.yaml") == []
    bad = write("bad.yaml", """
        rules:
          missing-node-selection:
            params: {required: "yes"}
        """)
    with pytest.raises(KauditError, match="required"):
        apply_rule_settings(list(RULES.values()), load_config(str(bad)))


def test_rules_never_change_their_input() -> None:
    bodies = [host_path_pod("/etc"), pod({"securityContext": {"fsGroup": 0}}), cronjob({}),
              deployment({}, namespace="kube-system")]
    before = copy.deepcopy(bodies)
    ids = ["run-as-root-group", "root-supplemental-group", "naked-pod", "default-service-account-used",
           "workload-in-system-namespace", "sensitive-host-path", "missing-priority-class", "missing-node-selection"]
    result = run([RULES[i] for i in ids], Inventory([resource(b) for b in bodies]))
    assert not result.errors and bodies == before
