"""Output formats: one module per format, each with `write(report, stream)`; imported on demand."""
from __future__ import annotations

import importlib
from typing import Callable, TextIO

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


def get_writer(name: str) -> Writer:
    module = FORMATS.get(name)
    if module is None:
        raise KauditError(f"unknown format {name!r} (use one of: {', '.join(FORMATS)})")
    writer: Writer = importlib.import_module(module).write
    return writer
