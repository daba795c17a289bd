"""One scan: sources -> inventory -> engine -> report. The CLI calls this and maps the result."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, AbstractSet as Set, Any, BinaryIO, Mapping, Optional, Sequence

from kaudit import __version__, frameworks, parallel, platform, relations, suppress
from kaudit.checks import TEMPLATES
from kaudit.config import Config, apply_rule_settings, load_config
from kaudit.engine import EngineResult, run, sort_key
from kaudit.errors import KauditError
from kaudit.fingerprint import make_unique
from kaudit.inventory import Inventory, declared_twice
from kaudit.kubeadm import embedded_problems
from kaudit.workloads import custom_workload
from kaudit.model import (
    Coverage, CoverageGap, Finding, FrameworkResult, ImageSummary, InputError, Inputs, Origin, Report, Resource,
    ResourceRef, Severity,
)
from kaudit.pod_security import PodSecurityVersions, cluster_ceiling
from kaudit.ruleset import Rule, combine, load_builtin_rules, load_rule_dirs
from kaudit.sources.manifests import DEFAULT_MAX_FILE_MB, Plan, load_planned, max_file_bytes, plan
from kaudit.sources.units import RenderOptions, RenderUnit
from kaudit.value import field, replace, value

if TYPE_CHECKING:
    from kaudit.baseline import Baseline
    from kaudit.owners import Instance
    from kaudit.registry.verify import ImageCheckRequest
    from kaudit.sources.cluster import ClusterRequest, ClusterScan
    from kaudit.sources.rendering import RenderedUnit

DEFAULT_FAIL_ON = "high"


@value
class ScanRequest:
    """What to scan and how, as the command line and the config ask."""

    targets: tuple[str, ...]
    rule_dirs: tuple[str, ...] = ()
    fail_on: Optional[str] = None  # None: from config, else DEFAULT_FAIL_ON; "never" disables the gate
    config: Optional[str] = None
    select: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()  # run only rules that check these frameworks' controls
    baseline: Optional[str] = None  # an earlier JSON report: only findings not in it fail the gate
    allow_gaps: bool = False  # cluster coverage gaps are reported but do not make the scan incomplete
    images: Optional["ImageCheckRequest"] = None  # --verify-images / --resolve-digests (network)
    per_file: bool = False  # skip rules that need the whole inventory (hooks see only changed files)
    cross_object_only: bool = False  # only those rules: the other half of a --per-file run (pre-commit)
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    jobs: int = 0  # processes for a large manifest scan; 0: one per available core
    allow_empty: bool = False  # inputs without any Kubernetes object may pass (pre-commit on other YAML)
    include_platform: bool = False  # also report findings on platform defaults (kaudit/platform.py)
    # `kaudit paths`: attack paths from these sources ("entry" or "any") to these crown jewels (all when
    # empty), whether or not the attack-path rule runs
    attack_sources: Optional[str] = None
    attack_targets: tuple[str, ...] = ()
    default_namespace: Optional[str] = None  # manifests: `-n NS`, as `kubectl apply -n NS` (sources/manifests.py)
    render: RenderOptions = field(default_factory=RenderOptions)  # charts and kustomizations (sources/rendering.py)


def rule_catalog(rule_dirs: Sequence[str], config: Config) -> list[Rule]:
    """Built-in and custom rules as written, before the config enables, disables or re-grades them."""
    return combine(load_builtin_rules(), load_rule_dirs([*config.rule_dirs, *rule_dirs]))


def select_rules(rules: list[Rule], select: Sequence[str] = (), framework_ids: Sequence[str] = ()) -> list[Rule]:
    if framework_ids:
        rules = frameworks.select(rules, framework_ids)
    if select:
        known = {rule.id for rule in rules}
        missing = [rule_id for rule_id in select if rule_id not in known]
        if missing:
            raise KauditError(f"--rule {missing[0]}: no such rule (see `kaudit rules list`)")
        rules = [rule for rule in rules if rule.id in select]
    return rules


def parse_fail_on(text: str) -> Optional[Severity]:
    return None if text == "never" else Severity.parse(text)


@value
class _Prepared:
    """Config, rules and baseline of a scan: everything decided before any input is read."""

    config: Config
    fail_on: Optional[Severity]
    catalog: list[Rule]  # every rule, also those disabled: a control checked by one that did not run is not a pass
    known: list[Rule]
    rules: list[Rule]
    baseline: Optional[Baseline]
    framework_ids: tuple[str, ...] = ()  # --framework without the @VERSION
    pod_security: PodSecurityVersions = field(default_factory=PodSecurityVersions)
    opt_in_off: frozenset[str] = frozenset()  # opt-in rules left off: an ignore annotation may still name them
    # (rule id, why) for the rules --per-file or --cross-object-only leave to the other half of the work
    left_out: tuple[tuple[str, str], ...] = ()
    # --cross-object-only: object-local rules run only so that relations join their findings to the
    # cross-object ones (kaudit/relations.py); their own findings are the --per-file run's to report
    companions: frozenset[str] = frozenset()


def _prepare(request: ScanRequest) -> _Prepared:
    """Config, rules and baseline: everything that can fail before any input is read."""
    config = load_config(request.config)
    fail_on = parse_fail_on(request.fail_on or config.fail_on or DEFAULT_FAIL_ON)
    written = rule_catalog(request.rule_dirs, config)
    known = apply_rule_settings(written, config, request.select)
    # An opt-in rule left off is no part of this policy: its controls do not wait for it to run.
    running = {rule.id for rule in known}
    catalog = [rule for rule in written if rule.enabled or rule.id in running]
    framework_ids, forced = frameworks.split_versions(request.frameworks)
    rules = select_rules(known, request.select, framework_ids)
    rules, left_out, companions = _split_for_hooks(rules, request)
    baseline_path = request.baseline or config.baseline
    baseline = None
    if baseline_path:  # baselines, running pods and owners: imported where used, off the hook path
        from kaudit.baseline import load_baseline

        baseline = load_baseline(baseline_path)
    opt_in_off = frozenset(rule.id for rule in written if not rule.enabled and rule.id not in running)
    return _Prepared(config, fail_on, catalog, known, rules, baseline, framework_ids,
                     PodSecurityVersions(forced=forced, default=config.pod_security_version), opt_in_off,
                     tuple(left_out), companions)


PER_FILE_LEFT_OUT = "cross-object rule: --per-file judges each object on its own (run it on the whole tree)"
CROSS_ONLY_LEFT_OUT = "judges each object on its own: --cross-object-only leaves it to the --per-file run"


def _split_for_hooks(rules: list[Rule], request: ScanRequest
                     ) -> tuple[list[Rule], list[tuple[str, str]], frozenset[str]]:
    """The rules to run, those left out (with why) and the companions (see `_Prepared`) of a scan
    that does one half of the work: --per-file the object-local rules, --cross-object-only the
    cross-object ones. Together the two halves run every rule once, so no fact is reported twice."""
    if request.per_file and request.cross_object_only:
        raise KauditError("--per-file and --cross-object-only are the two halves of one check: give one")
    if not (request.per_file or request.cross_object_only):
        return rules, [], frozenset()
    cross = {rule.id for rule in rules if TEMPLATES[rule.template].cross_object}
    if request.per_file:
        return ([rule for rule in rules if rule.id not in cross],
                [(rule.id, PER_FILE_LEFT_OUT) for rule in rules if rule.id in cross], frozenset())
    named_by_cross = {other for rule in rules if rule.id in cross for other in (*rule.same_as, *rule.implies)}
    companions = frozenset(rule.id for rule in rules if rule.id not in cross and (
        rule.id in named_by_cross or cross.intersection((*rule.same_as, *rule.implies))))
    return ([rule for rule in rules if rule.id in cross or rule.id in companions],
            [(rule.id, CROSS_ONLY_LEFT_OUT) for rule in rules if rule.id not in cross], companions)


def _cross_object_facts(findings: Sequence[Finding], companions: frozenset[str]) -> list[Finding]:
    """--cross-object-only: the findings a cross-object rule leads, without the object-local rules'
    findings joined to them (the --per-file run reports those). A finding a companion leads is that
    run's too: what it carries joined is a consequence of its fact, or the same fact."""
    kept = []
    for finding in findings:
        if finding.rule in companions:
            continue
        joined = tuple(j for j in finding.joined if j.rule not in companions)
        kept.append(finding if len(joined) == len(finding.joined) else replace(finding, joined=joined))
    return kept


CLUSTER_KINDS = frozenset({"ClusterInfo"})  # objects only a live-cluster scan makes (`cluster_info`)


def rules_not_run(rules: Sequence[Rule], kinds_seen: Set[str], coverage: Optional[Coverage],
                  images: ImageSummary) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(not run, partly run) rules of a scan, each with why (see `Report.rules_not_run`): those that
    need --verify-images or a live cluster and did not get it, and the cluster's coverage verdicts."""
    not_run, partly = [], []
    for rule in rules:
        needs_images = "verified-images" in TEMPLATES[rule.template].needs
        if needs_images and not images.signatures_checked:
            not_run.append((rule.id, "needs --verify-images: image signatures were not checked"))
        elif coverage is None and rule.kinds and rule.kinds <= CLUSTER_KINDS and not kinds_seen & CLUSTER_KINDS:
            not_run.append((rule.id, "needs a live cluster scan (--context): it judges the cluster itself"))
        elif needs_images and images.gaps:
            partly.append((rule.id, f"the signatures of {len(images.gaps)} image(s) could not be checked"))
    if coverage is not None:
        not_run.extend(coverage.rules_not_evaluated)
        partly.extend(coverage.rules_partially_evaluated)
    return not_run, partly


def _evaluate(request: ScanRequest, prepared: _Prepared, resources: list[Resource], inputs: Inputs,
              targets: tuple[str, ...], coverage: Optional[Coverage] = None,
              instances: Sequence[Instance] = (), evaluated: Optional[EngineResult] = None,
              units: Optional[Mapping[str, "RenderedUnit"]] = None) -> Report:
    """Rules, suppression, platform defaults, baseline, frameworks: the same for manifests and clusters.
    `instances`: running pods that differ from their controller's template (kaudit/owners.py).
    `evaluated`: the rules already ran (spread over worker processes). `units`: the charts and
    kustomizations rendered, whose findings are pointed back at templates, values and patches."""
    rules = prepared.rules
    inventory = Inventory(resources, prepared.pod_security)
    if coverage is None:  # a cluster holds each object once
        inputs.warnings.extend(declared_twice(resources))
    inputs.workloads = [w for w in map(custom_workload, resources) if w is not None]
    inputs.errors.extend(embedded_problems(resources))  # kubeadm's ConfigMaps: configuration that cannot be read
    image_summary = _check_images(request, inventory, instances)
    result = evaluated if evaluated is not None else run(rules, inventory)
    if instances:  # what running pods add to their controllers' findings
        from kaudit.instances import judge_instances

        added = judge_instances(rules, inventory, instances, result.findings)
        result = EngineResult(sorted(result.findings + added.findings, key=sort_key), result.errors + added.errors)
    if units:
        from kaudit.sources.provenance import relocate

        result = EngineResult(sorted(relocate(result.findings, resources, units), key=sort_key), result.errors)
    not_evaluated = dict(coverage.rules_not_evaluated) if coverage is not None else {}
    # A rule not evaluated reports nothing (its verdicts would be guesses); its controls are not evaluated.
    findings = make_unique([f for f in result.findings if f.rule not in not_evaluated])
    findings, warnings = suppress.apply(findings, resources, prepared.config.exclusions,
                                        prepared.config.annotation_exemptions,
                                        [*(rule.id for rule in prepared.known), *prepared.opt_in_off])
    inputs.warnings.extend(warnings)
    findings = relations.join(findings, relations.Relations.of(rules))  # one finding per fact
    if prepared.companions:
        findings = _cross_object_facts(findings, prepared.companions)
    # Kubernetes' own objects: counted, their findings left out unless asked for
    findings, platform_summary = platform.hide(findings, resources, inventory,
                                               platform.Versions.of(coverage.version if coverage else None),
                                               request.include_platform)
    compared = None
    if prepared.baseline is not None:
        from kaudit.baseline import apply_baseline, compare

        findings = apply_baseline(findings, prepared.baseline)
        compared = compare(findings, prepared.baseline, resources)
    reported = prepared.framework_ids or tuple(frameworks.FRAMEWORKS)
    nothing_scanned = coverage is None and inputs.resources == 0
    rules = [rule for rule in rules if rule.id not in prepared.companions]
    blind, partly = rules_not_run(rules, {resource.kind for resource in resources}, coverage, image_summary)
    not_run = [*prepared.left_out, *blind]
    attack = _attack(request, rules, inventory, findings)
    if attack is not None and units:
        from kaudit.sources.provenance import relocate_evidence

        # the graph's evidence, and the findings' (a parallel scan's rule ran on another inventory)
        graph = attack.analysis.graph
        relocate_evidence([e for edge in graph.edges for e in edge.evidence] +
                          [node.entry for node in graph.nodes.values() if node.entry is not None] +
                          [e for f in findings if f.attack_path is not None for step in f.attack_path.steps
                           for e in step.evidence], units)
    return Report(
        tool_version=__version__,
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        targets=targets,
        findings=tuple(findings),
        inputs=inputs,
        rules=tuple(sorted((rule.info() for rule in rules), key=lambda info: info.id)),
        fail_on=prepared.fail_on,
        rule_errors=tuple(sorted(result.errors)),  # sorted: the same however the work was split
        frameworks=tuple(_with_versions(frameworks.evaluate_all(reported, rules, findings, prepared.catalog,
                                                                dict(not_run), nothing_scanned),
                                        inventory.pod_security)),
        framework_selected=bool(request.frameworks),
        coverage=coverage,
        gaps_allowed=request.allow_gaps,
        images=image_summary,
        empty_allowed=request.allow_empty,
        platform=platform_summary,
        baseline=compared,
        rules_not_run=tuple(not_run),
        rules_partly_run=tuple(partly),
        attack=attack,
    )


ATTACK_RULE = "attack-path-to-cluster-admin"


def _attack(request: ScanRequest, rules: Sequence[Rule], inventory: Inventory, findings: Sequence[Finding]
            ) -> Optional[Any]:
    """The attack paths of the scan, for its summary: when the attack-path rule ran (its analysis is
    built already) or `kaudit paths` asked."""
    ran = any(rule.id == ATTACK_RULE for rule in rules)
    if request.attack_sources is None and not ran:
        return None
    from kaudit.attack import analyse
    from kaudit.attack.model import report_of

    if request.attack_sources is not None:
        analysis = analyse(inventory, request.attack_sources, request.attack_targets or None)
        return report_of(analysis, frozenset(path.key for path in analysis.paths))
    active = frozenset(f.fact for f in findings if f.rule == ATTACK_RULE and f.suppressed is None)
    return report_of(analyse(inventory), active)


def _with_versions(results: Sequence[FrameworkResult], versions: PodSecurityVersions) -> list[FrameworkResult]:
    """The Pod Security frameworks' titles say which policy versions judged the scan's pods."""
    said = versions.describe()
    return [replace(result, title=f"{result.title} ({said})", versions=said)
            if result.id in frameworks.PSS_FRAMEWORKS else result for result in results]


def _check_images(request: ScanRequest, inventory: Inventory, instances: Sequence[Instance] = ()
                  ) -> ImageSummary:
    """Resolve and verify the scan's images when asked; the only network access of a manifest scan."""
    wanted = request.images
    if wanted is None or not (wanted.verify or wanted.resolve):
        return ImageSummary()
    from kaudit.registry.verify import check_images
    from kaudit.workloads import containers, pod_specs

    pods = [pod for resource in inventory for pod in pod_specs(resource.body)]
    pods.extend(instance.pod for instance in instances)  # an injected sidecar's image too
    images: list[str] = []
    for pod in pods:
        images.extend(str(c.body["image"]) for c in containers(pod) if isinstance(c.body.get("image"), str))
    result = check_images(images, wanted)
    inventory.memo["images"] = result.facts
    facts = sorted(result.facts.values(), key=lambda f: f.image)
    return ImageSummary(
        signatures_checked=wanted.verify, digests_resolved=True, checked=len(facts),
        round_trips=result.round_trips, from_cache=result.from_cache,
        gaps=tuple((f.image, f.error) for f in facts if f.error),
        resolved=tuple((f.image, f.digest) for f in facts if f.digest and "@" not in f.image))


def scan_manifests(request: ScanRequest, stdin: Optional[BinaryIO] = None) -> Report:
    if not request.targets:
        raise KauditError("nothing to scan: give files, directories, globs or '-' for stdin")
    prepared = _prepare(request)
    planned = plan(request.targets)
    max_bytes = max_file_bytes(request.max_file_mb)
    jobs = request.jobs or parallel.available_cores()
    images = request.images
    if not (images and (images.verify or images.resolve)) and parallel.worthwhile(planned, jobs):
        return scan_on_workers(request, prepared, planned, jobs)
    loaded = load_planned(planned, max_bytes, stdin, request.default_namespace, request.render)
    loaded.inputs.warnings.extend(_unused_render_options(request.render, planned.units))
    return _evaluate(request, prepared, loaded.resources, loaded.inputs, request.targets, units=loaded.units)


def scan_on_workers(request: ScanRequest, prepared: _Prepared, planned: Plan, jobs: int) -> Report:
    """The scan spread over `jobs` worker processes (kaudit/parallel.py)."""
    done = parallel.scan(planned, prepared.rules, max_file_bytes(request.max_file_mb), jobs, request.default_namespace,
                         prepared.pod_security, request.render)
    done.loaded.inputs.warnings.extend(_unused_render_options(request.render, planned.units))
    return _evaluate(request, prepared, done.loaded.resources, done.loaded.inputs, request.targets,
                     evaluated=done.result, units=done.loaded.units)


def _unused_render_options(options: RenderOptions, units: Sequence[RenderUnit]) -> list[InputError]:
    """A render option given for a kind of unit the scan has none of did nothing: say so (a typo in
    the path to a chart would otherwise pass quietly on the rest)."""
    kinds = {unit.renderer for unit in units}
    unused = []
    helm_flags = [flag for flag in options.helm_flags() if not flag.startswith("--helm-namespace")]
    if helm_flags and "helm" not in kinds:
        unused.append(InputError(helm_flags[0].split(" ")[0], None, "no Helm chart among the inputs: the Helm "
                                                                     "options did nothing"))
    if options.kustomize_flags() and "kustomize" not in kinds:
        unused.append(InputError("--kustomize-allow-remote", None, "no kustomization among the inputs: the option "
                                                                   "did nothing"))
    return unused


WORKLOAD_KINDS = frozenset({"Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob",
                            "ReplicationController", "Rollout", "CloneSet"})


def rules_affected(rules: Sequence[Rule], gaps: Sequence[CoverageGap], kinds_read: Optional[Set[str]] = None
                   ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(not evaluated, partially evaluated) rules, each with why, for the kinds a scan could not read.

    A gap on a kind a rule looks things up in (its template's `reads`: is there a NetworkPolicy, an
    admission engine, a binding) leaves its verdicts unfounded, absence verdicts above all: it is
    not evaluated, and its findings are dropped. A gap on a kind it judges (its target kinds) only
    hides the objects not read: what it found on the others is true, so it is partially evaluated
    and its findings stay, unless none of the kinds it judges was read at all (`kinds_read`: the
    kinds listed with at least one success; None: unknown, taken as read)."""
    not_evaluated, partial = [], []
    for rule in rules:
        template = TEMPLATES[rule.template]
        looked_up = set(template.reads) - template.reads_partly
        judged = {k for k in rule.kinds if k not in ("workloads", "all")}
        if "workloads" in rule.kinds or rule.target in ("pod", "container"):
            judged |= WORKLOAD_KINDS
        if rule.target == "namespace":
            judged.add("Namespace")
        context_gaps = [gap for gap in gaps if gap.kind in looked_up]
        judged_gaps = [gap for gap in gaps if gap.kind not in looked_up and (gap.kind in judged or "all" in rule.kinds
                                                                             or gap.kind in template.reads_partly)]
        nothing_judged = kinds_read is not None and "all" not in rule.kinds and not (judged & kinds_read)
        if context_gaps or (judged_gaps and nothing_judged):
            not_evaluated.append((rule.id, _unread(context_gaps + judged_gaps)))
        elif judged_gaps:
            partial.append((rule.id, _unread(judged_gaps)))
    return not_evaluated, partial


def _unread(gaps: Sequence[CoverageGap]) -> str:
    """"could not read pods in namespace team-b, nodes": each resource once, with where it failed."""
    where: dict[str, list[str]] = {}
    for gap in gaps:
        where.setdefault(gap.resource, [])
        if gap.namespace:
            where[gap.resource].append(gap.namespace)
    parts = []
    for resource in sorted(where):
        names = where[resource]
        if len(names) != len([g for g in gaps if g.resource == resource]) or not names:
            parts.append(resource)  # failed cluster-wide (too)
        else:
            parts.append(f"{resource} in namespace{'s' if len(names) > 1 else ''} {', '.join(sorted(names))}")
    return "could not read " + ", ".join(parts)


def _accept_gaps(gaps: Sequence[CoverageGap], accepted: Mapping[str, str]) -> list[CoverageGap]:
    """Mark the gaps the config accepts by name (`accept-gaps`), with its reason."""
    return [replace(gap, accepted=accepted[gap.resource]) if gap.resource in accepted else gap
            for gap in gaps]


def cluster_info(scanned: "ClusterScan", resources: Sequence[Resource]) -> Resource:
    """The cluster's own facts as an object rules can look at (kind ClusterInfo, kaudit.io/v1)."""
    nodes = [{"name": node.name,
              "kubeletVersion": str((node.body.get("status") or {}).get("nodeInfo", {}).get("kubeletVersion", ""))}
             for node in resources if node.kind == "Node"]
    body = {"apiVersion": "kaudit.io/v1", "kind": "ClusterInfo", "metadata": {"name": scanned.context},
            "serverVersion": scanned.version, "server": scanned.server, "nodes": nodes}
    return Resource(ResourceRef("kaudit.io/v1", "ClusterInfo", scanned.context), body,
                    Origin(context=scanned.context, server=scanned.server))


def scan_cluster(request: ScanRequest, cluster: "ClusterRequest") -> Report:
    prepared = _prepare(request)
    from kaudit.sources.cluster import load_cluster  # imports the kubernetes client: only here

    scanned = load_cluster(cluster)
    # `latest` on this cluster is its own newest policy version (admission's registry maxVersion)
    prepared.pod_security.ceiling = cluster_ceiling(scanned.version)
    from kaudit.owners import collapse

    collapsed = collapse(scanned.resources)
    resources = collapsed.resources
    resources.append(cluster_info(scanned, resources))
    not_evaluated, partial = rules_affected(prepared.rules, scanned.gaps, set(scanned.kinds_read))
    gaps = _accept_gaps(scanned.gaps, prepared.config.accepted_gaps)
    coverage = Coverage(scanned.context, scanned.server, scanned.version, tuple(scanned.read), tuple(gaps),
                        tuple(not_evaluated), scanned.requests, tuple(partial))
    inputs = Inputs(documents=len(scanned.resources), resources=len(resources),
                    warnings=[InputError(f"context {scanned.context}", None, text) for text in scanned.warnings])
    target = f"context {scanned.context} ({scanned.server})"
    return _evaluate(request, prepared, resources, inputs, (target,), coverage, collapsed.instances)
