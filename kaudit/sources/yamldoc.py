"""Safe YAML parsing into plain dicts and lists that remember where every key and item was.

PyYAML's C composer builds the node graph; a small builder turns nodes into `YamlMap` /
`YamlSeq` (dict / list subclasses carrying 1-based (line, column) positions) instead of running
PyYAML's generic constructor. That is faster than `yaml.load` and gives every finding a line.

Hostile input is refused before it can hurt:
- deep nesting crashes the C composer (it recurses on the C stack), so a cheap textual bound is
  checked first and, when it is inconclusive, an event scan (iterative in libyaml) measures depth;
- aliases are expanded by copying, so their expanded size and depth are computed on the node
  graph first (alias bombs, recursive aliases);
- a syntax error ends one document, not the file: parsing resumes at the next `---`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generator, Iterator, Optional, Union, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 200
MAX_ALIAS_EXPANSION = 100_000  # per document, in nodes (a scalar weighs 1 + 1 per KiB of text)
MAX_FILE_ALIAS_EXPANSION = 1_000_000  # per file: many documents just under the per-document limit
MAX_PROBLEMS_PER_FILE = 50

Position = tuple[int, int]
# Positions are stored packed, line * 2**16 + column, one int per key instead of a tuple of two:
# about 80 bytes less per key, which is most of the memory a large manifest tree takes.
_COLUMN_BITS = 16
_COLUMN_MASK = (1 << _COLUMN_BITS) - 1


def _pack(line: int, column: int) -> int:
    return (line << _COLUMN_BITS) | min(column, _COLUMN_MASK)


def unpack(packed: int) -> Position:
    return packed >> _COLUMN_BITS, packed & _COLUMN_MASK

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
# Kubernetes decodes YAML with go-yaml v2, which reads y / n as booleans too (PyYAML does not):
# `hostNetwork: y` runs with the host network, so kaudit must read it the same way.
_GO_YAML_BOOLEANS = {"y": True, "Y": True, "n": False, "N": False}

_constructor = yaml.constructor.SafeConstructor()
# An anchor must follow whitespace, a flow indicator or a line start; text without one has no aliases.
_ANCHOR = re.compile(r"(?:^|[\s\[\]{},])&[^\s\[\]{},]", re.M)
_DOCUMENT_START = re.compile(r"^---(?:[ \t\r]|$)", re.M)  # \r: CRLF files


class _Loader(yaml.CSafeLoader):
    """The C loader with a memoised implicit-tag resolver.

    The C composer calls the pure-Python `resolve` for every scalar; for plain scalars the tag
    depends on the text alone, and manifests repeat the same short texts (keys, `true`, ports)
    endlessly, so a bounded cache turns most of those calls into one dict lookup.
    """

    _tags: dict[str, str] = {value: _BOOL for value in ("y", "Y", "n", "N")}  # go-yaml v2 booleans

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                if len(value) <= 64 and len(self._tags) < 50_000:
                    self._tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


class YamlMap(dict):  # type: ignore[type-arg]
    """A mapping that knows the position of each of its keys."""

    __slots__ = ("positions",)

    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[str, int] = {}  # key -> packed (line, column)


class YamlSeq(list):  # type: ignore[type-arg]
    """A sequence that knows the position of each of its items."""

    __slots__ = ("positions",)

    def __init__(self) -> None:
        super().__init__()
        self.positions: list[int] = []  # item -> packed (line, column)


@dataclass(frozen=True)
class Document:
    data: Any
    line: int
    column: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """A stretch of the text that could not be parsed; `line` is 1-based."""

    line: int | None
    message: str


Parsed = Union[Document, Problem]


class DocumentRefused(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_documents(text: str) -> Iterator[Parsed]:
    """Every document of a YAML stream, in order; unparseable stretches become `Problem`s."""
    offset = 0
    budget = [MAX_FILE_ALIAS_EXPANSION]  # shared by every document of this text
    for _ in range(MAX_PROBLEMS_PER_FILE):
        resume_at = yield from _parse_chunk(text, offset, budget)
        if resume_at is None:
            return
        text, offset = text[resume_at[0]:], offset + resume_at[1]
    yield Problem(offset + 1, f"more than {MAX_PROBLEMS_PER_FILE} unparseable stretches; the rest is not scanned")


ResumePoint = Optional[tuple[int, int]]


def _parse_chunk(text: str, line_offset: int, budget: list[int]) -> Generator[Parsed, None, ResumePoint]:
    """Parse `text`; return None when done, or (char index, lines skipped) to resume after an error."""
    try:
        _refuse_deep_nesting(text)
    except DocumentRefused as refused:
        yield _problem(refused, line_offset)
        return _resume_point(text, 0)
    aliases_possible = _ANCHOR.search(text) is not None
    loader = _Loader(text)
    good_end = 0  # index just past the last document that parsed
    try:
        while True:
            try:
                if not loader.check_node():
                    return None
                node = loader.get_node()
                assert node is not None  # check_node() said there is one
            except yaml.MarkedYAMLError as error:
                mark = error.problem_mark or error.context_mark
                line = None if mark is None else mark.line + 1 + line_offset
                yield Problem(line, f"invalid YAML: {error.problem or error.context or 'syntax error'}")
                return _resume_point(text, good_end)
            except yaml.reader.ReaderError as error:  # a character YAML does not allow (control characters)
                line = text.count("\n", 0, max(error.position, 0)) + 1 + line_offset
                yield Problem(line, f"invalid YAML: {error.reason} (character {error.character!r})")
                return _resume_point(text, good_end)
            except yaml.YAMLError as error:
                yield Problem(None, f"invalid YAML: {error}")
                return None
            good_end = node.end_mark.index
            yield _build_document(node, line_offset, aliases_possible, budget)
    finally:
        loader.dispose()


def _build_document(node: Node, line_offset: int, aliases_possible: bool, budget: list[int]) -> Parsed:
    line, column = node.start_mark.line + 1 + line_offset, node.start_mark.column + 1
    try:
        if aliases_possible:
            _check_alias_expansion(node, budget)
        builder = _Builder(line_offset)
        data = builder.build(node, 0)
    except DocumentRefused as refused:
        return _problem(refused, line_offset)
    return Document(data, line, column, tuple(builder.warnings))


def _problem(refused: DocumentRefused, line_offset: int) -> Problem:
    return Problem(None if refused.line is None else refused.line + 1 + line_offset, refused.message)


def _resume_point(text: str, good_end: int) -> ResumePoint:
    """Where the document after the broken one starts: (char index, lines before it), or None.

    The broken document begins at the first `---` at or after the end of the last good one (or at
    the very start); parsing resumes at the separator after that, so every later document counts.
    """
    broken = _DOCUMENT_START.search(text, good_end)
    if broken is None:
        return None
    following = _DOCUMENT_START.search(text, max(broken.end(), 1) if good_end else max(broken.start(), 1))
    if following is None:
        return None
    return following.start(), text.count("\n", 0, following.start())


def _refuse_deep_nesting(text: str) -> None:
    """Make sure composing cannot recurse deeper than MAX_DEPTH (the C composer would crash).

    Block nesting needs one more column of indentation (or of `- `/`? ` indicators) per level, and
    flow nesting one bracket per level, so their sum bounds the depth; only when that bound is too
    high is the real depth measured with libyaml's event parser, which does not recurse.
    """
    flow_opens = text.count("[") + text.count("{")
    room = MAX_DEPTH - flow_opens - 2
    if room > 0 and not re.search(r"^[ \t\-?:]{%d,}" % room, text, re.M):
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line if event.start_mark is not None else None
                    raise DocumentRefused(line, f"nested more than {MAX_DEPTH} levels deep; not scanned")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # a syntax error: the composer reports it, at a depth the scan has shown to be safe


def _check_alias_expansion(root: Node, budget: list[int]) -> None:
    """Refuse alias bombs and recursive aliases before anything is expanded. Big scalars weigh by
    their size, so one large string behind many aliases cannot balloon memory or output either."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded node count, expanded depth)
    in_progress: set[int] = set()
    distinct = 0

    def visit(node: Node) -> tuple[int, int]:
        nonlocal distinct
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in in_progress:
            raise DocumentRefused(node.start_mark.line, "recursive YAML alias; not scanned")
        in_progress.add(key)
        distinct += 1
        size = 1 + (len(node.value) >> 10 if isinstance(node, ScalarNode) else 0)
        depth = 1
        if isinstance(node, (MappingNode, SequenceNode)):
            children = [part for pair in node.value for part in pair] if isinstance(node, MappingNode) else node.value
            for child in children:
                child_size, child_depth = visit(child)
                size += child_size
                depth = max(depth, child_depth + 1)
                if size - distinct > MAX_ALIAS_EXPANSION:
                    raise DocumentRefused(
                        root.start_mark.line,
                        f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes (alias bomb?); not scanned",
                    )
            if depth > MAX_DEPTH:
                raise DocumentRefused(node.start_mark.line, f"nested more than {MAX_DEPTH} levels deep; not scanned")
        in_progress.discard(key)
        sizes[key] = (size, depth)
        return size, depth

    try:
        expanded, _ = visit(root)
    except RecursionError:
        raise DocumentRefused(root.start_mark.line, "YAML aliases nest too deeply; not scanned") from None
    budget[0] -= expanded - distinct
    if budget[0] < 0:
        raise DocumentRefused(root.start_mark.line, f"YAML aliases in this file expand to more than "
                                                    f"{MAX_FILE_ALIAS_EXPANSION} nodes in all (alias bomb?); not scanned")


class _Builder:
    def __init__(self, line_offset: int) -> None:
        self.line_offset = line_offset
        self.warnings: list[str] = []

    def position(self, node: Node) -> int:
        mark = node.start_mark
        return _pack(mark.line + 1 + self.line_offset, mark.column + 1)

    def build(self, node: Node, depth: int) -> Any:
        kind = type(node)
        if kind is ScalarNode:
            return _scalar(cast(ScalarNode, node))
        if depth >= MAX_DEPTH:
            raise DocumentRefused(node.start_mark.line, f"nested more than {MAX_DEPTH} levels deep; not scanned")
        if kind is MappingNode:
            return self.build_mapping(node, depth)
        sequence = YamlSeq()
        for item in node.value:
            sequence.append(self.build(item, depth + 1))
            sequence.positions.append(self.position(item))
        return sequence

    def build_mapping(self, node: Node, depth: int) -> YamlMap:
        mapping = YamlMap()
        positions = mapping.positions
        merged: list[YamlMap] = []
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                raise DocumentRefused(key_node.start_mark.line, "complex (non-scalar) mapping key; not scanned")
            if key_node.tag == _MERGE:
                merged.extend(self.merge_sources(value_node, depth))
                continue
            key = key_node.value  # Kubernetes keys are strings whatever they look like
            if key in mapping:
                line = key_node.start_mark.line + 1 + self.line_offset
                self.warnings.append(f"line {line}: duplicate key {key!r}, the last value is used")
            mapping[key] = self.build(value_node, depth + 1)
            positions[key] = self.position(key_node)
        for source in merged:  # explicit keys win; among merged mappings the first wins
            for key, value in source.items():
                if key not in mapping:
                    mapping[key] = value
                    positions[key] = source.positions[key]
        return mapping

    def merge_sources(self, node: Node, depth: int) -> list[YamlMap]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        built = [self.build(source, depth + 1) for source in sources]
        if not all(isinstance(source, YamlMap) for source in built):
            raise DocumentRefused(node.start_mark.line, "merge key '<<' needs a mapping or a list of mappings")
        return built


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR:
        return node.value
    try:
        if tag == _INT:
            return _constructor.construct_yaml_int(node)
        if tag == _BOOL:
            if node.value in _GO_YAML_BOOLEANS:
                return _GO_YAML_BOOLEANS[node.value]
            return _constructor.construct_yaml_bool(node)
        if tag == _FLOAT:
            return _constructor.construct_yaml_float(node)
    except (ValueError, IndexError, KeyError):  # an explicit tag on a value it cannot hold: `!!int abc`
        raise DocumentRefused(node.start_mark.line, f"{tag.rsplit(':', 1)[-1]} tag on {node.value!r}, "
                                                    "which is not one; not scanned") from None
    if tag == _NULL:
        return None
    return node.value  # timestamps, binary and custom tags stay text: nothing is ever constructed


def position_of(container: Any, key: str | int) -> Position | None:
    """The recorded position of `key` in a parsed mapping or sequence, if it has one."""
    if isinstance(container, YamlMap):
        packed = container.positions.get(key)  # type: ignore[arg-type]
        return None if packed is None else unpack(packed)
    if isinstance(container, YamlSeq) and isinstance(key, int) and 0 <= key < len(container.positions):
        return unpack(container.positions[key])
    return None




def deepest_position(data: Any, path: tuple[str | int, ...] | list[Any]) -> Position | None:
    """Position of the deepest element of `path` that exists in `data`: the field itself, or the
    nearest parent that is there when the field is missing."""
    found = None
    for part in path:
        position = position_of(data, part)
        if position is None:
            break
        found = position
        data = data[part]
    return found
