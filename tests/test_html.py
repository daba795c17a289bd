"""The HTML report: escaped, self-contained, and its filters work in a real browser (Debian chromium)."""
from __future__ import annotations

import base64
import hashlib
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator

import markupsafe
import pytest

from kaudit.model import InputError, Inputs, Report
from kaudit.value import replace
from kaudit.writers.html import write

from .report_fixture import REPO, build_report
from .tools import require_module, require_tool

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE_STRINGS = [  # as tests/data/hostile.yaml has them, and as they reach findings
    "xss-<script>window.__pwned=1</script>",
    "evil-<img src=x onerror=window.__pwned=2>",
    "<svg onload=window.__pwned=4>",
    "registry.example.com/evil:<b>latest</b>",
]
SUPPRESSED_REASON = "base image is rebuilt nightly <b>by CI</b>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
# attributes that make a browser fetch something (on any element but <a>, whose href waits for a click)
LOADING_ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "action", "formaction", "background", "manifest"}


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report()


def render(report: Report) -> str:
    stream = io.StringIO()
    write(report, stream)
    return stream.getvalue()


@pytest.fixture(scope="module")
def page_html(report: Report) -> str:
    return render(report)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> and <style> elements."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.raw[self._in][-1] += data


# ---- the page as text --------------------------------------------------------------------------

def test_hostile_markup_is_escaped_not_emitted(page_html: str) -> None:
    for raw in ["<script>window.__pwned", "<img src=x", "<svg onload", "<b>latest</b>", "<b>by CI</b>"]:
        assert raw not in page_html
    for text in [*HOSTILE_STRINGS, SUPPRESSED_REASON]:
        assert str(markupsafe.escape(text)) in page_html
    tags = Tags(page_html)
    assert [tag for tag, _ in tags.tags if tag in {"script", "img", "svg", "b", "iframe", "object"}] == ["script"]
    handlers = [(tag, name) for tag, attrs in tags.tags for name in attrs if name.startswith("on")]
    assert handlers == []


def test_every_finding_message_is_shown(report: Report, page_html: str) -> None:
    assert len(report.findings) > 100
    for finding in report.findings:
        assert str(markupsafe.escape(finding.message)) in page_html, finding.message
    assert page_html.count('<tbody class="finding') == len(report.findings)
    assert page_html.count('data-suppressed="true"') == 1


def test_page_loads_nothing_and_is_one_file(page_html: str) -> None:
    tags = Tags(page_html)
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            if name in LOADING_ATTRIBUTES and tag != "a":
                assert value is not None and value.startswith("data:"), (tag, name, value)
            if tag == "a" and name == "href":
                assert value is not None and re.match(r"(#|https?://)", value), value
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.sub(r"<a\s[^>]*>", "", page_html))
    for css in tags.raw["style"]:
        assert "url(" not in css and "@import" not in css
    assert len(tags.raw["script"]) == 1 and len(tags.raw["style"]) == 1


def test_csp_allows_only_the_inline_style_and_script(page_html: str) -> None:
    tags = Tags(page_html)
    policy = next(attrs["content"] for tag, attrs in tags.tags
                  if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy is not None and "default-src 'none'" in policy

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"script-src {digest(tags.raw['script'][0])};" in policy
    assert f"style-src {digest(tags.raw['style'][0])};" in policy


def test_references_other_than_http_are_not_links(report: Report) -> None:
    finding = report.findings[0]
    rules = tuple(replace(info, references=("javascript:window.__pwned=6", "https://example.com/a?b=1&c=2"))
                  if info.id == finding.rule else info for info in report.rules)
    html = render(replace(report, findings=(finding,), rules=rules))
    assert 'href="javascript:' not in html
    assert "javascript:window.__pwned=6</span>" in html
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer"' in html


def test_incomplete_scan_shows_errors_with_file_and_line(report: Report) -> None:
    inputs = Inputs(files=2, documents=1, resources=0,
                    errors=[InputError("bad.yaml", 7, "mapping <values> not allowed")])
    html = render(replace(report, findings=(), inputs=inputs, rule_errors=("rule x: <boom>",)))
    assert 'data-verdict="incomplete"' in html
    assert "bad.yaml:7</span>: mapping &lt;values&gt; not allowed" in html
    assert "rule x: &lt;boom&gt;" in html
    assert "No findings." in html


def test_cli_writes_one_html_file(kaudit: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = kaudit("scan", "--config", REPO / "examples/kaudit.yaml", REPO / "examples/manifests",
                    "-f", "html", "-o", out)
    assert result.code == 1, result.err
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# ---- the page in a real browser ----------------------------------------------------------------

class Opened:
    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url
        self.errors: list[str] = []
        self.requests: list[str] = []

    def shown(self) -> int:
        count = int(self.page.inner_text("#shown-count"))
        assert self.page.locator("tbody.finding:visible").count() == count
        return count

    def visible(self, attribute: str) -> set[str]:
        return set(self.page.eval_on_selector_all(
            "tbody.finding:not([hidden])", f"rows => rows.map(row => row.getAttribute('{attribute}'))"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report_file(page_html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page_html, encoding="utf-8")
    return path


@pytest.fixture
def opened(browser: Any, report_file: Path) -> Iterator[Opened]:
    """The report open in a fresh page; afterwards: no console errors, no request but the file itself."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    url = report_file.as_uri()
    result = Opened(page, url)
    page.on("console", lambda message: result.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: result.errors.append(str(error)))
    page.on("request", lambda request: result.requests.append(request.url))

    def only_the_report(route: Any) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_report)
    page.goto(url)
    page.wait_for_load_state("load")
    yield result
    assert page.evaluate("typeof window.__pwned") == "undefined"
    context.close()
    assert result.errors == []
    assert result.requests == [url]


def test_browser_injected_markup_does_not_run_and_reads_as_text(opened: Opened) -> None:
    page = opened.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('script, img, svg, b, iframe').length") == 1
    text = page.inner_text("#findings-table")
    for hostile in HOSTILE_STRINGS:
        assert hostile in text
    page.locator("details.docs").first.evaluate("d => d.open = true")
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_browser_severity_filter_hides_exactly_that_severity(opened: Opened, report: Report) -> None:
    active = report.active_findings
    high = sum(1 for f in active if f.severity.label == "high")
    assert opened.shown() == len(active)  # suppressed findings are hidden until asked for
    opened.page.uncheck("#severity-filter input[value=high]")
    assert opened.shown() == len(active) - high
    assert "high" not in opened.visible("data-severity")
    opened.page.check("#severity-filter input[value=high]")
    assert opened.shown() == len(active)


def test_browser_rule_and_namespace_filters(opened: Opened, report: Report) -> None:
    page, active = opened.page, report.active_findings
    page.select_option("#rule-filter", "run-as-root")
    # a finding shows for each rule it reports, its own and those joined to it (kaudit/relations.py)
    assert opened.shown() == sum(1 for f in active if "run-as-root" in f.rules) > 1
    assert any(f.rule != "run-as-root" and "run-as-root" in f.rules for f in active)
    assert all("run-as-root" in rules.split() for rules in opened.visible("data-rules"))
    page.select_option("#rule-filter", index=0)
    assert opened.shown() == len(active)

    page.select_option("#namespace-filter", "evil-<img src=x onerror=window.__pwned=2>")
    assert opened.shown() == sum(1 for f in active if f.resource.namespace == HOSTILE_STRINGS[1]) > 1
    page.select_option("#namespace-filter", label="(cluster-scoped)")  # value "", unlike "all namespaces"
    assert opened.shown() == sum(1 for f in active if f.resource.namespace is None) > 1
    assert opened.visible("data-namespace") == {""}


def test_browser_search_narrows_rows(opened: Opened, report: Report) -> None:
    page, active = opened.page, report.active_findings
    page.fill("#search", "HOSTILE.yaml")
    assert opened.shown() == sum(1 for f in active if f.location.file == "tests/data/hostile.yaml") > 1
    page.fill("#search", "run-as-root hostile.yaml")  # every word must match
    assert opened.shown() == 1
    page.fill("#search", "<svg onload")
    shown = opened.shown()
    assert 1 < shown < len(active)
    for row in page.locator("tbody.finding:visible").all():
        assert "<svg onload" in row.inner_text()
    page.fill("#search", "no finding says this")
    assert opened.shown() == 0
    assert page.is_visible("#no-match")
    page.fill("#search", "")
    assert opened.shown() == len(active)


def test_browser_show_suppressed(opened: Opened, report: Report) -> None:
    page, active = opened.page, report.active_findings
    suppressed = page.locator("tbody.finding[data-suppressed=true]")
    assert suppressed.count() == 1 and not suppressed.is_visible()
    page.check("#show-suppressed")
    assert opened.shown() == len(active) + 1
    assert suppressed.is_visible()
    assert f"suppressed by annotation: {SUPPRESSED_REASON}" in suppressed.inner_text()
    page.uncheck("#show-suppressed")
    assert opened.shown() == len(active)


def test_browser_print_hides_filters_and_expands_docs(opened: Opened) -> None:
    page = opened.page
    docs = page.locator("details.docs pre").first
    assert page.is_visible("#filters") and not docs.is_visible()
    page.emulate_media(media="print")
    assert not page.is_visible("#filters")
    assert docs.is_visible()


def test_browser_screenshot(opened: Opened) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.png"
    opened.page.screenshot(path=str(path), full_page=True, timeout=120_000)  # a tall page
    assert path.stat().st_size > 10_000
