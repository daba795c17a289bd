"""Counts that several writers show: findings by severity and rule, the gate verdict."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from kaudit.model import Finding, Location, PlatformSummary, Report, ResourceRef, Severity


def by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {s.label: counts.get(s, 0) for s in sorted(Severity, reverse=True)}


def by_rule(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(sorted(Counter(f.rule for f in findings).items()))


def joined_text(finding: Finding) -> str:
    """The rules joined to a finding (kaudit/relations.py), each once: "privilege-escalation-allowed,
    dangerous-capabilities ×2, workload-not-isolated-ingress on Deployment/shop/web"; "" when none."""
    joined: dict[str, list[ResourceRef]] = {}  # rule -> the object of each of its findings
    for entry in finding.joined:
        joined.setdefault(entry.rule, []).append(entry.resource)
    parts = []
    for rule, objects in joined.items():
        elsewhere = [ref for ref in objects if ref != finding.resource]
        times = f" ×{len(objects)}" if len(objects) > 1 else ""
        if not elsewhere:
            parts.append(rule + times)
        elif len(set(elsewhere)) == 1:
            parts.append(f"{rule}{times} on {elsewhere[0].describe()}")
        else:
            parts.append(f"{rule}{times} on {len(set(elsewhere))} other objects")
    return ", ".join(parts)


def plural(count: int, word: str) -> str:
    """"1 finding", "3 findings"."""
    return f"{count} {word}{plural_s(count)}"


def plural_s(count: int) -> str:
    """The plural ending for `count` of a regular noun: "" for one, "s" otherwise."""
    return "" if count == 1 else "s"


def platform_text(platform: PlatformSummary) -> str:
    """"135 platform defaults, identical to Kubernetes v1.36 bootstrap policy (24 findings not shown:
    --include-platform)"; modified defaults counted too; "" when the scan holds no platform object."""
    parts = []
    if platform.objects:
        policy = f"Kubernetes {', '.join('v' + m for m in platform.minors)} bootstrap policy"
        if platform.server_minor:
            policy += f" (nearest to the server's v{platform.server_minor})"
        others = platform.objects - platform.bootstrap
        text = plural(platform.objects, "platform default")
        if not others:
            text += f", identical to {policy}"
        elif platform.bootstrap:
            text += f": {platform.bootstrap} identical to {policy}, {plural(others, 'control-plane object')}"
        else:
            text += " (created by the control plane)"
        parts.append(text)
    if platform.modified:
        parts.append(f"{platform.modified} modified" if parts else plural(platform.modified, "modified platform default"))
    text = ", ".join(parts)
    if platform.findings_hidden:
        text += f" ({plural(platform.findings_hidden, 'finding')} not shown: --include-platform)"
    elif platform.findings_shown:
        text += f" ({plural(platform.findings_shown, 'finding')} on them shown)"
    return text


def gate_verdict(report: Report) -> str:
    """'pass', 'fail' (findings at or above --fail-on) or 'incomplete' (input or rule errors)."""
    if not report.complete:
        return "incomplete"
    return "fail" if report.failing_findings() else "pass"


def summary(report: Report) -> dict[str, Any]:
    """The report's summary block (JSON `summary`; SARIF run properties)."""
    active = report.active_findings
    return {
        "findings": len(active),
        "suppressed": len(report.findings) - len(active),
        "bySeverity": by_severity(active),
        "byRule": by_rule(active),
        "joinedByRule": dict(sorted(Counter(j.rule for f in active for j in f.joined).items())),
        "failOn": report.fail_on.label if report.fail_on is not None else "never",
        "failing": len(report.failing_findings()),
        "verdict": gate_verdict(report),
    }


def rendered_text(location: Location) -> str:
    """Where a rendered finding's value came from, when that is not the line shown: the values key
    or the patch that set it, or why the values key is unknown."""
    rendered = location.rendered
    if rendered is None:
        return ""
    if rendered.patch is not None:  # a finding a patch wrote is located at the patch: say only how
        return f"written by {rendered.how or 'a patch'}"
    said = rendered.describe()
    if said:
        return said
    return f"values key not traced: {rendered.values_note}" if rendered.values_note else ""


def short_message(finding: Finding) -> str:
    """The message under a heading that names its object: `Pod "web" runs …` reads `runs …` under
    `Pod shop/web` (the JSON and SARIF messages stay whole)."""
    message, ref = finding.message, finding.resource
    prefix = f'{ref.kind} "{ref.name}"'
    if message.startswith(prefix + ": ") or message.startswith(prefix + " "):
        return message[len(prefix):].lstrip(": ") or message
    return message


def risk_name(finding: Finding) -> str:
    """The rule as a phrase: its id names the bad pattern ("privileged-container" -> "privileged
    container"), shorter than its title and found again by eye in the finding lines above."""
    return finding.rule.replace("-", " ")


def object_name(ref: ResourceRef) -> str:
    """"ops/node-tools", or "admin-all" for a cluster-scoped object."""
    return f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name


def top_risks(findings: Iterable[Finding], levels: int = 2) -> list[tuple[Severity, int, list[str]]]:
    """The highest `levels` severities present, each with its count and one phrase per rule, the
    rules on the most objects first: "privileged container in ops/node-tools", "host PID on 3 objects"."""
    found: dict[Severity, dict[str, list[Finding]]] = {}
    for finding in findings:
        found.setdefault(finding.severity, {}).setdefault(finding.rule, []).append(finding)
    risks = []
    for severity in sorted(found, reverse=True)[:levels]:
        rules = found[severity]
        phrases = []
        for group in sorted(rules.values(), key=lambda group: -len({f.resource for f in group})):
            objects = list(dict.fromkeys(f.resource for f in group))
            where = f"in {object_name(objects[0])}" if len(objects) == 1 else f"on {len(objects)} objects"
            phrases.append(f"{risk_name(group[0])} {where}")
        risks.append((severity, sum(len(group) for group in rules.values()), phrases))
    return risks
