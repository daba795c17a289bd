"""The text and Markdown reports as people read them: golden files for the bundled examples and for
a cluster scan through the test API server (tests/k8s_api), and the display options' behaviour.

Golden files live in tests/data/golden/. After an intended change of the layout, of a rule's message
or of the examples, regenerate them and read the diff before committing:

    KAUDIT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_text_golden.py

Only what truly varies between runs is normalised: the loopback API server's port.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

from kaudit.writers.display import WIDTH
from tests import text_layout
from tests.conftest import CliResult
from tests.k8s_api import FakeApiServer
from tests.report_fixture import REPO
from tests.test_cluster import objects

Kaudit = Callable[..., CliResult]
GOLDEN = REPO / "tests" / "data" / "golden"
UPDATE = os.environ.get("KAUDIT_UPDATE_GOLDEN") == "1"
# Lines that are one record each, kept whole so that they can be grepped and parsed: inputs that
# failed or were skipped, gaps, renders, framework results and the verdict (`summary_line`).
RECORD_PREFIXES = ("error: ", "warning: ", "gap: ", "not evaluated: ", "partially evaluated: ", "skipped: ",
                   "rendered: ", "controls: ", "pss-", "cis: ", "nsa: ")


def normalise(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    text = normalise(text)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: KAUDIT_UPDATE_GOLDEN=1 writes it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (KAUDIT_UPDATE_GOLDEN=1 to accept the change)"


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # paths as the README shows them
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    with FakeApiServer(objects()) as api:
        yield api.kubeconfig(tmp_path / "kubeconfig")


# -- golden files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name", [("text", "examples.txt"), ("markdown", "examples.md")])
def test_examples_golden(kaudit: Kaudit, in_repo: None, fmt: str, name: str) -> None:
    result = kaudit("scan", "examples/manifests/", "-f", fmt, "--color", "never")
    assert result.code == 1, result.err
    assert_golden(name, result.out)


@pytest.mark.parametrize("fmt, name, extra", [
    ("text", "cluster.txt", ()), ("markdown", "cluster.md", ()), ("text", "cluster-verbose.txt", ("-v",))])
def test_cluster_golden(kaudit: Kaudit, in_repo: None, cluster: Path, fmt: str, name: str,
                        extra: tuple[str, ...]) -> None:
    result = kaudit("scan", "--kubeconfig", cluster, "--context", "test", "-f", fmt, "--color", "never", *extra)
    assert result.code == 1, result.err
    assert_golden(name, result.out)
    if fmt == "text":
        shown = text_layout.findings(result.out)
        assert shown and all(s.where == "" for s in shown)  # the object is the place: no context on each line
        assert "127.0.0.1" not in result.out


# -- the layout --------------------------------------------------------------------------------------

def test_most_severe_first_each_object_named_once_per_severity(kaudit: Kaudit, in_repo: None) -> None:
    out = kaudit("scan", "examples/manifests/", "--color", "never").out
    shown = text_layout.findings(out)
    json_report = kaudit("scan", "examples/manifests/", "-f", "json").json()
    assert len(shown) == len(json_report["findings"])
    ranks = ["critical", "high", "medium", "low", "info"]
    assert [ranks.index(s.severity) for s in shown] == sorted(ranks.index(s.severity) for s in shown)
    headings = [line for line in out.splitlines() if text_layout.HEADING.match(line)]
    assert len(headings) == len(set(headings))  # one group per object and severity
    # every finding line starts with a file:line:col an editor opens
    assert all(re.fullmatch(r"examples/manifests/insecure/[\w-]+\.yaml:\d+:\d+", s.where) for s in shown)
    assert not any(line.startswith("controls: ") for line in out.splitlines())  # no framework asked for


def test_every_line_fits_120_columns_without_verbose(kaudit: Kaudit, in_repo: None) -> None:
    for target in ("examples/manifests/", "tests/data/hostile.yaml"):
        lines = kaudit("scan", target, "--color", "never").out.splitlines()
        too_wide = [line for line in lines[:-1] if len(line) > WIDTH and not line.startswith(RECORD_PREFIXES)]
        assert too_wide == [], target


def test_a_path_too_long_for_the_line_keeps_location_and_rule_whole(kaudit: Kaudit, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / "pod.yaml"
    deep.parent.mkdir()
    deep.write_text(POD.format(name="web", container="app"))
    out = kaudit("scan", deep, "--rule", "run-as-root", "--color", "never").out
    [shown] = text_layout.findings(out)
    assert (shown.where, shown.rule) == (f"{deep}:10:7", "run-as-root")
    lines = out.splitlines()
    message = lines[lines.index(shown.line) + 1]
    assert message.startswith("      container \"app\" may run as root") and len(message) <= WIDTH


def test_verbose_adds_whole_messages_joined_rules_and_the_controls(kaudit: Kaudit, in_repo: None) -> None:
    short = kaudit("scan", "examples/manifests/insecure/web-deployment.yaml", "--color", "never").out
    verbose = kaudit("scan", "examples/manifests/insecure/web-deployment.yaml", "--color", "never", "-v").out
    assert "also: " not in short and "also: " in verbose
    assert "controls: " not in short and "controls: pss-baseline" in verbose
    [cut] = [s for s in text_layout.findings(short) if s.rule == "automount-service-account-token"]
    assert cut.message.endswith("…") and len(cut.line) == WIDTH
    lines = verbose.splitlines()
    index = lines.index(cut.line)  # the same line, the whole message wrapped beneath it
    assert " ".join(line.strip() for line in lines[index + 1:index + 3]) == (
        'Deployment "web" gets an API token for service account "default" mounted: automountServiceAccountToken '
        "is not false on the pod or its ServiceAccount")
    asked = kaudit("scan", "examples/manifests/insecure/web-deployment.yaml", "--framework", "pss-baseline").out
    assert re.search(r"^pss-baseline: \d+ controls pass", asked, re.M)


def test_top_risks_close_the_report_before_the_verdict(kaudit: Kaudit, in_repo: None) -> None:
    lines = kaudit("scan", "examples/manifests/", "--color", "never").out.splitlines()
    report = kaudit("scan", "examples/manifests/", "-f", "json").json()
    counts = report["summary"]["bySeverity"]
    risks = lines[-5:-1]  # two severities, each in at most two lines
    assert risks[0].startswith(f"{counts['critical']} critical: ") and risks[1].startswith("  ")
    assert risks[2].startswith(f"{counts['high']} high: ") and risks[3].endswith(" more")
    assert "attack path to cluster admin in monitoring/node-agent" in risks[1]
    assert lines[-1].startswith(f"{len(report['findings'])} findings (") and "gate fail" in lines[-1]
    assert all(len(line) <= WIDTH for line in risks)


# -- options ---------------------------------------------------------------------------------------

def test_quiet_prints_errors_and_the_verdict_only(kaudit: Kaudit, in_repo: None, tmp_path: Path) -> None:
    quiet = kaudit("scan", "examples/manifests/", "-q")
    assert quiet.code == 1
    [verdict] = quiet.out.splitlines()  # the warnings the examples raise are left out
    assert verdict == kaudit("scan", "examples/manifests/").out.splitlines()[-1]
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [\n")
    failed = kaudit("scan", broken, "examples/manifests/insecure/web-deployment.yaml", "--quiet")
    assert failed.code == 2
    *errors, verdict = failed.out.splitlines()
    assert errors and all(line.startswith(f"error: {broken}") for line in errors)
    assert "scan incomplete" in verdict
    assert kaudit("scan", "-q", "-v", "examples/manifests/").code == 2  # opposite requests


def test_min_severity_hides_findings_but_not_from_the_gate(kaudit: Kaudit, in_repo: None) -> None:
    path = "examples/manifests/insecure/web-deployment.yaml"
    everything = text_layout.findings(kaudit("scan", path).out)
    high = kaudit("scan", path, "--min-severity", "high")
    assert high.code == 1
    shown = text_layout.findings(high.out)
    assert shown and {s.severity for s in shown} == {"high"}
    hidden = len(everything) - len(shown)
    assert f"{hidden} findings below high not shown (--min-severity high)" in high.out
    # the gate still counts what is not shown: nothing critical is listed, the exit is still 1
    critical = kaudit("scan", path, "--min-severity", "critical", "--fail-on", "medium")
    assert critical.code == 1 and text_layout.findings(critical.out) == []
    assert critical.out.splitlines()[-1] == kaudit("scan", path, "--fail-on", "medium").out.splitlines()[-1]
    md = kaudit("scan", path, "--min-severity", "high", "-f", "markdown").out
    assert "#### high (" in md and "#### medium" not in md and "#### low" not in md
    assert f"{hidden} findings below high not listed (`--min-severity high`)." in md
    assert kaudit("scan", path, "--min-severity", "never").code == 2


@pytest.mark.parametrize("args, env, coloured", [
    ((), {}, False),  # not a terminal
    ((), {"FORCE_COLOR": "1"}, True),
    ((), {"NO_COLOR": "1"}, False),
    ((), {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR first
    ((), {"FORCE_COLOR": ""}, False),  # set but empty: not asked
    (("--color", "always"), {}, True),
    (("--color", "always"), {"NO_COLOR": "1"}, True),  # the explicit option wins
    (("--color", "never"), {"FORCE_COLOR": "1"}, False),
    (("--color", "auto"), {"FORCE_COLOR": "1"}, True),
])
def test_color_option_and_environment(kaudit: Kaudit, in_repo: None, monkeypatch: pytest.MonkeyPatch,
                                      args: tuple[str, ...], env: dict[str, str], coloured: bool) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = kaudit("scan", "examples/manifests/insecure/web-deployment.yaml", *args).out
    assert ("\033[1;31mHIGH" in out) == coloured and ("\033[" in out) == coloured
    assert "\033[" not in kaudit("scan", "examples/manifests/insecure/web-deployment.yaml", *args, "-f", "markdown").out


# -- manifest text that tries to break the layout ----------------------------------------------------

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: team
spec:
  containers:
    - name: {container}
      image: registry.example.com/app:1.0
      securityContext: {{privileged: true}}
"""
HOSTILE_CONTAINER = '"a|b`c` <script>alert(1)</script>\\nnext | row\\u001b[31m"'


def test_markdown_cannot_be_broken_by_manifest_text(kaudit: Kaudit, tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.format(name="web", container=HOSTILE_CONTAINER))
    for extra in ((), ("-v",)):
        md = kaudit("scan", path, "-f", "markdown", *extra).out
        assert "<script" not in md and "\u001b" not in md
        rows = [line for line in md.splitlines() if line.startswith("| ") and "privileged" in line]
        assert rows, md
        for row in rows:  # one row each, five cell borders: nothing from the manifest opened a cell or a line
            assert len(re.findall(r"(?<!\\)\|", row)) == 5, row
            assert "\\`c\\`" in row and "&lt;script&gt;" in row
        table_lines = [line for line in md.splitlines() if line.startswith("|")]
        assert all(line.endswith("|") for line in table_lines)


def test_text_shows_control_characters_instead_of_obeying_them(kaudit: Kaudit, tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.format(name="web", container=HOSTILE_CONTAINER))
    out = kaudit("scan", path, "--color", "never", "-v").out
    assert "\u001b" not in out and "\\x1b[31m" in out
    assert "\\nnext | row" in out  # the newline inside a name is shown, the line is not broken



def test_the_readme_sample_is_the_examples_output() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- text-output -->\n```text\n", 1)[1].split("```", 1)[0]
    golden = (GOLDEN / "examples.txt").read_text(encoding="utf-8").splitlines()
    position = 0
    for line in block.splitlines():  # every line, in order, from the real output; "…" skips some
        if line != "…":
            position = golden.index(line, position) + 1


def test_wrap_keeps_every_word_in_order_within_the_width() -> None:
    from hypothesis import given, strategies as st

    from kaudit.writers.text import wrap as _wrap

    word = st.text(alphabet="ab-=/.", min_size=1, max_size=40)

    @given(st.lists(word, max_size=30), st.sampled_from([" ", "  "]), st.integers(min_value=5, max_value=120))
    def check(words: list[str], gap: str, width: int) -> None:
        lines = _wrap(gap.join(words), width)
        assert all(0 < len(line) <= width for line in lines) or lines == [""]
        assert all(line == line.strip(" ") for line in lines)
        assert "".join("".join(lines).split()) == "".join(words)  # nothing lost, nothing added
        for line, following in zip(lines, lines[1:]):  # greedy: the next word did not fit
            first = following.split(" ")[0]
            assert len(line) + len(gap) + len(first) > width or len(first) > width

    check()
    assert _wrap("container \"app\" runs privileged", 16) == ["container \"app\"", "runs privileged"]
    assert _wrap("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_markdown_says_why_a_scan_is_incomplete(kaudit: Kaudit, tmp_path: Path) -> None:
    """Markdown lists what the text report lists before its verdict (coverage gaps, rules not
    evaluated, nothing judged) and its heading counts them, not only input errors: a PR comment
    that read "scan incomplete (0 errors)" told the reader nothing."""
    with FakeApiServer(objects(), forbidden={("rolebindings", None)}) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
        result = kaudit("scan", "--kubeconfig", str(kubeconfig), "--context", "test", "-f", "markdown")
    assert result.code == 2
    heading = result.out.splitlines()[0]
    assert re.match(r"### ⚠️ kaudit scan incomplete \(\d+ coverage gaps?\), \d+ findings$", heading), heading
    assert "- ⚠️ **gap:** could not read rolebindings.rbac.authorization.k8s.io in namespace shop" in result.out
    assert "- ⚠️ **not evaluated:** " in result.out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.yaml").write_text("title: not a Kubernetes object\n")
    nothing = kaudit("scan", str(empty), "-f", "markdown")
    assert nothing.code == 2
    assert nothing.out.splitlines()[0].startswith("### ⚠️ kaudit scan incomplete (nothing judged), 0 findings")
    assert "- ⚠️ **error:** no Kubernetes objects in the inputs" in nothing.out
