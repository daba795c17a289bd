"""Safe YAML parsing into plain dicts and lists that remember where every key and item was.

The text is first cut into documents at their `---` / `...` markers (libyaml's own rule: a marker
at the start of a line always ends whatever came before), and each document is parsed alone, so a
broken, too-deep or hostile document costs only itself, and nothing is ever parsed twice.

Each document is built from libyaml's event stream (C parser, no node graph): every key and item
gets its 1-based (line, column), scalars are resolved the way Kubernetes reads them (go-yaml v2,
below), and nothing is ever constructed from a tag. Building from events rather than composed
nodes keeps memory to the data itself and checks hostile shapes as they arrive:
- nesting deeper than MAX_DEPTH is refused at the first level too deep (the C composer would
  recurse on the C stack and crash; libyaml's parser itself does not recurse). Newer libyaml
  (0.2.6, in the PyYAML 6.0.4 wheels) has its own limit of 1000 levels, which can answer first while
  it scans ahead on a long line; kaudit reports that as its own refusal, in the same words;
- aliases are copied, after checking what the copy would add (alias bombs, recursive aliases).
"""
from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any, Iterator, Optional, Union

import yaml
from yaml.events import (AliasEvent, DocumentEndEvent, DocumentStartEvent, MappingEndEvent, MappingStartEvent,
                         ScalarEvent, SequenceEndEvent, SequenceStartEvent, StreamEndEvent)
from yaml._yaml import CParser
from yaml.nodes import ScalarNode

from kaudit.sources.goyaml import resolve_plain
from kaudit.value import value

MAX_DEPTH = 200
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; not scanned"  # kaudit's wording, whatever libyaml says
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"  # libyaml >= 0.2.6's own limit (1000 levels)
MAX_ALIAS_EXPANSION = 100_000  # per document, in nodes (a scalar weighs 1 + 1 per KiB of text)
MAX_FILE_ALIAS_EXPANSION = 1_000_000  # per file: many documents just under the per-document limit
MAX_PROBLEMS_PER_FILE = 50  # listed one by one; any more are summed up in one last problem

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
_BOOL_WORDS = {"y": True, "Y": True, "n": False, "N": False}  # go-yaml v2 only, PyYAML's table lacks them
_constructor = yaml.constructor.SafeConstructor()

# libyaml's line breaks; editors (and kaudit's line numbers) count only the first three.
_YAML_BREAK = "\r\n\x85\u2028\u2029"
_EXOTIC_BREAKS = re.compile("[\x85\u2028\u2029]")
_REAL_BREAK = re.compile(r"\r\n|[\r\n]")
# A document marker: `---` or `...` at the start of a line, followed by a blank, a break or the end.
_MARKER = re.compile(r"(?:\A|(?<=[%s]))(?:---|\.\.\.)(?=[ \t%s]|\Z)" % (_YAML_BREAK, _YAML_BREAK))
# Characters libyaml refuses anywhere in a stream, comments included.
_FORBIDDEN = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff"
# Text that holds no document: blank lines, comments and directives (which belong to the next one).
# A comment holding a forbidden character is not trivia: joined to the next document, it would
# make libyaml refuse that document too.
_TRIVIA = re.compile(r"(?:[ \t]*(?:#[^%s]*)?(?:\r\n|[%s])|%%[^%s]*(?:\r\n|[%s]))*[ \t]*(?:#[^%s]*)?"
                     % (_YAML_BREAK + _FORBIDDEN, _YAML_BREAK, _YAML_BREAK, _YAML_BREAK, _YAML_BREAK + _FORBIDDEN))
_DIRECTIVE = re.compile(r"(?:\A|(?<=[%s]))%%" % _YAML_BREAK)  # `%YAML` or `%TAG`, at the start of a line
# YAML allows a byte order mark before any document: `cat a.yaml b.yaml` keeps b's.
_LATER_BOM = re.compile(r"(?:\A|(?<=[%s]))\ufeff" % _YAML_BREAK)


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


@value
class Problem:
    """A stretch of the text that could not be parsed (or, in `Document.warnings`, a doubtful one);
    `line` is 1-based."""

    line: int | None
    message: str


@value
class Document:
    """One parsed YAML document with its position, and what parsing warned about."""

    data: Any
    line: int
    column: int
    warnings: tuple[Problem, ...] = ()


Parsed = Union[Document, Problem]


class DocumentRefused(Exception):
    def __init__(self, index: int | None, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.index = index  # character index in the document's text, or:
        self.line = line  # the file's line, when known instead
        self.message = message


def parse_documents(text: str) -> Iterator[Parsed]:
    """Every document of a YAML stream, in order; each unparseable document becomes a `Problem`."""
    if "\ufeff" in text:
        text = _LATER_BOM.sub("", text)
    budget = [MAX_FILE_ALIAS_EXPANSION]  # shared by every document of this text
    listed = omitted = 0
    first_omitted: int | None = None
    for chunk, place in _documents(text):
        for parsed in _parse_document(chunk, place, budget):
            if isinstance(parsed, Problem):
                if listed == MAX_PROBLEMS_PER_FILE:
                    omitted += 1
                    first_omitted = first_omitted or parsed.line
                    continue
                listed += 1
            yield parsed
    if omitted:
        yield Problem(first_omitted, f"{omitted} more unparseable document(s) from here on, not listed one by one")


class _Place:
    """Turns libyaml's marks in one document's text into the file's 1-based (line, column).

    libyaml counts U+0085, U+2028 and U+2029 as line breaks; editors do not. Documents holding
    one (rare) are placed by character index instead of libyaml's line count.
    """

    __slots__ = ("first_line", "line_starts")

    def __init__(self, chunk: str, first_line: int) -> None:
        self.first_line = first_line  # 1-based line of the chunk's first line
        self.line_starts: Optional[list[int]] = None
        if _EXOTIC_BREAKS.search(chunk):
            self.line_starts = [match.end() for match in _REAL_BREAK.finditer(chunk)]

    def line_and_column(self, line: int, column: int, index: int) -> Position:
        starts = self.line_starts
        if starts is None:
            return line + self.first_line, column + 1
        before = bisect_right(starts, index)
        return before + self.first_line, index - (starts[before - 1] if before else 0) + 1

    def of_index(self, index: int | None, chunk: str) -> int | None:
        if index is None:
            return None
        return self.first_line + len(_REAL_BREAK.findall(chunk, 0, index))


def _documents(text: str) -> Iterator[tuple[str, _Place]]:
    """The text cut into pieces holding one document each (or only comments), with their place.

    A document marker at the start of a line ends whatever came before it, in libyaml as in the
    YAML spec, so cutting there parses exactly as the whole stream would. Directives and comments
    before a `---` go with the document they precede. A piece that starts in the middle of a line
    (after `...`) is padded with spaces, so libyaml sees the columns it would have seen.
    """
    cuts = [0]
    for marker in _MARKER.finditer(text):
        cuts.append(marker.start() if text[marker.start()] == "-" else marker.end())
    cuts.append(len(text))
    counts_newlines_only = "\r" not in text
    line = 1  # of `start`
    counted_to = 0
    start = 0
    for end in cuts[1:]:
        if end <= start:
            continue
        if end < len(text) and _TRIVIA.fullmatch(text, start, end):
            if _DIRECTIVE.search(text[start:end]):
                continue  # directives (and comments around them) go with the next document
            # Blank lines and comments hold no document: dropped, not joined to the next, whose
            # parse would fail with them where libyaml refuses their whitespace (a tab before the
            # first `---`).
            start = end
            continue
        if counts_newlines_only:
            line += text.count("\n", counted_to, start)
        else:
            line += len(_REAL_BREAK.findall(text, counted_to, start))
        counted_to = start
        after_end_marker = start > 0 and text[start - 1] == "."  # mid-line, 3 columns in (`...` starts its line)
        chunk = text if (start, end) == (0, len(text)) else ("   " if after_end_marker else "") + text[start:end]
        yield chunk, _Place(chunk, line)
        start = end


def _parse_document(chunk: str, place: _Place, budget: list[int]) -> Iterator[Parsed]:
    try:
        parser = CParser(chunk)
    except UnicodeEncodeError as error:  # a lone surrogate: no file decoded by kaudit holds one, a caller's text may
        yield Problem(place.of_index(error.start, chunk), "not valid Unicode text (an unpaired surrogate)")
        return
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, DocumentStartEvent):
                yield _Builder(parser, place, budget).document()
            elif isinstance(event, StreamEndEvent):
                return
    except DocumentRefused as refused:
        line = refused.line if refused.line is not None else place.of_index(refused.index, chunk)
        yield Problem(line, refused.message)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else place.line_and_column(mark.line, mark.column, mark.index)[0]
        if error.problem == _LIBYAML_TOO_DEEP:
            # libyaml met its limit scanning ahead for a possible simple key, which stays on one line:
            # level MAX_DEPTH + 1, where kaudit's own guard would have stopped, is on this same line.
            yield Problem(line, TOO_DEEP)
        else:
            yield Problem(line, f"invalid YAML: {error.problem or error.context or 'syntax error'}")
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (control characters)
        before = chunk.encode("utf-8", "surrogatepass")[:max(error.position, 0)].decode("utf-8", "ignore")
        yield Problem(place.of_index(len(before), chunk), f"invalid YAML: {error.reason} (character {error.character!r})")
    except yaml.YAMLError as error:
        yield Problem(place.first_line, f"invalid YAML: {error}")
    finally:
        parser.dispose()


_NO_KEY = object()  # a mapping frame waiting for its next key
_MERGE_KEY = object()  # ... or for the value of a `<<` merge key

# A frame of the builder's stack: [container, is_mapping, pending key, key position, expanded size,
# height, merge sources, anchor, position].
_CONTAINER, _IS_MAP, _KEY, _KEY_POSITION, _SIZE, _HEIGHT, _MERGES, _ANCHOR, _POSITION = range(9)


class _Builder:
    """Builds one document from parser events, with positions, and refuses hostile shapes."""

    def __init__(self, parser: Any, place: _Place, budget: list[int]) -> None:
        self.parser = parser
        self.place = place
        self.budget = budget
        self.warnings: list[Problem] = []
        self.anchors: dict[str, tuple[Any, int, int, Optional[str]]] = {}  # value, size, height, key text
        self.open_anchors: set[str] = set()
        self.expansion = 0  # nodes the aliases of this document add
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.root_position = 0

    def position(self, mark: Any) -> int:
        return _pack(*self.place.line_and_column(mark.line, mark.column, mark.index))

    def document(self) -> Document:
        # The hot loop: scalars (most events) are handled inline, positions computed in place.
        get_event, stack, anchors = self.parser.get_event, self.stack, self.anchors
        exact = self.place.line_starts is None
        first_line = self.place.first_line
        position = self.position
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent:
                mark = event.start_mark
                if exact:  # _pack, inlined: this runs for every scalar
                    column = mark.column + 1
                    packed = ((mark.line + first_line) << _COLUMN_BITS) | (column if column < _COLUMN_MASK else _COLUMN_MASK)
                else:
                    packed = position(mark)
                text = event.value
                if stack:
                    frame = stack[-1]
                    if frame[_IS_MAP] and frame[_KEY] is _NO_KEY:  # a key: Kubernetes keys are strings
                        frame[_SIZE] += 1
                        merge = text == "<<" and event.tag is None and event.implicit[0]
                        frame[_KEY] = _MERGE_KEY if merge else text
                        frame[_KEY_POSITION] = packed
                        if event.anchor is not None:
                            anchors[event.anchor] = (_scalar_value(event), 1, 0, text)
                        continue
                if event.tag is None:
                    value = resolve_plain(text) if event.implicit[0] else text
                else:
                    value = _scalar_value(event)
                size = 1 + (len(text) >> 10)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, size, 0, text)
                self.add(value, packed, size, 0)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self.open(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self.close()
            elif kind is AliasEvent:
                self.alias(event)
            elif kind is DocumentEndEvent:
                self.budget[0] -= self.expansion
                line, column = unpack(self.root_position)
                return Document(self.root, line, column, tuple(self.warnings))

    def open(self, event: Any, is_map: bool) -> None:
        stack = self.stack
        if stack and stack[-1][_IS_MAP] and stack[-1][_KEY] is _NO_KEY:
            raise DocumentRefused(event.start_mark.index, "complex (non-scalar) mapping key; not scanned")
        if len(stack) >= MAX_DEPTH:
            raise DocumentRefused(event.start_mark.index, TOO_DEEP)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        container = YamlMap() if is_map else YamlSeq()
        stack.append([container, is_map, _NO_KEY, 0, 1, 1, None, event.anchor, self.position(event.start_mark)])

    def close(self) -> None:
        frame = self.stack.pop()
        container = frame[_CONTAINER]
        if frame[_MERGES]:
            positions = container.positions
            for source in frame[_MERGES]:  # explicit keys win; among merged mappings the first wins
                for key, value in source.items():
                    if key not in container:
                        container[key] = value
                        positions[key] = source.positions[key]
        anchor = frame[_ANCHOR]
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = (container, frame[_SIZE], frame[_HEIGHT], None)
        self.add(container, frame[_POSITION], frame[_SIZE], frame[_HEIGHT])

    def alias(self, event: Any) -> None:
        name, index = event.anchor, event.start_mark.index
        if name in self.open_anchors:
            raise DocumentRefused(index, "recursive YAML alias; not scanned")
        target = self.anchors.get(name)
        if target is None:
            raise DocumentRefused(index, "invalid YAML: found undefined alias")
        value, size, height, key_text = target
        self.expansion += size
        document_line = self.stack[0][_POSITION] >> _COLUMN_BITS if self.stack else None  # the whole document is refused
        if self.expansion > MAX_ALIAS_EXPANSION:
            raise DocumentRefused(index, f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes "
                                         "(alias bomb?); not scanned", line=document_line)
        if self.expansion > self.budget[0]:
            raise DocumentRefused(index, f"YAML aliases in this file expand to more than "
                                         f"{MAX_FILE_ALIAS_EXPANSION} nodes in all (alias bomb?); not scanned",
                                  line=document_line)
        if len(self.stack) + height > MAX_DEPTH:
            raise DocumentRefused(index, TOO_DEEP)
        top = self.stack[-1] if self.stack else None
        if top is not None and top[_IS_MAP] and top[_KEY] is _NO_KEY:
            if key_text is None:
                raise DocumentRefused(index, "complex (non-scalar) mapping key; not scanned")
            top[_SIZE] += 1
            top[_KEY] = key_text
            top[_KEY_POSITION] = self.position(event.start_mark)
            return
        self.add(_copy(value), self.position(event.start_mark), size, height)

    def add(self, value: Any, packed: int, size: int, height: int) -> None:
        """Put a finished value into the open container (or make it the document's root)."""
        if not self.stack:
            self.root, self.root_position = value, packed
            return
        frame = self.stack[-1]
        frame[_SIZE] += size
        if height >= frame[_HEIGHT]:
            frame[_HEIGHT] = height + 1
        container = frame[_CONTAINER]
        if not frame[_IS_MAP]:
            container.append(value)
            container.positions.append(packed)
            return
        key = frame[_KEY]
        frame[_KEY] = _NO_KEY
        if key is _MERGE_KEY:
            frame[_MERGES] = (frame[_MERGES] or []) + _merge_sources(value, packed)
            return
        if key in container:
            line = frame[_KEY_POSITION] >> _COLUMN_BITS
            self.warnings.append(Problem(line, f"duplicate key {key!r}, the last value is used"))
        container[key] = value
        container.positions[key] = frame[_KEY_POSITION]


def _merge_sources(value: Any, packed: int) -> list[YamlMap]:
    sources = value if isinstance(value, YamlSeq) else [value]
    if not all(isinstance(source, YamlMap) for source in sources):
        raise DocumentRefused(None, "merge key '<<' needs a mapping or a list of mappings; not scanned",
                              line=packed >> _COLUMN_BITS)
    return list(sources)


def _copy(value: Any) -> Any:
    """An alias's own copy of what its anchor holds (its size was checked before)."""
    if isinstance(value, YamlMap):
        copied = YamlMap()
        for key, item in value.items():
            copied[key] = _copy(item)
        copied.positions.update(value.positions)
        return copied
    if isinstance(value, YamlSeq):
        sequence = YamlSeq()
        sequence.extend(_copy(item) for item in value)
        sequence.positions.extend(value.positions)
        return sequence
    return value


def _scalar_value(event: Any) -> Any:
    tag, text = event.tag, event.value
    if tag is None:
        return resolve_plain(text) if event.implicit[0] else text
    if tag == "!" or tag == _STR:
        return text
    try:
        if tag == _INT:
            return _constructor.construct_yaml_int(ScalarNode(tag, text))
        if tag == _BOOL:
            if text in _BOOL_WORDS:
                return _BOOL_WORDS[text]
            return _constructor.construct_yaml_bool(ScalarNode(tag, text))
        if tag == _FLOAT:
            return _constructor.construct_yaml_float(ScalarNode(tag, text))
    except (ValueError, IndexError, KeyError):  # an explicit tag on a value it cannot hold: `!!int abc`
        raise DocumentRefused(event.start_mark.index, f"{tag.rsplit(':', 1)[-1]} tag on {text!r}, "
                                                      "which is not one; not scanned") from None
    if tag == _NULL:
        return None
    return text  # timestamps, binary and custom tags stay text: nothing is ever constructed


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
