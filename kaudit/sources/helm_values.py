"""Which values key put a rendered field there: `values.yaml:42 securityContext.privileged`.

Helm's templates are programs, so reading them tells little; Helm itself tells more. For each
queried field of a rendered object we list candidate values keys, then render the chart again with
only that key perturbed and look at the same field of the same object:
- candidates: leaves of the effective values (the chart's values.yaml, each subchart's own
  values.yaml under its alias or name, the user's values files, --set) whose value equals the
  rendered one, compared as YAML scalars and as Go prints them (templates quote); then, for a
  string, keys whose value is part of it (`{{ .Values.repo }}:{{ .Values.tag }}`);
- a field the object lacks (`securityContext.runAsNonRoot`) is traced through the deepest map that
  is there: values maps (empty ones too) whose keys it holds with the same values (a template may
  leave some out: `omit .Values.securityContext "enabled" | toYaml`) are candidates, perturbed by a
  sentinel child; if the sentinel appears in that map, that values key is where to add the field
  (likewise a missing item of a list that is there: `tolerations: []`);
- a candidate is confirmed only when the field then holds the perturbed value (a flipped bool, a
  changed number, a marked string, the sentinel), not merely any change: a switch that adds a
  container ahead of the queried one, or a random name, confirms nothing.
Keys named like the field and keys the templates name are tried first; once one is confirmed only
deeper keys are (the deepest confirmed is named, the others noted), and two as deep that both
make the value (`{{ .Values.repo }}:{{ .Values.tag }}`) are reported as ambiguous.
Documents are matched across renders by Helm source, kind and name (a perturbation can add or
remove documents), by position within their source when the name itself moved. Renders are cached
per set of perturbed keys and shared by all queries; the work is bounded by renders, seconds and
candidates per query, and a bounded answer says so (`known=False`, or a note in `reason` when a
key was confirmed before the bound).
Cost: all queries go through phases, likeliest answers first (see _Tracer): one render marks every
string, number and map candidate at once (a marker of its own each: the field names its key; a
failing batch is halved), bools are flipped by group and the group halved while the field changes,
then switches (`{{- if .Values.hostNetwork }} hostNetwork: true`: a bool whose flip removes or adds
the field, or replaces an empty `{}`/`[]`, reported with `how="switch"`), then sentinels. One loaded
chart serves every render, and none starts that the slowest render so far says would end after the
deadline. A `fail` in NOTES.txt (Bitnami's image check) is avoided by rendering without it.

Not traced: a value a template computes (`{{ not .Values.x }}`, `{{ .Values.name | upper }}`)
matches no key, so it reads as not from values; `import-values`, and the subcharts of a packed
(.tgz) subchart, are not read.

The file named is the one to edit: Helm's precedence is --set over the user's values files (the
last one defining the key wins) over the chart's values.yaml over a subchart's own values.yaml.
"""
from __future__ import annotations

import os
import tarfile
import time
from typing import Any, Iterator, Optional, Sequence, Union

from kaudit.sources.helm import (MAX_VALUES_FILE_BYTES, SDK, ChartRenderer, HelmOptions, HelmRender, RenderError,
                                 RenderTimeout, chart_yaml, vendored_subcharts)
from kaudit.sources.yamldoc import Document, YamlMap, YamlSeq, parse_documents, position_of
from kaudit.value import replace, value

Path = tuple[Union[str, int], ...]
SET_FILE = "--helm-set"
MAX_NAMED_SINGLES = 3  # bools named like the field rendered one by one before the others by group
MAX_BATCH_SPLITS = 4  # a batch render that fails is halved this many times, then left to single keys
MAX_CANDIDATES = 48  # per query: each costs a render (cached: a key tried for one query is free for the next)
MAX_TEMPLATE_BYTES = 16 * 1024 * 1024  # of template text read to order candidates
SENTINEL_KEY = "kauditProbe"
PROBE = "kaudit-probe"
MAX_SUBCHART_DEPTH = 8
MAX_VALUES_NODES = 50_000  # keys and items over all values layers; a bigger chart is not traced

_CONFIRMED = object()  # _settle: the field followed the changed key


@value
class ValuesSource:
    file: str  # the chart's or a subchart's values.yaml, a user values file as given, or "--helm-set"
    line: Optional[int]  # of the key in `file`; None for --helm-set
    key: str  # dotted, as written in `file`: "securityContext.privileged", "ports[1]"
    how: str = ""  # "switch": a bool whose flip removes (or adds) the field, not the field's value


@value
class Query:
    document: int  # index in HelmRender.documents
    path: Path  # into the object: ("spec", "template", "spec", "containers", 0, "securityContext", "privileged")


@value
class Provenance:
    source: Optional[ValuesSource]  # None: not from values (a literal in a template), or not known
    known: bool  # False: budget reached, renders failed or ambiguous; `reason` says which
    reason: str = ""


def trace_values(chart_dir: str, options: HelmOptions, render: HelmRender, queries: Sequence[Query], *,
                 max_renders: int = 200, max_seconds: float = 0.5,
                 max_candidates: int = MAX_CANDIDATES) -> dict[Query, Provenance]:
    """Where each queried field's value came from (see the module doc); never raises on bad input."""
    tracer = _Tracer(chart_dir, options, render, max_renders, max_seconds, max_candidates)
    return tracer.trace_all(queries)


# --- the effective values, each key with the file that set it ----------------------------------

@value(eq=False)
class _Leaf:
    path: Path  # in the merged values, subchart keys under their alias
    value: Any
    source: ValuesSource


class _Layer:
    """One values file (or the --set expressions) placed at `prefix` in the merged values."""

    def __init__(self, file: str, data: Any, prefix: Path = ()) -> None:
        self.file = file
        self.data = data if isinstance(data, dict) else {}
        self.prefix = prefix

    def tree(self) -> dict[str, Any]:
        tree: Any = self.data
        for key in reversed(self.prefix):
            tree = {key: tree}
        return tree  # type: ignore[no-any-return]

    def source(self, path: Path) -> Optional[ValuesSource]:
        local = path[len(self.prefix):]
        if not local:
            return None  # the subchart's own key: defined by whoever writes it in the parent
        if self.file == SET_FILE:
            return ValuesSource(SET_FILE, None, dotted(local))
        node, line = self.data, None
        for part in local:
            position = position_of(node, part)
            line = position[0] if position is not None else None
            node = node[part]
        return ValuesSource(self.file, line, dotted(local))


def dotted(path: Path) -> str:
    """A values key as a user writes it (and --set reads it): `a.b[0].c`, a dot in a key escaped."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part).replace(".", "\\.")
    return text


def effective_leaves(chart_dir: str, options: HelmOptions) -> tuple[dict[str, Any], list[_Leaf]]:
    """The merged values (as Helm merges them) and every key in them (maps and list items too) with
    the file that set it. Raises RenderError when a values file cannot be read."""
    layers = _layers(chart_dir, options)
    merged: dict[str, Any] = {}
    origins: dict[Path, ValuesSource] = {}
    for layer in layers:
        _merge_layer(merged, layer.tree(), (), layer, origins)
    leaves = [_Leaf(path, node, origins[path]) for path, node in _walk(merged, ()) if path in origins]
    return merged, leaves


def _merge_layer(merged: dict[str, Any], tree: dict[str, Any], prefix: Path, layer: _Layer,
                 origins: dict[Path, ValuesSource]) -> None:
    # Helm's coalescing: maps merge key by key, anything else replaces (lists whole); a stale origin
    # left under a replaced key is never read, since only keys still in `merged` are looked up
    for key, node in tree.items():
        path = prefix + (key,)
        if node is None and key in merged:  # Helm: null over a lower layer's key removes it
            del merged[key]
            continue
        if isinstance(node, dict) and isinstance(merged.get(key), dict):
            source = layer.source(path)
            if source is not None:
                origins[path] = source
            _merge_layer(merged[key], node, path, layer, origins)
            continue
        merged[key] = _plain(node)
        for inner, _ in _walk(node, path):
            inner_source = layer.source(inner)
            if inner_source is not None:
                origins[inner] = inner_source


def _walk(node: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every key and item under `node` (and `node` itself at `path`, when `path` is not the root)."""
    if path:
        yield path, node
    if isinstance(node, dict):
        for key, inner in node.items():
            yield from _walk(inner, path + (key,))
    elif isinstance(node, list):
        for index, inner in enumerate(node):
            yield from _walk(inner, path + (index,))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(inner) for key, inner in node.items()}
    if isinstance(node, list):
        return [_plain(inner) for inner in node]
    return node


def _layers(chart_dir: str, options: HelmOptions) -> list[_Layer]:
    """Lowest precedence first: deepest subcharts' own values, ..., the chart's, user files, --set."""
    layers = _chart_layers(chart_dir, (), 0)
    for values_file in options.values_files:
        layers.append(_Layer(values_file, _load_file(values_file)))
    for expression in options.set_values:
        layers.append(_Layer(SET_FILE, _parse_set(expression)))
    return layers


def _parse_set(expression: str) -> dict[str, Any]:
    """A --set expression as Helm reads it: Helm's own parser with the SDK, else `parse_set`."""
    try:
        import helm_python
    except (ImportError, OSError):  # the helm binary renders: read it the way its strvals does
        return parse_set(expression)
    try:
        parsed: dict[str, Any] = helm_python.parse_set_string(expression)
    except helm_python.HelmError as error:
        raise RenderError(f"--set {expression.split('=', 1)[0]}: {error}") from None
    return parsed


def parse_set(expression: str) -> dict[str, Any]:
    """Helm's strvals for the common forms: `a.b=1,c[0].d=x`, `a\\.b=s`, `l={x,y}`; typed as Helm
    types --set values (true/false, null, integers without a leading zero; the rest are strings)."""
    import re

    result: dict[str, Any] = {}
    for assignment in re.split(r"(?<!\\),(?![^{]*})", expression):
        if not assignment:
            continue
        key, _, text = assignment.partition("=")
        node: Any = _typed_list(text[1:-1]) if text.startswith("{") and text.endswith("}") else _typed(text)
        parts: list[Union[str, int]] = []
        for name, index in re.findall(r"((?:[^.\\\[]|\\.)+)|\[(\d+)\]", key):
            parts.append(int(index) if index else re.sub(r"\\(.)", r"\1", name))
        if parts and isinstance(parts[0], str):
            _set_in(result, parts, node)
    return result


def _typed(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if text[:1] != "0" and text.lstrip("-").isdigit() or text == "0":  # Helm: "007" stays a string
        return int(text)
    return text.replace("\\,", ",")


def _typed_list(text: str) -> list[Any]:
    return [_typed(item) for item in text.split(",")]


def _set_in(tree: Any, parts: list[Union[str, int]], node: Any) -> None:
    for part, following in zip(parts, parts[1:] + [None]):
        empty: Any = None if following is None else ([] if isinstance(following, int) else {})
        if isinstance(part, int):
            while len(tree) <= part:
                tree.append(None)
            if following is None:
                tree[part] = node
            elif not isinstance(tree[part], (dict, list)):
                tree[part] = empty
            tree = tree[part]
        else:
            if following is None:
                tree[part] = node
            elif not isinstance(tree.get(part), (dict, list)):
                tree[part] = empty
            tree = tree[part]


def _chart_layers(chart_dir: str, prefix: Path, depth: int) -> list[_Layer]:
    layers: list[_Layer] = []
    if depth < MAX_SUBCHART_DEPTH:
        for key, sub_dir in _subcharts(chart_dir):
            layers = _chart_layers(sub_dir, prefix + (key,), depth + 1) + layers
        for key, archive, member in _packed_subcharts(chart_dir):
            layers.insert(0, _Layer(f"{archive}:{member}", _load_member(archive, member), prefix + (key,)))
    values_file = os.path.join(chart_dir, "values.yaml")
    if os.path.isfile(values_file):
        layers.append(_Layer(values_file, _load_file(values_file), prefix))
    return layers


def _subcharts(chart_dir: str) -> list[tuple[str, str]]:
    """(key in the parent's values, directory) of each vendored subchart directory: its alias, once
    per alias, else its chart name."""
    charts = os.path.join(chart_dir, "charts")
    by_name = {name: os.path.join(charts, entry) for name, entry in vendored_subcharts(chart_dir).items()}
    return _keys_for(chart_dir, by_name)


def _keys_for(chart_dir: str, by_name: dict[str, Any]) -> list[tuple[str, Any]]:
    """Each vendored subchart (`by_name`: chart name -> where) under its key in the parent's values:
    once per dependency of Chart.yaml naming it (by its alias, else its name); a subchart no
    dependency names, under its name."""
    keys: list[tuple[str, Any]] = []
    named: set[str] = set()
    for dependency in chart_yaml(chart_dir).get("dependencies") or []:
        name = dependency.get("name") if isinstance(dependency, dict) else None
        if not isinstance(name, str) or name not in by_name:
            continue
        alias = dependency.get("alias")
        key = alias if isinstance(alias, str) and alias else name
        named.add(name)
        if all(key != existing for existing, _ in keys):
            keys.append((key, by_name[name]))
    return keys + [(name, found) for name, found in by_name.items() if name not in named]


def _packed_subcharts(chart_dir: str) -> list[tuple[str, str, str]]:
    """(key, archive, member) of the values.yaml of each packed subchart (charts/*.tgz); its own
    subcharts are not read."""
    import yaml

    charts = os.path.join(chart_dir, "charts")
    by_name: dict[str, tuple[str, str]] = {}
    for entry in sorted(os.listdir(charts)) if os.path.isdir(charts) else []:
        archive = os.path.join(charts, entry)
        if not entry.endswith(".tgz") or not os.path.isfile(archive):
            continue
        try:
            with tarfile.open(archive, "r:gz") as packed:
                members = {member.name: member for member in packed.getmembers()
                           if member.isfile() and member.name.count("/") == 1}
                chart_yaml = next((m for m in members.values() if m.name.endswith("/Chart.yaml")), None)
                if chart_yaml is None or chart_yaml.size > 1024 * 1024:
                    continue
                stream = packed.extractfile(chart_yaml)
                loaded = yaml.safe_load(stream.read()) if stream else None
        except (OSError, tarfile.TarError, yaml.YAMLError):
            continue
        name = loaded.get("name") if isinstance(loaded, dict) else None
        member = chart_yaml.name.split("/")[0] + "/values.yaml"
        if isinstance(name, str) and member in members:
            by_name.setdefault(name, (archive, member))
    return [(key, archive, member) for key, (archive, member) in _keys_for(chart_dir, by_name)]


def _load_file(path: str) -> Any:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_VALUES_FILE_BYTES + 1)
    except OSError as error:
        raise RenderError(f"{path}: {error.strerror or error}") from None
    return _first_document(data)


def _load_member(archive: str, member: str) -> Any:
    try:
        with tarfile.open(archive, "r:gz") as packed:
            stream = packed.extractfile(member)
            data = stream.read(MAX_VALUES_FILE_BYTES + 1) if stream else b""
    except (OSError, tarfile.TarError, KeyError):
        return {}
    return _first_document(data)


def _first_document(data: bytes) -> Any:
    if len(data) > MAX_VALUES_FILE_BYTES:
        return {}
    for parsed in parse_documents(data.decode("utf-8", "replace")):
        if isinstance(parsed, Document) and isinstance(parsed.data, dict):
            return parsed.data
    return {}


# --- comparing rendered values with values -------------------------------------------------------

def go_text(node: Any) -> str:
    """How a Go template prints a values scalar (values numbers are float64 in Helm)."""
    if isinstance(node, bool):
        return "true" if node else "false"
    if node is None:
        return "<nil>"
    if isinstance(node, float) and node.is_integer() and abs(node) < 1e21:
        return str(int(node))
    return str(node)


def same_value(values_node: Any, rendered: Any) -> bool:
    """Whether `rendered` can be `values_node` printed by a template (deeply for maps and lists)."""
    if isinstance(values_node, dict) or isinstance(rendered, dict):
        return (isinstance(values_node, dict) and isinstance(rendered, dict) and values_node.keys() == rendered.keys()
                and all(same_value(values_node[key], rendered[key]) for key in values_node))
    if isinstance(values_node, list) or isinstance(rendered, list):
        return (isinstance(values_node, list) and isinstance(rendered, list) and len(values_node) == len(rendered)
                and all(same_value(a, b) for a, b in zip(values_node, rendered)))
    if isinstance(values_node, bool) or isinstance(rendered, bool):
        return go_text(values_node) == go_text(rendered)
    if isinstance(values_node, (int, float)) and isinstance(rendered, (int, float)):
        return float(values_node) == float(rendered)
    if values_node is None or rendered is None:
        return values_node is rendered
    return go_text(values_node) == go_text(rendered)


def _part_of(values_node: Any, rendered: Any) -> bool:
    # `image: {{ .Values.repo }}:{{ .Values.tag }}`: the tag is part of the rendered string
    if not isinstance(rendered, str) or isinstance(values_node, (bool, dict, list)) or values_node is None:
        return False
    text = go_text(values_node)
    return len(text) >= 2 and text in rendered and text != rendered


def _shared(values_map: dict[str, Any], rendered: dict[str, Any]) -> Optional[int]:
    """How many keys of a values map `rendered` holds with the same value, None when it cannot have
    been rendered from it. Templates print a values map beside keys of their own, and leave some of
    its keys out (`omit .Values.securityContext "enabled" | toYaml`), but do not change the others."""
    shared = 0
    for key, node in values_map.items():
        if key in rendered:
            if not same_value(node, rendered[key]):
                return None
            shared += 1
    return shared if shared or not values_map else None


def _perturbed(node: Any) -> Any:
    if isinstance(node, bool):
        return not node
    if isinstance(node, int):
        return node + 1
    if isinstance(node, float):
        return node + 0.5
    if isinstance(node, str):
        return f"{node}-{PROBE}" if node else PROBE
    if isinstance(node, list):
        return [*node, PROBE]
    if isinstance(node, dict):
        return {**node, SENTINEL_KEY: PROBE}
    return PROBE  # null


def _overlay_many(merged: Any, changes: dict[Path, Any]) -> Any:
    """_overlay for several keys at once (none inside another)."""
    if () in changes:
        return changes[()]
    if isinstance(merged, list):
        copy = _plain(merged)
        for path, new in changes.items():
            copy = _replace_in(copy, path, new)
        return copy
    grouped: dict[Union[str, int], dict[Path, Any]] = {}
    for path, new in changes.items():
        grouped.setdefault(path[0], {})[path[1:]] = new
    return {head: _overlay_many(merged.get(head) if isinstance(merged, dict) else None, inner)
            for head, inner in grouped.items()}


def _overlay(merged: Any, path: Path, new: Any) -> Any:
    """Values to merge over the user's so that `path` holds `new` and nothing else changes: nested
    maps down to the key, a whole copy of any list on the way (Helm replaces lists, never merges)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(merged, list):
        copy = _plain(merged)
        copy[head] = _replace_in(copy[head], rest, new)
        return copy
    return {head: _overlay(merged[head], rest, new)}


def _replace_in(node: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    node[path[0]] = new if len(path) == 1 else _replace_in(node[path[0]], path[1:], new)
    return node


def _at(data: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and not isinstance(part, bool) and 0 <= part < len(data):
            data = data[part]
        else:
            return False, None
    return True, data


# --- renders ---------------------------------------------------------------------------------------

_DocumentKey = tuple[str, str, str, int]  # Helm source, kind, name, occurrence of that triple


class _Objects:
    """One render's documents, parsed when first asked for, found by source, kind and name."""

    def __init__(self, render: HelmRender) -> None:
        self.render = render
        self._parsed: dict[int, Any] = {}
        self._keys: Optional[dict[_DocumentKey, int]] = None
        self._by_source: dict[str, list[int]] = {}
        for index, document in enumerate(render.documents):
            self._by_source.setdefault(document.source, []).append(index)

    def data(self, index: int) -> Any:
        if index not in self._parsed:
            parsed = next((item.data for item in parse_documents(self.render.documents[index].text)
                           if isinstance(item, Document)), None)
            self._parsed[index] = parsed
        return self._parsed[index]

    def key(self, index: int) -> _DocumentKey:
        source = self.render.documents[index].source
        occurrence = 0
        for other in self._by_source[source]:
            if other == index:
                break
            occurrence += self._identity(other) == self._identity(index)
        return (source, *self._identity(index), occurrence)

    def _identity(self, index: int) -> tuple[str, str]:
        data = self.data(index)
        if not isinstance(data, dict):
            return "", ""
        metadata = data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return str(data.get("kind")), str(name)

    def find(self, key: _DocumentKey, position: int, count: int) -> Any:
        """The object with `key`; else the `position`-th document of that source, when the source
        still has `count` documents (its name came from the perturbed key)."""
        indexes = self._by_source.get(key[0], [])
        for index in indexes:
            if self.key(index) == key:
                return self.data(index)
        if len(indexes) == count:
            return self.data(indexes[position])
        return None


class _Budget(Exception):
    pass


@value(eq=False)
class _Candidate:
    leaf: _Leaf
    exact: bool  # equal to the rendered value, not a part of it
    probe: Path  # where the perturbation must show: the field, or the map that must gain the sentinel
    reach: Path = ()  # a missing field's path: the sentinel may show in a map on the way to it


_Change = tuple[Path, str]  # a values key and how it is perturbed: "value", "map" (a sentinel child), "marker"


class _Job:
    """One query on its way through the phases; `result` once answered."""

    def __init__(self, query: Query, obj: dict[str, Any], key: _DocumentKey, position: int, count: int) -> None:
        self.query = query
        self.path: Path = tuple(query.path)
        self.obj = obj
        self.key = key
        self.position = position
        self.count = count
        self.found, self.rendered = _at(obj, self.path)
        self.scalar = self.found and not isinstance(self.rendered, dict)
        self.candidates: list[_Candidate] = []
        self.capped = ""
        self.confirmed: list[_Candidate] = []
        self.switches: list[_Candidate] = []
        self.failures: list[str] = []
        self.rejected: set[int] = set()  # ids of candidates a batch or group render ruled out
        self.settled: set[int] = set()  # ids of candidates rendered on their own
        self.decided = False  # a batch render named the key: no single-key renders
        self.bounded = ""
        self.result: Optional[Provenance] = None

    def field_in(self, objects: _Objects) -> tuple[bool, bool, Any]:
        """(document found, field found, its value) in another render."""
        document = objects.find(self.key, self.position, self.count)
        if not isinstance(document, dict):
            return False, False, None
        found, rendered = _at(document, self.path)
        return True, found, rendered

    def unchanged_in(self, objects: _Objects) -> bool:
        has_document, found, rendered = self.field_in(objects)
        if not has_document or found != self.found:
            return False
        return not found or same_value(self.rendered, rendered) and same_value(rendered, self.rendered)

    def switched_in(self, objects: _Objects) -> bool:
        """Whether the field is gone, there, or (an empty map or list) another one in `objects` while the
        object is still there and no list on the way changed length (an item added ahead of it)."""
        document = objects.find(self.key, self.position, self.count)
        if not isinstance(document, dict):
            return False
        for index, part in enumerate(self.path[:-1]):
            if isinstance(part, int):
                before, after = _at(self.obj, self.path[:index])[1], _at(document, self.path[:index])[1]
                if isinstance(before, list) and isinstance(after, list) and len(before) != len(after):
                    return False
        found, rendered = _at(document, self.path)
        if found != self.found:
            return True
        # an empty map or list (`egress: - {}`, allow all) replaced by one with content: a key that
        # merely edits a non-empty one (adds `namespaces` to a rule) switches nothing on or off
        return found and not self.scalar and self.rendered in ({}, []) and not same_value(self.rendered, rendered)


class _Tracer:
    """The phases, each over every query, cheapest and likeliest answers first: (1) one batch render
    with every string and number candidate set to a marker of its own; (2) single-key renders for
    what the batch left open, bools by group (flip a group, bisect it when the field changes); (3)
    switches: bools the document's template names, by group, for fields still without a key; (4)
    the sentinel for fields the object lacks. Every render is bounded by the deadline: none starts
    that would end after it, judging by the slowest render so far."""

    def __init__(self, chart_dir: str, options: HelmOptions, render: HelmRender, max_renders: int,
                 max_seconds: float, max_candidates: int) -> None:
        self.chart_dir = chart_dir
        self.options = options
        self.base = _Objects(render)
        self.max_renders = max_renders
        self.max_seconds = max_seconds
        self.max_candidates = max_candidates
        self.deadline = time.monotonic() + max_seconds
        self.render_cost = 0.0  # of the slowest render so far
        self.renders = 0
        self.cache: dict[frozenset[_Change], Union[_Objects, str]] = {}
        self.markers: dict[Path, Any] = {}
        self._renderer: Optional[ChartRenderer] = None
        self._values: Optional[tuple[dict[str, Any], list[_Leaf]]] = None
        self._values_error = ""
        self._template_words: Optional[frozenset[str]] = None
        self._document_words: dict[str, frozenset[str]] = {}

    def values(self) -> Optional[tuple[dict[str, Any], list[_Leaf]]]:
        if self._values is None and not self._values_error:
            try:
                merged, leaves = effective_leaves(self.chart_dir, self.options)
            except (RenderError, OSError, RecursionError) as error:
                self._values_error = f"values not read: {error}"
                return None
            if len(leaves) > MAX_VALUES_NODES:
                self._values_error = f"provenance not traced: over {MAX_VALUES_NODES} values keys"
                return None
            self._values = merged, leaves
        return self._values

    def trace_all(self, queries: Sequence[Query]) -> dict[Query, Provenance]:
        try:
            jobs = [self._job(query) for query in dict.fromkeys(queries)]
            values = self.values()
            active = [job for job in jobs if job.result is None]
            if values is not None:
                merged, leaves = values
                for job in active:
                    job.candidates = self._candidates(job, leaves)
                    if len(job.candidates) > self.max_candidates:
                        job.capped = (f"{len(job.candidates)} candidate values keys, over the cap of "
                                      f"{self.max_candidates}")
                        job.candidates = job.candidates[:self.max_candidates]
                scalars = sorted((job for job in active if job.scalar), key=lambda job: len(job.candidates))
                self._batch(merged, scalars)
                for job in scalars:
                    self._phase(job, lambda: self._singles(merged, job))
                open_jobs = [job for job in active if not job.confirmed]
                for job in open_jobs:
                    self._phase(job, lambda: self._switches(merged, job, leaves))
                lacking = sorted((job for job in open_jobs if not job.scalar and not job.switches),
                                 key=lambda job: len(job.candidates))
                self._batch(merged, lacking)
                for job in lacking:
                    self._phase(job, lambda: self._sentinels(merged, job))
            for job in active:
                job.result = (Provenance(None, False, self._values_error) if values is None
                              else self._verdict(job))
            return {job.query: job.result or Provenance(None, False, "not traced") for job in jobs}
        finally:
            if self._renderer is not None:
                self._renderer.close()

    def _job(self, query: Query) -> _Job:
        placeholder = _Job(query, {}, ("", "", "", 0), 0, 0)
        if not 0 <= query.document < len(self.base.render.documents):
            placeholder.result = Provenance(None, False, f"no document {query.document} in the render")
            return placeholder
        obj = self.base.data(query.document)
        if not isinstance(obj, dict):
            placeholder.result = Provenance(None, False, "the document does not parse to an object")
            return placeholder
        key = self.base.key(query.document)
        source_documents = self.base._by_source[key[0]]
        return _Job(query, obj, key, source_documents.index(query.document), len(source_documents))

    @staticmethod
    def _phase(job: _Job, run: Any) -> None:
        if job.bounded:
            return
        try:
            run()
        except _Budget as budget:
            job.bounded = str(budget)

    # --- phase 1: one render marks every string and number candidate --------------------------

    def _batch(self, merged: dict[str, Any], jobs: list[_Job]) -> None:
        """One render with a marker in every markable candidate of `jobs` (strings, numbers, and
        maps: a sentinel child of its own), halved when it fails; each job reads its field in it."""
        batched: dict[Path, Any] = {}
        for job in jobs:
            for candidate in job.candidates:
                if _markable(candidate.leaf.value) and candidate.leaf.path not in batched:
                    batched[candidate.leaf.path] = candidate.leaf.value
        if len(batched) < 2:
            return  # one key alone: its single-key render is as cheap
        for path, node in batched.items():
            self.markers.setdefault(path, _marker(node, len(self.markers)))
        try:
            outcomes = self._marked(merged, list(batched), 0)
        except _Budget as budget:
            for job in jobs:
                job.bounded = str(budget)
            return
        for job in jobs:
            self._read_batch(job, outcomes)

    def _marked(self, merged: dict[str, Any], paths: list[Path], depth: int) -> list[tuple[list[Path], _Objects]]:
        """Renders with `paths` marked, halved when a render fails (a schema's enum, a `fail`): each
        part that rendered with the keys it marked."""
        outcome = self._render(merged, frozenset((path, "marker") for path in paths))
        if not isinstance(outcome, str):
            return [(paths, outcome)]
        if len(paths) < 2 or depth >= MAX_BATCH_SPLITS:
            return []  # left to single-key renders
        middle = len(paths) // 2
        return self._marked(merged, paths[:middle], depth + 1) + self._marked(merged, paths[middle:], depth + 1)

    def _read_batch(self, job: _Job, outcomes: list[tuple[list[Path], _Objects]]) -> None:
        for paths, objects in outcomes:
            marked = set(paths)
            mine = [candidate for candidate in job.candidates if candidate.leaf.path in marked]
            if not mine:
                continue
            has_document, found, rendered = job.field_in(objects)
            shown = [candidate for candidate in mine if self._shows_marker(job, objects, candidate, found, rendered)]
            exact = [candidate for candidate in shown if candidate.exact]
            if exact:  # a marker of one key only: that key, and no other, set the field
                job.confirmed = exact[:1]
                job.decided = True
                return
            if shown:  # parts of the value (keys left out of this batch may be parts too)
                job.confirmed += [candidate for candidate in shown if candidate not in job.confirmed]
                job.settled.update(id(candidate) for candidate in shown)
                job.rejected.update(id(candidate) for candidate in mine if candidate not in shown)
                continue
            if has_document and found == job.found and (not found or same_value(job.rendered, rendered)):
                job.rejected.update(id(candidate) for candidate in mine)  # none of them feeds it

    def _shows_marker(self, job: _Job, objects: _Objects, candidate: _Candidate, found: bool, rendered: Any
                      ) -> bool:
        marker = self.markers[candidate.leaf.path]
        if isinstance(marker, dict):
            return self._shows_sentinel(job, objects, candidate, marker[SENTINEL_KEY])
        if not found:
            return False
        if candidate.exact:
            return same_value(marker, rendered)
        return isinstance(rendered, str) and go_text(marker) in rendered

    # --- phase 2: single keys, bools by group -----------------------------------------------

    def _singles(self, merged: dict[str, Any], job: _Job) -> None:
        if job.decided:
            return
        remaining = [candidate for candidate in job.candidates if id(candidate) not in job.rejected]
        field = _last_name(job.path)
        named = [candidate for candidate in remaining if isinstance(candidate.leaf.value, bool)
                 and _name_distance(candidate.leaf.path, field) == 0][:MAX_NAMED_SINGLES]
        # bools named like the field first, each on its own (it is usually one of them); then the
        # others that could still be picked over them (deeper), by group
        self._try(merged, job, named)
        deepest = max((len(candidate.leaf.path) for candidate in job.confirmed), default=0)
        bools = [candidate for candidate in remaining if isinstance(candidate.leaf.value, bool)
                 and candidate not in named and len(candidate.leaf.path) > deepest]
        if len(bools) > 1:
            flagged = self._bisect(merged, job, bools, lambda objects: not job.unchanged_in(objects))
            job.rejected.update(id(candidate) for candidate in bools if candidate not in flagged)
        self._try(merged, job, [candidate for candidate in remaining if id(candidate) not in job.rejected])

    def _try(self, merged: dict[str, Any], job: _Job, remaining: list[_Candidate]) -> None:
        """Single-key renders of `remaining` but those that could not be picked over what is confirmed."""
        remaining = [candidate for candidate in remaining if id(candidate) not in job.settled]
        deepest = max((len(candidate.leaf.path) for candidate in job.confirmed), default=0)
        exact_found = any(candidate.exact for candidate in job.confirmed)
        for candidate in remaining:
            depth = len(candidate.leaf.path)
            if job.confirmed and (depth < deepest or (exact_found and (depth == deepest or not candidate.exact))):
                # cannot be picked over what is confirmed (see _verdict): no render for it. Keys as
                # deep as a confirmed part are tried: `{{ .Values.repo }}:{{ .Values.tag }}` is both
                continue
            outcome = self._settle(merged, job, candidate)
            if outcome is _CONFIRMED:
                deepest, exact_found = max(deepest, depth), exact_found or candidate.exact
            elif outcome is not None and _is_switch(candidate.leaf) and job.switched_in(outcome):
                job.switches.append(candidate)

    def _bisect(self, merged: dict[str, Any], job: _Job, group: list[_Candidate], changed: Any) -> list[_Candidate]:
        """The members of `group` (bools) whose flip on its own makes `changed` true, found by
        flipping the group at once and halving it while it does; single flips are cached as such."""
        if len(group) == 1:
            return group
        outcome = self._render(merged, frozenset(_change(candidate.leaf) for candidate in group))
        if not isinstance(outcome, str) and not changed(outcome):
            return []
        middle = len(group) // 2
        return self._bisect(merged, job, group[:middle], changed) + self._bisect(merged, job, group[middle:], changed)

    # --- phase 3: switches ----------------------------------------------------------------------

    def _switches(self, merged: dict[str, Any], job: _Job, leaves: list[_Leaf]) -> None:
        tried = {id(candidate.leaf) for candidate in job.candidates if isinstance(candidate.leaf.value, bool)}
        words = self._words_of(job.query.document)
        flags = [_Candidate(leaf, True, job.path) for leaf in leaves
                 if _is_switch(leaf) and id(leaf) not in tried and str(leaf.path[-1]) in words]
        field = _last_name(job.path)
        flags.sort(key=lambda candidate: (_name_distance(candidate.leaf.path, field), -len(candidate.leaf.path)))
        # a group that moves anything is halved (a flag of the whole object among them hides the rest)
        changed = lambda objects: not job.unchanged_in(objects)  # noqa: E731
        for candidate in self._bisect(merged, job, flags[:self.max_candidates], changed):
            outcome = self._single(merged, candidate)
            if not isinstance(outcome, str) and job.switched_in(outcome):
                job.switches.append(candidate)

    def _words_of(self, document: int) -> frozenset[str]:
        template = self.base.render.documents[document].template
        if template not in self._document_words:
            self._document_words[template] = _words_in([os.path.join(self.chart_dir, template)])
        return self._document_words[template]

    # --- phase 4: the sentinel, for fields the object lacks ---------------------------------

    def _sentinels(self, merged: dict[str, Any], job: _Job) -> None:
        if job.decided:
            return
        for candidate in job.candidates:
            if id(candidate) in job.rejected:
                continue
            if job.confirmed:
                return  # maps as deep are not tried: the sentinel shows in one map only
            self._settle(merged, job, candidate)

    # --- renders ---------------------------------------------------------------------------------

    def _settle(self, merged: dict[str, Any], job: _Job, candidate: _Candidate) -> Any:
        """Render with `candidate` alone changed and record what it shows: _CONFIRMED when the
        field followed it, None when the render failed, else the rendered objects."""
        outcome = self._single(merged, candidate)
        job.settled.add(id(candidate))
        if isinstance(outcome, str):
            job.failures.append(f"{candidate.leaf.source.key}: {outcome}")
            return None
        if self._shows(job, outcome, candidate):
            job.confirmed.append(candidate)
            return _CONFIRMED
        return outcome

    def _single(self, merged: dict[str, Any], candidate: _Candidate) -> Union[_Objects, str]:
        return self._render(merged, frozenset((_change(candidate.leaf),)))

    def _render(self, merged: dict[str, Any], changes: frozenset[_Change]) -> Union[_Objects, str]:
        if changes in self.cache:
            return self.cache[changes]
        if self.renders >= self.max_renders:
            raise _Budget(f"budget of {self.max_renders} renders reached")
        now = time.monotonic()
        remaining = self.deadline - now
        if remaining <= 0:
            raise _Budget(f"budget of {self.max_seconds:g} s reached")
        if self.render_cost > remaining:
            raise _Budget(f"budget of {self.max_seconds:g} s reached (a render takes {self.render_cost:.2g} s)")
        self.renders += 1
        new: dict[Path, Any] = {}
        for path, how in changes:
            marker = self.markers.get(path) if how == "marker" else None
            if isinstance(marker, dict):  # a child of its own: maps in a batch hold one another
                new[path + (SENTINEL_KEY,)] = marker[SENTINEL_KEY]
            else:
                new[path] = self._new_value(path, how)
        extra = _overlay_many(merged, new)
        outcome: Union[_Objects, str]
        if self._renderer is None:
            self._renderer = ChartRenderer(self.chart_dir, self.options, self.base.render.renderer)
        renderer = self._renderer
        try:
            outcome = _Objects(renderer.render(extra, timeout=max(remaining, 0.05)))
        except RenderTimeout:  # it ran out of time (and may still run in its thread)
            self.deadline = 0.0
            raise _Budget(f"budget of {self.max_seconds:g} s reached") from None
        except RenderError as error:  # a schema, a `required`, a `fail`: these keys cannot be tested
            outcome = f"render failed ({' '.join(str(error).split())[:300] or 'no message'})"
            if "/templates/NOTES.txt:" in str(error) and not renderer.without_notes and renderer.renderer == SDK:
                # a `fail` in NOTES.txt (not a manifest): render without it from now on
                renderer.close()
                self._renderer = ChartRenderer(self.chart_dir, self.options, SDK, without_notes=True)
                self.renders -= 1
                return self._render(merged, changes)
        self.render_cost = max(self.render_cost, time.monotonic() - now)
        self.cache[changes] = outcome
        return outcome

    def _new_value(self, path: Path, how: str) -> Any:
        if how == "marker":
            return self.markers[path]
        assert self._values is not None
        return _perturbed(_at(self._values[0], path)[1])

    def _shows(self, job: _Job, objects: _Objects, candidate: _Candidate) -> bool:
        document = objects.find(job.key, job.position, job.count)
        new = _perturbed(candidate.leaf.value)
        if isinstance(candidate.leaf.value, dict):
            return self._shows_sentinel(job, objects, candidate, PROBE)
        found, rendered = _at(document, candidate.probe)
        if not found:
            return False
        if candidate.exact:
            return same_value(new, rendered)
        return isinstance(rendered, str) and go_text(new) in rendered

    @staticmethod
    def _shows_sentinel(job: _Job, objects: _Objects, candidate: _Candidate, sentinel: str) -> bool:
        """Whether the map at the candidate's probe (or, for a field the object lacks, a map on the
        way to it) holds the sentinel child."""
        document = objects.find(job.key, job.position, job.count)
        probes = [candidate.probe] + [candidate.reach[:length]
                                      for length in range(len(candidate.probe) + 1, len(candidate.reach))]
        for probe in probes:
            found, rendered = _at(document, probe)
            if found and isinstance(rendered, dict) and rendered.get(SENTINEL_KEY) == sentinel:
                return True
        return False

    # --- candidates and verdicts -----------------------------------------------------------------

    def _candidates(self, job: _Job, leaves: list[_Leaf]) -> list[_Candidate]:
        obj, path = job.obj, job.path
        found, rendered = job.found, job.rendered
        field = _last_name(path)
        if found and not isinstance(rendered, dict):
            exact = [_Candidate(leaf, True, path) for leaf in leaves if same_value(leaf.value, rendered)]
            parts = [_Candidate(leaf, False, path) for leaf in leaves if _part_of(leaf.value, rendered)]
            # a key named like the field first (`privileged` for privileged), then keys the templates
            # name, then deeper ones; _verdict picks the deepest confirmed, so once one is confirmed
            # shallower keys need no render
            exact.sort(key=lambda candidate: (_name_distance(candidate.leaf.path, field),
                                              self._unnamed(candidate.leaf.path), -len(candidate.leaf.path)))
            parts.sort(key=lambda candidate: -len(go_text(candidate.leaf.value)))
            return exact + parts
        if not found:
            existing = _existing_prefix(obj, path)
            _, last = _at(obj, existing)
            if isinstance(last, list):  # `tolerations[0]` of `tolerations: []`: the list is the place
                list_name = _last_name(existing)
                lists = [_Candidate(leaf, True, existing) for leaf in leaves if same_value(leaf.value, last)]
                lists.sort(key=lambda candidate: (_name_distance(candidate.leaf.path, list_name),
                                                  -len(candidate.leaf.path)))
                return lists
        map_path = path if found else _deepest_map(obj, path)
        _, rendered_map = _at(obj, map_path)
        # the map's name, or (a field the object lacks) a name on the way to it: `resources` of
        # `resources.limits.cpu` printed by `{{- with .Values.resources }}` from `resources: {}`
        names = [_last_name(map_path)] + [str(part) for part in path[len(map_path):] if isinstance(part, str)]
        maps = []
        for leaf in leaves:
            shared = _shared(leaf.value, rendered_map) if isinstance(leaf.value, dict) else None
            if shared is not None:
                # the same content first, then a key named like the map ("securityContext"), then
                # more of it in common, then one the templates name, then deeper
                distance = min(_name_distance(leaf.path, name) for name in names)
                maps.append(((leaf.value.keys() != rendered_map.keys(), distance, -shared,
                              self._unnamed(leaf.path), -len(leaf.path)), leaf))
        maps.sort(key=lambda scored: scored[0])
        return [_Candidate(leaf, True, map_path, () if found else path) for _, leaf in maps]

    def _unnamed(self, path: Path) -> bool:
        """Whether no template names the key itself (it can still be printed through a parent map)."""
        if self._template_words is None:
            self._template_words = _template_words(self.chart_dir)
        return str(path[-1]) not in self._template_words

    @staticmethod
    def _verdict(job: _Job) -> Provenance:
        bounded = job.bounded and (f"{job.bounded} before trying every candidate" if job.confirmed or job.switches
                                   else job.bounded)
        bounded = "; ".join(note for note in (bounded, job.capped) if note)
        confirmed = job.confirmed
        if not confirmed and job.switches:
            deepest = max(len(candidate.leaf.path) for candidate in job.switches)
            switch = next(candidate for candidate in job.switches if len(candidate.leaf.path) == deepest)
            others = [candidate.leaf.source for candidate in job.switches if candidate is not switch]
            notes = ["also switched by " + ", ".join(_describe(source) for source in others)] if others else []
            return Provenance(replace(switch.leaf.source, how="switch"), True,
                              "; ".join(notes + ([bounded] if bounded else [])))
        if not confirmed:
            if job.failures:
                return Provenance(None, False, "provenance not traced: " + "; ".join(job.failures[:3]))
            if job.bounded:
                untried = sum(1 for candidate in job.candidates
                              if id(candidate) not in job.rejected and id(candidate) not in job.settled)
                counted = f"{job.bounded} ({untried} candidate values keys untried)"
                return Provenance(None, False, "provenance not traced: " + "; ".join(
                    note for note in (counted, job.capped) if note))
            if bounded:
                return Provenance(None, False, f"provenance not traced: {bounded}")
            return Provenance(None, True)
        exact = [candidate for candidate in confirmed if candidate.exact] or confirmed
        deepest = max(len(candidate.leaf.path) for candidate in exact)
        best = [candidate for candidate in exact if len(candidate.leaf.path) == deepest]
        if len(best) > 1:
            named = ", ".join(_describe(candidate.leaf.source) for candidate in best)
            return Provenance(None, False, f"ambiguous: the value is made of several values keys: {named}")
        others = [candidate.leaf.source for candidate in confirmed if candidate is not best[0]]
        notes = ["also changes with " + ", ".join(_describe(source) for source in others)] if others else []
        return Provenance(best[0].leaf.source, True, "; ".join(notes + ([bounded] if bounded else [])))


def _change(leaf: _Leaf) -> _Change:
    return leaf.path, "map" if isinstance(leaf.value, dict) else "value"


def _markable(node: Any) -> bool:
    return isinstance(node, (str, dict)) or isinstance(node, int) and not isinstance(node, bool)


def _marker(node: Any, number: int) -> Any:
    """A value for `node` that no other key of the batch gets: strings keep their text in front (a
    name stays a name), numbers move by a step of their own."""
    if isinstance(node, str):
        return f"{node}-{PROBE}{number:05d}" if node else f"{PROBE}{number:05d}"
    if isinstance(node, dict):
        return {**node, SENTINEL_KEY: f"{PROBE}{number:05d}"}
    return node + 1 + number


def _is_switch(leaf: _Leaf) -> bool:
    return isinstance(leaf.value, bool)


def _words_in(files: list[str]) -> frozenset[str]:
    import re

    words: set[str] = set()
    for name in files:
        try:
            with open(name, "rb") as stream:
                text = stream.read(MAX_TEMPLATE_BYTES).decode("utf-8", "replace")
        except OSError:
            continue
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", text))
    return frozenset(words)


def _template_words(chart_dir: str) -> frozenset[str]:
    """The words of the chart's templates (and its vendored subcharts'): only to order candidates."""
    import re

    words: set[str] = set()
    budget = MAX_TEMPLATE_BYTES
    for directory, subdirectories, files in os.walk(chart_dir):
        subdirectories.sort()
        if os.path.basename(directory) != "templates" and "/templates/" not in directory + "/":
            continue
        for name in sorted(files):
            if budget <= 0:
                return frozenset(words)
            try:
                with open(os.path.join(directory, name), "rb") as stream:
                    text = stream.read(budget).decode("utf-8", "replace")
            except OSError:
                continue
            budget -= len(text)
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", text))
    return frozenset(words)


def _name_distance(path: Path, field: str) -> int:
    """0: the values key is named like the field, 1: one name starts the other, 2: unrelated."""
    name = _last_name(path).lower()
    field = field.lower()
    if name == field:
        return 0
    return 1 if name and field and (name.startswith(field) or field.startswith(name)) else 2


def _describe(source: ValuesSource) -> str:
    where = source.file if source.line is None else f"{source.file}:{source.line}"
    return f"{where} {source.key}"


def _existing_prefix(obj: Any, path: Path) -> Path:
    """The longest start of `path` that is in `obj`."""
    for length in range(len(path), 0, -1):
        if _at(obj, path[:length])[0]:
            return path[:length]
    return ()


def _last_name(path: Path) -> str:
    return next((part for part in reversed(path) if isinstance(part, str)), "")


def _deepest_map(obj: Any, path: Path) -> Path:
    deepest: Path = ()
    node = obj
    for index, part in enumerate(path):
        found, node = _at(node, (part,))
        if not found:
            break
        if isinstance(node, dict):
            deepest = path[:index + 1]
    return deepest
