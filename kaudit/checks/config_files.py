"""Config files embedded in ConfigMap values, read as (key, value) entries with bounded work.

A ConfigMap key named like a file (`application.properties`, `.env`, `app.json`, `values.yaml`,
`my.cnf`, `settings.ini`) is mounted as that file; its entries are judged like env variables. Work
per value is capped: at most MAX_PARSE_CHARS characters are parsed and MAX_ENTRIES entries read.
Nothing is evaluated: key=value text is split by lines, JSON by `json.loads`, YAML by kaudit's own
event-based reader (kaudit/sources/yamldoc.py: no tags constructed, aliases bounded). A value that
does not parse is "not structured" (None), never an error. binaryData is base64: decoded only up
to MAX_BINARY_CHARS, and only text (UTF-8 without NUL bytes) is read.
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any, Iterator, NamedTuple, Optional

MAX_PARSE_CHARS = 256 * 1024  # parse at most this much of one value (a ConfigMap holds at most 1 MiB)
MAX_ENTRIES = 2000  # entries read from one value
MAX_BINARY_CHARS = 1_400_000  # base64 text of 1 MiB (the ConfigMap size limit), with line breaks
MAX_DEPTH = 64  # JSON/YAML nesting walked

# file suffix -> how it is read
FORMATS = {
    ".properties": "key-value", ".env": "key-value", ".conf": "key-value", ".cnf": "key-value",
    ".ini": "key-value", ".cfg": "key-value", ".toml": "key-value",
    ".json": "json", ".yaml": "yaml", ".yml": "yaml",
}



@cache
def _line_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(key-value line, section header), compiled on first use (checks are imported on the hook path):
    `key = value`, `key: value`, `export KEY=value`, `key value` (redis.conf, Java properties); `[section]`."""
    return (re.compile(r"^\s*(?:export\s+)?([^\s=:#;!\[][^\s=:]*)\s*(?:[=:]|\s)\s*(.*?)\s*$"),
            re.compile(r"^\s*\[+\s*([^\]]{1,200}?)\s*\]+\s*$"))


class Entry(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass on the hook path
    """One key inside a file: `path` is where it is (`spring.datasource.password`, `db.users[0].token`),
    `name` the key judged like an env variable's name (the leaf key of JSON/YAML)."""

    path: str
    name: str
    value: str


def file_format(key: str) -> Optional[str]:
    """How a ConfigMap key's value is read, by the file name the key gives it (None: a plain value)."""
    lowered = key.lower()
    dot = lowered.rfind(".")
    return FORMATS.get(lowered[dot:]) if dot >= 0 else None  # `.env` itself is all suffix


def entries(kind: str, text: str) -> Optional[list[Entry]]:
    """The entries of an embedded file, or None when it is not structured (parse error, too large)."""
    if len(text) > MAX_PARSE_CHARS:
        return None
    if kind == "key-value":
        return list(_key_values(text))
    data = _json(text) if kind == "json" else _yaml(text)
    if data is None:
        return None
    return list(_walk(data))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if value and value[0] not in "\"'":
        value = re.split(r"\s[#;]", value, maxsplit=1)[0].rstrip()  # an inline comment after a bare value
    return value


def _key_values(text: str) -> Iterator[Entry]:
    key_value, section_header = _line_patterns()
    section = ""
    count = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;!":
            continue
        header = section_header.match(stripped)
        if header:
            section = header.group(1).strip("\"'")
            continue
        match = key_value.match(line)
        if match is None:
            continue
        key, value = match.group(1), _unquote(match.group(2))
        yield Entry(f"{section}.{key}" if section else key, key, value)
        count += 1
        if count >= MAX_ENTRIES:
            return


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _yaml(text: str) -> Any:
    from kaudit.sources.yamldoc import Document, parse_documents

    try:
        documents = [d.data for d in parse_documents(text) if isinstance(d, Document)]
    except (ValueError, RecursionError):  # the reader reports problems as items; this is belt and braces
        return None
    if not documents:
        return None
    return documents[0] if len(documents) == 1 else documents


def _walk(data: Any) -> Iterator[Entry]:
    """Scalar leaves with their path and nearest mapping key, depth-first, at most MAX_ENTRIES."""
    stack: list[tuple[Any, str, str, int]] = [(data, "", "", 0)]
    seen = 0
    while stack:
        node, path, name, depth = stack.pop()
        seen += 1
        if seen > MAX_ENTRIES * 2:
            return  # nodes visited, leaves or not: an alias-shared tree can look small and walk big
        if isinstance(node, dict):
            if depth < MAX_DEPTH:
                for key, child in reversed(list(node.items())[:MAX_ENTRIES]):
                    key_text = str(key)
                    stack.append((child, f"{path}.{key_text}" if path else key_text, key_text, depth + 1))
        elif isinstance(node, list):
            if depth < MAX_DEPTH:
                for index in range(min(len(node), MAX_ENTRIES) - 1, -1, -1):
                    stack.append((node[index], f"{path}[{index}]", name, depth + 1))
        elif node is None or isinstance(node, bool) or not name:
            continue  # a boolean or null is no credential; a scalar with no key has no name to judge
        else:
            yield Entry(path, name, str(node))


def decode_binary(value: Any) -> Optional[str]:
    """The text of a binaryData value, or None: not base64, too large, or not text."""
    if not isinstance(value, str) or len(value) > MAX_BINARY_CHARS:
        return None
    import base64
    import binascii

    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
