"""How much of a report a person is shown (`kaudit scan -q/-v/--min-severity/--color`).

Display options change what the text and Markdown writers print, never the report: the gate
(`--fail-on`), the counts in the verdict and every machine format see all findings. Writers that
honour them take `display=` (kaudit/writers/__init__.py passes it); the others never see it.
"""
from __future__ import annotations

import os
from typing import TextIO

from kaudit.model import Severity
from kaudit.value import value

COLOR_CHOICES = ("auto", "always", "never")
WIDTH = 120  # a finding line without -v fits this many columns


@value
class Display:
    verbose: bool = False  # full messages, joined rules, render provenance notes, the controls line
    quiet: bool = False  # errors and the verdict only
    min_severity: Severity = Severity.INFO  # findings below it are counted, not listed
    color: str = "auto"  # auto | always | never

    def shows(self, severity: Severity) -> bool:
        return severity >= self.min_severity


def use_color(color: str, stream: TextIO) -> bool:
    """--color always/never wins; under auto, NO_COLOR (https://no-color.org) turns colour off and
    FORCE_COLOR (https://force-color.org) on, both when set to a non-empty value, NO_COLOR first;
    else colour only on a terminal."""
    if color != "auto":
        return color == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
