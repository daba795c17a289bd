"""Real components for tests: a missing one skips locally, and fails the run under CI=true."""
from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest


def require_tool(name: str) -> str:
    """The path of command `name` (this venv's bin first); skip without it, or fail when CI=true."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed")
    return path


def require_module(name: str) -> ModuleType:
    """Python module `name` (e.g. "playwright.sync_api"), imported; skip without it, or fail when CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"Python module {name} is not installed")


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}, and CI=true: the test command must install it")
    pytest.skip(message)
