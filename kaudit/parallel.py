"""Manifest scans over all cores.

Parsing and the per-object rules are most of the work of a large scan, and they need nothing but
the file at hand, so worker processes do them, a batch of files each, and send back the findings
and a lean copy of every resource. The main process then runs what needs the whole inventory
(NetworkPolicy coverage, RBAC paths, namespace rules, a pod's ServiceAccount), suppression and the
report, exactly as a single-process scan would: the result is the same report (a test compares them).

Why lean copies: sending whole parsed objects between processes costs about as much as parsing
them (measured on the 10 MiB benchmark corpus: 3.1 s to pickle and unpickle, 3.5 s to parse), so
workloads travel without their containers' bodies and other objects as their metadata only,
unless a rule that runs in the main process targets or reads their kind.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Sequence

from kaudit.checks import TEMPLATES
from kaudit.checks.base import Template
from kaudit.engine import EngineResult, run, sort_key
from kaudit.errors import KauditError
from kaudit.inventory import Inventory
from kaudit.model import Finding, Inputs, Resource
from kaudit.pod_security import ENFORCE_VERSION_LABEL, PodSecurityVersions
from kaudit.ruleset import Rule
from kaudit.sources.manifests import ManifestScan, Plan, PlannedFile, load_item, parsing_heap, read_file
from kaudit.sources.units import RenderOptions
from kaudit.sources.yamldoc import YamlMap, YamlSeq
from kaudit.value import field, record
from kaudit.workloads import CONTAINER_LISTS, POD_CONTAINERS, pod_specs

MIN_BYTES = 8 * 1024 * 1024  # below this, starting worker processes costs more than it saves
BATCHES_PER_WORKER = 4  # several batches each, so a worker that drew big files does not hold up the rest


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worthwhile(planned: Plan, jobs: int) -> bool:
    """Whether splitting this scan over `jobs` processes pays (and is possible here)."""
    files = planned.files
    if jobs < 2 or len(files) < 2:
        return False
    if any(item.path is None or item.named and not os.path.isfile(item.path) for item in files):
        return False  # stdin and pipes can be read once only, by this process
    sizes = [_size(item) for item in files]
    # One file that is most of the work cannot be split: workers would only add the cost of
    # sending its findings back (and hold them twice in memory).
    if sum(sizes) < MIN_BYTES or max(sizes) > sum(sizes) / 2:
        return False
    import multiprocessing  # only here: 15 ms of imports a pre-commit run should not pay

    return "fork" in multiprocessing.get_all_start_methods()


@record
class SplitRules:
    """The rules run in worker processes and those run over the whole inventory here."""

    local: list[Rule]  # need only the object itself: run in the workers
    main: list[Rule]  # need the whole inventory (or every namespace): run here
    full_kinds: frozenset[str]  # kinds the main rules target or read, sent whole
    whole_containers: bool  # a main rule looks at containers and says not what of them: workloads are sent whole
    container_fields: frozenset[str] = frozenset()  # else the container fields main rules read, sent with the name


def split_rules(rules: Sequence[Rule], absent: frozenset[str] = frozenset()) -> SplitRules:
    """`absent`: kinds no input file mentions. A rule that looks another object up (a pod's
    ServiceAccount) needs every file: in a worker it would see only its batch's, and miss an account
    declared in a file another worker read. When no file holds the kinds it reads (no LimitRange
    anywhere), it finds nothing in any process, so it runs in the workers."""
    def needs_only_its_object(template: Template) -> bool:
        unread = not set(template.reads) - absent
        return unread and (not template.cross_object or template.local_without_reads)

    local = [r for r in rules if needs_only_its_object(TEMPLATES[r.template]) and r.target != "namespace"]
    local_ids = {id(r) for r in local}
    main = [r for r in rules if id(r) not in local_ids]
    kinds: set[str] = {"Namespace"}
    for rule in main:
        kinds |= set(TEMPLATES[rule.template].reads) | {k for k in rule.kinds if k != "workloads"}
    # container rules, and object rules that read containers (the attack graph: privileged, ports...)
    container_rules = [TEMPLATES[r.template] for r in main
                       if r.target == "container" or TEMPLATES[r.template].container_fields]
    fields = frozenset(f for template in container_rules for f in template.container_fields)
    whole = any(not template.container_fields for template in container_rules)
    return SplitRules(local, main, frozenset(kinds), whole, fields)


@record
class ParallelScan:
    """A scan spread over worker processes: what was loaded and every rule's findings."""

    loaded: ManifestScan  # lean resources, and every input accounted for in plan order
    result: EngineResult  # findings of every rule, sorted as the engine sorts them


def scan(planned: Plan, rules: Sequence[Rule], max_bytes: int, jobs: int,
         default_namespace: Optional[str] = None, pod_security: Optional[PodSecurityVersions] = None,
         render: Optional[RenderOptions] = None) -> ParallelScan:
    """Files are read and judged by per-object rules in worker processes; charts and kustomizations
    are rendered here (a render is one subprocess or one SDK call, not worth splitting) and judged
    by the same rules here; rules that need the whole inventory run here over everything."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    looked_up = frozenset(kind for rule in rules for kind in TEMPLATES[rule.template].reads)
    rendered = _render_units(planned, default_namespace, render)
    versions, mentioned = _prescan(planned, max_bytes, default_namespace, pod_security or PodSecurityVersions(),
                                   looked_up)
    versions.with_namespaces(r for r in rendered.resources if r.kind == "Namespace")
    mentioned |= {r.kind for r in rendered.resources}
    split = split_rules(rules, looked_up - mentioned)
    batches = _batches(planned.files, jobs * BATCHES_PER_WORKER)
    _Worker.setup(split, max_bytes, default_namespace, versions)  # inherited by the forked workers: nothing to pickle
    loaded = ManifestScan(units=rendered.units)
    result = EngineResult()
    units = iter(rendered.per_unit)
    try:
        with ProcessPoolExecutor(min(jobs, len(batches)), mp_context=multiprocessing.get_context("fork")) as pool:
            done = _in_plan_order(pool.map(_Worker.work, batches), result)
            for found, item in planned.steps:
                loaded.inputs.merge(found)
                if item is not None:
                    inputs, resources = next(units) if item.unit is not None else next(done)
                    loaded.inputs.merge(inputs)
                    loaded.resources.extend(resources)
    except BrokenProcessPool:
        raise KauditError("a worker process died (out of memory?); rerun with --jobs 1") from None
    finally:
        _Worker.setup(None, 0, None, None)
    if rendered.resources:
        local = run(split.local, Inventory(rendered.resources, versions))
        result.findings.extend(local.findings)
        result.errors.extend(local.errors)
    central = run(split.main, Inventory(loaded.resources, versions))
    result.findings.extend(central.findings)
    result.findings.sort(key=sort_key)
    result.errors.extend(central.errors)
    return ParallelScan(loaded, result)


_FileResult = tuple[Inputs, list[Resource]]
_BatchResult = tuple[list[_FileResult], list[Finding], list[str]]


@record
class _Rendered:
    units: dict[str, Any] = field(default_factory=dict)  # directory -> RenderedUnit (sources/rendering.py)
    per_unit: list[_FileResult] = field(default_factory=list)  # in plan order
    resources: list[Resource] = field(default_factory=list)


def _render_units(planned: Plan, default_namespace: Optional[str], render: Optional[RenderOptions]) -> _Rendered:
    rendered = _Rendered()
    if not planned.units:
        return rendered
    from kaudit.sources.rendering import load_unit

    for unit in planned.units:
        scan = ManifestScan(default_namespace=default_namespace)
        load_unit(unit, render or RenderOptions(), scan)
        rendered.units.update(scan.units)
        rendered.per_unit.append((scan.inputs, scan.resources))
        rendered.resources.extend(scan.resources)
    return rendered


def _in_plan_order(batches: Iterator[_BatchResult], result: EngineResult) -> Iterator[_FileResult]:
    for files, findings, errors in batches:
        result.findings.extend(findings)
        result.errors.extend(errors)
        yield from files


def _prescan(planned: Plan, max_bytes: int, default_namespace: Optional[str], versions: PodSecurityVersions,
             looked_up: frozenset[str]) -> tuple[PodSecurityVersions, frozenset[str]]:
    """What the workers must know before they judge anything, from one byte search per file (it
    costs little next to parsing): the namespaces' Pod Security versions (a worker sees only its
    batch, and the Namespace may be in another; only files that mention the label are parsed
    here, as the scan would read them), and which of the kinds rules look up any file mentions
    (a mention is enough: a comment naming LimitRange keeps its rules in this process)."""
    label = ENFORCE_VERSION_LABEL.encode()
    words = {kind: kind.encode() for kind in looked_up}
    mentioned: set[str] = set()
    for item in planned.files:
        try:
            assert item.path is not None  # worthwhile(): no stdin in a parallel scan
            # never blocks on a file replaced by a FIFO since the walk; the worker reports such files
            data = read_file(item.path, max_bytes + 1, regular_only=True)
        except Exception:  # a FIFO, a folder, unreadable: the worker that reads it reports it
            mentioned.update(looked_up)  # unknown: as if it held them all
            continue
        mentioned.update(kind for kind, word in words.items() if kind not in mentioned and word in data)
        if label not in data:
            continue
        found = ManifestScan(default_namespace=default_namespace)
        load_item(item, max_bytes, found)
        versions.with_namespaces(r for r in found.resources if r.kind == "Namespace")
    return versions, frozenset(mentioned)


class _Worker:
    split: Optional[SplitRules] = None
    max_bytes = 0
    default_namespace: Optional[str] = None
    pod_security: Optional[PodSecurityVersions] = None

    @classmethod
    def setup(cls, split: Optional[SplitRules], max_bytes: int, default_namespace: Optional[str],
              pod_security: Optional[PodSecurityVersions]) -> None:
        cls.split, cls.max_bytes, cls.default_namespace = split, max_bytes, default_namespace
        cls.pod_security = pod_security

    @classmethod
    def work(cls, batch: list[PlannedFile]) -> _BatchResult:
        split = cls.split
        assert split is not None
        scans = []
        with parsing_heap():
            for item in batch:
                scans.append(ManifestScan(default_namespace=cls.default_namespace))
                load_item(item, cls.max_bytes, scans[-1])
            result = run(split.local, Inventory((r for s in scans for r in s.resources), cls.pod_security))
        files = [(s.inputs, [_lean(r, split) for r in s.resources]) for s in scans]
        for finding in result.findings:
            finding.fingerprint  # computed here, on every core, and sent along (as is path_text)
        return files, result.findings, result.errors


def _lean(resource: Resource, split: SplitRules) -> Resource:
    """What the main process needs of a resource: all of it for the kinds its rules target or read,
    a workload without its containers' bodies, anything else as its metadata."""
    body = resource.body
    pods = pod_specs(body)
    if pods:
        pod = pods[0]
        # Only the common case travels lean: one pod spec of a known kind with the PodSpec's own
        # container lists. Several templates, containers elsewhere, or a pod found by shape (whose
        # containers a lean copy might no longer show) travel whole, so the main process finds the same.
        if split.whole_containers or len(pods) > 1 or pod.found_by != "kind" or \
                pod.container_places != POD_CONTAINERS:
            return resource
        lean_body = _without_container_bodies(body, pod.path, ("name", *sorted(split.container_fields)))
    elif resource.kind in split.full_kinds or not isinstance(body, YamlMap):
        return resource
    else:
        lean_body = _only(body, ("apiVersion", "kind", "metadata"))
    return Resource(resource.ref, lean_body, resource.origin)


def _only(mapping: YamlMap, keys: Sequence[str]) -> YamlMap:
    kept = YamlMap()
    for key in keys:
        if key in mapping:
            kept[key] = mapping[key]
            if key in mapping.positions:
                kept.positions[key] = mapping.positions[key]
    return kept


def _without_container_bodies(body: Any, pod_path: tuple[Any, ...], kept: tuple[str, ...]) -> Any:
    """A copy of `body` down to the pod spec, whose container lists keep each container's `kept`
    fields (its name, and what main-process container rules read)."""
    if not pod_path:
        spec = _only(body, tuple(body))
        for list_name, _ in CONTAINER_LISTS:
            listed = spec.get(list_name)
            if isinstance(listed, YamlSeq):
                spec[list_name] = _fields_only(listed, kept)
        return spec
    if not isinstance(body, YamlMap):
        return body
    copy = _only(body, tuple(body))
    copy[pod_path[0]] = _without_container_bodies(body[pod_path[0]], pod_path[1:], kept)
    return copy


def _fields_only(containers: YamlSeq, kept: tuple[str, ...]) -> YamlSeq:
    lean = YamlSeq()
    for container in containers:
        lean.append(_only(container, kept) if isinstance(container, YamlMap) else container)
    lean.positions.extend(containers.positions)
    return lean


def _batches(files: list[PlannedFile], count: int) -> list[list[PlannedFile]]:
    """Consecutive runs of files of about equal size (consecutive: results come back in plan order)."""
    sizes = [_size(item) for item in files]
    share = max(sum(sizes) / max(count, 1), 1)
    batches: list[list[PlannedFile]] = [[]]
    filled = 0
    for item, size in zip(files, sizes):
        if batches[-1] and filled + size > share:
            batches.append([])
            filled = 0
        batches[-1].append(item)
        filled += size
    return batches


def _size(item: PlannedFile) -> int:
    try:
        return os.path.getsize(item.path) if item.path is not None else 0
    except OSError:
        return 0
