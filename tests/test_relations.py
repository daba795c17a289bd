"""Issue 13, "one finding per fact": rules declare relations (same-as, implies) and the engine
reports related findings once, the others joined to the leader with their rule, message, field and
fingerprint (kaudit/relations.py)."""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Report
from kaudit.relations import Relations, join
from kaudit.ruleset import load_builtin_rules
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.sources.manifests import load_manifests
from tests import html_data

from .conftest import CliResult, every_fact

Kaudit = Callable[..., CliResult]
REPO = Path(__file__).resolve().parent.parent
INSECURE = REPO / "examples" / "manifests" / "insecure"


def scan(tmp_path: Path, text: str, frameworks: tuple[str, ...] = ()) -> Report:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return scan_manifests(ScanRequest(targets=(str(path),), frameworks=frameworks))


def pod(security: str = "", image: str = "registry.example.com/app:1.0", volumes: str = "") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: shop}}
spec:
  containers:
    - name: app
      image: {image}
      securityContext: {{{security}}}
{volumes}"""


# -- the five pairs the issue measured -------------------------------------------------------------

FIVE_PAIRS = [
    # (kaudit rule that leads, its Pod Security / weaker counterpart joined to it, the manifest)
    ("run-as-root", "run-as-non-root-not-enforced", pod()),
    ("capabilities-not-dropped", "capabilities-not-restricted", pod()),
    ("seccomp-unconfined", "seccomp-profile-not-enforced", pod()),
    ("host-path-volume", "non-restricted-volume-type",
     # a path no more specific rule claims (/var/log is sensitive-host-path's, which then leads)
     pod(volumes="  volumes:\n    - name: cache\n      hostPath: {path: /srv/cache}\n")),
    ("latest-tag", "image-not-pinned-by-digest", pod(image="nginx:latest")),
]


@pytest.mark.parametrize("leader, joined, manifest", FIVE_PAIRS, ids=[p[0] for p in FIVE_PAIRS])
def test_the_five_pairs_are_one_finding(tmp_path: Path, leader: str, joined: str, manifest: str) -> None:
    report = scan(tmp_path, manifest)
    facts = [f for f in report.active_findings if {leader, joined} & set(f.rules)]
    assert len(facts) == 1, [f.rules for f in facts]
    (finding,) = facts
    assert finding.rule == leader and [j.rule for j in finding.joined if j.rule == joined] == [joined]
    entry = next(j for j in finding.joined if j.rule == joined)
    assert entry.relation in ("same-as", "implied") and entry.message and entry.fingerprint != finding.fingerprint
    # the joined rule's fact is still what it was: its own engine finding, same fingerprint
    engine = run(load_builtin_rules(), Inventory(load_manifests([str(tmp_path / "m.yaml")]).resources)).findings
    assert entry.fingerprint in {f.fingerprint for f in engine if f.rule == joined}


def test_joined_framework_controls_still_fail_and_the_pss_framework_shows_each_control(tmp_path: Path) -> None:
    report = scan(tmp_path, pod())
    restricted = next(r for r in report.frameworks if r.id == "pss-restricted")
    statuses = {c.id: c.status for c in restricted.controls}
    # run-as-non-root-not-enforced and capabilities-not-restricted are joined, their controls fail
    assert statuses["running-as-non-root"] == "fail" and statuses["capabilities"] == "fail"
    selected = scan(tmp_path, pod(), frameworks=("pss-restricted",))
    failing = {c.id for r in selected.frameworks for c in r.controls if c.status == "fail"}
    assert {"running-as-non-root", "capabilities", "seccomp"} <= failing
    rules = {rule for f in selected.active_findings for rule in f.rules}
    assert {"run-as-non-root-not-enforced", "capabilities-not-restricted", "seccomp-profile-not-enforced"} <= rules


# -- privileged: its consequences join it; independent facts stay -------------------------------

PRIVILEGED = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: monitoring}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
        - name: agent
          image: registry.example.com/agent:1.0
          securityContext:
            privileged: true
            allowPrivilegeEscalation: true
            capabilities: {add: [SYS_ADMIN, NET_RAW]}
            seccompProfile: {type: Unconfined}
      volumes:
        - name: data
          hostPath: {path: /var/lib/agent}
"""


def test_a_privileged_container_is_one_finding_with_its_consequences(tmp_path: Path) -> None:
    report = scan(tmp_path, PRIVILEGED)
    (privileged,) = [f for f in report.active_findings if "privileged-container" in f.rules]
    assert privileged.rule == "privileged-container" and privileged.severity.label == "critical"
    joined = collections.Counter(j.rule for j in privileged.joined)
    assert joined["dangerous-capabilities"] == 2  # SYS_ADMIN and NET_RAW: all capabilities anyway
    assert {"privilege-escalation-allowed", "capabilities-not-dropped", "seccomp-unconfined",
            "capabilities-not-restricted", "seccomp-profile-not-enforced"} <= set(joined)
    assert all(j.container == "agent" for j in privileged.joined)
    # not consequences of privileged: their own findings
    leaders = {f.rule for f in report.active_findings}
    assert {"run-as-root", "writable-root-filesystem", "host-path-volume"} <= leaders
    engine = run(load_builtin_rules(), Inventory(load_manifests([str(tmp_path / "m.yaml")]).resources)).findings
    on_agent = [f for f in engine if f.container == "agent"]
    assert len(on_agent) - len([f for f in report.active_findings if f.container == "agent"]) >= 6


# -- RBAC: one grant, one finding; one token, one finding ----------------------------------------

CLUSTER_ADMIN = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: runner-admin}
subjects: [{kind: ServiceAccount, name: runner, namespace: ci}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: runner, namespace: ci}
spec:
  selector: {matchLabels: {app: runner}}
  template:
    metadata: {labels: {app: runner}}
    spec:
      serviceAccountName: runner
      containers: [{name: runner, image: registry.example.com/runner:1.0}]
"""


def test_a_cluster_admin_workload_and_binding_are_one_finding_each(tmp_path: Path) -> None:
    report = scan(tmp_path, CLUSTER_ADMIN)
    on_binding = [f for f in report.active_findings if f.resource.kind == "ClusterRoleBinding"]
    assert [f.rule for f in on_binding] == ["cluster-admin-binding"]
    joined = {j.rule for j in on_binding[0].joined}
    assert {"rbac-wildcard", "rbac-secrets-read", "rbac-escalate-bind-impersonate", "rbac-pod-exec",
            "rbac-nodes-proxy", "rbac-token-create", "rbac-webhook-write", "rbac-csr-approval",
            "rbac-create-workloads", "rbac-create-persistentvolumes"} <= joined
    tokens = [f for f in report.active_findings if f.rule == "workload-with-dangerous-permissions"]
    assert len(tokens) == 1 and tokens[0].resource.name == "runner"
    assert "holds every permission on every resource" in tokens[0].message


def test_a_token_with_several_permissions_names_them_in_one_finding(tmp_path: Path) -> None:
    text = CLUSTER_ADMIN.replace("kind: ClusterRole, name: cluster-admin", "kind: ClusterRole, name: ops") + """---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ops}
rules:
  - {apiGroups: [""], resources: [secrets], verbs: [get, list]}
  - {apiGroups: [""], resources: [pods/exec], verbs: [create]}
"""
    report = scan(tmp_path, text)
    (token,) = [f for f in report.active_findings if f.rule == "workload-with-dangerous-permissions"]
    assert "can read secrets and can exec into" in token.message and "(and 1 more grant)" in token.message
    # the role's rules are two places to fix: one finding each, not joined across rules[0] and rules[1]
    on_role = sorted(f.path for f in report.active_findings if f.resource.kind == "ClusterRole")
    assert on_role == [("rules", 0), ("rules", 1)]


def test_one_binding_two_subjects_stay_two_facts(tmp_path: Path) -> None:
    text = """apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-edit, namespace: shop}
subjects: [{kind: User, name: alice}, {kind: User, name: bob}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
"""
    report = scan(tmp_path, text)
    findings = [f for f in report.active_findings if f.resource.kind == "RoleBinding"]
    assert sorted(f.subject or "" for f in findings) == ["User:alice", "User:bob"]
    assert all(len({j.rule for j in f.joined}) >= 3 for f in findings)  # secrets, exec, workloads, tokens...


# -- namespace facts join their workloads' ---------------------------------------------------------

def test_a_namespace_without_policy_joins_its_workloads_isolation(tmp_path: Path) -> None:
    web = PRIVILEGED.replace("name: agent, namespace: monitoring", "name: web, namespace: shop")
    report = scan(tmp_path, web + "---\n" + web.replace("name: web,", "name: api,"))
    isolation = [f for f in every_fact(_json(report)) if f["rule"].startswith("workload-not-isolated")]
    assert len(isolation) == 4 and all(f.get("joinedTo") == "namespace-without-network-policy" for f in isolation)
    (namespace,) = [f for f in report.active_findings if f.rule == "namespace-without-network-policy"]
    assert {j.resource.name for j in namespace.joined if j.rule.startswith("workload")} == {"web", "api"}
    # with a policy in the namespace that misses the workloads, each workload is its own fact again
    policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db, namespace: shop}\n" \
             "spec:\n  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Ingress]\n"
    report = scan(tmp_path, web + policy)
    ingress = [f for f in report.active_findings if f.rule == "workload-not-isolated-ingress"]
    assert len(ingress) == 1 and ingress[0].resource.name == "web"


def _json(report: Report) -> list[dict[str, Any]]:
    from kaudit.writers.json_report import to_dict

    return to_dict(report)["findings"]  # type: ignore[no-any-return]


# -- what does not join ---------------------------------------------------------------------------

def test_a_suppressed_finding_stays_apart(tmp_path: Path) -> None:
    text = pod().replace("metadata: {name: app, namespace: shop}",
                         "metadata:\n  name: app\n  namespace: shop\n  annotations:\n"
                         "    kaudit.io/ignore: run-as-root\n    kaudit.io/ignore-reason: runs as root by design")
    report = scan(tmp_path, text)
    (suppressed,) = [f for f in report.findings if f.rule == "run-as-root"]
    assert suppressed.suppressed is not None and not suppressed.joined
    (pss,) = [f for f in report.active_findings if "run-as-non-root-not-enforced" in f.rules]
    assert pss.rule == "run-as-non-root-not-enforced"  # the PSS control's fact is not silenced with it


def test_a_new_fact_joined_to_a_known_one_is_new(kaudit: Kaudit, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(pod(security="privileged: true"))
    baseline = tmp_path / "baseline.json"
    assert kaudit("baseline", "create", str(path), "-o", str(baseline)).code == 0
    path.write_text(pod(security="privileged: true, capabilities: {add: [SYS_MODULE]}"))
    result = kaudit("scan", str(path), "--baseline", str(baseline), "-f", "json")
    assert result.code == 1
    (privileged,) = [f for f in result.json()["findings"] if f["rule"] == "privileged-container"]
    assert privileged["suppressed"] is None  # its new joined fact (SYS_MODULE) makes it new
    assert "dangerous-capabilities" in {j["rule"] for j in privileged["joined"]}
    again = kaudit("baseline", "create", str(path), "-o", str(baseline))
    assert again.code == 0
    assert kaudit("scan", str(path), "--baseline", str(baseline)).code == 0


# -- the engine's rules --------------------------------------------------------------------------

def test_leader_is_most_severe_then_the_cause() -> None:
    rules = {rule.id: rule for rule in load_builtin_rules()}
    relations = Relations.of(rules.values())
    assert relations.same_fact("run-as-root", "run-as-non-root-not-enforced")
    assert relations.same_fact("capabilities-not-dropped", "dangerous-capabilities")  # a chain of same-as
    assert relations.implies("privileged-container", "capabilities-not-restricted")  # through its same-as
    assert relations.implies("namespace-without-network-policy", "workload-not-isolated-egress")  # transitive
    assert not relations.implies("workload-not-isolated-egress", "namespace-without-network-policy")
    assert not relations.same_fact("workload-not-isolated-ingress", "workload-not-isolated-egress")


def test_relations_to_unknown_rules_are_refused(kaudit: Kaudit, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    source = (REPO / "rules" / "workload-hardening" / "run-as-root.yaml").read_text()
    custom = source.replace("id: run-as-root", "id: my-run-as-root").replace(
        "relations:", "relations-unused:").replace("references:", "relations:\n  same-as: [no-such-rule]\nreferences:", 1)
    (rules / "mine.yaml").write_text(custom)
    result = kaudit("rules", "validate", str(rules))
    assert result.code == 1 and "relations.same-as names 'no-such-rule'" in result.out
    scanned = kaudit("scan", str(INSECURE), "--rules", str(rules))
    assert scanned.code == 2 and "no-such-rule" in scanned.err and "Traceback" not in scanned.err
    (rules / "mine.yaml").write_text(custom.replace("no-such-rule", "run-as-root"))
    assert kaudit("rules", "validate", str(rules)).code == 0


def test_the_leader_does_not_depend_on_the_order_of_lines(tmp_path: Path) -> None:
    # Two containers of one name (invalid, but written) join as one unit; which one leads was the
    # first in the file, so moving initContainers above containers changed the reported
    # fingerprint (found by the property test on fingerprints)
    init = "  initContainers:\n    - {name: app, image: nginx}\n"
    main = "  containers:\n    - {name: app, image: nginx}\n"
    head = "apiVersion: v1\nkind: Pod\nmetadata: {name: app, namespace: shop}\nspec:\n"
    first = scan(tmp_path, head + main + init)
    second = scan(tmp_path, head + init + main)
    assert sorted(f.fingerprint for f in first.findings) == sorted(f.fingerprint for f in second.findings)
    assert sorted(f.path_text for f in first.findings) == sorted(f.path_text for f in second.findings)


def test_an_object_declared_twice_in_one_file_is_judged_at_each_declaration(tmp_path: Path) -> None:
    # Pasted twice into one file (kubectl applies both, the last wins): two places to fix, each with
    # its own findings at its own lines. The join grouped findings by object and file, so the two
    # copies' facts joined into one, led by whichever fingerprint sorted first: shown at one copy's
    # lines, at the other's when the file was scanned with a third copy elsewhere (property (e)).
    text = pod() + "---\n" + pod()
    second_starts = len(pod().splitlines()) + 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "m.yaml").write_text(pod())
    alone = scan(tmp_path, text)
    together = scan_manifests(ScanRequest(targets=(str(tmp_path / "m.yaml"), str(tmp_path / "other" / "m.yaml"))))
    for report in (alone, together):
        in_file = [f for f in report.active_findings if f.location.file == str(tmp_path / "m.yaml")]
        dropped = [f for f in in_file if f.rule == "capabilities-not-dropped"]
        assert sorted((f.location.line or 0) >= second_starts for f in dropped) == [False, True]
        for finding in dropped:
            copy = (finding.location.line or 0) >= second_starts
            # each joined only with its own declaration's facts
            assert [j.rule for j in finding.joined] == ["capabilities-not-restricted"]
            assert all(((j.location.line or 0) >= second_starts) == copy for j in finding.joined)
    lines = collections.Counter((f.rule, f.location.line) for f in alone.active_findings)
    assert lines == collections.Counter((f.rule, f.location.line) for f in together.active_findings
                                        if f.location.file == str(tmp_path / "m.yaml"))


class _CountingRelations(Relations):
    """Relations that count the rule pairs the join compares: the work it does, not the time."""
    compared = 0

    def same_fact(self, a: str, b: str) -> bool:
        _CountingRelations.compared += 1
        return super().same_fact(a, b)


def test_join_is_linear_on_a_pod_with_many_containers() -> None:
    # 3,000 privileged containers of one name (invalid, hostile): one unit, joined without pairwise work
    import yaml

    from kaudit.model import Origin, Resource, ResourceRef
    from kaudit.value import fields
    # what a scan runs (opt-in rules are off), without the resource rules: they relate to none, and
    # their 3,000 findings each would only dilute the joins counted
    rules = [rule for rule in load_builtin_rules() if rule.enabled and rule.category != "resources"]
    containers = "\n".join(f"    - {{name: c, image: 'r.example.com/i:1', securityContext: {{privileged: true}}}}"
                           for _ in range(3000))
    body = yaml.safe_load(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}\n")
    resource = Resource(ResourceRef("v1", "Pod", "p"), body, Origin(file="p.yaml"))
    findings = run(rules, Inventory([resource])).findings
    relations = _CountingRelations(**{f.name: getattr(Relations.of(rules), f.name)
                                      for f in fields(Relations)})
    joined = join(findings, relations)
    assert len(joined) < len(findings) / 2
    # pairwise would be ~10^8 comparisons (and minutes); each finding meets a handful of others
    assert 0 < _CountingRelations.compared < 10 * len(findings), (_CountingRelations.compared, len(findings))


# -- the budget on the bundled examples ------------------------------------------------------------

def test_insecure_examples_share_fields_at_most_ten_percent_and_keep_every_rule() -> None:
    report = scan_manifests(ScanRequest(targets=(str(INSECURE),)))
    active = report.active_findings
    # A namespace's missing guard rails (no NetworkPolicy, no LimitRange, no ResourceQuota) are
    # distinct facts, each fixed by adding its own object, with nowhere to sit but the namespace's name.
    absences = {rule.id for rule in load_builtin_rules() if rule.target == "namespace"}
    # An attack path sits on its entry point's exposing field (hostNetwork, a Service's type), one
    # per crown jewel it reaches: each path is its own fact, fixed by cutting any of its steps.
    paths = "attack-path-to-cluster-admin"
    places = collections.Counter((f.resource, f.location.file, f.container, f.path) for f in active
                                 if f.rule != paths)
    sharing = sum(1 for f in active if f.rule not in absences and f.rule != paths
                  and places[(f.resource, f.location.file, f.container, f.path)] > 1)
    assert sharing <= 0.10 * len(active), (sharing, len(active))
    # what the scan ran: opt-in rules (enabled: false) are off without a config
    engine = run([rule for rule in load_builtin_rules() if rule.enabled],
                 Inventory(load_manifests([str(INSECURE)]).resources)).findings
    # 165 -> 86 when this was written; 172 -> 104 with issue 14's workload rules, whose facts
    # (no controller, the default account, a priority class) are separate and join nothing
    assert len(active) < 0.65 * len(engine)
    reported = {rule for f in active for rule in f.rules}
    assert reported == {f.rule for f in engine}  # every rule id still visible


def test_every_output_shows_the_joined_rules(kaudit: Kaudit, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(PRIVILEGED)
    text = kaudit("scan", str(path), "-v").out  # joined rules are a detail: -v
    assert "also: " in text and "privilege-escalation-allowed" in text
    assert "also: " not in kaudit("scan", str(path)).out
    sarif = json.loads(kaudit("scan", str(path), "-f", "sarif").out)
    run_ = sarif["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert {"target": {"id": "run-as-root", "index": list(rules).index("run-as-root")}, "kinds": ["equal"]} in \
        rules["run-as-non-root-not-enforced"]["relationships"]
    (result,) = [r for r in run_["results"] if r["ruleId"] == "privileged-container"]
    assert "privilege-escalation-allowed" in result["properties"]["joinedRules"]
    html = kaudit("scan", str(path), "-f", "html").out
    assert "privilege-escalation-allowed" in html_data.joined_rules(html, "privileged-container")
    markdown = kaudit("scan", str(path), "-f", "markdown", "-v").out
    assert "also: " in markdown
