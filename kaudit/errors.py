"""The one error type for user-facing failures; cli.py turns it into one line and exit 2."""
from __future__ import annotations


class KauditError(Exception):
    """kaudit could not do what was asked: bad usage, bad config, unreadable rules."""
