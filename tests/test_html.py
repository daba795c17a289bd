"""The HTML report: escaped, self-contained, its data block inert, and its summaries, filters, groups
and rule docs working in a real browser (Debian chromium, driven by Playwright)."""
from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator

import markupsafe
import pytest

from kaudit.baseline import Baseline, apply_baseline, compare
from kaudit.model import ControlResult, Coverage, CoverageGap, FrameworkResult, InputError, Inputs, Report
from kaudit.value import replace
from kaudit.writers.html import compliance, write
from kaudit.writers.html_data import message_template

from . import html_data
from .report_fixture import REPO, build_report
from .tools import require_module, require_tool

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE_STRINGS = [  # as tests/data/hostile.yaml has them, and as they reach findings
    "xss-<script>window.__pwned=1</script>",
    "evil-<img src=x onerror=window.__pwned=2>",
    "<svg onload=window.__pwned=4>",
    "registry.example.com/evil:<b>latest</b>",
]
HOSTILE_NAMESPACE = HOSTILE_STRINGS[1]
# a message no manifest should be able to write into a page: it tries to end the data block
BREAKOUT = "\u2028</script><script>window.__pwned=7</script><!-- \u2029 & </SCRIPT >"
SUPPRESSED_REASON = "base image is rebuilt nightly <b>by CI</b>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
# attributes that make a browser fetch something (on any element but <a>, whose href waits for a click)
LOADING_ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "action", "formaction", "background", "manifest"}
DATA_BLOCK = html_data.DATA_BLOCK


@pytest.fixture(scope="module")
def report() -> Report:
    seed = build_report()
    findings = list(seed.findings)
    findings[1] = replace(findings[1], message=findings[1].message + BREAKOUT)
    return replace(seed, findings=tuple(findings))


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

@pytest.mark.parametrize("message, names", [
    ('Pod "web" runs as root; "web" again', ("web", None)),
    ('container "web" of Deployment "web-api" adds NET_RAW', ("web-api", "web")),  # one name inside the other
    ("ServiceAccount shop/web in shop can read secrets", ("web", None, "shop")),
    ("web-api", ("web-api", "app")),  # nothing but the name
    ("", ("web", "app")),
    ('a "db" name too short to cut at', ("db", None)),
    ("no name in it", ("web", "app")),
])
def test_message_templates_give_the_message_back_exactly(message: str, names: tuple[Any, ...]) -> None:
    parts = message_template(message, names)
    by_marker = {-1 - n: name for n, name in enumerate(names)}
    assert "".join(part if isinstance(part, str) else by_marker[part] for part in parts) == message
    if "db" in names:
        assert parts == (message,)


def test_data_block_cannot_end_its_script_and_holds_every_message(report: Report, page_html: str) -> None:
    block = DATA_BLOCK.search(page_html)
    assert block is not None
    raw = block.group(1)
    for unsafe in ["<", ">", "&", "\u2028", "\u2029"]:
        assert unsafe not in raw
    said = [message for finding in report.findings for message in (finding.message, *(j.message for j in finding.joined))]
    assert html_data.messages(page_html) == said  # the breakout and hostile names included
    assert len(html_data.report_data(page_html)["f"]) == len(report.findings)


def test_hostile_markup_is_escaped_not_emitted(page_html: str) -> None:
    outside_data = DATA_BLOCK.sub("", page_html)
    for raw in ["<script>window.__pwned", "<img src=x", "<svg onload", "<b>latest</b>", "<b>by CI</b>"]:
        assert raw not in page_html
    assert str(markupsafe.escape(HOSTILE_NAMESPACE)) in outside_data  # the namespace chart's label
    tags = Tags(page_html)
    assert {tag for tag, _ in tags.tags} & {"img", "b", "iframe", "object"} == set()
    assert [attrs.get("type") for tag, attrs in tags.tags if tag == "script"] == ["application/json", None]
    handlers = [(tag, name) for tag, attrs in tags.tags for name in attrs if name.startswith("on")]
    assert handlers == []


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
    assert len(tags.raw["style"]) == 1


def test_csp_allows_only_the_inline_style_and_script(page_html: str) -> None:
    tags = Tags(page_html)
    policy = next(attrs["content"] for tag, attrs in tags.tags
                  if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy is not None and "default-src 'none'" in policy

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    data_block, executable = tags.raw["script"]  # the data block is not run, so not allowed (nor needed)
    assert f"script-src {digest(executable)};" in policy and digest(data_block) not in policy
    assert f"style-src {digest(tags.raw['style'][0])};" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    for markup_sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("]:
        assert markup_sink not in executable  # the script writes text nodes only


def test_incomplete_scan_says_why_in_the_verdict(report: Report) -> None:
    inputs = Inputs(files=2, documents=1, resources=0,
                    errors=[InputError("bad.yaml", 7, "mapping <values> not allowed")])
    html = render(replace(report, findings=(), inputs=inputs, rule_errors=("rule x: <boom>",)))
    assert 'data-verdict="incomplete"' in html
    verdict = html[html.index('id="verdict-reasons"'):]
    assert verdict.index("1 input error") < verdict.index("1 rule error") < verdict.index("no Kubernetes object")
    assert "bad.yaml:7</span>: mapping &lt;values&gt; not allowed" in html
    assert "rule x: &lt;boom&gt;" in html
    assert 'id="no-findings">No findings.' in html
    gap = CoverageGap("rolebindings.rbac.authorization.k8s.io", "RoleBinding", "shop", "forbidden", "<denied>")
    cluster = replace(report, coverage=Coverage("prod", "https://k8s", "v1.36", ("pods",), gaps=(gap,)))
    html = render(cluster)
    assert 'data-verdict="incomplete"' in html
    assert "1 coverage gap in the cluster: could not read rolebindings.rbac.authorization.k8s.io in namespace " \
           "shop: forbidden: &lt;denied&gt;</li>" in html
    assert 'data-verdict="fail"' in render(replace(cluster, gaps_allowed=True))  # --allow-gaps


def test_compliance_is_pass_over_evaluated_controls(report: Report) -> None:
    def control(n: int, status: str) -> ControlResult:
        return ControlResult(f"c{n}", f"control {n}", status, ("run-as-root",), 0)

    statuses = ["pass"] * 3 + ["fail"] + ["not-evaluated"] * 2 + ["not-covered"] * 5
    framework = FrameworkResult("cis", "CIS", tuple(control(n, s) for n, s in enumerate(statuses)))
    score = compliance(framework)
    assert (score.percent, score.passed, score.failed, score.not_evaluated, score.not_covered) == (75, 3, 1, 2, 5)
    assert compliance(replace(framework, controls=tuple(control(n, "pass") for n in range(199))
                              + (control(199, "fail"),))).percent == 99  # 99.5%: not rounded up to 100
    unevaluated = replace(framework, id="nsa", controls=tuple(control(n, "not-covered") for n in range(4)))
    assert compliance(unevaluated).percent is None
    html = render(replace(report, frameworks=(framework, unevaluated)))
    assert '<span class="pct" data-percent="75">75%</span>' in html
    assert "3 pass · 1 fail · 2 not evaluated · 5 not covered" in html
    assert '<span class="pct na" data-percent="">not evaluated</span>' in html


def test_baseline_counts_new_unchanged_and_fixed(report: Report) -> None:
    findings = report.findings
    known = {findings[0].fingerprint, findings[3].fingerprint, "0" * 32, "1" * 32}  # two facts gone since
    compared = apply_baseline(findings, Baseline("base.json", "2026-12-01T00:00:00Z", frozenset(known)))
    summary = compare(compared, Baseline("base.json", "2026-12-01T00:00:00Z", frozenset(known)))
    unchanged = sum(1 for f in compared if f.suppressed is not None and f.suppressed.by == "baseline")
    assert unchanged >= 1 and summary.unchanged == unchanged
    assert summary.new == sum(1 for f in compared if f.suppressed is None)
    assert summary.fixed == 2
    html = render(replace(report, findings=tuple(compared), baseline=summary))
    assert 'id="chart-baseline"' in html and 'data-baseline="fixed"' in html
    assert f"<title>{summary.new} new: findings not in the baseline</title>" in html
    assert 'id="chart-baseline"' not in render(report)


def test_scan_with_a_baseline_reports_what_was_fixed(kaudit: Callable[..., Any], tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    examples = REPO / "examples/manifests"
    assert kaudit("baseline", "create", examples / "insecure", "-o", base).code == 0
    web = tmp_path / "web.yaml"  # one file of the baselined tree, its password moved to a Secret
    web.write_text((examples / "insecure/web-deployment.yaml").read_text().replace(
        "value: s3cr3t-passw0rd", "valueFrom: {secretKeyRef: {name: db, key: password}}"))
    out = tmp_path / "report.html"
    kaudit("scan", web, "--baseline", base, "-f", "html", "-o", out)
    html = out.read_text(encoding="utf-8")
    fixed = re.search(r"<title>(\d+) fixed:", html)
    unchanged = re.search(r"<title>(\d+) unchanged:", html)
    assert fixed and unchanged and int(fixed.group(1)) == 1 and int(unchanged.group(1)) > 0
    assert "<title>0 new:" in html
    assert re.search(r"\d+ baseline facts on objects this scan did not read, not counted as fixed", html)


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

    def shown(self, expected: int | None = None) -> int:
        """The findings the filters let through (waits for a debounced search to settle on `expected`)."""
        deadline = time.monotonic() + 5
        while True:
            count = int(self.page.get_attribute("#shown", "data-count"))
            if expected is None or count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.05)

    def rendered_findings(self) -> list[dict[str, str]]:
        """Every finding of the page of groups in view (their groups opened), as the page shows it."""
        self.page.eval_on_selector_all("details.group", "gs => gs.forEach(g => { g.open = true; })")
        self.page.wait_for_selector("details.group[data-filled] tbody.finding", state="attached")
        deadline = time.monotonic() + 5
        while self.page.locator("details.group:not([data-filled])").count() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.page.eval_on_selector_all("tbody.finding", """rows => rows.map(row => ({
            severity: row.dataset.severity, rules: row.dataset.rules, text: row.textContent,
            group: row.closest('details.group').dataset.resource,
            where: row.closest('details.group').querySelector('.where').textContent}))""")

    def goto(self, fragment: str = "") -> None:
        self.page.goto(self.url + fragment)
        self.page.wait_for_selector("html[data-rendered]", state="attached")


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


def open_page(browser: Any, path: Path) -> Iterator[Opened]:
    """The page open in a fresh context; afterwards: no console errors (CSP violations are errors),
    no request but the file itself, nothing injected ran."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    url = path.as_uri()
    result = Opened(page, url)
    page.on("console", lambda message: result.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: result.errors.append(str(error)))
    page.on("request", lambda request: result.requests.append(request.url))

    def only_the_report(route: Any) -> None:
        if route.request.url.split("#")[0] == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_report)
    result.goto()
    yield result
    assert page.evaluate("typeof window.__pwned") == "undefined"
    context.close()
    assert result.errors == []
    assert {request.split("#")[0] for request in result.requests} == {url}


@pytest.fixture
def opened(browser: Any, report_file: Path) -> Iterator[Opened]:
    yield from open_page(browser, report_file)


def test_browser_hostile_text_is_inert_after_rendering(opened: Opened, report: Report) -> None:
    page = opened.page
    opened.goto("#q=hostile.yaml")
    rows = opened.rendered_findings()
    assert rows and all("hostile.yaml" in row["where"] for row in rows)
    opened.goto("#q=" + "window.__pwned=7")  # the message that tries to end the data block
    [row] = opened.rendered_findings()
    assert "\u2028</script><script>window.__pwned=7</script><!--" in row["text"]
    page.eval_on_selector_all("details.also", "ds => ds.forEach(d => { d.open = true; })")
    text = page.inner_text("#groups")
    assert "</script>" in text
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.evaluate("document.querySelectorAll('img, b, iframe, object').length") == 0
    assert page.evaluate("document.querySelectorAll('svg').length") == page.evaluate(
        "document.querySelectorAll('svg.chart, .compliance svg, svg.chain').length")  # charts and attack paths only
    opened.goto("#namespace=" + HOSTILE_NAMESPACE.replace("=", "%3D").replace("<", "%3C").replace(">", "%3E")
                .replace(" ", "%20"))
    groups = {row["group"] for row in opened.rendered_findings()}
    assert groups and all(HOSTILE_NAMESPACE in group for group in groups)
    assert any(HOSTILE_STRINGS[0] in group for group in groups)
    assert HOSTILE_STRINGS[2] in page.inner_text("#groups")  # the container's name, as text


def test_browser_groups_findings_by_resource(opened: Opened, report: Report) -> None:
    active = report.active_findings
    assert opened.shown() == len(active)
    groups = opened.page.locator("details.group")
    assert groups.count() == min(25, len({f.resource for f in active}))
    opened.goto("#namespace=ops")
    in_ops = [f for f in active if f.resource.namespace == "ops"]
    rows = opened.rendered_findings()
    assert len(rows) == len(in_ops) == opened.shown()
    assert {row["group"] for row in rows} == {f.resource.describe() for f in in_ops}
    pills = opened.page.eval_on_selector_all("details.group .pill", "ps => ps.map(p => p.textContent)")
    assert sum(int(p.split()[0]) for p in pills) == len(in_ops)
    severities = [row["severity"] for row in rows if row["group"] == rows[0]["group"]]
    order = ["critical", "high", "medium", "low", "info"]
    assert severities == sorted(severities, key=order.index)  # most severe first within a resource


def test_browser_summaries_filter_when_clicked(opened: Opened, report: Report) -> None:
    page, active = opened.page, report.active_findings
    high = sum(1 for f in active if f.severity.label == "high")
    page.click("#severity-summary [data-value=high]")
    assert opened.shown() == high
    assert "severity=high" in page.evaluate("location.hash")
    assert page.inner_text("#chips") == "severity: high"
    assert {row["severity"] for row in opened.rendered_findings()} == {"high"}
    page.click("#severity-summary [data-value=high]")
    assert opened.shown() == len(active)

    page.click("#chart-namespace g[data-value='']")  # the cluster-scoped bar
    assert opened.shown() == sum(1 for f in active if f.resource.namespace is None) > 1
    page.click("#clear")
    assert opened.shown() == len(active) and page.inner_text("#chips") == ""

    page.click("#by-rule tr[data-value=run-as-root]")
    # a finding shows for each rule it reports, its own and those joined to it (kaudit/relations.py)
    assert opened.shown() == sum(1 for f in active if "run-as-root" in f.rules) > 1
    assert any(f.rule != "run-as-root" and "run-as-root" in f.rules for f in active)
    assert all("run-as-root" in row["rules"].split() for row in opened.rendered_findings())
    page.click("#chips .chip")
    assert opened.shown() == len(active)

    page.click("#top-risks button[data-filter=rule] >> nth=0")
    risk = page.get_attribute("#top-risks button[data-filter=rule] >> nth=0", "data-value")
    assert opened.shown() == sum(1 for f in active if risk in f.rules)

    page.click("#clear")
    page.fill("#search", "HOSTILE.yaml run-as-root")  # every word must match, in any case
    assert opened.shown(1) == 1
    page.fill("#search", "no finding says this")
    assert opened.shown(0) == 0 and page.is_visible("#empty")

    page.click("#clear")
    page.click("#severity-summary [data-filter=suppressed]")
    assert opened.shown() == len(report.findings)
    assert f"suppressed by annotation: {SUPPRESSED_REASON}" in " ".join(
        row["text"] for row in opened.rendered_findings() if "suppressed by" in row["text"])


def test_browser_url_fragment_sets_the_filters(opened: Opened, report: Report) -> None:
    active = report.active_findings
    critical = [f for f in active if f.severity.label == "critical"]
    opened.goto("#severity=critical")
    assert opened.shown() == len(critical)
    assert opened.page.get_attribute("#severity-summary [data-value=critical]", "aria-pressed") == "true"
    opened.goto("#severity=critical,high&namespace=")
    assert opened.shown() == sum(1 for f in active if f.severity.label in {"critical", "high"}
                                 and f.resource.namespace is None)
    control = next(c for fw in report.frameworks for c in fw.controls if c.findings)
    framework = next(fw for fw in report.frameworks if control in fw.controls)
    opened.goto(f"#control={framework.id}:{control.id}")
    assert opened.shown() == sum(1 for f in active if set(f.rules) & set(control.rules)) > 0


def test_browser_pages_through_groups(opened: Opened, report: Report) -> None:
    page = opened.page
    resources = len({f.resource for f in report.active_findings})
    assert resources > 25  # the fixture needs a second page
    first = page.eval_on_selector_all("details.group", "gs => gs.map(g => g.dataset.resource)")
    page.click("#pager-top button:has-text('Next')")
    second = page.eval_on_selector_all("details.group", "gs => gs.map(g => g.dataset.resource)")
    assert second and not set(first) & set(second)
    assert "page=2" in page.evaluate("location.hash")


def test_browser_rule_docs_on_demand(browser: Any, report: Report, tmp_path: Path) -> None:
    finding = report.findings[0]
    rules = tuple(replace(info, references=("javascript:window.__pwned=6", "https://example.com/a?b=1&c=2"))
                  if info.id == finding.rule else info for info in report.rules)
    path = tmp_path / "report.html"
    path.write_text(render(replace(report, rules=rules)), encoding="utf-8")
    for opened in open_page(browser, path):
        page = opened.page
        assert not page.is_visible("#docs") and "Why it matters" not in page.inner_text("body")
        opened.goto(f"#rule={finding.rule}")
        page.click(f"details.group .rule-link[data-rule={finding.rule}] >> nth=0")
        assert page.is_visible("#docs")
        text = page.inner_text("#docs")
        info = next(i for i in rules if i.id == finding.rule)
        assert "What it flags" in text and "Why it matters" in text and "Fix" in text
        assert info.title in text
        assert page.eval_on_selector_all("#docs a", "links => links.map(a => a.href)") == [
            "https://example.com/a?b=1&c=2"]
        assert "javascript:window.__pwned=6" in text  # shown, as text
        page.click("#docs-close")
        assert not page.is_visible("#docs")


def test_browser_print_is_the_summary_and_the_findings(opened: Opened) -> None:
    page = opened.page
    assert page.is_visible("#filterbar") and page.is_visible("#by-rule")
    page.emulate_media(media="print")
    assert not page.is_visible("#filterbar") and not page.is_visible("#by-rule") and not page.is_visible("#frameworks")
    assert page.is_visible("#verdict") and page.is_visible("details.group")


def test_browser_screenshot(opened: Opened) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.png"
    opened.page.set_viewport_size({"width": 1400, "height": 2000})
    opened.page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
