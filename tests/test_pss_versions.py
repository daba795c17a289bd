"""Pod Security at the version a namespace pins (or the user forces): every versioned check variant,
how the version is chosen (kaudit/pod_security.py), and how the report says it.

tests/data/pss_version_cases.yaml holds one case each side of every MinimumVersion boundary,
written from the admission controller's check functions (pss_spec.md, "Versioned variants").
scripts/check-psa-fixtures checks all of the upstream fixtures; here it runs on a tiny made-up repo.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from kaudit import frameworks
from kaudit.checks.pss import CHECKS, evaluate
from kaudit.engine import run
from kaudit.errors import KauditError
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, ResourceRef
from kaudit.pod_security import NEWEST, PodSecurityVersions, cluster_ceiling, parse_version, user_version
from kaudit.ruleset import load_builtin_rules
from kaudit.workloads import pod_spec
from tests import html_data
from tests.conftest import REPO, CliResult

Kaudit = Callable[..., CliResult]
Write = Callable[[str, str], Path]
CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "data" / "pss_version_cases.yaml").read_text())
RULES = load_builtin_rules()
RULE_OF_CHECK = {rule.params["check"]: rule for rule in RULES if rule.template == "pss"}


def test_every_versioned_check_has_cases_each_side_of_each_boundary() -> None:
    for check_id, versioned in CHECKS.items():
        boundaries = [minimum for minimum, _ in versioned.variants if minimum != (1, 0)]
        for minor in (b[1] for b in boundaries):
            versions = {case["version"] for case in CASES if case["check"] == check_id}
            assert {f"v1.{minor - 1}", f"v1.{minor}"} <= versions, f"{check_id}: no cases around v1.{minor}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']} ({c['version']})" for c in CASES])
def test_check_decides_like_admission_at_the_version(case: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **(case["pod"].get("metadata") or {})},
            "spec": case["pod"]["spec"]}
    pod = pod_spec(body)
    assert pod is not None
    version = parse_version(case["version"])
    assert version is not None
    hits = evaluate(case["check"], pod, version=version)
    assert (not hits) is case["allowed"], [hit.path for hit in hits]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['name']} ({c['version']})" for c in CASES])
def test_the_framework_control_at_the_forced_version_agrees(case: dict[str, Any]) -> None:
    """`--framework pss-<level>@<version>` fails the check's control exactly when admission denies."""
    rule = RULE_OF_CHECK.get(case["check"])
    if rule is None:  # hostNamespaces, privileged, hostPathVolumes: kaudit rules, one version
        pytest.skip("not a pss-template rule")
    framework = f"pss-{case['level']}"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **(case["pod"].get("metadata") or {})},
            "spec": case["pod"]["spec"]}
    resource = Resource(ResourceRef("v1", "Pod", "p", "ns"), body, Origin(file="case.yaml", line=1))
    result = run([rule], Inventory([resource], PodSecurityVersions(forced=case["version"])))
    assert not result.errors
    assert (not result.findings) is case["allowed"]


@pytest.mark.parametrize("text, expected", [
    ("v1.25", (1, 25)), ("v1.0", (1, 0)), ("v1.99", (1, 99)), ("latest", None), ("v1.025", None), ("v1.25 ", None),
    ("1.25", None), ("v2.0", None), ("v0.9", None), ("V1.25", None), ("v1.", None), ("v1.-1", None),
    ("v1." + "9" * 40, None), (None, None), (25, None), (["v1.25"], None),
])
def test_versions_parse_as_admission_parses_them(text: Any, expected: Any) -> None:
    assert parse_version(text) == expected


def test_a_version_the_user_writes_must_parse() -> None:
    assert user_version("latest", "x") is None and user_version("v1.19", "x") == (1, 19)
    with pytest.raises(KauditError, match="must be \"latest\" or \"v1.<minor>\""):
        user_version("1.19", "--framework pss-baseline@1.19")


def namespace(name: str, version: Any) -> Resource:
    body = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce-version": version}}}
    return Resource(ResourceRef("v1", "Namespace", name), body, Origin(file="ns.yaml", line=1))


def test_forced_beats_the_namespace_label_which_beats_the_config_default() -> None:
    pinned = [namespace("shop", "v1.20"), namespace("odd", "v1.2x"), namespace("future", "v1.90"),
              namespace("new", "latest"), namespace("number", 1.2)]
    versions = PodSecurityVersions(default="v1.30").with_namespaces(pinned)
    assert versions.for_namespace("shop").version == (1, 20)
    assert versions.for_namespace("shop").note == "pinned by namespace shop"
    assert versions.for_namespace("elsewhere").version == (1, 30)
    assert versions.for_namespace(None).note == "pod-security-version in .kaudit.yaml"
    # admission reads a value that does not parse as latest, and clamps newer versions to the newest
    assert versions.for_namespace("odd").version == NEWEST and "not a version" in versions.for_namespace("odd").note
    assert versions.for_namespace("number").version == NEWEST
    assert versions.for_namespace("future").version == NEWEST
    assert versions.for_namespace("new").version == NEWEST
    forced = PodSecurityVersions(forced="v1.25", default="v1.30").with_namespaces(pinned)
    assert {forced.for_namespace(n).version for n in ("shop", "odd", "elsewhere", None)} == {(1, 25)}
    assert PodSecurityVersions(default="latest").for_namespace(None) == PodSecurityVersions().for_namespace(None)
    plain = PodSecurityVersions().with_namespaces([])
    assert plain.for_namespace("x").version == NEWEST and plain.for_namespace("x").note == ""


def test_latest_on_a_cluster_is_its_own_newest_version() -> None:
    assert cluster_ceiling("v1.30.2") == (1, 30) and cluster_ceiling("v1.40.0") == NEWEST
    assert cluster_ceiling(None) == NEWEST and cluster_ceiling("weird") == NEWEST
    versions = PodSecurityVersions(ceiling=(1, 30)).with_namespaces([namespace("shop", "v1.35")])
    assert versions.for_namespace("shop").version == (1, 30) and versions.for_namespace(None).version == (1, 30)
    assert versions.for_namespace(None).note == "latest of the cluster (v1.30)"


def test_framework_versions_are_split_and_checked() -> None:
    assert frameworks.split_versions(["pss-restricted@v1.25", "cis"]) == (("pss-restricted", "cis"), "v1.25")
    assert frameworks.split_versions(["pss-baseline@latest", "pss-restricted@latest"]) == (
        ("pss-baseline", "pss-restricted"), "latest")
    assert frameworks.split_versions(["pss-baseline"]) == (("pss-baseline",), None)
    for bad, why in ((["cis@v1.25"], "only pss-baseline and pss-restricted"),
                     (["pss-baseline@v1.20", "pss-restricted@v1.25"], "one Pod Security version per scan"),
                     (["pss-baseline@1.20"], "must be"), (["nope@v1.20"], "unknown framework")):
        with pytest.raises(KauditError, match=why):
            frameworks.split_versions(bad)


SHOP = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    pod-security.kubernetes.io/enforce: baseline
    pod-security.kubernetes.io/enforce-version: v1.26
---
apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: shop}
spec:
  securityContext:
    sysctls: [{name: net.ipv4.ip_local_reserved_ports, value: "8080"}, {name: kernel.msgmax, value: "1"}]
  containers: [{name: app, image: registry.example.com/app:1.0}]
---
apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: other}
spec:
  securityContext:
    sysctls: [{name: net.ipv4.ip_local_reserved_ports, value: "8080"}, {name: kernel.msgmax, value: "1"}]
  containers: [{name: app, image: registry.example.com/app:1.0}]
"""


def sysctl_findings(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(f["resource"]["namespace"], f["path"]): f["message"] for f in report["findings"] if f["rule"] == "unsafe-sysctl"}


def test_a_namespace_pins_the_version_its_pods_are_judged_at(kaudit: Kaudit, write: Write) -> None:
    path = write("shop.yaml", SHOP)
    report = kaudit("scan", path, "--framework", "pss-baseline", "-f", "json").json()
    found = sysctl_findings(report)
    # v1.26 does not allow ip_local_reserved_ports yet (v1.27 does): only the pinned namespace's pod fails it
    assert set(found) == {("shop", "spec.securityContext.sysctls[0].name"), ("shop", "spec.securityContext.sysctls[1].name"),
                          ("other", "spec.securityContext.sysctls[1].name")}
    assert found[("shop", "spec.securityContext.sysctls[0].name")].endswith(
        "sysctl net.ipv4.ip_local_reserved_ports (Pod Security v1.26, pinned by namespace shop)")
    assert found[("other", "spec.securityContext.sysctls[1].name")].endswith("sysctl kernel.msgmax")  # latest: no note
    [framework] = report["frameworks"]
    assert framework["title"] == ("Pod Security Standards: baseline (policy version v1.37 (latest); "
                                  "namespaces pinning one: shop v1.26)")
    assert framework["versions"] == "policy version v1.37 (latest); namespaces pinning one: shop v1.26"
    text = " ".join(kaudit("scan", path, "--framework", "pss-baseline", "-v").out.split())  # -v: whole messages, wrapped
    assert "(Pod Security v1.26, pinned by namespace shop)" in text and "namespaces pinning one: shop v1.26" in text


def test_a_forced_version_overrides_the_namespace(kaudit: Kaudit, write: Write) -> None:
    path = write("shop.yaml", SHOP)
    report = kaudit("scan", path, "--framework", "pss-baseline@latest", "-f", "json").json()
    assert all(path.endswith("[1].name") for _, path in sysctl_findings(report))
    assert report["frameworks"][0]["title"].endswith("(policy version v1.37, forced by --framework)")
    old = sysctl_findings(kaudit("scan", path, "--framework", "pss-baseline@v1.20", "-f", "json").json())
    assert len(old) == 4 and all(m.endswith("(Pod Security v1.20, forced by --framework)") for m in old.values())
    bad = kaudit("scan", path, "--framework", "pss-baseline@1.20")
    assert bad.code == 2 and "must be \"latest\" or \"v1.<minor>\"" in bad.err


def test_the_config_default_applies_where_no_namespace_pins_one(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("shop.yaml", SHOP)
    write(".kaudit.yaml", "pod-security-version: v1.0\n")
    monkeypatch.chdir(tmp_path)
    found = sysctl_findings(kaudit("scan", path, "--framework", "pss-baseline", "-f", "json").json())
    assert found[("other", "spec.securityContext.sysctls[0].name")].endswith(
        "(Pod Security v1.0, pod-security-version in .kaudit.yaml)")
    assert found[("shop", "spec.securityContext.sysctls[0].name")].endswith("pinned by namespace shop)")
    write(".kaudit.yaml", "pod-security-version: 1.25\n")
    result = kaudit("scan", path)
    assert result.code == 2 and "pod-security-version" in result.err


def test_the_version_note_leaves_fingerprints_alone(kaudit: Kaudit, write: Write) -> None:
    """A finding judged at v1.37 with a note (pinned `latest`) is the same fact as without one."""
    pinned = write("a/shop.yaml", SHOP.replace("v1.26", "latest"))
    plain = write("b/shop.yaml", SHOP.replace("    pod-security.kubernetes.io/enforce-version: v1.26\n", ""))

    def prints(path: Path) -> dict[str, str]:
        report = kaudit("scan", path, "--framework", "pss-baseline", "-f", "json").json()
        return {f["fingerprint"]: f["message"] for f in report["findings"] if f["rule"] == "unsafe-sysctl"}

    with_note, without = prints(pinned), prints(plain)
    assert set(with_note) == set(without) and len(with_note) == 2
    assert any(m.endswith("(Pod Security v1.37, latest, pinned by namespace shop)") for m in with_note.values())


def test_a_parallel_scan_knows_namespaces_declared_in_another_batch(tmp_path: Path) -> None:
    from kaudit.parallel import _prescan
    from kaudit.sources.manifests import plan

    (tmp_path / "ns.yaml").write_text(SHOP.split("---")[0])
    (tmp_path / "pods.yaml").write_text(SHOP.split("---", 1)[1])
    versions, _ = _prescan(plan([str(tmp_path)]), 1 << 20, None, PodSecurityVersions(), frozenset())
    assert versions.pinned == {"shop": "v1.26"}


FIXTURE_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]},
                        "containers": [{"name": "a", "image": "i"}]}}


def test_the_fixture_script_judges_each_file_at_its_own_version(tmp_path: Path) -> None:
    repo = tmp_path / "psa"
    files = {  # tcp_keepalive_time is safe since v1.29
        "test/testdata/baseline/v1.28/fail/sysctls0.yaml": FIXTURE_POD,
        "test/testdata/baseline/v1.29/pass/sysctls0.yaml": FIXTURE_POD,
        "test/testdata/restricted/v1.7/pass/base.yaml": {  # no allowPrivilegeEscalation check before v1.8
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "base"},
            "spec": {"securityContext": {"runAsNonRoot": True}, "containers": [{"name": "a", "image": "i"}]}},
        "README.md": "not a fixture",
    }
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "fixtures"], check=True)
    script = [sys.executable, str(REPO / "scripts" / "check-psa-fixtures"), str(repo)]
    done = subprocess.run(script, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "baseline: v1.28 1/1, v1.29 1/1" in done.stdout and "total: 3/3 fixture files agree" in done.stdout
    # a fixture kaudit disagrees with is listed, and the exit status says so
    (repo / "test/testdata/baseline/v1.27/pass").mkdir(parents=True)
    (repo / "test/testdata/baseline/v1.27/pass/sysctls0.yaml").write_text(json.dumps(FIXTURE_POD))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "wrong"], check=True)
    done = subprocess.run(script, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1 and "total: 3/4" in done.stdout
    assert "baseline/v1.27/pass/sysctls0.yaml: admission allows, kaudit denies (sysctls)" in done.stdout


def test_a_cluster_scan_reads_namespace_labels_and_its_own_latest(tmp_path: Path) -> None:
    """On a v1.29 cluster `latest` is v1.29: tcp_rmem (safe since v1.32) is still forbidden there."""
    from kaudit.scan import ScanRequest, scan_cluster
    from kaudit.sources.cluster import ClusterRequest
    from tests.k8s_api import FakeApiServer

    def pod(name: str, ns: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                "spec": {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]},
                         "containers": [{"name": "a", "image": "registry.example.com/a:1"}]}}

    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "shop", "labels": {"pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "old", "labels": {"pod-security.kubernetes.io/enforce-version": "v1.10"}}},
        pod("a", "shop"), pod("b", "old")]
    with FakeApiServer(objects) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        report = scan_cluster(ScanRequest(targets=(), fail_on="never", frameworks=("pss-baseline",)),
                              ClusterRequest(kubeconfig=str(kubeconfig), context="test"))
    assert report.coverage is not None and report.coverage.version == "v1.29.4"
    messages = {f.resource.namespace: f.message for f in report.findings if f.rule == "unsafe-sysctl"}
    assert messages["shop"].endswith("(Pod Security v1.29, latest, pinned by namespace shop)")
    assert messages["old"].endswith("(Pod Security v1.10, pinned by namespace old)")
    [framework] = report.frameworks
    assert framework.versions == "policy version v1.29 (latest); namespaces pinning one: old v1.10, shop v1.29"


@pytest.mark.parametrize("output", ["json", "sarif", "markdown", "html", "junit", "text"])
def test_every_writer_says_which_version_judged_the_pod(kaudit: Kaudit, write: Write, output: str) -> None:
    path = write("shop.yaml", SHOP)
    out = kaudit("scan", path, "--framework", "pss-baseline", "-f", output, "--fail-on", "never", "-v").out
    if output == "html":  # the page's script puts each message together from its data block
        out = "\n".join(html_data.messages(out))
    assert "Pod Security v1.26, pinned by namespace shop" in (" ".join(out.split()) if output == "text" else out)
    if output == "json":  # the report still matches its published schema
        import jsonschema

        jsonschema.validate(json.loads(out), json.loads((REPO / "reports" / "report.schema.json").read_text()))
    if output == "sarif":
        assert json.loads(out)["runs"][0]["properties"]["kaudit"]["frameworks"]["pss-baseline"]["versions"] == (
            "policy version v1.37 (latest); namespaces pinning one: shop v1.26")


def annotation_paths(body: dict[str, Any], version: str = "v1.18") -> list[str]:
    from kaudit.model import format_path

    pod = pod_spec(body)
    assert pod is not None
    parsed = parse_version(version)
    assert parsed is not None
    return [format_path(hit.path) for hit in evaluate("seccompProfile_baseline", pod, version=parsed)]


def test_the_seccomp_annotations_of_a_pod_template_are_judged_where_they_are_written() -> None:
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {
        "template": {"metadata": {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                                                  "container.seccomp.security.alpha.kubernetes.io/dbg": "unconfined"}},
                     "spec": {"containers": [{"name": "a"}], "ephemeralContainers": [{"name": "dbg"}]}}}}}}
    prefix = "spec.jobTemplate.spec.template.metadata.annotations"
    assert annotation_paths(cronjob) == [f'{prefix}["seccomp.security.alpha.kubernetes.io/pod"]',
                                         f'{prefix}["container.seccomp.security.alpha.kubernetes.io/dbg"]']
    assert annotation_paths(cronjob, "v1.19") == []  # the fields' era: annotations are not read


@pytest.mark.parametrize("annotations", [None, [], "text", {"seccomp.security.alpha.kubernetes.io/pod": None},
                                         {"seccomp.security.alpha.kubernetes.io/pod": 5},
                                         {"seccomp.security.alpha.kubernetes.io/pod": ["runtime/default"]}])
def test_odd_seccomp_annotations_never_raise(annotations: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [{"name": "a"}, {"name": None}, "not a container"]}}
    paths = annotation_paths(body)
    # a value that is not one of the allowed strings is forbidden; no annotations, nothing to judge
    assert bool(paths) == (isinstance(annotations, dict))


def test_rules_show_and_list_name_the_versions(kaudit: Kaudit) -> None:
    shown = kaudit("rules", "show", "capabilities-not-restricted").out
    assert ("Pod Security versions: admission check capabilities_restricted, variants from v1.22, v1.25; "
            "before v1.22 the restricted level runs capabilities_baseline instead") in shown
    assert "variants from v1.34; no check before v1.34" in kaudit("rules", "show", "host-in-probe-or-hook").out
    listed = kaudit("rules", "list", "--framework", "pss-restricted@v1.7").out
    assert "judged at v1.7 for every pod" in listed
    assert "no admission check yet at v1.7: host-in-probe-or-hook, privilege-escalation-not-disabled, run-as-user-zero" in listed
    assert "namespace enforce-version label" in kaudit("rules", "list", "--framework", "pss-baseline").out


def test_workers_judge_pods_at_the_version_a_namespace_in_another_batch_pins(tmp_path: Path) -> None:
    from kaudit.scan import ScanRequest, scan_manifests
    from kaudit.writers.json_report import to_dict
    from tests.conftest import scan_on_workers

    namespace_doc, *pods = SHOP.split("---")
    (tmp_path / "a-namespace.yaml").write_text(namespace_doc)
    for index, doc in enumerate(pods * 3):
        (tmp_path / f"pod-{index}.yaml").write_text(doc.replace("name: cart", f"name: cart-{index}"))
    request = ScanRequest(targets=(str(tmp_path),), fail_on="never", frameworks=("pss-baseline",))
    single, spread = to_dict(scan_manifests(request)), to_dict(scan_on_workers(request, 3))
    single.pop("generatedAt"), spread.pop("generatedAt")
    assert spread == single
    assert sum("pinned by namespace shop" in f["message"] for f in spread["findings"]) == 6


def test_a_long_bad_label_is_quoted_short() -> None:
    versions = PodSecurityVersions().with_namespaces([namespace("x", "v" * 5000)])
    choice = versions.for_namespace("x")
    assert choice.version == NEWEST and len(choice.note) < 120 and "…" in choice.note
    assert PodSecurityVersions().with_namespaces([namespace("y", "v1.99")]).for_namespace("y").note == (
        "v1.99 is past the newest policy version, pinned by namespace y")
