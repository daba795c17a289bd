"""`configmap-secret-literal`: credentials in ConfigMap data, binaryData and the config files they
embed, judged by the same names and value shapes as `secret-in-env` (kaudit/checks/credentials.py).
Findings name the key and why, never the value."""
from __future__ import annotations

import re
from functools import cache
from typing import Any, Iterable, Mapping, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.checks.config_files import decode_binary, entries, file_format
from kaudit.checks.credentials import PARAMS_PROPERTIES, Detector, detector
from kaudit.workloads import mapping

PARAMS_SCHEMA = {"type": "object", "additionalProperties": False, "properties": dict(PARAMS_PROPERTIES)}

MAX_SHAPE_CHARS = 1024 * 1024  # value shapes are searched in at most this much of one value
MAX_SHOWN = 120  # characters of a key shown in a message

# References a config file resolves from elsewhere, rewritten to the `$(VAR)` form the shared
# detection already treats as "not a literal": `${VAR}` (shells, envsubst, Spring, Compose; a
# `${VAR:default}` default is not judged) and `{{ … }}` (Helm/Go templates left unrendered).
_REFERENCE = r"\$\{[^{}\s]{1,256}\}|\{\{[^{}]{0,256}\}\}"


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(references, camelCase word breaks, runs of separators), compiled on first use: checks are
    imported on the hook path."""
    return re.compile(_REFERENCE), re.compile(r"(?<=[a-z0-9])(?=[A-Z])"), re.compile(r"[^A-Za-z0-9]+")


def env_name(key: str) -> str:
    """A ConfigMap or file key as an env variable name, so the env rule's name patterns apply:
    `spring.datasource.password` -> SPRING_DATASOURCE_PASSWORD, `clientSecret` -> CLIENT_SECRET."""
    _, word_break, separators = _patterns()
    return separators.sub("_", word_break.sub("_", key[:256])).strip("_").upper()


def _shown(key: str, detect: Detector) -> str:
    """A key for the message: shortened, and withheld if it has a credential's shape itself."""
    if detect.shape(key) is not None:
        return "(a key that looks like a credential)"
    return key if len(key) <= MAX_SHOWN else key[:MAX_SHOWN] + "…"


def judge_value(key: str, value: str, detect: Detector) -> list[tuple[str, str]]:
    """(where, why) for each credential in one ConfigMap value under `key`; `where` names the key
    inside an embedded file, or is empty for the value as a whole."""
    value = value[:MAX_SHAPE_CHARS]
    if "${" in value or "{{" in value:
        value = _patterns()[0].sub("$(REF)", value)
    if not value.strip():
        return []
    kind = file_format(key)
    if kind is None:  # a plain value: what envFrom makes an env variable of
        why = detect.classify(env_name(key), value)
        return [("", why)] if why else []
    found = []
    for entry in entries(kind, value) or ():
        if not entry.value.strip():
            continue
        why = detect.classify(env_name(entry.name), entry.value)
        if why:
            found.append((entry.path, why))
    if found:
        return found
    # not structured, or no entry reported: the text may still hold a key or a token somewhere
    # (a PEM block across lines, a token on a line of its own); the file's own name is not judged
    why = detect.shape(value)
    return [("", why)] if why else []


def _bind(params: Mapping[str, Any], target: str) -> Check:
    detect = detector(params)

    def check(subject: Target) -> Iterable[Hit]:
        hits = []
        for field in ("data", "binaryData"):
            for key, raw in mapping(subject.body.get(field)).items():
                if not isinstance(key, str):
                    continue
                value: Optional[str] = raw if field == "data" and isinstance(raw, str) else None
                if field == "binaryData":
                    value = decode_binary(raw)
                if value is None:
                    continue
                for where, why in judge_value(key, value, detect):
                    entry = f"{field} key {_shown(key, detect)}"
                    if where:
                        entry += f", entry {_shown(where, detect)} of the embedded file"
                    hits.append(Hit((field, key), {"entry": entry, "why": why}, fact=where))
        return hits

    return check


TEMPLATES = [
    Template(
        key="configmap-secret-literal",
        description="ConfigMap data, binaryData and embedded config files holding credentials.",
        targets=frozenset({"object"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
