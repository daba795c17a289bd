"""Peak memory and time of the SARIF and JSON writers on an 80,000-finding report (not part of the tests).

    python benchmarks/writers.py [--megabytes 16.5] [--rescan]

The report comes from a real scan: benchmarks/generate_corpus.py writes a deterministic manifest tree
(16.5 MiB, about 18,000 objects: about 80,000 findings), kept under benchmarks/results/; one child
process scans it with every rule (`scan_manifests`, --fail-on never) and pickles the Report. Then, for
each format, a fresh child process loads that pickle (the report in memory: the baseline any writer
starts from), resets the kernel's peak-RSS mark (/proc/self/clear_refs), writes the report to a file
and reads the mark again (VmHWM): the peak while writing. A second child does the same under
tracemalloc, started after the load, so its peak is the writer's own allocations alone. "terminal"
rows write through a stream whose isatty() is true: the indented output people get on a terminal.
Times are the writing process's CPU time (its wall time in brackets: on a shared VM, CPU time is the
steadier figure).

Budget: the peak while writing stays under 300 MiB for every format; the script exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
BUDGET_MIB = 300
CASES = ("sarif", "sarif-terminal", "json", "json-terminal")


class Terminal:
    """A file that says it is a terminal, so the writers choose their indented output."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def isatty(self) -> bool:
        return True


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def child_scan(corpus: Path, out: Path) -> None:
    sys.path.insert(0, str(REPO))
    from kaudit.scan import ScanRequest, scan_manifests

    gc.disable()  # as `kaudit scan` does
    report = scan_manifests(ScanRequest(targets=(str(corpus),), fail_on="never", jobs=1))
    with open(out, "wb") as stream:
        pickle.dump(report, stream, protocol=pickle.HIGHEST_PROTOCOL)
    print(json.dumps({"findings": len(report.findings), "objects": report.inputs.resources}))


def child_write(case: str, report_file: Path, out: Path, traced: bool) -> None:
    sys.path.insert(0, str(REPO))
    import tracemalloc

    from kaudit.writers import get_writer

    fmt, _, where = case.partition("-")
    write = get_writer(fmt)
    gc.disable()  # as `kaudit scan` does
    with open(report_file, "rb") as stream:
        report = pickle.load(stream)
    gc.collect()
    in_memory = _status_kib("VmRSS")
    reset = _reset_peak()
    if traced:
        tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    with open(out, "w", encoding="utf-8") as stream:
        target: Any = Terminal(stream) if where == "terminal" else stream
        if fmt == "sarif":
            with open(os.devnull, "w") as quiet:  # the "most severe 25,000" warning
                write(report, target, stderr=quiet)  # type: ignore[call-arg]
        else:
            write(report, target)
    figures: dict[str, Any] = {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                               "bytes": out.stat().st_size}
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        figures["writer_kib"] = peak // 1024
    else:
        figures.update(in_memory_kib=in_memory, peak_kib=_status_kib("VmHWM") if reset else
                       __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss,
                       peak_reset=reset)
    print(json.dumps(figures))


def _run(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-800:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=16.5)
    parser.add_argument("--rescan", action="store_true", help="scan the corpus again even if a report is kept")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "scan":
            child_scan(Path(rest[0]), Path(rest[1]))
        else:
            child_write(rest[0], Path(rest[1]), Path(rest[2]), traced=kind == "traced")
        return 0

    RESULTS.mkdir(exist_ok=True)
    corpus = RESULTS / f"writers-corpus-{args.megabytes:g}"
    report_file = RESULTS / f"writers-report-{args.megabytes:g}.pickle"
    if not corpus.exists():
        sys.path.insert(0, str(HERE))
        from generate_corpus import generate

        generate(corpus, args.megabytes)
    if args.rescan or not report_file.exists():
        scanned = _run("--child", "scan", str(corpus), str(report_file))
        print(f"scanned {corpus.name}: {scanned['objects']} objects, {scanned['findings']} findings")
    out = RESULTS / "writers-output"
    print("| format | report in memory | peak while writing | writer's own peak (tracemalloc) | CPU time (wall) "
          "| output |")
    print("|---|---|---|---|---|---|")
    over = []
    for case in CASES:
        rss = _run("--child", "rss", case, str(report_file), str(out))
        traced = _run("--child", "traced", case, str(report_file), str(out))
        peak = rss["peak_kib"] / 1024
        note = "" if rss["peak_reset"] else " (ru_maxrss: includes the load)"
        print(f"| {case} | {rss['in_memory_kib'] / 1024:.0f} MiB | {peak:.0f} MiB{note} | "
              f"{traced['writer_kib'] / 1024:.1f} MiB | {rss['cpu']:.2f} s ({rss['seconds']:.2f} s) | "
              f"{rss['bytes'] / 1024 / 1024:.1f} MiB |")
        if peak >= BUDGET_MIB:
            over.append(f"{case}: {peak:.0f} MiB")
    out.unlink(missing_ok=True)
    if over:
        print(f"over the {BUDGET_MIB} MiB budget: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
