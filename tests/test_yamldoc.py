from __future__ import annotations

import pytest

from kaudit.sources.yamldoc import (MAX_DEPTH, TOO_DEEP, Document, Problem, YamlMap, deepest_position, parse_documents,
                                    position_of)


def parse(text: str) -> list[Document | Problem]:
    return list(parse_documents(text))


def test_positions_of_keys_and_items_are_one_based_line_and_column() -> None:
    [doc] = parse("a: 1\nlist:\n  - x\n  - {y: 2}\n")
    assert isinstance(doc, Document) and isinstance(doc.data, YamlMap)
    assert [position_of(doc.data, k) for k in ("a", "list")] == [(1, 1), (2, 1)]
    assert [position_of(doc.data["list"], i) for i in (0, 1)] == [(3, 5), (4, 5)]
    assert deepest_position(doc.data, ("list", 1, "y")) == (4, 6)
    assert deepest_position(doc.data, ("list", 1, "missing", "deeper")) == (4, 5)


def test_yaml_1_1_scalars_resolve_like_kubernetes_tooling() -> None:
    [doc] = parse("on: yes\noctal: 010\nquoted: '010'\nnothing: ~\nf: 1.5\nkey1: 1\n")
    assert doc.data == {"on": True, "octal": 8, "quoted": "010", "nothing": None, "f": 1.5, "key1": 1}


def test_keys_stay_strings_whatever_they_look_like() -> None:
    [doc] = parse("1: a\ntrue: b\n")
    assert doc.data == {"1": "a", "true": "b"}


def test_merge_keys_explicit_keys_win_and_first_merged_wins() -> None:
    text = "base: &b {x: 1, y: 1}\nother: &o {y: 2, z: 2}\nobj:\n  <<: [*b, *o]\n  x: 9\n"
    [doc] = parse(text)
    assert doc.data["obj"] == {"x": 9, "y": 1, "z": 2}


def test_aliases_are_copied_not_shared() -> None:
    [doc] = parse("a: &a {k: [1]}\nb: *a\n")
    assert doc.data["a"] == doc.data["b"] and doc.data["a"] is not doc.data["b"]


def test_duplicate_keys_keep_the_last_value_and_warn() -> None:
    [doc] = parse("privileged: false\nprivileged: true\n")
    assert doc.data == {"privileged": True}
    assert doc.warnings == (Problem(2, "duplicate key 'privileged', the last value is used"),)


def test_syntax_error_ends_one_document_and_parsing_resumes() -> None:
    text = "a: 1\n---\nbad: [unclosed\n---\nk: v\n---\nx: \"open\n---\ny: 1\n"
    results = parse(text)
    assert [type(r).__name__ for r in results] == ["Document", "Problem", "Document", "Problem", "Document"]
    assert results[2].data == {"k": "v"} and results[2].line == 5
    assert results[4].data == {"y": 1} and results[4].line == 9
    assert results[1].line == 4 and "invalid YAML" in results[1].message


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(8):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    [problem] = parse("\n".join(lines) + "\n")
    assert isinstance(problem, Problem)
    assert "alias bomb" in problem.message


def test_recursive_alias_is_refused() -> None:
    [problem] = parse("a: &a [*a]\n")
    assert isinstance(problem, Problem) and "recursive" in problem.message


def test_deep_flow_nesting_does_not_crash_the_c_composer() -> None:
    # 100k levels segfault PyYAML's C composer; the guard must refuse before composing.
    [problem] = parse("[" * 100_000 + "]" * 100_000)
    assert problem == Problem(1, TOO_DEEP)


# libyaml 0.2.6 (PyYAML 6.0.4's wheels) refuses 1000 levels itself, in its own words, while it scans a
# long line ahead; older libyaml lets kaudit's guard stop at MAX_DEPTH + 1. Either way kaudit must say
# the same thing about the same line: the one where level MAX_DEPTH + 1 opens.
@pytest.mark.parametrize("levels_on_own_lines, levels_on_one_line", [(0, 300), (0, 5000), (150, 5000), (199, 100_000)])
def test_too_deep_flow_reads_the_same_whoever_refuses_it(levels_on_own_lines: int, levels_on_one_line: int) -> None:
    levels = levels_on_own_lines + levels_on_one_line
    text = ("kind: ConfigMap\ndata:\n" + "  [\n" * levels_on_own_lines + "  " + "[" * levels_on_one_line
            + "]" * levels + "\n---\nkind: Pod\n")
    problem, after = parse(text)
    assert problem == Problem(3 + levels_on_own_lines, TOO_DEEP)
    assert isinstance(after, Document) and after.data == {"kind": "Pod"}


def test_deep_block_nesting_is_refused_with_its_line() -> None:
    text = "".join(" " * i + "a:\n" for i in range(MAX_DEPTH + 50)) + " " * (MAX_DEPTH + 50) + "a: 1\n"
    [problem] = parse(text)
    assert problem == Problem(MAX_DEPTH + 1, TOO_DEEP)


def test_aliases_cannot_be_used_to_exceed_the_depth_limit() -> None:
    inner = "[" * 150 + "1" + "]" * 150
    text = f"a: &a {inner}\nb: " + "[" * 100 + "*a" + "]" * 100 + "\n"
    [problem] = parse(text)
    assert problem == Problem(2, TOO_DEEP)


def test_moderate_nesting_within_the_limit_parses() -> None:
    depth = MAX_DEPTH - 5
    [doc] = parse("[" * depth + "1" + "]" * depth)
    assert isinstance(doc, Document)


def test_custom_tags_are_never_constructed() -> None:
    [doc] = parse("a: !!python/object/apply:os.system ['echo hi']\nb: !custom 5\n")
    # the python tag is a sequence node here; nothing is executed and values stay data
    assert doc.data["b"] == "5"
    assert doc.data["a"] == ["echo hi"]


# Plain scalars as Kubernetes reads them (sigs.k8s.io/yaml -> go-yaml v2's resolver), not PyYAML's
# YAML 1.1 table: the cluster runs what go-yaml decodes.
GO_YAML_SCALARS = [
    ("y", True), ("Y", True), ("yes", True), ("ON", True), ("n", False), ("Off", False), ("NO", False),
    ("~", None), ("null", None), ("", None), ("Null", None),
    ("0", 0), ("00", 0), ("0o0", 0), ("0x0", 0), ("0_0", 0), ("0b0", 0), ("-0", 0), ("+0", 0),
    ("017", 15), ("0o17", 15), ("0O17", 15), ("0x1F", 31), ("-0x1F", -31), ("0b101", 5), ("1_000", 1000),
    ("9223372036854775807", 2**63 - 1), ("18446744073709551615", 2**64 - 1),
    ("08", 8.0), ("1e3", 1000.0), ("1.5", 1.5), (".5", 0.5), ("-1.", -1.0), ("+.inf", float("inf")),
    ("1:30", "1:30"), ("2001-12-14", "2001-12-14"), ("0x", "0x"), ("1e400", "1e400"), (".e1", ".e1"),
    ("true1", "true1"), ("=", "="), ("-18446744073709551615", -1.8446744073709552e19), ("1_a", "1_a"),
]


@pytest.mark.parametrize("text, value", GO_YAML_SCALARS, ids=[repr(t) for t, _ in GO_YAML_SCALARS])
def test_plain_scalars_resolve_like_go_yaml_v2(text: str, value: object) -> None:
    [doc] = parse(f"v: {text}\n")
    assert doc.data["v"] == value and type(doc.data["v"]) is type(value), doc.data


def test_quoted_scalars_stay_text() -> None:
    [doc] = parse("a: 'true'\nb: \"0\"\nc: 'y'\n")
    assert doc.data == {"a": "true", "b": "0", "c": "y"}


def test_duplicate_key_warnings_carry_the_key_line() -> None:
    [doc] = parse("kind: Pod\nspec:\n  a: 1\n  b: 2\n  a: 3\n")
    assert doc.warnings == (Problem(5, "duplicate key 'a', the last value is used"),)


def test_unicode_line_separators_do_not_shift_later_lines() -> None:
    # libyaml counts U+0085 / U+2028 / U+2029 as line breaks; editors, and kaudit, do not
    text = "a: \"x\u2028y\u2029z\x85w\"\nb: {c: \"\u2028\", d: 1}\ne: 2\n"
    [doc] = parse(text)
    assert position_of(doc.data, "b") == (2, 1) and position_of(doc.data, "e") == (3, 1)
    assert position_of(doc.data["b"], "d") == (2, 13)


def test_carriage_return_line_ends_count_as_lines() -> None:
    [first, second] = parse("a: 1\r---\rb: 2\r")
    assert (second.line, position_of(second.data, "b")) == (3, (3, 1))


def test_a_document_after_an_end_marker_keeps_its_columns() -> None:
    results = parse("a: 1\n... \nb: 2\n")
    assert [r.data for r in results] == [{"a": 1}, {"b": 2}]
    assert position_of(results[1].data, "b") == (3, 1)


def test_directives_go_with_the_document_they_precede() -> None:
    results = parse("a: 1\n...\n%YAML 1.1\n---\nb: 2\n")
    assert [r.data for r in results] == [{"a": 1}, {"b": 2}]


def test_every_broken_document_is_a_problem_and_the_rest_still_parse() -> None:
    from kaudit.sources.yamldoc import MAX_PROBLEMS_PER_FILE
    text = "".join(f"---\nbad{i}: [\n" for i in range(MAX_PROBLEMS_PER_FILE + 20)) + "---\nk: v\n"
    results = parse(text)
    problems = [r for r in results if isinstance(r, Problem)]
    assert len(problems) == MAX_PROBLEMS_PER_FILE + 1
    assert problems[-1].message.startswith("20 more unparseable document(s)")
    assert problems[-1].line == 2 * MAX_PROBLEMS_PER_FILE + 2 or problems[-1].line == 2 * MAX_PROBLEMS_PER_FILE + 3
    assert [r.data for r in results if isinstance(r, Document)] == [{"k": "v"}]


def test_a_too_deep_document_costs_only_itself() -> None:
    text = "a: 1\n---\n" + "[" * 5000 + "]" * 5000 + "\n---\nb: 2\n"
    results = parse(text)
    assert [type(r).__name__ for r in results] == ["Document", "Problem", "Document"]
    assert results[1] == Problem(3, TOO_DEEP)
    assert [r.data for r in results if isinstance(r, Document)] == [{"a": 1}, {"b": 2}]


def test_a_byte_order_mark_before_a_later_document_is_dropped() -> None:
    results = parse("a: 1\n---\n\ufeffb: 2\n\ufeff---\nc: 3\n")
    assert [r.data for r in results] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_aliases_used_as_keys_and_merge_sources() -> None:
    [doc] = parse("k: &k name\nbase: &b {x: 1}\nobj:\n  *k : v\n  <<: *b\n")
    assert doc.data["obj"] == {"name": "v", "x": 1}


def test_undefined_alias_is_one_documents_problem() -> None:
    results = parse("a: *nowhere\n---\nb: 1\n")
    assert isinstance(results[0], Problem) and results[0].message == "invalid YAML: found undefined alias"
    assert results[1].data == {"b": 1}


def test_a_lone_surrogate_is_a_problem_not_a_crash() -> None:
    # found by the YAML fuzzer: CParser raised UnicodeEncodeError on text no file decode produces
    parsed = list(parse_documents("a: 1\n---\nb: \udc80\n"))
    assert isinstance(parsed[0], Document) and parsed[0].data == {"a": 1}
    assert isinstance(parsed[1], Problem) and parsed[1].line == 3 and "unpaired surrogate" in parsed[1].message
