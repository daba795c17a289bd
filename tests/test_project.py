"""The project's promises about itself: the README's commands are the ones CI runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib

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


def dependencies() -> list[Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    texts = [*pyproject["build-system"]["requires"], *project["dependencies"],
             *(text for extra in project["optional-dependencies"].values() for text in extra)]
    return [Requirement(text) for text in texts]


def test_every_dependency_is_bounded_below_and_below_its_next_major() -> None:
    # a future major release must not change what kaudit does unnoticed; the floor is what CI tests
    for requirement in dependencies():
        bounds = {spec.operator: spec.version for spec in requirement.specifier}
        assert sorted(bounds) == ["<", ">="], f"{requirement}: needs >=FLOOR,<MAJOR"
        assert re.fullmatch(r"\d+", bounds["<"]), f"{requirement}: the ceiling is a major release"
        assert int(bounds[">="].split(".")[0]) < int(bounds["<"]), str(requirement)


def test_the_lowest_constraints_pin_every_dependency_to_its_floor() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "lowest-constraints")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pins = dict(line.split("==") for line in done.stdout.split())
    floors = {r.name: next(s.version for s in r.specifier if s.operator == ">=") for r in dependencies()[1:]}
    assert pins == floors
    assert pins["pyyaml"] == "6.0.1"


def test_readme_names_every_system_package_the_test_command_installs() -> None:
    script = (REPO / "scripts" / "system-packages").read_text()
    packages = re.findall(r"missing\+=\(([\w.-]+)\)", script)
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("Run the whole test suite"):readme.index("<!-- test-command -->")]
    assert len(packages) == 5
    for package in packages:
        assert f"- `{package}`: " in section, f"README's test section does not say why it installs {package}"
