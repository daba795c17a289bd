"""Control-plane and kubelet configuration: flag parsing, kubeadm's configuration (files and the
ConfigMaps it keeps), effective values, and the rules that judge them, from files and a cluster."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from kaudit import frameworks
from kaudit.checks import TEMPLATES
from kaudit.checks.base import Target
from kaudit.flags import MAX_WORDS, container_flags, map_flags, parse_words, program_of
from kaudit.inventory import Inventory
from kaudit.kubeadm import MAX_EMBEDDED, cluster_configuration, components, embedded_config
from kaudit.model import Origin, Resource, ResourceRef, Severity
from kaudit.scan import ScanRequest, scan_cluster, scan_manifests
from kaudit.sources.classify import ObjectDoc, classify_document, cluster_scoped
from kaudit.sources.cluster import ClusterRequest
from kaudit.model import InputError, Skipped
from tests.k8s_api import FakeApiServer


def words(*items: Any) -> list[tuple[Any, tuple[str, int]]]:
    return [(item, ("command", index + 1)) for index, item in enumerate(items)]


# ---- flags ----

def test_both_forms_and_the_last_value_wins() -> None:
    flags = parse_words("kube-apiserver", words("--profiling=false", "--secure-port", "6443", "--profiling=true"))
    assert flags.value("secure-port") == "6443" and flags.last("secure-port").path == ("command", 2)  # type: ignore[union-attr]
    assert flags.value("profiling") == "true" and len(flags.occurrences["profiling"]) == 2


def test_list_flags_add_up_over_occurrences() -> None:
    flags = parse_words("kube-apiserver", words("--enable-admission-plugins=PodSecurity",
                                                "--enable-admission-plugins", "NodeRestriction, EventRateLimit"))
    assert [item for item, _ in flags.items("enable-admission-plugins")] == ["PodSecurity", "NodeRestriction",
                                                                             "EventRateLimit"]


def test_a_boolean_flag_never_takes_the_next_word() -> None:
    # pflag: `--anonymous-auth false` sets true and leaves "false" as a stray argument
    flags = parse_words("kube-apiserver", words("--anonymous-auth", "false", "--token-auth-file", "--x"))
    assert flags.value("anonymous-auth") == "true" and [s.value for s in flags.stray] == ["false"]
    assert flags.value("token-auth-file") == "--x"  # a value flag takes the next word, whatever it is


def test_single_dash_is_a_flag_for_etcd_only_and_double_dash_ends_flags() -> None:
    assert parse_words("etcd", words("-client-cert-auth=true")).value("client-cert-auth") == "true"
    assert "client-cert-auth" not in parse_words("kube-apiserver", words("-client-cert-auth=true"))
    flags = parse_words("kube-apiserver", words("--a=1", "--", "--token-auth-file=/t"))
    assert "token-auth-file" not in flags and flags.value("a") == "1"


def test_odd_words_and_a_trailing_value_flag() -> None:
    flags = parse_words("kube-apiserver", words(None, 6443, {"x": 1}, "--etcd-servers"))
    assert flags.value("etcd-servers") == "" and len(flags.stray) == 3
    huge = parse_words("kube-apiserver", words(*[f"--f{i}=1" for i in range(MAX_WORDS + 50)]))
    assert len(huge.occurrences) == MAX_WORDS


@pytest.mark.parametrize("container, program", [
    ({"command": ["kube-apiserver"]}, "kube-apiserver"),
    ({"command": ["/usr/local/bin/etcd"], "args": ["--name=x"]}, "etcd"),
    ({"args": ["kube-apiserver", "--x=1"]}, "kube-apiserver"),  # no command: the image runs args
    ({"command": ["sh", "-c", "kube-apiserver --x"]}, None),
    ({"command": ["etcdctl"]}, None),
    ({"command": "kube-apiserver"}, None),  # not a list: the API server would refuse the Pod
    ({"command": [None]}, None),
    ({"command": None, "args": None}, None),
    ({}, None),
])
def test_the_program_is_the_first_word_s_file_name(container: dict[str, Any], program: Any) -> None:
    assert program_of(container) == program


def test_container_flags_span_command_and_args_with_their_paths() -> None:
    flags = container_flags({"command": ["kube-apiserver", "--a=1"], "args": ["--b", "2"]}, ("spec", "containers", 0))
    assert flags is not None
    assert flags.last("a").path == ("spec", "containers", 0, "command", 1)  # type: ignore[union-attr]
    assert flags.last("b").path == ("spec", "containers", 0, "args", 0)  # type: ignore[union-attr]


def test_extra_args_v1beta3_map_and_v1beta4_list() -> None:
    v1beta3 = map_flags("kube-apiserver", {"authorization-mode": "Node,RBAC", "profiling": False}, ("x",))
    assert v1beta3.value("authorization-mode") == "Node,RBAC" and v1beta3.value("profiling") == "false"
    assert v1beta3.last("profiling").path == ("x", "profiling")  # type: ignore[union-attr]
    v1beta4 = map_flags("kube-apiserver", [{"name": "enable-admission-plugins", "value": "A"},
                                           {"name": "enable-admission-plugins", "value": "B"},
                                           "stray", {"value": "no name"}, {"name": 3}, None], ("y",))
    assert [item for item, _ in v1beta4.items("enable-admission-plugins")] == ["A", "B"]
    assert v1beta4.last("enable-admission-plugins").path == ("y", 1, "value")  # type: ignore[union-attr]
    for odd in (None, "a=b", 7, [], {}):
        assert not map_flags("kube-apiserver", odd, ()).occurrences


# ---- kubeadm ----

def test_kubeadm_defaults_and_what_extra_args_replace() -> None:
    [api, etcd] = cluster_configuration({"apiServer": {"extraArgs": {"authorization-mode": "RBAC"}}})
    assert api.flags.value("authorization-mode") == "RBAC" and api.flags.value("enable-admission-plugins") == "NodeRestriction"
    assert api.flags.value("etcd-certfile") and etcd.flags.value("client-cert-auth") == "true"
    [external] = cluster_configuration({"etcd": {"external": {"endpoints": ["https://e:2379"], "caFile": "/ca"}}})
    assert external.flags.value("etcd-cafile") == "/ca" and "etcd-certfile" not in external.flags


@pytest.mark.parametrize("body", [{"apiServer": None, "etcd": "x"}, {"apiServer": [], "etcd": {"local": 3}},
                                  {"etcd": {"external": {"endpoints": "not-a-list"}}}])
def test_odd_cluster_configurations_do_not_crash(body: dict[str, Any]) -> None:
    assert cluster_configuration(body)[0].program == "kube-apiserver"


def config_map(name: str, data: Any, namespace: str = "kube-system") -> Resource:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}
    return Resource(ResourceRef("v1", "ConfigMap", name, namespace), body, Origin(context="c"))


KUBELET = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n"


@pytest.mark.parametrize("name, data, outcome", [
    ("kubelet-config", {"kubelet": KUBELET}, "ok"),
    ("kubelet-config-1.23", {"kubelet": KUBELET}, "ok"),
    ("kubelet-config", {"kubelet": "kind: [unclosed"}, "invalid YAML"),
    ("kubelet-config", {"kubelet": "- a\n- b\n"}, "not a YAML mapping"),
    ("kubelet-config", {"kubelet": ""}, "empty"),
    ("kubelet-config", {"kubelet": 42}, "not a string"),
    ("kubelet-config", {"kubelet": "x: " + "a" * MAX_EMBEDDED}, "more than"),
    ("kubelet-config", {"kubelet": "apiVersion: v1\nkind: Pod\n"}, "not a KubeletConfiguration"),
    ("kubelet-config", {"kubelet": "a: &a [*a]\n"}, "recursive"),
    ("kubeadm-config", {"ClusterConfiguration": KUBELET}, "not a ClusterConfiguration"),
    ("kubelet-config", {"other": KUBELET}, None),  # not kubeadm's
    ("kubelet-config", None, None),
    ("kubelet-configuration", {"kubelet": KUBELET}, None),
])
def test_kubeadm_config_maps(name: str, data: Any, outcome: Any) -> None:
    embedded = embedded_config(config_map(name, data))
    if outcome is None:
        assert embedded is None
    elif outcome == "ok":
        assert embedded is not None and embedded.problem is None and embedded.body["readOnlyPort"] == 10255  # type: ignore[index]
    else:
        assert embedded is not None and embedded.body is None and outcome in str(embedded.problem), embedded


def test_config_maps_outside_kube_system_are_not_kubeadm_s() -> None:
    assert embedded_config(config_map("kubelet-config", {"kubelet": KUBELET}, "default")) is None


# ---- classification ----

def test_kubeadm_and_kubelet_configuration_are_objects_without_metadata() -> None:
    kubelet = classify_document({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}, "f")
    cluster = classify_document({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"}, "f")
    join = classify_document({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "JoinConfiguration",
                              "nodeRegistration": {"name": "worker-1"}}, "f")
    assert isinstance(kubelet, ObjectDoc) and kubelet.name == "<unnamed>" and kubelet.namespace is None
    assert isinstance(cluster, ObjectDoc) and cluster.name == "kubernetes"
    assert isinstance(join, ObjectDoc) and join.name == "worker-1"
    assert cluster_scoped("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")
    # kinds kaudit does not judge stay skipped; broken ones stay errors
    assert isinstance(classify_document({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ResetConfiguration"}, "f"),
                      Skipped)
    assert isinstance(classify_document({"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig"},
                                        "f"), Skipped)
    assert isinstance(classify_document({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
                                         "metadata": "x"}, "f"), InputError)
    assert isinstance(classify_document({"apiVersion": "", "kind": "KubeletConfiguration"}, "f"), InputError)


KUBEADM_FILE = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    - {name: read-only-port, value: "0"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  extraArgs:
    - {name: encryption-provider-config, value: /etc/kubernetes/enc.yaml}
    # what kubeadm does not set, hardened (apiserver-anonymous-auth-enabled, -profiling-enabled, ...)
    - {name: anonymous-auth, value: "false"}
    - {name: profiling, value: "false"}
    - {name: audit-policy-file, value: /etc/kubernetes/audit/policy.yaml}
    - {name: audit-log-path, value: /var/log/kubernetes/audit/audit.log}
    - {name: kubelet-certificate-authority, value: /etc/kubernetes/pki/ca.crt}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
readOnlyPort: 10255
protectKernelDefaults: true
"""


def test_a_kubeadm_config_file_is_scanned_and_judged_with_its_flags(tmp_path: Path) -> None:
    (tmp_path / "kubeadm.yaml").write_text(KUBEADM_FILE)
    report = scan_manifests(ScanRequest(targets=(str(tmp_path),)))
    assert report.inputs.resources == 3 and not report.inputs.skipped and not report.inputs.errors
    # the flag overrides the file's readOnlyPort; kubeadm forces rotateCertificates; nothing else is wrong
    assert not [f for f in report.findings if f.rule.startswith(("kubelet-", "apiserver-", "etcd-"))]
    assert not [f for f in report.findings if f.rule == "default-namespace"]


def test_unreadable_embedded_configuration_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubelet-config, namespace: kube-system}\n"
        "data:\n  kubelet: |\n    kind: KubeletConfiguration\n    authentication: {anonymous: [\n")
    report = scan_manifests(ScanRequest(targets=(str(tmp_path / "cm.yaml"),)))
    [error] = report.inputs.errors
    assert error.file.endswith("cm.yaml") and error.line == 5
    assert "ConfigMap/kube-system/kubelet-config: data.kubelet: line 3: invalid YAML" in error.message
    assert not report.rule_errors and not report.complete


# ---- templates on odd input ----

def judge(rule_template: str, check: str, body: dict[str, Any], others: tuple[dict[str, Any], ...] = ()) -> list[Any]:
    def resource(doc: dict[str, Any]) -> Resource:
        outcome = classify_document(doc, "f.yaml")
        assert isinstance(outcome, ObjectDoc)
        return Resource(ResourceRef(outcome.api_version, outcome.kind, outcome.name, outcome.namespace), doc,
                        Origin(file="f.yaml"))
    subject = resource(body)
    inventory = Inventory([subject, *map(resource, others)])
    bound = TEMPLATES[rule_template].bind({"check": check}, "object")
    return list(bound(Target(subject, lookup=inventory)))


def pod(kind: str, container: dict[str, Any], place: str = "containers") -> dict[str, Any]:
    spec = {"containers": [{"name": "app", "image": "app:1"}]} if place != "containers" else {}
    spec[place] = [container]
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kube-system"}, "spec": spec}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "ops"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "d", "namespace": "ops"},
            "spec": {"template": {"spec": spec}}}


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "DaemonSet", "CronJob"])
@pytest.mark.parametrize("place", ["containers", "initContainers", "ephemeralContainers"])
def test_every_workload_kind_and_container_place(kind: str, place: str) -> None:
    container = {"name": "api", "image": "registry.k8s.io/kube-apiserver:v1.36.2",
                 "command": ["kube-apiserver", "--token-auth-file=/t.csv"]}
    [hit] = judge("component-flags", "token-auth-file", pod(kind, container, place))
    assert hit.container == "api" and hit.path[-2:] == ("command", 1)


@pytest.mark.parametrize("container", [
    {"name": "x", "command": None}, {"name": "x", "command": 5}, {"name": "x", "command": ["kube-apiserver", None, 7]},
    {"name": "x", "command": [{"a": 1}]}, {"name": "x", "args": [None]},
    {"name": "x", "command": ["etcd"], "env": [None, {"name": "ETCD_CLIENT_CERT_AUTH", "valueFrom": {"x": 1}}, 3]},
])
def test_odd_containers_never_raise(container: dict[str, Any]) -> None:
    for check in ("authorization-always-allow", "etcd-client-cert-auth", "insecure-port"):
        judge("component-flags", check, pod("Pod", container))


@pytest.mark.parametrize("image, severity", [
    ("registry.k8s.io/kube-apiserver:v1.18.20", Severity.CRITICAL),
    ("registry.k8s.io/kube-apiserver", Severity.CRITICAL),  # unknown version: the worst case stands
    ("registry.k8s.io/kube-apiserver:v1.22.0@sha256:" + "a" * 64, Severity.LOW),  # refused or ignored
    ("registry.k8s.io/kube-apiserver:v1.36.2", Severity.LOW),  # removed: a broken manifest
])
def test_insecure_port_says_old_or_broken(image: str, severity: Severity, tmp_path: Path) -> None:
    manifest = pod("Pod", {"name": "kube-apiserver", "image": image, "command": ["kube-apiserver", "--insecure-port=8080"]})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(manifest))
    report = scan_manifests(ScanRequest(targets=(str(tmp_path / "p.yaml"),), select=("apiserver-insecure-port",)))
    [finding] = report.findings
    assert finding.severity == severity
    assert ("broken" in finding.message or "no effect" in finding.message) == (severity == Severity.LOW)


@pytest.mark.parametrize("body", [
    {"authentication": None}, {"authentication": []}, {"authentication": {"anonymous": "yes"}},
    {"authentication": {"anonymous": {"enabled": "true"}}},  # a string: the kubelet refuses the file
    {"readOnlyPort": "10255"}, {"readOnlyPort": True}, {"authorization": {"mode": ["AlwaysAllow"]}},
])
def test_kubelet_settings_of_the_wrong_type_are_not_judged(body: dict[str, Any]) -> None:
    config = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", **body}
    for check in ("anonymous-auth", "authorization-mode", "read-only-port"):
        assert judge("kubelet-config", check, config) == []


def test_a_flag_of_only_one_node_configuration_does_not_override_the_file() -> None:
    kubelet = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
               "authentication": {"anonymous": {"enabled": True}}}
    join = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
            "nodeRegistration": {"kubeletExtraArgs": [{"name": "anonymous-auth", "value": "false"}]}}
    other = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration", "nodeRegistration": {}}
    assert judge("kubelet-config", "anonymous-auth", kubelet, (join,)) == []
    [hit] = judge("kubelet-config", "anonymous-auth", kubelet, (join, other))
    assert hit.path == ("authentication", "anonymous", "enabled")


def test_config_map_findings_point_at_the_data_key_and_name_the_field() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
          "data": {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
                                           "apiServer:\n  extraArgs:\n    token-auth-file: /t.csv\n"}}
    [hit] = judge("component-flags", "token-auth-file", cm)
    assert hit.path == ("data", "ClusterConfiguration")
    assert "apiServer.extraArgs.token-auth-file" in hit.values["detail"]


# ---- frameworks ----

def test_cis_lists_sections_1_2_and_4_honestly() -> None:
    controls = {control.id: control for control in frameworks.get("cis").controls}
    assert {"1.1.1", "1.2.6", "2.2", "4.1.1", "4.2.1", "5.1.1"} <= set(controls)
    assert "needs node access" in controls["1.1.1"].gap and "needs node access" in controls["4.1.9"].gap
    from kaudit.ruleset import load_builtin_rules
    rules = load_builtin_rules()
    tagged = {c for rule in rules for c in rule.frameworks.get("cis", ())}
    for control_id in ("1.2.1", "1.2.2", "1.2.5", "1.2.6", "1.2.10", "1.2.14", "1.2.15", "1.2.16", "1.2.23",
                       "1.2.26", "1.2.27", "2.2", "2.5", "4.2.1", "4.2.2", "4.2.4", "4.2.10"):
        assert control_id in tagged and not controls[control_id].gap
    assert not [c for c in controls.values() if not c.gap and c.id not in tagged and c.id[0] in "124"]


# ---- a live cluster ----

MIRROR_POD = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "kube-apiserver-cp-1", "namespace": "kube-system",
                           "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "cp-1", "uid": "n1",
                                                "controller": True}]},
              "spec": {"containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.29.4",
                                       "command": ["kube-apiserver", "--authorization-mode=Node,RBAC",
                                                   "--enable-admission-plugins=NodeRestriction"]}]}}
KUBEADM_CONFIG = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                  "data": {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
                                                   "etcd:\n  local:\n    extraArgs:\n      client-cert-auth: 'false'\n"}}
KUBELET_CONFIG = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
                  "data": {"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                                      "authorization:\n  mode: AlwaysAllow\n"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "kubelet-config", "namespace": "kube-system"}, "data": {"kubelet": "c2VjcmV0"}}


@pytest.fixture
def cluster() -> Iterator[Callable[..., Any]]:
    def run(objects: list[dict[str, Any]], tmp_path: Path) -> tuple[Any, FakeApiServer]:
        with FakeApiServer([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}, *objects]
                           ) as api:
            kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
            report = scan_cluster(ScanRequest(targets=()), ClusterRequest(kubeconfig=str(kubeconfig), context="test"))
        return report, api
    yield run


def test_a_cluster_scan_reads_kubeadm_s_config_maps(cluster: Callable[..., Any], tmp_path: Path) -> None:
    report, api = cluster([MIRROR_POD, KUBEADM_CONFIG, KUBELET_CONFIG, SECRET], tmp_path)
    found = {(f.rule, f.resource.describe(), f.path_text) for f in report.findings
             if f.rule.startswith(("kubelet-", "etcd-", "apiserver-etcd"))}
    assert ("etcd-client-cert-auth-disabled", "ConfigMap/kube-system/kubeadm-config", "data.ClusterConfiguration") in found
    assert ("kubelet-authorization-always-allow", "ConfigMap/kube-system/kubelet-config", "data.kubelet") in found
    assert "apiserver-encryption-at-rest-disabled" in {f.rule for f in report.findings
                                                       if f.resource.describe() == "Pod/kube-system/kube-apiserver-cp-1"}
    assert not [f for f in report.findings if f.rule == "apiserver-authorization-always-allow"]
    assert "configmaps" in report.coverage.read and not report.coverage.gaps
    secrets = [r for r in api.requests if r.path.endswith("/secrets")]
    assert secrets and all("PartialObjectMetadataList" in (r.accept or "") for r in secrets)  # never Secret data
    assert all(r.method == "GET" for r in api.requests)


def test_a_broken_config_map_in_the_cluster_is_reported_not_a_crash(cluster: Callable[..., Any],
                                                                     tmp_path: Path) -> None:
    broken = {**KUBELET_CONFIG, "data": {"kubelet": "kind: KubeletConfiguration\nauthorization: {mode: [\n"}}
    report, _ = cluster([broken], tmp_path)
    [error] = report.inputs.errors
    assert error.file == "context test" and "ConfigMap/kube-system/kubelet-config: data.kubelet" in error.message
    assert not report.rule_errors and not report.complete


def test_anonymous_auth_read_in_both_flag_forms_the_last_occurrence_winning() -> None:
    def apiserver(*words: str) -> dict[str, Any]:
        return pod("Pod", {"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.36.2",
                           "command": ["kube-apiserver", *words]})

    # `--anonymous-auth false` is true to the API server (a boolean never takes the next word)
    [hit] = judge("component-flags", "anonymous-auth", apiserver("--anonymous-auth", "false"))
    assert hit.path == ("spec", "containers", 0, "command", 1) and "--anonymous-auth=true" in hit.values["detail"]
    assert judge("component-flags", "anonymous-auth", apiserver("--anonymous-auth=true", "--anonymous-auth=false")) == []
    [hit] = judge("component-flags", "anonymous-auth", apiserver("--anonymous-auth=F", "--anonymous-auth=yes"))
    assert hit.path[-1] == 2  # not a Go boolean: not false (the API server refuses it)
    assert judge("component-flags", "kubelet-certificate-authority",
                 apiserver("--kubelet-certificate-authority", "/pki/ca.crt")) == []
    looks_like = pod("Pod", {"name": "kube-apiserver", "image": "busybox", "command": ["sh", "-c", "kube-apiserver"]})
    for check in ("anonymous-auth", "profiling", "audit-logging", "kubelet-certificate-authority"):
        assert judge("component-flags", check, looks_like) == []


def kubeadm(version: str, args: Any) -> dict[str, Any]:
    return {"apiVersion": f"kubeadm.k8s.io/{version}", "kind": "ClusterConfiguration", "apiServer": {"extraArgs": args}}


def kubeadm_config(body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump(body)}}


EXTRA = ("apiServer", "extraArgs")
# check, extraArgs as a v1beta3 map, where the finding goes (relative to extraArgs; None: no finding)
OLD_FOUR = [
    ("anonymous-auth", {}, ()),  # kubeadm does not set it: the default (true) stands
    ("anonymous-auth", {"anonymous-auth": "true"}, ("anonymous-auth",)),
    ("anonymous-auth", {"anonymous-auth": "false"}, None),
    ("anonymous-auth", {"anonymous-auth": False}, None),  # a YAML boolean: kubeadm would refuse it, but false
    ("anonymous-auth", {"anonymous-auth": 0}, None),  # "0" is false to Go
    ("anonymous-auth", {"anonymous-auth": None}, ("anonymous-auth",)),  # empty: not false
    ("anonymous-auth", {"authentication-config": "/etc/kubernetes/authn.yaml"}, None),
    ("anonymous-auth", {"authentication-config": "", "anonymous-auth": "1"}, ("anonymous-auth",)),
    ("profiling", {}, ()),
    ("profiling", {"profiling": "true"}, ("profiling",)),
    ("profiling", {"profiling": "false"}, None),
    ("profiling", {"authentication-config": "/a.yaml"}, ()),  # only anonymous access is decided by that file
    ("audit-logging", {}, ()),
    ("audit-logging", {"audit-policy-file": "/p.yaml"}, ()),
    ("audit-logging", {"audit-policy-file": "/p.yaml", "audit-log-path": ""}, ("audit-log-path",)),
    ("audit-logging", {"audit-log-path": "/a.log"}, ()),
    ("audit-logging", {"audit-policy-file": " ", "audit-log-path": "/a.log"}, ("audit-policy-file",)),
    ("audit-logging", {"audit-policy-file": "/p.yaml", "audit-log-path": "/a.log"}, None),
    ("audit-logging", {"audit-policy-file": "/p.yaml", "audit-webhook-config-file": "/w.yaml"}, None),
    ("kubelet-certificate-authority", {}, ()),
    ("kubelet-certificate-authority", {"kubelet-certificate-authority": ""}, ("kubelet-certificate-authority",)),
    ("kubelet-certificate-authority", {"kubelet-certificate-authority": "/pki/ca.crt"}, None),
]


@pytest.mark.parametrize("check, args, where", OLD_FOUR)
def test_the_four_flags_across_kubeadm_s_sources(check: str, args: dict[str, Any], where: Any) -> None:
    as_list = [{"name": name, "value": value} for name, value in args.items()]
    v1beta3, v1beta4 = kubeadm("v1beta3", args), kubeadm("v1beta4", as_list)
    found = {"v1beta3": judge("component-flags", check, v1beta3), "v1beta4": judge("component-flags", check, v1beta4),
             "ConfigMap": judge("component-flags", check, kubeadm_config(v1beta4))}
    if where is None:
        assert found == {"v1beta3": [], "v1beta4": [], "ConfigMap": []}
        return
    index = list(args).index(where[0]) if where else -1  # -1: missing, reported where it is added
    expected = {"v1beta3": EXTRA + where, "v1beta4": EXTRA + ((index, "value") if where else ()),
                "ConfigMap": ("data", "ClusterConfiguration")}
    assert {source: [hit.path for hit in hits] for source, hits in found.items()} == \
        {source: [path] for source, path in expected.items()}
    assert all(hit.values["component"].startswith("kube-apiserver (") for hits in found.values() for hit in hits)
    # the static pod kubeadm generates from it says the same
    words = [f"--{name}={'' if value is None else str(value).lower()}" for name, value in args.items()]
    static = pod("Pod", {"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.36.2",
                         "command": ["kube-apiserver", *words]})
    [hit] = judge("component-flags", check, static)
    assert hit.container == "kube-apiserver"
    assert hit.path == ("spec", "containers", 0, "command") + ((index + 1,) if where else ())


def test_where_a_missing_flag_goes_in_kubeadm_s_configuration() -> None:
    bare = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"}
    [hit] = judge("component-flags", "profiling", bare)
    assert hit.path == ("kind",) and hit.values["component"] == "kube-apiserver (apiServer.extraArgs)"
    [hit] = judge("component-flags", "profiling", {**bare, "apiServer": {"certSANs": ["cp"]}})
    assert hit.path == ("apiServer",)
    [hit] = judge("component-flags", "audit-logging", kubeadm("v1beta4", [{"name": "audit-policy-file"}]))
    assert hit.path == EXTRA + (0,)  # a v1beta4 entry without a value: an empty policy, pointed at its entry
    args_only = pod("Pod", {"name": "api", "image": "registry.k8s.io/kube-apiserver:v1.36.2",
                            "args": ["kube-apiserver", "--anonymous-auth=false"]})
    [hit] = judge("component-flags", "profiling", args_only)
    assert hit.path == ("spec", "containers", 0, "args")


@pytest.mark.parametrize("args", [None, "profiling=false", 7, [None, "x", {"name": None}], {"profiling": {"a": 1}},
                                  {"audit-policy-file": ["/p.yaml"], "audit-log-path": 3}])
def test_odd_extra_args_never_raise(args: Any) -> None:
    for check in ("anonymous-auth", "profiling", "audit-logging", "kubelet-certificate-authority"):
        for version in ("v1beta3", "v1beta4"):
            for hit in judge("component-flags", check, kubeadm(version, args)):
                assert hit.values["detail"]


def test_a_cluster_scan_reports_the_four_flags_on_the_mirror_pod_and_kubeadm_s_config_map(
        cluster: Callable[..., Any], tmp_path: Path) -> None:
    hardened = kubeadm_config(kubeadm("v1beta4", [
        {"name": "anonymous-auth", "value": "false"}, {"name": "audit-policy-file", "value": "/p.yaml"},
        {"name": "audit-log-path", "value": "/a.log"}, {"name": "kubelet-certificate-authority", "value": "/ca.crt"}]))
    report, _ = cluster([MIRROR_POD, hardened], tmp_path)
    four = ("apiserver-anonymous-auth-enabled", "apiserver-profiling-enabled", "apiserver-audit-logging-disabled",
            "apiserver-kubelet-ca-missing")
    found = {(f.rule, f.resource.describe(), f.path_text) for f in report.findings if f.rule in four}
    pod_at = "spec.containers[0].command"
    assert found == {(rule, "Pod/kube-system/kube-apiserver-cp-1", pod_at) for rule in four} | {
        ("apiserver-profiling-enabled", "ConfigMap/kube-system/kubeadm-config", "data.ClusterConfiguration")}
