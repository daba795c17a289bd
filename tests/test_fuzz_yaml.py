"""Fuzzing the YAML front door: `parse_documents` and `load_manifests` on arbitrary text and bytes.

Whatever a file holds (YAML-ish token soup, anchors and aliases, brackets, tabs, BOMs, control
characters, explicit tags, nesting up to ~1000 levels, random bytes in any encoding) the loader must:
  - never raise and never hang (every example well under 2 s);
  - account for every part of the text: parse_documents yields only Documents and Problems (with
    plausible lines), load_manifests reports the file (files == 1) and every document it parsed;
  - keep going after a broken document: the documents after the next `---` are still read.

KAUDIT_FUZZ_EXAMPLES sets max_examples of the main fuzz target, the others run half as many
(default 3500: ~25 s for the file; CI can lower it, a nightly job raise it).
Every crash or violation the fuzzer found is pinned below as a literal regression case
(RAISING, RESUMES and the test_regression_* tests).
"""
from __future__ import annotations

import codecs
import os
import re
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from kaudit.sources.manifests import load_manifests
from kaudit.sources.yamldoc import MAX_PROBLEMS_PER_FILE, Document, Problem, parse_documents

EXAMPLES = int(os.environ.get("KAUDIT_FUZZ_EXAMPLES", "3500"))
TIME_LIMIT = 2.0  # seconds per example
HANG_LIMIT = 20  # seconds: a hung example fails the test instead of hanging CI


def fuzz_settings(weight: float = 1.0) -> settings:
    return settings(max_examples=max(1, int(EXAMPLES * weight)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


@contextmanager
def bounded(what: str) -> Iterator[None]:
    """Fail (not hang) when `what` runs longer than HANG_LIMIT; check it stayed under TIME_LIMIT."""
    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} still running after {HANG_LIMIT} s (hang)")

    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, alarm) if usable else None
    if previous is not None:
        signal.alarm(HANG_LIMIT)
    start = time.perf_counter()
    try:
        yield
    finally:
        if previous is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"{what} took {elapsed:.2f} s"


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

STRUCTURE = [
    "a", "b", "key", "apiVersion", "kind", "metadata", "name", "spec", "containers", "image", "1", "0x1F", "1e400",
    ".inf", ".nan", "~", "null", "yes", "no", "on", "2001-12-14", "=", "<<", "-1", "0o7", "1_000",
    ":", ": ", " ", "  ", "\n", "\n  ", "\n    ", "- ", "-", "? ", "?", ",", "[", "]", "{", "}", "[]", "{}",
    "&a ", "&b ", "*a", "*b", "&a", "*", "&", "<<: *a", "!", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ",
    "!!map ", "!!seq ", "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!python/object/apply:os.system ",
    "!custom ", "!<tag:yaml.org,2002:int> ", "'", "''", '"', '\\"', "\\", "|", "|-", ">", ">+", "#", " # c",
    "\t", "\r", "\r\n", "\ufeff", "\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ufffe",
    "\ud7ff", "é", "名", "😀", "{{ .Values.x }}", "{{-", "}}", "%",
]
MARKERS = ["---", "--- ", "---\n", "\n---\n", "...", "\n...\n", "%YAML 1.1\n", "%YAML 1.2\n", "%TAG ! tag:x,2000:\n",
           "%FOO bar\n"]
MANIFEST = (
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: team\n  labels: {app: web}\nspec:\n"
    "  securityContext:\n    runAsNonRoot: true\n  containers:\n    - name: app\n      image: nginx:1.25\n"
    "      ports: [{containerPort: 80}]\n      env:\n        - name: A\n          value: \"x\"\n"
)
MANIFESTS = [
    MANIFEST,
    MANIFEST + "---\n" + MANIFEST.replace("name: p", "name: q"),
    "apiVersion: v1\nkind: List\nitems:\n  - " + MANIFEST.replace("\n", "\n    ").rstrip() + "\n",
    '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}\n',
    "base: &base {image: nginx, name: app}\nmerged:\n  <<: *base\n  name: other\n",
]


@st.composite
def nesting(draw: st.DrawFn) -> str:
    depth = draw(st.integers(0, 1000))
    style = draw(st.sampled_from(["flow-seq", "flow-map", "flow-pair", "block-map", "block-seq", "compact", "keys",
                                  "unbalanced", "alias"]))
    if style == "flow-seq":
        return "[" * depth + draw(st.sampled_from(["", "1", "*a", "&a x"])) + "]" * depth
    if style == "flow-map":
        return "{a: " * depth + "1" + "}" * depth
    if style == "flow-pair":  # an implicit single-pair mapping per bracket: two levels per bracket
        return "[a: " * depth + "1" + "]" * depth
    if style == "block-map":
        return "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "a: 1\n"
    if style == "block-seq":
        return "".join(" " * i + "-\n" for i in range(depth)) + " " * depth + "- 1\n"
    if style == "compact":
        return "- " * depth + "x\n"
    if style == "keys":
        return "? " * depth + "x\n"
    if style == "unbalanced":
        return draw(st.sampled_from(["[", "{", "[a: ", "- [", "{a: ["])) * depth
    inner = "[" * min(depth, 150) + "1" + "]" * min(depth, 150)
    return f"a: &a {inner}\nb: " + "[" * (depth // 4) + "*a" + "]" * (depth // 4) + "\n"


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    width, levels = draw(st.integers(1, 12)), draw(st.integers(1, 9))
    lines = ["a0: &a0 [" + ",".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@st.composite
def mutated_manifest(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(MANIFESTS))
    for _ in range(draw(st.integers(1, 6))):
        if not text:
            break
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "delete", "duplicate", "replace"]))
        if how == "insert":
            text = text[:at] + draw(st.sampled_from(STRUCTURE + MARKERS)) + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        elif how == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 60)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            text = text[:at] + draw(st.characters()) + text[at + 1:]
    return text


CORE_TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!str", "!!binary", "!!timestamp", "!!merge", "!!value",
             "!<tag:yaml.org,2002:int>", "!<tag:yaml.org,2002:bool>", "!!map", "!!seq"]
tagged_scalar = st.builds(
    lambda key, tag, value: f"{key}: {tag} {value}\n",
    st.sampled_from(["a", "runAsUser", "hostNetwork", "<<"]), st.sampled_from(CORE_TAGS),
    st.text(alphabet="0123456789abcdefxob._:-+ ~", max_size=8) | st.sampled_from(["", "''", "[1]", "{a: 1}"]),
)
soup = st.lists(st.sampled_from(STRUCTURE + MARKERS) | st.text(max_size=4), max_size=60).map("".join)
yaml_texts = st.one_of(
    soup, soup, mutated_manifest(), mutated_manifest(), nesting(), alias_bomb(),
    st.lists(tagged_scalar, min_size=1, max_size=3).map("".join),
    st.text(max_size=200),
    st.lists(soup | mutated_manifest() | nesting(), min_size=2, max_size=4).map("\n---\n".join),
)

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]


@st.composite
def encoded(draw: st.DrawFn) -> bytes:
    text = draw(yaml_texts)
    encoding = draw(st.sampled_from(ENCODINGS))
    data = text.encode(encoding, errors="surrogatepass" if "utf" in encoding else "replace")
    if draw(st.booleans()):
        bom = draw(st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"\0", b"\xff", b""]))
        data = bom + data
    return data


file_bytes = st.one_of(encoded(), encoded(), st.binary(max_size=400),
                       st.lists(st.binary(max_size=8) | st.sampled_from([b"---\n", b"\r\n", b"a: 1\n", b"\xc3"]),
                                max_size=40).map(b"".join))


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def line_count(text: str) -> int:
    """Lines as YAML counts them (every YAML line break, not just \\n), plus the line after the last."""
    return len(_LINE_BREAKS.findall(text)) + 1


def parse(text: str) -> list[Document | Problem]:
    with bounded("parse_documents"):
        results = list(parse_documents(text))
    # libyaml puts the end of a stream that lacks a final newline on the line after it (an empty
    # document after a final `---`, an error at the end of the text): one line of slack
    lines = line_count(text) + 1
    for result in results:
        assert isinstance(result, (Document, Problem)), f"parse_documents yielded {type(result).__name__}"
        if isinstance(result, Document):
            assert 1 <= result.line <= lines and result.column >= 1, (result.line, result.column, lines)
            assert all(isinstance(w, Problem) and w.line is not None and 1 <= w.line <= lines for w in result.warnings)
        else:
            assert isinstance(result.message, str) and result.message
            assert result.line is None or 1 <= result.line <= lines, (result.line, lines, result.message)
    assert sum(isinstance(r, Problem) for r in results) <= MAX_PROBLEMS_PER_FILE + 1
    return results


_NOTHING = re.compile(r"^(?:[ \t]*(?:#.*)?|---[ \t]*(?:#.*)?|\.\.\.[ \t]*(?:#.*)?)$")


def has_content(text: str) -> bool:
    """Anything but blank lines, comments and bare document markers (which hold no document)."""
    return any(not _NOTHING.match(line) for line in _LINE_BREAKS.split(text.lstrip("\ufeff")))


def load(data: bytes, name: str = "fuzz.yaml") -> Any:
    with tempfile.TemporaryDirectory(prefix="kaudit-fuzz-") as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        with bounded("load_manifests"):
            scan = load_manifests([str(path)])
    inputs = scan.inputs
    assert inputs.files == 1
    assert inputs.resources == len(scan.resources)
    for entry in (*inputs.errors, *inputs.skipped, *inputs.warnings):
        assert entry.file == str(path) or entry.file.endswith(name)
        assert entry.line is None or entry.line >= 1
    return scan


# --------------------------------------------------------------------------------------------
# Fuzz targets
# --------------------------------------------------------------------------------------------

@fuzz_settings()
@given(yaml_texts)
def test_parse_documents_never_raises_and_accounts_for_the_text(text: str) -> None:
    note(repr(text[:2000]))
    results = parse(text)
    if has_content(text):
        assert results, "text with content produced neither a document nor a problem"


def decoded(data: bytes) -> str | None:
    """The text kaudit should see in `data` (UTF-8, or UTF-32 or UTF-16 with a BOM), or None for binary."""
    for boms, encoding in (((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE), "utf-32"),
                           ((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "utf-16")):
        if data.startswith(boms):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@fuzz_settings(0.5)
@given(file_bytes)
@example(codecs.BOM_UTF32_LE)
@example(codecs.BOM_UTF32_LE + "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n".encode("utf-32-le"))
def test_load_manifests_never_raises_and_accounts_for_the_file(data: bytes) -> None:
    note(repr(data[:2000]))
    scan = load(data)
    inputs = scan.inputs
    text = decoded(data)
    if text is None:  # binary: one error, nothing scanned
        assert len(inputs.errors) == 1 and inputs.documents == 0, inputs
        return
    if not text.strip():
        assert [s.reason for s in inputs.skipped] == ["empty file"], inputs
        return
    results = list(parse_documents(text))
    # every document is counted and every unparseable stretch is an error ...
    assert inputs.documents == sum(isinstance(r, Document) for r in results)
    assert len(inputs.errors) >= sum(isinstance(r, Problem) for r in results)
    # ... and every document became a resource (List items singly), was skipped with a reason, or is an error
    empty_lists = sum(1 for r in results if isinstance(r, Document) and isinstance(r.data, dict)
                      and isinstance(r.data.get("kind"), str) and r.data["kind"].endswith("List")
                      and r.data.get("items") == [])
    accounted = inputs.resources + len(inputs.skipped) + len(inputs.errors)
    assert accounted >= inputs.documents - empty_lists, inputs


@st.composite
def broken_stream(draw: st.DrawFn) -> tuple[str, list[int]]:
    """Documents separated by `---`, some valid (`k<i>: v<i>`), some junk; returns the text and the
    indexes of the valid ones. Junk holds no document markers or directives, so `---` lines are
    exactly the separators."""
    junk_tokens = [t for t in STRUCTURE if t not in ("\r", "\r\n", "\x85", "\u2028", "\u2029", "%")]
    junk = st.lists(st.sampled_from(junk_tokens), min_size=1, max_size=15).map("".join).filter(
        lambda s: not re.search(r"(^|\n)(---|\.\.\.|%)", s))
    segments = draw(st.lists(st.booleans(), min_size=2, max_size=8))
    parts, valid = [], []
    for index, ok in enumerate(segments):
        if ok:
            parts.append(f"k{index}: v{index}")
            valid.append(index)
        else:
            parts.append(draw(junk | tagged_scalar.map(str.rstrip)))
    text = "---\n" + "\n---\n".join(parts) + "\n"
    if draw(st.booleans()):
        text = text[4:]  # no separator before the first document
    if draw(st.sampled_from([False, False, True])):
        text = text.replace("\n", "\r\n")  # a file written on Windows
    return text, valid


@fuzz_settings(0.5)
@given(broken_stream())
def test_documents_after_a_broken_one_are_still_read(stream: tuple[str, list[int]]) -> None:
    text, valid = stream
    note(repr(text))
    results = parse(text)
    found = [r.data for r in results if isinstance(r, Document)]
    for index in valid:
        assert {f"k{index}": f"v{index}"} in found, f"document {index} was lost: {results}"


# --------------------------------------------------------------------------------------------
# Regressions: every crash or violation the fuzzer found, as a literal input
# --------------------------------------------------------------------------------------------

# Inputs that made parse_documents / load_manifests raise. Explicit core-schema tags make the
# scalar constructor run on any text: `!!int abc` raised ValueError, `!!bool maybe` KeyError, an
# empty `!!int` IndexError — out of parse_documents and load_manifests, so one bad value aborted the
# whole scan ("kaudit: internal error").
RAISING = [
    "a: !!int abc\n",
    "a: !!int \n",
    "a: !!int 0x\n",
    "a: !!int 0b\n",
    "a: !!int 0o\n",
    "a: !!float abc\n",
    "a: !!float 1:2:x\n",
    "a: !!bool maybe\n",
    "a: !<tag:yaml.org,2002:int> 12x\n",
    pytest.param("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: !!bool maybe\n"
                 "  containers: [{name: a, image: x}]\n", id="pod with hostNetwork: !!bool maybe"),
]


@pytest.mark.parametrize("text", RAISING)
def test_regression_explicit_tags_with_invalid_values_do_not_raise(text: str) -> None:
    results = parse(text)
    assert len(results) == 1
    scan = load(text.encode())
    assert scan.inputs.documents + len(scan.inputs.errors) >= 1


def test_regression_a_bad_tagged_value_does_not_lose_the_other_documents() -> None:
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    scan = load(f"{good}---\na: !!int abc\n---\n{good.replace('name: c', 'name: d')}".encode())
    assert sorted(r.name for r in scan.resources) == ["c", "d"]
    assert len(scan.inputs.errors) == 1 and scan.inputs.errors[0].line == 5


# Syntax errors must end one document, not the file: parsing resumes at the next `---`.
RESUMES = {
    # CRLF line endings: `^---$` never matched `---\r`, so every document after a broken one was lost
    "crlf": ("a: 1\r\n---\r\nbad: [\r\n---\r\nk: v\r\n", [{"a": 1}, {"k": "v"}]),
    # old-Mac CR line endings (YAML line breaks too)
    "cr": ("a: 1\r---\rbad: [\r---\rk: v\r", [{"a": 1}, {"k": "v"}]),
    # a control character is a reader error: it dropped the whole file (good documents before and
    # after it too) as one problem without a line
    "control character": ("a: 1\n---\nb: \x07\n---\nc: 3\n", [{"a": 1}, {"c": 3}]),
    "non-character": ("a: 1\n---\nb: \ufffe\n---\nc: 3\n", [{"a": 1}, {"c": 3}]),
    # the error is found after the document's root node was built (content after it, two tags):
    # the resume point took the NEXT `---` as the broken document's start and skipped `k: v`
    "content after the root node": ("a: 1\n---\n[] x\n---\nk: v\n", [{"a": 1}, {"k": "v"}]),
    "two tags": ("a: 1\n---\n!!str !!str x\n---\nk: v\n", [{"a": 1}, {"k": "v"}]),
    # a comment before `---` goes with the next document: one holding a NUL made libyaml refuse it too
    "control character in a comment": ("#\x00\n---\nk: v\n", [{"k": "v"}]),
}


@pytest.mark.parametrize("text, documents", RESUMES.values(), ids=list(RESUMES))
def test_regression_parsing_resumes_after_a_broken_document(text: str, documents: list[Any]) -> None:
    results = parse(text)
    found = iter([r.data for r in results if isinstance(r, Document)])
    assert all(document in found for document in documents), results  # all of them, in order
    problems = [r for r in results if isinstance(r, Problem)]
    assert len(problems) == 1 and problems[0].line is not None


def test_regression_whitespace_libyaml_refuses_before_a_document_loses_nothing() -> None:
    # A tab-indented blank line or comment before `---` went with the next document, and libyaml,
    # which refuses a tab there, refused the document too: `k1: v1` was lost (found by the fuzzer).
    for text in ("\t\n---\nk1: v1\n---\na\n", "\t# note\n---\nk1: v1\n", "a: 1\n---\n \t\n---\nk1: v1\n"):
        results = parse(text)
        assert {"k1": "v1"} in [r.data for r in results if isinstance(r, Document)], (text, results)
    # directives still go with their document
    assert [r.data for r in parse("%YAML 1.1\n---\nk: v\n")] == [{"k": "v"}]


def test_regression_a_broken_first_document_is_reported_once() -> None:
    # A blank line (or comment) before the first `---`: the broken document was parsed twice and
    # its error reported twice.
    for text in ("\n---\nbad: [\n---\nk: v\n", "# header\n---\nbad: [\n---\nk: v\n"):
        results = parse(text)
        assert [type(r).__name__ for r in results] == ["Problem", "Document"], (text, results)
        assert results[1].data == {"k": "v"}


def test_regression_document_end_marker_then_broken_document() -> None:
    # `...` ends a document; the broken one after it is not preceded by `---`: the resume point
    # skipped to the separator after the NEXT document, losing `k: v`.
    results = parse("a: 1\n...\nbad: [\n---\nk: v\n")
    assert [r.data for r in results if isinstance(r, Document)] == [{"a": 1}, {"k": "v"}]


def test_regression_deep_nesting_of_every_kind_is_refused_or_parsed_without_crashing() -> None:
    # The C composer recurses on the C stack; these must never reach it unguarded.
    for text in ("[" * 1000 + "]" * 1000, "[a: " * 1000 + "1" + "]" * 1000, "{a: " * 1000 + "1" + "}" * 1000,
                 "- " * 1000 + "x\n", "? " * 1000 + "x\n", "[" * 100_000,
                 "".join(" " * i + "a:\n" for i in range(1000))):
        results = parse(text)
        assert results and all(isinstance(r, (Document, Problem)) for r in results)
