"""JSON Schema validation errors as `file:line:column: path: message` lines a person can act on
(imports jsonschema).

Beyond jsonschema's own messages: each unknown key is reported at its own line with the nearest
known key ("did you mean view?"); an anyOf/oneOf failure names the reason of the branch the value
was meant for instead of "not valid under any of the given schemas"; and a value YAML 1.1 read as
a boolean, null or number where text was expected (`why: y`) is explained, with the fix.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import jsonschema
from jsonschema.exceptions import best_match

from kaudit.model import format_path
from kaudit.sources.yamldoc import Position, YamlMap, deepest_position

Issue = tuple[tuple[Any, ...], Optional[Position], str]  # path, (line, column) in the file, message

_JSON_TYPES: Mapping[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def schema_problems(
    schema: Mapping[str, Any],
    instance: Any,
    source: str,
    root: Optional[Any] = None,
    prefix: Sequence[Any] = (),
    text: Optional[str] = None,
) -> list[str]:
    """Validate `instance`; `root` and `prefix` place it inside a larger parsed document for lines,
    `text` (the file's text) lets a YAML 1.1 surprise be quoted as written."""
    return [format_issue(source, issue) for issue in schema_issues(schema, instance, root, prefix, text)]


def format_issue(source: str, issue: Issue) -> str:
    path, position, message = issue
    where = f"{source}:{position[0]}:{position[1]}" if position else source
    at = f" {format_path(path)}:" if path else ""
    return f"{where}:{at} {message}"


def schema_issues(
    schema: Mapping[str, Any],
    instance: Any,
    root: Optional[Any] = None,
    prefix: Sequence[Any] = (),
    text: Optional[str] = None,
) -> list[Issue]:
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    document = instance if root is None else root
    lines = text.splitlines() if text is not None else None
    issues: list[Issue] = []
    seen: set[tuple[tuple[Any, ...], str]] = set()
    for error in validator.iter_errors(instance):
        for relative, message, leaf in _explain(error, instance, schema):
            path = tuple(prefix) + relative
            if (path, message) in seen:
                continue
            seen.add((path, message))
            message = _yaml11_note(leaf, document, path, lines) or message
            issues.append((path, deepest_position(document, path), message))
    return sorted(issues, key=lambda issue: (issue[1] or (0, 0), list(map(str, issue[0]))))


def _explain(error: Any, instance: Any,
             root_schema: Mapping[str, Any]) -> Iterator[tuple[tuple[Any, ...], str, Any]]:
    """(path within the instance, message, the error it comes from) for one error; anyOf/oneOf
    are opened up to the branch the value was meant for."""
    path = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        for inner in _meant_branch(error):
            yield from _explain(inner, instance, root_schema)
        return
    template = _template_branch(error, instance)
    of_template = f" (template {template})" if template and path[:1] == ("params",) else ""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        for key in error.instance:
            if key in known or any(re.search(p, key) for p in patterns):
                continue
            yield path + (key,), f"unknown key {key!r}{of_template}" + _suggest(str(key), known, "known keys"), error
        return
    if error.validator == "enum" and path == ("template",):
        names = [str(v) for v in error.validator_value]
        yield path, (f"unknown template {error.instance!r}" + _suggest(str(error.instance), names, "templates")
                     + "; `kaudit rules new --help` lists them"), error
        return
    if template and path == ("target",) and error.validator == "enum":
        yield path, (f"template {template!r} does not support target {error.instance!r} "
                     f"(it supports: {', '.join(map(str, error.validator_value))})"), error
        return
    if template and error.validator == "required" and path == ():
        yield (("params",), f"template {template!r} needs params (required: {_required_params(error, root_schema)})",
               error)
        return
    if error.validator == "required" and isinstance(error.instance, dict):
        for key in error.validator_value:
            if key not in error.instance and f"{key!r} is a required" in error.message:
                yield path + (key,), error.message + (_REQUIRED_HINTS.get(key, "") if not path else ""), error
                return
    message = error.message
    if error.validator == "enum" and isinstance(error.instance, str):
        message += _suggest(error.instance, [v for v in error.validator_value if isinstance(v, str)], "")
    yield path, message + of_template, error


_REQUIRED_HINTS = {
    "tests": " (the rule's own fixtures: tests: {fail: [objects it must report], pass: [look-alikes it must not]};"
             " see docs/writing-rules.md)",
    "docs": " (docs: {what, why, example, fix})",
}


def _meant_branch(error: Any) -> list[Any]:
    """The errors of the anyOf/oneOf branch the value was meant for: the one branch whose `type`
    matches the value's, else jsonschema's best match."""
    branches: dict[int, list[Any]] = {}
    for inner in error.context or ():
        branches.setdefault(int(inner.relative_schema_path[0]), []).append(inner)
    options = error.validator_value if isinstance(error.validator_value, list) else []
    matching = [index for index, option in enumerate(options)
                if isinstance(option, dict) and "type" in option and _has_type(error.instance, option["type"])]
    if len(matching) == 1 and matching[0] in branches:
        return branches[matching[0]]
    best = best_match(error.context)
    return [best] if best is not None else []


def _has_type(instance: Any, names: Any) -> bool:
    for name in names if isinstance(names, list) else [names]:
        if name in ("number", "integer"):
            if isinstance(instance, (int, float)) and not isinstance(instance, bool):
                return True
        elif name in _JSON_TYPES and isinstance(instance, _JSON_TYPES[name]):
            if not (name != "boolean" and isinstance(instance, bool)):
                return True
    return False


def _template_branch(error: Any, instance: Any) -> Optional[str]:
    """The template whose if/then branch of the rule schema raised this error."""
    schema_path = list(error.absolute_schema_path)
    if schema_path[:1] != ["allOf"] or "then" not in schema_path[:3] or not isinstance(instance, dict):
        return None
    template = instance.get("template")
    return template if isinstance(template, str) else None


def _required_params(error: Any, root_schema: Mapping[str, Any]) -> str:
    reference = str(error.schema.get("properties", {}).get("params", {}).get("$ref", ""))
    definition = root_schema.get("$defs", {}).get(reference.rsplit("/", 1)[-1], {})
    return ", ".join(definition.get("required") or ()) or "see the template's params"


def _suggest(word: str, known: Iterable[str], what: str) -> str:
    """"; did you mean 'view'?", else the known words when they are few enough to read."""
    options = list(known)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if what and 0 < len(options) <= 30:
        return f" ({what}: {', '.join(options)})"
    return ""


# --- YAML 1.1 surprises: `why: y` is the boolean true ------------------------------------------

def _wants_text(error: Any) -> bool:
    if error.validator == "type":
        names = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "string" in names
    if error.validator in ("enum", "const"):
        values = error.validator_value if error.validator == "enum" else [error.validator_value]
        return isinstance(values, list) and any(isinstance(v, str) for v in values)
    return False


def _yaml11_note(error: Any, document: Any, path: tuple[Any, ...],
                 lines: Optional[list[str]]) -> Optional[str]:
    value = error.instance
    if not (value is None or isinstance(value, (bool, int, float))) or not _wants_text(error):
        return None
    if tuple(error.absolute_path) != path[len(path) - len(tuple(error.absolute_path)):]:
        return None
    raw = _raw_scalar(document, path, lines)
    if raw == "" and value is not None:
        raw = None  # written on a later line than its key
    if value is None:
        read_as = "null"
    elif isinstance(value, bool):
        read_as = f"the boolean {str(value).lower()}"
    else:
        read_as = f"the number {value}"
    if raw is None:
        return f"expected text, but the value was read as {read_as} (YAML 1.1); quote it"
    if raw == "":
        return "the value is empty, read as null; write the text (quoted if it could be read otherwise)"
    return f"{raw} was read as {read_as} (YAML 1.1); quote it: '{raw}'"


_PLAIN_END = re.compile(r"\s+#|[,\]}]|\s*$")


def _raw_scalar(document: Any, path: tuple[Any, ...], lines: Optional[list[str]]) -> Optional[str]:
    """The value at `path` as written on its line (a plain scalar), if it can be found there."""
    if lines is None or not path:
        return None
    parent = document
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return None
    position = deepest_position(document, path)
    if position is None or position[0] > len(lines):
        return None
    rest = lines[position[0] - 1][position[1] - 1:]
    if isinstance(parent, YamlMap):  # the position is the key's: skip `key:`
        key = re.match(r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#]*?)\s*:(?:\s|$)""", rest)
        if key is None:
            return None
        rest = rest[key.end():].lstrip()
    if rest.startswith(("'", '"', "|", ">", "&", "!", "*")):
        return None
    end = _PLAIN_END.search(rest)
    return rest[: end.start() if end else len(rest)].strip()
