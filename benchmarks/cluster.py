"""Time a whole live-cluster scan against the fake API server (not part of the tests).

    python benchmarks/cluster.py [--runs 3]

Clusters, each served by tests/k8s_api in a child process (so it shares no interpreter lock with
what is measured):
- pods: 10,000 pods (500 Deployments x 20 replicas, owned through 500 ReplicaSets), 500 Services,
  50 namespaces with their default ServiceAccounts, 20 nodes;
- rbac: 5,000 RBAC objects (1,500 Roles, 1,500 RoleBindings, 1,000 ClusterRoles, 1,000
  ClusterRoleBindings) over 50 namespaces with 500 ServiceAccounts;
- empty: nothing but discovery (kaudit's start-up, rules and report: a fixed cost).

For each: the wall time of `kaudit scan --context bench -f json -o /dev/null --fail-on never` as a
subprocess (median of --runs), the peak RSS of that process (its own rusage, from wait4: what
getrusage(RUSAGE_CHILDREN) reports, for that child alone), the API requests it made (the server's
log), the bytes served, and the floor: the very same requests (paths, continue tokens, Accept)
replayed with urllib in this process, one after the other, each body json.loads'ed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

try:
    import kubernetes  # noqa: F401  (kaudit's; the scans need it)
    import trustme  # noqa: F401  (a test extra; the fake server's certificates)
except ImportError:  # run from the project's virtualenv, where both are
    venv = REPO / ".venv" / "bin" / "python"
    if venv.exists() and Path(sys.prefix).resolve() != venv.parent.parent.resolve():
        os.execv(str(venv), [str(venv), *sys.argv])
    raise

NAMESPACES = 50
DEPLOYMENTS = 500
REPLICAS = 20


# ---- the clusters ----------------------------------------------------------------------------------

def _container(name: str, image: str) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                               "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}


def _pod_spec(app: str, index: int) -> dict[str, Any]:
    containers = [_container("app", f"registry.example.com/team/{app}:1.{index % 7}.0")]
    if index % 5 == 0:
        containers.append(_container("proxy", "registry.example.com/mesh/proxy:2.4.1"))
    return {"containers": containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "schedulerName": "default-scheduler",
            "securityContext": {"runAsNonRoot": index % 3 != 0, "seccompProfile": {"type": "RuntimeDefault"}},
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]}


def pods_cluster() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for n in range(NAMESPACES):
        ns = f"app-{n:02d}"
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "kubernetes.io/metadata.name": ns, "pod-security.kubernetes.io/enforce": "baseline"}}})
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}})
    for node in range(20):
        objects.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{node:02d}"},
                        "status": {"nodeInfo": {"kubeletVersion": "v1.29.4", "osImage": "Ubuntu 22.04.4 LTS"}}})
    for d in range(DEPLOYMENTS):
        ns, app = f"app-{d % NAMESPACES:02d}", f"svc{d:03d}"
        spec = _pod_spec(app, d)
        labels = {"app": app, "tier": "backend"}
        template = {"metadata": {"labels": labels}, "spec": spec}
        dep_uid, rs_uid, rs = f"dep-{d}", f"rs-{d}", f"{app}-7c9f8b6d4"
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": app, "namespace": ns, "uid": dep_uid, "labels": labels},
                        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels}, "template": template}})
        objects.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": rs, "namespace": ns, "uid": rs_uid,
                                     "labels": {**labels, "pod-template-hash": "7c9f8b6d4"},
                                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                                          "uid": dep_uid, "controller": True,
                                                          "blockOwnerDeletion": True}]},
                        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels}, "template": template}})
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                        "spec": {"selector": labels, "type": "ClusterIP", "clusterIP": f"10.96.{d // 250}.{d % 250}",
                                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
        for r in range(REPLICAS):
            objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": f"{rs}-{r:05x}", "namespace": ns, "labels": {**labels, "pod-template-hash": "7c9f8b6d4"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rs_uid,
                                     "controller": True, "blockOwnerDeletion": True}]},
                "spec": {**spec, "nodeName": f"node-{(d + r) % 20:02d}"},
                "status": {"phase": "Running", "podIP": f"10.244.{r}.{d % 250}", "hostIP": f"192.168.0.{(d + r) % 20}",
                           "qosClass": "Burstable", "startTime": "2024-01-01T00:00:00Z",
                           "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}
                                          for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                           "containerStatuses": [{"name": c["name"], "image": c["image"], "ready": True,
                                                  "restartCount": 0, "started": True,
                                                  "imageID": f"{c['image']}@sha256:{'ab' * 32}",
                                                  "containerID": f"containerd://{'cd' * 32}",
                                                  "state": {"running": {"startedAt": "2024-01-01T00:00:05Z"}}}
                                                 for c in spec["containers"]]}})
    return objects


VERBS = (["get", "list", "watch"], ["get", "list", "watch", "create", "update", "patch", "delete"], ["*"],
         ["create"], ["get"], ["list"])
RESOURCES = (["pods"], ["secrets"], ["configmaps"], ["deployments", "replicasets"], ["pods/exec"], ["*"],
             ["services", "endpoints"], ["serviceaccounts/token"], ["roles", "rolebindings"], ["nodes/proxy"])
GROUPS = {"pods": "", "secrets": "", "configmaps": "", "deployments": "apps", "pods/exec": "", "*": "*",
          "services": "", "serviceaccounts/token": "", "roles": "rbac.authorization.k8s.io", "nodes/proxy": ""}


def _rules(i: int) -> list[dict[str, Any]]:
    rules = []
    for k in range(1 + i % 3):
        resources = RESOURCES[(i + k) % len(RESOURCES)]
        rules.append({"apiGroups": [GROUPS[resources[0]]], "resources": resources, "verbs": VERBS[(i * 7 + k) % len(VERBS)]})
    return rules


def _subjects(i: int, ns: str) -> list[dict[str, Any]]:
    if i % 10 == 0:
        return [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"team-{i % 13}"}]
    if i % 10 == 1:
        return [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"user{i}@example.com"}]
    return [{"kind": "ServiceAccount", "name": f"sa-{i % 10}", "namespace": ns}]


def rbac_cluster() -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io/v1"
    objects: list[dict[str, Any]] = []
    for n in range(NAMESPACES):
        ns = f"team-{n:02d}"
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        objects += [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{s}", "namespace": ns}}
                    for s in range(10)]
        for r in range(30):
            i = n * 30 + r
            objects.append({"apiVersion": rbac, "kind": "Role", "metadata": {"name": f"role-{r:02d}", "namespace": ns},
                            "rules": _rules(i)})
            ref = ({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{r:02d}"} if r % 4
                   else {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"cluster-role-{i % 1000:04d}"})
            objects.append({"apiVersion": rbac, "kind": "RoleBinding",
                            "metadata": {"name": f"binding-{r:02d}", "namespace": ns},
                            "roleRef": ref, "subjects": _subjects(i, ns)})
    for c in range(1000):
        objects.append({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": f"cluster-role-{c:04d}"},
                        "rules": _rules(c + 5)})
        objects.append({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": f"cluster-binding-{c:04d}"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": f"cluster-role-{c:04d}" if c % 50 else "cluster-admin"},
                        "subjects": _subjects(c, f"team-{c % NAMESPACES:02d}")})
    return objects


def empty_cluster() -> list[dict[str, Any]]:
    return []


CLUSTERS = {"pods": pods_cluster, "rbac": rbac_cluster, "empty": empty_cluster}


# ---- the server, in a child process --------------------------------------------------------------------

def _serve(name: str, directory: str, conn: Any) -> None:
    from tests.k8s_api import FakeApiServer

    class CachedApiServer(FakeApiServer):
        """Each distinct answer is built (filtered, deep-copied) once: what is left per request is
        json.dumps and TLS, so the server is not what the numbers measure."""

        cache: dict[Any, Any] = {}

        def _resource_reply(self, rt: Any, namespace: Any, name: Any, query: dict[str, str], accept: Any) -> Any:
            key = (rt, namespace, name, tuple(sorted(query.items())), accept)
            if key not in self.cache:
                self.cache[key] = super()._resource_reply(rt, namespace, name, query, accept)
            return self.cache[key]

    objects = CLUSTERS[name]()
    with CachedApiServer(objects) as api:
        kubeconfig = api.kubeconfig(Path(directory) / f"kubeconfig-{name}", context="bench")
        conn.send({"url": api.url, "token": api.token, "ca": str(api.ca_file), "kubeconfig": str(kubeconfig),
                   "objects": len(objects)})
        while True:
            command = conn.recv()
            if command == "requests":
                conn.send([tuple(r) for r in api.requests])
            elif command == "clear":
                api.clear_requests()
                conn.send(None)
            else:
                break


class Server:
    def __init__(self, name: str, directory: str) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(name, directory, child), daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.conn.recv()

    def requests(self) -> list[tuple[str, str, dict[str, str], str | None]]:
        self.conn.send("requests")
        return self.conn.recv()  # type: ignore[no-any-return]

    def clear(self) -> None:
        self.conn.send("clear")
        self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(10)


# ---- measuring ----------------------------------------------------------------------------------------

def run_kaudit(kubeconfig: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one whole scan process."""
    command = [sys.executable, "-m", "kaudit.cli", "scan", "--kubeconfig", kubeconfig, "--context", "bench",
               "-f", "json", "-o", "/dev/null", "--fail-on", "never"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir(),
                               env=env)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"kaudit exited {process.returncode}: {err.decode(errors='replace')[-1000:]}")
    return seconds, usage.ru_maxrss / 1024, process.returncode


def floor(info: dict[str, Any], requests: list[Any]) -> tuple[float, float, int]:
    """Replay `requests` with urllib (sequentially), json.loads each body: (seconds, of which json.loads, bytes)."""
    context = ssl.create_default_context(cafile=info["ca"])
    loads = 0.0
    size = 0
    start = time.perf_counter()
    for _method, path, query, accept, *_headers in requests:  # RecordedRequest (or a plain 4-tuple)
        url = info["url"] + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {info['token']}", "Accept": accept or "application/json"}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context) as response:
            body = response.read()
        size += len(body)
        parsing = time.perf_counter()
        json.loads(body)
        loads += time.perf_counter() - parsing
    return time.perf_counter() - start, loads, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="scans per cluster (the median is reported)")
    parser.add_argument("--only", choices=list(CLUSTERS), action="append", help="only these clusters")
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kaudit-cluster-bench-") as directory:
        for name in arguments.only or list(CLUSTERS):
            built = time.perf_counter()
            server = Server(name, directory)
            setup = time.perf_counter() - built
            try:
                walls, rss, counts = [], [], []
                warm_up = run_kaudit(server.info["kubeconfig"])[0]  # fills the server's cache of answers
                replay: list[Any] = []
                for _ in range(arguments.runs):
                    server.clear()
                    seconds, peak, _code = run_kaudit(server.info["kubeconfig"])
                    replay = server.requests()
                    walls.append(seconds)
                    rss.append(peak)
                    counts.append(len(replay))
                server.clear()
                floors = [floor(server.info, replay) for _ in range(arguments.runs)]
            finally:
                server.stop()
            floor_seconds = statistics.median(f[0] for f in floors)
            rows.append((name, server.info["objects"], statistics.median(walls), min(walls), max(rss), counts,
                         floors[0][2] / 2**20, floor_seconds, statistics.median(f[1] for f in floors), setup))
            print(f"{name}: served {server.info['objects']} objects (server built in {setup:.1f} s); "
                  f"warm-up scan {warm_up:.2f} s (answers built, then cached); "
                  f"kaudit runs {', '.join(f'{w:.2f}' for w in walls)} s", file=sys.stderr, flush=True)
    print(f"kaudit scan --context bench -f json -o /dev/null --fail-on never; median of {arguments.runs} runs; "
          f"{os.cpu_count()} CPUs; the fake API server in its own process, its answers cached by an untimed "
          "warm-up scan\n")
    print("| cluster | objects | kaudit wall (median / best) | kaudit peak RSS | API requests | bytes served "
          "| floor: same GETs + json.loads | of which json.loads | kaudit / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, objects, wall, best, rss_mib, counts, mib, floor_s, loads_s, _setup in rows:
        requests = str(counts[0]) if len(set(counts)) == 1 else "/".join(map(str, counts))
        print(f"| {name} | {objects:,} | {wall:.2f} s / {best:.2f} s | {rss_mib:.0f} MiB | {requests} | {mib:.1f} MiB "
              f"| {floor_s:.2f} s | {loads_s:.2f} s | {wall / floor_s:.1f}x |")


if __name__ == "__main__":
    main()
