"""Where a field of a Kustomize-rendered object was written: the resource file's line, or the patch's.

kustomize's own annotations name the resource file an object came from (`RenderedDocument.origin_file`)
but never the patch or transformer that changed a field (kustomize.py's module doc). kaudit replays
the kustomization tree of the rendered directory instead, without running anything:

- the tree: `resources` / `bases` (files and directories, in order), then `components` (a Component
  runs over everything accumulated before it, its own resources included), then the kustomization's
  own transformers, in kustomize v5's fixed order (api/internal/target/kusttarget_configplugin.go):
  patchesStrategicMerge, patches, namespace, namePrefix, nameSuffix, commonLabels/labels,
  commonAnnotations, patchesJson6902, replicas, images;
- for one object, the steps on its way from its origin file up to the rendered directory (when a base
  is included twice, e.g. under two prefixes, the way whose name comes out as the rendered one);
- for one field path, the LAST step that wrote it: a strategic merge patch whose document for this
  object (kind and name, before prefixes and suffixes, or the patch's `target`) holds the path, list
  items matched by their merge key (`name` for containers, volumes and env, `containerPort` for a
  container's ports...); a JSON 6902 op (add, replace, copy, move) whose path is the field's or a
  parent's; a transformer that sets it. A mapping or merge-keyed list (a container, `securityContext`)
  belongs to whoever created it (the resource file, unless it lacks it) unless a JSON op replaced it
  whole: a finding about a missing key is fixed where its parent is written, not in every patch that
  merges into it. A field nobody wrote is in the origin file: its line, or its deepest existing parent's.
  A generated ConfigMap or Secret (origin: the kustomization) points at its generator entry, or for
  a data key at its `literals`/`files`/`envs` item (a line, never a value).

API: `field_source(render, document, path)`; `patch_files(render, document)` (render_kustomization
fills `RenderedDocument.patches` with it through `with_patches`). Both share one `FieldIndex` per
render (the last few renders are kept), so asking about many fields re-reads nothing.

Limits (a field they concern falls back to the origin file): the `transformers:`/`generators:` plugin
fields, `replacements`, `vars`, name-reference rewrites, `helmCharts`, remote bases and a
kustomization's CRD schemas (a CRD's lists are matched with the built-in merge keys); strategic merge
directives other than `$patch: delete`; list indexes in JSON pointers are taken as the rendered ones;
a patch `target`'s labelSelector sees the origin's labels plus those added by label transformers,
not labels set by patches. Work is bounded: each kustomization, patch and origin file is read once
per render, and none larger than MAX_FILE_BYTES.
"""
from __future__ import annotations

import functools
import os
import re
from typing import Any, Iterator, Optional, Union

from kaudit.selectors import NOTHING, Requirement, Selector
from kaudit.sources.kustomize import KustomizeRender, RenderedDocument, kustomization_file
from kaudit.sources.yamldoc import Document, YamlMap, YamlSeq, parse_documents, position_of
from kaudit.value import replace, value

FieldPath = tuple[Union[str, int], ...]
MAX_FILE_BYTES = 5_000_000  # kustomization, patch and origin files larger than this are not read
MAX_TREE_DEPTH = 50  # kustomizations nested deeper than this are not followed (kustomize itself would fail)
MAX_LAYER_VISITS = 10_000  # kustomizations visited to find one object's way up
MAX_PATTERN_LENGTH = 1000  # a target's name/kind regex longer than this matches nothing

# Strategic merge keys of the lists kustomize merges item by item (k8s.io/api `patchMergeKey` tags);
# any other list is replaced whole by a patch that holds it.
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
               "volumes": "name", "env": "name", "imagePullSecrets": "name", "resourceClaims": "name",
               "schedulingGates": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
               "hostAliases": "ip", "topologySpreadConstraints": "topologyKey"}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_WRITING_OPS = ("add", "replace", "copy", "move")


@value
class FieldSource:
    file: str  # relative to the rendered directory, like RenderedDocument.origin_file
    line: Optional[int]  # 1-based line of the field (or its deepest existing parent) in `file`
    patch: bool = False  # a patch wrote the field (file is the patch, or the kustomization for an inline one)
    how: str = ""  # what wrote it, e.g. "strategic merge patch", "namespace: from kustomization.yaml"; "" for the resource


def field_source(render: KustomizeRender, document: RenderedDocument, path: FieldPath) -> Optional[FieldSource]:
    """Where `path` of `document` (one of `render`'s) is written; None when kaudit cannot tell (no origin)."""
    return FieldIndex.of(render).field_source(document, path)


def patch_files(render: KustomizeRender, document: RenderedDocument) -> tuple[str, ...]:
    """The files of the patches that apply to `document` (the kustomization for an inline patch), in order."""
    return FieldIndex.of(render).patch_files(document)


def with_patches(render: KustomizeRender) -> KustomizeRender:
    """`render` with each document's `patches` filled (render_kustomization calls it); the index it
    builds, kept for field_source, reads every kustomization and patch file once."""
    index = FieldIndex(render)
    if not index.has_patches():
        FieldIndex.remember(render, index)
        return render
    documents = tuple(replace(document, patches=index.patch_files(document)) for document in render.documents)
    filled = replace(render, documents=documents)
    index.render = filled
    FieldIndex.remember(filled, index)
    return filled


# --- the kustomization tree ------------------------------------------------------------------------

class _Text:
    """A file read once: its lines and parsed documents (with positions)."""

    __slots__ = ("lines", "documents")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.documents = [parsed for parsed in parse_documents(text) if isinstance(parsed, Document)]


class _Step:
    """One transformer or patch of one kustomization, as it applies to an object."""

    __slots__ = ("kind", "file", "how", "inline", "documents", "ops", "target", "data", "line_offset", "inline_line")

    def __init__(self, kind: str, file: str, how: str, *, inline: bool = False, documents: Any = (),
                 ops: Any = (), target: Any = None, data: Any = None, line_offset: Optional[int] = 0,
                 inline_line: Optional[int] = None) -> None:
        self.kind = kind  # smp, json, namespace, prefix, suffix, labels, annotations, replicas, images
        self.file = file  # absolute path of the file holding it
        self.how = how
        self.inline = inline
        self.documents: list[Any] = list(documents)  # smp: the patch documents (YamlMap)
        self.ops: list[Any] = list(ops)  # json: the op mappings
        self.target = target  # a `target` selector mapping, or None
        self.data = data  # transformer settings: (value, position) or the entries
        # an inline patch: its own line 1 is the file's line `line_offset + 1`; None: the patch is
        # a scalar whose lines are not the file's (quoted or folded), all placed on `inline_line`
        self.line_offset = line_offset
        self.inline_line = inline_line


class _Layer:
    __slots__ = ("directory", "file", "resources", "components", "steps")

    def __init__(self, directory: str, file: str) -> None:
        self.directory = directory
        self.file = file
        self.resources: list[Union[str, _Layer]] = []  # absolute resource files, or included kustomizations
        self.components: list[_Layer] = []
        self.steps: list[_Step] = []


class _Identity:
    """What patch selection looks at, as it is at one step of the object's way."""

    __slots__ = ("kind", "group", "version", "names", "namespaces", "labels", "annotations")

    def __init__(self, data: Any) -> None:
        api_version = _text(data.get("apiVersion")) if isinstance(data, dict) else ""
        group, _, version = api_version.rpartition("/")
        metadata = data.get("metadata") if isinstance(data, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        self.kind = _text(data.get("kind")) if isinstance(data, dict) else ""
        self.group, self.version = group, version
        self.names = [_text(metadata.get("name"))]  # the original name first, the current one last
        self.namespaces = [_text(metadata.get("namespace"))]
        self.labels = _string_map(metadata.get("labels"))
        self.annotations = _string_map(metadata.get("annotations"))


# an object's way: its document in its origin file, its generator entry, the steps it goes through
_Way = tuple[Any, Any, list[tuple[_Step, _Identity]]]


def _text(item: Any) -> str:
    return item if isinstance(item, str) else ""


def _string_map(item: Any) -> dict[str, str]:
    return {str(key): str(entry) for key, entry in item.items()} if isinstance(item, dict) else {}


class FieldIndex:
    """The parsed kustomization tree of one render, and the files it names, each read once."""

    _cache: list[tuple[KustomizeRender, FieldIndex]] = []  # the last few renders asked about
    _CACHE_SIZE = 4

    def __init__(self, render: KustomizeRender) -> None:
        self.render = render
        self.root = os.path.realpath(render.directory)
        self.files: dict[str, Optional[_Text]] = {}
        self.layers: dict[str, _Layer] = {}
        self.rendered: dict[str, Any] = {}  # a rendered document's text -> its parsed object
        self.ways: dict[tuple[str, Optional[str], Optional[int]], Optional[_Way]] = {}
        self.tree = self._layer(self.root, 0) if kustomization_file(self.root) else None

    @classmethod
    def of(cls, render: KustomizeRender) -> FieldIndex:
        for cached, index in cls._cache:
            if cached is render:
                return index
        index = cls(render)
        cls.remember(render, index)
        return index

    @classmethod
    def remember(cls, render: KustomizeRender, index: FieldIndex) -> None:
        cls._cache.insert(0, (render, index))
        del cls._cache[cls._CACHE_SIZE:]

    def has_patches(self) -> bool:
        return any(step.kind in ("smp", "json") for layer in self.layers.values() for step in layer.steps)

    # --- public answers ----------------------------------------------------------------------------

    def field_source(self, document: RenderedDocument, path: FieldPath) -> Optional[FieldSource]:
        if document.origin_file is None:
            return None
        way = self._way(document)
        if way is None:  # a remote base, or a file gone since the render
            return FieldSource(file=document.origin_file, line=document.origin_line)
        origin_data, generator, steps = way
        rendered = self._rendered(document)
        existing = _existing_prefix(rendered, tuple(path))
        there = _get_rendered(rendered, existing)
        # a mapping or a merge-keyed list belongs to whoever created it, unless replaced whole
        whole = isinstance(there, dict) or (isinstance(there, list) and bool(existing)
                                            and _merge_key(existing[-1], existing) is not None)
        created = generator is not None or (origin_data is not None and _has_path(origin_data, existing, rendered))
        writer: Optional[FieldSource] = None
        for step, identity in steps:
            found = self._writes(step, identity, existing, rendered, whole, creating=whole and not created)
            if found is not None:
                writer, created = found, True
        if writer is not None:
            return writer
        if generator is not None:
            return FieldSource(file=document.origin_file, line=_generator_line(generator, existing),
                               how=f"{generator[0]}: in {document.origin_file}")
        line = _deepest_position(origin_data, existing, rendered) if origin_data is not None else None
        return FieldSource(file=document.origin_file, line=line if line is not None else document.origin_line)

    def patch_files(self, document: RenderedDocument) -> tuple[str, ...]:
        way = self._way(document) if document.origin_file is not None else None
        files: list[str] = []
        for step, identity in way[2] if way is not None else ():
            if step.kind in ("smp", "json") and self._patch_document(step, identity) is not None:
                relative = _relative(step.file, self.root)
                if relative not in files:
                    files.append(relative)
        return tuple(files)

    def _way(self, document: RenderedDocument) -> Optional[_Way]:
        """The object's document in its origin file (None for a generated one), its generator entry
        (field name, entry) if generated, and the steps on its way up; None without a local origin."""
        key = (document.text, document.origin_file, document.origin_line)
        if key not in self.ways:
            self.ways[key] = self._find_way(document)
        return self.ways[key]

    def _find_way(self, document: RenderedDocument) -> Optional[_Way]:
        origin_file = document.origin_file or ""
        origin = os.path.realpath(os.path.join(self.root, origin_file))
        if "//" in origin_file or not os.path.isfile(origin):
            return None
        rendered = self._rendered(document)
        generating = next((layer for layer in self.layers.values() if layer.file == origin), None)
        if generating is not None:
            return None, _generator_entry(self._read(origin), rendered), self._steps_for(origin, None, rendered)
        origin_data = self._origin_data(origin, document)
        return origin_data, None, self._steps_for(origin, origin_data, rendered)

    # --- reading files -----------------------------------------------------------------------------

    def _read(self, path: str) -> Optional[_Text]:
        if path not in self.files:
            loaded = None
            try:
                if os.path.getsize(path) <= MAX_FILE_BYTES:
                    with open(path, encoding="utf-8") as handle:
                        loaded = _Text(handle.read())
            except (OSError, UnicodeDecodeError):
                loaded = None
            self.files[path] = loaded
        return self.files[path]

    def _rendered(self, document: RenderedDocument) -> Any:
        text = document.text
        if text not in self.rendered:
            parsed = None
            if len(text) <= MAX_FILE_BYTES:
                parsed = next((item.data for item in parse_documents(text) if isinstance(item, Document)), None)
            self.rendered[text] = parsed
        return self.rendered[text]

    def _origin_data(self, origin: str, document: RenderedDocument) -> Any:
        """The object's own document in its origin file."""
        text = self._read(origin)
        if text is None or not text.documents:
            return None
        if len(text.documents) == 1:
            return text.documents[0].data
        for parsed in text.documents:
            if parsed.line == document.origin_line:
                return parsed.data
        return None

    # --- building the tree -------------------------------------------------------------------------

    def _layer(self, directory: str, depth: int) -> Optional[_Layer]:
        if directory in self.layers:
            return self.layers[directory]
        file = kustomization_file(directory)
        if file is None or depth > MAX_TREE_DEPTH:
            return None
        layer = _Layer(directory, file)
        self.layers[directory] = layer  # before the includes: a cycle ends here (kustomize refuses it)
        text = self._read(file)
        data = text.documents[0].data if text is not None and text.documents else None
        if not isinstance(data, YamlMap):
            return layer
        for field_name in ("resources", "bases"):
            for entry in _list(data.get(field_name)):
                if not isinstance(entry, str) or not entry:
                    continue
                path = os.path.realpath(os.path.join(directory, entry))
                if os.path.isdir(path):
                    included = self._layer(path, depth + 1)
                    if included is not None:
                        layer.resources.append(included)
                elif os.path.isfile(path):
                    layer.resources.append(path)
        for entry in _list(data.get("components")):
            if isinstance(entry, str) and entry:
                component = self._layer(os.path.realpath(os.path.join(directory, entry)), depth + 1)
                if component is not None:
                    layer.components.append(component)
        assert text is not None
        layer.steps = list(self._steps(layer, data, text))
        return layer

    def _steps(self, layer: _Layer, data: YamlMap, text: _Text) -> Iterator[_Step]:
        """The kustomization's transformers in the order kustomize v5 runs them."""
        name = _relative(layer.file, self.root)
        entries = data.get("patchesStrategicMerge")
        for index, entry in enumerate(_list(entries)):
            if isinstance(entry, str):
                yield from self._patch(layer, text, entry, entries, index, None, name)
        entries = data.get("patches")
        for index, entry in enumerate(_list(entries)):
            if isinstance(entry, YamlMap):
                target = entry.get("target") if isinstance(entry.get("target"), dict) else None
                if isinstance(entry.get("path"), str):
                    yield from self._patch(layer, text, entry["path"], None, None, target, name, inline=False)
                elif isinstance(entry.get("patch"), str):
                    yield from self._patch(layer, text, entry["patch"], entry, "patch", target, name, inline=True)
        for field_name, kind in (("namespace", "namespace"), ("namePrefix", "prefix"), ("nameSuffix", "suffix")):
            if isinstance(data.get(field_name), str) and data[field_name]:
                yield _Step(kind, layer.file, f"{field_name}: from {name}",
                            data=(data[field_name], _line(data, field_name)))
        common = data.get("commonLabels")
        if isinstance(common, YamlMap) and common:
            yield _Step("labels", layer.file, f"commonLabels: from {name}", data=(common, True, True))
        for entry in _list(data.get("labels")):
            pairs = entry.get("pairs") if isinstance(entry, dict) else None
            if isinstance(pairs, YamlMap) and pairs:
                yield _Step("labels", layer.file, f"labels: from {name}",
                            data=(pairs, entry.get("includeSelectors") is True, entry.get("includeTemplates") is True
                                  or entry.get("includeSelectors") is True))
        annotations = data.get("commonAnnotations")
        if isinstance(annotations, YamlMap) and annotations:
            yield _Step("annotations", layer.file, f"commonAnnotations: from {name}", data=annotations)
        entries = data.get("patchesJson6902")
        for entry in _list(entries):
            if isinstance(entry, YamlMap) and isinstance(entry.get("target"), dict):
                if isinstance(entry.get("path"), str):
                    yield from self._patch(layer, text, entry["path"], None, None, entry["target"], name,
                                           inline=False, json_only=True)
                elif isinstance(entry.get("patch"), str):
                    yield from self._patch(layer, text, entry["patch"], entry, "patch", entry["target"], name,
                                           inline=True, json_only=True)
        if isinstance(data.get("replicas"), YamlSeq) and data["replicas"]:
            yield _Step("replicas", layer.file, f"replicas: from {name}", data=data["replicas"])
        if isinstance(data.get("images"), YamlSeq) and data["images"]:
            yield _Step("images", layer.file, f"images: from {name}", data=data["images"])

    def _patch(self, layer: _Layer, text: _Text, entry: str, holder: Any, key: Any, target: Any, name: str,
               *, inline: Optional[bool] = None, json_only: bool = False) -> Iterator[_Step]:
        """A patch from a file or inline (`holder[key]` is the inline text, for its lines)."""
        if inline is None:  # patchesStrategicMerge: a file name, else the patch itself
            path = os.path.realpath(os.path.join(layer.directory, entry))
            inline = not ("\n" not in entry and os.path.isfile(path))
        if inline:
            if len(entry) > MAX_FILE_BYTES:
                return
            patch_text: Optional[_Text] = _Text(entry)
            file, offset = layer.file, _inline_offset(text, holder, key)
            inline_line = _line(holder, key) if holder is not None else None
        else:
            file, offset, inline_line = os.path.realpath(os.path.join(layer.directory, entry)), 0, None
            patch_text = self._read(file)
        if patch_text is None or not patch_text.documents:
            return
        first = patch_text.documents[0].data
        where = f" in {name}" if inline else ""
        if isinstance(first, list) or json_only:
            ops = [op for op in (first if isinstance(first, list) else []) if isinstance(op, dict)]
            yield _Step("json", file, "inline JSON 6902 patch" if inline else "JSON 6902 patch", inline=inline,
                        ops=ops, target=target, line_offset=offset, inline_line=inline_line)
        else:
            documents = [parsed.data for parsed in patch_text.documents if isinstance(parsed.data, YamlMap)]
            yield _Step("smp", file, f"{'inline ' if inline else ''}strategic merge patch{where}", inline=inline,
                        documents=documents, target=target, line_offset=offset, inline_line=inline_line)

    # --- one object's way --------------------------------------------------------------------------

    def _steps_for(self, origin: str, origin_data: Any, rendered: Any) -> list[tuple[_Step, _Identity]]:
        """The steps on the object's way up, each with the object's identity when it runs."""
        if self.tree is None:
            return []
        chains = _chains(self.tree, os.path.realpath(origin), [], 0)
        if not chains:
            return []
        start = origin_data if isinstance(origin_data, dict) else rendered
        final = _Identity(rendered)
        best: Optional[list[tuple[_Step, _Identity]]] = None
        for chain in chains:
            identity = _Identity(start)
            walked = []
            for step in chain:
                walked.append((step, _snapshot(identity)))
                _advance(identity, step)
            if best is None:
                best = walked
            if identity.names[-1] == final.names[0] and identity.namespaces[-1] == final.namespaces[0]:
                return walked
        return best or []

    def _patch_document(self, step: _Step, identity: _Identity) -> Any:
        """The part of the patch that applies to the object (an SMP document or the op list), or None."""
        if step.target is not None:
            if not _selected(step.target, identity):
                return None
            return step.documents[0] if step.kind == "smp" and step.documents else step.ops or None
        if step.kind == "json":
            return None  # patchesJson6902 always has a target; a `patches` JSON patch without one applies to nothing
        for patch in step.documents:
            metadata = patch.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
            group = _text(patch.get("apiVersion")).rpartition("/")[0]
            if patch.get("kind") == identity.kind and name in identity.names and group == identity.group and (
                    not namespace or namespace in identity.namespaces):
                return patch
        return None

    def _writes(self, step: _Step, identity: _Identity, path: FieldPath, rendered: Any, whole: bool,
                creating: bool) -> Optional[FieldSource]:
        """The step as the writer of `path`, if it writes it: any write for a leaf; for a mapping or
        merge-keyed list, a write that replaces it whole, or (`creating`) the first that creates it."""
        file = _relative(step.file, self.root)
        if step.kind in ("smp", "json"):
            patch = self._patch_document(step, identity)
            if patch is None:
                return None
            if step.kind == "smp":
                position = _smp_position(patch, path, rendered)
                if position is None or (whole and not creating):
                    return None
                return FieldSource(file=file, line=_patch_line(step, position), patch=True, how=step.how)
            last = None
            for op in patch:  # ops run in order: the last one that writes the field wins
                found = _op_position(op, path, rendered, whole, creating)
                if found is not None:
                    how = f"{step.how} (op {op.get('op')})" + (f" in {file}" if step.inline else "")
                    last = FieldSource(file=file, line=_patch_line(step, found), patch=True, how=how)
                    creating = False  # created now: a later op must replace it whole to own it
            return last
        line = _transformer_line(step, identity, path, rendered)
        return None if line is None else FieldSource(file=file, line=line, how=step.how)


def _chains(layer: _Layer, origin: str, incoming: list[list[_Step]], depth: int,
            budget: Optional[list[int]] = None) -> list[list[_Step]]:
    """Every sequence of steps an object from `origin` goes through up to and including `layer`'s own;
    `incoming` are those of an object already accumulated when `layer` (a component) runs. `budget`
    bounds the layers visited: kustomizations that include the same bases many times over (which
    kustomize itself renders once per way) cannot make this exponential."""
    budget = [MAX_LAYER_VISITS] if budget is None else budget
    budget[0] -= 1
    if depth > MAX_TREE_DEPTH or budget[0] < 0:
        return [list(chain) for chain in incoming]
    chains = [list(chain) for chain in incoming]
    for resource in layer.resources:
        if isinstance(resource, str):
            if resource == origin:
                chains.append([])
        else:
            chains.extend(_chains(resource, origin, [], depth + 1, budget))
    for component in layer.components:
        chains = _chains(component, origin, chains, depth + 1, budget)
    if layer.file == origin:  # generated here: generators run after the components, before the transformers
        chains.append([])
    return [chain + layer.steps for chain in chains]


def _snapshot(identity: _Identity) -> _Identity:
    copied = _Identity.__new__(_Identity)
    copied.kind, copied.group, copied.version = identity.kind, identity.group, identity.version
    copied.names, copied.namespaces = list(identity.names), list(identity.namespaces)
    copied.labels, copied.annotations = dict(identity.labels), dict(identity.annotations)
    return copied


def _advance(identity: _Identity, step: _Step) -> None:
    """The object's identity after `step` ran (names, namespace, labels and annotations it sets)."""
    if step.kind == "prefix":
        identity.names.append(step.data[0] + identity.names[-1])
    elif step.kind == "suffix":
        identity.names.append(identity.names[-1] + step.data[0])
    elif step.kind == "namespace":
        identity.namespaces.append(step.data[0])
    elif step.kind == "labels":
        identity.labels.update(_string_map(step.data[0]))
    elif step.kind == "annotations":
        identity.annotations.update(_string_map(step.data))


# --- patch targets -----------------------------------------------------------------------------------

def _full_match(pattern: Any, candidates: list[str]) -> bool:
    """kustomize's target match: the pattern is a Go regex anchored at both ends."""
    if not isinstance(pattern, str) or not pattern:
        return True
    compiled = _target_pattern(pattern)
    return compiled is not None and any(compiled.fullmatch(candidate) for candidate in candidates)


_NESTED_QUANTIFIER = re.compile(r"[*+}][^()]*\)[*+{]")


@functools.lru_cache(maxsize=256)
def _target_pattern(pattern: str) -> Optional[re.Pattern[str]]:
    """The compiled pattern, or None (matches nothing) when it is too long, not a regex, or has a
    quantified group holding a quantifier: Go's RE2 runs those in linear time, Python's re can
    backtrack for ever on them, and `(a+)+` is no name selector anyone means."""
    if len(pattern) > MAX_PATTERN_LENGTH or _NESTED_QUANTIFIER.search(pattern):
        return None
    try:
        return re.compile(f"(?:{pattern})")
    except re.error:
        return None


def _selected(target: Any, identity: _Identity) -> bool:
    return (_full_match(target.get("kind"), [identity.kind])
            and _full_match(target.get("group"), [identity.group])
            and _full_match(target.get("version"), [identity.version])
            and _full_match(target.get("name"), identity.names)
            and _full_match(target.get("namespace"), identity.namespaces)
            and _label_selector_matches(target.get("labelSelector"), identity.labels)
            and _label_selector_matches(target.get("annotationSelector"), identity.annotations))


_REQUIREMENT = re.compile(r"\s*(!?)\s*([^\s!=,()]+)\s*(?:(==|=|!=)\s*([^\s,()]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*")


def _label_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector string (`a=b,c!=d,e in (f,g),!h,i`) against `labels`."""
    if not isinstance(selector, str) or not selector.strip():
        return True
    return _string_selector(selector).matches(labels)


@functools.lru_cache(maxsize=256)
def _string_selector(selector: str) -> Selector:
    """The string form as the API's selector (kaudit/selectors.py): `=`/`==` is In, `!=` NotIn, a bare
    key Exists, `!key` DoesNotExist; a selector that does not parse selects nothing."""
    if len(selector) > MAX_PATTERN_LENGTH:
        return NOTHING
    requirements = []
    for requirement in _split_requirements(selector):
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            return NOTHING
        negated, key, operator, wanted, set_operator, values = match.groups()
        if negated:
            if operator or set_operator:
                return NOTHING
            requirements.append(Requirement(key, "DoesNotExist", frozenset()))
        elif operator:
            requirements.append(Requirement(key, "NotIn" if operator == "!=" else "In", frozenset((wanted,))))
        elif set_operator:
            listed = frozenset(item.strip() for item in values.split(","))
            requirements.append(Requirement(key, "In" if set_operator == "in" else "NotIn", listed))
        else:
            requirements.append(Requirement(key, "Exists", frozenset()))
    return Selector(tuple(requirements))


def _split_requirements(selector: str) -> list[str]:
    """Requirements split at the commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for character in selector:
        if character == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(character, 0)
        current.append(character)
    parts.append("".join(current))
    return parts


# --- locating a path ---------------------------------------------------------------------------------

def _list(item: Any) -> list[Any]:
    return item if isinstance(item, list) else []


def _line(container: Any, key: Union[str, int]) -> Optional[int]:
    position = position_of(container, key)
    return position[0] if position else None


def _get(data: Any, path: FieldPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _existing_prefix(rendered: Any, path: FieldPath) -> FieldPath:
    """The longest start of `path` that exists in the rendered object."""
    node, length = rendered, 0
    for part in path:
        if isinstance(part, int) and isinstance(node, list) and not isinstance(part, bool) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            break
        length += 1
    return path[:length]


def _merge_key(list_name: Union[str, int], path: FieldPath) -> Optional[str]:
    if list_name == "ports":
        return "containerPort" if any(part in _CONTAINER_LISTS for part in path) else "port"
    return _MERGE_KEYS.get(list_name) if isinstance(list_name, str) else None


def _item_index(patch_list: list[Any], rendered_list: Any, index: int, path_so_far: FieldPath) -> Optional[int]:
    """The index in a patch's list of the item that merges into the rendered list's `index`."""
    key = _merge_key(path_so_far[-1], path_so_far) if path_so_far else None
    item = rendered_list[index] if isinstance(rendered_list, list) and 0 <= index < len(rendered_list) else None
    if key is not None and isinstance(item, dict) and key in item:
        for position, candidate in enumerate(patch_list):
            if isinstance(candidate, dict) and candidate.get(key) == item[key] and candidate.get("$patch") != "delete":
                return position
        return None
    return index if index < len(patch_list) else None  # no merge key: the patch's list replaced the whole list


def _walk(data: Any, path: FieldPath, rendered: Any) -> Iterator[tuple[Any, Union[str, int]]]:
    """(container, key) for each step of `path` that exists in `data`, list items matched by merge key."""
    node, rendered_node = data, rendered
    for depth, part in enumerate(path):
        if isinstance(part, int):
            if not isinstance(node, list):
                return
            index = _item_index(node, rendered_node, part, path[:depth])
            if index is None:
                return
            yield node, index
            node = node[index]
            rendered_node = rendered_node[part] if isinstance(rendered_node, list) and part < len(rendered_node) else None
        else:
            if not isinstance(node, dict) or part not in node:
                return
            yield node, part
            node = node[part]
            rendered_node = rendered_node.get(part) if isinstance(rendered_node, dict) else None


def _has_path(data: Any, path: FieldPath, rendered: Any) -> bool:
    return sum(1 for _ in _walk(data, path, rendered)) == len(path)


def _deepest_position(data: Any, path: FieldPath, rendered: Any) -> Optional[int]:
    line = None
    for container, key in _walk(data, path, rendered):
        line = _line(container, key) or line
    return line


def _smp_position(patch: Any, path: FieldPath, rendered: Any) -> Optional[tuple[Any, Union[str, int]]]:
    """Where the patch document writes `path` (all of it), or None."""
    last = None
    walked = 0
    for container, key in _walk(patch, path, rendered):
        last = (container, key)
        walked += 1
    if walked != len(path) or last is None:
        return None
    written = last[0][last[1]]
    if isinstance(written, dict) and written.get("$patch") == "delete":
        return None
    return last


def _pointer(text: Any) -> Optional[list[str]]:
    if not isinstance(text, str) or not text.startswith("/"):
        return None if text != "" else []
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _op_position(op: Any, path: FieldPath, rendered: Any, whole: bool,
                 creating: bool) -> Optional[tuple[Any, Union[str, int]]]:
    """Where a JSON 6902 op writes `path`: the op's value (or the deepest part of it on `path`)."""
    if op.get("op") not in _WRITING_OPS:
        return None
    pointer = _pointer(op.get("path"))
    if pointer is None:
        return None
    for depth, part in enumerate(pointer[:len(path)]):
        wanted = path[depth]
        if isinstance(wanted, int):
            if part == "-":
                if not _appended_is(op, rendered, path[:depth + 1]):
                    return None
            elif part != str(wanted):
                return None
        elif part != wanted:
            return None
    if len(pointer) > len(path):  # the op writes inside the field: it creates it, it does not replace it
        if not (whole and creating):
            return None
    anchor: tuple[Any, Union[str, int]] = (op, "value") if "value" in op else (op, "path")
    rest = path[len(pointer):] if len(pointer) <= len(path) else ()
    written = op.get("value")
    inside = _get_rendered(rendered, path[:len(pointer)]) if len(pointer) <= len(path) else None
    for container, key in _walk(written, rest, inside):
        anchor = (container, key)
    return anchor


def _get_rendered(rendered: Any, path: FieldPath) -> Any:
    try:
        return _get(rendered, path)
    except (KeyError, IndexError, TypeError):
        return None


def _appended_is(op: Any, rendered: Any, item_path: FieldPath) -> bool:
    """An `-` (append) op wrote the rendered item at `item_path`: same merge key value, else the last item."""
    items = _get_rendered(rendered, item_path[:-1])
    index = item_path[-1]
    if not isinstance(items, list) or not isinstance(index, int):
        return False
    key = _merge_key(item_path[-2], item_path[:-1]) if len(item_path) >= 2 else None
    written = op.get("value")
    if key is not None and isinstance(written, dict) and key in written and isinstance(items[index], dict):
        return bool(items[index].get(key) == written[key])
    return index == len(items) - 1


def _patch_line(step: _Step, position: tuple[Any, Union[str, int]]) -> Optional[int]:
    line = _line(*position)
    if not step.inline:
        return line
    if step.line_offset is None or line is None:
        return step.inline_line
    return step.line_offset + line


def _inline_offset(text: _Text, holder: Any, key: Any) -> Optional[int]:
    """For an inline patch at `holder[key]`: the file's line before the patch's first line when the
    patch is a literal block (`|`), whose lines are the file's; None otherwise."""
    line = _line(holder, key) if holder is not None else None
    if line is None or line > len(text.lines):
        return None
    if re.search(r"(?:^|[:\-])\s*\|[0-9+-]*\s*(?:#.*)?$", text.lines[line - 1]):
        return line
    return None


def _transformer_line(step: _Step, identity: _Identity, path: FieldPath, rendered: Any) -> Optional[int]:
    """The kustomization line of a transformer that sets `path` (a leaf it writes)."""
    if step.kind == "namespace":
        return step.data[1] if path == ("metadata", "namespace") else None
    if step.kind in ("prefix", "suffix"):
        return step.data[1] if path == ("metadata", "name") else None
    if step.kind == "labels":
        pairs, selectors, templates = step.data
        if len(path) < 2 or not isinstance(path[-1], str) or path[-1] not in pairs:
            return None
        parent = path[:-1]
        writes = parent == ("metadata", "labels")
        writes = writes or (selectors and parent in (("spec", "selector", "matchLabels"), ("spec", "selector")))
        writes = writes or (templates and len(parent) >= 3 and parent[-3:] == ("template", "metadata", "labels"))
        return _line(pairs, path[-1]) if writes else None
    if step.kind == "annotations":
        if len(path) >= 2 and path[-2] == "annotations" and path[-1] in step.data:
            return _line(step.data, path[-1])
        return None
    if step.kind == "replicas":
        if path != ("spec", "replicas"):
            return None
        for index, entry in enumerate(step.data):
            if isinstance(entry, YamlMap) and entry.get("name") in identity.names:
                return _line(step.data, index)
        return None
    if step.kind == "images":
        if len(path) < 3 or path[-1] != "image" or path[-3] not in _CONTAINER_LISTS:
            return None
        image = _get_rendered(rendered, path)
        if not isinstance(image, str):
            return None
        repository = _image_name(image)
        for index, entry in enumerate(step.data):
            if isinstance(entry, YamlMap) and repository in (entry.get("name"), entry.get("newName")):
                return _line(step.data, index)
    return None


_GENERATORS = {"configMapGenerator": "ConfigMap", "secretGenerator": "Secret"}


def _generator_entry(text: Optional[_Text], rendered: Any) -> Any:
    """(field name, entry) of the generator in a kustomization that made `rendered`: same kind, and
    the rendered name is the entry's (with kustomize's hash suffix, and any prefix or suffix)."""
    data = text.documents[0].data if text is not None and text.documents else None
    if not isinstance(data, dict) or not isinstance(rendered, dict):
        return None
    metadata = rendered.get("metadata")
    name = _text(metadata.get("name")) if isinstance(metadata, dict) else ""
    best = None
    for field_name, kind in _GENERATORS.items():
        if rendered.get("kind") != kind:
            continue
        entries = data.get(field_name)
        for index, entry in enumerate(_list(entries)):
            entry_name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(entry_name, str) and entry_name and entry_name in name:
                if best is None or len(entry_name) > len(best[1]["name"]):
                    best = (field_name, entry, entries, index)
    return None if best is None else (best[0], best[1], best[2], best[3])


def _generator_line(generator: Any, path: FieldPath) -> Optional[int]:
    """The generator entry's line, or for a data key its `literals` item or `files` item (never its value)."""
    _, entry, entries, index = generator
    if len(path) >= 2 and path[0] in ("data", "stringData", "binaryData") and isinstance(path[1], str):
        key = path[1]
        for source in ("literals", "files", "envs"):
            items = entry.get(source)
            for position, item in enumerate(_list(items)):
                if not isinstance(item, str):
                    continue
                item_key = item.split("=", 1)[0] if source != "files" or "=" in item else os.path.basename(item)
                if item_key.strip() == key:
                    return _line(items, position)
    return _line(entries, index)


def _image_name(image: str) -> str:
    """The image without its tag or digest (a registry's port is not a tag)."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _relative(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path
