"""Pod Security Standards: every admission-controller check, with its allowed and forbidden values.

tests/data/pss_cases.yaml holds cases transcribed from the Pod Security admission controller's own
tests and check functions (policy v1.37; see pss_spec.md). Each says what ONE check decides for a pod;
kaudit's check must decide the same, and the framework control built on it must pass or fail with it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kaudit import frameworks
from kaudit.checks.pss import CHECKS, evaluate
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Origin, Resource, ResourceRef
from kaudit.ruleset import load_builtin_rules
from kaudit.workloads import pod_spec

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "data" / "pss_cases.yaml").read_text())
RULES = load_builtin_rules()
PSS_RULES = {rule.params["check"]: rule for rule in RULES if rule.template == "pss"}


def pod_resource(case: dict[str, Any]) -> Resource:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **(case["pod"].get("metadata") or {})},
            "spec": case["pod"]["spec"]}
    return Resource(ResourceRef("v1", "Pod", "p", "ns"), body, Origin(file="case.yaml", line=1))


def test_every_admission_check_has_cases_and_a_rule() -> None:
    assert {case["check"] for case in CASES} == set(CHECKS)
    for check in CHECKS:
        kinds = {case["allowed"] for case in CASES if case["check"] == check}
        assert kinds == {True, False}, f"{check} needs allowed and forbidden cases"
    # every check is enforced by exactly one rule, except the ones an existing kaudit rule covers exactly
    covered_by_kaudit_rules = {"hostNamespaces", "privileged", "hostPathVolumes"}
    assert set(PSS_RULES) | covered_by_kaudit_rules == set(CHECKS)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_check_decides_like_the_admission_controller(case: dict[str, Any]) -> None:
    pod = pod_spec(pod_resource(case).body)
    assert pod is not None
    hits = evaluate(case["check"], pod)
    assert (not hits) is case["allowed"], [hit.path for hit in hits]


CONTROL_OF_CHECK = {
    "windowsHostProcess": "host-process", "hostNamespaces": "host-namespaces", "privileged": "privileged-containers",
    "capabilities_baseline": "capabilities", "hostPathVolumes": "host-path-volumes", "hostPorts": "host-ports",
    "hostProbesAndHostLifecycle": "host-probes", "appArmorProfile": "apparmor", "seLinuxOptions": "selinux",
    "procMount": "proc-mount-type", "seccompProfile_baseline": "seccomp", "sysctls": "sysctls",
    "restrictedVolumes": "volume-types", "allowPrivilegeEscalation": "privilege-escalation",
    "runAsNonRoot": "running-as-non-root", "runAsUser": "running-as-non-root-user",
    "seccompProfile_restricted": "seccomp", "capabilities_restricted": "capabilities",
    "procMount_restricted": "proc-mount-type",
}


# Baseline checks that a restricted check overrides: at restricted they do not run (OverrideCheckIDs).
OVERRIDDEN_AT_RESTRICTED = {"hostPathVolumes", "capabilities_baseline", "seccompProfile_baseline", "procMount"}
LEVEL_CASES = [(case, level) for case in CASES for level in ("baseline", "restricted")
               if level == case["level"] or (level == "restricted" and case["check"] not in OVERRIDDEN_AT_RESTRICTED)]


@pytest.mark.parametrize("case, level", LEVEL_CASES, ids=[f"{c['name']} @{level}" for c, level in LEVEL_CASES])
def test_framework_control_verdict_matches(case: dict[str, Any], level: str) -> None:
    """Scanning with --framework pss-<level> fails the check's control exactly when admission forbids;
    baseline checks that restricted does not override decide the same at both levels."""
    framework = f"pss-{level}"
    rules = frameworks.select(RULES, [framework])
    result = run(rules, Inventory([pod_resource(case)]))
    assert not result.errors
    verdict = frameworks.evaluate(framework, rules, result.findings)
    control = next(c for c in verdict.controls if c.id == CONTROL_OF_CHECK[case["check"]])
    assert control.status == ("pass" if case["allowed"] else "fail"), [f.message for f in result.findings]


def level_verdict(body: dict[str, Any], level: str) -> set[str]:
    resource = Resource(ResourceRef("v1", "Pod", "p", "ns"), body, Origin(file="x.yaml", line=1))
    framework = f"pss-{level}"
    rules = frameworks.select(RULES, [framework])
    result = run(rules, Inventory([resource]))
    return {c.id for c in frameworks.evaluate(framework, rules, result.findings).controls if c.status == "fail"}


RESTRICTED_POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": False,
                                                          "capabilities": {"drop": ["ALL"]}}}],
    },
}


def test_a_restricted_pod_passes_both_levels() -> None:
    assert level_verdict(RESTRICTED_POD, "baseline") == set()
    assert level_verdict(RESTRICTED_POD, "restricted") == set()


def test_an_empty_pod_passes_baseline_and_fails_exactly_the_restricted_controls() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}
    assert level_verdict(pod, "baseline") == set()
    assert level_verdict(pod, "restricted") == {"privilege-escalation", "running-as-non-root", "seccomp",
                                                "capabilities"}


def test_windows_pod_exemptions_and_overrides() -> None:
    # A Windows pod adding SYS_ADMIN with Unconfined seccomp fails baseline, yet passes restricted:
    # the restricted checks exempt Windows pods and override the baseline ones (admission does the same).
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True},
                    "containers": [{"name": "a", "securityContext": {
                        "capabilities": {"add": ["SYS_ADMIN"]}, "seccompProfile": {"type": "Unconfined"}}}]}}
    assert level_verdict(pod, "baseline") == {"capabilities", "seccomp"}
    assert level_verdict(pod, "restricted") == set()


def test_user_namespaces_relax_run_as_rules_but_not_restricted_proc_mount() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"hostUsers": False, "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "a", "securityContext": {
                        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "procMount": "Unmasked"}}]}}
    assert level_verdict(pod, "baseline") == set()
    assert level_verdict(pod, "restricted") == {"proc-mount-type"}


def hit_paths(check: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> list[str]:
    from kaudit.model import format_path

    pod = pod_spec({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": annotations or {}},
                    "spec": spec})
    assert pod is not None
    return [format_path(hit.path) for hit in evaluate(check, pod)]


UNCONFINED_ANNOTATION = {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}
UNCONFINED = {"appArmorProfile": {"type": "Unconfined"}}
APPARMOR_FIELD = "spec.containers[0].securityContext.appArmorProfile.type"


APPARMOR_CASES = [
    # the API server copies an annotation into the field and back (v1.30+): one fact, at the field
    ({"containers": [{"name": "a"}]}, UNCONFINED_ANNOTATION, [APPARMOR_FIELD]),
    ({"containers": [{"name": "a", "securityContext": UNCONFINED}]}, UNCONFINED_ANNOTATION, [APPARMOR_FIELD]),
    ({"securityContext": UNCONFINED, "containers": [{"name": "a"}]}, UNCONFINED_ANNOTATION,
     ["spec.securityContext.appArmorProfile.type"]),
    # an annotation the field contradicts, or one for no container, is a fact of its own, as admission judges both
    ({"containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}]},
     UNCONFINED_ANNOTATION, ['metadata.annotations["container.apparmor.security.beta.kubernetes.io/a"]']),
    ({"containers": [{"name": "b"}]}, UNCONFINED_ANNOTATION,
     ['metadata.annotations["container.apparmor.security.beta.kubernetes.io/a"]']),
]


def test_an_apparmor_annotation_and_field_the_api_server_keeps_in_step_are_one_fact() -> None:
    assert [hit_paths("appArmorProfile", spec, annotations) for spec, annotations, _ in APPARMOR_CASES] == [
        paths for _, _, paths in APPARMOR_CASES]


HOST_PORT_CASES = [
    # the API server sets a host-network pod's unset hostPorts to the containerPorts (SetDefaults_Pod)
    ({"hostNetwork": True, "containers": [{"name": "a", "ports": [{"containerPort": 9100}]}]},
     ["spec.containers[0].ports[0].hostPort"]),
    ({"hostNetwork": True, "initContainers": [{"name": "i", "ports": [{"containerPort": 53, "hostPort": 0}]}],
      "containers": [{"name": "a"}]}, ["spec.initContainers[0].ports[0].hostPort"]),
    ({"containers": [{"name": "a", "ports": [{"containerPort": 9100}]}]}, []),
]


def test_a_host_network_pod_binds_its_container_ports_on_the_node() -> None:
    assert [hit_paths("hostPorts", spec) for spec, _ in HOST_PORT_CASES] == [paths for _, paths in HOST_PORT_CASES]
