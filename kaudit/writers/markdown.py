"""Markdown for pull-request comments and `$GITHUB_STEP_SUMMARY`: verdict, counts, top risks, then
the findings as the text report lays them out (kaudit/writers/text.py): most severe first, one table
per severity, each object named once (on its first row). Display options as in text (`display=`).

GitHub renders inline HTML in Markdown, so every string that can come from a manifest (names,
messages, file names, reasons) is escaped for both: HTML entities for `<`, `>`, `&`, a backslash
for Markdown punctuation, spaces for newlines (a table row is one line).

An attack path finding shows its chain under its message, in the same cell (a table row cannot be
split): `<br>` and the nodes joined by `->`, each escaped like any other manifest text.
"""
from __future__ import annotations

import html
import re
from typing import Any, Optional, TextIO

from kaudit.model import Finding, Location, Report, ResourceRef, Severity
from kaudit.writers.attack_steps import chain_text
from kaudit.writers.display import Display
from kaudit.writers.summary import (by_severity, gate_verdict, joined_text, object_name, platform_text,
                                    plural_s, rendered_text, short_message, top_risks)

MAX_FINDINGS = 20
MAX_RISKS = 5  # phrases per severity in the top risks
MAX_ERRORS = 10
MAX_CHAIN = 600  # an attack path's chain, under its message
MAX_CELL = 300  # a PR comment holds 65,536 characters: long messages are clipped, the full report has them
ICONS = {"pass": "✅", "fail": "❌", "incomplete": "⚠️"}
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # an escape sequence in a job log would be obeyed
# "@name" after a non-word character would notify a GitHub user or team: a zero-width space defuses it.
_MENTION = re.compile(r"(?<!\w)@(?=[A-Za-z0-9])")


def escape(text: str) -> str:
    """Text from a manifest as inert Markdown and HTML, on one line, control characters shown."""
    text = _CONTROLS.sub(lambda match: f"\\x{ord(match[0]):02x}", _NEWLINES.sub(" ", text))
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    text = html.escape(text, quote=False)
    return _MENTION.sub("@\u200b", text)


def clip(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def write(report: Report, stream: TextIO, display: Display = Display()) -> None:
    stream.write(render(report, display))


def render(report: Report, display: Display = Display()) -> str:
    active = report.active_findings
    shown = [finding for finding in active if display.shows(finding.severity)]
    suppressed = len(report.findings) - len(active)
    lines = [_heading(report), ""]

    counts = by_severity(active)
    lines += ["| " + " | ".join([*counts, "suppressed"]) + " |",
              "|" + "---:|" * (len(counts) + 1),
              "| " + " | ".join(str(n) for n in [*counts.values(), suppressed]) + " |", ""]
    if display.quiet:
        return "\n".join(lines + _problems(report))
    risks = top_risks(shown)
    if risks:
        lines.append("**Top risks**")
        lines.append("")
        for severity, count, phrases in risks:
            more = f", … {len(phrases) - MAX_RISKS} more" if len(phrases) > MAX_RISKS else ""
            lines.append(f"- **{count} {severity.label}:** {escape(', '.join(phrases[:MAX_RISKS]))}{more}")
        lines.append("")

    if report.frameworks and (report.framework_selected or display.verbose):
        lines += [f"- **{escape(result.title)}**: {result.count('pass')} controls pass, "
                  f"{result.count('fail')} fail, {result.count('not-evaluated')} not evaluated, "
                  f"{result.count('not-covered')} not covered"
                  for result in report.frameworks]
        lines.append("")

    inputs = report.inputs
    lines.append(f"**Inputs:** {inputs.files} file{plural_s(inputs.files)}, {inputs.documents} "
                 f"document{plural_s(inputs.documents)}, {inputs.resources} resource{plural_s(inputs.resources)}; "
                 f"{len(inputs.skipped)} skipped, {len(inputs.errors)} error{plural_s(len(inputs.errors))}"
                 + (f", {len(report.rule_errors)} rule error{plural_s(len(report.rule_errors))}" if report.rule_errors else ""))
    if platform_text(report.platform):
        lines += ["", f"**Platform:** {escape(platform_text(report.platform))}"]
    lines += _problems(report)

    if shown:
        top = sorted(shown, key=lambda f: -f.severity)[:MAX_FINDINGS]
        totals = {severity: sum(1 for f in shown if f.severity == severity) for severity in Severity}
        lines += _tables(top, totals, display, report.attack)
        if len(shown) > len(top):
            lines += [f"… and {len(shown) - len(top)} more (all of them: `-f html`, `-f json`)", ""]
    elif not active:
        lines += ["No findings.", ""]
    hidden = len(active) - len(shown)
    if hidden:
        level = display.min_severity.label
        lines += [f"{hidden} finding{plural_s(hidden)} below {level} not listed (`--min-severity {level}`).", ""]
    if suppressed:
        lines += [f"{suppressed} suppressed finding{plural_s(suppressed)} not listed.", ""]
    return "\n".join(lines)


def _problems(report: Report) -> list[str]:
    """What the text report says before its verdict (kaudit/writers/text.py): errors, nothing judged,
    coverage gaps, rules not or partly evaluated, images not checked, warnings; one list, labelled."""
    from kaudit.writers.text import problems as problems_of

    listed = problems_of(report)
    if not listed:
        return [""]
    found = [f"- ⚠️ **{label}:** {escape(clip(text))}" for label, text in listed if label != "warning"]
    found += [f"- {label}: {escape(clip(text))}" for label, text in listed if label == "warning"]
    lines = ["", *found[:MAX_ERRORS]]
    if len(found) > MAX_ERRORS:
        lines.append(f"- … and {len(found) - MAX_ERRORS} more")
    return lines + [""]


TABLE_HEADER = "| object | location | rule | message |"
CLUSTER_HEADER = "| object | rule | message |"  # live objects: the object is the place


def _tables(findings: list[Finding], totals: dict[Severity, int], display: Display,
            report_attack: Any = None) -> list[str]:
    """One table per severity; within it one group of rows per object (report order), the object
    named on its first row. `totals`: the findings of each severity, listed or not."""
    groups: dict[tuple[Severity, ResourceRef], list[Finding]] = {}
    for finding in findings:  # already most severe first
        groups.setdefault((finding.severity, finding.resource), []).append(finding)
    located = any(finding.location.file is not None for finding in findings)
    header = [TABLE_HEADER, "|---|---|---|---|"] if located else [CLUSTER_HEADER, "|---|---|---|"]
    lines: list[str] = []
    current = None
    for (severity, ref), group in groups.items():
        if severity != current:
            listed = sum(1 for finding in findings if finding.severity == severity)
            count = f"{listed} of {totals[severity]}" if listed < totals[severity] else str(listed)
            lines += [*([""] if current is not None else []),
                      f"#### {severity.label} ({count})", "", *header]
            current = severity
        lines += [_row(finding, ref if index == 0 else None, located, display, report_attack)
                  for index, finding in enumerate(group)]
    return lines + [""]


def _heading(report: Report) -> str:
    verdict = gate_verdict(report)
    active = len(report.active_findings)
    if verdict == "incomplete":
        from kaudit.writers.text import incomplete_reasons

        text = f"scan incomplete ({incomplete_reasons(report)}), {active} finding{plural_s(active)}"
    elif report.fail_on is None:
        text = f"{active} finding{plural_s(active)}, gate off"
    elif verdict == "fail":
        failing = len(report.failing_findings())
        text = f"failed: {failing} finding{plural_s(failing)} at or above {report.fail_on.label}"
    else:
        text = f"passed: no findings at or above {report.fail_on.label}" + (f" ({active} below)" if active else "")
    return f"### {ICONS[verdict]} kaudit {text}"


def _row(finding: Finding, ref: Optional[ResourceRef], located: bool, display: Display, attack: Any = None) -> str:
    name = f"**{escape(clip(f'{ref.kind} {object_name(ref)}'))}**" if ref is not None else ""
    message = finding.message if display.verbose else short_message(finding)
    if display.verbose and finding.joined:
        message += f" (also: {joined_text(finding)})"
    where = [escape(clip(_where(finding.location, display)))] if located else []
    said = escape(clip(message))
    if finding.attack_path is not None:
        said += "<br>" + escape(clip(chain_text(finding.attack_path, attack), MAX_CHAIN))
    cells = [name, *where, escape(finding.rule), said]
    return "| " + " | ".join(cells) + " |"


def _where(location: Location, display: Display) -> str:
    """`file:line`, with the values key that set a chart's field (always: the fix goes there) or,
    with -v, any other provenance; "" on a cluster (the object is the place)."""
    if location.file is None:
        return ""
    where = location.file if location.line is None else f"{location.file}:{location.line}"
    values = location.rendered is not None and location.rendered.values is not None
    provenance = rendered_text(location) if values or display.verbose else ""
    return f"{where} ({provenance})" if provenance else where


