"""Time `kaudit scan CHART` as a whole process against the chart budget (issue 15).

    python benchmarks/charts.py                     # the synthetic chart (30 templates, ~200 values keys)
    python benchmarks/charts.py --chart DIR [...]   # any chart or kustomization directory (repeatable)
    python benchmarks/charts.py --runs 9 --chart DIR -- --helm-values my.yaml --kube-version 1.30

Budget: render + scan + values provenance of a chart of 30 templates and 200 values keys under 1 s
as a whole process (interpreter start included). For each directory it prints the median (and
fastest) of N whole `kaudit scan DIR -f json` runs, with the values trace and with
--no-values-trace, after one unmeasured warm-up run; then from the last JSON report: the render
time kaudit measured, objects, findings by severity, how many findings point at a template line,
how many at a values key, and how many traces stopped at their budget. Exit 1 when a median with
the trace is over the budget, 2 when a scan fails. Arguments after `--` go to every scan.
The VM these run on is shared: compare figures taken in the same hour.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chart_generator import generate  # noqa: E402

BUDGET_SECONDS = 1.0
SEVERITIES = ("critical", "high", "medium", "low", "info")


def timed_scan(checkout: Path, directory: Path, report: Path, extra: list[str]) -> tuple[float, int, str]:
    command = [sys.executable, "-m", "kaudit.cli", "scan", str(directory), "-f", "json", "-o", str(report),
               "--fail-on", "never", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr.strip()


def measure(checkout: Path, directory: Path, report: Path, extra: list[str], runs: int) -> list[float]:
    seconds = []
    for run in range(runs + 1):
        elapsed, code, stderr = timed_scan(checkout, directory, report, extra)
        if code != 0:
            print(f"kaudit scan {directory} {' '.join(extra)} failed ({code}): {stderr[-800:]}", file=sys.stderr)
            sys.exit(2)
        if run:  # the first run warms the page cache and the bytecode
            seconds.append(elapsed)
    return seconds


def summary(report: Path) -> dict[str, Any]:
    data = json.loads(report.read_text())
    rendered = data["inputs"].get("rendered", [])
    findings = data["findings"]
    severities = Counter(finding["severity"] for finding in findings)
    details = [(finding.get("location") or {}) for finding in findings]
    traced = [(location.get("rendered") or {}) for location in details]
    return {
        "render_ms": sum(unit.get("milliseconds") or 0 for unit in rendered),
        "objects": sum(unit.get("objects") or 0 for unit in rendered),
        "render_errors": [unit["error"] for unit in rendered if unit.get("error")] + list(data["inputs"]["errors"]),
        "findings": len(findings),
        "by_severity": "/".join(str(severities.get(name, 0)) for name in SEVERITIES),
        "with_line": sum(1 for location in details if location.get("line")),
        "with_values": sum(1 for detail in traced if detail.get("values")),
        "budget_stops": sum(1 for detail in traced if "budget" in (detail.get("valuesNote") or "")),
    }


def main() -> None:
    arguments, extra = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="kaudit-charts-") as temporary:
        over = run(arguments, extra, Path(temporary))
    if over:
        print(f"\nover the {arguments.budget:.2f} s budget: {', '.join(over)}")
        sys.exit(1)


def run(arguments: argparse.Namespace, extra: list[str], work: Path) -> list[str]:
    """Print the table; returns the directories over the budget."""
    directories = list(arguments.chart)
    if not directories:
        synthetic = work / "bench"
        templates, keys = generate(synthetic, arguments.components)
        print(f"synthetic chart: {templates} templates, {keys} values keys ({synthetic})")
        directories = [synthetic]
    print(f"median (fastest) of {arguments.runs} whole-process runs; budget {arguments.budget:.2f} s with the trace\n")
    print("| chart | scan | scan --no-values-trace | render (kaudit) | objects | findings c/h/m/l/i "
          "| at a line | at a values key | trace budget stops | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    over: list[str] = []
    for directory in directories:
        report = work / "report.json"
        plain = measure(arguments.checkout, directory, report, [*extra, "--no-values-trace"], arguments.runs)
        traced = measure(arguments.checkout, directory, report, extra, arguments.runs)
        figures = summary(report)
        median = statistics.median(traced)
        if median > arguments.budget:
            over.append(str(directory))
        errors = "; ".join(error if isinstance(error, str) else json.dumps(error) for error in figures["render_errors"])
        print(f"| {directory} | {median:.2f} s ({min(traced):.2f}) | {statistics.median(plain):.2f} s ({min(plain):.2f}) "
              f"| {figures['render_ms']:.0f} ms | {figures['objects']} | {figures['findings']} {figures['by_severity']} "
              f"| {figures['with_line']} | {figures['with_values']} | {figures['budget_stops']} | {errors[:300] or '-'} |")
    return over


def parse_arguments() -> tuple[argparse.Namespace, list[str]]:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, action="append", default=[],
                        help="a chart or kustomization directory to time instead of the synthetic chart (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per figure (median taken; default 5)")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds (default 1.0)")
    parser.add_argument("--components", type=int, default=5, help="synthetic chart: 6 templates per component")
    parser.add_argument("--checkout", type=Path, default=HERE.parent,
                        help="run kaudit from this source tree (default: this checkout)")
    arguments = parser.parse_args(argv)
    if arguments.runs < 1:
        parser.error("--runs: at least 1")
    return arguments, extra


if __name__ == "__main__":
    main()
