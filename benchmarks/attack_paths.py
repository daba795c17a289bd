"""kaudit's attack-path engine (issue 17) on a generated estate of manifests, against its budget.

    python benchmarks/attack_paths.py                 # 10,000 workloads, 5,000 RBAC objects
    python benchmarks/attack_paths.py --scale 3       # 30,000 and 15,000: headroom
    python benchmarks/attack_paths.py --keep DIR      # write the estate to DIR and keep it
    python benchmarks/attack_paths.py --full-scan     # also a whole `kaudit scan` with every rule

Budget (issue 17): 10,000 workloads and 5,000 RBAC objects, paths and choke points under 5 s and
500 MiB. Exit 1 over it. benchmarks/GRAPH_LIBS.md measured the graph libraries on a synthetic graph;
this measures kaudit itself: its manifest loader, its Inventory, kaudit.attack's graph build from
the analyzers (build_graph) and its search (paths and choke points), on manifests.

The estate (seeded, deterministic; written with PyYAML's CSafeDumper, one file per app as a
repository would hold it): ~40 namespaces (some enforcing Pod Security), 20-50 Nodes (a general pool
in three zones, tainted GPU, infra, control-plane and Windows nodes), workloads of every kind
(Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) with nodeSelector, required node affinity,
tolerations and a few nodeNames; their ServiceAccounts (automount off on some, on the pod or the
account; projected tokens for the API server and for another audience; legacy token Secrets, some
mounted), Services (mostly ClusterIP; LoadBalancer, NodePort, externalIPs; named targetPorts, some
naming a port the pods do not declare), Ingresses, hostNetwork/hostPort pods, ~3% container escapes
(privileged, SYS_ADMIN, SYS_MODULE, hostPID with SYS_PTRACE, hostPath of /, the kubelet's state, a
runtime socket, writable /etc) beside as many look-alikes that are not escapes, the kube-apiserver
static pod (NodeRestriction on), and the RBAC objects: mostly harmless, a few percent dangerous
(secrets, pods/exec, create pods and controllers, serviceaccounts/token, bind and escalate,
impersonate, nodes/proxy, CSR approval, `*`), including bindings of the built-in view/edit/admin.

Each measurement runs in a fresh subprocess (its own imports, its own peak RSS):
(a) load: kaudit's manifest loader (kaudit.sources.manifests.load_manifests, as
    benchmarks/analyzers.py) and the Inventory;
(b) engine: (a), then kaudit.attack.build.build_graph and kaudit.attack.search.search, timed apart
    (`--runs` processes, the median shown), and the process's RSS after each step; then the public
    kaudit.attack.analyse(inventory) in another process (its `seconds` is the search);
(c) the peak RSS (ru_maxrss) of (b)'s process, the loaded manifests included;
(d) whole processes: `kaudit paths DIR -f json -o FILE` and
    `kaudit scan DIR --rule attack-path-to-cluster-admin -f json --jobs 1` (and with every rule, with
    --full-scan): wall time and the process's own peak RSS (wait4). The scans must list no input errors
    and no rule that could not evaluate, and `kaudit paths` must find the paths search() found.
Over budget: search > 5 s, or (c) > 500 MiB. benchmarks/ATTACK_PATHS.md has the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

WORKLOADS = 10_000
RBAC_OBJECTS = 5_000
NAMESPACES = 40
BUDGET_SECONDS = 5.0
BUDGET_MIB = 500.0
SEED = 17

Doc = dict[str, Any]

# --- the estate ----------------------------------------------------------------------------------

WORDS = ("checkout", "cart", "catalog", "search", "payments", "ledger", "orders", "shipping", "auth", "profile",
         "reviews", "media", "notify", "billing", "pricing", "inventory", "recommend", "analytics", "gateway", "docs")
ENVS = ("prod", "stage")
SYSTEM_NAMESPACES = ("kube-system", "ingress-nginx", "monitoring", "cert-manager")
KIND_WEIGHTS = {"Deployment": 58, "StatefulSet": 10, "DaemonSet": 2, "Job": 8, "CronJob": 12, "Pod": 10}
COMPONENTS = ("api", "web", "worker", "consumer", "scheduler", "migrate", "cache", "exporter")

HARMLESS_RULES: tuple[Doc, ...] = (
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "podmonitors"], "verbs": ["*"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
)
# Dangerous in a namespace (a Role, or a ClusterRole a RoleBinding grants there).
DANGEROUS_NAMESPACED: tuple[Doc, ...] = (
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "update", "patch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
)
# Dangerous cluster-wide (a ClusterRole a ClusterRoleBinding grants): what real operators hold.
DANGEROUS_CLUSTER: tuple[tuple[Doc, ...], ...] = (
    ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},),
    ({"apiGroups": [""], "resources": ["nodes", "nodes/proxy", "nodes/metrics"], "verbs": ["get", "list"]},),
    ({"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "list", "create"]},),
    ({"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},),
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},),
    ({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
      "verbs": ["bind", "escalate", "update"]},
     {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create", "get"]}),
    ({"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
     {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
      "resourceNames": ["kubernetes.io/kube-apiserver-client"]}),
    ({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},),
    ({"apiGroups": ["apps"], "resources": ["daemonsets", "deployments"], "verbs": ["get", "list", "patch"]},),
)
ESCAPES = ("privileged", "privileged", "privileged", "sys-admin", "sys-module", "ptrace", "host-root",
           "kubelet-dir", "containerd-sock", "docker-sock", "etc-writable")
LOOK_ALIKES = ("var-log-ro", "net-admin", "host-pid-only", "not-privileged", "etc-read-only", "host-ipc")


def ns_names() -> list[str]:
    teams = [f"{word}-{env}" for env in ENVS for word in WORDS]
    return teams[:NAMESPACES - len(SYSTEM_NAMESPACES)] + list(SYSTEM_NAMESPACES)


def quotas(scale: int) -> dict[str, int]:
    rbac = RBAC_OBJECTS * scale
    quota = {"workloads": WORKLOADS * scale, "ClusterRole": rbac * 8 // 100, "ClusterRoleBinding": rbac * 12 // 100,
             "Role": rbac * 35 // 100}
    quota["RoleBinding"] = rbac - quota["ClusterRole"] - quota["ClusterRoleBinding"] - quota["Role"]
    return quota


class Estate:
    """The generated cluster, file by file (relative path -> its documents)."""

    def __init__(self, scale: int = 1, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.scale = scale
        self.quota = quotas(scale)
        self.files: dict[str, list[Doc]] = {}
        self.counts: Counter[str] = Counter()
        self.facts: Counter[str] = Counter()  # what was planted: escapes, entry points, dangerous grants
        self.namespaces = ns_names()
        self.accounts: dict[str, list[str]] = {ns: [] for ns in self.namespaces}
        self.cluster_roles: list[tuple[str, bool]] = []  # (name, dangerous)

    def add(self, path: str, doc: Doc) -> Doc:
        self.files.setdefault(path, []).append(doc)
        self.counts[doc["kind"]] += 1
        return doc

    # the cluster --------------------------------------------------------------------------------

    def generate(self) -> "Estate":
        self.namespace_objects()
        self.nodes()
        self.control_plane()
        per_ns = self.workload_plan()
        for ns in self.namespaces:
            self.namespace_apps(ns, per_ns[ns])
        self.cluster_rbac()
        for ns in self.namespaces:
            self.namespace_rbac(ns)
        self.cluster_bindings()
        return self

    def namespace_objects(self) -> None:
        for i, ns in enumerate(self.namespaces):
            labels = {"kubernetes.io/metadata.name": ns, "team": ns.split("-")[0]}
            if ns not in SYSTEM_NAMESPACES:
                level = ("baseline", "restricted", None, None, None)[i % 5]
                if level:
                    labels["pod-security.kubernetes.io/enforce"] = level
                elif i % 3 == 0:  # warn only: admits privileged pods (a look-alike of enforce)
                    labels["pod-security.kubernetes.io/warn"] = "baseline"
            if ns == "kube-system":
                continue  # exists in every cluster
            self.add("cluster/namespaces.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": ns, "labels": labels}})

    def nodes(self) -> None:
        count = min(50, 20 + 16 * self.scale)
        control_plane = ("node-role.kubernetes.io/control-plane", None)
        pools = [("general", None)] * (count - 11) + [("gpu", ("nvidia.com/gpu", "present"))] * 3 + \
            [("infra", ("dedicated", "infra"))] * 4 + [("control-plane", control_plane)] * 3 + \
            [("windows", ("os", "windows"))]
        for i, (pool, taint) in enumerate(pools):
            name = "cp-1" if pool == "control-plane" and i == count - 4 else f"{pool}-{i:02d}"
            labels = {"kubernetes.io/os": "windows" if pool == "windows" else "linux", "kubernetes.io/arch": "amd64",
                      "topology.kubernetes.io/zone": f"eu-west-1{'abc'[i % 3]}", "node.example.com/pool": pool,
                      "node.kubernetes.io/instance-type": self.rng.choice(["m6i.xlarge", "m6i.2xlarge", "c6i.4xlarge"])}
            if pool == "gpu":
                labels["accelerator"] = "nvidia"
            if pool == "control-plane":
                labels["node-role.kubernetes.io/control-plane"] = ""
            spec: Doc = {"podCIDR": f"10.244.{i}.0/24", "providerID": f"aws:///eu-west-1a/i-{i:017x}"}
            if taint:
                key, value = taint
                spec["taints"] = [{"key": key, **({"value": value} if value else {}), "effect": "NoSchedule"}]
            self.add("cluster/nodes.yaml", {"apiVersion": "v1", "kind": "Node",
                                            "metadata": {"name": name, "labels": labels}, "spec": spec})

    def control_plane(self) -> None:
        # The kube-apiserver's static pod where kubeadm's kubelet reads it: NodeRestriction on.
        self.add("nodes/cp-1/etc/kubernetes/manifests/kube-apiserver.yaml", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-apiserver-cp-1", "namespace": "kube-system",
                         "labels": {"component": "kube-apiserver", "tier": "control-plane"}},
            "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical", "containers": [{
                "name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.4",
                "command": ["kube-apiserver", "--advertise-address=10.0.0.10", "--authorization-mode=Node,RBAC",
                            "--enable-admission-plugins=NodeRestriction",
                            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                            "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
                            "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key"],
                "volumeMounts": [{"name": "k8s-certs", "mountPath": "/etc/kubernetes/pki", "readOnly": True}]}],
                "volumes": [{"name": "k8s-certs", "hostPath": {"path": "/etc/kubernetes/pki",
                                                               "type": "DirectoryOrCreate"}}]}})
        self.counts["workloads"] += 1

    def workload_plan(self) -> dict[str, int]:
        total = self.quota["workloads"] - 1  # the API server's static pod is one
        system = {"kube-system": 12 * self.scale, "ingress-nginx": 2, "monitoring": 30 * self.scale,
                  "cert-manager": 3}
        rest = total - sum(system.values())
        teams = [ns for ns in self.namespaces if ns not in system]
        plan = {ns: rest // len(teams) + (1 if i < rest % len(teams) else 0) for i, ns in enumerate(teams)}
        plan.update(system)
        return plan

    # workloads ----------------------------------------------------------------------------------

    def namespace_apps(self, ns: str, workloads: int) -> None:
        rng = self.rng
        left, index = workloads, 0
        legacy = rng.random() < 0.4  # a legacy token Secret in 40% of namespaces, one each
        while left > 0:
            size = min(left, rng.choice((1, 1, 2, 2, 3, 4, 6)))
            app = f"{WORDS[index % len(WORDS)]}{index // len(WORDS) or ''}-{rng.choice(COMPONENTS)}"
            if ns in SYSTEM_NAMESPACES:
                app = f"{ns.split('-')[0]}-{index}"
            if self.app(ns, app, size, first=index == 0, legacy_secret=legacy):
                legacy = False
            left -= size
            index += 1
        self.add(f"{ns}/policies.yaml", {
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})

    def app(self, ns: str, app: str, size: int, first: bool, legacy_secret: bool) -> bool:
        """One app's objects (its ServiceAccount, workloads, Services...); True if it has a token Secret."""
        rng = self.rng
        path = f"{ns}/{app}.yaml"
        account = "default" if rng.random() < 0.12 else app
        if account != "default":
            sa: Doc = {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": account, "namespace": ns, "labels": {"app.kubernetes.io/name": app}}}
            if rng.random() < 0.25:
                sa["automountServiceAccountToken"] = False
            self.add(path, sa)
            self.accounts[ns].append(account)
        token_secret = None
        if legacy_secret and account != "default":
            token_secret = f"{account}-token"
            self.add(path, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                            "metadata": {"name": token_secret, "namespace": ns,
                                         "annotations": {"kubernetes.io/service-account.name": account}}})
            self.facts["token Secrets"] += 1
        if rng.random() < 0.15:  # a look-alike: an Opaque Secret with the annotation is no token
            self.add(path, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": {"name": f"{app}-credentials", "namespace": ns,
                                         "annotations": {"kubernetes.io/service-account.name": account}},
                            "data": {"password": "cGxhY2Vob2xkZXI="}})
        if rng.random() < 0.3:
            self.add(path, {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"{app}-config", "namespace": ns},
                            "data": {"LOG_LEVEL": "info", "FEATURE_FLAGS": "a,b,c"}})
        served: list[str] = []  # components that serve (a Service may select them)
        for w in range(size):
            kind = "DaemonSet" if ns in ("kube-system", "monitoring") and w == 0 and first else \
                rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
            component = COMPONENTS[w % len(COMPONENTS)]
            named_port = rng.random() < 0.85
            pod = self.pod_spec(ns, app, component, account, kind, named_port,
                                token_secret if w == 0 and rng.random() < 0.4 else None)
            self.add(path, self.workload(kind, ns, f"{app}-{component}" if w else app, app, component, pod))
            self.counts["workloads"] += 1
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
                served.append(component)
        for component in served[:2]:
            if rng.random() < 0.7:
                self.service(path, ns, app, component)
        return token_secret is not None

    def workload(self, kind: str, ns: str, name: str, app: str, component: str, pod: Doc) -> Doc:
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component,
                  "app.kubernetes.io/part-of": ns.split("-")[0]}
        template = {"metadata": {"labels": labels, "annotations": {"kubectl.kubernetes.io/default-container": "app"}},
                    "spec": pod}
        meta = {"name": name, "namespace": ns, "labels": labels}
        if kind == "Pod":
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "labels": labels}, "spec": pod}
        if kind in ("Job", "CronJob"):
            pod["restartPolicy"] = "OnFailure"
            job = {"backoffLimit": 3, "ttlSecondsAfterFinished": 3600, "template": template}
            if kind == "Job":
                return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job}
            return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                    "spec": {"schedule": f"{self.rng.randrange(60)} */6 * * *", "concurrencyPolicy": "Forbid",
                             "jobTemplate": {"spec": job}}}
        spec: Doc = {"selector": {"matchLabels": {"app.kubernetes.io/name": app,
                                                  "app.kubernetes.io/component": component}}, "template": template}
        if kind == "Deployment":
            spec = {"replicas": self.rng.choice((1, 2, 3, 6)), "revisionHistoryLimit": 5, **spec}
        elif kind == "StatefulSet":
            spec = {"serviceName": app, "replicas": 3, **spec, "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]}
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}

    def pod_spec(self, ns: str, app: str, component: str, account: str, kind: str, named_port: bool,
                 token_secret: Optional[str]) -> Doc:
        rng = self.rng
        image = f"registry.example.com/{ns.split('-')[0]}/{app}:{rng.randrange(1, 9)}.{rng.randrange(30)}.0"
        container: Doc = {
            "name": "app", "image": image,
            "ports": [{"name": "http" if named_port else "web", "containerPort": 8080},
                      {"name": "metrics", "containerPort": 9090}],
            "env": [{"name": "APP_NAME", "value": app},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        pod: Doc = {"containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}
        if account != "default" or rng.random() < 0.5:
            pod["serviceAccountName"] = account
        if rng.random() < 0.2:
            pod["initContainers"] = [{"name": "migrate", "image": image, "command": ["/app/migrate", "--up"]}]
        if rng.random() < 0.25:
            pod["containers"].append({"name": "proxy", "image": "registry.example.com/envoy:1.31.2",
                                      "ports": [{"name": "admin", "containerPort": 15000}]})
        # the token
        roll = rng.random()
        if roll < 0.15:
            pod["automountServiceAccountToken"] = False
        elif roll < 0.20:
            pod["automountServiceAccountToken"] = True
        elif roll < 0.24:  # a projected token: for the API server, or for another audience (no API credential)
            audience = rng.choice(("https://kubernetes.default.svc.cluster.local", None, "vault", "sts.amazonaws.com"))
            token: Doc = {"path": "token", "expirationSeconds": 3600}
            if audience:
                token["audience"] = audience
            pod["automountServiceAccountToken"] = False
            pod["volumes"].append({"name": "api-token", "projected": {"sources": [{"serviceAccountToken": token}]}})
            container["volumeMounts"].append({"name": "api-token", "mountPath": "/var/run/secrets/tokens"})
            self.facts["projected tokens"] += 1
        if token_secret:
            pod["volumes"].append({"name": "legacy-token", "secret": {"secretName": token_secret}})
            container["volumeMounts"].append({"name": "legacy-token", "mountPath": "/var/run/secrets/legacy",
                                              "readOnly": True})
            self.facts["mounted token Secrets"] += 1
        # scheduling
        roll = rng.random()
        if kind == "DaemonSet":
            if roll < 0.6:
                pod["tolerations"] = [{"operator": "Exists"}]
        elif roll < 0.10:
            pod["nodeSelector"] = {"node.example.com/pool": "general"}
        elif roll < 0.14:
            pod["nodeSelector"] = {"accelerator": "nvidia"}
            pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        elif roll < 0.18:
            pod["nodeSelector"] = {"node.example.com/pool": "infra"}
            pod["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]
        elif roll < 0.23:
            zones = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a", "eu-west-1b"]}
            pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zones]}]}}}
        elif roll < 0.26:  # tolerates the GPU taint without asking for GPU nodes: may land anywhere
            pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
        elif roll < 0.27:
            pod["nodeSelector"] = {"kubernetes.io/os": "windows"}
            pod["tolerations"] = [{"key": "os", "value": "windows", "effect": "NoSchedule"}]
        elif roll < 0.28 and kind == "Pod":
            pod["nodeName"] = f"general-{rng.randrange(5):02d}"
        # exposure on the node
        roll = rng.random()
        if roll < 0.01 or (kind == "DaemonSet" and roll < 0.3):
            pod["hostNetwork"] = True
            self.facts["hostNetwork"] += 1
        elif roll < 0.015:
            container["ports"][0]["hostPort"] = 8080
            self.facts["hostPort"] += 1
        # escapes and their look-alikes
        roll = rng.random()
        if roll < 0.03 or (kind == "DaemonSet" and roll < 0.25):
            self.escape(pod, container, rng.choice(ESCAPES))
            self.facts["escapes"] += 1
        elif roll < 0.06:
            self.escape(pod, container, rng.choice(LOOK_ALIKES))
            self.facts["escape look-alikes"] += 1
        return pod

    def escape(self, pod: Doc, container: Doc, how: str) -> None:
        context = container["securityContext"]

        def host_path(path: str, read_only: bool) -> None:
            pod["volumes"].append({"name": "host", "hostPath": {"path": path}})
            container["volumeMounts"].append({"name": "host", "mountPath": "/host", "readOnly": read_only})

        if how == "privileged":
            context.update(privileged=True, allowPrivilegeEscalation=True)
        elif how == "not-privileged":
            context["privileged"] = False
        elif how in ("sys-admin", "sys-module", "net-admin"):
            context["capabilities"] = {"add": [how.upper().replace("-", "_")], "drop": ["ALL"]} if how != "net-admin" \
                else {"add": ["NET_ADMIN", "NET_RAW"]}
        elif how == "ptrace":
            pod["hostPID"] = True
            context["capabilities"] = {"add": ["SYS_PTRACE"]}
        elif how == "host-pid-only":
            pod["hostPID"] = True
        elif how == "host-ipc":
            pod["hostIPC"] = True
        else:
            path, read_only = {"host-root": ("/", True), "kubelet-dir": ("/var/lib/kubelet", True),
                               "containerd-sock": ("/run/containerd/containerd.sock", False),
                               "docker-sock": ("/var/run/docker.sock", False), "etc-writable": ("/etc", False),
                               "var-log-ro": ("/var/log", True), "etc-read-only": ("/etc/ssl/certs", True)}[how]
            host_path(path, read_only)

    def service(self, path: str, ns: str, app: str, component: str) -> None:
        rng = self.rng
        roll = rng.random()
        kind = "LoadBalancer" if roll < 0.05 else "NodePort" if roll < 0.08 else "ClusterIP"
        selector = {"app.kubernetes.io/name": app}
        if rng.random() < 0.6:
            selector["app.kubernetes.io/component"] = component
        named = rng.random() < 0.35
        port = {"name": "http", "port": 80, "targetPort": "http" if named else 8080, "protocol": "TCP"}
        spec: Doc = {"type": kind, "selector": selector, "ports": [port]}
        if kind == "ClusterIP" and rng.random() < 0.005:
            spec["externalIPs"] = [f"203.0.113.{rng.randrange(1, 250)}"]
            self.facts["externalIPs"] += 1
        name = app if component == COMPONENTS[0] else f"{app}-{component}"
        self.add(path, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                        "spec": spec})
        if kind != "ClusterIP":
            self.facts[f"{kind} Services"] += 1
        elif rng.random() < 0.08:
            self.add(path, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                            "metadata": {"name": name, "namespace": ns,
                                         "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
                            "spec": {"ingressClassName": "nginx",
                                     "tls": [{"hosts": [f"{name}.{ns}.example.com"], "secretName": f"{name}-tls"}],
                                     "rules": [{"host": f"{name}.{ns}.example.com", "http": {"paths": [
                                         {"path": "/", "pathType": "Prefix",
                                          "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}})
            self.facts["Ingresses"] += 1

    # RBAC ---------------------------------------------------------------------------------------

    def rules(self, dangerous: bool, cluster: bool) -> list[Doc]:
        rng = self.rng
        found = [dict(rule) for rule in rng.sample(HARMLESS_RULES, rng.randint(1, 3))]
        if dangerous:
            found += [dict(rule) for rule in rng.choice(DANGEROUS_CLUSTER)] if cluster else \
                [dict(rng.choice(DANGEROUS_NAMESPACED))]
        elif rng.random() < 0.05:  # a look-alike: get on named Secrets that hold no token
            found.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                          "resourceNames": [f"tls-{rng.randrange(100)}"]})
        return found

    def cluster_rbac(self) -> None:
        for i in range(self.quota["ClusterRole"]):
            dangerous = i % 25 == 3  # 4%
            name = f"{self.rng.choice(WORDS)}-{'operator' if dangerous else 'reader'}-{i}"
            self.add("cluster/clusterroles.yaml", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "platform"}},
                "rules": self.rules(dangerous, cluster=True)})
            self.cluster_roles.append((name, dangerous))
            self.facts["dangerous ClusterRoles"] += dangerous

    def subject(self, ns: str) -> Doc:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            return {"kind": "Group", "name": rng.choice((f"system:serviceaccounts:{ns}", f"team-{ns.split('-')[0]}")),
                    "apiGroup": "rbac.authorization.k8s.io"}
        if roll < 0.12:
            return {"kind": "User", "name": f"{rng.choice(WORDS)}@example.com", "apiGroup": "rbac.authorization.k8s.io"}
        accounts = self.accounts[ns] or ["default"]
        name = rng.choice(accounts) if roll < 0.97 else "removed-account"  # a stale binding
        return {"kind": "ServiceAccount", "name": name, "namespace": ns}

    def namespace_rbac(self, ns: str) -> None:
        position = self.namespaces.index(ns)
        roles = self.quota["Role"] // len(self.namespaces) + (position < self.quota["Role"] % len(self.namespaces))
        bindings = self.quota["RoleBinding"] // len(self.namespaces) + \
            (position < self.quota["RoleBinding"] % len(self.namespaces))
        names = []
        for r in range(roles):
            dangerous = (position * roles + r) % 25 == 7  # 4%
            name = f"{self.rng.choice(COMPONENTS)}-{r}"
            names.append(name)
            self.add(f"{ns}/rbac.yaml", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                         "metadata": {"name": name, "namespace": ns},
                                         "rules": self.rules(dangerous, cluster=False)})
            self.facts["dangerous Roles"] += dangerous
        harmless = [name for name, dangerous in self.cluster_roles if not dangerous]
        risky = [name for name, dangerous in self.cluster_roles if dangerous]
        for b in range(bindings):
            roll = self.rng.random()
            if roll < 0.70 and names:
                ref = ("Role", names[b % len(names)])
            elif roll < 0.82:
                ref = ("ClusterRole", self.rng.choice(harmless))
            elif roll < 0.94:
                ref = ("ClusterRole", "view")
            elif roll < 0.97:
                ref = ("ClusterRole", "edit")
            elif roll < 0.98:
                ref = ("ClusterRole", "admin")
            else:  # a cluster-wide operator role granted in one namespace only
                ref = ("ClusterRole", self.rng.choice(risky))
            if ref[1] in ("edit", "admin") or ref[1] in risky:
                self.facts[f"RoleBindings to {'a dangerous ClusterRole' if ref[1] in risky else ref[1]}"] += 1
            self.add(f"{ns}/rbac.yaml", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": f"{ref[1]}-{b}", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref[0], "name": ref[1]},
                "subjects": [self.subject(ns) for _ in range(self.rng.choice((1, 1, 1, 2)))]})

    def cluster_bindings(self) -> None:
        harmless = [name for name, dangerous in self.cluster_roles if not dangerous]
        risky = [name for name, dangerous in self.cluster_roles if dangerous]
        system = [ns for ns in SYSTEM_NAMESPACES]
        for b in range(self.quota["ClusterRoleBinding"]):
            dangerous = b % 40 == 5  # 2.5%: operators, mostly in the system namespaces
            role = self.rng.choice(risky) if dangerous else \
                self.rng.choice(harmless + ["view", "system:aggregate-to-view", "system:auth-delegator"])
            ns = self.rng.choice(system) if dangerous and self.rng.random() < 0.7 else self.rng.choice(self.namespaces)
            self.facts["dangerous ClusterRoleBindings"] += dangerous
            self.add("cluster/clusterrolebindings.yaml", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{b}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [self.subject(ns)]})

    # output -------------------------------------------------------------------------------------

    def write(self, out: Path) -> int:
        import yaml

        written = 0
        for relative, docs in sorted(self.files.items()):
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8") as stream:
                yaml.dump_all(docs, stream, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)
            written += target.stat().st_size
        return written

    def summary(self) -> dict[str, int]:
        rbac = sum(self.counts[k] for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"))
        return {"workloads": self.counts["workloads"], "RBAC objects": rbac, "files": len(self.files),
                **{k: v for k, v in sorted(self.counts.items()) if k != "workloads"},
                **dict(sorted(self.facts.items()))}


def generate(out: Path, scale: int = 1, seed: int = SEED) -> dict[str, int]:
    estate = Estate(scale, seed).generate()
    size = estate.write(out)
    return {**estate.summary(), "bytes": size}


# --- the measurements (each in its own process) --------------------------------------------------

def rss_mib() -> float:
    """The process's resident set now (not its peak)."""
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load(tree: str) -> tuple[Any, dict[str, Any]]:
    """kaudit's manifest loader and Inventory, as benchmarks/analyzers.py uses them."""
    sys.path.insert(0, str(REPO))
    started = time.perf_counter()
    from kaudit.inventory import Inventory
    from kaudit.sources.manifests import load_manifests

    scan = load_manifests([tree])
    loaded = time.perf_counter()
    inventory = Inventory(scan.resources)
    done = time.perf_counter()
    return inventory, {"resources": len(scan.resources), "input_errors": len(scan.inputs.errors),
                       "load_s": loaded - started, "inventory_s": done - loaded, "rss_after_load_mib": rss_mib()}


def measure_load(tree: str) -> dict[str, Any]:
    _, figures = load(tree)
    return {**figures, "peak_mib": peak_mib()}


def measure_engine(tree: str) -> dict[str, Any]:
    from kaudit.attack.build import build_graph
    from kaudit.attack.search import search

    inventory, figures = load(tree)
    started = time.perf_counter()
    graph = build_graph(inventory)
    built = time.perf_counter()
    figures["rss_after_build_mib"] = rss_mib()
    analysis = search(graph)
    searched = time.perf_counter()
    entries = sum(1 for node in graph.nodes.values() if node.entry is not None)
    reached = {path.source for path in analysis.paths}
    top = [{"fix": choke.edge.fix, "cuts": choke.cuts} for choke in analysis.choke_points[:3]]
    return {**figures, "build_s": built - started, "search_s": searched - built,
            "search_seconds_field": analysis.seconds,
            "rss_after_search_mib": rss_mib(), "peak_mib": peak_mib(), "nodes": len(graph.nodes),
            "edges": len(graph.edges), "entries": entries, "entries_with_path": len(reached),
            "paths": len(analysis.paths), "crowns_reached": len({path.target for path in analysis.paths}),
            "mean_steps": sum(len(p.steps) for p in analysis.paths) / len(analysis.paths) if analysis.paths else 0,
            "choke_points": len(analysis.choke_points), "top_choke_points": top}


def measure_analyse(tree: str) -> dict[str, Any]:
    from kaudit.attack import analyse

    inventory, figures = load(tree)
    started = time.perf_counter()
    analysis = analyse(inventory)
    return {**figures, "analyse_s": time.perf_counter() - started, "seconds_field": analysis.seconds,
            "paths": len(analysis.paths), "peak_mib": peak_mib()}


MEASURES: dict[str, Callable[[str], dict[str, Any]]] = {
    "load": measure_load, "engine": measure_engine, "analyse": measure_analyse}


def in_fresh_process(what: str, tree: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--measure", what, str(tree)], capture_output=True, text=True,
                          cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"--measure {what} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def whole_process(command: list[str], output: Optional[Path] = None) -> tuple[float, float, int, str]:
    """Wall time, the process's own peak RSS (wait4: this child alone), its exit code, its stderr tail."""
    started = time.perf_counter()
    with open(output or os.devnull, "wb") as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-600:]
    return seconds, usage.ru_maxrss / 1024, process.returncode, tail


def kaudit(*args: str) -> list[str]:
    return [sys.executable, "-m", "kaudit.cli", *args]


# --- the report ----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="K x (10,000 workloads, 5,000 RBAC objects)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--keep", type=Path, help="write the estate here (created) and keep it")
    parser.add_argument("--runs", type=int, default=3,
                        help="engine measurements (fresh processes); the median is shown")
    parser.add_argument("--full-scan", action="store_true", help="also time `kaudit scan` with every rule")
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("tree", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(MEASURES[args.measure](args.tree)))
        return
    if args.scale < 1 or args.runs < 1:
        parser.error("--scale and --runs must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="kaudit-attack-paths-"))
    tree = args.keep or work / "estate"
    try:
        if args.keep and args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep}: not empty")
        started = time.perf_counter()
        counts = generate(tree, args.scale, args.seed)
        generated = time.perf_counter() - started
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores), "
              f"Python {sys.version.split()[0]}")
        over = report(tree, counts, generated, work, args)
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if over:
        print(f"\nOVER BUDGET: {'; '.join(over)}")
        sys.exit(1)


def report(tree: Path, counts: dict[str, int], generated: float, work: Path, args: argparse.Namespace) -> list[str]:
    over: list[str] = []
    print(f"estate (seed {args.seed}, scale {args.scale}): {counts['workloads']:,} workloads, "
          f"{counts['RBAC objects']:,} RBAC objects, {counts['files']:,} files, {counts['bytes'] / 2**20:.1f} MiB, "
          f"generated in {generated:.1f} s")
    print("  " + ", ".join(f"{v:,} {k}" for k, v in counts.items() if k not in ("workloads", "RBAC objects", "files",
                                                                               "bytes")))
    print("\n| measurement (each a fresh process) | wall time | memory | result |\n|---|---|---|---|")
    loaded = in_fresh_process("load", tree)
    print(f"| (a) load {loaded['resources']:,} objects + Inventory | {loaded['load_s']:.2f} + "
          f"{loaded['inventory_s']:.2f} s | peak {loaded['peak_mib']:.0f} MiB |")
    if loaded["input_errors"]:
        over.append(f"the loader reported {loaded['input_errors']} input errors")
    runs = [in_fresh_process("engine", tree) for _ in range(args.runs)]
    engine = sorted(runs, key=lambda run: run.get("search_s", 0))[len(runs) // 2]  # the median run
    spread = "" if len(runs) < 2 else \
        f" (median of {len(runs)}; {min(r['search_s'] for r in runs):.2f}-{max(r['search_s'] for r in runs):.2f})"
    build_spread = "" if not spread else \
        f" ({min(r['build_s'] for r in runs):.2f}-{max(r['build_s'] for r in runs):.2f})"
    print(f"| (b) build_graph: {engine['nodes']:,} nodes, {engine['edges']:,} edges | "
          f"{engine['build_s']:.2f} s{build_spread} | RSS {engine['rss_after_load_mib']:.0f} MiB after load, "
          f"{engine['rss_after_build_mib']:.0f} after build |")
    print(f"| (b) **search: paths + choke points** (budget {BUDGET_SECONDS:.0f} s) | "
          f"**{engine['search_s']:.2f} s**{spread} (AttackAnalysis.seconds {engine['search_seconds_field']:.2f}) | "
          f"RSS {engine['rss_after_search_mib']:.0f} MiB after |")
    print(f"| (b) build + search | {engine['build_s'] + engine['search_s']:.2f} s | |")
    print(f"| (c) **peak RSS of (b)'s process**, load included (budget {BUDGET_MIB:.0f} MiB) | | "
          f"**{engine['peak_mib']:.0f} MiB** |")
    analysed = in_fresh_process("analyse", tree)
    print(f"| analyse(inventory), the public entry point | {analysed['analyse_s']:.2f} s (seconds "
          f"{analysed['seconds_field']:.2f}) | peak {analysed['peak_mib']:.0f} MiB |")
    if engine["search_s"] > BUDGET_SECONDS:
        over.append(f"paths + choke points {engine['search_s']:.2f} s > {BUDGET_SECONDS:.0f} s")
    if max(engine["peak_mib"], analysed["peak_mib"]) > BUDGET_MIB:
        over.append(f"peak RSS {max(engine['peak_mib'], analysed['peak_mib']):.0f} MiB > {BUDGET_MIB:.0f} MiB")
    output = work / "paths.json"
    seconds, peak, code, tail = whole_process(kaudit("paths", str(tree), "-f", "json", "-o", str(output)))
    if code not in (0, 1, 2):  # 0: no path, 1: paths, 2: the scan could not see everything
        over.append(f"kaudit paths exited {code}: {tail.strip()}")
    else:
        found = json.loads(output.read_text())
        print(f"| (d) `kaudit paths DIR -f json -o FILE`, whole process (exit {code}) | {seconds:.2f} s | "
              f"peak {peak:.0f} MiB | {len(found['paths']):,} paths, {len(found['chokePoints']):,} choke points, "
              f"{len(found['nodes']):,} nodes, {len(found['edges']):,} edges, {output.stat().st_size / 2**20:.0f} MiB "
              f"of JSON |")
        if len(found["paths"]) != engine["paths"]:
            over.append(f"kaudit paths found {len(found['paths'])} paths, search() {engine['paths']}")
    scans = [("attack-path rule only", ["--rule", "attack-path-to-cluster-admin"])]
    if args.full_scan:
        scans.append(("every rule", []))
    for label, extra in scans:
        output = work / "scan.json"
        seconds, peak, code, tail = whole_process(kaudit("scan", str(tree), *extra, "--jobs", "1", "-f", "json", "-o",
                                                         str(output), "--fail-on", "never"))
        if code != 0:
            over.append(f"kaudit scan ({label}) exited {code}: {tail.strip()}")
            continue
        scanned = json.loads(output.read_text())
        errors = scanned["inputs"]["errors"]
        if errors:
            over.append(f"kaudit scan lists input errors: {errors[:3]}")
        findings = Counter(f.get("rule") for f in scanned["findings"])
        rule_errors = len(scanned.get("ruleErrors") or [])
        print(f"| (d) `kaudit scan DIR` ({label}, --jobs 1, JSON) | {seconds:.2f} s | peak {peak:.0f} MiB | "
              f"{len(scanned['findings']):,} findings "
              f"({findings.get('attack-path-to-cluster-admin', 0):,} attack paths), "
              f"{len(errors)} input errors, {rule_errors} rule errors |")
        if rule_errors:
            over.append(f"kaudit scan ({label}): {rule_errors} rules could not evaluate")
    print(f"\ngraph: {engine['entries']:,} entry points ({engine['entries_with_path']:,} with a path), "
          f"{engine['paths']:,} paths to {engine['crowns_reached']} crown jewels (mean {engine['mean_steps']:.1f} "
          f"steps), {engine['choke_points']:,} choke points; the top ones:")
    for choke in engine["top_choke_points"]:
        print(f"  {choke['cuts']:>5} cut by: {choke['fix']}")
    return over


if __name__ == "__main__":
    main()
