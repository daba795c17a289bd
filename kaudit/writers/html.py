"""The HTML report: one self-contained page for people, rendered from reports/report.html.j2.

The page leads with the verdict, the top risks and the summaries (each a filter), then the findings
grouped by resource. The findings travel once, as JSON data (kaudit/writers/html_data.py), and the
page's script renders the page of groups in view: 80,000 findings stay a few MB and load in seconds.

Everything from a manifest or a rule file reaches the page through Jinja2 autoescaping or, in the
data block, through JSON with `<`, `>` and `&` escaped, and the script shows it with textContent only;
the page loads nothing (inline CSS and JS, no URLs fetched) and its Content-Security-Policy allows only
its own inline style and script, by hash, so markup that slipped through escaping still could not run.
The data block is not a script a browser runs (type application/json), so the CSP need not allow it.
"""
from __future__ import annotations

import base64
import hashlib
from collections import Counter
from typing import Any, Optional, TextIO

from kaudit.attack.model import AttackPath
from kaudit.model import Finding, FrameworkResult, Report, RuleInfo, Severity
from kaudit.paths import reports_dir
from kaudit.value import value
from kaudit.writers.html_data import report_data, script_json
from kaudit.writers.summary import by_severity, gate_verdict, platform_text, plural

TEMPLATE = "report.html.j2"
_HASHED_BLOCKS = ("style", "script")  # inline <style> and <script>, allowed by the CSP by their hash
_SEVERITIES = sorted(Severity, reverse=True)


_TOP_NAMESPACES = 8  # bars in the namespace chart; the rest are listed under it
_TOP_RISKS = 6
_TOP_CHOKE_POINTS = 5


@value
class ChokeRow:
    """One fix of the attack paths panel: the paths it cuts and where it is made."""

    cuts: int
    fix: str
    where: str


@value
class AttackPanel:
    """The attack paths panel: how many paths from how many entry points, and the fixes that cut the
    most. `exact`: the engine's counts (a path cut only if no other route is left); otherwise counted
    here, as the path findings that take each fix's step."""

    rule: str  # the rule of the path findings: the panel's link filters on it
    paths: int
    entries: int
    choke_points: tuple[ChokeRow, ...]
    exact: bool


@value
class NamespaceCount:
    """Active findings per severity in one namespace (the namespace chart)."""

    namespace: Optional[str]  # None: cluster-scoped resources
    total: int
    by_severity: dict[str, int]


@value
class RuleCount:
    """Active findings that report one rule, as its own or joined (the rule list: each row a filter)."""

    id: str
    title: str
    severity: Severity
    findings: int


@value
class Risk:
    """One of the top risks: a rule's active findings at the highest severities, with where they are."""

    rule: str
    title: str
    severity: Severity
    findings: int
    resources: tuple[str, ...]  # a few of its objects, "ns/name"
    more: int  # objects beyond those


@value
class Compliance:
    """A framework's score: pass / (pass + fail) of the controls evaluated; the others are counted
    beside it and never as a pass."""

    framework: FrameworkResult
    passed: int
    failed: int
    not_evaluated: int
    not_covered: int

    @property
    def percent(self) -> Optional[int]:
        evaluated = self.passed + self.failed
        return None if not evaluated else (100 * self.passed) // evaluated  # floor: 99.6% is not 100%


def compliance(framework: FrameworkResult) -> Compliance:
    return Compliance(framework, framework.count("pass"), framework.count("fail"),
                      framework.count("not-evaluated"), framework.count("not-covered"))


def write(report: Report, stream: TextIO) -> None:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(reports_dir()), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    template = env.get_template(TEMPLATE)
    context = _context(report)
    csp = {name: _csp_hash("".join(template.blocks[name](template.new_context(context))))
           for name in _HASHED_BLOCKS}
    for chunk in template.generate(**context, csp=csp, data=script_json(report_data(report))):
        stream.write(chunk)


def _csp_hash(source: str) -> str:
    return base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def _context(report: Report) -> dict[str, Any]:
    active = report.active_findings
    rules = {info.id: info for info in report.rules}
    verdict = gate_verdict(report)
    namespaces = _by_namespace(active)
    reported = {rule for f in active for rule in f.rules}
    return {
        "report": report,
        "active": active,
        "suppressed": len(report.findings) - len(active),
        "resources_with_findings": len({f.resource for f in active}),
        "platform": platform_text(report.platform),
        "failing": len(report.failing_findings()),
        "verdict": "off" if verdict == "pass" and report.fail_on is None else verdict,
        "reasons": _incomplete_reasons(report),
        "severities": [s.label for s in _SEVERITIES],
        "by_severity": by_severity(active),
        "top_risks": _top_risks(active, rules),
        "namespaces": namespaces[:_TOP_NAMESPACES],
        "other_namespaces": namespaces[_TOP_NAMESPACES:],
        "namespace_max": max((n.total for n in namespaces), default=0),
        "rule_counts": _rule_counts(active, rules),
        "quiet_rules": [info for info in report.rules if info.id not in reported],
        "compliance": [compliance(framework) for framework in report.frameworks],
        "attack": attack_panel(report),
    }


def attack_panel(report: Report) -> Optional[AttackPanel]:
    """None when no active finding is an attack path."""
    found = [f for f in report.active_findings if f.attack_path is not None]
    if not found:
        return None
    active: list[AttackPath] = [f.attack_path for f in found if f.attack_path is not None]
    entries = len({path.source for path in active})
    attack = report.attack
    if attack is not None:
        rows = tuple(ChokeRow(c.cuts, c.edge.fix, c.edge.evidence[0].location.describe() if c.edge.evidence else "")
                     for c in attack.choke_points[:_TOP_CHOKE_POINTS])
        return AttackPanel(found[0].rule, len(active), entries, rows, True)
    cuts: Counter[str] = Counter()
    where: dict[str, str] = {}
    for path in active:
        fixes = {step.fix: step for step in path.steps if step.fix}
        cuts.update(fixes.keys())
        for fix, step in fixes.items():
            where.setdefault(fix, step.evidence[0].location.describe() if step.evidence else "")
    ranked = sorted(cuts.items(), key=lambda item: (-item[1], item[0]))[:_TOP_CHOKE_POINTS]
    return AttackPanel(found[0].rule, len(active), entries, tuple(ChokeRow(n, fix, where[fix]) for fix, n in ranked), False)


def _incomplete_reasons(report: Report) -> list[str]:
    """Why a scan is incomplete, one line each (the verdict says them where people look first)."""
    reasons = []
    if report.inputs.errors:
        reasons.append(plural(len(report.inputs.errors), "input error") + ": those inputs are not covered")
    if report.rule_errors:
        reasons.append(plural(len(report.rule_errors), "rule error") + ": those rules could not evaluate")
    if report.coverage is not None and report.coverage.open_gaps and not report.gaps_allowed:
        reasons.append(plural(len(report.coverage.open_gaps), "coverage gap") + " in the cluster: "
                       + "; ".join(gap.describe() for gap in report.coverage.open_gaps[:3]))
    if report.images.gaps and not report.gaps_allowed:
        reasons.append(plural(len(report.images.gaps), "image") + " could not be checked")
    if report.saw_nothing and not report.empty_allowed:
        reasons.append("no Kubernetes object was found in the inputs")
    return reasons


def _top_risks(active: tuple[Finding, ...], rules: dict[str, RuleInfo]) -> list[Risk]:
    """The rules with the most severe findings first, then the most findings: "6 critical: privileged
    container in ops/node-tools, ..."."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in active:
        if finding.severity >= Severity.MEDIUM:
            by_rule.setdefault(finding.rule, []).append(finding)
    ranked = sorted(by_rule.items(), key=lambda item: (-item[1][0].severity, -len(item[1]), item[0]))
    risks = []
    for rule_id, findings in ranked[:_TOP_RISKS]:
        info = rules.get(rule_id)
        objects = list(dict.fromkeys(_short(f) for f in findings))
        risks.append(Risk(rule_id, info.title if info else findings[0].title, findings[0].severity, len(findings),
                          tuple(objects[:2]), max(0, len(objects) - 2)))
    return risks


def _short(finding: Finding) -> str:
    ref = finding.resource
    return f"{ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind}/{ref.name}"


def _by_namespace(findings: tuple[Finding, ...]) -> list[NamespaceCount]:
    groups: dict[Optional[str], Counter[str]] = {}
    for finding in findings:
        groups.setdefault(finding.resource.namespace, Counter())[finding.severity.label] += 1
    counts = [NamespaceCount(namespace, sum(counter.values()), {s.label: counter.get(s.label, 0) for s in _SEVERITIES})
              for namespace, counter in groups.items()]
    return sorted(counts, key=lambda c: (-c.total, c.namespace is not None, c.namespace or ""))


def _rule_counts(active: tuple[Finding, ...], rules: dict[str, RuleInfo]) -> list[RuleCount]:
    counts = Counter(rule for f in active for rule in f.rules)  # as the rule filter counts: own and joined
    first = {f.rule: f for f in reversed(active)}  # a finding's own title and severity if its rule is not listed
    result = []
    for rule_id, count in counts.items():
        info = rules.get(rule_id)
        if info is not None:
            result.append(RuleCount(rule_id, info.title, info.severity, count))
        elif rule_id in first:
            result.append(RuleCount(rule_id, first[rule_id].title, first[rule_id].severity, count))
        else:
            result.append(RuleCount(rule_id, rule_id, Severity.INFO, count))
    return sorted(result, key=lambda r: (-r.severity, -r.findings, r.id))
