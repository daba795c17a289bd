"""Is this name=value a credential? The detection shared by `secret-in-env` (env values) and
`secret-in-configmap` (ConfigMap keys and the config files they embed): documented credential
names, names that say "secret", and value shapes. Built once per rule from its params; it never
returns the value, only why it is one."""
from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

from kaudit.checks.base import TemplateError

# The params every rule using this detection takes (the rule files list the names and shapes).
PARAMS_PROPERTIES: Mapping[str, Any] = {
    "name-patterns": {"type": "array", "items": {"type": "string", "format": "regex"},
                      "description": "regular expressions: a name matching one is taken for a credential"},
    "ignore-name-patterns": {"type": "array", "items": {"type": "string", "format": "regex"},
                             "description": "regular expressions: a name matching one is never reported (wins over name-patterns)"},
    "credential-names": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "variable documented by a client or image as holding a credential -> where;"
                       " a trailing * stands for any suffix (TF_TOKEN_*)",
    },
    "path-names": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "variable documented as holding a path to a credential file -> where",
    },
    "value-patterns": {
        "type": "object",
        "additionalProperties": {"type": "string", "format": "regex"},
        "description": "what the value looks like -> regular expression",
    },
}
DETECTION_PARAMS = tuple(PARAMS_PROPERTIES)

_NOT_SECRET = re.compile(r"^(?:true|false|yes|no|on|off|enabled|disabled|none|null|\d+(?:\.\d+)?)$", re.I)
# An absolute, relative, home or Windows drive path: what a variable documented as a path holds.
_PATH = re.compile(r"^(?:/|\./|\.\./|~/|[A-Za-z]:[\\/])")



def _compile(patterns: Iterable[str], flags: int = re.I) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p, flags) for p in patterns]
    except re.error as error:
        raise TemplateError(f"bad regular expression: {error}") from None


def _either(patterns: Iterable[str], flags: int = re.I) -> Optional[re.Pattern[str]]:
    """One regex for a list of them: one search per value instead of one per pattern. Compiled
    once; only when that fails is each compiled alone, to name the one at fault."""
    patterns = list(patterns)
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), flags)
    except re.error as error:
        _compile(patterns, flags)  # raises for the pattern at fault
        raise TemplateError(f"regular expressions that cannot be combined: {error}") from None


class _Names:
    """Documented variable names, matched whole and case-insensitively; `NAME_*` is a prefix
    (Terraform's TF_TOKEN_<host>). A set and a few prefixes: one case-insensitive regex of the
    names the rules list took longer to compile than a pre-commit run takes to check its file."""

    def __init__(self, names: Iterable[str]) -> None:
        names = [n.upper() for n in names]
        self._exact = frozenset(n for n in names if not n.endswith("*"))
        self._prefixes = tuple(n[:-1] for n in names if n.endswith("*"))

    def match(self, name: str) -> bool:
        upper = name.upper()
        if upper in self._exact:
            return True
        for prefix in self._prefixes:
            if upper.startswith(prefix) and _WORD.fullmatch(upper, len(prefix)) is not None:
                return True
        return False


_WORD = re.compile(r"\w+")  # what follows a prefix: `\w+`, as `TF_TOKEN_app_terraform_io`


def _exact(names: Iterable[str]) -> Optional[_Names]:
    names = list(names)
    return _Names(names) if names else None


def is_env_reference(value: str) -> bool:
    """`$(VAR)`: the kubelet expands it from another variable, which is where a secret belongs."""
    return value.startswith("$(") and value.endswith(")")


class Detector(NamedTuple):
    """`classify(name, value)`: why the pair is a credential ("its value looks like a private key"),
    or None (the caller has already set aside empty values); `shape(text)`: the same for a text
    judged by its shape alone (no name)."""

    classify: Callable[[str, str], Optional[str]]
    shape: Callable[[str], Optional[str]]


def classifier(params: Mapping[str, Any]) -> Callable[[str, str], Optional[str]]:
    return detector(params).classify


def detector(params: Mapping[str, Any]) -> Detector:
    """The detection for these params. `secret-in-env` and `secret-in-configmap` list the same names
    and shapes: their regexes (a few ms to compile) are built once per process, not once per rule."""
    try:  # the key keeps the order of value-patterns: the first shape found names the value
        key = json.dumps([[name, params[name]] for name in DETECTION_PARAMS if name in params])
    except (TypeError, ValueError):
        return _detector(params)  # not JSON (a caller's own mapping): built, not shared
    return _shared_detector(key)


@functools.lru_cache(maxsize=16)
def _shared_detector(key: str) -> Detector:
    return _detector(dict(json.loads(key)))


def _detector(params: Mapping[str, Any]) -> Detector:
    names = _either(params.get("name-patterns", ()))
    ignored = _either(params.get("ignore-name-patterns", ()))
    labels = list(params.get("value-patterns", {}).items())
    # One search per shape, in the listed order (the first shape found names the value): most
    # shapes start with a literal (`AKIA`, `-----BEGIN`, `eyJ`) that the regex engine skips to, so
    # separate searches cost a third of one search for their alternation, which tries every
    # alternative at every character.
    shapes = [(f"its value looks like {label}", pattern)
              for (label, _), pattern in zip(labels, _compile((regex for _, regex in labels), 0))]
    credentials = _exact(params.get("credential-names", {}))
    paths = _exact(params.get("path-names", {}))

    def shape(value: str) -> Optional[str]:
        for why, pattern in shapes:
            if pattern.search(value) is not None:
                return why
        return None

    def classify(name: str, value: str) -> Optional[str]:
        if is_env_reference(value.strip()):
            return None
        # 1. the value's shape: a key or token is one whatever the variable is called
        why = shape(value)
        if why is not None:
            return why
        # 2. a name a client documents as holding the credential itself: any literal is one, even
        # "123456" or "/etc/x" (a password that looks like a number or a path is still a password)
        if credentials is not None and credentials.match(name):
            return "its name is a documented credential variable"
        # 3. a name documented as a path to a credential file, holding a path: a reference, not a secret
        if paths is not None and paths.match(name) and _PATH.match(value.strip()):
            return None
        # 4. a name that says "secret", unless it describes one (PASSWORD_MIN_LENGTH, TOKEN_TTL)
        if _NOT_SECRET.match(value.strip()):
            return None
        if names is not None and names.search(name) and not (ignored is not None and ignored.search(name)):
            return "its name suggests a secret"
        return None

    return Detector(classify, shape)
