"""Plain YAML scalars read the way Kubernetes reads them.

The API server, kubectl and most controllers decode YAML with sigs.k8s.io/yaml, which uses go-yaml
v2's resolver: YAML 1.1 booleans plus y / n, integers through Go's strconv.ParseInt(s, 0, 64)
after dropping every `_` (so 0o17, 0x0, 017 and 1_000 are numbers), floats by Go's syntax, and no
sexagesimal numbers. A security field means what the cluster will run, so kaudit resolves plain
scalars with the same table rather than PyYAML's.
"""
from __future__ import annotations

import math
import re
from typing import Any

_WORDS: dict[str, Any] = {}
for _value, _spellings in (
    (True, ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")),
    (False, ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")),
    (None, ("", "~", "null", "Null", "NULL")),
    (math.nan, (".nan", ".NaN", ".NAN")),
    (math.inf, (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")),
    (-math.inf, ("-.inf", "-.Inf", "-.INF")),
):
    for _spelling in _spellings:
        _WORDS[_spelling] = _value

_NUMBER_START = frozenset("+-0123456789")
_GO_INT = re.compile(r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))\Z")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")  # go-yaml's yamlStyleFloat
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1

_cache: dict[str, Any] = {}
_CACHE_LIMIT = 50_000  # manifests repeat the same short texts (true, ports, keys) endlessly


def resolve_plain(text: str) -> Any:
    """The value of an untagged plain scalar: bool, None, int, float or the text itself."""
    try:
        return _cache[text]
    except KeyError:
        pass
    value = _resolve(text)
    if len(text) <= 64 and len(_cache) < _CACHE_LIMIT:
        _cache[text] = value
    return value


def _resolve(text: str) -> Any:
    if text in _WORDS:  # the empty text too (null)
        return _WORDS[text]
    first = text[0]
    if first == ".":
        return float(text) if _DOT_FLOAT.match(text) else text
    if first not in _NUMBER_START:
        return text
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is not None:
        return number
    if _GO_FLOAT.match(plain):
        value = float(plain)
        if not math.isinf(value):  # Go's ParseFloat reports out-of-range values as errors
            return value
    return text


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt(plain, 0, 64), then ParseUint(plain, 0, 64) (no sign) when that overflows."""
    match = _GO_INT.match(plain)
    if match is None:
        return None
    sign, hexadecimal, octal, binary, legacy_octal, decimal = match.groups()
    if hexadecimal is not None:
        magnitude = int(hexadecimal, 16)
    elif octal is not None:
        magnitude = int(octal, 8)
    elif binary is not None:
        magnitude = int(binary, 2)
    elif legacy_octal is not None:
        magnitude = int(legacy_octal, 8) if legacy_octal else 0
    else:
        magnitude = int(decimal)
    value = -magnitude if sign == "-" else magnitude
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if not sign and value <= _UINT64_MAX:
        return value
    return None
