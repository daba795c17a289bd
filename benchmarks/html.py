"""The HTML report at cluster scale: an 80,000-finding report written and opened in real Chromium.

    python benchmarks/html.py [--findings 80000] [--keep report.html] [--screenshot out.png]

The report is the one every writer's tests use (tests/report_fixture.py: the bundled examples, the
hostile manifest and the RBAC fixtures; 150-odd findings with joined rules and a suppression), copied
over 60 namespaces with each copy's objects, containers and files renamed, and a third of the copies
rendered from a Helm chart (provenance: the values key that set the field) until it holds --findings
findings. Measured:
- the writer: wall time, peak memory it allocates (tracemalloc, a second run), file size;
- Chromium (/usr/bin/chromium, headless, driven by Playwright): from navigation start to the marker
  the page's script sets once it has rendered the first page of findings (`data-rendered` on <html>,
  its performance.now()), and the wall time of the whole load seen from outside; median of --runs.
Budgets (issue 16): load < 5 s, file < 15 MB. Before the data block (one <tbody> per finding):
79,661 findings made an 87 MB page that took 203 s to load.
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from kaudit.model import Finding, JoinedFinding, Location, RenderedLocation, Report, ValuesLocation  # noqa: E402
from kaudit.value import replace  # noqa: E402
from kaudit.writers.html import write  # noqa: E402
from tests.report_fixture import build_report  # noqa: E402

NAMESPACES = 60
LOAD_BUDGET_S = 5.0
SIZE_BUDGET_MB = 15.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def _renamed(text: str, names: dict[str, str]) -> str:
    """Each object or container name in `text` given its copy's suffix, once."""
    return _names_pattern(tuple(names)).sub(lambda match: names[match.group(0)], text)


@functools.cache
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])")


def _copy(finding: Finding, copy: int, names: dict[str, str]) -> Finding:
    ref = finding.resource
    namespace = f"team-{copy % NAMESPACES:02d}-{'payments' if copy % 3 else 'platform'}" if ref.namespace else None
    resource = replace(ref, name=names.get(ref.name, ref.name), namespace=namespace)
    location = finding.location
    file = f"deploy/team-{copy % NAMESPACES:02d}/app-{copy}/{Path(location.file or 'cluster.yaml').name}"
    rendered = None
    if copy % 3 == 0:  # a chart's template, with the values key that set the field
        rendered = RenderedLocation(unit=f"charts/app-{copy}", renderer="helm-python-sdk",
                                    source=f"charts/app-{copy}/templates/{ref.kind.lower()}.yaml",
                                    rendered_line=location.line,
                                    values=ValuesLocation(f"charts/app-{copy}/values-production.yaml",
                                                          (location.line or 1) + 3, finding.path_text.split(".")[-1]))
    location = Location(file=file, line=location.line, column=location.column, rendered=rendered)
    joined = tuple(replace(j, message=_renamed(j.message, names), location=Location(file=file, line=j.location.line),
                           resource=replace(j.resource, name=names.get(j.resource.name, j.resource.name),
                                            namespace=namespace if j.resource.namespace else None))
                   for j in finding.joined)
    return replace(finding, resource=resource, location=location, message=_renamed(finding.message, names),
                   container=names.get(finding.container or "", finding.container), joined=joined)


def big_report(count: int) -> Report:
    seed = build_report()
    names = {f.resource.name for f in seed.findings} | {f.container for f in seed.findings if f.container}
    names |= {j.resource.name for f in seed.findings for j in f.joined}
    names = {n for n in names if len(n) >= 3 and n != "default"}  # "default" is also a word in messages
    findings: list[Finding] = []
    copy = 0
    while len(findings) < count:
        renames = {name: f"{name}-{copy:04d}" for name in names}
        findings.extend(_copy(f, copy, renames) for f in seed.findings)
        copy += 1
    inputs = replace(seed.inputs, resources=len({f.resource for f in findings[:count]}) * 3 // 2)  # some clean ones
    return replace(seed, findings=tuple(findings[:count]), inputs=inputs)


def write_timed(report: Report, path: Path) -> tuple[float, float]:
    start = time.perf_counter()
    with path.open("w", encoding="utf-8") as stream:
        write(report, stream)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    write(report, io.StringIO())  # the same page again, to a buffer, for the memory it allocates
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 1024 / 1024


def load_times(path: Path, runs: int, screenshot: Path | None, searches: list[float]) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for run in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            start = time.perf_counter()
            page.goto(path.as_uri(), wait_until="commit", timeout=600_000)
            page.wait_for_selector("html[data-rendered]", state="attached", timeout=600_000)
            outside = time.perf_counter() - start
            inside = float(page.evaluate("document.documentElement.dataset.rendered")) / 1000
            assert not errors, errors
            assert page.locator("details.group").count() > 0
            if screenshot is not None and run == 0:
                page.screenshot(path=str(screenshot))
            # a filter over every finding: a search that builds each finding's text on first use
            before = page.get_attribute("#shown", "data-count")
            start = time.perf_counter()
            page.evaluate("location.hash = 'q=values-production%20runs'")
            while page.get_attribute("#shown", "data-count") == before:
                time.sleep(0.005)
            searches.append(time.perf_counter() - start)
            times.append((inside, outside))
            page.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=80_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the page here (else a temporary file)")
    parser.add_argument("--screenshot", type=Path, help="a 1400x2000 screenshot of the first load")
    args = parser.parse_args()
    os.chdir(REPO)  # the fixture's paths are repository-relative
    report = big_report(args.findings)
    resources = len({f.resource for f in report.findings})
    messages = len({f.message for f in report.findings})
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "report.html"
        seconds, peak = write_timed(report, path)
        size = path.stat().st_size / 1024 / 1024
        searches: list[float] = []
        times = load_times(path, args.runs, args.screenshot, searches)
    inside = statistics.median(t for t, _ in times)
    outside = statistics.median(t for _, t in times)
    joined = sum(1 for f in report.findings if f.joined)
    rendered = sum(1 for f in report.findings if f.location.rendered)
    print(f"report: {len(report.findings):,} findings ({joined:,} with joined rules, {rendered:,} rendered from charts), "
          f"{resources:,} resources, {NAMESPACES} namespaces, {messages:,} distinct messages")
    print(f"writer: {seconds:.2f} s, peak allocated {peak:.0f} MiB; file {size:.1f} MB")
    print(f"chromium: first page of findings rendered {inside:.2f} s after navigation start "
          f"({outside:.2f} s seen from outside; median of {len(times)}: "
          + ", ".join(f"{t:.2f}" for t, _ in times) + ")")
    print(f"chromium: a search over every finding shown {statistics.median(searches):.2f} s after the URL changed "
          "(median; the first search builds each finding's text)")
    assert size < SIZE_BUDGET_MB, f"file {size:.1f} MB is over the {SIZE_BUDGET_MB} MB budget"
    assert outside < LOAD_BUDGET_S, f"load {outside:.2f} s is over the {LOAD_BUDGET_S} s budget"
    print(f"budgets met: file < {SIZE_BUDGET_MB:.0f} MB, load < {LOAD_BUDGET_S:.0f} s")


if __name__ == "__main__":
    main()
