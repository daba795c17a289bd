"""Issue 13: platform-owned objects are recognised by content, never by name.

The budget: Kubernetes' own v1.36 bootstrap policy (../shared/data, read from a running v1.36.2 API
server) scans to 0 findings and exit 0 with its 135 objects counted; one subject or one rule added
to it is reported as exactly that difference; a user's objects are judged as before, whatever their
names and labels.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import jsonschema
import pytest
import yaml

from kaudit import platform
from kaudit.analyzers import bootstrap_rbac
from kaudit.model import Origin, Resource, ResourceRef
from kaudit.scan import ScanRequest, scan_manifests
from tests.conftest import REPO, CliResult

Kaudit = Callable[..., CliResult]
BOOTSTRAP = REPO.parent / "shared" / "data" / "kubernetes-bootstrap-rbac-v1.36.yaml"
GENERATOR = REPO / "scripts" / "generate-bootstrap-rbac"
SCHEMA = json.loads((REPO / "reports" / "report.schema.json").read_text())
RBAC = "rbac.authorization.k8s.io/v1"
SUMMARY = "135 platform defaults, identical to Kubernetes v1.36 bootstrap policy"


def bootstrap_objects() -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(BOOTSTRAP.read_text()) if isinstance(o, dict)]


def edited(kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    objects = bootstrap_objects()
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1
    change(found[0])
    return objects


def write_objects(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def scan_json(kaudit: Kaudit, *args: Any) -> tuple[int, dict[str, Any], str]:
    result = kaudit("scan", *args, "-f", "json")
    report = result.json()
    jsonschema.validate(report, SCHEMA)
    return result.code, report, result.err


def resource(body: dict[str, Any]) -> Resource:
    meta = body.get("metadata") or {}
    ref = ResourceRef(body["apiVersion"], body["kind"], meta.get("name", ""), meta.get("namespace"))
    return Resource(ref, body, Origin(file="test.yaml", line=1))


MANIFESTS = platform.Versions.of(None)


def judge(body: dict[str, Any], versions: platform.Versions = MANIFESTS) -> Optional[platform.Verdict]:
    return platform.judge(resource(body), versions)


def differences(body: dict[str, Any]) -> list[tuple[str, str]]:
    verdict = judge(body)
    assert verdict is not None
    from kaudit.model import format_path
    return [(format_path(d.path), d.text) for d in verdict.differences]


# --- 1. the bootstrap policy of each shipped minor, as data ---------------------------------------

def test_the_shipped_policy_has_all_four_kinds_and_says_where_it_comes_from() -> None:
    assert "1.36" in bootstrap_rbac.minors()
    policy = bootstrap_rbac.policy("1.36")
    counts = {section: len(policy[section]) for section in ("clusterRoles", "clusterRoleBindings", "roles",
                                                            "roleBindings")}
    assert counts == {"clusterRoles": 70, "clusterRoleBindings": 51, "roles": 7, "roleBindings": 7}
    assert policy["source"] == {"dump": BOOTSTRAP.name, "version": "v1.36.2"}
    assert policy["clusterRoleBindings"]["system:discovery"] == {
        "roleRef": {"kind": "ClusterRole", "name": "system:discovery"},
        "subjects": [{"kind": "Group", "name": "system:authenticated"}]}
    assert policy["roleBindings"]["kube-public/system:controller:bootstrap-signer"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "bootstrap-signer", "namespace": "kube-system"}]
    # aggregating roles: selectors and no rules (the controller's copy is not the definition)
    assert policy["clusterRoles"]["admin"]["rules"] == [] and "aggregationRule" in policy["clusterRoles"]["admin"]


def test_the_shipped_data_is_what_the_generator_makes_of_the_shared_dump(tmp_path: Path) -> None:
    output = tmp_path / "bootstrap-rbac.json"
    done = subprocess.run([sys.executable, str(GENERATOR), str(BOOTSTRAP), "-o", str(output)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shipped = json.loads((REPO / "kaudit" / "data" / "bootstrap-rbac.json").read_text())
    assert json.loads(output.read_text())["minors"]["1.36"] == shipped["minors"]["1.36"]


GOLDEN_DIR = "plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata"


def _golden_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The objects as upstream's golden files write them: Lists, `creationTimestamp: null`,
    `rules: null` for aggregating roles, controllers' roles and bindings in their own files."""
    files: dict[str, list[dict[str, Any]]] = {}
    for obj in copy.deepcopy(objects):
        obj["metadata"]["creationTimestamp"] = None
        if "aggregationRule" in obj:
            obj["rules"] = None
        controller = obj["metadata"]["name"].startswith("system:controller:")
        name = {"ClusterRole": "controller-roles" if controller else "cluster-roles",
                "ClusterRoleBinding": "controller-role-bindings" if controller else "cluster-role-bindings",
                "Role": "namespace-roles", "RoleBinding": "namespace-role-bindings"}[obj["kind"]]
        files.setdefault(name, []).append(obj)
    return {f"{GOLDEN_DIR}/{name}.yaml": yaml.safe_dump({"apiVersion": "v1", "items": items, "kind": "List",
                                                          "metadata": {}})
            for name, items in files.items()}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A kubernetes/kubernetes-shaped repository: the v1.36 policy tagged v1.36.0, then a later
    commit on the branch that changes it (the tag must be what is read, not the branch)."""
    repo = tmp_path / "kubernetes"
    repo.mkdir()
    _git(repo, "init", "-q")
    for path, text in _golden_files(bootstrap_objects()).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "v1.36.0")
    _git(repo, "tag", "v1.36.0")
    (repo / GOLDEN_DIR / "namespace-roles.yaml").write_text("apiVersion: v1\nitems: []\nkind: List\n")
    _git(repo, "commit", "-qam", "later")
    return repo


def test_the_generator_reads_upstream_golden_files_at_a_release_tag(tmp_path: Path, upstream: Path) -> None:
    output = tmp_path / "out.json"
    for gitdir in (upstream, upstream / ".git"):  # a checkout or its git directory
        done = subprocess.run([sys.executable, str(GENERATOR), "--upstream", str(gitdir), "--tag", "v1.36.0",
                               "-o", str(output)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        generated = json.loads(output.read_text())["minors"]["1.36"]
        shipped = bootstrap_rbac.policy("1.36")
        assert {k: v for k, v in generated.items() if k != "source"} == \
            {k: v for k, v in shipped.items() if k != "source"}
        assert generated["source"]["tag"] == "v1.36.0"
        assert generated["source"]["commit"] == _git(upstream, "rev-parse", "v1.36.0")


def test_the_generator_says_in_one_line_when_a_tag_is_missing(tmp_path: Path, upstream: Path) -> None:
    output = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(GENERATOR), "--upstream", str(upstream), "--tag", "v1.35.0",
                           "-o", str(output)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "v1.35.0" in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not output.exists()


# --- 2. content comparison ------------------------------------------------------------------------

BASIC_USER_RULES = [
    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
     "verbs": ["create"]},
    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
]


def cluster_role(name: str, rules: Any, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name, **extra.pop("metadata", {})},
            "rules": rules, **extra}


def binding(name: str, role: str, subjects: list[dict[str, Any]], kind: str = "ClusterRoleBinding",
            namespace: Optional[str] = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole" if kind.startswith("Cluster")
                        else "Role", "name": role}, "subjects": subjects}


GROUP_AUTHENTICATED = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
ALICE = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}


def test_identical_means_the_same_rules_in_any_order_empty_lists_as_missing_ones() -> None:
    reordered = [dict(reversed(list(rule.items()))) for rule in reversed(BASIC_USER_RULES)]
    reordered[0]["resources"] = list(reversed(reordered[0]["resources"]))
    reordered[1]["resourceNames"] = []
    verdict = judge(cluster_role("system:basic-user", reordered))
    assert verdict is not None and verdict.is_default and verdict.minors == ("1.36",)


def test_the_same_or_fewer_subjects_is_the_default_and_one_more_is_a_difference() -> None:
    viewer = "system:public-info-viewer"
    assert judge(binding(viewer, viewer, [GROUP_AUTHENTICATED])).is_default  # type: ignore[union-attr]
    assert judge(binding(viewer, viewer, [])).is_default  # type: ignore[union-attr]
    assert differences(binding("system:discovery", "system:discovery", [GROUP_AUTHENTICATED, ALICE])) == [
        ("subjects[1]", "adds subject User alice to the Kubernetes v1.36 default (subjects: Group "
                        "system:authenticated)")]


def test_a_binding_to_another_role_differs_in_its_role_ref_and_keeps_no_default_subject() -> None:
    verdict = judge(binding("system:discovery", "cluster-admin", [GROUP_AUTHENTICATED]))
    assert verdict is not None and [d.path for d in verdict.differences] == [("roleRef",)]
    assert "refers to ClusterRole cluster-admin; the Kubernetes v1.36 default refers to ClusterRole " \
           "system:discovery" in verdict.differences[0].text
    assert not verdict.default_subjects  # its subjects now get cluster-admin: nothing of it is the default


def test_names_and_labels_alone_make_nothing_platform_owned() -> None:
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    own = cluster_role("system:controller:my-operator", [{"apiGroups": [""], "resources": ["secrets"],
                                                          "verbs": ["get"]}],
                       metadata={"labels": labels, "annotations": annotations})
    assert judge(own) is None  # no bootstrap object of that name: an ordinary role
    # a namespaced bootstrap object's name without its namespace is applied wherever -n says
    role = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "system:controller:token-cleaner"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete", "get", "list", "watch"]},
                      {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
                       "verbs": ["create", "patch", "update"]}]}
    assert judge(role) is None
    assert judge({**role, "metadata": {**role["metadata"], "namespace": "kube-system"}}).is_default  # type: ignore
    assert judge({**role, "metadata": {**role["metadata"], "namespace": "shop"}}) is None


def test_an_added_rule_a_missing_rule_and_aggregation_labels_are_differences() -> None:
    star = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert differences(cluster_role("system:basic-user", [*BASIC_USER_RULES, star])) == [
        ("rules[2]", "adds rules[2] (verbs * on * in groups *) to the Kubernetes v1.36 default (2 rules)")]
    missing = differences(cluster_role("system:basic-user", BASIC_USER_RULES[:1]))
    assert missing == [("rules", "lacks the rule (verbs create on selfsubjectreviews in groups "
                                 "authentication.k8s.io) of the Kubernetes v1.36 default; the API server adds it "
                                 "back at its next start")]
    opted_out = cluster_role("system:basic-user", BASIC_USER_RULES[:1], metadata={
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}})
    assert "autoupdate is off, so the API server does not add it back" in differences(opted_out)[0][1]
    labelled = cluster_role("system:basic-user", BASIC_USER_RULES, metadata={
        "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true", "team": "platform"}})
    assert differences(labelled) == [
        ('metadata.labels["rbac.authorization.k8s.io/aggregate-to-edit"]',
         "adds the aggregation label rbac.authorization.k8s.io/aggregate-to-edit=true, which the Kubernetes "
         "v1.36 default lacks (its rules join the roles that aggregate that label)")]
    # `edit` is itself aggregated into `admin`: dropping that label is a difference too
    edit = cluster_role("edit", [], aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}}]})
    assert [path for path, _ in differences(edit)] == ["metadata.labels"]


def test_an_aggregating_roles_rules_are_the_controllers_copy_its_selectors_are_compared() -> None:
    selectors = {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}
    filled = cluster_role("admin", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}],
                          aggregationRule=selectors)
    assert judge(filled).is_default  # type: ignore[union-attr]
    wider = copy.deepcopy(filled)
    wider["aggregationRule"]["clusterRoleSelectors"].append({"matchLabels": {"team": "platform"}})
    assert differences(wider) == [
        ("aggregationRule", "aggregates the ClusterRoles labelled rbac.authorization.k8s.io/aggregate-to-admin="
                            "true; team=platform; the Kubernetes v1.36 default aggregates those labelled "
                            "rbac.authorization.k8s.io/aggregate-to-admin=true")]
    plain = cluster_role("admin", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    assert [path for path, _ in differences(plain)] == ["aggregationRule", "rules[0]"]


def test_a_cluster_scan_compares_with_the_servers_minor_or_the_nearest_shipped() -> None:
    assert (platform.Versions.of("v1.36.2").minors, platform.Versions.of("v1.36.2").server) == (("1.36",), "1.36")
    assert not platform.Versions.of("v1.36.2").compared_with_nearest()
    newer = platform.Versions.of("v1.37.1")
    assert newer.minors == (bootstrap_rbac.nearest("1.37"),) and newer.server == "1.37"
    assert newer.compared_with_nearest() == ("1.37" not in bootstrap_rbac.minors())
    for unknown in (None, "", "garbage"):
        assert platform.Versions.of(unknown).minors == tuple(bootstrap_rbac.minors())
    assert bootstrap_rbac.nearest("1.20") == bootstrap_rbac.minors()[0]


KUBERNETES_SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver"}},
    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "sessionAffinity": "None",
             "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}


@pytest.mark.parametrize("body, owned", [
    (KUBERNETES_SERVICE, True),
    ({**KUBERNETES_SERVICE, "spec": {**KUBERNETES_SERVICE["spec"], "type": "NodePort"}}, False),
    ({**KUBERNETES_SERVICE, "spec": {**KUBERNETES_SERVICE["spec"], "selector": {"app": "api"}}}, False),
    ({**KUBERNETES_SERVICE, "metadata": {"name": "kubernetes", "namespace": "shop"}}, False),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"},
      "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}, True),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"},
      "data": {"ca.crt": "x", "password": "hunter2"}}, False),
    ({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}}, True),
    ({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"},
      "automountServiceAccountToken": False, "secrets": [{"name": "default-token-x7k2p"}]}, True),
    ({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"},
      "imagePullSecrets": [{"name": "registry"}]}, False),
    ({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "shop"}}, False),
])
def test_control_plane_objects_are_recognised_by_content(body: dict[str, Any], owned: bool) -> None:
    verdict = judge(body)
    assert (verdict is not None and verdict.is_default and verdict.source == "control-plane") == owned


# --- 3-5. the budget: reports and exit codes ------------------------------------------------------

def test_kubernetes_own_bootstrap_policy_passes_with_every_object_counted(kaudit: Kaudit) -> None:
    code, report, _ = scan_json(kaudit, BOOTSTRAP)
    assert code == 0 and report["findings"] == []
    hidden = report["platform"]["findingsHidden"]
    assert report["platform"] == {"objects": 135, "bootstrapRbac": 135, "minors": ["1.36"], "serverMinor": None,
                                  "modified": 0, "findingsHidden": hidden, "findingsShown": 0, "included": False}
    assert hidden > 20
    # every control passes: no CIS or NSA failure stems from Kubernetes' own policy
    assert all(f["fail"] == 0 for f in report["frameworks"])
    text = kaudit("scan", BOOTSTRAP)
    assert text.code == 0
    assert f"{SUMMARY} ({hidden} findings not shown: --include-platform)" in text.out.splitlines()[-1]
    assert SUMMARY in text.out.splitlines()[-1]
    # nobody reads a JSON report on a terminal: the verdict on standard error says it too
    assert SUMMARY in kaudit("scan", BOOTSTRAP, "-f", "json").err


def test_include_platform_reports_them(kaudit: Kaudit) -> None:
    code, report, _ = scan_json(kaudit, BOOTSTRAP, "--include-platform")
    assert code == 1
    assert len(report["findings"]) == report["platform"]["findingsShown"] > 20
    assert report["platform"]["included"] and report["platform"]["findingsHidden"] == 0
    assert {f["resource"]["name"] for f in report["findings"]} >= {"system:discovery", "system:basic-user"}
    assert "findings on them shown" in kaudit("scan", BOOTSTRAP, "--include-platform").out.splitlines()[-1]


def test_a_subject_added_to_system_discovery_is_exactly_that_difference(kaudit: Kaudit, tmp_path: Path) -> None:
    objects = edited("ClusterRoleBinding", "system:discovery", lambda o: o["subjects"].append(ALICE))
    code, report, _ = scan_json(kaudit, write_objects(tmp_path / "alice.yaml", objects))
    assert [(f["rule"], f["resource"]["name"], f["path"], f["message"]) for f in report["findings"]] == [
        ("modified-platform-default", "system:discovery", "subjects[1]",
         'ClusterRoleBinding "system:discovery" adds subject User alice to the Kubernetes v1.36 default '
         "(subjects: Group system:authenticated)")]
    assert code == 0  # medium, below the default gate
    assert report["platform"]["objects"] == 134 and report["platform"]["modified"] == 1


def test_a_wildcard_rule_added_to_system_basic_user_is_exactly_that_difference(kaudit: Kaudit,
                                                                              tmp_path: Path) -> None:
    star = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    objects = edited("ClusterRole", "system:basic-user", lambda o: o["rules"].append(star))
    code, report, _ = scan_json(kaudit, write_objects(tmp_path / "star.yaml", objects))
    assert code == 1
    findings = report["findings"]
    # every finding sits on the added rule: nothing on the untouched objects or the default rules
    assert {(f["resource"]["kind"], f["resource"]["name"], f["path"]) for f in findings} == {
        ("ClusterRole", "system:basic-user", "rules[2]")}
    rules = {rule for f in findings for rule in [f["rule"], *(j["rule"] for j in f.get("joined", ()))]}
    assert {"modified-platform-default", "rbac-wildcard", "rbac-escalate-bind-impersonate",
            "rbac-secrets-read"} <= rules
    grants = [f for f in findings if f["rule"] != "modified-platform-default"]
    assert grants and all("Group system:authenticated" in f["message"] for f in grants)
    assert any(f["severity"] == "critical" for f in grants)
    [modified] = [f for f in findings if f["rule"] == "modified-platform-default"]
    assert "adds rules[2] (verbs * on * in groups *) to the Kubernetes v1.36 default" in modified["message"]


def test_a_users_cluster_admin_binding_beside_the_bootstrap_policy_is_reported(kaudit: Kaudit,
                                                                              tmp_path: Path) -> None:
    mine = binding("ci-admin", "cluster-admin", [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}])
    code, report, _ = scan_json(kaudit, BOOTSTRAP, write_objects(tmp_path / "mine.yaml", [mine]))
    assert code == 1
    assert [(f["rule"], f["severity"], f["resource"]["name"]) for f in report["findings"]] == [
        ("cluster-admin-binding", "critical", "ci-admin")]
    assert report["platform"]["objects"] == 135


def test_system_named_roles_written_by_users_are_judged_like_any_other(kaudit: Kaudit, tmp_path: Path) -> None:
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    secrets = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
    sa = {"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}
    new_name = cluster_role("system:controller:my-operator", [secrets],
                            metadata={"labels": labels, "annotations": annotations})
    code, report, _ = scan_json(kaudit, write_objects(tmp_path / "own.yaml", [
        new_name, binding("system:controller:my-operator", "system:controller:my-operator", [sa])]))
    assert code == 1
    assert [(f["rule"], f["resource"]["name"], f["path"]) for f in report["findings"]] == [
        ("rbac-secrets-read", "system:controller:my-operator", "rules[0]")]
    assert report["platform"]["objects"] == 0
    # the name and label of a real bootstrap role, with a rule of the user's: that rule is reported
    proxier = [o for o in bootstrap_objects() if o["kind"] == "ClusterRole" and
               o["metadata"]["name"] == "system:node-proxier"][0]
    proxier["rules"].append(secrets)
    code, report, _ = scan_json(kaudit, write_objects(tmp_path / "proxier.yaml", [
        proxier, binding("operator-proxier", "system:node-proxier", [sa])]))
    index = len(proxier["rules"]) - 1
    assert code == 1
    assert {(f["rule"], f["path"]) for f in report["findings"] if f["resource"]["kind"] == "ClusterRole"} == {
        ("rbac-secrets-read", f"rules[{index}]"), ("modified-platform-default", f"rules[{index}]")}


def test_hostile_bootstrap_lookalikes_are_judged_without_a_traceback(kaudit: Kaudit, tmp_path: Path) -> None:
    hostile = [cluster_role("system:basic-user", [5, "x", {"verbs": [1], "apiGroups": None}, None]),
               {**binding("system:discovery", "system:discovery", []), "subjects": {"kind": "User"}},
               {**binding("system:basic-user", "system:basic-user", []), "roleRef": "cluster-admin",
                "subjects": ["alice", {"kind": "User"}, ALICE]},
               cluster_role("admin", None, aggregationRule={"clusterRoleSelectors": "everything"}),
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "a"},
                "data": ["ca.crt"]},
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
                "spec": {"ports": "443"}}]
    code, report, err = scan_json(kaudit, write_objects(tmp_path / "hostile.yaml", hostile))
    assert code in (0, 1) and not report["ruleErrors"] and "Traceback" not in err
    assert {f["resource"]["name"] for f in report["findings"] if f["rule"] == "modified-platform-default"} >= {
        "system:basic-user", "admin"}


def test_json_html_and_markdown_show_the_count(kaudit: Kaudit, tmp_path: Path) -> None:
    html, markdown = tmp_path / "report.html", tmp_path / "report.md"
    assert kaudit("scan", BOOTSTRAP, "-f", "html", "-o", html, "-f", "markdown", "-o", markdown).code == 0
    assert SUMMARY in html.read_text() and SUMMARY in markdown.read_text()


# --- a live cluster through the test API server ---------------------------------------------------

CONTROL_PLANE_OBJECTS = [
    *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in ("default", "kube-system")),
    *({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
      for ns in ("default", "kube-system")),
    KUBERNETES_SERVICE,
]


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    from tests.k8s_api import FakeApiServer

    version, extra = getattr(request, "param", ("v1.36.2", []))
    with FakeApiServer([*bootstrap_objects(), *extra], version=version) as api:
        yield api.kubeconfig(tmp_path / "kubeconfig")


def test_a_v1_36_cluster_of_bootstrap_objects_passes(kaudit: Kaudit, cluster: Path) -> None:
    code, report, err = scan_json(kaudit, "--kubeconfig", cluster, "--context", "test")
    assert code == 0, err
    # what is left is about the cluster, not an object of it (no admission policy engine)
    assert {f["resource"]["kind"] for f in report["findings"]} <= {"ClusterInfo"}
    assert report["platform"]["objects"] == 135 and report["platform"]["minors"] == ["1.36"]
    assert SUMMARY in err
    code, shown, _ = scan_json(kaudit, "--kubeconfig", cluster, "--context", "test", "--include-platform")
    assert code == 1
    assert len(shown["findings"]) == len(report["findings"]) + report["platform"]["findingsHidden"]


@pytest.mark.parametrize("cluster", [("v1.99.0", [])], indirect=True)
def test_a_cluster_of_an_unshipped_minor_is_compared_with_the_nearest(kaudit: Kaudit, cluster: Path) -> None:
    code, report, err = scan_json(kaudit, "--kubeconfig", cluster, "--context", "test")
    nearest = bootstrap_rbac.minors()[-1]
    assert report["platform"]["serverMinor"] == "1.99" and report["platform"]["minors"] == [nearest]
    assert f"identical to Kubernetes v{nearest} bootstrap policy (nearest to the server's v1.99)" in err
    assert {f["resource"]["kind"] for f in report["findings"]} <= {"ClusterInfo"}


@pytest.mark.parametrize("cluster", [("v1.36.2", CONTROL_PLANE_OBJECTS)], indirect=True)
def test_control_plane_objects_are_counted_but_the_default_accounts_automount_is_the_owners(
        kaudit: Kaudit, cluster: Path) -> None:
    code, report, _ = scan_json(kaudit, "--kubeconfig", cluster, "--context", "test")
    assert report["platform"]["objects"] == 138 and report["platform"]["bootstrapRbac"] == 135
    on_them = [(f["rule"], f["resource"]["kind"], f["resource"]["namespace"]) for f in report["findings"]
               if f["resource"]["kind"] in ("Service", "ServiceAccount")]
    # nobody can move them out of the default namespace; automounting is theirs to turn off (CIS 5.1.5)
    assert sorted(on_them) == [("default-service-account-automount", "ServiceAccount", "default"),
                               ("default-service-account-automount", "ServiceAccount", "kube-system")]
    code, shown, _ = scan_json(kaudit, "--kubeconfig", cluster, "--context", "test", "--include-platform")
    assert ("default-namespace", "Service") in {(f["rule"], f["resource"]["kind"]) for f in shown["findings"]}


def test_a_manifest_scan_in_process_counts_the_same(tmp_path: Path) -> None:
    report = scan_manifests(ScanRequest(targets=(str(BOOTSTRAP),)))
    assert report.findings == () and report.platform.objects == 135 and report.platform.minors == ("1.36",)


def test_which_minor_a_manifest_or_a_cluster_is_compared_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two shipped minors whose system:discovery differs (1.35 here also binds system:unauthenticated):
    a manifest is a default if identical in any; a cluster compares with its own minor only."""
    real = bootstrap_rbac.policy("1.36")
    older = copy.deepcopy(dict(real))
    older["clusterRoleBindings"]["system:discovery"]["subjects"].append({"kind": "Group",
                                                                         "name": "system:unauthenticated"})
    monkeypatch.setattr(bootstrap_rbac, "_data", lambda: {"1.35": older, "1.36": real})
    unauthenticated = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
    both = binding("system:discovery", "system:discovery", [GROUP_AUTHENTICATED, unauthenticated])
    assert judge(both, platform.Versions.of(None)) == platform.Verdict("bootstrap", ("1.35",))
    assert judge(binding("system:discovery", "system:discovery", [GROUP_AUTHENTICATED]),
                 platform.Versions.of(None)) == platform.Verdict("bootstrap", ("1.35", "1.36"))
    on_136 = judge(both, platform.Versions.of("v1.36.2"))
    assert on_136 is not None and [d.text for d in on_136.differences] == [
        "adds subject Group system:unauthenticated to the Kubernetes v1.36 default (subjects: Group "
        "system:authenticated)"]
    assert judge(both, platform.Versions.of("v1.35.9")).is_default  # type: ignore[union-attr]
    # modified in every minor: compared with the closest (fewest differences; the newest on a tie)
    three = binding("system:discovery", "system:discovery", [GROUP_AUTHENTICATED, unauthenticated, ALICE])
    assert judge(three, platform.Versions.of(None)).minors == ("1.35",)  # type: ignore[union-attr]
    alice = binding("system:discovery", "system:discovery", [GROUP_AUTHENTICATED, ALICE])
    assert judge(alice, platform.Versions.of(None)).minors == ("1.36",)  # type: ignore[union-attr]


def test_a_scan_split_over_worker_processes_counts_the_same(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kaudit import parallel

    objects = edited("ClusterRoleBinding", "system:discovery", lambda o: o["subjects"].append(ALICE))
    for start in range(0, len(objects), 10):
        write_objects(tmp_path / f"part-{start:03}.yaml", objects[start:start + 10])
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    report = scan_manifests(ScanRequest(targets=(str(tmp_path),), jobs=2))
    assert [(f.rule, f.resource.name) for f in report.findings] == [("modified-platform-default", "system:discovery")]
    assert (report.platform.objects, report.platform.modified) == (134, 1)


def test_a_scan_without_rbac_objects_never_reads_the_policy_data(tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
                   "spec: {containers: [{name: web, image: nginx}]}\n")
    bootstrap_rbac._data.cache_clear()
    report = scan_manifests(ScanRequest(targets=(str(pod),), per_file=True))
    assert report.findings and report.platform.objects == 0
    assert bootstrap_rbac._data.cache_info().currsize == 0  # the pre-commit path: no JSON parsed
