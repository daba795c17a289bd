"""Terminal and pre-commit output, most severe first.

    CRITICAL  DaemonSet ops/node-agent
      examples/manifests/insecure/node-agent.yaml:23:11  privileged-container  container "agent" runs privil…

A heading per severity and object names the object once; each finding line keeps its own
`file:line:col` first, so a terminal or editor opens the line it names (pre-commit output is
clicked), then the rule and the message, cut to fit 120 columns (`-v` prints it whole beneath).
A message that starts by naming its object (`Pod "web" …`) drops that name under the heading.
Then errors and warnings, the top risks and the one-line verdict (`summary_line`) close the output.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, TextIO

from kaudit.model import Finding, FrameworkResult, Inputs, Report, ResourceRef, Severity
from kaudit.writers.display import WIDTH, Display, use_color
from kaudit.writers.summary import (by_severity, gate_verdict, joined_text, object_name, platform_text,
                                    plural_s, rendered_text, short_message, top_risks)

MAX_SKIPPED_SHOWN = 20
MAX_LOCATION = 64  # wider locations are not padded: the column is aligned within an object's group
MAX_RULE = 40
RISK_LINES = 2  # lines of top risks per severity
MIN_MESSAGE = 20  # less room than this on the finding line: the message goes on the next line
INDENT = "  "
DETAIL = "      "  # -v lines under a finding
_COLOURS = {
    Severity.CRITICAL: "\033[1;35m", Severity.HIGH: "\033[1;31m", Severity.MEDIUM: "\033[33m",
    Severity.LOW: "\033[36m", Severity.INFO: "\033[2m",
}
_RESET, _DIM, _BOLD = "\033[0m", "\033[2m", "\033[1m"
# Manifest text reaches the terminal: control characters (escape sequences, newlines) are shown, not obeyed.
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7f, 0xa0)]}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): " "})
# almost no text holds one: a C-speed search first, the (slow, per-character) translate only then
_HAS_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]").search
Paint = Callable[[str, str], str]


def write(report: Report, stream: TextIO, display: Display = Display()) -> None:
    colour = use_color(display.color, stream)

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour and text else text

    lines = _quiet_lines(report, paint) if display.quiet else _lines(report, display, paint)
    for line in lines:  # as they come: a cluster's report can hold 80,000 findings
        stream.write(line + "\n")


def _quiet_lines(report: Report, paint: Paint) -> list[str]:
    lines = [f"{paint(label, _COLOURS[_LABEL_SEVERITY[label]])}: {safe(text)}"
             for label, text in problems(report) if label in ("error", "gap")]
    return lines + [summary_line(report)]


def _lines(report: Report, display: Display, paint: Paint) -> Iterator[str]:
    active = report.active_findings
    shown = [finding for finding in active if display.shows(finding.severity)]
    if shown:
        yield from finding_lines(shown, display, paint)
        yield ""
    yield from _closing(report, active, shown, display, paint)


def _closing(report: Report, active: Sequence[Finding], shown: Sequence[Finding], display: Display,
             paint: Paint) -> list[str]:
    """Errors and warnings, skipped inputs, controls, renders, hidden findings, top risks, the verdict."""
    inputs = report.inputs
    lines = [f"{paint(label, _COLOURS[_LABEL_SEVERITY[label]])}: {safe(text)}" for label, text in problems(report)]
    for skipped in inputs.skipped[:MAX_SKIPPED_SHOWN]:
        where = skipped.file if skipped.line is None else f"{skipped.file}:{skipped.line}"
        lines.append(paint(safe(f"skipped: {where}: {skipped.reason}"), _DIM))
    if len(inputs.skipped) > MAX_SKIPPED_SHOWN:
        lines.append(paint(f"skipped: … and {len(inputs.skipped) - MAX_SKIPPED_SHOWN} more (see -f json)", _DIM))
    if display.verbose:  # the user's own choices (--per-file, no --verify-images): said, not alarmed
        told = set(report.coverage.rules_not_evaluated) if report.coverage is not None else set()
        lines += [paint(safe(f"not run: {rule}: {why}"), _DIM) for rule, why in report.rules_not_run
                  if (rule, why) not in told]
    if report.framework_selected:
        lines += [framework_line(result) for result in report.frameworks]
    elif report.frameworks and display.verbose:
        compact = " · ".join(f"{r.id} {r.count('pass')} pass / {r.count('fail')} fail / "
                             f"{r.count('not-evaluated')} not evaluated / {r.count('not-covered')} not covered"
                             for r in report.frameworks)
        lines.append(paint(f"controls: {compact}", _DIM))
    for unit in inputs.rendered:  # what each chart and overlay gave: a hook run that passes still says it rendered
        if unit.error is None:
            options = f", {' '.join(unit.options)}" if unit.options else ""
            lines.append(paint(safe(f"rendered: {unit.directory} ({unit.kind}, {unit.renderer}{options}): "
                                    f"{unit.objects} object{plural_s(unit.objects)}"), _DIM))
    if inputs.workloads:
        count = len(inputs.workloads)
        lines.append(paint(f"{count} custom resource{plural_s(count)} judged as workload{plural_s(count)} (see -f json)", _DIM))
    hidden = len(active) - len(shown)
    if hidden:
        level = display.min_severity.label
        lines.append(paint(f"{hidden} finding{plural_s(hidden)} below {level} not shown (--min-severity {level})", _DIM))
    lines += attack_lines(report, paint)
    lines += risk_lines(shown, paint)
    lines.append(summary_line(report))
    return lines


ATTACK_FIXES_SHOWN = 3


def attack_lines(report: Report, paint: Paint) -> list[str]:
    """"attack paths: 10 from 6 entry points; the fixes that cut the most:" and the top choke points."""
    attack = report.attack
    if attack is None or not attack.paths:
        return []
    paths = attack.paths
    entries = len({path.source for path in paths})
    lines = [paint(f"attack paths: {len(paths)} from {entries} entry point{plural_s(entries)} to cluster-admin or its "
                   f"equal; the fixes that cut the most (kaudit paths):", _BOLD)]
    for choke in attack.choke_points[:ATTACK_FIXES_SHOWN]:
        where = f" ({choke.edge.evidence[0].location.describe()})" if choke.edge.evidence else ""
        lines.append(clip(safe(f"  cuts {choke.cuts}: {choke.edge.fix}{where}"), WIDTH))
    return lines


def path_steps(path: Any) -> list[str]:
    """An attack path's steps, each `N. kind -> target  file:line`."""
    return [f"{number}. {step.kind} -> {step.target}" +
            (f"  {step.evidence[0].location.describe()}" if step.evidence else "")
            for number, step in enumerate(path.steps, 1)]


def finding_lines(findings: Iterable[Finding], display: Display, paint: Paint) -> Iterator[str]:
    """The findings, most severe first; within a severity, one group per object (in report order,
    which is file order), its heading naming the object once."""
    groups: dict[tuple[Severity, ResourceRef], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: -f.severity):
        groups.setdefault((finding.severity, finding.resource), []).append(finding)
    previous: Optional[Severity] = None
    for (severity, ref), group in groups.items():
        if previous is not None and severity != previous:
            yield ""
        previous = severity
        yield _heading(severity, ref, group[0], paint)
        wheres = [_where(finding) for finding in group]
        width = max(map(len, wheres))
        # the first column aligned within the group: locations, or on a cluster (none) the rules
        rules = max(len(finding.rule) for finding in group) if width == 0 else 0
        width = width if width <= MAX_LOCATION else 0
        for finding, where in zip(group, wheres):
            yield from _finding(finding, where, width, rules if rules <= MAX_RULE else 0, display, paint)


def _heading(severity: Severity, ref: ResourceRef, first: Finding, paint: Paint) -> str:
    """`CRITICAL  Deployment ops/web`, and for a rendered object the chart or overlay it came from."""
    label = f"{severity.label.upper():<8}"
    name = safe(f"{ref.kind} {object_name(ref)}")
    rendered = first.location.rendered
    source = ""
    if rendered is not None:
        unit = "kustomization" if "kustomize" in rendered.renderer else "chart"
        source = safe(f"  rendered from {unit} {rendered.unit}")
    room = WIDTH - len(label) - 2
    if len(name) > room:
        name, source = clip(name, room), ""
    source = clip(source, room - len(name))
    return f"{paint(label, _COLOURS[severity])}  {paint(name, _BOLD)}{paint(source, _DIM)}"


def _where(finding: Finding) -> str:
    """`file:line:col`; "" on a cluster, where the heading's object is the place to fix."""
    location = finding.location
    return safe(location.describe()) if location.file is not None else ""


def _finding(finding: Finding, where: str, width: int, rule_width: int, display: Display,
             paint: Paint) -> list[str]:
    head = INDENT + (f"{where:<{width}}  " if where else "") + f"{safe(finding.rule):<{rule_width}}  "
    full = safe(finding.message)
    message = safe(short_message(finding))
    room = WIDTH - len(head)
    if room >= MIN_MESSAGE:
        lines = [head + clip(message, room)]
    else:  # a very long path: location and rule stay whole (clicked, grepped), the message goes beneath
        room = WIDTH - len(DETAIL)
        lines = [head.rstrip(), DETAIL + clip(message, room)]
    provenance = rendered_text(finding.location)
    values = finding.location.rendered is not None and finding.location.rendered.values is not None
    if display.verbose:
        if message != full or len(message) > room:
            lines += [DETAIL + part for part in wrap(full, WIDTH - len(DETAIL))]
        if finding.location.file is None:
            lines.append(paint(DETAIL + f"at {finding.path_text}", _DIM))
        if provenance:
            lines.append(paint(safe(DETAIL + provenance), _DIM))
        if finding.joined:  # the same fact seen by other rules, or its consequences
            lines.append(paint(safe(DETAIL + f"also: {joined_text(finding)}"), _DIM))  # one line: grep finds it
        if finding.attack_path is not None:
            lines += [paint(clip(safe(DETAIL + step), WIDTH), _DIM) for step in path_steps(finding.attack_path)]
    elif values:  # a chart's fix is in its values: the key that set the field stays, short
        lines.append(paint(clip(safe(DETAIL + provenance), WIDTH), _DIM))
    return lines


def wrap(text: str, width: int) -> list[str]:
    """Greedy wrap at spaces; a word longer than a line starts its own and is cut. (textwrap took
    most of a -v report's time; the text here is already one line without tabs.)"""
    lines = []
    text = text.strip(" ")
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)
        head, text = (text[:width], text[width:]) if cut <= 0 else (text[:cut], text[cut + 1:])
        lines.append(head.rstrip(" "))
        text = text.lstrip(" ")
    if text:
        lines.append(text)
    return lines or [""]


def risk_lines(findings: Iterable[Finding], paint: Paint) -> list[str]:
    """"8 critical: privileged container in ops/node-agent, host PID on 3 objects, … 4 more", for the two
    highest severities found, each in at most RISK_LINES lines of at most 120 columns."""
    lines = []
    for severity, count, phrases in top_risks(findings):
        lead = f"{count} {severity.label}: "
        rows: list[str] = [lead]
        for index, phrase in enumerate(phrases):
            last = index == len(phrases) - 1
            piece = safe(phrase) + ("" if last else ",")
            more = f"… {len(phrases) - index} more"
            row = rows[-1]
            # room for the piece, and unless it is the last, for "… N more" after it on the last row
            reserve = 0 if last or len(rows) < RISK_LINES else len(f" … {len(phrases) - index - 1} more")
            if len(row) + 1 + len(piece) + reserve <= WIDTH or row in (lead, "  "):
                rows[-1] = (row + " " if row not in (lead, "  ") else row) + piece
            elif len(rows) < RISK_LINES:
                rows.append("  " + piece)
            else:
                rows[-1] = row + " " + more
                break
        rows = [clip(row, WIDTH) for row in rows]
        lines += [paint(lead, _COLOURS[severity]) + rows[0][len(lead):], *rows[1:]]
    return lines


def safe(text: str) -> str:
    """Text from a manifest, on one line and with no control character the terminal would obey."""
    return text.translate(_CONTROLS) if _HAS_CONTROL(text) else text


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)].rstrip() + "…"




_LABEL_SEVERITY = {"error": Severity.HIGH, "gap": Severity.HIGH, "not evaluated": Severity.MEDIUM,
                   "partially evaluated": Severity.LOW, "warning": Severity.MEDIUM}
EMPTY_SCAN = "no Kubernetes objects in the inputs: nothing was judged (--allow-empty to accept that)"


def problems(report: Report) -> list[tuple[str, str]]:
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


def incomplete_reasons(report: Report) -> str:
    """Why a scan is incomplete, counted: "2 errors, 3 coverage gaps", "nothing judged"."""
    errors = len(report.inputs.errors) + len(report.rule_errors)
    gaps = 0 if report.gaps_allowed else \
        (len(report.coverage.open_gaps) if report.coverage is not None else 0) + len(report.images.gaps)
    reasons = [f"{errors} error{plural_s(errors)}"] if errors else []
    if gaps:
        reasons.append(f"{gaps} coverage gap{plural_s(gaps)}")
    if report.saw_nothing and not report.empty_allowed:
        reasons.append("nothing judged")
    return ", ".join(reasons) or "see the problems listed"


def problem_lines(report: Report) -> list[str]:
    """The same, uncoloured, for standard error when no text report is shown."""
    return [f"{label}: {text}" for label, text in problems(report)]


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
