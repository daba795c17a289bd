"""Map the lines of a rendered Helm template back to the template lines that wrote them.

Go templates give no source map, so one is built by alignment. Each template file is lexed into
literal text and `{{ }}` actions (trim markers applied, comments dropped) and cut into "effective
lines" at the literal newlines that survive trimming: one effective line writes one output line,
plus the lines its actions emit (`toYaml ... | nindent 8`, a multi-line `include`). Each becomes a
pattern (its literal text, each output action a lazy wildcard) that knows the `if`/`with`/`range`
branches it sits in; text of a branch opened on the line is optional, and a line that writes in
two exclusive branches (`{{ toYaml .x }}{{- else -}}\nkey: v`) is one line per branch. Output lines
are walked in order with a cursor on the template:

- an output line goes to the nearest template line at/after the cursor whose text matches, skipping
  only lines that may be absent (in a block the last line is not in, never the other branch of an
  if/else the last line took); inside a `range` the walk may go back to the loop body (the next
  iteration). Of several alike lines, the one whose next line matches the next output line wins
  (also past the output of its own actions), and a line whose whole text is the output line wins
  over one with actions in a block that may be skipped (`- name: storage` after an empty range of
  `- name: {{ .name }}`);
- a line the template text does not explain is output of the actions of the line before it (or of
  an action-only line) and is attributed to that action, `exact=False`; for `include`/`template` of
  a `define` in the chart (defines are global: every templates/ directory of the chart and its
  subcharts on disk) the define's body is aligned the same way and a match there is returned
  exactly, in the define's file; output a define's own actions wrote goes to the include line.
  A define included as `include "x" . | nindent N` (or `indent N`) writes its lines N spaces deeper
  than they are written: a define line matches only at that depth (without such a pipeline, at any);
- an output line as deep as an open action's block (`nindent N`) stays with the action unless the
  template goes on as the output does, so a common key (`- name:`) does not pull the cursor away;
  a key whose block ends where a later template line goes on (`resources: {{ toYaml ... }}`, then
  `nodeSelector:` two `if`s further) is that key's line, not output of an action-only line before it;
- literal text without a word (`{{ $key }}: {{ $value }}`, `- {{ . }}`) does not identify a line:
  such lines are matched as the output of their actions.

Bounded: template files over MAX_TEMPLATE_BYTES, or charts whose templates hold more than
MAX_CHART_LINES lines, map to None; each output line tries a bounded number of template lines and
look-aheads (found through indexes up to MAX_SPAN lines ahead, walked one by one up to
MAX_CANDIDATES). A packed subchart (charts/x.tgz) has no file on disk: its lines map to None. Each
chart's files are read and compiled once per process (at most _CACHED_CHARTS charts are kept) and
again when one of them changed: each call (map_documents: once for all its documents) stats the
chart's template files, ~0.5 ms for 270 files; a rewrite keeping mtime_ns, size and inode is not seen.
"""
from __future__ import annotations

import os
import re
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from typing import Mapping, Optional, Sequence, Union

from kaudit.sources.helm import RenderedDocument
from kaudit.value import value

MAX_TEMPLATE_BYTES = 1024 * 1024  # a bigger template file maps to None
MAX_CHART_LINES = 200_000  # lines over all the chart's templates: past it, everything maps to None
MAX_OUTPUT_LINES = 1_000_000
MAX_CANDIDATES = 256  # template lines (or output lines ahead) one search goes through line by line
MAX_SPAN = 4096  # template lines a search through the indexes may reach (a define of 1,700 lines)
MAX_INCLUDE_DEPTH = 8  # includes followed into defines that include defines
MAX_ALIKE = 8  # template lines matching one output line compared by what follows them
LOOKAHEADS_PER_LINE = 8  # such comparisons for the whole output, per output line
MAX_WILDCARDS = 16  # actions in one line's pattern; text after more is not compared
MAX_MATCHED_CHARS = 4096  # an output line longer than this is matched on its start only
MAX_FALLBACK_JUMP = 200  # lines the cursor may jump over when the alignment lost its way
_HEAD_KEY = 6  # characters of a line's literal start its index is keyed by
_CACHED_CHARTS = 32


@value
class SourceLine:
    file: str  # relative to the chart directory: the template, or the file holding the `define` that wrote it
    line: int  # 1-based
    exact: bool  # True: the template line's literal text produced this output line; False: attributed


# --- lexing ---------------------------------------------------------------------------------------

_WHITESPACE = " \t\r\n"


class _Text:
    __slots__ = ("text", "line")

    def __init__(self, text: str, line: int) -> None:
        self.text = text
        self.line = line  # of the text's first character


class _Action:
    __slots__ = ("body", "line", "trim_left", "trim_right")

    def __init__(self, body: str, line: int, trim_left: bool, trim_right: bool) -> None:
        self.body = body  # without delimiters and trim markers; _COMMENT for a comment
        self.line = line
        self.trim_left = trim_left
        self.trim_right = trim_right


_Piece = Union[_Text, _Action]
_COMMENT = "/*"
_ACTION_TOKEN = re.compile(r"[\"'`]|\}\}")
_QUOTED = {quote: re.compile(rf"{quote}(?:[^{quote}\\\n]|\\.)*{quote}") for quote in "\"'"}


def _lex(text: str) -> list[_Piece]:
    """Text and actions, with `{{-`/`-}}` trimming applied to the text around them."""
    pieces: list[_Piece] = []
    position, line, size = 0, 1, len(text)
    while position < size:
        start = text.find("{{", position)
        if start < 0:
            pieces.append(_Text(text[position:], line))
            break
        if start > position:
            pieces.append(_Text(text[position:start], line))
            line += text.count("\n", position, start)
        inner = start + 2
        trim_left = text.startswith("-", inner) and inner + 1 < size and text[inner + 1] in _WHITESPACE
        if trim_left:
            inner += 1
        end = _action_end(text, inner)
        if end < 0:  # unterminated: Helm would not render it either
            break
        close = end - 2
        trim_right = close >= 2 and text[close - 1] == "-" and text[close - 2] in _WHITESPACE
        body = text[inner:close - 1 if trim_right else close].strip()
        pieces.append(_Action(_COMMENT if body.startswith(_COMMENT) else body, line, trim_left, trim_right))
        line += text.count("\n", start, end)
        position = end
    return _trimmed(pieces)


def _action_end(text: str, inner: int) -> int:
    """The index just after the `}}` closing the action whose content starts at `inner`, or -1."""
    body = inner
    while body < len(text) and text[body] in _WHITESPACE:
        body += 1
    if text.startswith(_COMMENT, body):  # a comment may hold `}}` and quotes
        comment_end = text.find("*/", body + 2)
        if comment_end < 0:
            return -1
        close = text.find("}}", comment_end + 2)
        return -1 if close < 0 else close + 2
    index = inner
    while True:
        found = _ACTION_TOKEN.search(text, index)
        if found is None:
            return -1
        token = found.group()
        if token == "}}":
            return found.end()
        if token == "`":  # a raw string, may span lines
            closing = text.find("`", found.end())
            if closing < 0:
                return -1
            index = closing + 1
        else:  # an interpreted string or a character constant: one line, `\` escapes
            quoted = _QUOTED[token].match(text, found.start())
            if quoted is None:
                return -1
            index = quoted.end()


def _trimmed(pieces: list[_Piece]) -> list[_Piece]:
    for index, piece in enumerate(pieces):
        if not isinstance(piece, _Action):
            continue
        if piece.trim_left and index > 0:
            before = pieces[index - 1]
            if isinstance(before, _Text):
                before.text = before.text.rstrip(_WHITESPACE)
        if piece.trim_right and index + 1 < len(pieces):
            after = pieces[index + 1]
            if isinstance(after, _Text):
                stripped = after.text.lstrip(_WHITESPACE)
                after.line += after.text.count("\n", 0, len(after.text) - len(stripped))
                after.text = stripped
    return pieces


# --- effective lines --------------------------------------------------------------------------------

_KEYWORD = re.compile(r"(if|else|end|range|with|define|block|break|continue)\b")
_ASSIGNMENT = re.compile(r"\$\w*\s*(?:,\s*\$\w*\s*)?:?=(?!=)")
_DEFINE_NAME = re.compile(r"""(?:define|block)\s+(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)""")
_DEFINE_IN_TEXT = re.compile(r"""\{\{-?\s*define\s+(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)""")
_INCLUDE_NAME = re.compile(r"""\b(?:include|template)\s+(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)""")
_NINDENT = re.compile(r"\bnindent\b")
_INDENT_WIDTH = re.compile(r"\bn?indent\s+(\d{1,4})\b")
# `include "x" . | nindent 6`: every line of the define's output is indented by exactly 6 (the
# arguments without a pipe of their own: `[^|]*` cannot backtrack past the one `|`)
_PLAIN_INDENTED_INCLUDE = re.compile(
    r"""(?:include|template)\s+(?:"(?:[^"\\]|\\.)*"|`[^`]*`)[^|]*\|\s*n?indent\s+\d{1,4}""")
_BLOCK_OUTPUT = re.compile(r"\b(?:n?indent|toYaml|toJson|toPrettyJson|include|template|tpl)\b")
_WORD = re.compile(r"[^\W_]")
_SEPARATOR = re.compile(r"---[ \t]*(?:#.*)?")


class _Emitter:
    """An action whose output lands in the output: the line it starts on, the define it includes."""
    __slots__ = ("line", "define", "newline_first", "block", "indent", "plain")

    def __init__(self, action: _Action) -> None:
        self.line = action.line
        included = _INCLUDE_NAME.search(action.body)
        self.define = None if included is None else (included.group(1) or included.group(2) or "")
        self.newline_first = bool(_NINDENT.search(action.body))  # `nindent`: the define starts a line
        self.block = bool(_BLOCK_OUTPUT.search(action.body))  # likely to write several lines
        width = _INDENT_WIDTH.search(action.body)
        self.indent = int(width.group(1)) if width else None  # `indent N`/`nindent N`: its lines' indentation
        # the define's lines come out as written, `indent` spaces deeper
        self.plain = _PLAIN_INDENTED_INCLUDE.fullmatch(action.body) is not None


class _Fragment:
    __slots__ = ("text", "line", "blocks", "emitter")

    def __init__(self, text: str, line: int, blocks: tuple[int, ...], emitter: Optional[_Emitter]) -> None:
        self.text = text  # literal text, "" for an output action
        self.line = line
        self.blocks = blocks  # the block branches it sits in, outermost first
        self.emitter = emitter


class _Line:
    """One effective line: what a template writes between two literal newlines."""
    __slots__ = ("fragments", "line", "blocks", "strong", "weak", "indent", "emitters",
                 "head", "block_emitter", "required", "literal_first", "segments", "_flexible")

    def __init__(self, fragments: list[_Fragment], flexible: bool) -> None:
        self.fragments = fragments
        self._flexible = flexible  # a define's lines: the caller indents them (nindent/indent)
        self.emitters = tuple(fragment.emitter for fragment in fragments if fragment.emitter is not None)
        # text that says which line it is: with actions, `{{ $key }}: {{ $value }}` or `- {{ . }}` would
        # match nearly any line, so they are matched as the output of their actions
        literal = [fragment for fragment in fragments if fragment.emitter is None
                   and (_WORD.search(fragment.text) if self.emitters else fragment.text.strip())]
        # the action the lines after this one's first belong to: the first that writes blocks, else the last
        self.block_emitter = next((index for index, emitter in enumerate(self.emitters) if emitter.block),
                                  len(self.emitters) - 1)
        self.strong = bool(literal)  # literal text of its own: matched by content
        self.weak = not literal and bool(self.emitters)  # only actions: writes whatever they output
        anchor = literal[0] if literal else (fragments[0] if fragments else None)
        self.line = anchor.line if anchor else 0
        self.blocks: tuple[int, ...] = anchor.blocks if anchor else ()
        self.literal_first = bool(fragments) and fragments[0].emitter is None
        first = fragments[0].text if self.literal_first else ""
        self.indent = len(first) - len(first.lstrip(" "))
        # a YAML document separator is dropped when documents are split: not required either
        separator = len(literal) == 1 and _SEPARATOR.fullmatch(literal[0].text.strip()) is not None
        self.required = self.strong and not separator  # appears whenever its block runs
        self.segments = self._segments()
        self.head = self.segments[0]  # the literal text it starts with

    def matches(self, text: str) -> bool:
        """Whether `text` is this line's literal text with anything where its actions (and its optional
        text) are: a glob, matched left to right without backtracking."""
        if self._flexible:
            text = text.lstrip(" \t")
        segments = self.segments
        if len(segments) == 1:
            return text == segments[0]
        first, last = segments[0], segments[-1]
        if not text.startswith(first):
            return False
        end = len(text) - len(last)
        if len(text) > MAX_MATCHED_CHARS:  # its start only
            end = MAX_MATCHED_CHARS
        elif end < len(first) or not text.endswith(last):
            return False
        position = len(first)
        for segment in segments[1:-1]:
            found = text.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    def _segments(self) -> tuple[str, ...]:
        """The literal text between the wildcards: ("a: ", "") is `a: *`; one segment, no wildcard."""
        segments = [""]
        wildcard = False
        for index, fragment in enumerate(self.fragments):
            text = fragment.text
            if index == 0 and self._flexible:  # the caller indents a define's lines
                text = text.lstrip(" \t")
            # literal in a branch opened on this line (`a: {{ if x }}b{{ else }}c{{ end }}`) may be
            # absent; spaces after a block (`{{ include ... | nindent 4 }}  `) end its last line
            absent = fragment.blocks != self.blocks[:len(fragment.blocks)] or (wildcard and not text.strip())
            if fragment.emitter is None and not absent:
                segments[-1] += text
                wildcard = False
            elif not wildcard:
                if len(segments) > MAX_WILDCARDS:  # bounded: the rest matches anything
                    segments[-1] = ""
                    break
                segments.append("")
                wildcard = True
        return tuple(segments)


class _Program:
    """The effective lines of a template file's body or of one define, with their loop bodies."""

    def __init__(self, file: str, lines: list[_Line], ranges: dict[int, tuple[int, int]], chains: dict[int, int],
                 flexible: bool) -> None:
        self.file = file
        self.chains = chains  # branch id -> the id of the first branch of its if/else chain
        self.flexible = flexible  # a define: its caller indents it
        self.lines = lines
        self.ranges = ranges  # range body branch id -> (first, last) effective line index
        # indexes, so that an output line tries only the lines that can match it
        self.required_in: dict[tuple[int, ...], list[int]] = {}  # the required lines of each block
        self.strong_by_head: dict[str, list[int]] = {}  # by the start of their literal text
        self.strong_short: list[int] = []  # those whose text starts with an action
        self.weak: list[int] = []
        for index, line in enumerate(lines):
            if line.required:
                self.required_in.setdefault(line.blocks, []).append(index)
            if line.strong and line.head.strip():
                self.strong_by_head.setdefault(_head_key(line.head, flexible), []).append(index)
            elif line.strong:
                self.strong_short.append(index)
            elif line.weak:
                self.weak.append(index)

    def limit(self, start: int, blocks: tuple[int, ...]) -> int:
        """The last line a search from `start` may reach: the first that must appear if a line in
        `blocks` did (required, and in the same block or one around it), or the cap."""
        stop = min(len(self.lines) - 1, start + MAX_SPAN)
        for depth in range(len(blocks) + 1):
            indices = self.required_in.get(blocks[:depth])
            if indices:
                at = bisect_left(indices, start)
                if at < len(indices) and indices[at] < stop:
                    stop = indices[at]
        return stop

    def strong_candidates(self, text: str, start: int, stop: int) -> list[int]:
        """The strong lines in [start, stop] whose literal start `text` has, in order."""
        rest = text.lstrip(" \t")
        indent = "" if self.flexible else str(len(text) - len(rest))
        found: list[int] = []
        for length in range(1, _HEAD_KEY + 1):
            found += _between(self.strong_by_head.get(f"{indent}|{rest[:length]}", []), start, stop)
        found += _between(self.strong_short, start, stop)
        return sorted(found)

    def weak_candidates(self, start: int, stop: int) -> list[int]:
        return _between(self.weak, start, stop)


def _head_key(head: str, flexible: bool) -> str:
    """Indentation (unless a define's, which its caller indents) and up to _HEAD_KEY characters after it."""
    rest = head.lstrip(" \t")
    return f"{'' if flexible else len(head) - len(rest)}|{rest[:_HEAD_KEY]}"


def _between(indices: list[int], start: int, stop: int) -> list[int]:
    return indices[bisect_left(indices, start):bisect_right(indices, stop)]


# a block on the stack: (branch id, keyword, for a define its name and the fragments of its body)
_Frame = tuple[int, str, Optional[tuple[str, list[tuple[_Fragment, bool]]]]]


class _Builder:
    """Splits the pieces of one file into its main program and its defines."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.next_id = 0
        self.ranges: set[int] = set()
        self.chains: dict[int, int] = {}
        self.defines: dict[str, _Program] = {}

    def build(self, pieces: list[_Piece]) -> _Program:
        stack: list[_Frame] = []
        main: list[tuple[_Fragment, bool]] = []  # (fragment, ends its line)
        outputs = [main]
        blocks: tuple[int, ...] = ()  # of the stack, kept as it changes
        for piece in pieces:
            current = outputs[-1]
            if isinstance(piece, _Text):
                parts = piece.text.split("\n")
                for offset, part in enumerate(parts):
                    if offset:
                        current.append((_Fragment("", piece.line + offset, blocks, None), True))
                    if part:
                        current.append((_Fragment(part, piece.line + offset, blocks, None), False))
                continue
            body = piece.body
            if body == _COMMENT:
                continue
            keyword = _KEYWORD.match(body)
            word = keyword.group(1) if keyword else ""
            if word in ("if", "with", "range", "block", "define", "else", "end"):
                self._control(word, body, stack, outputs)
                blocks = self._blocks(stack)
                continue
            if word not in ("break", "continue") and not _ASSIGNMENT.match(body):  # those write nothing
                current.append((_Fragment("", piece.line, blocks, _Emitter(piece)), False))
        return self._program(main, flexible=False)

    def _control(self, word: str, body: str, stack: list[_Frame], outputs: list[list[tuple[_Fragment, bool]]]
                 ) -> None:
        """Opens, switches or closes a block; a define's body goes to its own program."""
        if word in ("if", "with", "range", "block"):
            stack.append((self._new_id(word == "range"), word, None))
        elif word == "define":
            named = _DEFINE_NAME.match(body)
            body_fragments: list[tuple[_Fragment, bool]] = []
            stack.append((self._new_id(False), word,
                           ((named.group(1) or named.group(2) or "") if named else "", body_fragments)))
            outputs.append(body_fragments)
        elif word == "else":
            if stack:
                branch, kind, define = stack.pop()
                stack.append((self._new_id(False, chain=self.chains[branch]), kind, define))
        elif word == "end":
            if stack:
                _, kind, define = stack.pop()
                if define is not None:
                    outputs.pop()
                    define_name, define_fragments = define
                    self.defines.setdefault(define_name, self._program(define_fragments, flexible=True))

    def _new_id(self, loop: bool, chain: Optional[int] = None) -> int:
        """A new block branch; `chain`: the first branch of the if/else chain it continues."""
        self.next_id += 1
        if loop:
            self.ranges.add(self.next_id)
        self.chains[self.next_id] = self.next_id if chain is None else chain
        return self.next_id

    @staticmethod
    def _blocks(stack: list[_Frame]) -> tuple[int, ...]:
        # relative to the innermost define: a define's body is its own program
        blocks: list[int] = []
        for branch, kind, _ in stack:
            blocks = [] if kind == "define" else blocks + [branch]
        return tuple(blocks)

    def _program(self, fragments: list[tuple[_Fragment, bool]], flexible: bool) -> _Program:
        lines: list[_Line] = []
        current: list[_Fragment] = []
        for fragment, ends_line in fragments:
            if ends_line:
                lines += [_Line(branch, flexible) for branch in _branches(current)]
                current = []
            else:
                current.append(fragment)
        lines += [_Line(branch, flexible) for branch in _branches(current)]
        ranges: dict[int, tuple[int, int]] = {}
        for index, line in enumerate(lines):
            for branch in line.blocks:
                if branch in self.ranges:
                    first, _ = ranges.get(branch, (index, index))
                    ranges[branch] = (first, index)
        return _Program(self.file, lines, ranges, self.chains, flexible)


def _branches(fragments: list[_Fragment]) -> list[list[_Fragment]]:
    """One effective line per branch when it writes in branches that exclude each other
    (`{{ template "a" . }}{{- else -}}\nkey: {{ .x }}`): each with the text shared with it."""
    def compatible(one: tuple[int, ...], other: tuple[int, ...]) -> bool:
        return one[:len(other)] == other or other[:len(one)] == one

    if all(fragment.blocks == fragments[0].blocks for fragment in fragments):
        return [fragments]
    groups: list[list[_Fragment]] = []
    left = [fragment for fragment in fragments if fragment.emitter is not None or fragment.text.strip()]
    while left and len(groups) < 16:
        anchor = next((fragment for fragment in left if fragment.emitter is None), left[0])
        groups.append([fragment for fragment in fragments if compatible(fragment.blocks, anchor.blocks)])
        left = [fragment for fragment in left if not compatible(fragment.blocks, anchor.blocks)]
    if not groups:
        return [fragments]
    order = {id(fragment): index for index, fragment in enumerate(fragments)}
    return sorted(groups, key=lambda group: order[id(next(f for f in group if f.emitter is not None
                                                           or f.text.strip()))])


# --- the chart: its files, read and compiled once -------------------------------------------------

class _Chart:
    """A chart's template files, each read and compiled once, on first use."""

    def __init__(self, chart_dir: str, files: list[str], signature: _Signature) -> None:
        self.chart_dir = chart_dir
        self.files = files  # its template files and its unpacked subcharts', found when it was loaded
        self.signature = signature  # (file, mtime_ns, size, inode) of each: a change means a new _Chart
        self._files: dict[str, tuple[Optional[_Program], dict[str, _Program]]] = {}
        self._define_files: Optional[dict[str, str]] = None  # define name -> the file Helm takes it from
        self.too_big = False
        self.lock = threading.Lock()

    def program(self, template: str) -> Optional[_Program]:
        return self._compiled(template)[0]

    def define(self, name: str) -> Optional[_Program]:
        file = self.index_defines().get(name)
        return None if file is None else self._compiled(file)[1].get(name)

    def index_defines(self) -> dict[str, str]:
        """Which file holds each define, found by a text search over every template of the chart and
        its subcharts: only the files an include needs are compiled."""
        if self._define_files is None:
            # Helm parses templates deepest path first, so a parent chart's define overrides a subchart's
            files = sorted(self.files, key=lambda file: (-file.count("/"), file))
            defines: dict[str, str] = {}
            total = 0
            for file in files:
                text = self._read(file) or ""
                total += text.count("\n")
                if total > MAX_CHART_LINES:
                    self.too_big = True
                    defines = {}
                    break
                for found in _DEFINE_IN_TEXT.finditer(text):
                    defines[found.group(1) or found.group(2) or ""] = file
            self._define_files = defines
        return self._define_files

    def _compiled(self, file: str) -> tuple[Optional[_Program], dict[str, _Program]]:
        if file not in self._files:
            text = self._read(file)
            if text is None:
                self._files[file] = (None, {})
            else:
                builder = _Builder(file)
                self._files[file] = (builder.build(_lex(text)), builder.defines)
        return self._files[file]

    def _read(self, file: str) -> Optional[str]:
        path = os.path.join(self.chart_dir, *file.split("/"))
        try:
            if os.path.getsize(path) > MAX_TEMPLATE_BYTES:
                return None
            with open(path, "rb") as stream:
                return stream.read(MAX_TEMPLATE_BYTES + 1).decode("utf-8", "replace")
        except OSError:  # a packed subchart's template, or gone
            return None


_Signature = tuple[tuple[str, int, int, int], ...]


def _scan(chart_dir: str) -> tuple[list[str], _Signature]:
    """The template files of the chart and of its unpacked subcharts (relative to `chart_dir`, each
    directory's files before its subdirectories), and what says one changed without reading it:
    its modification time, size and inode (a file replaced by a rename)."""
    files: list[str] = []
    signature: list[tuple[str, int, int, int]] = []
    pending = [""]
    while pending and len(files) < 10_000:
        chart = pending.pop()
        directories = [f"{chart}templates"]
        while directories:
            relative = directories.pop()
            try:
                entries = sorted(os.scandir(os.path.join(chart_dir, relative)), key=lambda entry: entry.name)
            except OSError:
                continue
            below: list[str] = []
            for entry in entries:
                try:
                    if entry.is_dir():
                        below.append(f"{relative}/{entry.name}")
                        continue
                    stat = entry.stat()
                except OSError:  # gone since the listing
                    continue
                files.append(f"{relative}/{entry.name}")
                signature.append((files[-1], stat.st_mtime_ns, stat.st_size, stat.st_ino))
            directories += reversed(below)
        try:
            subcharts = sorted(entry.name for entry in os.scandir(os.path.join(chart_dir, chart, "charts"))
                               if entry.is_dir())
        except OSError:
            subcharts = []
        pending += [f"{chart}charts/{name}/" for name in subcharts]
    return files, tuple(signature)


_charts: OrderedDict[str, _Chart] = OrderedDict()
_charts_lock = threading.Lock()


def _chart(chart_dir: str) -> _Chart:
    """The chart's compiled files, compiled again when one of its template files changed (stat only:
    a long-lived process sees a template edited between two scans)."""
    key = os.path.abspath(chart_dir)
    files, signature = _scan(chart_dir)
    with _charts_lock:
        chart = _charts.get(key)
        if chart is None or chart.signature != signature:
            chart = _charts[key] = _Chart(chart_dir, files, signature)
            while len(_charts) > _CACHED_CHARTS:
                _charts.popitem(last=False)
        _charts.move_to_end(key)
        return chart


# --- alignment ----------------------------------------------------------------------------------

class _Aligner:
    """Walks the output lines of one program (a template file, or a define where it is included)."""

    def __init__(self, program: _Program, chart: _Chart, output: Sequence[str], depth: int, start: int = 0,
                 fallback: bool = False, budget: Optional[list[int]] = None, indent: Optional[int] = None,
                 first_on_caller_line: bool = False) -> None:
        self.program = program
        # look-aheads left for the whole output, shared with the defines' aligners: past it, the
        # nearest line wins (bounded work on output made to defeat the alignment)
        self.budget = budget if budget is not None else [LOOKAHEADS_PER_LINE * len(output) + 1000]
        self.chart = chart
        self.output = output
        self.depth = depth
        self.fallback = fallback  # the top level may jump over lines when it lost its way
        self.cursor = start
        self.last: Optional[int] = None
        self.emitters: tuple[_Emitter, ...] = ()
        self.emitter_at = 0
        self.block_indent = 0
        self.shift = indent or 0  # a define's lines are indented by the caller: output indent - template indent
        # the shift when the caller says it (`include "x" . | nindent 6`): a define's line matches only
        # output as deep as it is written plus that, so `  - name: {{ .n }}` is not any list item
        self.fixed = indent
        self.first_on_caller_line = first_on_caller_line  # its first line follows the caller's text
        self.sub: Optional[_Aligner] = None
        self.sub_hits = 0

    def take(self, at: int) -> Optional[SourceLine]:
        """The source of output line `at` (0-based); lines are taken in order."""
        text = self.output[at]
        if not text.strip():
            return None
        indent = _indent(text) - self.shift
        inside = bool(self.emitters) and indent >= self.block_indent
        matched = self._match(at, inside)
        if matched is None and not inside:
            matched = self._starts(text)
        if matched is not None:
            line = self.program.lines[matched]
            if line.literal_first and self.fixed is None:  # a define's lines: indented by the caller
                self.shift += indent - line.indent
            return self._commit(matched, exact=True)
        weak = None if inside else self._weak(text)
        if weak is not None:
            self._commit(weak, exact=False)
            return self._delegate(at)
        # not the open action's output: the alignment took a wrong turn; the top level looks further
        jump = self._jump(text) if self.fallback and not inside else None
        if jump is not None:
            return self._commit(jump, exact=True)
        return self._delegate(at) if self.emitters else None

    def _starts(self, text: str) -> Optional[int]:
        """The next template line when `text` only starts as it does: `k: {{ .Values.x }} tail` where
        x holds line breaks (the lines after go to the action)."""
        index = self._first_strong()
        if index >= len(self.program.lines):
            return None
        line = self.program.lines[index]
        kinds = [fragment.emitter is not None for fragment in line.fragments
                 if fragment.emitter is not None or fragment.text.strip()]
        text_after_action = True in kinds and False in kinds[kinds.index(True):]
        if text_after_action and _WORD.search(line.head) and not self._fits(line, text) \
                and (text.lstrip(" \t") if self.program.flexible else text).startswith(line.head):
            return index
        return None

    def _blocks(self) -> tuple[int, ...]:
        return () if self.last is None else self.program.lines[self.last].blocks

    def _fits(self, line: _Line, text: str) -> bool:
        """Whether template line `line` can have written output line `text`: its text, and in a define
        whose caller indents it by a known width, at its own indentation plus that width."""
        if not line.matches(text):
            return False
        if self.fixed is None or not line.literal_first or (self.first_on_caller_line and self.last is None):
            return True
        return _indent(text) - self.fixed == line.indent

    def _first_strong(self) -> int:
        """The first strong line at/after the cursor that can follow the last line."""
        after = self._blocks()
        lines = self.program.lines
        for index in range(self.cursor, min(len(lines), self.cursor + MAX_CANDIDATES)):
            if lines[index].strong and not self._excluded(lines[index].blocks, after):
                return index
        return len(lines)

    def _excluded(self, blocks: tuple[int, ...], after: tuple[int, ...]) -> bool:
        """Whether a line in `blocks` cannot follow, in one pass, a line in `after`: it is in another
        branch of an if/else the latter took (`else` after the `if` branch ran)."""
        for mine, theirs in zip(blocks, after):
            if mine != theirs:
                return self.program.chains.get(mine) == self.program.chains.get(theirs)
        return False

    def _match(self, at: int, inside: bool) -> Optional[int]:
        """The template line for output line `at`: the nearest strong line that matches, within the loop
        bodies around the last line first, then back to their start (the next iteration), then
        further on; among several, the first whose next line matches the next output line."""
        program = self.program
        text = self.output[at]
        first_strong = self._first_strong()
        limit = self.program.limit(self.cursor, self._blocks())
        spans: list[tuple[int, int, bool]] = []  # the template lines to try, in order of preference
        scanned = self.cursor
        after = self._blocks()
        enclosing = [] if self.last is None else \
            [program.ranges[branch] for branch in reversed(program.lines[self.last].blocks) if branch in program.ranges]
        for first, last in enclosing:
            spans.append((scanned, min(last, limit), True))
            scanned = max(scanned, min(last, limit) + 1)
            if not inside:  # the next iteration: any branch again
                spans.append((first, min(self.cursor - 1, first + MAX_CANDIDATES), False))
        spans.append((scanned, limit, True))
        found: Optional[int] = None
        found_rank = (-1, 0)
        tried = 0
        # a line with actions that fits (`- name: {{ .name }}` in a range) is taken unless a line
        # after it, outside its block, is the output line's very text (`- name: storage`)
        with_actions: Optional[int] = None
        for start, stop, forward in spans:
            for index in program.strong_candidates(text, start, stop):
                line = program.lines[index]
                if not self._fits(line, text) or (forward and self._excluded(line.blocks, after)):
                    continue
                whole = len(line.segments) == 1  # the output line is its text
                if with_actions is not None:
                    before = program.lines[with_actions].blocks
                    if not whole or line.blocks[:len(before)] == before:
                        continue
                if inside and index != first_strong and not self._continues(index, at, 3)[0]:
                    # as deep as the open action's output: its output, unless the template goes on
                    # as the output does (`{{- include ... | nindent 6 }}` then keys at indent 6)
                    return found
                strength, skipped = self._continues(index, at)
                # the best of a few: the one the next output line follows whose next line comes
                # soonest; the output line's very text over a line with actions, unless they are
                # in exclusive branches (`namespace: default` {{ else }} `namespace: {{ ... }}`)
                rank = (strength, -skipped)
                if found is None:
                    better = True
                elif strength == found_rank[0] and whole != (len(program.lines[found].segments) == 1) \
                        and not self._excluded(line.blocks, program.lines[found].blocks):
                    better = whole
                else:
                    better = rank > found_rank
                if better:
                    found, found_rank = index, rank
                if strength == _FOLLOWS and skipped == 0:
                    if whole or not line.blocks or with_actions is not None:
                        return found
                    with_actions = index
                    tried = MAX_ALIKE - 2  # one more look, for the output line's very text
                    continue
                tried += 1
                if tried >= MAX_ALIKE:
                    return found
        if found is not None and not inside and found > self.cursor and found_rank[0] != _FOLLOWS \
                and any(self._fits(program.lines[index], text)
                        and not self._excluded(program.lines[index].blocks, after)
                        for index in program.weak_candidates(self.cursor, found - 1)):
            # an action-only line before it can have written this (the same labels as toYaml in one
            # branch, as literal text in the other): the literal lines do not go on as the output does
            return None
        return found

    def _continues(self, index: int, at: int, steps: int = 1) -> tuple[int, int]:
        """How well the `steps` output lines after `at` follow template line `index`: 0 they cannot,
        1 only as output of its actions, 2 as the template's next lines (or the end); and how many
        template lines the first step skips. So that of two lines alike (`- port: {{ ... }}` in two
        branches) the one whose next lines match is taken."""
        strength, skipped = _FOLLOWS, 0
        if self.budget[0] <= 0:
            return strength, skipped
        self.budget[0] -= 1
        for step in range(steps):
            follows, index_after, at_after = self._successor(index, at)
            if step == 0:
                strength, skipped = follows, (0 if index_after is None else index_after - index - 1)
            if follows == _CANNOT or index_after is None:
                return (_CANNOT if follows == _CANNOT else strength), skipped
            index, at = index_after, at_after
        return strength, skipped

    def _successor(self, index: int, at: int) -> tuple[int, Optional[int], int]:
        """(how the next output line follows template line `index`, the template line it matches
        when that says more, the next output line)."""
        following_at = next((later for later in range(at + 1, min(len(self.output), at + 8))
                             if self.output[later].strip()), None)
        line = self.program.lines[index]
        if following_at is None:
            return _FOLLOWS, None, 0  # the end of the output
        following = self.output[following_at]
        shift = _indent(self.output[at]) - line.indent if line.literal_first else self.shift
        # at the end of a define its caller goes on, less indented than the include
        caller = not self.program.flexible or _indent(following) < shift
        limit = self.program.limit(index + 1, line.blocks) if index + 1 < len(self.program.lines) else index
        lines = self.program.lines
        for later in self.program.strong_candidates(following, index + 1, limit):
            if not self._excluded(lines[later].blocks, line.blocks) and self._fits(lines[later], following):
                return _FOLLOWS, later, following_at
        successor = next((later for later in range(index + 1, min(limit, index + MAX_CANDIDATES) + 1)
                          if lines[later].strong and not self._excluded(lines[later].blocks, line.blocks)), None)
        weak = any(not self._excluded(lines[later].blocks, line.blocks)
                   for later in self.program.weak_candidates(index + 1, limit)[:MAX_CANDIDATES])
        block_indent = self._block_indent(line)
        if line.emitters and line.emitters[max(line.block_emitter, 0)].block \
                and _indent(following) - shift >= block_indent:
            # the output of its actions: does the next template line come after it?
            for later in range(following_at + 1, min(len(self.output), following_at + MAX_CANDIDATES)):
                text = self.output[later]
                if successor is not None and self._fits(self.program.lines[successor], text):
                    return _FOLLOWS, successor, later
                if text.strip() and _indent(text) - shift < block_indent:
                    # past the block: a template line after it, in a branch that can follow, writes
                    # this (`resources: {{ toYaml ... }}` then `nodeSelector:` two ifs further)
                    for after in self.program.strong_candidates(text, index + 1, limit):
                        candidate = lines[after]
                        if not self._excluded(candidate.blocks, line.blocks) and self._fits(candidate, text):
                            return _FOLLOWS, after, later
                    break
            return _EMITTED, None, 0
        if weak:
            return _EMITTED, None, 0  # the output of an action-only line after it
        if caller and (limit + 1 >= len(self.program.lines) and not self.program.lines[limit].required
                       or index + 1 >= len(self.program.lines)):
            return _FOLLOWS, None, 0
        for branch in line.blocks:  # the next iteration of a loop around it
            if branch in self.program.ranges:
                first, _ = self.program.ranges[branch]
                if any(self.program.lines[loop].strong and self._fits(self.program.lines[loop], following)
                       for loop in range(first, min(index, first + MAX_CANDIDATES) + 1)):
                    return _FOLLOWS, None, 0
        return _CANNOT, None, 0

    def _weak(self, text: str) -> Optional[int]:
        program = self.program
        after = self._blocks()
        for index in program.weak_candidates(self.cursor, self.program.limit(self.cursor, after)):
            line = program.lines[index]
            if self._fits(line, text) and not self._excluded(line.blocks, after):
                return index
        return None

    def _jump(self, text: str) -> Optional[int]:
        lines = self.program.lines
        for index in range(self.cursor, min(len(lines), self.cursor + MAX_FALLBACK_JUMP)):
            line = lines[index]
            if line.strong and len(line.head.strip()) >= 4 and self._fits(line, text):
                return index
        return None

    @staticmethod
    def _block_indent(line: _Line) -> int:
        """The least indentation of the lines the actions of `line` write after it."""
        if line.emitters and line.emitters[max(line.block_emitter, 0)].indent is not None:
            width = line.emitters[max(line.block_emitter, 0)].indent or 0
            return width if line.strong else line.indent + width
        return line.indent + 1 if line.strong else line.indent

    def _commit(self, index: int, exact: bool) -> SourceLine:
        line = self.program.lines[index]
        self.cursor = index + 1
        self.last = index
        self.emitters = line.emitters
        self.emitter_at = max(line.block_emitter, 0)
        self.block_indent = self._block_indent(line)
        self.sub = None
        self.sub_hits = 0
        return SourceLine(file=self.program.file, line=line.line, exact=exact)

    def _delegate(self, at: int) -> SourceLine:
        """Output line `at` is output of the open line's actions: a define's line when they include one."""
        while True:
            emitter = self.emitters[self.emitter_at]
            if emitter.define is not None and self.depth < MAX_INCLUDE_DEPTH:
                if self.sub is None:
                    define = self.chart.define(emitter.define)
                    if define is not None:
                        # the define's first line is written on this line unless `nindent` starts a new one
                        starts_here = emitter.newline_first or not self._last_was_strong()
                        # `include "x" . | nindent N` in a template, or in a define whose indentation is known
                        known = emitter.plain and emitter.indent is not None and \
                            (not self.program.flexible or self.fixed is not None)
                        self.sub = _Aligner(define, self.chart, self.output, self.depth + 1,
                                            start=0 if starts_here else 1, budget=self.budget,
                                            indent=(self.fixed or 0) + (emitter.indent or 0) if known else None,
                                            first_on_caller_line=not emitter.newline_first)
                if self.sub is not None:
                    found = self.sub.take(at)
                    if found is not None:
                        self.sub_hits += 1
                        # a define's own actions wrote it, not its text: the include line is the place to fix
                        return found if found.exact else SourceLine(self.program.file, emitter.line, False)
            if self.sub_hits and self.emitter_at + 1 < len(self.emitters):
                self.emitter_at += 1  # the include is done: the line's next action writes now
                self.sub = None
                self.sub_hits = 0
                continue
            return SourceLine(file=self.program.file, line=emitter.line, exact=False)

    def _last_was_strong(self) -> bool:
        return self.last is not None and self.program.lines[self.last].strong


_CANNOT, _EMITTED, _FOLLOWS = 0, 1, 2  # how an output line follows a template line


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


# --- public API -------------------------------------------------------------------------------------

def map_template_output(chart_dir: str, template: str, output: str) -> tuple[Optional[SourceLine], ...]:
    """For each line of `output` (the whole output of `template`; index 0 = output line 1) the template
    line that wrote it, or None when unknown."""
    lines = output.split("\n")
    if output.endswith("\n"):
        lines.pop()
    if len(lines) > MAX_OUTPUT_LINES:
        return (None,) * len(lines)
    return _mapped(_chart(chart_dir), template, lines)


def _mapped(chart: _Chart, template: str, lines: list[str]) -> tuple[Optional[SourceLine], ...]:
    with chart.lock:
        program = chart.program(template)
        if program is None:
            return (None,) * len(lines)
        chart.index_defines()  # bounded by MAX_CHART_LINES: a chart over it maps to nothing
        if chart.too_big:
            return (None,) * len(lines)
        aligner = _Aligner(program, chart, lines, depth=0, fallback=True)
        return tuple(aligner.take(at) for at in range(len(lines)))


def map_documents(chart_dir: str, documents: Sequence[RenderedDocument],
                  outputs: Optional[Mapping[str, str]] = None) -> tuple[tuple[Optional[SourceLine], ...], ...]:
    """For each document, for each line of its `text` (index 0 = line 1), the template line that wrote it.

    `outputs`: each template's whole output by `source` (HelmRender.outputs). A template missing
    there is put back together from its documents at their offsets, the lines between them blank."""
    rebuilt: dict[str, list[str]] = {}
    for document in documents:
        if outputs is not None and document.source in outputs:
            continue
        output = rebuilt.setdefault(document.source or document.template, [])
        text_lines = _lines(document.text)
        output += [""] * (document.offset + len(text_lines) - len(output))
        output[document.offset:document.offset + len(text_lines)] = text_lines
    chart = _chart(chart_dir)  # its files looked at once for all the documents
    mapped: dict[str, tuple[Optional[SourceLine], ...]] = {}
    for document in documents:
        source = document.source or document.template
        if source not in mapped:
            lines = _lines(outputs[source]) if outputs is not None and source in outputs else rebuilt[source]
            mapped[source] = (None,) * len(lines) if len(lines) > MAX_OUTPUT_LINES else \
                _mapped(chart, document.template, lines)
    return tuple(mapped[document.source or document.template][
        document.offset:document.offset + len(_lines(document.text))] for document in documents)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines
