"""Run every benchmark together and print one report (the README's performance section).

    python benchmarks/all.py [--large]

--large adds the 100 MiB tree (generated once under benchmarks/corpus-100, about 110,000 objects).
Run it on a quiet machine: timings on shared VMs vary by 20% or more.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BARE = """
import sys, yaml
from pathlib import Path
for path in sorted(Path(sys.argv[1]).rglob("*.yaml")):
    for document in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader):
        pass
"""


def section(title: str, script: str, *args: str) -> None:
    print(f"\n## {title}\n")
    done = subprocess.run([PYTHON, str(HERE / script), *args], capture_output=True, text=True, cwd=HERE.parent)
    print(done.stdout.strip() or done.stderr.strip()[-800:])


def measured(command: list[str]) -> tuple[float, float]:
    """Wall time and peak memory of a command and all its processes (worker processes included):
    the largest sum of their proportional set sizes (shared copy-on-write pages counted once)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=HERE.parent, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(_pss_kib(pid) for pid in _tree(process.pid)))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode})")
    return seconds, peak / 1024


def _tree(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def large_tree() -> None:
    tree = HERE / "corpus-100"
    if not tree.exists():
        subprocess.run([PYTHON, str(HERE / "generate_corpus.py"), "--out", str(tree), "--megabytes", "100"], check=True)
    files = list(tree.rglob("*.yaml"))
    size = sum(f.stat().st_size for f in files) / 1024 / 1024
    bare, bare_peak = measured([PYTHON, "-c", BARE, str(tree)])
    scan = [PYTHON, "-m", "kaudit.cli", "scan", str(tree), "-f", "json", "-o", "/dev/null", "--fail-on", "never"]
    one, one_peak = measured([*scan, "--jobs", "1"])
    cores, cores_peak = measured(scan)
    print(f"\n## {size:.0f} MiB tree: {len(files)} files\n")
    print("| measurement | wall time | peak memory (all processes) |\n|---|---|---|")
    print(f"| bare CSafeLoader parse, one process | {bare:.1f} s | {bare_peak:.0f} MiB |")
    print(f"| kaudit scan --jobs 1, all rules, JSON report | {one:.1f} s ({one / bare:.2f}x the parse) | {one_peak:.0f} MiB |")
    print(f"| kaudit scan, all {os.cpu_count()} cores, all rules, JSON report | {cores:.1f} s ({cores / bare:.2f}x the parse) "
          f"| {cores_peak:.0f} MiB |")


def main() -> None:
    section("Manifests: one file, and the 10 MiB corpus", "run.py", "--runs", "21")
    section("Cross-object analysis: 5,111 objects", "analyzers.py")
    section("Image verification: 200 images in a local registry", "images.py")
    section("Live cluster: 10,000 pods, 5,000 RBAC objects", "cluster.py")
    section("Helm: a synthetic chart of 30 templates and ~200 values keys", "charts.py")
    section("SARIF and JSON writers: 78,610 findings from a scanned 16.5 MiB tree", "writers.py")
    section("Attack paths: 10,000 workloads and 5,000 RBAC objects as manifests", "attack_paths.py")
    if "--large" in sys.argv:
        large_tree()


if __name__ == "__main__":
    main()
