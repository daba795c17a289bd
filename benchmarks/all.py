"""Run every benchmark together and print one report (the README's performance section).

    python benchmarks/all.py [--large]

--large adds the 100 MiB tree (generated once under benchmarks/corpus-100, about 110,000 objects).
Run it on a quiet machine: timings on shared VMs vary by 20% or more.
"""
from __future__ import annotations

import resource
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


def large_tree() -> None:
    tree = HERE / "corpus-100"
    if not tree.exists():
        subprocess.run([PYTHON, str(HERE / "generate_corpus.py"), "--out", str(tree), "--megabytes", "100"], check=True)
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", BARE, str(tree)], check=True)
    bare = time.perf_counter() - start
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([PYTHON, "-m", "kaudit.cli", "scan", str(tree), "-f", "json", "-o", "/dev/null", "--fail-on",
                    "never"], check=True, cwd=HERE.parent)
    scan = time.perf_counter() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print("\n## 100 MiB tree\n")
    print("| measurement | result |\n|---|---|")
    print(f"| bare CSafeLoader parse | {bare:.1f} s |")
    print(f"| kaudit scan, all rules, JSON report | {scan:.1f} s ({scan / bare:.2f}x), peak RSS {peak:.0f} MiB |")


def main() -> None:
    section("Manifests: one file, and the 10 MiB corpus", "run.py", "--runs", "21")
    section("Cross-object analysis: 5,111 objects", "analyzers.py")
    section("Image verification: 200 images in a local registry", "images.py")
    section("Live cluster: 10,000 pods, 5,000 RBAC objects", "cluster.py")
    if "--large" in sys.argv:
        large_tree()


if __name__ == "__main__":
    main()
