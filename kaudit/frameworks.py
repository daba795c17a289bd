"""Compliance frameworks: their controls, which rules check them, and per-control verdicts.

Rules tag the controls they check (`frameworks: {cis: "5.2.5", pss-baseline: host-namespaces}`);
this module knows every control of each framework, including the ones kaudit cannot check from
what it reads, so a report says "not covered" instead of passing them silently.

`pss-restricted` extends `pss-baseline`: a restricted control with the same id (or one it names
in `replaces`) supersedes the baseline one - the admission controller's OverrideCheckIDs - so the
restricted level never runs the baseline variants of seccomp, capabilities, procMount or hostPath.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence

from kaudit.errors import KauditError
from kaudit.model import ControlResult, Finding, FrameworkResult
from kaudit.value import value

if TYPE_CHECKING:
    from kaudit.ruleset import Rule


@value
class Control:
    """One control of a framework (a CIS recommendation, a Pod Security check)."""

    id: str
    title: str
    gap: str = ""  # why kaudit cannot check it (yet), when no rule does
    replaces: tuple[str, ...] = ()  # parent controls (besides its own id) that this one supersedes


@value
class Framework:
    """A framework's controls, and the framework it extends."""

    id: str
    title: str
    controls: tuple[Control, ...]
    extends: Optional[str] = None
    reference: str = ""


def _controls(*items: tuple[str, ...]) -> tuple[Control, ...]:
    """(id, title) or (id, title, gap) rows."""
    return tuple(Control(item[0], item[1], item[2] if len(item) > 2 else "") for item in items)


RBAC_GAP = "needs the RBAC analyzer (not built yet)"
NETPOL_GAP = "needs the NetworkPolicy analyzer (not built yet)"
CLUSTER_GAP = "needs a live cluster scan (not built yet)"
ORG_GAP = "organisational control: not visible in manifests"
# CIS sections 1, 2 and 4 (v1.9 numbering; v1.10 numbers them the same): what only the node shows
NODE_GAP = "not covered: needs node access (files, their permissions and ownership, on the node)"
FLAG_GAP = "not checked yet: a component flag or setting no rule reads"

FRAMEWORKS: dict[str, Framework] = {
    framework.id: framework
    for framework in (
        Framework(
            "pss-baseline",
            "Pod Security Standards: baseline",
            _controls(
                ("host-process", "HostProcess"),
                ("host-namespaces", "Host Namespaces"),
                ("privileged-containers", "Privileged Containers"),
                ("capabilities", "Capabilities"),
                ("host-path-volumes", "HostPath Volumes"),
                ("host-ports", "Host Ports"),
                ("host-probes", "Host Probes / Lifecycle Hooks"),
                ("apparmor", "AppArmor"),
                ("selinux", "SELinux"),
                ("proc-mount-type", "/proc Mount Type"),
                ("seccomp", "Seccomp"),
                ("sysctls", "Sysctls"),
            ),
            reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline",
        ),
        Framework(
            "pss-restricted",
            "Pod Security Standards: restricted",
            (
                # restricted volume types forbid hostPath too, so they supersede the baseline control
                Control("volume-types", "Volume Types", replaces=("host-path-volumes",)),
                Control("privilege-escalation", "Privilege Escalation"),
                Control("running-as-non-root", "Running as Non-root"),
                Control("running-as-non-root-user", "Running as Non-root user"),
                Control("seccomp", "Seccomp"),
                Control("capabilities", "Capabilities"),
                Control("proc-mount-type", "/proc Mount Type"),
            ),
            extends="pss-baseline",
            reference="https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted",
        ),
        Framework(
            "cis",
            "CIS Kubernetes Benchmark v1.9: control plane (1), etcd (2), worker nodes (4), policies (5)",
            _controls(
                ("1.1.1", "Ensure that the API server pod specification file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.2", "Ensure that the API server pod specification file ownership is set to root:root", NODE_GAP),
                ("1.1.3", "Ensure that the controller manager pod specification file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.4", "Ensure that the controller manager pod specification file ownership is set to root:root", NODE_GAP),
                ("1.1.5", "Ensure that the scheduler pod specification file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.6", "Ensure that the scheduler pod specification file ownership is set to root:root", NODE_GAP),
                ("1.1.7", "Ensure that the etcd pod specification file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.8", "Ensure that the etcd pod specification file ownership is set to root:root", NODE_GAP),
                ("1.1.9", "Ensure that the Container Network Interface file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.10", "Ensure that the Container Network Interface file ownership is set to root:root", NODE_GAP),
                ("1.1.11", "Ensure that the etcd data directory permissions are set to 700 or more restrictive", NODE_GAP),
                ("1.1.12", "Ensure that the etcd data directory ownership is set to etcd:etcd", NODE_GAP),
                ("1.1.13", "Ensure that the default administrative credential file permissions are set to 600", NODE_GAP),
                ("1.1.14", "Ensure that the default administrative credential file ownership is set to root:root", NODE_GAP),
                ("1.1.15", "Ensure that the scheduler.conf file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.16", "Ensure that the scheduler.conf file ownership is set to root:root", NODE_GAP),
                ("1.1.17", "Ensure that the controller-manager.conf file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.18", "Ensure that the controller-manager.conf file ownership is set to root:root", NODE_GAP),
                ("1.1.19", "Ensure that the Kubernetes PKI directory and file ownership is set to root:root", NODE_GAP),
                ("1.1.20", "Ensure that the Kubernetes PKI certificate file permissions are set to 600 or more restrictive", NODE_GAP),
                ("1.1.21", "Ensure that the Kubernetes PKI key file permissions are set to 600", NODE_GAP),
                ("1.2.1", "Ensure that the --anonymous-auth argument is set to false"),
                ("1.2.2", "Ensure that the --token-auth-file parameter is not set"),
                ("1.2.3", "Ensure that the --DenyServiceExternalIPs is set", FLAG_GAP),
                ("1.2.4", "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as appropriate", FLAG_GAP),
                ("1.2.5", "Ensure that the --kubelet-certificate-authority argument is set as appropriate"),
                ("1.2.6", "Ensure that the --authorization-mode argument is not set to AlwaysAllow"),
                ("1.2.7", "Ensure that the --authorization-mode argument includes Node", FLAG_GAP),
                ("1.2.8", "Ensure that the --authorization-mode argument includes RBAC", FLAG_GAP),
                ("1.2.9", "Ensure that the admission control plugin EventRateLimit is set", FLAG_GAP),
                ("1.2.10", "Ensure that the admission control plugin AlwaysAdmit is not set"),
                ("1.2.11", "Ensure that the admission control plugin AlwaysPullImages is set", FLAG_GAP),
                ("1.2.12", "Ensure that the admission control plugin ServiceAccount is set", FLAG_GAP),
                ("1.2.13", "Ensure that the admission control plugin NamespaceLifecycle is set", FLAG_GAP),
                ("1.2.14", "Ensure that the admission control plugin NodeRestriction is set"),
                ("1.2.15", "Ensure that the --profiling argument is set to false"),
                ("1.2.16", "Ensure that the --audit-log-path argument is set"),
                ("1.2.17", "Ensure that the --audit-log-maxage argument is set to 30 or as appropriate", FLAG_GAP),
                ("1.2.18", "Ensure that the --audit-log-maxbackup argument is set to 10 or as appropriate", FLAG_GAP),
                ("1.2.19", "Ensure that the --audit-log-maxsize argument is set to 100 or as appropriate", FLAG_GAP),
                ("1.2.20", "Ensure that the --request-timeout argument is set as appropriate", FLAG_GAP),
                ("1.2.21", "Ensure that the --service-account-lookup argument is set to true", FLAG_GAP),
                ("1.2.22", "Ensure that the --service-account-key-file argument is set as appropriate", FLAG_GAP),
                ("1.2.23", "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate"),
                ("1.2.24", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate", FLAG_GAP),
                ("1.2.25", "Ensure that the --client-ca-file argument is set as appropriate", FLAG_GAP),
                ("1.2.26", "Ensure that the --etcd-cafile argument is set as appropriate"),
                ("1.2.27", "Ensure that the --encryption-provider-config argument is set as appropriate"),
                ("1.2.28", "Ensure that encryption providers are appropriately configured",
                 "not covered: needs node access (the encryption configuration file on the control-plane node)"),
                ("1.2.29", "Ensure that the API Server only makes use of Strong Cryptographic Ciphers", FLAG_GAP),
                ("1.3.1", "Ensure that the --terminated-pod-gc-threshold argument is set as appropriate", FLAG_GAP),
                ("1.3.2", "Ensure that the --profiling argument is set to false", FLAG_GAP),
                ("1.3.3", "Ensure that the --use-service-account-credentials argument is set to true", FLAG_GAP),
                ("1.3.4", "Ensure that the --service-account-private-key-file argument is set as appropriate", FLAG_GAP),
                ("1.3.5", "Ensure that the --root-ca-file argument is set as appropriate", FLAG_GAP),
                ("1.3.6", "Ensure that the RotateKubeletServerCertificate argument is set to true", FLAG_GAP),
                ("1.3.7", "Ensure that the --bind-address argument is set to 127.0.0.1", FLAG_GAP),
                ("1.4.1", "Ensure that the --profiling argument is set to false", FLAG_GAP),
                ("1.4.2", "Ensure that the --bind-address argument is set to 127.0.0.1", FLAG_GAP),
                ("2.1", "Ensure that the --cert-file and --key-file arguments are set as appropriate", FLAG_GAP),
                ("2.2", "Ensure that the --client-cert-auth argument is set to true"),
                ("2.3", "Ensure that the --auto-tls argument is not set to true", FLAG_GAP),
                ("2.4", "Ensure that the --peer-cert-file and --peer-key-file arguments are set as appropriate", FLAG_GAP),
                ("2.5", "Ensure that the --peer-client-cert-auth argument is set to true"),
                ("2.6", "Ensure that the --peer-auto-tls argument is not set to true", FLAG_GAP),
                ("2.7", "Ensure that a unique Certificate Authority is used for etcd",
                 "not covered: needs node access (the certificates the files name)"),
                ("4.1.1", "Ensure that the kubelet service file permissions are set to 600 or more restrictive", NODE_GAP),
                ("4.1.2", "Ensure that the kubelet service file ownership is set to root:root", NODE_GAP),
                ("4.1.3", "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive", NODE_GAP),
                ("4.1.4", "If proxy kubeconfig file exists ensure ownership is set to root:root", NODE_GAP),
                ("4.1.5", "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive", NODE_GAP),
                ("4.1.6", "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root", NODE_GAP),
                ("4.1.7", "Ensure that the certificate authorities file permissions are set to 600 or more restrictive", NODE_GAP),
                ("4.1.8", "Ensure that the client certificate authorities file ownership is set to root:root", NODE_GAP),
                ("4.1.9", "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive", NODE_GAP),
                ("4.1.10", "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root", NODE_GAP),
                ("4.2.1", "Ensure that the --anonymous-auth argument is set to false"),
                ("4.2.2", "Ensure that the --authorization-mode argument is not set to AlwaysAllow"),
                ("4.2.3", "Ensure that the --client-ca-file argument is set as appropriate", FLAG_GAP),
                ("4.2.4", "Verify that the --read-only-port argument is set to 0"),
                ("4.2.5", "Ensure that the --streaming-connection-idle-timeout argument is not set to 0", FLAG_GAP),
                ("4.2.6", "Ensure that the --make-iptables-util-chains argument is set to true", FLAG_GAP),
                ("4.2.7", "Ensure that the --hostname-override argument is not set", FLAG_GAP),
                ("4.2.8", "Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture", FLAG_GAP),
                ("4.2.9", "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate", FLAG_GAP),
                ("4.2.10", "Ensure that the --rotate-certificates argument is not set to false"),
                ("4.2.11", "Verify that the RotateKubeletServerCertificate argument is set to true", FLAG_GAP),
                ("4.2.12", "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers", FLAG_GAP),
                ("4.2.13", "Ensure that a limit is set on pod PIDs", FLAG_GAP),
                ("4.3.1", "Ensure that the kube-proxy metrics service is bound to localhost", FLAG_GAP),
                ("5.1.1", "Ensure that the cluster-admin role is only used where required", RBAC_GAP),
                ("5.1.2", "Minimize access to secrets", RBAC_GAP),
                ("5.1.3", "Minimize wildcard use in Roles and ClusterRoles", RBAC_GAP),
                ("5.1.4", "Minimize access to create pods", RBAC_GAP),
                ("5.1.5", "Ensure that default service accounts are not actively used", RBAC_GAP),
                ("5.1.6", "Ensure that Service Account Tokens are only mounted where necessary"),
                ("5.1.7", "Avoid use of system:masters group",
                 "membership of system:masters lives in client certificates, not in RBAC objects"),
                ("5.1.8", "Limit use of the Bind, Impersonate and Escalate permissions", RBAC_GAP),
                ("5.1.9", "Minimize access to create persistent volumes", RBAC_GAP),
                ("5.1.10", "Minimize access to the proxy sub-resource of nodes", RBAC_GAP),
                ("5.1.11", "Minimize access to the approval sub-resource of certificatesigningrequests", RBAC_GAP),
                ("5.1.12", "Minimize access to webhook configuration objects", RBAC_GAP),
                ("5.1.13", "Minimize access to the service account token creation", RBAC_GAP),
                ("5.2.1", "Ensure that the cluster has at least one active policy control mechanism", CLUSTER_GAP),
                ("5.2.2", "Minimize the admission of privileged containers"),
                ("5.2.3", "Minimize the admission of containers wishing to share the host process ID namespace"),
                ("5.2.4", "Minimize the admission of containers wishing to share the host IPC namespace"),
                ("5.2.5", "Minimize the admission of containers wishing to share the host network namespace"),
                ("5.2.6", "Minimize the admission of containers with allowPrivilegeEscalation"),
                ("5.2.7", "Minimize the admission of root containers"),
                ("5.2.8", "Minimize the admission of containers with the NET_RAW capability"),
                ("5.2.9", "Minimize the admission of containers with added capabilities"),
                ("5.2.10", "Minimize the admission of containers with capabilities assigned"),
                ("5.2.11", "Minimize the admission of Windows HostProcess containers"),
                ("5.2.12", "Minimize the admission of HostPath volumes"),
                ("5.2.13", "Minimize the admission of containers which use HostPorts"),
                ("5.3.1", "Ensure that the CNI in use supports NetworkPolicies", CLUSTER_GAP),
                ("5.3.2", "Ensure that all Namespaces have NetworkPolicies defined", NETPOL_GAP),
                ("5.4.1", "Prefer using Secrets as files over Secrets as environment variables"),
                ("5.4.2", "Consider external secret storage", ORG_GAP),
                ("5.5.1", "Configure Image Provenance using ImagePolicyWebhook admission controller"),
                ("5.7.1", "Create administrative boundaries between resources using namespaces", ORG_GAP),
                ("5.7.2", "Ensure that the seccomp profile is set to docker/default in your Pod definitions"),
                ("5.7.3", "Apply SecurityContext to your Pods and Containers"),
                ("5.7.4", "The default namespace should not be used"),
            ),
            reference="https://www.cisecurity.org/benchmark/kubernetes",
        ),
        Framework(
            "nsa",
            "NSA/CISA Kubernetes Hardening Guide v1.2 (pod security and workload items)",
            _controls(
                ("non-root", "Non-root containers and rootless container engines"),
                ("immutable-filesystem", "Immutable container file systems"),
                ("secure-images", "Building secure container images"),
                ("pod-security", "Pod security enforcement"),
                ("service-account-tokens", "Protecting Pod service account tokens"),
                ("sandboxed-runtimes", "Hardening container environments (sandboxed runtimes)"),
                ("namespaces", "Network separation: namespaces"),
                ("network-policies", "Network separation: network policies", NETPOL_GAP),
                ("resource-policies", "Resource policies"),
                ("secrets", "Secrets"),
                ("exposure", "Network separation: limiting exposure of services"),
                ("rbac", "Authentication and authorization (RBAC)", RBAC_GAP),
                ("audit-logging", "Audit logging", CLUSTER_GAP),
            ),
            reference="https://media.defense.gov/2022/Aug/29/2003066362/-1/-1/0/CTR_KUBERNETES_HARDENING_GUIDANCE_1.2_20220829.PDF",
        ),
    )
}


PSS_FRAMEWORKS = ("pss-baseline", "pss-restricted")


def split_versions(framework_ids: Sequence[str]) -> tuple[tuple[str, ...], Optional[str]]:
    """`pss-restricted@v1.25` -> ("pss-restricted",), "v1.25": the framework ids, and the Pod Security
    version forced on every pod (kaudit/pod_security.py). One version per scan: the baseline checks
    are shared by both levels, and each pod is judged once."""
    from kaudit.pod_security import user_version

    ids, forced = [], None
    for name in framework_ids:
        framework_id, at, version = name.partition("@")
        get(framework_id)
        if at:
            if framework_id not in PSS_FRAMEWORKS:
                raise KauditError(f"--framework {name}: only {' and '.join(PSS_FRAMEWORKS)} take a @VERSION")
            user_version(version, f"--framework {name}")
            if forced is not None and forced != version:
                raise KauditError(f"--framework {name}: another --framework forces {forced}; "
                                  "one Pod Security version per scan")
            forced = version
        ids.append(framework_id)
    return tuple(dict.fromkeys(ids)), forced


def get(framework_id: str) -> Framework:
    framework = FRAMEWORKS.get(framework_id)
    if framework is None:
        raise KauditError(f"unknown framework {framework_id!r} (use one of: {', '.join(FRAMEWORKS)})")
    return framework


def effective_controls(framework_id: str) -> list[tuple[str, Control]]:
    """The controls of a framework with its parents: (tagging framework id, control), in order.

    A control of the extending framework replaces the parent's control with the same id.
    """
    framework = get(framework_id)
    own = [(framework.id, control) for control in framework.controls]
    if framework.extends is None:
        return own
    replaced = {control.id for control in framework.controls}
    replaced.update(parent for control in framework.controls for parent in control.replaces)
    inherited = [(tag, c) for tag, c in effective_controls(framework.extends) if c.id not in replaced]
    return inherited + own


def rule_controls(rule: "Rule", framework_id: str) -> list[Control]:
    """The controls of `framework_id` (with its parents) that `rule` checks."""
    return [control for tag, control in effective_controls(framework_id) if control.id in rule.frameworks.get(tag, ())]


def select(rules: Sequence["Rule"], framework_ids: Iterable[str]) -> list["Rule"]:
    wanted = list(framework_ids)
    for framework_id in wanted:
        get(framework_id)
    return [rule for rule in rules if any(rule_controls(rule, f) for f in wanted)]


def tag_problems(frameworks: Mapping[str, Sequence[str]]) -> list[str]:
    """Unknown frameworks or control ids in a rule's `frameworks` tags."""
    problems = []
    for framework_id, control_ids in frameworks.items():
        framework = FRAMEWORKS.get(framework_id)
        if framework is None:
            problems.append(f"frameworks.{framework_id}: unknown framework (known: {', '.join(FRAMEWORKS)})")
            continue
        known = {control.id for control in framework.controls}
        problems.extend(f"frameworks.{framework_id}: unknown control {c!r}" for c in control_ids if c not in known)
    return problems


def evaluate(framework_id: str, rules_run: Sequence["Rule"], findings: Sequence[Finding],
             catalog: Optional[Sequence["Rule"]] = None, not_evaluated: Optional[Mapping[str, str]] = None,
             nothing_scanned: bool = False) -> FrameworkResult:
    """One framework's verdicts (see `evaluate_all`)."""
    return evaluate_all((framework_id,), rules_run, findings, catalog, not_evaluated, nothing_scanned)[0]


def evaluate_all(framework_ids: Sequence[str], rules_run: Sequence["Rule"], findings: Sequence[Finding],
                 catalog: Optional[Sequence["Rule"]] = None, not_evaluated: Optional[Mapping[str, str]] = None,
                 nothing_scanned: bool = False) -> list[FrameworkResult]:
    """Per control:
    - fail: a rule that checks it ran and has an unsuppressed finding;
    - pass: every rule that checks it (in `catalog`, the rules known before selection) ran, fully,
      on a scan that saw objects, without a finding;
    - not-evaluated: a rule that checks it did not run (not selected, disabled), or did not run or
      could not see what it needs for a reason the scan gives (`not_evaluated`: rule id -> why, see
      `Report.rules_not_run`: left out by --per-file, needing --verify-images or a cluster, a cluster
      kind it could not read), or nothing was scanned; never a pass;
    - not-covered: no kaudit rule checks it (with the reason)."""
    failing_rules: dict[str, int] = {}  # counted once for every framework: a big scan has many findings
    for finding in findings:
        if finding.suppressed is None:
            failing_rules[finding.rule] = failing_rules.get(finding.rule, 0) + 1
            for joined in finding.joined:  # a joined rule's control fails too
                failing_rules[joined.rule] = failing_rules.get(joined.rule, 0) + 1
    return [_verdicts(framework_id, rules_run, failing_rules, catalog, not_evaluated or {}, nothing_scanned)
            for framework_id in framework_ids]


def _verdicts(framework_id: str, rules_run: Sequence["Rule"], failing_rules: Mapping[str, int],
              catalog: Optional[Sequence["Rule"]], not_evaluated: Mapping[str, str],
              nothing_scanned: bool) -> FrameworkResult:
    ran = {rule.id for rule in rules_run}
    everything = list(catalog) if catalog is not None else list(rules_run)
    # (tag, control id) -> the rules that check it: one pass over the rules, not one per control
    checked_by: dict[tuple[str, str], set[str]] = {}
    for rule in (*everything, *rules_run):
        for tag, control_ids in rule.frameworks.items():
            for control_id in control_ids:
                checked_by.setdefault((tag, control_id), set()).add(rule.id)
    results = []
    for tag, control in effective_controls(framework_id):
        checking = sorted(checked_by.get((tag, control.id), ()))
        count = sum(failing_rules.get(rule_id, 0) for rule_id in checking if rule_id in ran)
        missing = [rule_id for rule_id in checking if rule_id not in ran and rule_id not in not_evaluated]
        blind = [rule_id for rule_id in checking if rule_id in not_evaluated]  # did not run, or ran blind
        why = ""
        if not checking:
            status, why = "not-covered", control.gap
        elif count:
            status = "fail"
        elif nothing_scanned:
            status, why = "not-evaluated", "nothing was scanned"
        elif missing or blind:
            status = "not-evaluated"
            reasons = ([f"{', '.join(missing)} did not run"] if missing else []) + \
                      [f"{rule_id}: {not_evaluated[rule_id]}" for rule_id in blind]
            why = "; ".join(reasons)
        else:
            status = "pass"
        rules = tuple(rule_id for rule_id in checking if rule_id in ran)
        results.append(ControlResult(control.id, control.title, status, rules, count, why))
    framework = get(framework_id)
    return FrameworkResult(framework.id, framework.title, tuple(results))
