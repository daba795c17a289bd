"""The SARIF and JSON writers stream (writers/streaming.py): their output is what the whole document,
built in memory and encoded at once, would be, byte for byte, on a terminal (indented) and in a file
(compact); and writing never holds the whole document."""
from __future__ import annotations

import io
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaudit.model import Report
from kaudit.value import replace
from kaudit.writers import json_report, sarif
from kaudit.writers.streaming import Streamed, write_document
from tests.report_fixture import build_report
from tests.test_sarif_github import synthetic
from tests.test_writers import assert_valid_sarif, with_errors


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Counting:
    """A file that keeps no text: its size, and the largest single write."""

    def __init__(self) -> None:
        self.size = self.largest = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        self.largest = max(self.largest, len(text))
        return len(text)

    def isatty(self) -> bool:
        return False


def written(write: Any, report: Report, terminal: bool) -> str:
    out = Terminal() if terminal else io.StringIO()
    if write is sarif.write:
        write(report, out, stderr=io.StringIO())
    else:
        write(report, out)
    return out.getvalue()


def variants(report: Report) -> list[Report]:
    """The shared report, with input and rule errors, and with no finding at all."""
    return [report, with_errors(report), replace(report, findings=())]


# -- the streaming encoder -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12)


@st.composite
def documents_with_a_list(draw: st.DrawFn) -> tuple[Any, list[str | int], list[Any]]:
    """A document, the path (keys and indexes) of the list to stream in it, and the list's items."""
    document: Any = draw(st.dictionaries(st.text(max_size=5), json_values, min_size=1, max_size=4))
    path: list[str | int] = []
    node = document
    while True:  # walk down a random way; the list goes where the walk stops
        keys: list[str | int] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
            path.append(key)
            break
        path.append(key)
        node = node[key]
    items = draw(st.lists(json_values, max_size=4))
    return document, path, items


def _put(document: Any, path: list[str | int], value: Any) -> None:
    node = document
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = value
    else:  # an empty list or dict: the list goes into it
        if isinstance(node, dict):
            node["streamed"] = value
        else:
            node.append(value)


@settings(max_examples=300, deadline=None)
@given(documents_with_a_list(), st.sampled_from([None, 2, 4]))
def test_a_streamed_document_is_what_json_dumps_makes_of_it_whole(
        case: tuple[Any, list[str | int], list[Any]], indent: int | None) -> None:
    document, path, items = case
    whole = json.loads(json.dumps(document))
    _put(whole, path, items)
    streamed = Streamed(iter(items))
    _put(document, path, streamed.placeholder)
    out = io.StringIO()
    write_document(out, document, streamed, indent=indent)
    assert out.getvalue() == json.dumps(whole, indent=indent, ensure_ascii=False)


def test_report_text_that_looks_like_the_cut_cannot_move_it() -> None:
    streamed = Streamed(["ü", {"a": [1, "]"]}])
    document = {"before": 'kaudit-streamed-0" ["', "list": streamed.placeholder, "after": "\n\"]}"}
    for indent in (None, 2):
        streamed.items = ["ü", {"a": [1, "]"]}]
        out = io.StringIO()
        write_document(out, document, streamed, indent=indent)
        whole = {**document, "list": ["ü", {"a": [1, "]"]}]}
        assert out.getvalue() == json.dumps(whole, indent=indent, ensure_ascii=False)


def test_items_are_built_one_at_a_time_as_they_are_written() -> None:
    built: list[int] = []
    writes: list[tuple[str, int]] = []

    class Recording:
        def write(self, text: str) -> int:
            writes.append((text, len(built)))
            return len(text)

    def items() -> Any:
        for number in range(3):
            built.append(number)
            yield {"n": number}

    streamed = Streamed(items())
    recording: Any = Recording()
    write_document(recording, {"head": 1, "items": streamed.placeholder, "tail": 2}, streamed)
    # each item is written before the next is built; the head went out when one item was known
    assert writes == [('{"head": 1, "items": [', 1), ('{"n": 0}', 1), (", ", 2), ('{"n": 1}', 2), (", ", 3),
                      ('{"n": 2}', 3), ('], "tail": 2}', 3)]


# -- the JSON report -----------------------------------------------------------------------------

@pytest.mark.parametrize("terminal", [False, True], ids=["file", "terminal"])
def test_json_report_is_the_whole_document_encoded_at_once(report: Report, terminal: bool) -> None:
    for case in variants(report):
        document = json_report.to_dict(case)
        text = written(json_report.write, case, terminal)
        if terminal:
            assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
            continue
        # compact, one finding after another joined by "," (as the writer has always written them)
        findings = document.pop("findings")
        head = json.dumps(document, ensure_ascii=False)[:-1]
        body = ",".join(json.dumps(finding, ensure_ascii=False) for finding in findings)
        assert text == f'{head}, "findings": [{body}]}}\n'


def test_json_report_findings_follow_the_report(report: Report) -> None:
    document = json.loads(written(json_report.write, report, terminal=False))
    assert list(document) == ["schemaVersion", "tool", "fingerprintVersion", "generatedAt", "scanned", "summary",
                              "inputs", "images", "platform", "rules", "frameworks", "ruleErrors", "rulesNotRun", "rulesPartlyRun",
                              "baseline", "attackPaths", "findings"]
    assert [(f["rule"], f["severity"], f["fingerprint"], f["resource"]["name"], f["location"].get("line"))
            for f in document["findings"]] == \
        [(f.rule, f.severity.label, f.fingerprint, f.resource.name, f.location.line) for f in report.findings]
    assert document["summary"]["findings"] == len(report.active_findings)


# -- SARIF ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("terminal", [False, True], ids=["file", "terminal"])
def test_sarif_is_the_whole_log_encoded_at_once(report: Report, terminal: bool) -> None:
    for case in variants(report):
        text = written(sarif.write, case, terminal)
        assert text == json.dumps(sarif.to_dict(case), indent=2 if terminal else None, ensure_ascii=False) + "\n"
        log = json.loads(text)
        assert_valid_sarif(log)
        (run,) = log["runs"]
        assert list(run) == ["tool", "invocations", "originalUriBaseIds", "columnKind", "results", "properties"]
        assert [(r["ruleId"], r["partialFingerprints"]["kaudit/v1"], r["properties"]["severity"])
                for r in run["results"]] == [(f.rule, f.fingerprint, f.severity.label) for f in case.findings]


def test_sarif_over_githubs_limit_streams_the_same_results_as_the_whole_log(report: Report) -> None:
    big = synthetic(report, sarif.MAX_RESULTS + 1_000)
    text = written(sarif.write, big, terminal=False)
    assert text == json.dumps(sarif.to_dict(big), ensure_ascii=False) + "\n"
    assert len(json.loads(text)["runs"][0]["results"]) == sarif.MAX_RESULTS


def test_kept_findings_rank_active_then_severity_then_report_order(report: Report) -> None:
    big = synthetic(report, sarif.MAX_RESULTS + 3_000).findings
    order = sorted(range(len(big)), key=lambda i: (big[i].suppressed is not None, -big[i].severity, i))
    expected = [big[i] for i in sorted(order[:sarif.MAX_RESULTS])]
    assert sarif.kept_findings(big) == expected
    assert sarif.kept_findings(big[:100]) == list(big[:100])


# -- memory ----------------------------------------------------------------------------------------

def many_findings(report: Report, count: int) -> Report:
    """`count` findings on as many objects in 200 files (a scan names each file many times)."""
    big = synthetic(report, count)
    return replace(big, findings=tuple(
        replace(f, location=replace(f.location, file=f"deploy/{i % 200}.yaml")) for i, f in enumerate(big.findings)))


def writing_peak(write: Any, report: Report) -> tuple[int, Counting]:
    """The writer's own peak allocation (tracemalloc) while it writes `report` to a file that keeps nothing."""
    for measured in (False, True):  # the first run fills the findings' cached fingerprints and paths
        out: Any = Counting()
        if measured:
            tracemalloc.start()
        try:
            if write is sarif.write:
                write(report, out, stderr=io.StringIO())
            else:
                write(report, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    counted: Counting = out
    return peak, counted


@pytest.mark.parametrize("write", [sarif.write, json_report.write], ids=["sarif", "json"])
def test_writing_holds_one_result_at_a_time_not_the_document(report: Report, write: Any) -> None:
    small_peak, small = writing_peak(write, many_findings(report, 2_000))
    big_peak, big = writing_peak(write, many_findings(report, 20_000))
    added = 18_000
    # Built whole, the document took about a kilobyte per result as dicts, then its text again. Streamed,
    # the writer holds the head (rules and their help) and one result; what grows with the findings is
    # a reference or two each (the active and failing findings the summary counts, SARIF's kept results).
    assert big.size - small.size > added * 300
    assert big_peak - small_peak < added * 64, (small_peak, big_peak)
    assert big.largest < big.size / 20, (big.largest, big.size)  # no write of the whole document either
