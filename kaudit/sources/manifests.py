"""Manifest files in, resources out: files, directories, globs and '-' for stdin.

Every document is accounted for: it becomes a resource, is skipped with a reason (not a
Kubernetes object), or is an error with file and line. Nothing is dropped silently.
"""
from __future__ import annotations

import codecs
import gc
import glob
import os
import stat
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator, Mapping, Optional

from kaudit.model import STDIN_NAME, FileRead, InputError, Inputs, Origin, RenderedFrom, Resource, ResourceRef, Skipped
from kaudit.sources.classify import ObjectDoc, classify_document, cluster_scoped
from kaudit.sources.units import RenderOptions, RenderUnit, enclosing_unit, unit_at
from kaudit.sources.yamldoc import Document, YamlMap, parse_documents, position_of
from kaudit.value import field, record, replace, value

if TYPE_CHECKING:
    from kaudit.sources.rendering import RenderedUnit

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_MB = 32
MAX_WARNINGS_PER_FILE = 50  # a file with a million duplicate keys must not make a million-line report
STDIN = "-"


@record
class ManifestScan:
    """The objects read from manifest inputs, and every input accounted for."""

    resources: list[Resource] = field(default_factory=list)
    inputs: Inputs = field(default_factory=Inputs)
    # `kaudit scan -n NS`: the namespace of every namespaced object that names none, set as the
    # objects are read (so every rule, in any process, sees the object as the cluster would get it)
    default_namespace: Optional[str] = None
    units: dict[str, "RenderedUnit"] = field(default_factory=dict)  # rendered charts and kustomizations


@value
class PlannedFile:
    """One input file a manifest scan will read."""

    display: str  # the name findings carry: as the user wrote it, joined with paths found under it
    path: Optional[str]  # None for stdin
    named: bool = False  # given by name on the command line: a pipe (`<(helm template …)`) is read too
    unit: Optional[RenderUnit] = None  # a chart or kustomization to render (sources/rendering.py)


def load_manifests(
    targets: Iterable[str], *, max_file_mb: float = DEFAULT_MAX_FILE_MB, stdin: Optional[BinaryIO] = None,
    default_namespace: Optional[str] = None,
) -> ManifestScan:
    return load_planned(plan(targets), max_file_bytes(max_file_mb), stdin, default_namespace)


def load_planned(planned: "Plan", max_bytes: int, stdin: Optional[BinaryIO] = None,
                 default_namespace: Optional[str] = None, render: Optional[RenderOptions] = None) -> ManifestScan:
    scan = ManifestScan(default_namespace=default_namespace)
    with parsing_heap():
        for found, item in planned.steps:
            scan.inputs.merge(found)
            if item is None:
                continue
            if item.unit is not None:
                from kaudit.sources.rendering import load_unit  # off the plain-manifest path

                load_unit(item.unit, render or RenderOptions(), scan)
            else:
                load_item(item, max_bytes, scan, stdin)
    return scan


def max_file_bytes(max_file_mb: float) -> int:
    return int(max_file_mb * 1024 * 1024)


@contextmanager
def parsing_heap() -> Iterator[None]:
    """Parsing allocates millions of small acyclic objects that live as long as the scan: the cyclic
    garbage collector would rescan the growing heap again and again (a third of the load time on
    a 10 MB tree). Refcounting still frees everything; the parsed heap is frozen afterwards so
    later collections skip it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def load_item(item: "PlannedFile", max_bytes: int, scan: ManifestScan, stdin: Optional[BinaryIO] = None) -> None:
    """Read, parse and account for one input file (or stdin) into `scan`."""
    inputs = scan.inputs
    inputs.files += 1
    documents, objects = inputs.documents, inputs.resources
    data = _read(item, max_bytes, inputs, stdin)
    if data is not None:
        _scan_text(item, data, scan)
    inputs.read.append(FileRead(item.display, inputs.documents - documents, inputs.resources - objects))


@record
class Plan:
    """The inputs of a scan in order, each with what expanding the targets reported just before it
    (missing paths, unreadable folders, skipped non-files), so a scan that reads the files out of
    order can still report everything in the order a plain scan would."""

    steps: list[tuple[Inputs, Optional["PlannedFile"]]] = field(default_factory=list)

    @property
    def files(self) -> list["PlannedFile"]:
        return [item for _, item in self.steps if item is not None and item.unit is None]

    @property
    def units(self) -> list[RenderUnit]:
        return [item.unit for _, item in self.steps if item is not None and item.unit is not None]


def plan(targets: Iterable[str]) -> Plan:
    """The files to read and the units to render, in order. A file named inside a chart or a
    kustomization (the pre-commit hook names changed files) stands for its unit, rendered once."""
    planned = Plan()
    found = Inputs()  # expanding reports into this one object; each step takes what is new since the last
    seen = [0, 0]

    def news() -> Inputs:
        errors, skipped = found.errors[seen[0]:], found.skipped[seen[1]:]
        seen[:] = len(found.errors), len(found.skipped)
        return Inputs(errors=errors, skipped=skipped)

    for item in _expand(targets, found):
        planned.steps.append((news(), item))
    planned.steps.append((news(), None))
    return planned


def _expand(targets: Iterable[str], inputs: Inputs) -> Iterator[PlannedFile]:
    seen: set[str] = set()
    units: list[RenderUnit] = []  # in the order found; kustomizations are sorted out at the end

    def once(item: PlannedFile) -> Iterator[PlannedFile]:
        key = STDIN if item.path is None else os.path.realpath(item.path)
        if key not in seen:
            seen.add(key)
            yield item

    for target in targets:
        if target == STDIN:
            yield from once(PlannedFile(STDIN_NAME, None))
            continue
        target = tidy_path(target)
        if os.path.isdir(target) and (unit := unit_at(target)) is not None:
            units.append(unit)
        elif os.path.isdir(target):
            accounted_before = len(inputs.errors) + len(inputs.skipped) + len(units)
            found = list(_walk(target, inputs, units))
            if not found and len(inputs.errors) + len(inputs.skipped) + len(units) == accounted_before:
                inputs.errors.append(InputError(target, None, "no .yaml, .yml or .json files in this directory"))
            for path in found:
                yield from once(PlannedFile(path, path))
        elif os.path.lexists(target):
            unit = enclosing_unit(target)
            if unit is None and target.endswith(".tpl"):  # the hook passes template helpers too
                inputs.skipped.append(Skipped(target, None, "template helper outside any Helm chart: not a manifest"))
            elif unit is None:
                yield from once(PlannedFile(target, target, named=True))
            else:  # one render per unit, however many of its files are named
                units.append(replace(unit, directory=_display(unit.directory)))
        elif glob.has_magic(target):
            matches = sorted(p for p in glob.glob(target, recursive=True) if not os.path.isdir(p))
            if not matches:
                inputs.errors.append(InputError(target, None, "no files match this pattern"))
            for path in matches:
                yield from once(PlannedFile(path, path))
        else:
            inputs.errors.append(InputError(target, None, "no such file or directory"))
    for unit in _render_once(units, inputs):
        yield from once(PlannedFile(unit.directory, unit.directory, unit=unit))


def _render_once(units: list[RenderUnit], inputs: Inputs) -> list[RenderUnit]:
    """Each chart once, and each kustomization that no other one in the scan includes: a base an
    overlay includes is rendered as part of it (its objects alone are not what gets applied)."""
    kustomizations = [unit.directory for unit in units if unit.renderer == "kustomize"]
    top: set[str] = set(kustomizations)
    if len(kustomizations) > 1:
        from kaudit.sources.kustomize import RenderError, includers, top_level

        try:
            top = set(top_level(kustomizations))
        except RenderError as error:  # an include cycle: each one is rendered, and kustomize says why
            inputs.warnings.append(InputError(kustomizations[0], None, str(error)))
        else:
            for directory in kustomizations:
                if directory not in top:
                    by = ", ".join(includers(directory, sorted(top)))
                    inputs.skipped.append(Skipped(directory, None, f"kustomization included by {by}: "
                                                                   "rendered as part of it, not on its own"))
    return [unit for unit in units if unit.renderer == "helm" or unit.directory in top]


def tidy_path(path: str) -> str:
    """`./k8s//web.yaml` -> `k8s/web.yaml`: the same file, named one way however it was reached
    (`kaudit scan .` walks to `./k8s/web.yaml`, a pre-commit hook names `k8s/web.yaml`), so two runs
    print a finding alike. Only `.` parts and repeated slashes go: `..` after a symbolic link leads
    elsewhere than the text says, so it stays."""
    if "/." not in path and "//" not in path and not path.startswith("./"):
        return path  # the common case, unchanged
    absolute = path.startswith("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    tidy = ("/" if absolute else "") + "/".join(parts)
    if parts and path.endswith("/"):
        tidy += "/"
    return tidy or ("/" if absolute else ".")


def _display(directory: str) -> str:
    """A directory found by walking up from a file, as the user would write it."""
    relative = os.path.relpath(directory)
    return directory if relative.startswith("..") else relative


def _walk(root: str, inputs: Inputs, units: list[RenderUnit]) -> Iterator[str]:
    """Manifest files under `root`, sorted. Hidden files and directories (.kaudit.yaml, .github/) are
    skipped with a reason, directory links are not followed, and a chart or kustomization directory
    is one unit to render (added to `units`): none of its files is read as a manifest. Below a
    kustomization the walk goes on for more kustomizations (an overlay kept inside its base's
    folder), reading no file; a chart's subcharts are part of it."""

    def unreadable(error: OSError) -> None:
        inputs.errors.append(InputError(error.filename or root, None, f"cannot read directory: {error.strerror}"))

    inside: list[str] = []  # kustomization directories above the walk's position
    for walked, subdirs, files in os.walk(root, onerror=unreadable):
        directory = tidy_path(walked)
        while inside and not directory.startswith(inside[-1] + os.sep):
            inside.pop()
        unit = unit_at(directory)
        if unit is not None:
            units.append(unit)
            if unit.renderer == "helm":
                subdirs[:] = []
                continue
            inside.append(directory)
        hidden_dirs = sorted(d for d in subdirs if d.startswith("."))
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if inside:
            continue
        for hidden in hidden_dirs:
            inputs.skipped.append(Skipped(os.path.join(directory, hidden), None,
                                          "hidden directory, not entered (name it to scan it)"))
        for name in sorted(files):
            if not name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            path = tidy_path(os.path.join(directory, name))
            if name.startswith("."):
                inputs.skipped.append(Skipped(path, None, "hidden file, not scanned (name it to scan it)"))
                continue
            try:
                mode = os.stat(path).st_mode
            except OSError as error:
                inputs.errors.append(InputError(path, None, f"cannot read: {error.strerror}"))
                continue
            if stat.S_ISREG(mode):
                yield path
            else:
                inputs.skipped.append(Skipped(path, None, "not a regular file"))


def _read(item: PlannedFile, max_bytes: int, inputs: Inputs, stdin: Optional[BinaryIO]) -> Optional[str]:
    try:
        if item.path is None:
            stream = stdin if stdin is not None else sys.stdin.buffer
            raw = stream.read(max_bytes + 1)
        else:
            raw = read_file(item.path, max_bytes + 1, regular_only=not item.named)
    except IsADirectoryError:
        inputs.errors.append(InputError(item.display, None, "is a directory"))
        return None
    except _NotRegular as odd:
        inputs.skipped.append(Skipped(item.display, None, f"not a regular file ({odd})"))
        return None
    except OSError as error:
        inputs.errors.append(InputError(item.display, None, f"cannot read: {error.strerror or error}"))
        return None
    if len(raw) > max_bytes:
        limit = max_bytes / (1024 * 1024)
        inputs.errors.append(
            InputError(item.display, None, f"larger than {limit:g} MiB; not scanned (raise --max-file-size to scan it)")
        )
        return None
    return _decode(item.display, raw, inputs)


class _NotRegular(Exception):
    """A path that is no longer (or never was) a regular file when it is opened."""


def read_file(path: str, limit: int, *, regular_only: bool) -> bytes:
    """At most `limit` bytes of `path`; with `regular_only`, anything but a regular file is refused.

    A folder's walk checked each file's type, but a file can be replaced (by a FIFO, a device)
    before it is read: opening without blocking and checking what was actually opened cannot hang
    on a FIFO nobody writes to. A path the user named is read whatever it is (`<(helm template …)`
    is a pipe); the size limit still bounds it.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    with open(os.open(path, flags | os.O_NONBLOCK if regular_only else flags), "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if regular_only and not stat.S_ISREG(mode):
            raise _NotRegular(_file_type(mode))
        os.set_blocking(handle.fileno(), True)
        return handle.read(limit)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)  # checked first: the LE one starts like UTF-16's


def _decode(name: str, raw: bytes, inputs: Inputs) -> Optional[str]:
    for boms, encoding in ((_UTF32_BOMS, "UTF-32"), ((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "UTF-16")):
        if raw.startswith(boms):
            try:
                return raw.decode(encoding.lower())
            except UnicodeDecodeError:
                inputs.errors.append(InputError(name, None, f"not valid {encoding} text; not scanned"))
                return None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        inputs.errors.append(InputError(name, line, "binary content (NUL byte); not scanned"))
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        inputs.errors.append(InputError(name, line, "not valid UTF-8 text (binary file?); not scanned"))
        return None


def _scan_text(item: PlannedFile, text: str, scan: ManifestScan) -> None:
    inputs = scan.inputs
    if not text.strip():
        inputs.skipped.append(Skipped(item.display, None, "empty file"))
        return
    templated = "{{" in text
    warnings = 0
    for parsed in parse_documents(text):
        if not isinstance(parsed, Document):
            hint = " (an unrendered template? render it first)" if templated else ""
            inputs.errors.append(InputError(item.display, parsed.line, parsed.message + hint))
            continue
        inputs.documents += 1
        for warning in parsed.warnings:
            warnings += 1
            if warnings <= MAX_WARNINGS_PER_FILE:
                inputs.warnings.append(InputError(item.display, warning.line, warning.message))
        add_document(item.display, parsed, scan)
    if warnings > MAX_WARNINGS_PER_FILE:
        more = warnings - MAX_WARNINGS_PER_FILE
        inputs.warnings.append(InputError(item.display, None, f"{more} more warning(s) in this file, not listed"))


def add_document(file: str, document: Document, scan: ManifestScan, rendered: Optional[RenderedFrom] = None,
                 namespace: Optional[str] = None) -> None:
    """Account for one parsed document: its resource(s), or why it was skipped, or its error.
    `rendered`: the unit that rendered it; `namespace`: the one its unit installs into (helm -n)."""
    outcome = classify_document(document.data, file)
    inputs = scan.inputs
    if isinstance(outcome, Skipped):
        inputs.skipped.append(Skipped(file, document.line, outcome.reason))
    elif isinstance(outcome, InputError):
        inputs.errors.append(InputError(file, document.line, outcome.message))
    elif outcome.items is not None:
        _add_list_items(file, document, outcome.items, scan, rendered, namespace)
    else:
        _add_resource(file, outcome, document.line, document.column, scan, rendered, namespace)


def _add_list_items(file: str, document: Document, items: list[Any], scan: ManifestScan,
                    rendered: Optional[RenderedFrom] = None, namespace: Optional[str] = None) -> None:
    for index, entry in enumerate(items):
        line, column = position_of(items, index) or (document.line, document.column)
        outcome = classify_document(entry, file)
        if isinstance(outcome, Skipped):
            scan.inputs.skipped.append(Skipped(file, line, f"List item {index}: {outcome.reason}"))
        elif isinstance(outcome, InputError) or outcome.items is not None:
            message = outcome.message if isinstance(outcome, InputError) else "a List inside a List"
            scan.inputs.errors.append(InputError(file, line, f"List item {index}: {message}"))
        else:
            _add_resource(file, outcome, line, column, scan, rendered, namespace)


def _add_resource(file: str, obj: ObjectDoc, line: int, column: int, scan: ManifestScan,
                  rendered: Optional[RenderedFrom] = None, installed_in: Optional[str] = None) -> None:
    namespace, body = obj.namespace, obj.body
    given = installed_in or scan.default_namespace
    if given is not None and not cluster_scoped(obj.api_version, obj.kind):
        if namespace is None:
            namespace, body = given, with_namespace(body, given)
        elif namespace != given and rendered is None:  # helm installs an object into the namespace it names
            scan.inputs.warnings.append(InputError(file, line, (
                f"{obj.kind}/{namespace}/{obj.name} names namespace {namespace}, not {given} (-n): "
                f"`kubectl apply -n {given}` would refuse it; judged in {namespace}, as written")))
    ref = ResourceRef(obj.api_version, obj.kind, obj.name, namespace)
    origin = Origin(file=file, line=line, column=column, rendered=rendered)
    scan.resources.append(Resource(ref, body, origin))
    scan.inputs.resources += 1
    if obj.warning is not None:
        scan.inputs.warnings.append(InputError(file, line, obj.warning))


def with_namespace(body: Mapping[str, Any], namespace: str) -> Mapping[str, Any]:
    """`body` with metadata.namespace set, as the API server stores an object applied with `-n`.
    Copies, not edits: a YAML alias may share the metadata with another object. The new field has
    no position; findings on it point at `metadata`."""
    metadata = body.get("metadata")
    copy = _copy_map(body)
    copy["metadata"] = _copy_map(metadata if isinstance(metadata, dict) else {})
    copy["metadata"]["namespace"] = namespace
    return copy


def _copy_map(mapping: Mapping[str, Any]) -> YamlMap:
    copy = YamlMap()
    copy.update(mapping)
    if isinstance(mapping, YamlMap):
        copy.positions.update(mapping.positions)
    return copy


