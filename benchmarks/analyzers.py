"""Time the cross-object analyzers on a large inventory (not part of the test suite).

    python benchmarks/analyzers.py

Generates 5,000 objects across 40 namespaces (3,100 workloads, 500 NetworkPolicies, 1,000 role
bindings with their roles, service accounts, namespaces), then times (a) the network and RBAC rules
alone on the parsed inventory and (b) a whole `kaudit scan` of the tree with every rule.
"""
from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kaudit.engine import run  # noqa: E402
from kaudit.inventory import Inventory  # noqa: E402
from kaudit.ruleset import load_builtin_rules  # noqa: E402
from kaudit.sources.manifests import load_manifests  # noqa: E402

NAMESPACES = 40


def generate(out: Path, seed: int = 11) -> dict[str, int]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"Namespace": 0, "Deployment": 0, "NetworkPolicy": 0, "RoleBinding": 0, "ClusterRoleBinding": 0,
              "Role": 0, "ClusterRole": 0, "ServiceAccount": 0}
    docs: dict[str, list[dict]] = {}

    def add(namespace: str, doc: dict) -> None:
        docs.setdefault(namespace, []).append(doc)
        counts[doc["kind"]] += 1

    for c in range(50):
        labels = {"rbac.example.com/aggregate-to-view": "true"} if c % 5 == 0 else {}
        add("cluster", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": f"role-{c}", "labels": labels},
                        "rules": [{"apiGroups": ["", "apps"], "resources": rng.sample(
                            ["pods", "secrets", "configmaps", "deployments", "pods/exec", "services"], 2),
                                   "verbs": rng.sample(["get", "list", "watch", "create", "update"], 2)}]})
    add("cluster", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"},
                    "aggregationRule": {"clusterRoleSelectors": [
                        {"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}]}, "rules": []})
    for b in range(100):
        add("cluster", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": f"crb-{b}"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                    "name": rng.choice([f"role-{rng.randrange(50)}", "view"])},
                        "subjects": [{"kind": "Group", "name": f"group-{rng.randrange(30)}"}]})
    for n in range(NAMESPACES):
        ns = f"team-{n}"
        add(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"tier": str(n % 3)}}})
        for s in range(5):
            add(ns, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{s}", "namespace": ns}})
        for r in range(5):
            add(ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                     "metadata": {"name": f"role-{r}", "namespace": ns},
                     "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"][r % 2:], "verbs": ["get", "list"]}]})
        for b in range(1000 // NAMESPACES - 100 // NAMESPACES):
            kind, name = rng.choice([("Role", f"role-{rng.randrange(5)}"), ("ClusterRole", f"role-{rng.randrange(50)}")])
            add(ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": f"rb-{b}", "namespace": ns},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                     "subjects": [{"kind": "ServiceAccount", "name": f"sa-{rng.randrange(5)}"}]})
        for p in range(500 // NAMESPACES + (1 if n < 500 % NAMESPACES else 0)):
            add(ns, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": f"np-{p}", "namespace": ns},
                     "spec": {"podSelector": {} if p == 0 else {"matchLabels": {"app": f"app-{rng.randrange(80)}"}},
                              "policyTypes": ["Ingress"] if p else ["Ingress", "Egress"],
                              "ingress": [] if p == 0 else [{"from": [
                                  {"namespaceSelector": {"matchLabels": {"tier": str(rng.randrange(3))}}}]}]}})
        for w in range(3100 // NAMESPACES + (1 if n < 3100 % NAMESPACES else 0)):
            add(ns, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{w}", "namespace": ns},
                     "spec": {"selector": {"matchLabels": {"app": f"app-{w}"}}, "template": {
                         "metadata": {"labels": {"app": f"app-{w}"}},
                         "spec": {"serviceAccountName": f"sa-{rng.randrange(5)}",
                                  "containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}}})
    for namespace, items in docs.items():
        (out / f"{namespace}.yaml").write_text(yaml.safe_dump_all(items, sort_keys=False))
    return counts


def main() -> None:
    tree = HERE / "corpus-analyzers"
    counts = generate(tree)
    total = sum(counts.values())
    loaded = load_manifests([str(tree)])
    rules = [r for r in load_builtin_rules() if r.category in ("network", "rbac")]
    start = time.perf_counter()
    result = run(rules, Inventory(loaded.resources))
    analysis = time.perf_counter() - start
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", str(tree), "-f", "json", "-o", "/dev/null",
                           "--fail-on", "never"], capture_output=True, cwd=HERE.parent)
    whole = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(done.stderr.decode()[-400:])
    print(f"inventory: {total} objects ({', '.join(f'{v} {k}' for k, v in counts.items())})")
    print("| measurement | result |")
    print("|---|---|")
    print(f"| network + RBAC rules ({len(rules)}) on the parsed inventory | {analysis:.2f} s, "
          f"{len(result.findings)} findings |")
    print(f"| whole `kaudit scan`, all rules, JSON report | {whole:.2f} s |")


if __name__ == "__main__":
    main()
