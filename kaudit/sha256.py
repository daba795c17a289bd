"""SHA-256 without loading OpenSSL: `hashlib` binds OpenSSL's libcrypto at import, which costs a
pre-commit run about 2.5 ms (3% of it) for two uses: finding fingerprints and the rules index
digest. CPython has its own SHA-256 built in (`_sha256` in 3.11, `_sha2` from 3.12); the digest is
the same whichever computes it (tests/test_value.py checks), and `hashlib` stays the fallback."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import sha256
else:
    try:
        from _sha256 import sha256
    except ImportError:  # Python 3.12+, or a build without it
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

__all__ = ["sha256"]
