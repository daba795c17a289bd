"""Hostile input, end to end: every case runs `kaudit scan` as its own process.

Each run has a deadline (a hang fails the test instead of hanging the suite), its peak memory is
that one child's `ru_maxrss` (from wait4), and its output goes to files, never to the test's
memory through a pipe. The process also gets an address-space and an output-size cap so that a
regression fails the test instead of taking the machine down; the bounds a case promises are
asserted separately. Every case checks: no traceback and nothing on stderr, one line
`error: file[:line]: message` for whatever could not be scanned, exit 2 exactly when something
could not be scanned (else the expected code), and the good manifest beside it still reported.

Big inputs are generated here, under tmp_path, and removed after each test; nothing big is
stored in the repository. The time, memory and output figures of every run are printed at the
end of the module.
"""
from __future__ import annotations

import codecs
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
import yaml

from kaudit.sources.yamldoc import TOO_DEEP

from . import text_layout
from .conftest import REPO, ROOT_POD

MiB = 1024 * 1024
GiB = 1024 * MiB
ADDRESS_SPACE_CAP = 8 * GiB  # guards the machine; the bound each case promises is asserted on its own
OUTPUT_CAP = 768 * MiB
CLEAN = 1  # exit code of a complete scan of `tree`: good.yaml has a high finding (run-as-root)
INCOMPLETE = 2

FIGURES: list[tuple[str, float, float, float, str]] = []


# --------------------------------------------------------------------------------------------
# Running kaudit


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float
    peak_mib: float
    out_bytes: int

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith(prefix)]

    @property
    def errors(self) -> list[str]:
        return self.lines("error: ")

    @property
    def warnings(self) -> list[str]:
        return self.lines("warning: ")

    @property
    def skipped(self) -> list[str]:
        return self.lines("skipped: ")

    @property
    def summary(self) -> str:
        found = [line for line in self.out.splitlines() if " findings" in line and " resources from " in line]
        return found[-1] if found else ""

    def finding(self, rule: str, ref: str) -> list[str]:
        """Finding lines of `rule` for resource `ref` (Kind/ns/name), or of a finding on `ref` whose
        `also:` line names `rule` (joined to it: kaudit/relations.py; scans run with -v)."""
        return [shown.line for shown in text_layout.finding(self.out, rule, ref)]

    def shown(self, where: str, rule: str) -> list[text_layout.Shown]:
        return [shown for shown in text_layout.findings(self.out) if (shown.where, shown.rule) == (where, rule)]

    def describe(self) -> str:
        head = "\n".join(self.out.splitlines()[-15:])
        return (f"kaudit scan {' '.join(self.args)}\nexit {self.code}, {self.seconds:.1f} s, "
                f"peak {self.peak_mib:.0f} MiB, stdout {self.out_bytes / MiB:.1f} MiB\n"
                f"stderr: {self.err[-2000:]!r}\nstdout (tail):\n{head[-4000:]}")


# A small launcher starts kaudit and reports its rusage. Measuring kaudit from the test process
# directly would be wrong: a forked child starts with its parent's RSS high-water mark, so every
# run would "peak" at least at pytest's own size. The launcher is small, so its child's ru_maxrss
# is kaudit's. The launcher also applies the machine guards (address space, output size), and both
# die with the test process.
_LAUNCHER = r"""
import ctypes, os, resource, signal, subprocess, sys
result, address_cap, output_cap, fds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def die_with_parent():  # PR_SET_PDEATHSIG: a killed pytest leaves no kaudit blocked on a FIFO behind
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
die_with_parent()
if os.getppid() == 1:
    sys.exit(3)
def limit():
    die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (address_cap, address_cap))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_cap, output_cap))
child = subprocess.Popen(sys.argv[5:], preexec_fn=limit, pass_fds=[int(fd) for fd in fds.split(",") if fd])
_, status, usage = os.wait4(child.pid, 0)
with open(result, "w") as handle:
    handle.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_scan(*args: Any, workdir: Path, timeout: float = 120, obey_permissions: bool = False,
             output_cap: int = OUTPUT_CAP, pass_fds: tuple[int, ...] = (),
             while_running: Optional[Callable[[], None]] = None, note: str = "") -> Run:
    """`kaudit scan ARGS` as a real process (as conftest.run_process does), measured and bounded."""
    command = [sys.executable, "-m", "kaudit.cli", "scan", "-v", *map(str, args)]  # -v: joined rules shown
    if obey_permissions and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env.pop("KAUDIT_DEBUG", None)
    workdir.mkdir(parents=True, exist_ok=True)
    index = len(list(workdir.glob("stdout-*")))
    out_path, err_path = workdir / f"stdout-{index}", workdir / f"stderr-{index}"
    result_path = workdir / f"result-{index}"
    launcher = [sys.executable, "-c", _LAUNCHER, str(result_path), str(ADDRESS_SPACE_CAP), str(output_cap),
                ",".join(map(str, pass_fds)), *command]
    start = time.monotonic()
    with open(out_path, "wb") as out_file, open(err_path, "wb") as err_file:
        process = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file,
                                   env=env, pass_fds=pass_fds, start_new_session=True)
    helper = None
    if while_running is not None:
        helper = threading.Thread(target=while_running, daemon=True)
        helper.start()
    try:
        process.wait(timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and kaudit
        process.wait()
        hung = True
    if hung:
        err = err_path.read_text(errors="replace")[-2000:]
        FIGURES.append((_current_test(), timeout, 0.0, out_path.stat().st_size / MiB, "HUNG (killed)"))
        pytest.fail(f"kaudit scan {' '.join(map(str, args))} did not finish within {timeout:.0f} s "
                    f"(hang or super-linear time); stderr: {err!r}")
    seconds = time.monotonic() - start
    if helper is not None:
        helper.join(timeout=30)
    assert process.returncode == 0, f"launcher failed: {err_path.read_text(errors='replace')[-2000:]}"
    code_text, maxrss_kib = result_path.read_text().split()
    out_bytes = out_path.stat().st_size
    with open(out_path, "rb") as handle:
        out = handle.read(400 * MiB).decode("utf-8", errors="replace")
    run = Run(tuple(map(str, args)), int(code_text), out, err_path.read_text(errors="replace"), seconds,
              int(maxrss_kib) / 1024, out_bytes)
    FIGURES.append((_current_test(), seconds, run.peak_mib, out_bytes / MiB, note))
    return run


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].rsplit(" ", 1)[0]


def assert_sane(run: Run) -> None:
    """No crash of any kind: not killed, no traceback, no internal error, nothing on stderr."""
    if run.code < 0:
        name = signal.Signals(-run.code).name
        hint = " (stdout grew past the output cap)" if -run.code == signal.SIGXFSZ else ""
        pytest.fail(f"kaudit was killed by {name}{hint}\n{run.describe()}")
    assert "Traceback" not in run.out + run.err, run.describe()
    assert "internal error" not in run.err, run.describe()
    assert run.err == "", run.describe()
    assert not [line for line in run.errors if line.startswith("error: rule ")], run.describe()


def assert_good_file_still_reported(run: Run, tree: Path) -> None:
    assert [shown.severity for shown in run.shown(f"{tree / 'good.yaml'}:8:7", "run-as-root")] == ["high"], \
        run.describe()


def assert_exit(run: Run, expected: int) -> None:
    assert run.code == expected, run.describe()
    assert (run.code == INCOMPLETE) == bool(run.errors), run.describe()


# --------------------------------------------------------------------------------------------
# Fixtures and manifest helpers


@pytest.fixture(scope="module", autouse=True)
def _print_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not FIGURES:
        return
    lines = ["", "test_hostile figures (one line per kaudit process):",
             f"  {'case':<72} {'seconds':>8} {'peak MiB':>9} {'stdout MiB':>10}"]
    lines += [f"  {name[:72]:<72} {seconds:8.2f} {peak:9.0f} {out:10.1f}  {note}"
              for name, seconds, peak, out, note in FIGURES]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # module teardown output is captured; the figures are for the terminal
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)
    else:
        for line in lines:
            reporter.write_line(line)


@pytest.fixture(autouse=True)
def _tidy(tmp_path: Path) -> Iterator[None]:
    """Unlock locked folders and remove big inputs and outputs: pytest keeps the last runs' tmp dirs."""
    yield
    for path in tmp_path.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size > MiB:
            path.unlink()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A folder with one good (insecure) manifest."""
    root = tmp_path / "tree"
    root.mkdir()
    root.chmod(0o755)
    (root / "good.yaml").write_text(ROOT_POD.lstrip())
    return root


@pytest.fixture
def scan(tmp_path: Path) -> Callable[..., Run]:
    def run(*args: Any, **options: Any) -> Run:
        return run_scan(*args, workdir=tmp_path / "runs", **options)

    return run


def pod(name: str, pod_fields: str = "", security_context: str = "        readOnlyRootFilesystem: true\n",
        image: str = "registry.example.com/app:1.0") -> str:
    """A Pod in namespace team; `pod_fields` are indented 2, `security_context` lines 8."""
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: team\nspec:\n{pod_fields}"
            f"  containers:\n    - name: app\n      image: {image}\n      securityContext:\n{security_context}")


def named_root_pod(name: str) -> str:
    return ROOT_POD.lstrip().replace("root-pod", name)


# --------------------------------------------------------------------------------------------
# Alias bombs


def _billion_laughs() -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol, namespace: team}", "data:",
             '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _container_anchor_under_the_limit() -> str:
    # one container with 490 env entries (~2,460 nodes), aliased 40 times: ~98,400 nodes, just under 100,000
    env = ", ".join(f"{{name: VAR_{i}, value: v{i}}}" for i in range(490))
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: quad, namespace: team}}\nspec:\n  containers:\n"
            f"    - &c {{name: app, image: registry.example.com/app:1.0, env: [{env}]}}\n"
            + "".join("    - *c\n" for _ in range(40)))


def _big_scalar_anchor() -> str:
    # a 1 MiB image name aliased into 1,000 containers: 1,001 nodes, far under the node limit,
    # but 1 GiB of text if every copy (and every message quoting it) is materialised
    image = "registry.example.com/" + "x" * MiB + ":1.0"
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: wide-alias, namespace: team}}\nspec:\n  containers:\n"
            f"    - {{name: c0, image: &img {image}}}\n"
            + "".join(f"    - {{name: c{i}, image: *img}}\n" for i in range(1, 1000)))


def _many_documents_under_the_limit() -> str:
    # each document expands to ~99,000 nodes (just under the per-document limit); 300 of them is
    # ~30 million nodes from a 2 MB file
    anchor = "{" + ", ".join(f"k{i}: v{i}" for i in range(495)) + "}"
    docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: quad{d}, namespace: team}}\ndata:\n"
            f"  base: &big {anchor}\n" + "".join(f"  c{i}: *big\n" for i in range(100)) for d in range(300)]
    return "---\n".join(docs)


def test_billion_laughs_is_refused(tree: Path, scan: Callable[..., Run]) -> None:
    bomb = tree / "bomb.yaml"
    bomb.write_text(_billion_laughs())
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert run.errors == [
        f"error: {bomb}:1: YAML aliases expand to more than 100000 nodes (alias bomb?); not scanned"], run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 15 and run.peak_mib < 300, run.describe()


def test_many_aliases_to_a_large_anchor_just_under_the_limit_stay_fast(tree: Path, scan: Callable[..., Run]) -> None:
    (tree / "quad.yaml").write_text(_container_anchor_under_the_limit())
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert "2 resources from 2 files" in run.summary, run.describe()
    assert len(run.finding("run-as-root", "Pod/team/quad")) == 41, run.describe()  # every copy is a container
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 20 and run.peak_mib < 500, run.describe()


def test_a_big_scalar_aliased_many_times_stays_bounded(tree: Path, scan: Callable[..., Run]) -> None:
    """Node counting does not see size: one 1 MiB scalar behind 1,000 aliases must not become
    gigabytes of memory or output (findings quoting the image, say). Scanned or refused, but bounded."""
    wide = tree / "wide.yaml"
    wide.write_text(_big_scalar_anchor())
    run = scan(tree, output_cap=256 * MiB)
    assert_sane(run)
    assert run.code in (CLEAN, INCOMPLETE), run.describe()
    if run.code == INCOMPLETE:
        assert [line for line in run.errors if line.startswith(f"error: {wide}:")] == run.errors, run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 30, run.describe()
    assert run.peak_mib < 1024, run.describe()
    assert run.out_bytes < 64 * MiB, run.describe()


def test_many_documents_each_just_under_the_alias_limit_stay_bounded(tree: Path, scan: Callable[..., Run]) -> None:
    """The alias limit is per document: 300 documents at 99% of it are 30 million nodes from 2 MB."""
    multi = tree / "multi.yaml"
    multi.write_text(_many_documents_under_the_limit())
    assert multi.stat().st_size < 3 * MiB
    run = scan(tree)
    assert_sane(run)
    assert run.code in (CLEAN, INCOMPLETE), run.describe()
    assert all(line.startswith(f"error: {multi}:") for line in run.errors), run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.peak_mib < 1024, run.describe()
    assert run.seconds < 30, run.describe()


# --------------------------------------------------------------------------------------------
# Deep nesting


def _deep(shape: str, levels: int) -> str:
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata:"
    if shape == "flow-sequence":
        return f"{head} " + "[" * levels + "]" * levels + "\n"
    if shape == "flow-mapping":
        return f"{head} " + "{a: " * levels + "x" + "}" * levels + "\n"
    if shape == "flow-unclosed":
        return f"{head} " + "[" * levels + "\n"
    if shape == "block-sequence":  # compact block sequences: one line, one more level per `- `
        return f"{head}\n  - " + "- " * levels + "x\n"
    if shape == "block-mapping":  # one more column per level: 10,000 levels is 50 MB of indentation
        return f"{head}\n" + "".join(" " * (i + 1) + "k:\n" for i in range(levels))
    raise AssertionError(shape)


DEEP_CASES = [(shape, levels) for shape in ("flow-sequence", "flow-mapping", "flow-unclosed", "block-sequence")
              for levels in (10_000, 1_000_000)] + [("block-mapping", 10_000)]


@pytest.mark.parametrize(("shape", "levels"), DEEP_CASES, ids=[f"{s}-{n}" for s, n in DEEP_CASES])
def test_deep_nesting_is_refused_without_crashing(tree: Path, scan: Callable[..., Run], shape: str,
                                                  levels: int) -> None:
    deep = tree / "deep.yaml"
    deep.write_text(_deep(shape, levels))
    run = scan(tree, "--max-file-size", "64")
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    [line] = run.errors
    assert re.fullmatch(rf"error: {re.escape(str(deep))}:\d+: {re.escape(TOO_DEEP)}", line), \
        run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 60, run.describe()


def test_a_deep_document_does_not_take_its_neighbours_with_it(tree: Path, scan: Callable[..., Run]) -> None:
    """Documents before a too-deep one in the same file are scanned (or at least accounted for),
    and the refusal is reported once."""
    mixed = tree / "mixed.yaml"
    mixed.write_text(named_root_pod("one") + "---\n" + named_root_pod("two") + "---\n"
                     + _deep("flow-sequence", 10_000) + "---\n" + named_root_pod("three"))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert run.errors == [f"error: {mixed}:24: {TOO_DEEP}"], run.describe()
    for name in ("one", "two", "three"):
        assert run.finding("run-as-root", f"Pod/team/{name}"), f"Pod {name} was not scanned\n{run.describe()}"
    assert_good_file_still_reported(run, tree)


def test_many_broken_documents_in_a_big_file_stay_fast(tree: Path, scan: Callable[..., Run]) -> None:
    """Parsing resumes after each broken document; that must not re-scan the rest of the file
    each time (49 errors in an 8 MB file)."""
    filler = "".join(f"  k{i}: [a, b]\n" for i in range(10_000))  # brackets: the depth pre-check parses events
    docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{d}}}\ndata:\n  bad: *undefined\n{filler}"
            for d in range(49)]
    broken = tree / "broken.yaml"
    broken.write_text("---\n".join(docs) + "---\n" + named_root_pod("after-the-errors"))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert len(run.errors) == 49 and all(
        re.fullmatch(rf"error: {re.escape(str(broken))}:\d+: invalid YAML: found undefined alias", line)
        for line in run.errors), run.describe()
    assert run.finding("run-as-root", "Pod/team/after-the-errors"), run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 20, run.describe()


# --------------------------------------------------------------------------------------------
# Size


def _write_hundred_mib(path: Path, shape: str) -> int:
    """Write ~100 MiB; return the number of objects. The Deployments are hardened against most
    rules (as real ones would be), so the bound measures the objects held, not a finding per rule
    per object: each rule added that fires on all of them adds ~128,000 findings."""
    with open(path, "w") as handle:
        if shape == "one-document":  # one ConfigMap with ~4.5 million distinct keys
            handle.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: team}\ndata:\n")
            i = 0
            while handle.tell() < 100 * MiB:
                handle.write("".join(f"  key{j}: value-{j}\n" for j in range(i, i + 10_000)))
                i += 10_000
            return 1
        template = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  namespace: ns-{ns}\n"
                    "  labels: {{app: web-{i}, tier: frontend}}\nspec:\n  replicas: 3\n  selector:\n"
                    "    matchLabels: {{app: web-{i}}}\n  template:\n    metadata:\n      labels: {{app: web-{i}}}\n"
                    "    spec:\n      serviceAccountName: web\n      priorityClassName: standard\n"
                    "      containers:\n        - name: app\n          image: registry.example.com/web:{i}\n"
                    "          ports: [{{containerPort: 8080}}]\n          env:\n"
                    "            - {{name: MODE, value: production}}\n            - {{name: INDEX, value: \"{i}\"}}\n"
                    "          resources:\n            limits: {{cpu: 500m, memory: 256Mi, ephemeral-storage: 1Gi}}\n"
                    "          securityContext:\n            runAsNonRoot: true\n"
                    "            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n"
                    "            capabilities: {{drop: [ALL]}}\n            seccompProfile: {{type: RuntimeDefault}}\n")
        count = 0
        while handle.tell() < 100 * MiB:
            handle.write("".join(("---\n" if count + k else "") + template.format(i=count + k, ns=(count + k) % 50)
                                 for k in range(1000)))
            count += 1000
        return count


@pytest.fixture(scope="module")
def hundred_mib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], tuple[Path, int]]]:
    made: dict[str, tuple[Path, int]] = {}

    def make(shape: str) -> tuple[Path, int]:
        if shape not in made:
            root = tmp_path_factory.mktemp(f"hundred-mib-{shape}")
            (root / "good.yaml").write_text(ROOT_POD.lstrip())
            made[shape] = root, _write_hundred_mib(root / "huge.yaml", shape)
        return made[shape]

    yield make
    for root, _ in made.values():
        shutil.rmtree(root, ignore_errors=True)


def test_hundred_mib_file_is_refused_by_default(hundred_mib: Callable[[str], tuple[Path, int]], tmp_path: Path) -> None:
    root, _ = hundred_mib("one-document")
    run = run_scan(root, workdir=tmp_path)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert run.errors == [f"error: {root / 'huge.yaml'}: larger than 32 MiB; not scanned "
                          "(raise --max-file-size to scan it)"], run.describe()
    assert_good_file_still_reported(run, root)
    assert run.peak_mib < 200, run.describe()  # the refused file was never read whole


@pytest.mark.parametrize("shape", ["one-document", "many-documents"])
def test_hundred_mib_file_is_scanned_with_bounded_memory(hundred_mib: Callable[[str], tuple[Path, int]],
                                                         tmp_path: Path, shape: str) -> None:
    root, objects = hundred_mib(shape)
    run = run_scan(root, "--max-file-size", "200", workdir=tmp_path, timeout=400,
                   note=f"{(root / 'huge.yaml').stat().st_size / MiB:.0f} MiB, {objects} objects")
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert f"{objects + 1} resources from 2 files" in run.summary, run.describe()
    assert_good_file_still_reported(run, root)
    assert run.peak_mib < 3 * 1024, f"peak {run.peak_mib:.0f} MiB for a 100 MiB file\n{run.describe()}"


# --------------------------------------------------------------------------------------------
# Encodings and line endings


def test_invalid_utf8_in_the_middle_of_a_valid_file(tree: Path, scan: Callable[..., Run]) -> None:
    mixed = tree / "mixed.yaml"
    mixed.write_bytes(named_root_pod("p1").encode() + b"---\n# caf\xe9 \xff\xfe\n" + named_root_pod("p2").encode())
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    [line] = run.errors
    assert line.startswith(f"error: {mixed}:11: ") and "UTF-8" in line, run.describe()
    assert_good_file_still_reported(run, tree)


BOMS = {
    "utf-8": codecs.BOM_UTF8 + named_root_pod("bom").encode("utf-8"),
    "utf-16-le": codecs.BOM_UTF16_LE + named_root_pod("bom").encode("utf-16-le"),
    "utf-16-be": codecs.BOM_UTF16_BE + named_root_pod("bom").encode("utf-16-be"),
    "utf-32-le": codecs.BOM_UTF32_LE + named_root_pod("bom").encode("utf-32-le"),
    "utf-32-be": codecs.BOM_UTF32_BE + named_root_pod("bom").encode("utf-32-be"),
}


@pytest.mark.parametrize("encoding", list(BOMS))
def test_byte_order_marks(tree: Path, scan: Callable[..., Run], encoding: str) -> None:
    """UTF-8 and UTF-16 with a BOM are scanned; UTF-32 (valid YAML too) is scanned or refused by name."""
    marked = tree / "bom.yaml"
    marked.write_bytes(BOMS[encoding])
    run = scan(tree)
    assert_sane(run)
    if encoding.startswith("utf-32") and run.code == INCOMPLETE:
        [line] = run.errors
        assert line.startswith(f"error: {marked}") and "UTF-32" in line, run.describe()
    else:
        assert_exit(run, CLEAN)
        assert [(s.severity, s.ref) for s in run.shown(f"{marked}:8:7", "run-as-root")] == [("high", "Pod/team/bom")], \
            run.describe()
    assert_good_file_still_reported(run, tree)


def test_a_byte_order_mark_on_a_later_document(tree: Path, scan: Callable[..., Run]) -> None:
    """`cat a.yaml b.yaml` where b.yaml starts with a BOM: YAML allows a BOM before any document."""
    joined = tree / "joined.yaml"
    joined.write_bytes(named_root_pod("first").encode() + b"---\n"
                       + codecs.BOM_UTF8 + named_root_pod("second").encode())
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert not run.skipped, run.describe()
    assert run.finding("run-as-root", "Pod/team/first"), run.describe()
    assert run.finding("run-as-root", "Pod/team/second"), run.describe()
    assert_good_file_still_reported(run, tree)


@pytest.mark.parametrize("ending", ["crlf", "cr", "mixed"])
def test_line_endings(tree: Path, scan: Callable[..., Run], ending: str) -> None:
    lines = named_root_pod("ends").splitlines()
    if ending == "crlf":
        text = "\r\n".join(lines) + "\r\n"
    elif ending == "cr":
        text = "\r".join(lines) + "\r"
    else:
        text = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines))
    (tree / "ends.yaml").write_bytes(text.encode())
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert [(s.severity, s.ref) for s in run.shown(f"{tree / 'ends.yaml'}:8:7", "run-as-root")] == \
        [("high", "Pod/team/ends")], run.describe()
    assert_good_file_still_reported(run, tree)


def test_tab_indentation_is_an_error_with_its_line(tree: Path, scan: Callable[..., Run]) -> None:
    tabbed = tree / "tabbed.yaml"
    tabbed.write_text(named_root_pod("tabbed").replace("    - name: app", "\t- name: app"))
    spaced = tree / "tabs-between.yaml"  # tabs as separators inside a line are valid YAML
    spaced.write_text(named_root_pod("tabs-between").replace("name: app", "name:\tapp"))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    [line] = run.errors
    assert line.startswith(f"error: {tabbed}:8: invalid YAML"), run.describe()
    assert run.finding("run-as-root", "Pod/team/tabs-between"), run.describe()
    assert_good_file_still_reported(run, tree)


# --------------------------------------------------------------------------------------------
# What values mean


def test_duplicate_keys_warn_and_the_last_value_wins(tree: Path, scan: Callable[..., Run]) -> None:
    dup = tree / "dup.yaml"
    false_then_true = "        privileged: false\n        privileged: true\n"
    true_then_false = "        privileged: true\n        privileged: false\n"
    dup.write_text(pod("last-true", security_context=false_then_true) + "---\n"
                   + pod("last-false", security_context=true_then_false))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert run.finding("privileged-container", "Pod/team/last-true"), run.describe()
    assert not run.finding("privileged-container", "Pod/team/last-false"), run.describe()
    assert len(run.warnings) == 2, run.describe()
    for line_number, warning in zip((12, 25), run.warnings):  # the second `privileged` of each document
        assert warning.startswith(f"warning: {dup}:") and "duplicate key 'privileged'" in warning, run.describe()
        assert f"{dup}:{line_number}:" in warning or f"line {line_number}:" in warning, run.describe()
    assert_good_file_still_reported(run, tree)


# Kubernetes reads manifests with sigs.k8s.io/yaml (goyaml.v2): y/Y/yes/on are true, n/N/no/off are
# false, and integers go through strconv.ParseInt(s, 0, 64) after dropping `_`, so 0o0, 0x0, 00 and
# 0_0 are all 0. What the cluster will run is what counts; a quoted "true" is a string (and the API
# server rejects it), so it never counts as true.
YAML11_CASES = {
    "hostNetwork-yes": ("  hostNetwork: yes\n", "", {"host-network": True}),
    "hostNetwork-On": ("  hostNetwork: On\n", "", {"host-network": True}),
    "hostNetwork-y": ("  hostNetwork: y\n", "", {"host-network": True}),
    "hostNetwork-quoted-true": ('  hostNetwork: "true"\n', "", {"host-network": False}),
    "hostPID-Yes": ("  hostPID: Yes\n", "", {"host-pid": True}),
    "privileged-Y": ("", "        privileged: Y\n", {"privileged-container": True}),
    "privileged-quoted-true": ("", "        privileged: 'true'\n", {"privileged-container": False}),
    "runAsNonRoot-on": ("", "        runAsNonRoot: on\n",
                        {"run-as-root": False, "run-as-non-root-not-enforced": False}),
    "runAsNonRoot-quoted-true": ("", '        runAsNonRoot: "true"\n',
                                 {"run-as-root": True, "run-as-non-root-not-enforced": True}),
    "runAsUser-0o0": ("", "        runAsNonRoot: true\n        runAsUser: 0o0\n", {"run-as-user-zero": True}),
    "runAsUser-00": ("", "        runAsNonRoot: true\n        runAsUser: 00\n", {"run-as-user-zero": True}),
    "runAsUser-0x0": ("", "        runAsNonRoot: true\n        runAsUser: 0x0\n", {"run-as-user-zero": True}),
    "runAsUser-0_0": ("", "        runAsNonRoot: true\n        runAsUser: 0_0\n", {"run-as-user-zero": True}),
    "allowPrivilegeEscalation-no": ("", "        allowPrivilegeEscalation: no\n",
                                    {"privilege-escalation-allowed": False}),
    "allowPrivilegeEscalation-n": ("", "        allowPrivilegeEscalation: n\n",
                                   {"privilege-escalation-allowed": False}),
}


@pytest.mark.parametrize("case", list(YAML11_CASES))
def test_yaml_1_1_scalars_in_fields_that_matter(tree: Path, scan: Callable[..., Run], case: str) -> None:
    pod_fields, security_context, expected = YAML11_CASES[case]
    name = case.lower().replace("_", "-")
    (tree / "odd.yaml").write_text(pod(name, pod_fields, security_context))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert not run.warnings, run.describe()
    for rule, present in expected.items():
        assert bool(run.finding(rule, f"Pod/team/{name}")) == present, \
            f"{rule} should {'' if present else 'not '}fire\n{run.describe()}"
    assert_good_file_still_reported(run, tree)


TAGGED = {  # explicit core tags: a bad value is one document's error, never the whole scan's
    "bool-maybe": ('!!bool "maybe"', None),
    "bool-y": ("!!bool y", None),
    "int-abc": ("!!int abc", None),
    "int-empty": ('!!int ""', None),
    "float-x": ("!!float x", None),
    "bool-quoted-true": ('!!bool "true"', True),
    "str-true": ("!!str true", False),
    "python-object": ('!!python/object/apply:os.system ["touch /tmp/kaudit-pwned"]', False),
    "set": ("!!set {a, b}", False),
}


@pytest.mark.parametrize("case", list(TAGGED))
def test_explicit_tags_with_bad_values(tree: Path, scan: Callable[..., Run], case: str) -> None:
    value, host_network = TAGGED[case]
    tagged = tree / "tagged.yaml"
    tagged.write_text(pod(f"tag-{case}", f"  hostNetwork: {value}\n") + "---\n" + named_root_pod("after-tag"))
    run = scan(tree)
    assert_sane(run)
    assert run.finding("run-as-root", "Pod/team/after-tag"), run.describe()
    if run.code == INCOMPLETE:  # refused: one line for that document
        assert host_network is None, run.describe()
        [line] = run.errors
        assert line.startswith((f"error: {tagged}:7: ", f"error: {tagged}:1: ")), run.describe()  # value or document
    else:
        assert_exit(run, CLEAN)
        if host_network is not None:
            assert bool(run.finding("host-network", f"Pod/team/tag-{case}")) == host_network, run.describe()
    assert not Path("/tmp/kaudit-pwned").exists()
    assert_good_file_still_reported(run, tree)


TYPE_CASES = {
    "scalars-where-strings-go": """
        apiVersion: v1
        kind: Pod
        metadata: {name: types, namespace: team, labels: {app: 123, version: 1.0}, annotations: {kaudit.io/ignore: 123}}
        spec:
          serviceAccountName: 42
          containers:
            - name: 123
              image: 1.0
              imagePullPolicy: 7
              ports: [{containerPort: "80", hostPort: "8080"}, {containerPort: 80.5}]
              env: [{name: 5, value: 6}, {name: DB_PASSWORD, value: 12345}, {name: API_TOKEN, value: true}]
              command: [1, 2.5, null, true]
              args: "not a list"
              resources: {limits: {cpu: 1, memory: 1e9}}
              securityContext:
                runAsUser: "0"
                capabilities: {add: [1, SYS_ADMIN, null], drop: ALL}
                seccompProfile: {type: 5}
            - name: true
              image: nginx
          volumes: [{name: 1, hostPath: {path: 5}}]
        """,
    "collections-where-scalars-go": """
        apiVersion: v1
        kind: Pod
        metadata: {name: shapes, namespace: team}
        spec:
          hostNetwork: [true]
          containers:
            - name: {a: b}
              image: [registry.example.com/a:1, registry.example.com/b:2]
              ports: [{containerPort: [80], hostPort: {a: 1}}]
              securityContext: {privileged: {x: 1}, runAsUser: [0], capabilities: {add: {SYS_ADMIN: true}}}
            - name: mapped-image
              image: {repository: registry.example.com/a, tag: "1"}
        """,
    "numeric-metadata-name": """
        apiVersion: v1
        kind: Pod
        metadata: {name: 123, namespace: 456}
        spec:
          containers: [{name: a, image: nginx}]
        """,
}


@pytest.mark.parametrize("case", list(TYPE_CASES))
def test_wrong_types_where_rules_look(tree: Path, scan: Callable[..., Run], case: str) -> None:
    typed = tree / "typed.yaml"
    typed.write_text(textwrap.dedent(TYPE_CASES[case]).lstrip())
    run = scan(tree)
    assert_sane(run)  # includes: no rule could not evaluate
    assert run.code in (CLEAN, INCOMPLETE), run.describe()
    assert_exit(run, run.code)
    assert all(re.match(rf"error: {re.escape(str(typed))}:\d+: ", line) for line in run.errors), run.describe()
    assert_good_file_still_reported(run, tree)


def _rule_fixtures() -> list[tuple[str, Any]]:
    found = []
    for path in sorted((REPO / "rules").rglob("*.yaml")):
        rule = yaml.safe_load(path.read_text())
        if isinstance(rule, dict) and isinstance(rule.get("tests"), dict):
            for fixture in rule["tests"].get("fail") or []:
                found.append((str(path.relative_to(REPO)), fixture))
    return found


def _node_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _node_paths(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _node_paths(value, path + (index,))


def _replaced(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    data = copy.copy(data)
    data[path[0]] = _replaced(data[path[0]], path[1:], new)
    return data


def _lengthened(data: Any, extra: str) -> Any:
    if isinstance(data, dict):
        return {k: v if k in ("apiVersion", "kind") else _lengthened(v, extra) for k, v in data.items()}
    if isinstance(data, list):
        return [_lengthened(v, extra) for v in data]
    return data + extra if isinstance(data, str) else data


REPLACEMENTS: dict[str, Any] = {"null": None, "empty-list": [], "empty-map": {}, "string": "x", "zero": 0,
                                "true": True, "negative": -1, "float": 1.5}


@pytest.mark.parametrize("replacement", [*REPLACEMENTS, "long-strings"])
def test_every_field_of_every_rule_fixture_mutated(tree: Path, scan: Callable[..., Run], replacement: str) -> None:
    """Every node of every rule's failing fixture, replaced one at a time by null (or another type):
    no rule may fail to evaluate, and what cannot be scanned is an input error with a line."""
    variants: dict[str, tuple[str, tuple[Any, ...]]] = {}
    docs = []
    for source, fixture in _rule_fixtures():
        if replacement == "long-strings":
            docs.append(_lengthened(fixture, "x" * 20_000))
            continue
        for path in _node_paths(fixture):
            doc = _replaced(fixture, path, REPLACEMENTS[replacement])
            metadata = doc.get("metadata") if isinstance(doc, dict) else None
            if isinstance(metadata, dict) and path[0] != "metadata" and doc.get("kind") != "List":
                key = f"v{len(variants)}"
                doc = {**doc, "metadata": {**metadata, "name": key}}
                variants[key] = (source, path)
            docs.append(doc)
    mutated = tree / "mutated.yaml"
    mutated.write_text("".join("---\n" + json.dumps(doc) + "\n" for doc in docs))
    run = scan(tree, "--fail-on", "never", "--max-file-size", "64", timeout=300, note=f"{len(docs)} documents")
    if run.code >= 0:
        rule_errors = [line for line in run.errors if line.startswith("error: rule ")]
        where = sorted({f"{variants[m]}" for line in rule_errors
                        for m in re.findall(r"/(v\d+):", line) if m in variants})
        assert not rule_errors, f"{len(rule_errors)} rule errors, e.g. {rule_errors[:5]}\nmutated: {where[:10]}"
    assert_sane(run)
    assert run.code == (INCOMPLETE if run.errors else 0), run.describe()
    assert all(re.match(rf"error: {re.escape(str(mutated))}:\d+: ", line) for line in run.errors), run.describe()
    if replacement == "null":  # null is "unset" everywhere but where an object cannot do without
        odd = [line for line in run.errors
               if not re.search(r"(without apiVersion|object without kind|items must be a list)$", line)]
        assert not odd, odd[:10]
    assert run.seconds < 120, run.describe()


def test_a_long_literal_value_where_a_rule_looks_stays_fast(tree: Path, scan: Callable[..., Run]) -> None:
    """A 256 KiB env value (a certificate, a JSON blob) must not take a regular expression quadratic time."""
    env = "      env:\n        - name: DATABASE_URL\n          value: " + "x" * (256 * 1024) + "\n"
    (tree / "long.yaml").write_text(pod("long-value").replace("      securityContext:\n",
                                                              env + "      securityContext:\n"))
    run = scan(tree, timeout=60)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert run.finding("run-as-root", "Pod/team/long-value"), run.describe()
    assert run.seconds < 20, run.describe()


def test_ten_thousand_containers_in_one_pod(tree: Path, scan: Callable[..., Run]) -> None:
    containers = "".join(f"    - {{name: c{i}, image: registry.example.com/app:{i}, "
                         f"securityContext: {{privileged: true}}}}\n" for i in range(10_000))
    (tree / "wide.yaml").write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: wide, namespace: team}}\nspec:\n"
                                    f"  containers:\n{containers}")
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert len(run.finding("privileged-container", "Pod/team/wide")) == 10_000, run.describe()
    assert_good_file_still_reported(run, tree)
    assert run.seconds < 60, run.describe()


# --------------------------------------------------------------------------------------------
# Odd objects


def test_objects_without_metadata(tree: Path, scan: Callable[..., Run]) -> None:
    (tree / "nameless.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        "    - {name: a, image: nginx, securityContext: {privileged: true}}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: null\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: d, image: nginx, securityContext: {privileged: true}}]\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {}\n"
        "spec: {containers: [{name: e, image: nginx, securityContext: {privileged: true}}]}\n")
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert len(run.finding("privileged-container", "Pod/<unnamed>")) == 2, run.describe()
    assert run.finding("privileged-container", "Deployment/<unnamed>"), run.describe()
    assert_good_file_still_reported(run, tree)


def test_unknown_kinds_and_api_versions(tree: Path, scan: Callable[..., Run]) -> None:
    (tree / "unknown.yaml").write_text("""\
apiVersion: totally.unknown.example.com/v9alpha42
kind: FrobnicatorWidget
metadata: {name: frob, namespace: team}
spec:
  whatever: [1, 2, {deep: true}]
  template:
    spec:
      containers: [{name: inner, image: nginx, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Secret2
metadata: {name: s}
---
apiVersion: v999
kind: Pod
metadata: {name: future-pod, namespace: team}
spec:
  containers: [{name: f, image: nginx, securityContext: {privileged: true}}]
---
apiVersion: apps/v1
kind: DaemonSetList
metadata: {}
items: []
---
apiVersion: "/"
kind: "List"
items: [null, 1, "x", {apiVersion: v1, kind: Pod}]
""")
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert run.finding("privileged-container", "FrobnicatorWidget/team/frob"), run.describe()
    assert run.finding("privileged-container", "Pod/team/future-pod"), run.describe()
    assert len(run.skipped) == 3, run.describe()  # the List's null, number and string items
    assert_good_file_still_reported(run, tree)


def test_helm_template_leftovers(tree: Path, scan: Callable[..., Run]) -> None:
    quoted = tree / "helm-quoted.yaml"  # templates inside quoted values: valid YAML, scanned as text
    quoted.write_text(pod("helm-quoted", security_context="        privileged: true\n",
                          image='"{{ .Values.image.repository }}:{{ .Values.image.tag }}"'))
    unquoted = tree / "helm-unquoted.yaml"  # `{{ x }}` as a value is a flow mapping with a mapping key
    unquoted.write_text(pod("helm-unquoted", "  hostNetwork: {{ .Values.hostNetwork }}\n"))
    broken = tree / "helm-broken.yaml"
    broken.write_text('apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ include "chart.fullname" . }}\n  labels:\n'
                      '    {{- include "chart.labels" . | nindent 4 }}\nspec:\n  containers:\n'
                      "    {{- range .Values.containers }}\n    - name: {{ .name }}\n    {{- end }}\n---\n"
                      + named_root_pod("after-helm"))
    chart = tree / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("image: {repository: nginx}\n")
    (chart / "templates" / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n"
                                                  "spec:\n  containers:\n    - name: c\n      image: nginx\n"
                                                  "      securityContext: {privileged: true}\n")
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert run.finding("privileged-container", "Pod/team/helm-quoted"), run.describe()
    assert run.finding("run-as-root", "Pod/team/after-helm"), run.describe()
    hint = "(an unrendered template? render it first)"
    assert sorted(run.errors) == sorted([
        # `name: {{ include ... }}` (line 4) is a flow mapping used as a key: the first problem of
        # that document in reading order (its syntax error on line 6 comes later)
        f"error: {broken}:4: complex (non-scalar) mapping key; not scanned {hint}",
        f"error: {unquoted}:7: complex (non-scalar) mapping key; not scanned {hint}",
    ]), run.describe()
    # the chart is rendered, none of its files is read as a manifest
    assert run.finding("privileged-container", "Pod/release-name"), run.describe()
    assert_good_file_still_reported(run, tree)


# --------------------------------------------------------------------------------------------
# The file system


def test_symlink_loops(tree: Path, scan: Callable[..., Run]) -> None:
    (tree / "self.yaml").symlink_to("self.yaml")
    (tree / "a.yaml").symlink_to("b.yaml")
    (tree / "b.yaml").symlink_to("a.yaml")
    (tree / "dangling.yaml").symlink_to(tree / "nowhere.yaml")
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "sub" / "loop").symlink_to("..")  # directory loops: not followed
    (tree / "sub" / "deeper" / "up").symlink_to("../..")
    (tree / "sub" / "deeper" / "inner.yaml").write_text(named_root_pod("inner"))
    run = scan(tree)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert sorted(run.errors) == sorted([
        f"error: {tree / 'a.yaml'}: cannot read: Too many levels of symbolic links",
        f"error: {tree / 'b.yaml'}: cannot read: Too many levels of symbolic links",
        f"error: {tree / 'self.yaml'}: cannot read: Too many levels of symbolic links",
        f"error: {tree / 'dangling.yaml'}: cannot read: No such file or directory",
    ]), run.describe()
    assert len(run.finding("run-as-root", "Pod/team/inner")) == 1, run.describe()  # once, not once per loop
    assert_good_file_still_reported(run, tree)


def test_fifos_and_devices_in_a_scanned_folder(tree: Path, scan: Callable[..., Run]) -> None:
    os.mkfifo(tree / "pipe.yaml")
    (tree / "pipe-link.yaml").symlink_to("pipe.yaml")
    (tree / "null.yaml").symlink_to("/dev/null")
    (tree / "zero.yaml").symlink_to("/dev/zero")
    (tree / "random.yml").symlink_to("/dev/urandom")
    (tree / "stdin.yaml").symlink_to("/proc/self/fd/0")
    run = scan(tree, timeout=60)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert sorted(run.skipped) == sorted(f"skipped: {tree / name}: not a regular file" for name in
                                         ("pipe.yaml", "pipe-link.yaml", "null.yaml", "zero.yaml", "random.yml",
                                          "stdin.yaml")), run.describe()
    assert_good_file_still_reported(run, tree)


def test_an_explicit_pipe_is_read_like_process_substitution(tree: Path, scan: Callable[..., Run]) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, named_root_pod("piped").encode())
    os.close(write_end)
    try:
        run = scan(f"/dev/fd/{read_end}", tree / "good.yaml", pass_fds=(read_end,), timeout=60)
    finally:
        os.close(read_end)
    assert_sane(run)
    assert_exit(run, CLEAN)
    assert run.finding("run-as-root", "Pod/team/piped"), run.describe()
    assert_good_file_still_reported(run, tree)


def test_a_file_replaced_by_a_fifo_after_the_walk_does_not_hang(tree: Path, scan: Callable[..., Run]) -> None:
    """The folder is listed first and read later: a file that became a FIFO in between must not
    block the scan forever (open it without blocking and check what was opened)."""
    slow = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{k: v}}\n"
                   for i in range(15_000))
    for i in range(8):
        (tree / f"a{i}.yaml").write_text(slow)
    last = tree / "zzz.yaml"
    last.write_text(named_root_pod("last"))
    first = tree / "a0.yaml"
    os.utime(first, (0, first.stat().st_mtime))  # relatime: the first read moves atime off the epoch
    swapped = threading.Event()

    def swap_after_the_walk() -> None:
        deadline = time.monotonic() + 10
        while first.stat().st_atime == 0 and time.monotonic() < deadline:
            time.sleep(0.001)  # a0.yaml being read means the walk is over
        last.unlink()
        os.mkfifo(last)
        swapped.set()

    run = scan(tree, timeout=60, while_running=swap_after_the_walk)
    assert swapped.is_set()
    assert_sane(run)
    assert run.code in (CLEAN, INCOMPLETE), run.describe()
    assert_exit(run, run.code)
    assert str(last) in run.out, run.describe()  # accounted for: skipped or an error
    assert_good_file_still_reported(run, tree)


def test_a_file_changing_while_the_folder_is_scanned(tree: Path, scan: Callable[..., Run]) -> None:
    for i in range(300):
        (tree / f"f{i:03}.yaml").write_text(named_root_pod(f"p{i}"))
    hot, flicker = tree / "hot.yaml", tree / "flicker.yaml"
    versions = [
        ("# café, naïve, 東京\n" * 50 + named_root_pod("hot")).encode(),  # cut mid-character when half written
        ("".join("---\n" + named_root_pod(f"hot{i}") for i in range(300))).encode(),
        b"",
    ]
    hot.write_bytes(versions[0])
    flicker.write_bytes(versions[0])
    stop = threading.Event()
    rounds = [0]

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            data = versions[n % len(versions)]
            if n % 3 == 0:  # rewritten in place, in pieces: readers see it empty, partial or whole
                with open(hot, "wb") as handle:
                    for k in range(0, len(data), 4099):
                        handle.write(data[k:k + 4099])
                        handle.flush()
            elif n % 3 == 1:  # replaced atomically
                temporary = tree / ".hot.tmp"
                temporary.write_bytes(data)
                os.replace(temporary, hot)
            else:  # truncated to half
                with open(hot, "r+b") as handle:
                    handle.truncate(len(data) // 2)
            try:  # and one that comes and goes
                flicker.unlink()
            except FileNotFoundError:
                pass
            flicker.write_bytes(data)
            rounds[0] = n

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        runs = [scan(tree, timeout=120) for _ in range(3)]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert rounds[0] > 10
    for run in runs:
        assert_sane(run)
        assert run.code in (CLEAN, INCOMPLETE), run.describe()
        assert_exit(run, run.code)
        assert all(line.startswith((f"error: {hot}", f"error: {flicker}")) for line in run.errors), run.describe()
        assert str(hot) in run.out, run.describe()  # it always exists: scanned, skipped or an error
        assert len([s for s in text_layout.findings(run.out)
                    if s.rule == "run-as-root" and re.fullmatch(r"Pod/team/p\d+", s.ref)]) == 300
        assert_good_file_still_reported(run, tree)


def test_unreadable_nested_directories(tree: Path, scan: Callable[..., Run]) -> None:
    nested = tree / "a" / "b"
    for name in ("locked", "no-search", "no-list"):
        (nested / name).mkdir(parents=True)
        (nested / name / "x.yaml").write_text(named_root_pod(name))
    (nested / "no-list" / "inner").mkdir()
    (nested / "no-list" / "inner" / "y.yaml").write_text(named_root_pod("inner"))
    (nested / "locked").chmod(0o000)
    (nested / "no-search").chmod(0o644)  # names can be listed, files cannot be opened
    (nested / "no-list").chmod(0o311)  # can be entered, not listed
    run = scan(tree, obey_permissions=True)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert sorted(run.errors) == sorted([
        f"error: {nested / 'locked'}: cannot read directory: Permission denied",
        f"error: {nested / 'no-list'}: cannot read directory: Permission denied",
        f"error: {nested / 'no-search' / 'x.yaml'}: cannot read: Permission denied",
    ]), run.describe()
    assert_good_file_still_reported(run, tree)


def test_an_unreadable_directory_given_by_name_is_one_error(tree: Path, scan: Callable[..., Run]) -> None:
    locked = tree.parent / "locked"
    locked.mkdir()
    (locked / "x.yaml").write_text(ROOT_POD)
    locked.chmod(0o000)
    run = scan(locked, tree / "good.yaml", obey_permissions=True)
    assert_sane(run)
    assert_exit(run, INCOMPLETE)
    assert run.errors == [f"error: {locked}: cannot read directory: Permission denied"], run.describe()
    assert_good_file_still_reported(run, tree)
