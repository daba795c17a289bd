"""Objects as a real cluster holds them: API defaulting, admission, and what controllers create.

The fake server serves what it is given. A test that compares a manifest scan with a scan of the
same objects on a cluster gives it `cluster_state(manifests)`: each manifest as kube-apiserver
stores it (the `SetDefaults_*` functions of the kinds here, Kubernetes v1.30), plus what the
controllers make of them (a Deployment's ReplicaSet and pods, a StatefulSet's and DaemonSet's pods,
a CronJob's Job and its pod), each pod as admission leaves it (ServiceAccount admission: the
account and its token volume; DefaultTolerationSeconds; Priority; the scheduler's node), linked by
`ownerReferences` with `controller: true`. Names the controllers generate (`web-5c8f7d9b6d-x2k9p`)
come from `seed`: another seed is another rollout. Deterministic: the same seed gives the same objects.

Nodes: the manifests' own Node objects, as their kubelets register them (`registered`: the
kubelet's well-known labels, addresses, status), else two plain nodes. Pods are placed as the
scheduler and the DaemonSet controller would (`fits`: nodeSelector, `metadata.name` node affinity,
NoSchedule/NoExecute taints and tolerations); a pod that fits no node stays Pending, unbound.
`static_pods` names the Pods that are mirror pods of a kubelet's static pod manifests; `bootstrap`
adds what kube-apiserver creates by itself (the system namespaces, a part of the bootstrap RBAC).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from typing import Any, Callable, Mapping, Optional, Sequence

Obj = dict[str, Any]
# The alphabet of generated names (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0/1/3).
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
NODES = ("node-a", "node-b")
CLUSTER_SCOPED = {"Namespace", "Node", "ClusterRole", "ClusterRoleBinding"}
Injector = Callable[[Obj], None]


def uid(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    ident = f"{obj['apiVersion']}/{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ident))


def _generated(*parts: str, length: int = 5) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest[:length])


# --- API defaulting (pkg/apis/core/v1/defaults.go, apps/v1, batch/v1) ----------------------------

def _container(container: Obj) -> None:
    image = str(container.get("image", ""))
    name_and_tag = image.split("@")[0].rsplit("/", 1)[-1]
    tag = name_and_tag.split(":", 1)[1] if ":" in name_and_tag else ""
    if "@" not in image and tag in ("", "latest"):
        container.setdefault("imagePullPolicy", "Always")
    container.setdefault("imagePullPolicy", "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports", []):
        port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                               ("failureThreshold", 3)):
                container[probe].setdefault(key, value)
            if "httpGet" in container[probe]:
                container[probe]["httpGet"].setdefault("path", "/")
                container[probe]["httpGet"].setdefault("scheme", "HTTP")
    for env in container.get("env", []):
        field_ref = env.get("valueFrom", {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")


def _pod_spec(spec: Obj) -> None:
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for container in spec.get(key, []):
            _container(container)
    for volume in spec.get("volumes", []):
        for source in ("secret", "configMap", "projected", "downwardAPI"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)
        if "hostPath" in volume:
            volume["hostPath"].setdefault("type", "")


def _template(template: Obj) -> None:
    template.setdefault("metadata", {})["creationTimestamp"] = None
    _pod_spec(template["spec"])


def _pod(pod: Obj) -> None:
    spec = pod["spec"]
    _pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    if spec.get("hostNetwork"):  # SetDefaults_Pod: a host-network pod's ports are the node's
        for key in ("initContainers", "containers"):
            for container in spec.get(key, []):
                for port in container.get("ports", []):
                    port.setdefault("hostPort", port["containerPort"])


def defaulted(manifest: Mapping[str, Any]) -> Obj:
    """The object as kube-apiserver stores it after `kubectl apply` of `manifest`."""
    obj: Obj = copy.deepcopy(dict(manifest))
    meta = obj.setdefault("metadata", {})
    kind = obj["kind"]
    if kind not in CLUSTER_SCOPED:
        meta.setdefault("namespace", "default")
    meta.setdefault("uid", uid(obj))
    meta.setdefault("generation", 1)
    spec = obj.get("spec")
    if kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif kind == "Pod":
        _pod(obj)
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")  # the Secret strategy's default
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        assert spec is not None
        _template(spec["template"])
        spec.setdefault("revisionHistoryLimit", 10)
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
            for claim in spec.get("volumeClaimTemplates", []):
                claim.setdefault("apiVersion", "v1")
                claim.setdefault("kind", "PersistentVolumeClaim")
                claim["spec"].setdefault("volumeMode", "Filesystem")
                claim["status"] = {"phase": "Pending"}
        elif kind == "DaemonSet":
            spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    elif kind == "Job":
        assert spec is not None
        _job_spec(obj, spec)
    elif kind == "CronJob":
        assert spec is not None
        for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                           ("failedJobsHistoryLimit", 1)):
            spec.setdefault(key, value)
        _template(spec["jobTemplate"]["spec"]["template"])
    return obj


def _job_spec(job: Obj, spec: Obj) -> None:
    for key, value in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"),
                       ("suspend", False), ("podReplacementPolicy", "TerminatingOrFailed")):
        spec.setdefault(key, value)
    # the Job strategy's PrepareForCreate: a selector on the job's own uid, and its labels on the pods
    job_uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    labels = {"batch.kubernetes.io/controller-uid": job_uid, "batch.kubernetes.io/job-name": name,
              "controller-uid": job_uid, "job-name": name}
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}}
    template = spec["template"]
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    _template(template)


# --- controllers and admission --------------------------------------------------------------------

def owner_reference(owner: Mapping[str, Any]) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


APPARMOR = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_skew(pod: Obj) -> None:
    """The pod strategy's applyAppArmorVersionSkew (v1.30-v1.32): each container's AppArmor field and
    annotation copied into the other, the pod's field standing in for a container without one."""
    meta, spec = pod["metadata"], pod["spec"]
    pod_profile = spec.get("securityContext", {}).get("appArmorProfile")
    for key in ("initContainers", "containers"):
        for container in spec.get(key, []):
            annotation = meta.get("annotations", {}).get(APPARMOR + container["name"])
            field = container.get("securityContext", {}).get("appArmorProfile")
            if annotation is None and (field or pod_profile):
                profile = field or pod_profile
                value = {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}.get(
                    profile["type"], f"localhost/{profile.get('localhostProfile')}")
                meta.setdefault("annotations", {})[APPARMOR + container["name"]] = value
            elif annotation is not None and field is None:
                field = {"runtime/default": {"type": "RuntimeDefault"}, "unconfined": {"type": "Unconfined"}}.get(
                    annotation, {"type": "Localhost", "localhostProfile": annotation.removeprefix("localhost/")})
                if field != pod_profile:
                    container.setdefault("securityContext", {})["appArmorProfile"] = field


def admitted(pod: Obj, node: Optional[str], accounts: Mapping[tuple[str, str], Mapping[str, Any]]) -> Obj:
    """What the API server, admission and the scheduler make of a pod created: defaults, AppArmor
    in step, the service account and its token, tolerations, priority, a node (None: none fits, so
    the pod stays Pending, unbound)."""
    meta, spec = pod["metadata"], pod["spec"]
    meta.setdefault("uid", uid(pod))
    _pod(pod)
    _apparmor_skew(pod)
    account = spec.get("serviceAccountName") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = accounts.get((meta["namespace"], account), {}).get("automountServiceAccountToken")
    if automount is not False:  # ServiceAccount admission: the token as a projected volume
        volume = f"kube-api-access-{_generated(meta['name'], 'token')}"
        spec.setdefault("volumes", []).append({"name": volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
        for key in ("initContainers", "containers"):
            for container in spec.get(key, []):
                container.setdefault("volumeMounts", []).append(
                    {"name": volume, "mountPath": TOKEN_PATH, "readOnly": True})
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == taint for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if node is None:  # the scheduler found no node: unbound, Pending
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        return pod
    spec["nodeName"] = node
    pod["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    return pod


def _pod_from(template: Mapping[str, Any], owner: Mapping[str, Any], name: str,
              labels: Optional[Mapping[str, str]] = None) -> Obj:
    template = copy.deepcopy(dict(template))
    meta = template.get("metadata", {})
    meta.pop("creationTimestamp", None)
    pod_meta = {**meta, "name": name, "namespace": owner["metadata"]["namespace"],
                "labels": {**meta.get("labels", {}), **(labels or {})},
                "ownerReferences": [owner_reference(owner)]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template["spec"]}


def _hash(template: Mapping[str, Any], seed: str) -> str:
    return _generated(json.dumps(template, sort_keys=True), seed, length=10)


# --- nodes and the scheduler ------------------------------------------------------------------------

def registered(node: Mapping[str, Any]) -> Obj:
    """A Node as its kubelet registers it: its own labels plus the kubelet's well-known ones
    (kubelet_node_status.go initialNode), its taints as given (--register-with-taints), addresses
    and a Ready status."""
    obj: Obj = copy.deepcopy(dict(node))
    meta = obj.setdefault("metadata", {})
    name = meta["name"]
    meta.setdefault("uid", uid(obj))
    meta.setdefault("labels", {}).update({
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"})
    meta.setdefault("annotations", {}).update({"volumes.kubernetes.io/controller-managed-attach-detach": "true"})
    obj["spec"] = obj.get("spec") or {}
    obj["status"] = {"addresses": [{"type": "Hostname", "address": name}],
                     "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                     "nodeInfo": {"kubeletVersion": "v1.30.2", "operatingSystem": "linux", "architecture": "amd64",
                                  "containerRuntimeVersion": "containerd://1.7.18"}}
    return obj


def _default_nodes() -> list[Obj]:
    return [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "uid": f"node-{node}"},
             "status": {"nodeInfo": {"kubeletVersion": "v1.30.2"}}} for node in NODES]


def _tolerates(tolerations: Sequence[Any], taint: Mapping[str, Any]) -> bool:
    """v1helper.TolerationsTolerateTaint: an empty key with Exists tolerates every taint; an empty
    effect every effect; Equal (the default) compares the value."""
    for toleration in tolerations:
        if not isinstance(toleration, Mapping):
            continue
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        if toleration.get("operator") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def fits(spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Can the scheduler (or the DaemonSet controller) put a pod with `spec` on `node`? nodeName,
    nodeSelector, required node affinity on `metadata.name` (what DaemonSet pods carry) and
    node labels (In), and the node's NoSchedule / NoExecute taints. PreferNoSchedule never blocks."""
    name = node["metadata"]["name"]
    labels = node["metadata"].get("labels") or {}
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []

    def requirement_holds(requirement: Mapping[str, Any], found: Optional[str]) -> bool:
        operator, values = requirement.get("operator"), requirement.get("values") or []
        return {"In": found in values, "NotIn": found not in values, "Exists": found is not None,
                "DoesNotExist": found is None}.get(str(operator), False)

    def term_matches(term: Mapping[str, Any]) -> bool:  # the requirements of a term are ANDed
        return all(requirement_holds(r, labels.get(r.get("key"))) for r in term.get("matchExpressions") or []) and \
            all(requirement_holds(r, name if r.get("key") == "metadata.name" else None)
                for r in term.get("matchFields") or [])

    if terms and not any(term_matches(term) for term in terms):
        return False
    return all(_tolerates(spec.get("tolerations") or [], taint) for taint in (node.get("spec") or {}).get("taints", [])
               if taint.get("effect") in ("NoSchedule", "NoExecute"))


class _Scheduler:
    """Each pod on the next node (round robin) among those it fits; None when it fits none."""

    def __init__(self, nodes: Sequence[Mapping[str, Any]]) -> None:
        self.nodes = nodes
        self.turn = 0

    def place(self, spec: Mapping[str, Any]) -> Optional[str]:
        fitting = [n["metadata"]["name"] for n in self.nodes if fits(spec, n)]
        if not fitting:
            return None
        self.turn += 1
        return str(fitting[(self.turn - 1) % len(fitting)])


# --- what the kubelet, the token controller and kube-apiserver itself create -------------------------

CONFIG_HASH = "kubernetes.io/config.hash"


def mirror_pod(pod: Obj, node: Mapping[str, Any]) -> Obj:
    """The mirror pod (stored: `defaulted`) of a static pod manifest on `node`, as the kubelet creates it (kubelet
    config/common.go applyDefaults, then the mirror client): on that node, tolerating every
    NoExecute taint, with the config annotations and its Node as controller. The kubelet names it
    `<manifest name>-<node>`: `pod` is given with that name, as the API shows it. ServiceAccount
    admission leaves mirror pods alone (no account, no token volume)."""
    meta, spec = pod["metadata"], pod["spec"]
    digest = hashlib.sha256(json.dumps(pod, sort_keys=True).encode()).hexdigest()[:32]
    meta.setdefault("uid", uid(pod))
    meta.setdefault("annotations", {}).update({
        CONFIG_HASH: digest, "kubernetes.io/config.mirror": digest, "kubernetes.io/config.source": "file",
        "kubernetes.io/config.seen": "2024-01-01T00:00:00.000000000Z"})
    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"],
                                "uid": node["metadata"]["uid"], "controller": True}]
    spec.setdefault("tolerations", []).append({"operator": "Exists", "effect": "NoExecute"})
    if spec.get("priorityClassName") in PRIORITY_CLASSES:  # Priority admission
        spec["priority"] = PRIORITY_CLASSES[spec["priorityClassName"]]
    spec.setdefault("priority", 0)
    spec["nodeName"] = node["metadata"]["name"]
    pod["status"] = {"phase": "Running", "qosClass": "Burstable"}
    return pod


PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"


def _token_secret(secret: Obj, account: Mapping[str, Any]) -> None:
    """What the token controller writes into a service-account-token Secret whose account exists:
    the account's uid and the token, CA and namespace (placeholders: tests must never see them)."""
    secret["metadata"].setdefault("annotations", {})["kubernetes.io/service-account.uid"] = account["metadata"]["uid"]
    secret["data"] = {key: base64.b64encode(f"fake-{key}-{secret['metadata']['name']}".encode()).decode()
                      for key in ("ca.crt", "namespace", "token")}


def bootstrap_objects() -> list[Obj]:
    """What kube-apiserver creates by itself on its first start: the system namespaces (the
    system-namespaces controller) and, of the bootstrap RBAC policy (plugin/pkg/auth/authorizer/
    rbac/bootstrappolicy), cluster-admin for the group system:masters and system:basic-user for
    every authenticated user (every ServiceAccount included)."""
    rbac = "rbac.authorization.k8s.io/v1"
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def role(name: str, rules: list[Obj]) -> Obj:
        return {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {
            "name": name, "labels": dict(labels), "annotations": dict(annotations)}, "rules": rules}

    def binding(name: str, group: str) -> Obj:
        return {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {
            "name": name, "labels": dict(labels), "annotations": dict(annotations)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]}

    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in SYSTEM_NAMESPACES),
        role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                               {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        binding("cluster-admin", "system:masters"),
        role("system:basic-user", [{"apiGroups": ["authorization.k8s.io"], "verbs": ["create"], "resources": [
            "selfsubjectaccessreviews", "selfsubjectrulesreviews"]}, {"apiGroups": ["authentication.k8s.io"],
                                                                     "verbs": ["create"],
                                                                     "resources": ["selfsubjectreviews"]}]),
        binding("system:basic-user", "system:authenticated"),
    ]


def cluster_state(manifests: Sequence[Mapping[str, Any]], seed: str = "rollout-1",
                  inject: Optional[Mapping[str, Injector]] = None, replicas: Optional[int] = None,
                  static_pods: Optional[Mapping[str, str]] = None, bootstrap: bool = False) -> list[Obj]:
    """Every object of `manifests` as stored, each namespace's `default` ServiceAccount, the nodes,
    and the objects their controllers create. `inject`: a workload's name -> a function that changes
    each of its pods as a mutating webhook would. `static_pods`: "namespace/name" of a Pod -> the
    node whose kubelet runs it from its manifest directory (served as that mirror pod).
    `bootstrap`: add what kube-apiserver creates by itself (`bootstrap_objects`), where the
    manifests do not declare it."""
    declared = {(m["kind"], (m.get("metadata") or {}).get("namespace"), m["metadata"]["name"]) for m in manifests}
    extra = [o for o in bootstrap_objects() if (o["kind"], None, o["metadata"]["name"]) not in declared] \
        if bootstrap else []
    given_nodes = [registered(m) for m in manifests if m["kind"] == "Node"]
    stored = [defaulted(m) for m in [*extra, *manifests] if m["kind"] != "Node"]
    mirrors = dict(static_pods or {})
    bare_pods = [o for o in stored if o["kind"] == "Pod"
                 and f"{o['metadata']['namespace']}/{o['metadata']['name']}" not in mirrors]
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in stored if o["kind"] == "ServiceAccount"}
    made: list[Obj] = []
    for namespace in [o["metadata"]["name"] for o in stored if o["kind"] == "Namespace"]:
        if (namespace, "default") not in accounts:
            account = defaulted({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": "default", "namespace": namespace}})
            accounts[(namespace, "default")] = account
            made.append(account)
    nodes = given_nodes or _default_nodes()
    made.extend(nodes)
    scheduler = _Scheduler(nodes)
    by_name = {n["metadata"]["name"]: n for n in nodes}
    for obj in stored:
        meta = obj["metadata"]
        if obj["kind"] == "Secret" and obj.get("type") == SERVICE_ACCOUNT_TOKEN:
            account = accounts.get((meta["namespace"], (meta.get("annotations") or {}).get(
                "kubernetes.io/service-account.name", "")))
            if account is not None:
                _token_secret(obj, account)
        elif obj["kind"] == "Pod" and f"{meta['namespace']}/{meta['name']}" in mirrors:
            mirror_pod(obj, by_name[mirrors[f"{meta['namespace']}/{meta['name']}"]])
    pods: list[Obj] = []
    for obj in stored:
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec", {})
        if kind == "Deployment":
            template_hash = _hash(spec["template"], seed)
            rs = defaulted({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"{name}-{template_hash}", "namespace": obj["metadata"]["namespace"],
                "labels": {**spec["template"]["metadata"].get("labels", {}), "pod-template-hash": template_hash},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [owner_reference(obj)]}, "spec": {
                "replicas": replicas or spec["replicas"],
                "selector": {"matchLabels": {**spec["selector"]["matchLabels"], "pod-template-hash": template_hash}},
                "template": copy.deepcopy(spec["template"])}})
            rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = template_hash
            made.append(rs)
            pods.extend(_pod_from(rs["spec"]["template"], rs, f"{rs['metadata']['name']}-{_generated(seed, name, str(i))}")
                        for i in range(rs["spec"]["replicas"]))
        elif kind == "StatefulSet":
            revision = f"{name}-{_hash(spec['template'], seed)}"
            for i in range(replicas or spec["replicas"]):
                pod = _pod_from(spec["template"], obj, f"{name}-{i}", {
                    "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                    "apps.kubernetes.io/pod-index": str(i)})
                pod["spec"]["hostname"], pod["spec"]["subdomain"] = f"{name}-{i}", spec.get("serviceName", "")
                for claim in spec.get("volumeClaimTemplates", []):  # the controller's claim per pod
                    claim_name = claim["metadata"]["name"]
                    pod["spec"].setdefault("volumes", []).insert(0, {
                        "name": claim_name, "persistentVolumeClaim": {"claimName": f"{claim_name}-{name}-{i}"}})
                pods.append(pod)
        elif kind == "DaemonSet":
            # the DaemonSet controller: a pod for each node the template fits (its taints tolerated)
            for node in [n["metadata"]["name"] for n in nodes if fits(spec["template"]["spec"], n)]:
                pod = _pod_from(spec["template"], obj, f"{name}-{_generated(seed, name, node)}", {
                    "controller-revision-hash": _hash(spec["template"], seed), "pod-template-generation": "1"})
                pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                            "values": [node]}]}]}}}
                pod["spec"].setdefault("tolerations", []).extend(
                    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": effect}
                    for taint, effect in (("not-ready", "NoExecute"), ("unreachable", "NoExecute"),
                                          ("disk-pressure", "NoSchedule"), ("memory-pressure", "NoSchedule")))
                pods.append(pod)
        elif kind == "CronJob":
            job_template = spec["jobTemplate"]
            job: Obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": f"{name}-{28_500_000 + int(hashlib.sha256(f'{seed}/{name}'.encode()).hexdigest(), 16) % 100_000}",
                "namespace": obj["metadata"]["namespace"], "labels": dict(job_template.get("metadata", {}).get(
                    "labels", {})), "ownerReferences": [owner_reference(obj)]},
                "spec": copy.deepcopy(job_template["spec"])}
            job["metadata"]["uid"] = uid(job)
            job = defaulted(job)
            made.append(job)
            pods.append(_pod_from(job["spec"]["template"], job, f"{job['metadata']['name']}-{_generated(seed, name)}"))
    for pod in bare_pods:
        admitted(pod, scheduler.place(pod["spec"]), accounts)
    for pod in pods:
        injector = (inject or {}).get(_top_owner_name(pod, made))
        if injector is not None:
            injector(pod)
        made.append(admitted(pod, scheduler.place(pod["spec"]), accounts))
    return stored + made


def _top_owner_name(pod: Obj, made: Sequence[Obj]) -> str:
    """The name of the workload a pod comes from (through its ReplicaSet or Job)."""
    owner = pod["metadata"]["ownerReferences"][0]
    parent = next((o for o in made if o["metadata"]["uid"] == owner["uid"]), None)
    return str(parent["metadata"]["ownerReferences"][0]["name"] if parent is not None else owner["name"])


def istio_sidecar(pod: Obj) -> None:
    """What Istio's injector (1.22) adds: an init container that rewrites iptables as root with
    NET_ADMIN and NET_RAW, the proxy, their volumes, and the app's probes rewritten to the agent."""
    spec = pod["spec"]
    spec.setdefault("initContainers", []).append({
        "name": "istio-init", "image": "docker.io/istio/proxyv2:1.22.1",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT"],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": False,
                            "runAsGroup": 0, "runAsNonRoot": False, "runAsUser": 0,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}}})
    spec["containers"].append({
        "name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.1",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                            "runAsGroup": 1337, "runAsNonRoot": True, "runAsUser": 1337,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
                         {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"}]})
    spec.setdefault("volumes", []).extend([
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}])
    meta = pod["metadata"]
    meta.setdefault("annotations", {})["sidecar.istio.io/status"] = json.dumps(
        {"initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": ["istio-envoy", "istio-token"]})
    meta["labels"]["security.istio.io/tlsMode"] = "istio"
