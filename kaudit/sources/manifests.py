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
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, Optional

from kaudit.model import STDIN_NAME, InputError, Inputs, Origin, Resource, ResourceRef, Skipped
from kaudit.sources.classify import ObjectDoc, classify_document, helm_chart_template
from kaudit.sources.yamldoc import Document, parse_documents, position_of

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_MB = 32
STDIN = "-"


@dataclass
class ManifestScan:
    resources: list[Resource] = field(default_factory=list)
    inputs: Inputs = field(default_factory=Inputs)


@dataclass(frozen=True)
class _Input:
    display: str  # the name findings carry: as the user wrote it, joined with paths found under it
    path: Optional[str]  # None for stdin


def load_manifests(
    targets: Iterable[str], *, max_file_mb: float = DEFAULT_MAX_FILE_MB, stdin: Optional[BinaryIO] = None
) -> ManifestScan:
    scan = ManifestScan()
    max_bytes = int(max_file_mb * 1024 * 1024)
    # Parsing allocates millions of small acyclic objects that live as long as the scan: the cyclic
    # garbage collector would rescan the growing heap again and again (a third of the load time on
    # a 10 MB tree). Refcounting still frees everything; the parsed heap is frozen afterwards so
    # later collections skip it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for item in _expand(targets, scan.inputs):
            scan.inputs.files += 1
            data = _read(item, max_bytes, scan.inputs, stdin)
            if data is not None:
                _scan_text(item, data, scan)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return scan


def _expand(targets: Iterable[str], inputs: Inputs) -> Iterator[_Input]:
    seen: set[str] = set()

    def once(item: _Input) -> Iterator[_Input]:
        key = STDIN if item.path is None else os.path.realpath(item.path)
        if key not in seen:
            seen.add(key)
            yield item

    for target in targets:
        if target == STDIN:
            yield from once(_Input(STDIN_NAME, None))
        elif os.path.isdir(target):
            found = list(_walk(target, inputs))
            if not found:
                inputs.errors.append(InputError(target, None, "no .yaml, .yml or .json files in this directory"))
            for path in found:
                yield from once(_Input(path, path))
        elif os.path.lexists(target):
            yield from once(_Input(target, target))
        elif glob.has_magic(target):
            matches = sorted(p for p in glob.glob(target, recursive=True) if not os.path.isdir(p))
            if not matches:
                inputs.errors.append(InputError(target, None, "no files match this pattern"))
            for path in matches:
                yield from once(_Input(path, path))
        else:
            inputs.errors.append(InputError(target, None, "no such file or directory"))


def _walk(root: str, inputs: Inputs) -> Iterator[str]:
    """Manifest files under `root`, sorted; hidden files and directories (.kaudit.yaml, .github/) are
    left out, directory links are not followed."""

    def unreadable(error: OSError) -> None:
        inputs.errors.append(InputError(error.filename or root, None, f"cannot read directory: {error.strerror}"))

    for directory, subdirs, files in os.walk(root, onerror=unreadable):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            try:
                mode = os.stat(path).st_mode
            except OSError as error:
                inputs.errors.append(InputError(path, None, f"cannot read: {error.strerror}"))
                continue
            if stat.S_ISREG(mode):
                yield path
            else:
                inputs.skipped.append(Skipped(path, None, "not a regular file"))


def _read(item: _Input, max_bytes: int, inputs: Inputs, stdin: Optional[BinaryIO]) -> Optional[str]:
    try:
        if item.path is None:
            stream = stdin if stdin is not None else sys.stdin.buffer
            raw = stream.read(max_bytes + 1)
        else:
            with open(item.path, "rb") as handle:
                raw = handle.read(max_bytes + 1)
    except IsADirectoryError:
        inputs.errors.append(InputError(item.display, None, "is a directory"))
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


def _decode(name: str, raw: bytes, inputs: Inputs) -> Optional[str]:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            inputs.errors.append(InputError(name, None, "not valid UTF-16 text; not scanned"))
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


def _scan_text(item: _Input, text: str, scan: ManifestScan) -> None:
    inputs = scan.inputs
    if not text.strip():
        inputs.skipped.append(Skipped(item.display, None, "empty file"))
        return
    if item.path is not None and helm_chart_template(item.path):
        inputs.skipped.append(
            Skipped(item.display, None, "Helm chart template: render it (helm template … | kaudit scan -) to scan it")
        )
        return
    templated = "{{" in text
    for parsed in parse_documents(text):
        if not isinstance(parsed, Document):
            hint = " (an unrendered template? render it first)" if templated else ""
            inputs.errors.append(InputError(item.display, parsed.line, parsed.message + hint))
            continue
        inputs.documents += 1
        for warning in parsed.warnings:
            inputs.warnings.append(InputError(item.display, parsed.line, warning))
        add_document(item.display, parsed, scan)


def add_document(file: str, document: Document, scan: ManifestScan) -> None:
    """Account for one parsed document: its resource(s), or why it was skipped, or its error."""
    outcome = classify_document(document.data, file)
    inputs = scan.inputs
    if isinstance(outcome, Skipped):
        inputs.skipped.append(Skipped(file, document.line, outcome.reason))
    elif isinstance(outcome, InputError):
        inputs.errors.append(InputError(file, document.line, outcome.message))
    elif outcome.items is not None:
        _add_list_items(file, document, outcome.items, scan)
    else:
        _add_resource(file, outcome, document.line, document.column, scan)


def _add_list_items(file: str, document: Document, items: list[Any], scan: ManifestScan) -> None:
    for index, entry in enumerate(items):
        line, column = position_of(items, index) or (document.line, document.column)
        outcome = classify_document(entry, file)
        if isinstance(outcome, Skipped):
            scan.inputs.skipped.append(Skipped(file, line, f"List item {index}: {outcome.reason}"))
        elif isinstance(outcome, InputError) or outcome.items is not None:
            message = outcome.message if isinstance(outcome, InputError) else "a List inside a List"
            scan.inputs.errors.append(InputError(file, line, f"List item {index}: {message}"))
        else:
            _add_resource(file, outcome, line, column, scan)


def _add_resource(file: str, obj: ObjectDoc, line: int, column: int, scan: ManifestScan) -> None:
    ref = ResourceRef(obj.api_version, obj.kind, obj.name, obj.namespace)
    origin = Origin(file=file, line=line, column=column)
    scan.resources.append(Resource(ref, obj.body, origin))
    scan.inputs.resources += 1


