"""docs/writing-rules.md, followed literally: every block marked `<!-- guide-step: ... -->` is
written (`file PATH`) or run (`run`, `run exit=N`) in order, in an empty directory, with the
installed `kaudit` command; the output shown must be what it prints.

In shown output, `…` stands for text left out (an absolute path, the layout around a finding);
every other character must match, and the shown lines must appear in order.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

GUIDE = REPO / "docs" / "writing-rules.md"
STEP = re.compile(r"<!-- guide-step: (?P<what>[^>]*?) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)


def steps() -> list[tuple[str, str]]:
    return [(match["what"].strip(), match["body"]) for match in STEP.finditer(GUIDE.read_text(encoding="utf-8"))]


def _kaudit_bin() -> str:
    installed = Path(sys.executable).parent / "kaudit"
    assert installed.exists(), "the guide runs the installed kaudit command (pip install -e .)"
    return str(installed.parent)


def _matches(shown: str, printed: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    return re.fullmatch(pattern, printed) is not None


def _follows(shown: list[str], printed: list[str]) -> bool:
    """The shown lines appear in the printed ones, in order."""
    lines = iter(printed)
    return all(any(_matches(want, line) for line in lines) for want in shown)


def test_the_guide_has_steps_of_every_kind() -> None:
    kinds = {what.split()[0] for what, _ in steps()}
    assert kinds == {"file", "run"}
    assert len(steps()) >= 10


def test_the_writing_rules_guide_works_as_written(tmp_path: Path) -> None:
    environment = {**os.environ, "PATH": _kaudit_bin() + os.pathsep + os.environ.get("PATH", ""), "NO_COLOR": "1"}
    environment.pop("KAUDIT_DEBUG", None)
    for number, (what, body) in enumerate(steps(), 1):
        words = what.split()
        if words[0] == "file":
            target = tmp_path / words[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
            continue
        assert words[0] == "run", what
        expected_exit = int(words[1].split("=")[1]) if len(words) > 1 else 0
        command, *shown = body.splitlines()
        assert command.startswith("$ kaudit "), f"step {number}: one kaudit command per block"
        done = subprocess.run(shlex.split(command[2:]), cwd=tmp_path, env=environment, capture_output=True,
                              text=True, timeout=120)
        printed = (done.stdout + done.stderr).splitlines()
        context = f"step {number}: {command}\n" + done.stdout + done.stderr
        assert done.returncode == expected_exit, context
        assert _follows(shown, printed), context
    # what the guide promises beyond its output: the rule is loaded from the config, and suppressed
    listed = subprocess.run(["kaudit", "rules", "list"], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=120)
    assert "host-aliases-set" in listed.stdout
