"""Terminal and pre-commit output: `file:line:col  severity  rule  message`, grouped by file."""
from __future__ import annotations

import os
from itertools import groupby
from typing import TextIO

from kaudit.model import FrameworkResult, Inputs, Report, Severity
from kaudit.writers.summary import by_severity, gate_verdict, joined_text, platform_text, rendered_text

MAX_SKIPPED_SHOWN = 20
_COLOURS = {
    Severity.CRITICAL: "\033[1;35m", Severity.HIGH: "\033[1;31m", Severity.MEDIUM: "\033[33m",
    Severity.LOW: "\033[36m", Severity.INFO: "\033[2m",
}
_RESET, _DIM, _BOLD = "\033[0m", "\033[2m", "\033[1m"


def _use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write(report: Report, stream: TextIO) -> None:
    colour = _use_colour(stream)

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    findings = report.active_findings
    for file, group in groupby(findings, key=lambda f: f.location.file or f.location.describe()):
        stream.write(paint(file, _BOLD) + "\n")
        for finding in group:
            where = finding.location.describe()
            severity = paint(f"{finding.severity.label:<8}", _COLOURS[finding.severity])
            stream.write(f"  {where}  {severity} {finding.rule}  {finding.resource.describe()}: {finding.message}\n")
            provenance = rendered_text(finding.location)
            if provenance:
                stream.write(paint(f"      {provenance}", _DIM) + "\n")
            if finding.joined:  # the same fact seen by other rules, or its consequences: one line, no location
                stream.write(paint(f"      also: {joined_text(finding)}", _DIM) + "\n")
        stream.write("\n")
    inputs = report.inputs
    for label, text in _problems(report):
        stream.write(f"{paint(label, _COLOURS[_LABEL_SEVERITY[label]])}: {text}\n")
    for skipped in inputs.skipped[:MAX_SKIPPED_SHOWN]:
        where = skipped.file if skipped.line is None else f"{skipped.file}:{skipped.line}"
        stream.write(paint(f"skipped: {where}: {skipped.reason}", _DIM) + "\n")
    if len(inputs.skipped) > MAX_SKIPPED_SHOWN:
        stream.write(paint(f"skipped: … and {len(inputs.skipped) - MAX_SKIPPED_SHOWN} more (see -f json)", _DIM) + "\n")
    if report.framework_selected:
        for result in report.frameworks:
            stream.write(framework_line(result) + "\n")
    elif report.frameworks:
        compact = " · ".join(f"{r.id} {r.count('pass')} pass / {r.count('fail')} fail / "
                             f"{r.count('not-evaluated')} not evaluated / {r.count('not-covered')} not covered"
                             for r in report.frameworks)
        stream.write(paint(f"controls: {compact}", _DIM) + "\n")
    for unit in inputs.rendered:
        if unit.error is None:
            options = f", {' '.join(unit.options)}" if unit.options else ""
            stream.write(paint(f"rendered: {unit.directory} ({unit.kind}, {unit.renderer}{options}): "
                               f"{unit.objects} object{'s' if unit.objects != 1 else ''}", _DIM) + "\n")
    if inputs.workloads:
        count = len(inputs.workloads)
        stream.write(paint(f"{count} custom resource{'s' if count != 1 else ''} judged as workload{'s' if count != 1 else ''}"
                           " (see -f json)", _DIM) + "\n")
    stream.write(summary_line(report) + "\n")


_LABEL_SEVERITY = {"error": Severity.HIGH, "gap": Severity.HIGH, "not evaluated": Severity.MEDIUM,
                   "partially evaluated": Severity.LOW, "warning": Severity.MEDIUM}
EMPTY_SCAN = "no Kubernetes objects in the inputs: nothing was judged (--allow-empty to accept that)"


def _problems(report: Report) -> list[tuple[str, str]]:
    """Everything that makes a scan incomplete or doubtful, as (label, text), in the order shown."""
    inputs = report.inputs
    lines = [("error", error.describe()) for error in inputs.errors]
    lines += [("error", message) for message in report.rule_errors]
    if report.saw_nothing and not report.empty_allowed:
        lines.append(("error", EMPTY_SCAN))
    if report.coverage is not None:
        lines += [("gap", gap.describe()) for gap in report.coverage.gaps]
        lines += [("not evaluated", f"{rule}: {why}") for rule, why in report.coverage.rules_not_evaluated]
        lines += [("partially evaluated", f"{rule}: {why}")
                  for rule, why in report.coverage.rules_partially_evaluated]
    lines += [("gap", f"image {image} could not be checked: {why}") for image, why in report.images.gaps]
    lines += [("warning", warning.describe()) for warning in inputs.warnings]
    return lines


def _sources_text(inputs: Inputs) -> str:
    """"12 files", "12 files, 2 charts, 1 kustomization": what the objects came from."""
    charts = sum(1 for unit in inputs.rendered if unit.kind == "helm" and unit.error is None)
    overlays = sum(1 for unit in inputs.rendered if unit.kind == "kustomize" and unit.error is None)
    parts = [f"{inputs.files} file{'s' if inputs.files != 1 else ''}"] if inputs.files or not (charts or overlays) else []
    parts += [f"{charts} chart{'s' if charts != 1 else ''}"] if charts else []
    parts += [f"{overlays} kustomization{'s' if overlays != 1 else ''}"] if overlays else []
    return ", ".join(parts)


def problem_lines(report: Report) -> list[str]:
    """The same, uncoloured, for standard error when no text report is shown."""
    return [f"{label}: {text}" for label, text in _problems(report)]


def framework_line(result: FrameworkResult) -> str:
    failing = [c.id for c in result.controls if c.status == "fail"]
    line = (f"{result.id}: {result.count('pass')} controls pass, {result.count('fail')} fail, "
            f"{result.count('not-evaluated')} not evaluated, {result.count('not-covered')} not covered")
    line += f" (failing: {', '.join(failing)})" if failing else ""
    return line + (f" · {result.versions}" if result.versions else "")


def summary_line(report: Report) -> str:
    findings = report.active_findings
    counts = ", ".join(f"{n} {label}" for label, n in by_severity(findings).items() if n)
    suppressed = len(report.findings) - len(findings)
    inputs = report.inputs
    parts = [f"{len(findings)} finding{'s' if len(findings) != 1 else ''}" + (f" ({counts})" if counts else "")]
    coverage = report.coverage
    if coverage is None:
        parts += [f"{inputs.resources} resources from {_sources_text(inputs)}",
                  f"{inputs.documents} documents, {len(inputs.skipped)} skipped, {len(inputs.errors)} errors"]
    else:
        parts += [f"{inputs.resources} resources from context {coverage.context} (Kubernetes {coverage.version})",
                  f"{len(coverage.gaps)} coverage gap{'s' if len(coverage.gaps) != 1 else ''}"
                  + (" (allowed)" if coverage.open_gaps and report.gaps_allowed else "")
                  + (f" ({len(coverage.gaps) - len(coverage.open_gaps)} accepted)"
                     if len(coverage.open_gaps) < len(coverage.gaps) else "")]
    if platform_text(report.platform):
        parts.append(platform_text(report.platform))
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    images = report.images
    if images.signatures_checked:
        parts.append(f"{images.checked} images verified ({images.from_cache} from cache)")
    else:
        parts.append("image signatures not checked")
    if report.saw_nothing:
        parts.append("nothing judged" + (" (--allow-empty)" if report.empty_allowed else ""))
    verdict = gate_verdict(report)
    if verdict == "incomplete":
        parts.append("scan incomplete")
    elif report.fail_on is None:
        parts.append("gate off")
    else:
        failing = len(report.failing_findings())
        parts.append(f"gate {verdict}: {failing} at or above {report.fail_on.label}")
    return " · ".join(parts)
