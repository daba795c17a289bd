"""The git top level that holds a path, found as `git rev-parse --show-toplevel` finds it, without git.

The nearest ancestor with a `.git` entry is the top level: a `.git` directory (an ordinary clone) or a
`.git` file starting `gitdir:` (a worktree or a submodule, whose git directory lives elsewhere). No
subprocess, no network: the SARIF writer calls this once per directory of a report.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Optional


def git_top_level(path: str | os.PathLike[str]) -> Optional[Path]:
    """The top level of the repository holding `path` (a file or directory, which need not exist), or
    None outside any repository. The result is spelled like `path` made absolute, symlinks unresolved,
    so a path under it can be made relative to it by prefix."""
    absolute = os.path.abspath(path)
    start = absolute if os.path.isdir(absolute) else os.path.dirname(absolute)
    top = _top_level(start)
    return Path(top) if top is not None else None


@functools.lru_cache(maxsize=4096)
def _top_level(directory: str) -> Optional[str]:
    # cached per directory and recursive, so the many files of one tree share one walk up
    if _is_repository_top(directory):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _top_level(parent)


def _is_repository_top(directory: str) -> bool:
    marker = os.path.join(directory, ".git")
    if os.path.isdir(marker):
        return os.path.exists(os.path.join(marker, "HEAD"))  # an empty or stray `.git` folder is no repository
    if os.path.isfile(marker):
        try:
            with open(marker, "rb") as handle:
                return handle.read(8) == b"gitdir: "
        except OSError:
            return False
    return False
