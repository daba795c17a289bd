"""Objects as a real cluster holds them: API defaulting, admission, and what controllers create.

The fake server serves what it is given. A test that compares a manifest scan with a scan of the
same objects on a cluster gives it `cluster_state(manifests)`: each manifest as kube-apiserver
stores it (the `SetDefaults_*` functions of the kinds here, Kubernetes v1.30), plus what the
controllers make of them (a Deployment's ReplicaSet and pods, a StatefulSet's and DaemonSet's pods,
a CronJob's Job and its pod), each pod as admission leaves it (ServiceAccount admission: the
account and its token volume; DefaultTolerationSeconds; Priority; the scheduler's node), linked by
`ownerReferences` with `controller: true`. Names the controllers generate (`web-5c8f7d9b6d-x2k9p`)
come from `seed`: another seed is another rollout. Deterministic: the same seed gives the same objects.
"""
from __future__ import annotations

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


def admitted(pod: Obj, node: str, accounts: Mapping[tuple[str, str], Mapping[str, Any]]) -> Obj:
    """What the API server, admission and the scheduler make of a pod created: defaults, AppArmor
    in step, the service account and its token, tolerations, priority, a node."""
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


def cluster_state(manifests: Sequence[Mapping[str, Any]], seed: str = "rollout-1",
                  inject: Optional[Mapping[str, Injector]] = None, replicas: Optional[int] = None) -> list[Obj]:
    """Every object of `manifests` as stored, each namespace's `default` ServiceAccount, the nodes,
    and the objects their controllers create. `inject`: a workload's name -> a function that changes
    each of its pods as a mutating webhook would."""
    stored = [defaulted(m) for m in manifests]
    bare_pods = [o for o in stored if o["kind"] == "Pod"]
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in stored if o["kind"] == "ServiceAccount"}
    made: list[Obj] = []
    for namespace in [o["metadata"]["name"] for o in stored if o["kind"] == "Namespace"]:
        if (namespace, "default") not in accounts:
            account = defaulted({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": "default", "namespace": namespace}})
            accounts[(namespace, "default")] = account
            made.append(account)
    made.extend({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "uid": f"node-{node}"},
                 "status": {"nodeInfo": {"kubeletVersion": "v1.30.2"}}} for node in NODES)
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
            for node in NODES:
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
    for index, pod in enumerate(bare_pods):
        admitted(pod, NODES[index % len(NODES)], accounts)
    for index, pod in enumerate(pods):
        injector = (inject or {}).get(_top_owner_name(pod, made))
        if injector is not None:
            injector(pod)
        made.append(admitted(pod, NODES[index % len(NODES)], accounts))
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
