"""Markdown for pull-request comments and `$GITHUB_STEP_SUMMARY`: verdict, counts, top findings.

GitHub renders inline HTML in Markdown, so every string that can come from a manifest (names,
messages, file names, reasons) is escaped for both: HTML entities for `<`, `>`, `&`, a backslash
for Markdown punctuation, spaces for newlines (a table row is one line).
"""
from __future__ import annotations

import html
import re
from typing import TextIO

from kaudit.model import Finding, Location, Report
from kaudit.writers.summary import by_severity, gate_verdict, joined_text, platform_text, rendered_text

MAX_FINDINGS = 20
MAX_ERRORS = 10
MAX_CELL = 300  # a PR comment holds 65,536 characters: long messages are clipped, the full report has them
ICONS = {"pass": "✅", "fail": "❌", "incomplete": "⚠️"}
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029]")
# "@name" after a non-word character would notify a GitHub user or team: a zero-width space defuses it.
_MENTION = re.compile(r"(?<!\w)@(?=[A-Za-z0-9])")


def escape(text: str) -> str:
    """Text from a manifest as inert Markdown and HTML, on one line."""
    text = _NEWLINES.sub(" ", text)
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    text = html.escape(text, quote=False)
    return _MENTION.sub("@\u200b", text)


def clip(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def write(report: Report, stream: TextIO) -> None:
    stream.write(render(report))


def render(report: Report) -> str:
    active = report.active_findings
    suppressed = len(report.findings) - len(active)
    lines = [_heading(report), ""]

    counts = by_severity(active)
    lines += ["| " + " | ".join([*counts, "suppressed"]) + " |",
              "|" + "---:|" * (len(counts) + 1),
              "| " + " | ".join(str(n) for n in [*counts.values(), suppressed]) + " |", ""]

    if report.frameworks:
        lines += [f"- **{escape(result.title)}**: {result.count('pass')} controls pass, "
                  f"{result.count('fail')} fail, {result.count('not-evaluated')} not evaluated, "
                  f"{result.count('not-covered')} not covered"
                  for result in report.frameworks]
        lines.append("")

    inputs = report.inputs
    lines.append(f"**Inputs:** {inputs.files} file{_s(inputs.files)}, {inputs.documents} "
                 f"document{_s(inputs.documents)}, {inputs.resources} resource{_s(inputs.resources)}; "
                 f"{len(inputs.skipped)} skipped, {len(inputs.errors)} error{_s(len(inputs.errors))}"
                 + (f", {len(report.rule_errors)} rule error{_s(len(report.rule_errors))}" if report.rule_errors else ""))
    if platform_text(report.platform):
        lines += ["", f"**Platform:** {escape(platform_text(report.platform))}"]
    problems = [f"- ⚠️ {escape(clip(error.describe()))}" for error in inputs.errors]
    problems += [f"- ⚠️ {escape(clip(message))}" for message in report.rule_errors]
    if problems:
        lines.append("")
        lines += problems[:MAX_ERRORS]
        if len(problems) > MAX_ERRORS:
            lines.append(f"- … and {len(problems) - MAX_ERRORS} more")
    lines.append("")

    if active:
        top = sorted(active, key=lambda f: -f.severity)[:MAX_FINDINGS]
        lines += ["| severity | rule | location | resource | message |", "|---|---|---|---|---|"]
        lines += [_row(finding) for finding in top]
        lines.append("")
        if len(active) > len(top):
            lines += [f"… and {len(active) - len(top)} more", ""]
    else:
        lines += ["No findings.", ""]
    if suppressed:
        lines += [f"{suppressed} suppressed finding{_s(suppressed)} not listed.", ""]
    return "\n".join(lines)


def _heading(report: Report) -> str:
    verdict = gate_verdict(report)
    active = len(report.active_findings)
    if verdict == "incomplete":
        errors = len(report.inputs.errors) + len(report.rule_errors)
        text = f"scan incomplete ({errors} error{_s(errors)}), {active} finding{_s(active)}"
    elif report.fail_on is None:
        text = f"{active} finding{_s(active)}, gate off"
    elif verdict == "fail":
        failing = len(report.failing_findings())
        text = f"failed: {failing} finding{_s(failing)} at or above {report.fail_on.label}"
    else:
        text = f"passed: no findings at or above {report.fail_on.label}" + (f" ({active} below)" if active else "")
    return f"### {ICONS[verdict]} kaudit {text}"


def _row(finding: Finding) -> str:
    resource = finding.resource.describe() + (f" ({finding.container})" if finding.container else "")
    also = f" (also: {joined_text(finding)})" if finding.joined else ""
    cells = [finding.severity.label, escape(finding.rule), escape(clip(_where(finding.location))),
             escape(clip(resource)), escape(clip(finding.message + also))]
    return "| " + " | ".join(cells) + " |"


def _where(location: Location) -> str:
    if location.file is None:
        return location.describe()
    where = location.file if location.line is None else f"{location.file}:{location.line}"
    provenance = rendered_text(location)
    return f"{where} ({provenance})" if provenance else where


def _s(count: int) -> str:
    return "" if count == 1 else "s"
