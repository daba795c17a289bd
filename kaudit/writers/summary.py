"""Counts that several writers show: findings by severity and rule, the gate verdict."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from kaudit.model import Finding, Report, Severity


def by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {s.label: counts.get(s, 0) for s in sorted(Severity, reverse=True)}


def by_rule(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(sorted(Counter(f.rule for f in findings).items()))


def gate_verdict(report: Report) -> str:
    """'pass', 'fail' (findings at or above --fail-on) or 'incomplete' (input or rule errors)."""
    if not report.complete:
        return "incomplete"
    return "fail" if report.failing_findings() else "pass"
