"""Where the built-in data lives: inside the wheel, or at the top of a source checkout.

Plain strings inside: a pre-commit run needs only the rules directory, and `pathlib` (with the
`urllib.parse` and `ipaddress` it imports) costs such a run 4 ms. The functions that return a
`Path` import it when called."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_PACKAGE = os.path.dirname(os.path.realpath(__file__))


def data_location(name: str) -> str:
    """`rules` or `reports`: kaudit/_data/NAME in a wheel, ./NAME in a checkout or editable install."""
    installed = os.path.join(_PACKAGE, "_data", name)
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(_PACKAGE), name)


def data_dir(name: str) -> Path:
    from pathlib import Path

    return Path(data_location(name))


def builtin_rules_location() -> str:
    return data_location("rules")


def builtin_rules_dir() -> Path:
    return data_dir("rules")


def reports_dir() -> Path:
    return data_dir("reports")


def schema_path(name: str) -> Path:
    from pathlib import Path

    return Path(_PACKAGE, "schemas", name)


def package_data_location(name: str) -> str:
    """A data file shipped inside the package (kaudit/data/NAME)."""
    return os.path.join(_PACKAGE, "data", name)


def package_data(name: str) -> Path:
    from pathlib import Path

    return Path(package_data_location(name))
