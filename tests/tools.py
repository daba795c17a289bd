"""Real components for tests: a missing one skips locally, and fails the run under CI=true."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def require_tool(name: str) -> str:
    """The path of command `name` (this venv's bin first); skip without it, or fail when CI=true."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI=true: the test command must install it")
        pytest.skip(message)
    return path
