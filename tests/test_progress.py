"""A cluster scan's progress line: on a terminal's standard error only, rewritten in place, erased at the end."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from kaudit.progress import ERASE_LINE, Progress
from tests.k8s_api import FakeApiServer
from tests.test_cluster import objects

REPO = Path(__file__).resolve().parents[1]


def run_kaudit(args: list[str], stderr_on_terminal: bool) -> tuple[int, str, str]:
    """kaudit in a child process, its standard error a pseudo-terminal or a pipe; (code, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "kaudit.cli", *args]
    if not stderr_on_terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        follower = -1
        seen = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out = child.stdout.read().decode() if child.stdout else ""
        code = child.wait(timeout=300)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return code, out, seen.decode(errors="replace")


def test_a_cluster_scan_shows_progress_on_a_terminal_and_nothing_on_a_pipe(tmp_path: Path) -> None:
    with FakeApiServer(objects()) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        args = ["scan", "--kubeconfig", kubeconfig, "--context", "test", "-f", "json", "-o", str(tmp_path / "r.json")]
        code, _, terminal = run_kaudit(args, stderr_on_terminal=True)
        piped_code, _, piped = run_kaudit(args, stderr_on_terminal=False)
    assert code == piped_code == 1, terminal + piped
    # the line, rewritten in place: types listed (of how many), pages fetched, objects read
    assert f"{ERASE_LINE}kaudit: context test: connecting to https://127.0.0.1:" in terminal
    assert " types listed, " in terminal and " pages, " in terminal
    final = terminal.split(ERASE_LINE)
    listed = [part for part in final if "types listed" in part]
    done, total = listed[-1].split(": ")[2].split(" ")[0].split("/")
    assert done == total and int(total) > 5  # every type was listed
    # erased before anything else is written: the verdict starts on a clean line
    verdict = terminal.rindex("gate fail")
    assert terminal.rindex(ERASE_LINE) < verdict and "types listed" not in terminal[terminal.rindex(ERASE_LINE) + 4:]
    assert "types listed" not in piped and "\r" not in piped and "\x1b" not in piped
    assert "gate fail" in piped  # the verdict still goes to stderr (no text report on stdout)


def test_progress_is_silent_off_a_terminal_or_when_switched_off() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Progress(Terminal())
    shown.update("kaudit: 1/2 types listed", force=True)
    shown.done()
    assert shown.stream is not None and shown.stream.getvalue() == f"{ERASE_LINE}kaudit: 1/2 types listed{ERASE_LINE}"
    quiet = Progress(None)
    quiet.update("anything", force=True)
    quiet.done()  # nothing to write to, nothing raised
    assert Progress.on_stderr(wanted=False).stream is None
