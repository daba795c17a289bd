"""Where the built-in data lives: inside the wheel, or at the top of a source checkout."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`rules` or `reports`: kaudit/_data/NAME in a wheel, ./NAME in a checkout or editable install."""
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def builtin_rules_dir() -> Path:
    return data_dir("rules")


def reports_dir() -> Path:
    return data_dir("reports")


def schema_path(name: str) -> Path:
    return _PACKAGE / "schemas" / name


def package_data(name: str) -> Path:
    """A data file shipped inside the package (kaudit/data/NAME)."""
    return _PACKAGE / "data" / name
