"""The README's scan runs on examples/manifests: the insecure set fires every rule, the hardened set none."""
from __future__ import annotations

from pathlib import Path

from kaudit.ruleset import load_builtin_rules

from .conftest import run_process

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIG = EXAMPLES / "kaudit.yaml"  # configures the allowlist, so untrusted-registry has something to say


def test_every_built_in_rule_fires_on_the_insecure_examples() -> None:
    result = run_process("scan", "--config", CONFIG, EXAMPLES / "manifests" / "insecure", "-f", "json")
    assert result.code == 1
    report = result.json()
    fired = set(report["summary"]["byRule"]) | set(report["summary"]["joinedByRule"])
    # rules on the cluster's own facts (a ClusterInfo object) only exist in live scans; their
    # fixtures prove them, and tests/test_cluster.py runs them against an API server
    cluster_only = {rule.id for rule in load_builtin_rules() if rule.kinds == frozenset({"ClusterInfo"})}
    assert cluster_only == {"unsupported-kubernetes-version", "no-admission-policy-engine"}
    # signature rules need --verify-images and a registry: tests/test_signatures.py runs them
    needs_registry = {rule.id for rule in load_builtin_rules() if rule.template == "image-signature"}
    # the insecure set binds the group system:serviceaccounts (binding-to-all-service-accounts), which
    # binds every account: no account of it can be unbound. Its fixtures and tests/test_rbac_hygiene.py prove it
    every_account_bound = {"unbound-service-account"}
    assert fired == {rule.id for rule in load_builtin_rules()} - cluster_only - needs_registry - every_account_bound
    assert not report["inputs"]["errors"] and not report["inputs"]["skipped"]


def test_the_hardened_examples_produce_zero_findings() -> None:
    result = run_process("scan", "--config", CONFIG, "--fail-on", "info", EXAMPLES / "manifests" / "hardened")
    assert result.code == 0, result.out
    assert result.out.splitlines()[-1].startswith("0 findings")


def test_the_readme_scan_of_all_examples() -> None:
    result = run_process("scan", "examples/manifests/", cwd=EXAMPLES.parent)
    assert result.code == 1  # the insecure examples have high findings: the gate fails, as intended
    assert "examples/manifests/insecure/node-agent.yaml:" in result.out
    summary = result.out.split("\n\n")[-1]  # the summary is last
    # no finding in the hardened examples (each is also declared in insecure/: a warning names both)
    assert "examples/manifests/hardened" not in "\n".join(
        line for line in summary.splitlines() if not line.startswith("warning: "))


# What the Pod Security admission controller at `restricted` objects to in each insecure example
# (worked out by hand from the standard; see tests/data/pss_spec.md).
PSS_RESTRICTED_BREAKS = {
    "legacy-node-tools.yaml": {"host-ports", "host-probes", "apparmor", "selinux", "sysctls", "volume-types",
                               "seccomp", "capabilities", "proc-mount-type"},
    "node-agent.yaml": {"host-namespaces", "privileged-containers", "volume-types", "privilege-escalation",
                        "running-as-non-root", "running-as-non-root-user", "seccomp", "capabilities"},
    "report-cronjob.yaml": set(),
    "control-plane.yaml": {"host-namespaces", "volume-types", "privilege-escalation", "running-as-non-root",
                           "capabilities"},
    "namespaces.yaml": set(),
    "kubeadm-config.yaml": set(),  # configuration files, no pods
    "kubelet-config.yaml": set(),
    "rbac.yaml": set(),  # its CI runner is restricted-compliant: the danger is its identity, not its pod spec
    "network-policies.yaml": set(),
    "tenant-build.yaml": set(),
    "web-deployment.yaml": {"privilege-escalation", "running-as-non-root", "seccomp", "capabilities"},
    # Windows pods are exempt from the escalation, seccomp and capabilities checks, not from runAsNonRoot
    "windows-agent.yaml": {"host-process", "host-namespaces", "running-as-non-root"},
}


def failing_controls(path: Path, framework: str) -> set[str]:
    report = run_process("scan", "--framework", framework, path, "-f", "json").json()
    [result] = report["frameworks"]
    assert result["id"] == framework and result["notCovered"] == 0
    return {control["id"] for control in result["controls"] if control["status"] == "fail"}


def test_pss_restricted_reports_exactly_the_controls_each_insecure_example_breaks() -> None:
    insecure = EXAMPLES / "manifests" / "insecure"
    assert {p.name for p in insecure.glob("*.yaml")} == set(PSS_RESTRICTED_BREAKS)
    for name, expected in PSS_RESTRICTED_BREAKS.items():
        assert failing_controls(insecure / name, "pss-restricted") == expected, name


def test_pss_restricted_reports_nothing_on_the_hardened_examples() -> None:
    result = run_process("scan", "--framework", "pss-restricted", EXAMPLES / "manifests" / "hardened",
                         "--fail-on", "info")
    assert result.code == 0 and "0 findings" in result.out.splitlines()[-1]
    assert failing_controls(EXAMPLES / "manifests" / "hardened", "pss-restricted") == set()


def test_kaudits_own_deployment_passes_its_rules() -> None:
    deploy = EXAMPLES / "deploy"
    result = run_process("scan", "--framework", "pss-restricted", deploy, "--fail-on", "info")
    assert result.code == 0 and result.out.splitlines()[-1].startswith("0 findings")
    everything = run_process("scan", deploy, "--fail-on", "info", "-f", "json")
    report = everything.json()
    assert everything.code == 0, [f["rule"] for f in report["findings"] if not f["suppressed"]]
    # its token, and with the opt-in overlay (legacy-token-secrets.yaml) a token that can list Secrets,
    # and its egress to any address on the API server's ports, are suppressed in the open, with the reason
    assert {f["rule"] for f in report["findings"]} == {
        "rbac-secrets-read", "automount-service-account-token", "workload-with-dangerous-permissions",
        "network-policy-allows-all-on-ports"}
