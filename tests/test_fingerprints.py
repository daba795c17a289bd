"""A fingerprint names one fact: unique within a report, stable across edits that do not change the
fact, and a baseline never hides a new finding behind a known one."""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from kaudit.model import Report
from kaudit.scan import ScanRequest, scan_manifests
from tests.conftest import REPO

BOOTSTRAP_RBAC = REPO.parent / "shared" / "data" / "kubernetes-bootstrap-rbac-v1.36.yaml"

CRB = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: platform-admins
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: Group, name: platform, apiGroup: rbac.authorization.k8s.io}
"""
CONTRACTORS = "  - {kind: Group, name: contractors, apiGroup: rbac.authorization.k8s.io}\n"


def fingerprints(report: Report) -> Counter[str]:
    return Counter(f.fingerprint for f in report.findings)


def assert_unique(report: Report) -> None:
    repeated = {fp: n for fp, n in fingerprints(report).items() if n > 1}
    assert not repeated, [(f.rule, f.resource.describe(), f.path_text, f.message) for f in report.findings
                          if f.fingerprint in repeated][:6]


def scan(*targets: Path) -> Report:
    return scan_manifests(ScanRequest(targets=tuple(str(t) for t in targets)))


def test_a_new_subject_of_a_cluster_admin_binding_fails_the_gate_despite_the_baseline(
        tmp_path: Path, kaudit: Callable[..., Any]) -> None:
    crb = tmp_path / "crb.yaml"
    crb.write_text(CRB)
    base = tmp_path / "base.json"
    assert kaudit("baseline", "create", crb, "-o", base).code == 0
    assert kaudit("scan", crb, "--baseline", base).code == 0
    crb.write_text(CRB + CONTRACTORS)
    result = kaudit("scan", crb, "--baseline", base, "-f", "json")
    assert result.code == 1
    active = [f for f in result.json()["findings"] if f["suppressed"] is None]
    assert active and all("contractors" in f["message"] for f in active)
    assert any(f["severity"] == "critical" for f in active)


def test_a_baseline_with_older_fingerprints_is_refused(tmp_path: Path, kaudit: Callable[..., Any]) -> None:
    crb = tmp_path / "crb.yaml"
    crb.write_text(CRB)
    base = tmp_path / "base.json"
    kaudit("baseline", "create", crb, "-o", base)
    old = json.loads(base.read_text())
    del old["fingerprintVersion"]
    base.write_text(json.dumps(old))
    result = kaudit("scan", crb, "--baseline", base)
    assert result.code == 2
    assert "recreate it" in result.err and result.err.count("\n") == 1


def test_unique_on_the_examples_and_the_bootstrap_policy() -> None:
    for target in (REPO / "examples" / "manifests", BOOTSTRAP_RBAC):
        # the bootstrap policy's findings are about platform defaults: shown only when asked for
        report = scan_manifests(ScanRequest(targets=(str(target),), include_platform=True))
        assert len(report.findings) > 10
        assert_unique(report)


def test_workload_with_several_dangerous_permissions_is_one_finding(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(CRB.replace("Group, name: platform", "ServiceAccount, name: runner, namespace: ci") + """---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ci}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          serviceAccountName: runner
          containers: [{name: job, image: registry.example.com/job:1}]
""")
    report = scan(manifest)
    # one fact: the CronJob's token carries these permissions (issue 13), not one finding per permission
    (on_cronjob,) = [f for f in report.findings if f.rule == "workload-with-dangerous-permissions"]
    assert "holds every permission on every resource" in on_cronjob.message  # cluster-admin says it all
    assert "can read secrets" not in on_cronjob.message
    assert_unique(report)


def _rbac_tree(rng: random.Random, size: int) -> list[dict[str, Any]]:
    """Roles with several rules, bindings with several subjects (some repeated), aggregation."""
    verbs = ["get", "list", "create", "*", "escalate", "bind", "impersonate", "update"]
    resources = ["secrets", "pods", "pods/exec", "*", "nodes/proxy", "serviceaccounts/token", "deployments",
                 "roles", "persistentvolumes", "certificatesigningrequests/approval"]
    objects: list[dict[str, Any]] = []
    for i in range(size):
        rules = [{"apiGroups": rng.sample(["", "apps", "*", "rbac.authorization.k8s.io", "certificates.k8s.io"], 2),
                  "resources": rng.sample(resources, rng.randint(1, 3)),
                  "verbs": rng.sample(verbs, rng.randint(1, 3))} for _ in range(rng.randint(1, 4))]
        labels = {"agg": "yes"} if rng.random() < 0.3 else {}
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": f"role-{i}", "labels": labels}, "rules": rules})
    objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}})
    names = [f"role-{i}" for i in range(size)] + ["agg", "cluster-admin", "admin", "edit"]
    for i in range(size * 2):
        subjects = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["User", "Group", "ServiceAccount"])
            subject = {"kind": kind, "name": rng.choice(["a", "b", "default", "system:authenticated"])}
            if kind == "ServiceAccount":
                subject["namespace"] = rng.choice(["ns1", "ns2"])
            subjects.append(subject)
        namespaced = rng.random() < 0.5
        binding: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespaced else "ClusterRoleBinding",
            "metadata": {"name": f"b-{i}", **({"namespace": rng.choice(["ns1", "ns2"])} if namespaced else {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rng.choice(names)},
            "subjects": subjects}
        objects.append(binding)
    for i in range(size):
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": f"w-{i}", "namespace": rng.choice(["ns1", "ns2"])},
                        "spec": {"template": {"spec": {
                            "serviceAccountName": rng.choice(["a", "b", "default"]),
                            "containers": [{"name": f"c{j}", "image": "nginx"} for j in range(rng.randint(1, 3))]}}}})
    return objects


def test_unique_on_a_generated_rbac_tree(tmp_path: Path) -> None:
    rng = random.Random(11)
    for index in range(3):
        path = tmp_path / f"tree-{index}.yaml"
        path.write_text(yaml.safe_dump_all(_rbac_tree(rng, 40)))
        report = scan(path)
        assert len(report.findings) > 200
        assert_unique(report)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 12))
def test_unique_on_random_trees(tmp_path: Path, seed: int, size: int) -> None:
    path = tmp_path / f"random-{seed}.yaml"
    path.write_text(yaml.safe_dump_all(_rbac_tree(random.Random(seed), size)))
    assert_unique(scan(path))


def test_the_same_object_in_two_files_gets_two_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CRB)
    (tmp_path / "b.yaml").write_text(CRB)
    report = scan(tmp_path)
    assert_unique(report)
    files = {f.location.file for f in report.findings}
    assert len(files) == 2


def test_copies_of_one_object_are_told_apart_by_file_then_by_number(tmp_path: Path) -> None:
    """The first copy keeps its fingerprint, the next of each file gets the file, every further one
    `#2`, `#3`, ... in the order they were read: baselines made before depend on exactly these."""
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\nspec:\n"
           "  containers: [{name: a, image: nginx, securityContext: {privileged: true}}]\n")
    (tmp_path / "a.yaml").write_text("---\n".join([pod] * 3))
    (tmp_path / "b.yaml").write_text("---\n".join([pod] * 2))
    report = scan(tmp_path)
    assert_unique(report)
    privileged = [f for f in report.findings if f.rule == "privileged-container"]
    assert [(Path(f.location.file or "").name, f.location.line, f.fact) for f in privileged] == [
        ("a.yaml", 5, ""), ("a.yaml", 11, "@a.yaml"), ("a.yaml", 17, "@#2"), ("b.yaml", 5, "@b.yaml"),
        ("b.yaml", 11, "@#3")]
    copies = 200  # numbered in order however many (each `#n` is tried once per group: kaudit/fingerprint.py)
    (tmp_path / "a.yaml").write_text("---\n".join([pod] * copies))
    (tmp_path / "b.yaml").unlink()
    facts = [f.fact for f in scan(tmp_path).findings if f.rule == "privileged-container"]
    assert facts == ["", "@a.yaml", *(f"@#{n}" for n in range(2, copies))]


def test_stable_across_line_moves_file_moves_and_list_reordering(tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
           "spec": {"containers": [{"name": "web", "image": "nginx", "securityContext": {"privileged": True}},
                                   {"name": "side", "image": "busybox:latest"}],
                    "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
    binding = yaml.safe_load(CRB + CONTRACTORS)
    first = tmp_path / "one" / "a.yaml"
    first.parent.mkdir()
    first.write_text(yaml.safe_dump_all([pod, binding]))
    before = {(f.rule, f.container, f.message): f.fingerprint for f in scan(first).findings}

    pod["spec"]["containers"].insert(0, {"name": "new", "image": "registry.example.com/x@sha256:" + "0" * 64})
    pod["spec"]["volumes"].insert(0, {"name": "tmp", "emptyDir": {}})
    binding["subjects"].reverse()
    moved = tmp_path / "two" / "renamed.yaml"
    moved.parent.mkdir()
    moved.write_text("# a comment\n\n" + yaml.safe_dump_all([binding, pod]))
    after = {(f.rule, f.container, f.message): f.fingerprint for f in scan(moved).findings}
    common = set(before) & set(after)
    assert len(common) > 15
    assert {key: before[key] for key in common} == {key: after[key] for key in common}


def test_items_sharing_a_name_fall_back_to_their_position(tmp_path: Path) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n"
           "  - {name: app, image: nginx}\n  - {name: app, image: nginx}\n")
    first, moved = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(pod)
    moved.write_text("# moved\n\n" + pod)
    before, after = scan(first), scan(moved)
    assert_unique(before)
    assert sorted(f.fingerprint for f in before.findings) == sorted(f.fingerprint for f in after.findings)


def test_a_baseline_counts_as_fixed_only_what_the_scan_could_see_again(
        tmp_path: Path, kaudit: Callable[..., Any]) -> None:
    insecure = REPO / "examples/manifests/insecure"
    base = tmp_path / "base.json"
    assert kaudit("baseline", "create", insecure, "-o", base).code == 0

    def facts(document: dict[str, Any]) -> set[str]:
        return {e["fingerprint"] for f in document["findings"] for e in [f, *f.get("joined", ())]}

    known = facts(json.loads(base.read_text()))
    whole = kaudit("scan", insecure, "--baseline", base, "-f", "json").json()["baseline"]
    assert (whole["new"], whole["fixed"], whole["unseen"]) == (0, 0, 0) and whole["unchanged"] > 0
    # one file of the tree, copied elsewhere, its password moved to a Secret: that fact is fixed;
    # the other files' facts were not seen again, and are not called fixed
    web = tmp_path / "web.yaml"
    text = (insecure / "web-deployment.yaml").read_text()
    web.write_text(text.replace("value: s3cr3t-passw0rd",
                                "valueFrom: {secretKeyRef: {name: db, key: password}}"))
    one = kaudit("scan", web, "--baseline", base, "-f", "json").json()
    compared = one["baseline"]
    assert compared["new"] == 0 and compared["fixed"] == 1, compared
    assert compared["unseen"] == len(known - facts(one)) - 1 > 0
