from __future__ import annotations

from kaudit.sources.yamldoc import MAX_DEPTH, Document, Problem, YamlMap, deepest_position, parse_documents, position_of


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
    assert isinstance(problem, Problem) and f"more than {MAX_DEPTH} levels" in problem.message


def test_deep_block_nesting_is_refused_with_its_line() -> None:
    text = "".join(" " * i + "a:\n" for i in range(MAX_DEPTH + 50)) + " " * (MAX_DEPTH + 50) + "a: 1\n"
    [problem] = parse(text)
    assert isinstance(problem, Problem) and problem.line == MAX_DEPTH + 1


def test_aliases_cannot_be_used_to_exceed_the_depth_limit() -> None:
    inner = "[" * 150 + "1" + "]" * 150
    text = f"a: &a {inner}\nb: " + "[" * 100 + "*a" + "]" * 100 + "\n"
    [problem] = parse(text)
    assert isinstance(problem, Problem) and "levels deep" in problem.message


def test_moderate_nesting_within_the_limit_parses() -> None:
    depth = MAX_DEPTH - 5
    [doc] = parse("[" * depth + "1" + "]" * depth)
    assert isinstance(doc, Document)


def test_custom_tags_are_never_constructed() -> None:
    [doc] = parse("a: !!python/object/apply:os.system ['echo hi']\nb: !custom 5\n")
    # the python tag is a sequence node here; nothing is executed and values stay data
    assert doc.data["b"] == "5"
    assert doc.data["a"] == ["echo hi"]
