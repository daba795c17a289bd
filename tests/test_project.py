"""The project's promises about itself: the README's commands are the ones CI runs."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_command(marker: str) -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```sh\n(.+?)\n```", readme, re.S)
    assert match, f"README has no {marker} block"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_command("test-command")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_readme_install_command_scans_the_examples() -> None:
    command = readme_command("install-command")
    assert "pip install ." in command and command.endswith("kaudit scan examples/manifests/")
    assert (REPO / "examples" / "manifests").is_dir()


def test_package_type_checks_strictly() -> None:
    # STYLE.md: mypy strict on the package (configured in pyproject.toml)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
