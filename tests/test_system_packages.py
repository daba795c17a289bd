"""scripts/system-packages: which Debian packages the test command installs, and how.

The script runs as a real process with a PATH of small recording stand-ins for `id`, `sudo`,
`apt-get` and `python3` (a package manager cannot be run for real in a test); the tools it looks
for are present or absent by being on that PATH or not.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .tools import require_tool

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "system-packages"
TOOLS = {"chromium": "chromium", "docker-registry": "docker-registry", "git": "git", "setpriv": "util-linux"}
ALL_PACKAGES = ["chromium", "docker-registry", "git", "util-linux", "python3-venv"]

STUBS = {
    "id": 'echo "$STUB_UID"',
    # like sudo's default env_reset: the command runs as root with a fresh environment
    "sudo": 'echo "sudo $*" >> "$LOG"; exec env -i PATH="$PATH" LOG="$LOG" STUB_UID=0 "$@"',
    "apt-get": 'echo "apt-get uid=$STUB_UID frontend=${DEBIAN_FRONTEND:-} $*" >> "$LOG"',
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    calls: list[str]


def run(tmp_path: Path, *, root: bool, sudo: bool = False, venv: bool = True, apt: bool = True,
        missing: tuple[str, ...] = ()) -> Run:
    """scripts/system-packages on a machine where the tools in `missing` (commands) are absent."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    log.touch()
    stubs = {**STUBS, "python3": "exit 0" if venv else "exit 1"}  # python3 -c 'import ensurepip, venv'
    stubs.update({tool: "exit 0" for tool in TOOLS if tool not in missing})
    for name, body in stubs.items():
        if name == "sudo" and not sudo or name == "apt-get" and not apt:
            continue
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    os.symlink(require_tool("env"), bin_dir / "env")
    done = subprocess.run([require_tool("bash"), str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "LOG": str(log), "STUB_UID": "0" if root else "1000"})
    return Run(done.returncode, done.stdout, done.stderr, log.read_text().splitlines())


def install_calls(packages: list[str], via_sudo: bool) -> list[str]:
    """What the stand-ins record when `packages` are installed: apt-get always as root, non-interactive."""
    install = "install -y -qq --no-install-recommends " + " ".join(packages)
    update, add = "apt-get uid=0 frontend= update -qq", f"apt-get uid=0 frontend=noninteractive {install}"
    if not via_sudo:
        return [update, add]
    return ["sudo apt-get update -qq", update, f"sudo env DEBIAN_FRONTEND=noninteractive apt-get {install}", add]


@pytest.mark.parametrize("root, sudo", [(True, False), (False, True), (False, False)])
def test_nothing_is_installed_when_nothing_is_missing(tmp_path: Path, root: bool, sudo: bool) -> None:
    result = run(tmp_path, root=root, sudo=sudo)
    assert (result.code, result.calls, result.stdout, result.stderr) == (0, [], "", "")


def test_root_installs_every_missing_package_itself(tmp_path: Path) -> None:
    result = run(tmp_path, root=True, sudo=True, venv=False, missing=tuple(TOOLS))
    assert result.code == 0, result.stderr
    assert result.calls == install_calls(ALL_PACKAGES, via_sudo=False)


def test_root_installs_python3_venv_when_venv_is_missing(tmp_path: Path) -> None:
    result = run(tmp_path, root=True, venv=False)
    assert result.code == 0, result.stderr
    assert result.calls == install_calls(["python3-venv"], via_sudo=False)


def test_a_user_with_sudo_installs_through_sudo_noninteractively(tmp_path: Path) -> None:
    result = run(tmp_path, root=False, sudo=True, venv=False, missing=("git",))
    assert result.code == 0, result.stderr
    assert result.calls == install_calls(["git", "python3-venv"], via_sudo=True)


def test_a_user_without_sudo_is_told_what_to_install_and_it_fails(tmp_path: Path) -> None:
    result = run(tmp_path, root=False, venv=False, missing=("chromium", "setpriv"))
    assert result.code != 0 and result.calls == []
    assert result.stderr == ("scripts/test needs: chromium util-linux python3-venv; "
                             "as root run: apt-get install chromium util-linux python3-venv\n")


def test_without_apt_get_the_packages_are_named_and_it_fails(tmp_path: Path) -> None:
    result = run(tmp_path, root=True, apt=False, missing=("docker-registry",))
    assert result.code != 0 and result.calls == []
    assert "docker-registry" in result.stderr and result.stderr.count("\n") == 1
