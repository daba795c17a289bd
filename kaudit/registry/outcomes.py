"""What a signature check can conclude. Apart from cosign.py so that the rule templates reading
these results import no network code (urllib, ssl, email: a quarter of a pre-commit run's imports)."""
from __future__ import annotations

VERIFIED, UNSIGNED, UNTRUSTED, WRONG_DIGEST, WRONG_REFERENCE, ERROR = (
    "verified", "unsigned", "untrusted", "wrong-digest", "wrong-reference", "error")
