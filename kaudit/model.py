"""The values that flow between stages: resources in, findings and a report out."""
from __future__ import annotations

import enum
import json
import re
import functools
from typing import Any, Mapping, Optional, Union

from kaudit.errors import KauditError
from kaudit.sha256 import sha256
from kaudit.value import computed_once, field, record, value

PathPart = Union[str, int]
STDIN_NAME = "<stdin>"  # the file name findings from standard input carry
FieldPath = tuple[PathPart, ...]


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self]  # by index: an enum's `name` is a slow dynamic attribute

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(s.label for s in reversed(cls))
            raise KauditError(f"unknown severity {text!r} (use one of: {names})") from None


_SEVERITY_LABELS = tuple(s.name.lower() for s in Severity)  # in value order, 0 = info
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@functools.lru_cache(maxsize=4096)  # a scan's findings share few paths: formatting each is a third of a big report
def format_path(path: FieldPath) -> str:
    """`('spec', 'containers', 0, 'image')` -> `spec.containers[0].image`; keys with dots or slashes
    are quoted (`annotations["kaudit.io/ignore"]`) so the path stays unambiguous."""
    parts = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            parts.append("." + part)
        else:
            parts.append(f"[{json.dumps(part)}]")
    if parts and parts[0].startswith("."):
        parts[0] = parts[0][1:]
    return "".join(parts)


@value
class Origin:
    """Where a resource came from: a manifest file (and line), or a cluster."""

    file: Optional[str] = None
    line: Optional[int] = None
    column: Optional[int] = None
    document: Optional[int] = None  # 1-based index of the document in its file
    context: Optional[str] = None  # cluster scans
    server: Optional[str] = None
    rendered: Optional["RenderedFrom"] = None  # an object a chart or a kustomization rendered

    @property
    def declaration(self) -> Optional[tuple[int, int]]:
        """Where the object starts in its file, which tells apart two declarations of one object in
        one file (Finding.declaration); None without a line (a cluster's object)."""
        return None if self.line is None else (self.line, self.column or 0)


@value
class RenderedFrom:
    """The render unit an object came from, and its document in that unit's output."""

    unit: str  # the chart or kustomization directory, as the report names it
    renderer: str  # "helm" | "kustomize"
    document: int  # index of the object's document in the unit's render


@value
class ValuesLocation:
    """Where the value of a rendered field was set: a values file and key, or a --helm-set."""

    file: str
    line: Optional[int]
    key: str
    how: str = ""  # "switch": a flag whose value turns the field on (or off), not the field's own value

    def describe(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.key}" + (" (switches it on)" if self.how == "switch" else "")


@value
class RenderedLocation:
    """What a finding on a rendered object points at beyond its file and line."""

    unit: str  # chart or kustomization directory
    renderer: str  # the engine that rendered it, e.g. "helm-python-sdk", "kubectl kustomize"
    source: Optional[str] = None  # the template (chart) or resource file (kustomization) of the object
    rendered_line: Optional[int] = None  # line in the rendered document
    exact: bool = False  # the line's literal text in the template wrote the field (else: the line emitting it)
    values: Optional[ValuesLocation] = None  # the values key that set the field (Helm)
    values_note: str = ""  # why the values key is unknown, when it could not be traced
    patch: Optional[str] = None  # the patch that set the field (Kustomize), as "file:line": also the location
    how: str = ""  # how the field got its value, e.g. "strategic merge patch"

    def describe(self) -> str:
        """The provenance a person reads after the file:line: values key, patch, or the unit."""
        if self.values is not None:
            return f"values: {self.values.describe()}"
        if self.patch is not None:
            return f"patch: {self.patch}" + (f" ({self.how})" if self.how else "")
        return ""


# Location and Finding are built once per finding (60,000 on a large tree): frozen dataclasses
# construct five times slower, so these two are plain ones, treated as values and never mutated.
@record
class Location:
    """Where a finding is: file, line and column of a manifest, or a cluster's context and server."""

    file: Optional[str] = None
    line: Optional[int] = None
    column: Optional[int] = None
    context: Optional[str] = None
    server: Optional[str] = None
    rendered: Optional[RenderedLocation] = None  # a rendered object's template, values key or patch

    def describe(self) -> str:
        if self.file is None:
            return self.context or self.server or "-"
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@value
class ResourceRef:
    """A Kubernetes object's identity: apiVersion, kind, name and namespace."""

    api_version: str
    kind: str
    name: str
    namespace: Optional[str] = None

    def describe(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@value(eq=False)
class Resource:
    """One Kubernetes object. `body` is the object as parsed (positions attached for manifests)."""

    ref: ResourceRef
    body: Mapping[str, Any]
    origin: Origin

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def namespace(self) -> Optional[str]:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name


@value
class Suppression:
    """Why a finding is not counted: by an annotation, the config or a baseline."""

    by: str  # "annotation", "config" or "baseline"
    reason: str


@value
class JoinedFinding:
    """Another rule's finding on the same fact, reported within the finding that leads
    (kaudit/relations.py): its rule, what it said and where, and its own fingerprint (baselines)."""

    rule: str
    severity: Severity
    message: str
    resource: "ResourceRef"  # the leader's, or an object in the leading namespace finding's namespace
    path: FieldPath
    container: Optional[str]
    location: Location
    fingerprint: str
    relation: str  # same-as (the same fact) | implied (a consequence of the leading finding's fact)


@record
class Finding:
    """One fact a rule reports on one object, at the field to fix."""

    rule: str
    severity: Severity
    title: str
    message: str
    resource: ResourceRef
    path: FieldPath
    location: Location
    container: Optional[str] = None
    category: str = ""
    frameworks: "Frameworks" = field(default_factory=dict)
    remediation: str = ""
    references: tuple[str, ...] = ()
    suppressed: Optional[Suppression] = None
    # What the fact is about beyond its field (kaudit/fingerprint.py): `key_path` is the field path
    # with list items named by their keys, `fact` tells apart facts that share a field.
    key_path: str = ""
    fact: str = ""
    subject: Optional[str] = None  # the RBAC subject the fact is about (`Hit.subject`), if one
    joined: tuple[JoinedFinding, ...] = ()  # other rules' findings on this fact (kaudit/relations.py)
    # Which declaration of the object it is on: the line and column where the object starts in its
    # file (None for a cluster's, which holds each object once). An object declared twice in one file
    # is two places to fix, each judged on its own (inventory.declared_twice): findings join and
    # annotations suppress within one declaration only. Not part of the fact (nor of the fingerprint).
    declaration: Optional[tuple[int, int]] = None
    # An attack path (kaudit/attack/model.AttackPath) when the finding is one: its steps, each with
    # its evidence, for the writers (HTML chain, SARIF codeFlow). The fact is the path's key.
    attack_path: Optional[Any] = field(default=None, compare=False, repr=False)

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule this finding reports: its own, then those joined to it."""
        return (self.rule, *(joined.rule for joined in self.joined))

    @computed_once
    def path_text(self) -> str:
        return format_path(self.path)

    @computed_once
    def fingerprint(self) -> str:
        """One fact: rule + resource identity + container + field (+ what it is about); never the line
        or the file, so it is stable across edits that move lines and files."""
        ref = self.resource
        group = ref.api_version.rpartition("/")[0]  # the API group, not its version, identifies a kind
        identity = "|".join([self.rule, group, ref.kind, ref.namespace or "", ref.name, self.container or "",
                             self.key_path or self.path_text, self.fact])
        return sha256(identity.encode()).hexdigest()[:32]


@value
class Skipped:
    """An input document that holds no Kubernetes object, and why it was skipped."""

    file: str
    line: Optional[int]
    reason: str


@value
class InputError:
    """An input that could not be read or parsed (also used for warnings)."""

    file: str
    line: Optional[int]
    message: str

    def describe(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@value
class CustomWorkload:
    """A custom resource judged as a workload: how its pod specs were found and where they are."""

    resource: "ResourceRef"
    found_by: str  # kind (a known controller's kind) | shape (a PodSpec recognised by its fields)
    pod_spec_paths: tuple[str, ...]


@value
class FileRead:
    """One input file that was opened: how many documents and objects it gave."""

    file: str
    documents: int
    objects: int


@value
class RenderedInput:
    """A chart or kustomization the scan rendered: with what, how, and what it gave."""

    directory: str
    kind: str  # "helm" | "kustomize"
    renderer: str  # the engine: "helm-python-sdk", "helm-binary", "kubectl kustomize", "kustomize build"
    options: tuple[str, ...] = ()  # as command-line flags: ("--helm-values ci/prod.yaml", "--helm-release web")
    documents: int = 0
    objects: int = 0
    error: Optional[str] = None  # the renderer's message when it failed (also in Inputs.errors)
    milliseconds: float = 0.0


@record
class Inputs:
    """Every input accounted for: what was scanned, what was skipped and why, what failed."""

    files: int = 0
    documents: int = 0
    resources: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    warnings: list[InputError] = field(default_factory=list)
    read: list[FileRead] = field(default_factory=list)  # every file opened, in scan order
    workloads: list[CustomWorkload] = field(default_factory=list)  # custom resources judged as workloads
    rendered: list[RenderedInput] = field(default_factory=list)  # charts and kustomizations, in scan order

    def merge(self, other: "Inputs") -> None:
        self.files += other.files
        self.documents += other.documents
        self.resources += other.resources
        self.skipped.extend(other.skipped)
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        self.read.extend(other.read)
        self.workloads.extend(other.workloads)
        self.rendered.extend(other.rendered)

    def per_file(self) -> list[dict[str, Any]]:
        """Each input with its outcome: `error` (it or a document in it failed), `scanned` (it gave
        objects), `skipped` (read, but nothing in it is a Kubernetes object). Files never opened
        (missing paths, unrendered charts, FIFOs in a folder) appear through their error or skip."""
        entries: dict[str, dict[str, Any]] = {}

        def entry(file: str) -> dict[str, Any]:
            if file not in entries:
                entries[file] = {"file": file, "outcome": "skipped", "documents": 0, "objects": 0,
                                 "skipped": 0, "errors": 0}
            return entries[file]

        for read in self.read:
            record = entry(read.file)
            record["documents"] += read.documents
            record["objects"] += read.objects
        for skipped in self.skipped:
            entry(skipped.file)["skipped"] += 1
        for error in self.errors:
            entry(error.file)["errors"] += 1
        for record in entries.values():
            record["outcome"] = "error" if record["errors"] else "scanned" if record["objects"] else "skipped"
        return list(entries.values())


@value
class ControlResult:
    """One framework control's verdict in a scan, with the rules that check it."""

    id: str
    title: str
    status: str  # pass | fail | not-evaluated (a rule for it did not run or saw nothing) | not-covered (no rule)
    rules: tuple[str, ...]
    findings: int
    gap: str = ""


@value
class FrameworkResult:
    """One framework's verdicts, control by control."""

    id: str
    title: str
    controls: tuple[ControlResult, ...]
    versions: str = ""  # Pod Security frameworks: which policy versions judged the pods (also in the title)

    def count(self, status: str) -> int:
        return sum(1 for control in self.controls if control.status == status)


Frameworks = Mapping[str, tuple[str, ...]]


@value
class RuleInfo:
    """What a report says once about each rule that ran (findings refer to it by id)."""

    id: str
    title: str
    severity: Severity
    category: str
    frameworks: Frameworks
    remediation: str
    references: tuple[str, ...]
    docs: Mapping[str, str] = field(default_factory=dict)  # what / why / example / fix
    same_as: tuple[str, ...] = ()  # relations (kaudit/relations.py)
    implies: tuple[str, ...] = ()


@value
class CoverageGap:
    """Part of a cluster that could not be read: the scan went on, and says so."""

    resource: str  # e.g. "rolebindings.rbac.authorization.k8s.io"
    kind: str
    namespace: Optional[str]
    reason: str  # forbidden | failed
    message: str
    accepted: Optional[str] = None  # the config's reason for accepting this gap (`accept-gaps`)

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        accepted = f" (accepted: {self.accepted})" if self.accepted else ""
        return f"could not read {self.resource}{where}: {self.reason}: {self.message}{accepted}"


@value
class Coverage:
    """What a live-cluster scan read, and what it could not."""

    context: str
    server: str
    version: str
    read: tuple[str, ...]
    gaps: tuple[CoverageGap, ...] = ()
    rules_not_evaluated: tuple[tuple[str, str], ...] = ()  # (rule id, why): its findings are dropped
    requests: int = 0
    # (rule id, why): a kind it judges was read only in part; its findings on what was read stand
    rules_partially_evaluated: tuple[tuple[str, str], ...] = ()

    @property
    def open_gaps(self) -> tuple[CoverageGap, ...]:
        """The gaps no `accept-gaps` entry of the config accepts: these make a scan incomplete."""
        return tuple(gap for gap in self.gaps if not gap.accepted)


@value
class ImageSummary:
    """What --verify-images / --resolve-digests did (network only when asked)."""

    signatures_checked: bool = False
    digests_resolved: bool = False
    checked: int = 0
    round_trips: int = 0
    from_cache: int = 0
    gaps: tuple[tuple[str, str], ...] = ()  # (image, why it could not be checked)
    resolved: tuple[tuple[str, str], ...] = ()  # (tag-only image, digest it points to now)


@value
class PlatformSummary:
    """Objects identical to what the platform creates (kaudit/platform.py): their findings are not
    reported unless --include-platform; they are counted here."""

    objects: int = 0  # platform defaults in the scan: bootstrap RBAC and control-plane objects
    bootstrap: int = 0  # ... of which bootstrap RBAC objects
    minors: tuple[str, ...] = ()  # the bootstrap policy minors those are identical to
    modified: int = 0  # bootstrap objects that differ from their default (each difference is reported)
    findings_hidden: int = 0  # findings on the defaults left out of the report
    findings_shown: int = 0  # ... kept in it (--include-platform)
    included: bool = False  # --include-platform
    server_minor: Optional[str] = None  # a cluster's minor when no policy of it is shipped (nearest used)


@value
class BaselineSummary:
    """How a scan compares with its --baseline (kaudit/baseline.py): `new` findings (active: not in
    it), `unchanged` ones (in it, so suppressed by it), `fixed` facts (fingerprints in it that no
    finding of this scan reports, its own or joined, on objects or files the scan read) and `unseen`
    ones (gone, but on objects the scan never read)."""

    source: str
    generated_at: str
    new: int
    unchanged: int
    fixed: int
    unseen: int = 0  # facts of the baseline on objects and files this scan did not read: not called fixed


@value
class Report:
    """Everything one scan found and how it got there; the writers render it."""

    tool_version: str
    generated_at: str
    targets: tuple[str, ...]
    findings: tuple[Finding, ...]
    inputs: Inputs
    rules: tuple[RuleInfo, ...]
    fail_on: Optional[Severity]
    rule_errors: tuple[str, ...] = ()
    frameworks: tuple[FrameworkResult, ...] = ()
    framework_selected: bool = False  # the user asked for these frameworks (--framework)
    coverage: Optional[Coverage] = None  # live-cluster scans
    gaps_allowed: bool = False  # --allow-gaps: coverage gaps are reported but do not make the scan incomplete
    images: ImageSummary = field(default_factory=ImageSummary)
    empty_allowed: bool = False  # --allow-empty: a scan of inputs without Kubernetes objects may pass
    platform: PlatformSummary = field(default_factory=PlatformSummary)
    baseline: Optional[BaselineSummary] = None  # --baseline given: new / unchanged / fixed
    # (rule id, why) for each rule this scan loaded that did not run, or ran blind: left out by
    # --per-file or --cross-object-only, needing --verify-images or a live cluster, or reading a kind
    # the cluster would not list (`Coverage.rules_not_evaluated`). The user's choices among these do
    # not make a scan incomplete; the controls these rules alone check are not evaluated, never a pass.
    rules_not_run: tuple[tuple[str, str], ...] = ()
    # (rule id, why) for each rule that judged only part of what it should (a cluster kind read in
    # part, images whose signatures could not be checked): its findings stand, its silence proves nothing.
    rules_partly_run: tuple[tuple[str, str], ...] = ()
    # Attack paths (kaudit/attack/model.AttackReport) when the attack-path rule ran or `kaudit paths`
    # asked: the paths, and the fixes ranked by how many of them each cuts.
    attack: Optional[Any] = field(default=None, compare=False, repr=False)

    @property
    def saw_nothing(self) -> bool:
        """A manifest scan whose inputs held no Kubernetes object: nothing was judged."""
        return self.coverage is None and self.inputs.resources == 0

    @property
    def active_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed is None)

    def failing_findings(self) -> tuple[Finding, ...]:
        if self.fail_on is None:
            return ()
        return tuple(f for f in self.active_findings if f.severity >= self.fail_on)

    @property
    def complete(self) -> bool:
        """False when some input could not be scanned, some rule could not be evaluated (including
        cluster coverage gaps not accepted by the config, unless --allow-gaps), or nothing was scanned
        (unless --allow-empty)."""
        gaps = ((self.coverage is not None and bool(self.coverage.open_gaps)) or bool(self.images.gaps)) \
            and not self.gaps_allowed
        empty = self.saw_nothing and not self.empty_allowed
        return not self.inputs.errors and not self.rule_errors and not gaps and not empty
