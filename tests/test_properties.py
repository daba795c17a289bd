"""Property-based tests: random (and randomly broken) Kubernetes manifests through the real loader.

Strategies build valid pod specs and workloads (Pod, Deployment, CronJob, custom resources with a
pod template) plus a few objects the cross-object rules read, then MUTATE them the ways real files
are broken (nulls, wrong types, missing and unknown fields, huge and unicode strings, duplicates).
Everything is serialised to YAML (several documents, Lists, JSON) and scanned from files in a
temporary directory, exactly as `kaudit scan` reads them.

The invariants (one test each):
  (a) no exception and no rule error, for valid and broken input;
  (b) every finding's path exists in its object, or names a missing field under an existing one,
      and its location is inside the file;
  (c) the JSON report validates against reports/report.schema.json;
  (d) suppressing one finding with an annotation changes no other finding;
  (e) per-object rules give the same findings whether files are scanned alone or together;
  (f) the order of the rules does not matter;
  (g) fingerprints survive moved lines and reordered keys;
  (h) a scan spread over worker processes gives the same report as one process.

KAUDIT_PROPERTY_EXAMPLES scales every test's max_examples (default 25).
"""
from __future__ import annotations

import atexit
import copy
import json
import os
import random
import re
import shutil
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

from kaudit.checks import TEMPLATES
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Finding, Report
from kaudit.ruleset import Rule, load_builtin_rules
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.sources.manifests import load_manifests
from kaudit.sources.yamldoc import deepest_position, position_of
from kaudit.suppress import IGNORE
from kaudit.writers.json_report import to_dict

from .conftest import scan_on_workers

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("KAUDIT_PROPERTY_EXAMPLES", "25"))


def examples(weight: float = 1.0) -> settings:
    return settings(max_examples=max(1, int(EXAMPLES * weight)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------
# Strategies: valid objects
# --------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["app", "web", "db", "sidecar", "init", "debug", "a", "x-1", "worker"])
NAMESPACES = st.sampled_from(["default", "team", "shop", "kube-system", "prod"])
IMAGES = st.sampled_from([
    "nginx", "nginx:latest", "nginx:1.25", "registry.example.com/app:1.0", "docker.io/library/redis:7",
    "ghcr.io/org/tool@sha256:" + "a" * 64, "quay.io/x/y:latest@sha256:" + "b" * 64, "localhost:5000/app",
    "gcr.io/distroless/static:nonroot", "",
])
CAPABILITIES = ["ALL", "all", "NET_ADMIN", "SYS_ADMIN", "NET_RAW", "CHOWN", "KILL", "SETUID", "SYS_PTRACE",
                "CAP_SYS_ADMIN", "NET_BIND_SERVICE", "BPF"]
HOST_PATHS = ["/", "/etc", "/data", "/var/run/docker.sock", "/run/containerd/containerd.sock", "/var/log",
              "/proc", "/var/run/crio/crio.sock", "/tmp/"]
SMALL_INTS = st.integers(min_value=0, max_value=70000)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


capabilities = optional(add=st.lists(st.sampled_from(CAPABILITIES), max_size=3),
                        drop=st.lists(st.sampled_from(CAPABILITIES), max_size=3))
seccomp = st.fixed_dictionaries({"type": st.sampled_from(["RuntimeDefault", "Unconfined", "Localhost"])},
                                optional={"localhostProfile": st.just("profiles/audit.json")})
apparmor = st.fixed_dictionaries({"type": st.sampled_from(["RuntimeDefault", "Unconfined", "Localhost"])},
                                 optional={"localhostProfile": st.just("k8s-apparmor")})
selinux = optional(type=st.sampled_from(["container_t", "container_init_t", "spc_t", "custom_t"]),
                   user=st.just("system_u"), role=st.just("system_r"), level=st.just("s0:c123,c456"))
windows = optional(hostProcess=st.booleans(), runAsUserName=st.just("NT AUTHORITY\\SYSTEM"))
common_sc = dict(runAsUser=SMALL_INTS, runAsGroup=SMALL_INTS, runAsNonRoot=st.booleans(), seccompProfile=seccomp,
                 seLinuxOptions=selinux, appArmorProfile=apparmor, windowsOptions=windows)
container_security = optional(privileged=st.booleans(), allowPrivilegeEscalation=st.booleans(),
                              readOnlyRootFilesystem=st.booleans(), capabilities=capabilities,
                              procMount=st.sampled_from(["Default", "Unmasked"]), **common_sc)
sysctls = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["kernel.shm_rmid_forced", "net.ipv4.ip_forward", "kernel.msgmax",
                             "net.ipv4.ping_group_range", "vm.swappiness"]),
    "value": st.sampled_from(["0", "1", "0 65535"])}), max_size=2)
pod_security = optional(fsGroup=SMALL_INTS, supplementalGroups=st.lists(SMALL_INTS, max_size=2), sysctls=sysctls,
                        **common_sc)

handler = st.one_of(
    st.fixed_dictionaries({"httpGet": st.fixed_dictionaries({"path": st.just("/healthz"), "port": st.just(8080)},
                                                            optional={"host": st.sampled_from(["10.0.0.1", "localhost", ""])})}),
    st.fixed_dictionaries({"tcpSocket": st.fixed_dictionaries({"port": st.sampled_from([80, "http"])},
                                                              optional={"host": st.just("169.254.169.254")})}),
    st.fixed_dictionaries({"exec": st.fixed_dictionaries({"command": st.just(["true"])})}),
)
probe = st.builds(lambda h, extra: {**h, **extra}, handler, optional(periodSeconds=st.integers(1, 60)))
env_var = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(["PASSWORD", "DB_PASSWORD", "API_TOKEN", "LOG_LEVEL", "SECRET_KEY",
                                                    "AWS_SECRET_ACCESS_KEY", "HOME"]),
                           "value": st.sampled_from(["hunter2", "", "info", "AKIAIOSFODNN7EXAMPLE", "${REF}"])}),
    st.fixed_dictionaries({"name": st.just("TOKEN"), "valueFrom": st.fixed_dictionaries(
        {"secretKeyRef": st.fixed_dictionaries({"name": st.just("s"), "key": st.just("token")})})}),
)
port = st.fixed_dictionaries({"containerPort": st.integers(1, 65535)},
                             optional={"hostPort": st.integers(0, 65535), "protocol": st.sampled_from(["TCP", "UDP"]),
                                       "name": st.sampled_from(["http", "metrics"]),
                                       "hostIP": st.just("0.0.0.0")})
resources = optional(limits=optional(cpu=st.sampled_from(["100m", "1", 2]), memory=st.sampled_from(["64Mi", "1Gi"])),
                     requests=optional(cpu=st.just("50m"), memory=st.just("32Mi")))


def container(required_name: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": NAMES, "image": IMAGES},
        optional={
            "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
            "securityContext": container_security,
            "env": st.lists(env_var, max_size=3),
            "ports": st.lists(port, max_size=2),
            "livenessProbe": probe, "readinessProbe": probe, "startupProbe": probe,
            "lifecycle": optional(postStart=handler, preStop=handler),
            "resources": resources,
            "command": st.just(["/bin/sh", "-c", "sleep 3600"]),
            "volumeMounts": st.lists(st.fixed_dictionaries({"name": NAMES, "mountPath": st.just("/mnt")}), max_size=2),
        },
    )


volume = st.builds(
    lambda name, source: {"name": name, **source},
    NAMES,
    st.one_of(
        st.fixed_dictionaries({"hostPath": st.fixed_dictionaries(
            {"path": st.sampled_from(HOST_PATHS)},
            optional={"type": st.sampled_from(["Directory", "Socket", "DirectoryOrCreate", ""])})}),
        st.just({"emptyDir": {}}),
        st.just({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}),
        st.just({"configMap": {"name": "cfg"}}),
        st.just({"secret": {"secretName": "creds"}}),
        st.just({"persistentVolumeClaim": {"claimName": "data"}}),
        st.just({"nfs": {"server": "nfs.example.com", "path": "/exports"}}),
        st.just({"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}),
        st.just({"csi": {"driver": "secrets-store.csi.k8s.io"}}),
        st.just({"gitRepo": {"repository": "https://example.com/x.git"}}),
        st.just({"downwardAPI": {"items": []}}),
        st.just({"ephemeral": {"volumeClaimTemplate": {"spec": {}}}}),
    ),
)

pod_spec = st.fixed_dictionaries(
    {"containers": st.lists(container(), min_size=1, max_size=3)},
    optional={
        "initContainers": st.lists(container(), max_size=2),
        "ephemeralContainers": st.lists(container(), max_size=1),
        "securityContext": pod_security,
        "volumes": st.lists(volume, max_size=3),
        "hostNetwork": st.booleans(), "hostPID": st.booleans(), "hostIPC": st.booleans(), "hostUsers": st.booleans(),
        "serviceAccountName": st.sampled_from(["default", "app-sa", "builder"]),
        "automountServiceAccountToken": st.booleans(),
        "runtimeClassName": st.sampled_from(["gvisor", "kata", "runc"]),
        "os": st.fixed_dictionaries({"name": st.sampled_from(["linux", "windows"])}),
        "restartPolicy": st.sampled_from(["Always", "OnFailure", "Never"]),
    },
)

ANNOTATIONS = st.dictionaries(
    st.sampled_from(["container.apparmor.security.beta.kubernetes.io/app", "seccomp.security.alpha.kubernetes.io/pod",
                     "team", "kubectl.kubernetes.io/last-applied-configuration"]),
    st.sampled_from(["unconfined", "runtime/default", "localhost/x", "owner-a", "{}"]), max_size=2) | st.just(
    {IGNORE: "run-as-root, latest-tag"}) | st.just({IGNORE: "*", "kaudit.io/ignore-reason": "legacy"})
LABELS = st.dictionaries(st.sampled_from(["app", "tier", "pod-security.kubernetes.io/enforce"]),
                         st.sampled_from(["web", "privileged", "baseline", "restricted"]), max_size=2)


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": draw(NAMES)}
    namespace = draw(st.one_of(st.none(), NAMESPACES))
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(draw(optional(labels=LABELS, annotations=ANNOTATIONS)))
    return meta


@st.composite
def template(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {"metadata": {"labels": {"app": draw(NAMES)}}, "spec": draw(pod_spec)}
    extra = draw(ANNOTATIONS)
    if extra:
        result["metadata"]["annotations"] = extra
    return result


@st.composite
def workload(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Pod", "Deployment", "CronJob", "Rollout", "Widget", "StatefulSet", "Job"]))
    meta = draw(metadata())
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": draw(pod_spec)}
    tmpl = draw(template())
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tmpl}}}}
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1", "Rollout": "argoproj.io/v1alpha1",
           "Widget": "widgets.example.com/v1"}[kind]
    spec: dict[str, Any] = {"template": tmpl}
    if kind != "Job":
        spec = {"replicas": draw(st.integers(0, 3)), "selector": {"matchLabels": tmpl["metadata"]["labels"]}, **spec}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


@st.composite
def other_object(draw: st.DrawFn) -> dict[str, Any]:
    """Objects the cross-object and object-level rules read."""
    meta = draw(metadata())
    choice = draw(st.sampled_from(["Namespace", "Service", "NetworkPolicy", "ServiceAccount", "RoleBinding",
                                   "ClusterRoleBinding", "Role", "Secret", "Ingress", "ConfigMap"]))
    if choice == "Namespace":
        meta.pop("namespace", None)
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    if choice == "Service":
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": draw(optional(
            type=st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]),
            selector=st.just({"app": "web"}), externalIPs=st.just(["1.2.3.4"]),
            loadBalancerSourceRanges=st.sampled_from([["0.0.0.0/0"], ["10.0.0.0/8"]]),
            ports=st.just([{"port": 80, "targetPort": 8080}])))}
    if choice == "NetworkPolicy":
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
                "spec": draw(st.fixed_dictionaries(
                    {"podSelector": st.sampled_from([{}, {"matchLabels": {"app": "web"}}, {"matchLabels": {"x": "y"}}])},
                    optional={"policyTypes": st.lists(st.sampled_from(["Ingress", "Egress"]), max_size=2, unique=True),
                              "ingress": st.sampled_from([[{}], [], [{"from": [{"podSelector": {}}]}]]),
                              "egress": st.sampled_from([[{}], []])}))}
    if choice == "ServiceAccount":
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
                **draw(optional(automountServiceAccountToken=st.booleans()))}
    if choice in ("RoleBinding", "ClusterRoleBinding"):
        if choice == "ClusterRoleBinding":
            meta.pop("namespace", None)
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": choice, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                            "kind": draw(st.sampled_from(["ClusterRole", "Role"])),
                            "name": draw(st.sampled_from(["cluster-admin", "edit", "app", "web"]))},
                "subjects": draw(st.lists(st.sampled_from([
                    {"kind": "ServiceAccount", "name": "default", "namespace": "team"},
                    {"kind": "ServiceAccount", "name": "app-sa", "namespace": "team"},
                    {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"},
                ]), min_size=1, max_size=2))}
    if choice == "Role":
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": draw(st.sampled_from(["Role", "ClusterRole"])),
                "metadata": meta, "rules": draw(st.lists(st.fixed_dictionaries({
                    "apiGroups": st.sampled_from([[""], ["*"], ["apps"]]),
                    "resources": st.sampled_from([["secrets"], ["*"], ["pods/exec"], ["pods"], ["nodes/proxy"]]),
                    "verbs": st.sampled_from([["get"], ["*"], ["create"], ["escalate", "bind"]])}), max_size=2))}
    if choice == "Secret":
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                "type": draw(st.sampled_from(["Opaque", "kubernetes.io/service-account-token"]))}
    if choice == "Ingress":
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
                "spec": draw(optional(tls=st.sampled_from([[], [{"hosts": ["a.example.com"]}]]),
                                      rules=st.just([{"host": "a.example.com"}])))}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


objects = st.one_of(workload(), workload(), other_object())


# --------------------------------------------------------------------------------------------
# Strategies: mutations, the ways real files are broken
# --------------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.lists(st.integers(0, 3), max_size=3), st.just({"unexpected": {"deeper": [1]}}),
    st.just([]), st.just({}), st.just([None]), st.just(["a", {"b": None}]),
)
UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12) | st.sampled_from(
    ["ünïcødé", "名前", "\u202eevil", "emoji-😀", "\u00a0", "a\u0301", "\ufeffbom", "line\nbreak", "tab\there",
     "\x85next", "\u2028sep"])
UNKNOWN_KEYS = st.sampled_from(["x-extra", "unknownField", "spec", "metadata", "containers", "name", "kind", "名前",
                                "<<", "~", "null", "true", "0", ""]) | st.text(max_size=6)
MUTATIONS = ("null", "wrong_type", "delete", "unknown_field", "huge_string", "unicode", "duplicate", "empty")


def slots(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in the tree, the root included."""
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from slots(value, path + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from slots(value, path + (index,))


def get(tree: Any, path: Sequence[Any]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    tree = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        places = list(slots(tree))
        # Mutations deep in the pod spec are the interesting ones: prefer longer paths.
        path = draw(st.sampled_from(sorted(places, key=len, reverse=True)[: max(8, len(places) // 2)])
                    | st.sampled_from(places))
        how = draw(st.sampled_from(MUTATIONS))
        value = get(tree, path)
        new: Any
        if how == "delete":
            if not path:
                continue
            del get(tree, path[:-1])[path[-1]]
            continue
        if how == "unknown_field" and isinstance(value, dict):
            value[draw(UNKNOWN_KEYS)] = copy.deepcopy(draw(JUNK | UNICODE))
            continue
        if how == "duplicate" and isinstance(value, list) and value:
            item = draw(st.sampled_from(value))
            value.append(item if draw(st.booleans()) else copy.deepcopy(item))  # shared objects dump as aliases
            continue
        if how == "null":
            new = None
        elif how == "wrong_type":
            new = copy.deepcopy(draw(JUNK))
        elif how == "huge_string":
            new = draw(st.sampled_from(["A", "ab ", "é", "- x: ", "{{ .Values.x }}", "#"])) * draw(
                st.integers(500, 20_000))
        elif how == "unicode":
            new = draw(UNICODE)
        elif how == "empty":
            new = copy.deepcopy(draw(st.sampled_from([{}, [], "", 0])))
        else:
            new = copy.deepcopy(draw(JUNK))
        if path:
            get(tree, path[:-1])[path[-1]] = new
        else:
            tree = new
    return tree


# --------------------------------------------------------------------------------------------
# Strategies: files
# --------------------------------------------------------------------------------------------

def dump_all(documents: list[Any], **options: Any) -> str:
    """yaml.safe_dump_all, with libyaml's emitter (several times faster)."""
    return yaml.dump_all(documents, Dumper=yaml.CSafeDumper, sort_keys=False, **options)  # type: ignore[no-any-return]


def dump(documents: list[Any], style: str) -> str:
    if style == "list":
        return dump_all([{"apiVersion": "v1", "kind": "List", "items": documents}], allow_unicode=True)
    if style == "json" and len(documents) == 1:
        return json.dumps(documents[0], indent=2, ensure_ascii=False) + "\n"
    return dump_all(documents, allow_unicode=style != "ascii", explicit_start=style == "explicit")


@st.composite
def manifest_file(draw: st.DrawFn, broken: bool, max_docs: int = 3) -> tuple[list[Any], str]:
    """(documents, YAML text). Sometimes an object appears twice (copy/paste duplicates)."""
    one = mutated(objects) if broken else objects
    if broken:
        one = one | objects  # some documents of a broken file are fine
    documents = draw(st.lists(one, min_size=1, max_size=max_docs))
    if draw(st.sampled_from([False] * 4 + [True])):
        documents.append(copy.deepcopy(documents[0]))
    style = draw(st.sampled_from(["multi", "multi", "explicit", "list", "json", "ascii"]))
    if style == "json" and len(documents) != 1:
        style = "multi"
    return documents, dump(documents, style)


def manifest_files(broken: bool, max_files: int = 3) -> st.SearchStrategy[list[tuple[list[Any], str]]]:
    return st.lists(manifest_file(broken), min_size=1, max_size=max_files)


any_files = st.booleans().flatmap(manifest_files)


# --------------------------------------------------------------------------------------------
# Scanning helpers
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def config_file() -> str:
    """An explicit empty config, so a .kaudit.yaml above the working directory cannot change results."""
    directory = tempfile.mkdtemp(prefix="kaudit-props-config-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "kaudit.yaml"
    path.write_text("fail-on: never\n", encoding="utf-8")
    return str(path)


@lru_cache(maxsize=1)
def builtin_rules() -> tuple[Rule, ...]:
    return tuple(load_builtin_rules())


@lru_cache(maxsize=1)
def report_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "reports" / "report.schema.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


class Tree:
    """Manifest files written to a fresh temporary directory."""

    def __init__(self, texts: Sequence[str], prefix: str = "") -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="kaudit-props-")
        self.root = Path(self._dir.name)
        self.paths: list[str] = []
        self.texts: dict[str, str] = {}
        for index, text in enumerate(texts):
            path = self.root / f"{prefix}m{index}.yaml"
            path.write_text(text, encoding="utf-8")
            self.paths.append(str(path))
            self.texts[str(path)] = text

    def __enter__(self) -> "Tree":
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()


def scan(paths: Sequence[str], per_file: bool = False) -> Report:
    return scan_manifests(ScanRequest(targets=tuple(paths), config=config_file(), fail_on="never",
                                      per_file=per_file))


def describe(finding: Finding) -> tuple[Any, ...]:
    """Everything a user sees of a finding."""
    location = finding.location
    suppressed = None if finding.suppressed is None else (finding.suppressed.by, finding.suppressed.reason)
    return (finding.rule, finding.fingerprint, finding.message, finding.severity.label, finding.resource,
            finding.container, finding.path_text, location.file, location.line, location.column, suppressed)


def show(findings: Sequence[Finding]) -> str:
    return "\n".join(f"  {f.rule} {f.resource.describe()} {f.path_text} @ {f.location.describe()}" for f in findings)


def texts_of(files: list[tuple[list[Any], str]]) -> list[str]:
    for _, text in files:
        note("---- file ----\n" + (text if len(text) < 4000 else text[:4000] + "…"))
    return [text for _, text in files]


# --------------------------------------------------------------------------------------------
# Minimal inputs of the violations found so far: run first (as explicit examples) on every run
# --------------------------------------------------------------------------------------------

def literal(*texts: str) -> list[tuple[list[Any], str]]:
    return [(list(yaml.safe_load_all(text)), text) for text in texts]


POD_WITH = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: team}}\nspec:\n  containers:\n{}"
# (a) the image-signature template looks the image up in a dict: a mapping or list `image` raised
# TypeError (unhashable) in unsigned-image, image-signed-by-untrusted-key, image-signature-for-another-subject
IMAGE_MAPPING = literal(POD_WITH.format("  - name: app\n    image: {repository: nginx, tag: '1.25'}\n"))
IMAGE_LIST = literal(POD_WITH.format("  - name: app\n    image: [nginx]\n"))
# (b) libyaml counts U+2028 / U+2029 / U+0085 inside a scalar as line breaks: every later finding's
# line is off by one from what editors, CI annotations and SARIF viewers show
LINE_SEPARATOR = literal(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: team\n"
    "  annotations: {note: \"first\u2028second\"}\nspec:\n  hostNetwork: true\n"
    "  containers:\n  - name: app\n    image: nginx:1.25\n")
# (b) a Pod without metadata: workload-not-isolated-ingress/-egress report metadata.labels, whose
# parent is missing too (the finding falls back to the object's first line)
NO_METADATA = literal("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n")
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n"
# (e) the same Namespace declared in two files: scanned together only the last one is evaluated
# (namespace-without-pod-security-enforcement once), alone each is (twice)
NAMESPACE_TWICE = literal(NAMESPACE, NAMESPACE)
# (e) the same object (kind, namespace, name) in two files, one annotated: together, the annotation
# of the FIRST copy suppresses the findings of both (or the second copy's annotation is ignored)
ANNOTATED = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n"
             "  annotations: {kaudit.io/ignore: '*'}\nspec:\n  containers:\n  - {name: app, image: nginx}\n")
PLAIN = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - {name: app, image: nginx}\n"
SAME_OBJECT_ANNOTATED_IN_ONE_FILE = literal(ANNOTATED, PLAIN)
SAME_OBJECT_ANNOTATED_IN_SECOND_FILE = literal(PLAIN, ANNOTATED)
# (e) the same object twice in ONE file (and once elsewhere): related findings joined across the two
# declarations into one, led by whichever fingerprint sorted first, which depends on the copies in
# other files (they number the fingerprints): shown at the first copy's lines scanned together, at
# the second's alone. Each declaration is judged, joined and reported at its own lines.
SAME_OBJECT_TWICE_IN_ONE_FILE = literal(PLAIN, PLAIN + "---\n" + PLAIN)


# --------------------------------------------------------------------------------------------
# (a) never a crash
# --------------------------------------------------------------------------------------------

@examples(2)
@given(any_files)
@example(IMAGE_MAPPING)
@example(IMAGE_LIST)
def test_a_no_crash_and_no_rule_error(files: list[tuple[list[Any], str]]) -> None:
    with Tree(texts_of(files)) as tree:
        report = scan(tree.paths)
    assert report.rule_errors == ()
    assert report.inputs.files == len(files)


# --------------------------------------------------------------------------------------------
# (b) paths exist (or name a missing field under an existing parent); locations inside the file
# --------------------------------------------------------------------------------------------

def _path_problem(body: Any, path: tuple[Any, ...]) -> Optional[str]:
    if not path:
        return "empty path"
    if not all(isinstance(part, (str, int)) and not isinstance(part, bool) for part in path):
        return f"path parts must be str or int: {path!r}"
    node = body
    for depth, part in enumerate(path):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif depth == 0 and not (isinstance(node, dict) and isinstance(part, str)):
            return f"its first element {part!r} is not a field of the object"
        else:
            return None  # a missing field under an existing parent
    return None


@examples(1.5)
@given(any_files)
@example(LINE_SEPARATOR)
@example(NO_METADATA)
def test_b_finding_paths_exist_and_locations_are_in_the_file(files: list[tuple[list[Any], str]]) -> None:
    with Tree(texts_of(files)) as tree:
        loaded = load_manifests(tree.paths)
        report = scan(tree.paths)
        texts = tree.texts
    by_ref: dict[Any, list[Any]] = {}
    for resource in loaded.resources:
        by_ref.setdefault(resource.ref, []).append(resource)
    problems = []
    for finding in report.findings:
        ref = finding.resource
        candidates = by_ref.get(ref, [])
        implied = ref.kind == "Namespace" and not candidates
        if not implied:
            assert candidates, f"finding on an object that is not in the input: {ref}"
            # with duplicate objects the finding belongs to one of them: it must fit at least one
            bodies = [r.body for r in candidates]
            # a missing top-level field (a Pod without `metadata`) names a missing field under the root,
            # which has no position of its own: the finding is then located at the document
            if all(deepest_position(b, finding.path) is None and (not finding.path or finding.path[0] in b)
                   for b in bodies):
                problems.append(f"{finding.rule} {ref.describe()}: path {finding.path_text!r} "
                                f"has no position in the object")
            elif all(_path_problem(b, finding.path) for b in bodies):
                problems.append(f"{finding.rule} {ref.describe()}: path {finding.path_text!r}: "
                                f"{_path_problem(bodies[0], finding.path)}")
        location = finding.location
        assert location.file in texts, f"{finding.rule}: location file {location.file!r} was not scanned"
        lines = texts[location.file].split("\n")
        if texts[location.file].endswith("\n"):
            lines.pop()
        if not (location.line is not None and 1 <= location.line <= len(lines)):
            problems.append(f"{finding.rule} {ref.describe()}: line {location.line} outside 1..{len(lines)}")
            continue
        text_there = lines[location.line - 1][(location.column or 1) - 1:]
        if not (location.column is not None and 1 <= location.column <= len(lines[location.line - 1]) + 1):
            problems.append(f"{finding.rule} {ref.describe()}: column {location.column} outside line "
                            f"{location.line} ({len(lines[location.line - 1])} characters)")
        elif not implied and not any(_points_at(text_there, r.body, finding.path) for r in candidates):
            problems.append(f"{finding.rule} {ref.describe()}: {location.describe()} does not point at "
                            f"{finding.path_text!r}: the line there is {lines[location.line - 1]!r}")
    assert not problems, "\n".join(problems)


def _points_at(text_there: str, body: Any, path: tuple[Any, ...]) -> bool:
    """The text at a finding's location starts with the deepest key of its path that exists (when
    that is a plain key): the location is where an editor should jump."""
    key: Any = None
    data = body
    for part in path:
        if position_of(data, part) is None:
            break
        key, data = part, data[part]
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_./-]+", key):
        return True  # list items, odd keys and the object's own line: nothing simple to compare
    return text_there.startswith((key, f'"{key}"', f"'{key}'"))


# --------------------------------------------------------------------------------------------
# (c) the JSON report validates against the published schema
# --------------------------------------------------------------------------------------------

@examples(1.5)
@given(any_files)
def test_c_json_report_validates_against_the_schema(files: list[tuple[list[Any], str]]) -> None:
    with Tree(texts_of(files)) as tree:
        report = scan(tree.paths)
    data = to_dict(report)
    json.loads(json.dumps(data, ensure_ascii=False))  # serialisable as the writer does it
    errors = sorted(report_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


# --------------------------------------------------------------------------------------------
# (d) suppressing one finding changes no other finding
# --------------------------------------------------------------------------------------------

def _annotatable(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    meta = document.get("metadata")
    return isinstance(meta, dict) and (meta.get("annotations") is None or isinstance(meta.get("annotations"), dict))


@examples(1.5)
@given(manifest_files(broken=False, max_files=2) | manifest_files(broken=True, max_files=2), st.integers(0, 1000))
@example(literal(PLAIN, PLAIN), 0)  # the same object in two files: suppress the first copy's finding
@example(literal(PLAIN, PLAIN), 1000)  # ... or the second copy's
@example(literal(PLAIN + "---\n" + PLAIN), 1000)  # the same object twice in one file: the second copy's
def test_d_suppressing_one_finding_changes_no_other(files: list[tuple[list[Any], str]], pick: int) -> None:
    # Every object as its own YAML document (no Lists), so the annotation can be added to it.
    documents = [[copy.deepcopy(d) for d in docs] for docs, _ in files]
    texts = [dump_all(docs, allow_unicode=True) for docs in documents]
    with Tree(texts) as tree:
        before = scan(tree.paths)
        loaded = load_manifests(tree.paths)
        paths = tree.paths
        before_root = str(tree.root)
    # Findings on objects of the input (not on namespaces only implied by them).
    declared = {r.ref for r in loaded.resources}
    candidates = [f for f in before.findings if f.suppressed is None and f.resource in declared]
    assume(candidates)
    chosen = candidates[pick % len(candidates)] if pick < 1000 else candidates[-1]
    # The object the finding is on: in its file, the declaration with its identity it was found in.
    in_file = [r for r in loaded.resources if r.origin.file == chosen.location.file]
    owner = next(r for r in in_file if r.ref == chosen.resource and r.origin.declaration == chosen.declaration)
    file_index = paths.index(owner.origin.file)
    objects_in_file = _object_documents(documents[file_index])
    assume(len(objects_in_file) == len(in_file))  # the test's view of the file agrees with the loader's
    document = objects_in_file[in_file.index(owner)]
    assume(_annotatable(document))
    meta = document["metadata"]
    annotations = meta.get("annotations") or {}
    assume(IGNORE not in annotations)
    meta["annotations"] = {**annotations, IGNORE: chosen.rule}
    texts[file_index] = dump_all(documents[file_index], allow_unicode=True)
    note(f"suppressing {chosen.rule} on {chosen.resource.describe()} in file {file_index} (path "
         f"{chosen.path_text})\n" + texts[file_index])
    with Tree(texts) as tree_after:
        after = scan(tree_after.paths)
        after_root = str(tree_after.root)
        in_file_after = load_manifests([tree_after.paths[file_index]]).resources
    assume(len(in_file_after) == len(in_file))
    annotated = in_file_after[in_file.index(owner)]  # the same declaration, its lines moved by the annotation
    assume(mapping_get(annotated.body, "metadata", "annotations", IGNORE) == chosen.rule)

    # Every finding and each finding joined to one (kaudit/relations.py), as its own fact with the
    # suppression of the finding it is reported in: suppressing a leader unjoins the others.
    Fact = tuple[str, str, str, Any, Any, str, Any]  # rule, fingerprint, message, severity, object, file, suppressed

    def facts(report: Report) -> list[Fact]:
        # a folder's namespace-level message names the folder: the two trees are two temporary folders
        root = before_root if report is before else after_root
        found: list[Fact] = []
        for f in report.findings:
            file = Path(f.location.file or "").name
            found.append((f.rule, f.fingerprint, f.message.replace(root, "<tree>"), f.severity, f.resource, file,
                          f.suppressed))
            found.extend((j.rule, j.fingerprint, j.message.replace(root, "<tree>"), j.severity, j.resource,
                          Path(j.location.file or "").name, f.suppressed) for j in f.joined)
        return found

    def changeable(fact: Fact) -> bool:
        """The facts the annotation may suppress: the rule's, on this object (its identity, its file)."""
        return fact[0] == chosen.rule and fact[4] == chosen.resource and fact[5] == Path(owner.origin.file or "").name

    assert any(f.fingerprint == chosen.fingerprint and f.location.file and f.suppressed is not None
               and Path(f.location.file).name == Path(chosen.location.file or "").name
               and f.suppressed.by == "annotation" for f in after.findings), "the chosen finding was not suppressed"

    def others(report: Report) -> Counter[Fact]:
        return Counter(fact for fact in facts(report) if not changeable(fact))

    assert Counter((f[1], f[5]) for f in facts(before)) == Counter((f[1], f[5]) for f in facts(after))
    changed_before, changed_after = others(before) - others(after), others(after) - others(before)
    assert not changed_before and not changed_after, f"before: {changed_before}\nafter: {changed_after}"


def mapping_get(tree: Any, *keys: str) -> Any:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _object_documents(documents: list[Any]) -> list[Any]:
    """The documents of a file that load_manifests turns into resources, in order."""
    from kaudit.sources.classify import ObjectDoc, classify_document

    found = []
    for document in documents:
        outcome = classify_document(document, "x.yaml")
        if isinstance(outcome, ObjectDoc):
            if outcome.items is not None:
                found.extend(item for item in outcome.items
                             if isinstance(classify_document(item, "x.yaml"), ObjectDoc)
                             and classify_document(item, "x.yaml").items is None)  # type: ignore[union-attr]
            else:
                found.append(document)
    return found


# --------------------------------------------------------------------------------------------
# (e) per-object rules: files alone or together give the same findings
# --------------------------------------------------------------------------------------------

@examples(1.5)
@given(st.booleans().flatmap(lambda broken: st.lists(manifest_file(broken), min_size=2, max_size=3)))
@example(NAMESPACE_TWICE)
@example(SAME_OBJECT_ANNOTATED_IN_ONE_FILE)
@example(SAME_OBJECT_ANNOTATED_IN_SECOND_FILE)
@example(SAME_OBJECT_TWICE_IN_ONE_FILE)
def test_e_per_object_rules_alone_or_together(files: list[tuple[list[Any], str]]) -> None:
    with Tree(texts_of(files)) as tree:
        together = scan(tree.paths, per_file=True)
        alone = [f for path in tree.paths for f in scan([path], per_file=True).findings]
    cross = {rule.id for rule in builtin_rules() if TEMPLATES[rule.template].cross_object}
    assert not {f.rule for f in together.findings} & cross

    def seen(finding: Finding) -> tuple[Any, ...]:
        # The fingerprint aside: scanned together, a second declaration of the same object gets one
        # told apart by its file (fingerprints are unique within a report), which alone it needs not.
        return describe(finding)[:1] + describe(finding)[2:]

    together_seen, alone_seen = Counter(map(seen, together.findings)), Counter(map(seen, alone))
    missing, extra = together_seen - alone_seen, alone_seen - together_seen
    assert not missing and not extra, (
        f"only when scanned together:\n{show([f for f in together.findings if seen(f) in missing])}\n"
        f"only when scanned alone:\n{show([f for f in alone if seen(f) in extra])}")
    assert len({f.fingerprint for f in together.findings}) == len(together.findings)


# --------------------------------------------------------------------------------------------
# (f) rule order does not matter
# --------------------------------------------------------------------------------------------

@examples(1.5)
@given(any_files, st.randoms(use_true_random=False))
def test_f_rule_order_does_not_matter(files: list[tuple[list[Any], str]], rng: random.Random) -> None:
    with Tree(texts_of(files)) as tree:
        resources = load_manifests(tree.paths).resources
    rules = list(builtin_rules())
    shuffled = rules[:]
    rng.shuffle(shuffled)
    first = run(rules, Inventory(resources))
    second = run(shuffled, Inventory(resources))
    assert Counter(map(describe, first.findings)) == Counter(map(describe, second.findings))
    assert sorted(first.errors) == sorted(second.errors)


# --------------------------------------------------------------------------------------------
# (g) fingerprints survive moved lines and reordered keys
# --------------------------------------------------------------------------------------------

def shuffled_keys(tree: Any, rng: random.Random) -> Any:
    if isinstance(tree, dict):
        items = list(tree.items())
        rng.shuffle(items)
        return {key: shuffled_keys(value, rng) for key, value in items}
    if isinstance(tree, list):
        return [shuffled_keys(value, rng) for value in tree]
    return tree


@examples(1.5)
@given(any_files, st.randoms(use_true_random=False),
       st.lists(st.sampled_from(["", "# moved", "#", "   ", "# ---", "# kaudit.io/ignore: *"]), max_size=6))
def test_g_fingerprints_survive_line_moves_and_key_reordering(files: list[tuple[list[Any], str]],
                                                             rng: random.Random, header: list[str]) -> None:
    original = texts_of(files)
    moved = []
    for documents, text in files:
        if text.lstrip().startswith("{") and len(documents) == 1:  # JSON: keep it JSON
            body = json.dumps(shuffled_keys(documents[0], rng), indent=2, ensure_ascii=False) + "\n"
        elif text.startswith("apiVersion: v1\nkind: List\n"):
            body = dump([shuffled_keys(d, rng) for d in documents], "list")
        else:
            body = dump_all([shuffled_keys(d, rng) for d in documents], allow_unicode=True)
        moved.append("".join(line + "\n" for line in header) + body)
    with Tree(original) as a, Tree(moved) as b:
        first, second = scan(a.paths), scan(b.paths)
    assert Counter(f.fingerprint for f in first.findings) == Counter(f.fingerprint for f in second.findings), (
        f"before:\n{show(first.findings)}\nafter:\n{show(second.findings)}")


# --------------------------------------------------------------------------------------------
# (d) as literal regressions: an annotation suppresses the findings of its own object only
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("annotated_first", [True, False], ids=["annotated-first", "annotated-second"])
def test_d_regression_annotation_on_one_copy_of_an_object_suppresses_only_that_copy(annotated_first: bool) -> None:
    # staging/ and prod/ often hold the same Deployment (same kind, namespace and name).
    texts = [ANNOTATED.replace("'*'", "run-as-root"), PLAIN]
    if not annotated_first:
        texts.reverse()
    with Tree(texts) as tree:
        report = scan(tree.paths)
        annotated_file = tree.paths[0 if annotated_first else 1]
    state = {(Path(f.location.file or "").name, f.suppressed is not None)
             for f in report.findings if f.rule == "run-as-root"}
    annotated_name = Path(annotated_file).name
    plain_name = "m1.yaml" if annotated_name == "m0.yaml" else "m0.yaml"
    assert state == {(annotated_name, True), (plain_name, False)}


# --------------------------------------------------------------------------------------------
# (h) spreading a scan over worker processes changes nothing in the report
# --------------------------------------------------------------------------------------------

@examples(1.0)
@given(st.booleans().flatmap(lambda broken: st.lists(manifest_file(broken), min_size=2, max_size=4)))
@example(NAMESPACE_TWICE)
@example(SAME_OBJECT_ANNOTATED_IN_SECOND_FILE)
def test_h_worker_processes_give_the_same_report(files: list[tuple[list[Any], str]]) -> None:
    with Tree(texts_of(files)) as tree:
        request = ScanRequest(targets=tuple(tree.paths), config=config_file(), fail_on="never", jobs=1)
        single = to_dict(scan_manifests(request))
        spread = to_dict(scan_on_workers(request, jobs=2))
    single.pop("generatedAt"), spread.pop("generatedAt")
    assert spread == single
