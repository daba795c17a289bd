"""The HTML report: one self-contained page for people, rendered from reports/report.html.j2.

Everything from a manifest or a rule file reaches the page through Jinja2 autoescaping; the page
loads nothing (inline CSS and JS, no URLs fetched) and its Content-Security-Policy allows only its
own inline style and script, by hash, so markup that slipped through escaping still could not run.
"""
from __future__ import annotations

import base64
import hashlib
from collections import Counter
from typing import Any, Optional, TextIO

from kaudit.model import Finding, Report, RuleInfo, Severity
from kaudit.paths import reports_dir
from kaudit.value import value
from kaudit.writers.summary import by_rule, by_severity, gate_verdict, joined_text, platform_text, rendered_text

TEMPLATE = "report.html.j2"
_HASHED_BLOCKS = ("style", "script")  # inline <style> and <script>, allowed by the CSP by their hash
_SEVERITIES = sorted(Severity, reverse=True)


@value
class NamespaceCount:
    """Findings per severity in one namespace (the HTML report's table)."""

    namespace: Optional[str]  # None: cluster-scoped resources
    total: int
    by_severity: dict[str, int]


@value
class RuleCount:
    """Findings of one rule (the HTML report's table)."""

    id: str
    title: str
    severity: Severity
    findings: int


def write(report: Report, stream: TextIO) -> None:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(reports_dir()), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["code_spans"] = code_spans
    env.tests["web_link"] = is_web_link
    env.globals["joined_text"] = joined_text
    env.globals["rendered_text"] = rendered_text
    template = env.get_template(TEMPLATE)
    context = _context(report)
    csp = {name: _csp_hash("".join(template.blocks[name](template.new_context(context))))
           for name in _HASHED_BLOCKS}
    for chunk in template.generate(**context, csp=csp):
        stream.write(chunk)


def _csp_hash(source: str) -> str:
    return base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def code_spans(text: str) -> list[tuple[str, bool]]:
    """Rule docs mark code with backticks: "`runAsNonRoot` is unset" -> [("runAsNonRoot", True), ...]."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: show the text as it is
        return [(text, False)]
    return [(part, index % 2 == 1) for index, part in enumerate(parts) if part]


def is_web_link(url: str) -> bool:
    """Only http(s) references become links: a custom rule's `javascript:` URL stays text."""
    return url.lower().startswith(("https://", "http://"))


def _context(report: Report) -> dict[str, Any]:
    active = report.active_findings
    active_by_rule = by_rule(active)
    rules = {info.id: info for info in report.rules}
    verdict = gate_verdict(report)
    findings = sorted(report.findings, key=lambda f: -f.severity)  # stable: report order within a severity
    return {
        "report": report,
        "rules": rules,
        "findings": findings,
        "active": active,
        "suppressed": len(report.findings) - len(active),
        "platform": platform_text(report.platform),
        "failing": len(report.failing_findings()),
        "verdict": "off" if verdict == "pass" and report.fail_on is None else verdict,
        "severities": [s.label for s in _SEVERITIES],
        "by_severity": by_severity(active),
        "all_by_severity": by_severity(report.findings),
        "namespaces": _by_namespace(active),
        "rule_counts": _rule_counts(active_by_rule, rules, report.findings),
        "quiet_rules": [info for info in report.rules if info.id not in active_by_rule],
        # a rule joined to another's finding (kaudit/relations.py) is filterable and documented too
        "rule_options": sorted(Counter(rule for f in report.findings for rule in f.rules).items()),
        "doc_rules": sorted({rule for f in report.findings for rule in f.rules}),
        "namespace_options": sorted({f.resource.namespace for f in report.findings},
                                    key=lambda n: (n is not None, n or "")),  # cluster-scoped first
    }


def _by_namespace(findings: tuple[Finding, ...]) -> list[NamespaceCount]:
    groups: dict[Optional[str], Counter[str]] = {}
    for finding in findings:
        groups.setdefault(finding.resource.namespace, Counter())[finding.severity.label] += 1
    counts = [NamespaceCount(namespace, sum(counter.values()), {s.label: counter.get(s.label, 0) for s in _SEVERITIES})
              for namespace, counter in groups.items()]
    return sorted(counts, key=lambda c: (-c.total, c.namespace is not None, c.namespace or ""))


def _rule_counts(counts: dict[str, int], rules: dict[str, RuleInfo], findings: tuple[Finding, ...]) -> list[RuleCount]:
    first = {f.rule: f for f in reversed(findings)}  # a finding's own title and severity if its rule is not listed
    result = []
    for rule_id, count in counts.items():
        info = rules.get(rule_id)
        title, severity = (info.title, info.severity) if info else (first[rule_id].title, first[rule_id].severity)
        result.append(RuleCount(rule_id, title, severity, count))
    return sorted(result, key=lambda r: (-r.severity, -r.findings, r.id))
