"""Generate a large, realistic manifest tree: mixed workloads, services, config, RBAC, Lists.

    python benchmarks/generate_corpus.py --out benchmarks/corpus --megabytes 10

Deterministic (seeded), so runs compare like with like. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any, Callable

import yaml

REGISTRIES = ["registry.example.com/team", "ghcr.io/acme", "docker.io/library", "quay.io/org", "nginx"]


def container(rng: random.Random, name: str, hardened: bool) -> dict[str, Any]:
    image = f"{rng.choice(REGISTRIES)}/{name}:{rng.choice(['1.2.3', 'latest', '2.0', 'v3.1.4'])}"
    body: dict[str, Any] = {
        "name": name,
        "image": image if rng.random() > 0.2 else image.split(":")[0] + "@sha256:" + "%064x" % rng.getrandbits(256),
        "ports": [{"containerPort": rng.choice([80, 8080, 9090]), "name": "http"}],
        "env": [{"name": f"VAR_{i}", "value": f"value-{rng.randint(0, 999)}"} for i in range(rng.randint(1, 6))],
        "args": [f"--flag-{i}=value" for i in range(rng.randint(0, 5))],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    if rng.random() < 0.2:
        body["env"].append({"name": "API_TOKEN", "value": "tok-%08x" % rng.getrandbits(32)})
    if hardened:
        body["securityContext"] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                   "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}
        body["resources"] = {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}}
    elif rng.random() < 0.3:
        body["securityContext"] = {"privileged": rng.random() < 0.3, "capabilities": {"add": ["NET_ADMIN"]}}
    return body


def pod_spec(rng: random.Random, name: str) -> dict[str, Any]:
    hardened = rng.random() < 0.5
    spec: dict[str, Any] = {
        "serviceAccountName": name,
        "containers": [container(rng, name, hardened)] + [container(rng, f"{name}-sidecar", hardened)
                                                          for _ in range(rng.randint(0, 2))],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    if rng.random() < 0.3:
        spec["initContainers"] = [container(rng, f"{name}-init", hardened)]
    if hardened:
        spec["securityContext"] = {"runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    if rng.random() < 0.05:
        spec["hostNetwork"] = True
        spec["volumes"].append({"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}})
    return spec


def metadata(rng: random.Random, name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace,
            "labels": {"app": name, "team": f"team-{rng.randint(1, 30)}", "tier": rng.choice(["web", "api", "db"])},
            "annotations": {"owner": f"someone{rng.randint(1, 99)}@example.com", "description": "x" * rng.randint(10, 80)}}


def workload(rng: random.Random, i: int, namespace: str) -> dict[str, Any]:
    name = f"app-{i}"
    template = {"metadata": {"labels": {"app": name}}, "spec": pod_spec(rng, name)}
    kind = rng.choices(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"], [10, 3, 2, 1, 2])[0]
    meta = metadata(rng, name, namespace)
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": {"template": template}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"replicas": rng.randint(1, 5), "selector": {"matchLabels": {"app": name}}, "template": template}}


def service(rng: random.Random, i: int, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(rng, f"app-{i}", namespace),
            "spec": {"selector": {"app": f"app-{i}"}, "ports": [{"port": 80, "targetPort": "http"}]}}


def config_map(rng: random.Random, i: int, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(rng, f"app-{i}-config", namespace),
            "data": {f"key{k}": "line\n" * rng.randint(1, 8) for k in range(rng.randint(2, 10))}}


def rbac(rng: random.Random, i: int, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(rng, f"app-{i}", namespace),
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list", "watch"]}]}


MAKERS: list[Callable[[random.Random, int, str], dict[str, Any]]] = [workload, service, config_map, rbac]


def generate(out: Path, megabytes: float, seed: int = 7) -> tuple[int, int, int]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    total = objects = files = 0
    i = 0
    while total < megabytes * 1024 * 1024:
        namespace = f"ns-{rng.randint(1, 40)}"
        documents = []
        for _ in range(rng.randint(2, 12)):
            i += 1
            documents.extend(maker(rng, i, namespace) for maker in MAKERS)
        if rng.random() < 0.1:
            documents = [{"apiVersion": "v1", "kind": "List", "items": documents}]
        text = yaml.safe_dump_all(documents, sort_keys=False, width=120)
        path = out / namespace / f"bundle-{files:05d}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        total += len(text.encode())
        objects += sum(len(d.get("items", [d])) for d in documents)
        files += 1
    return files, objects, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "corpus")
    parser.add_argument("--megabytes", type=float, default=10)
    args = parser.parse_args()
    files, objects, total = generate(args.out, args.megabytes)
    print(f"{files} files, {objects} objects, {total / 1024 / 1024:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
