"""One report for every writer's tests: the examples (every rule fires), a suppressed finding, and a
manifest whose strings try to inject markup (tests/data/hostile.yaml)."""
from __future__ import annotations

from pathlib import Path

from kaudit.model import Report, Suppression
from kaudit.scan import ScanRequest, scan_manifests
from kaudit.value import replace

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "tests/data/hostile.yaml"


def build_report() -> Report:
    """Scanned from the repository root so file paths are repository-relative, as users see them."""
    import os

    here = os.getcwd()
    os.chdir(REPO)
    try:
        report = scan_manifests(ScanRequest(targets=("examples/manifests", HOSTILE, "tests/data/rbac"),
                                            config="examples/kaudit.yaml"))
    finally:
        os.chdir(here)
    findings = list(report.findings)
    first = next(i for i, f in enumerate(findings) if f.rule == "latest-tag")
    findings[first] = replace(findings[first], suppressed=Suppression(
        "annotation", "base image is rebuilt nightly <b>by CI</b>"))
    return replace(report, findings=tuple(findings))
