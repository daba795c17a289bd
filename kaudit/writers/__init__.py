"""Output formats: one module per format, each with `write(report, stream)`; imported on demand.
The formats people read (DISPLAYED) also take `display=` (kaudit/writers/display.py)."""
from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Callable, Optional, TextIO

from kaudit.errors import KauditError
from kaudit.model import Report

Writer = Callable[[Report, TextIO], None]

FORMATS: dict[str, str] = {
    "text": "kaudit.writers.text",
    "json": "kaudit.writers.json_report",
    "html": "kaudit.writers.html",
    "sarif": "kaudit.writers.sarif",
    "junit": "kaudit.writers.junit",
    "markdown": "kaudit.writers.markdown",
}
DISPLAYED = frozenset({"text", "markdown"})  # -q, -v, --min-severity and --color apply to these

if TYPE_CHECKING:
    from kaudit.writers.display import Display


def get_writer(name: str, display: Optional[Display] = None) -> Writer:
    module = FORMATS.get(name)
    if module is None:
        raise KauditError(f"unknown format {name!r} (use one of: {', '.join(FORMATS)})")
    write = importlib.import_module(module).write
    if display is not None and name in DISPLAYED:
        shown: Writer = functools.partial(write, display=display)
        return shown
    writer: Writer = write
    return writer
