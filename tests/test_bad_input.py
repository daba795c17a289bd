"""Bad input gets one clear line naming the file (and line), the rest of the scan completes, exit 2.

These run kaudit as a real process: they check for tracebacks on stderr and for bounded memory.
"""
from __future__ import annotations

import os
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from kaudit.sources.yamldoc import TOO_DEEP

from .conftest import ROOT_POD, CliResult, run_process


@pytest.fixture
def tree() -> Iterator[Path]:
    """A folder with one good (insecure) manifest, readable by an unprivileged user too."""
    root = Path(tempfile.mkdtemp(prefix="kaudit-bad-input-"))
    root.chmod(0o755)
    (root / "good.yaml").write_text(ROOT_POD.lstrip())
    yield root
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root)


def scan(tree: Path, *extra: str, obey_permissions: bool = False) -> CliResult:
    result = run_process("scan", str(tree), *extra, obey_permissions=obey_permissions)
    assert "Traceback" not in result.err + result.out
    return result


def assert_good_file_still_reported(result: CliResult, tree: Path) -> None:
    assert f"{tree / 'good.yaml'}:8:7" in result.out and "run-as-root" in result.out


def error_lines(result: CliResult) -> list[str]:
    return [line for line in result.out.splitlines() if line.startswith("error: ")]


def test_malformed_yaml(tree: Path) -> None:
    (tree / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    result = scan(tree)
    assert result.code == 2
    assert error_lines(result) == [f"error: {tree / 'bad.yaml'}:5: invalid YAML: did not find expected ',' or ']'"]
    assert_good_file_still_reported(result, tree)


def test_unreadable_files_in_a_directory(tree: Path) -> None:
    secret = tree / "sub" / "locked.yaml"
    secret.parent.mkdir()
    secret.write_text(ROOT_POD)
    secret.chmod(0o000)
    locked_dir = tree / "locked-dir"
    locked_dir.mkdir()
    (locked_dir / "x.yaml").write_text(ROOT_POD)
    locked_dir.chmod(0o000)
    result = scan(tree, obey_permissions=True)
    assert result.code == 2
    assert sorted(error_lines(result)) == [
        f"error: {locked_dir}: cannot read directory: Permission denied",
        f"error: {secret}: cannot read: Permission denied",
    ]
    assert_good_file_still_reported(result, tree)


def test_empty_file_is_skipped_with_a_reason_not_an_error(tree: Path) -> None:
    (tree / "empty.yaml").write_text("")
    (tree / "blank.yml").write_text("\n   \n# only a comment\n")
    result = scan(tree)
    assert result.code == 1  # the good file's findings; nothing failed
    assert f"skipped: {tree / 'empty.yaml'}: empty file" in result.out
    assert f"skipped: {tree / 'blank.yml'}: empty file" not in result.out  # a comment-only file has no documents
    assert_good_file_still_reported(result, tree)
    assert "2 skipped" in result.out or "1 skipped" in result.out


def test_binary_junk(tree: Path) -> None:
    (tree / "junk.yaml").write_bytes(os.urandom(4096) + b"\0")
    result = scan(tree)
    assert result.code == 2
    [line] = error_lines(result)
    assert line.startswith(f"error: {tree / 'junk.yaml'}:") and ("binary content" in line or "not valid UTF-8" in line)
    assert_good_file_still_reported(result, tree)


def test_alias_bomb(tree: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(8):
        lines.append(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]")
    (tree / "bomb.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + "\n".join(lines))
    result = scan(tree)
    assert result.code == 2
    assert error_lines(result) == [
        f"error: {tree / 'bomb.yaml'}:5: YAML aliases expand to more than 100000 nodes (alias bomb?); not scanned"]
    assert_good_file_still_reported(result, tree)
    assert "2 resources" in result.out  # the ConfigMap before the bomb was scanned


def test_fifty_megabyte_file(tree: Path) -> None:
    with open(tree / "huge.yaml", "w") as handle:
        handle.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n")
        chunk = "".join(f"  key{i}: value-{i}\n" for i in range(10_000))
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(chunk)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = scan(tree)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert result.code == 2
    assert error_lines(result) == [
        f"error: {tree / 'huge.yaml'}: larger than 32 MiB; not scanned (raise --max-file-size to scan it)"]
    assert_good_file_still_reported(result, tree)
    assert max(peak_kib, before) < 400 * 1024  # the refused file was never read whole


def test_deeply_nested_documents(tree: Path) -> None:
    (tree / "deep.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: "
                                    + "[" * 200_000 + "]" * 200_000 + "\n")
    block = "".join(" " * i + "k:\n" for i in range(1000))
    (tree / "deep-block.yaml").write_text(block)
    result = scan(tree)
    assert result.code == 2
    assert sorted(error_lines(result)) == [
        f"error: {tree / 'deep-block.yaml'}:201: {TOO_DEEP}",
        f"error: {tree / 'deep.yaml'}:4: {TOO_DEEP}",
    ]
    assert_good_file_still_reported(result, tree)


def test_missing_path_argument(tree: Path) -> None:
    result = run_process("scan", str(tree / "good.yaml"), str(tree / "absent.yaml"))
    assert result.code == 2
    assert error_lines(result) == [f"error: {tree / 'absent.yaml'}: no such file or directory"]
    assert_good_file_still_reported(result, tree)


def test_broken_config_and_rules_are_one_line_errors(tree: Path) -> None:
    (tree / "conf.yaml").write_text("rules: [\n")
    result = run_process("scan", str(tree / "good.yaml"), "--config", str(tree / "conf.yaml"))
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.err.startswith(f"kaudit: {tree / 'conf.yaml'}:")
