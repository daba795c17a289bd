"""SARIF 2.1.0 for GitHub code scanning: rule help, regions, partialFingerprints, suppressions.

GitHub reads `properties.security-severity` on each rule (a number as a string) to rank alerts, and
`properties.tags` (with "security") to file them as security alerts. Locations are URIs relative to
`%SRCROOT%`, the repository root, so scan from there with relative paths, as CI does.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePath
from typing import Any, Optional, TextIO
from urllib.parse import quote

from kaudit.model import Finding, InputError, Location, Report, RuleInfo, Severity
from kaudit.model import STDIN_NAME
from kaudit.writers.summary import summary

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "kaudit/v1"

LEVELS = {
    Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
    Severity.LOW: "note", Severity.INFO: "note",
}
# GitHub maps these scores to its own labels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, below low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0", Severity.INFO: "1.0",
}
_LINK_SHAPED = re.compile(r"\[[^\]]*\]\(")


def write(report: Report, stream: TextIO) -> None:
    isatty = getattr(stream, "isatty", None)
    indent = 2 if isatty is not None and isatty() else None
    stream.write(json.dumps(to_dict(report), indent=indent, ensure_ascii=False))
    stream.write("\n")


def to_dict(report: Report) -> dict[str, Any]:
    rule_index = {info.id: index for index, info in enumerate(report.rules)}
    uris = _Uris(os.getcwd())
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "kaudit",
            "version": report.tool_version,
            "semanticVersion": report.tool_version,
            "rules": [_rule(info) for info in report.rules],
        }},
        "invocations": [_invocation(report, uris)],
        "columnKind": "unicodeCodePoints",  # manifest columns count characters, not UTF-16 units
        "results": [_result(finding, rule_index, uris) for finding in report.findings],
        "properties": {"kaudit": _summary(report)},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


# -- rules ---------------------------------------------------------------------------------------

def _rule(info: RuleInfo) -> dict[str, Any]:
    docs = info.docs
    what = docs.get("what", "").strip() or info.title
    descriptor: dict[str, Any] = {
        "id": info.id,
        "name": camel_case(info.id),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": what},
        "defaultConfiguration": {"level": LEVELS[info.severity]},
        "help": {"text": _help_text(info), "markdown": _help_markdown(info)},
        "properties": {
            "tags": _tags(info),
            "security-severity": SECURITY_SEVERITY[info.severity],
            "severity": info.severity.label,
        },
    }
    help_uri = next((ref for ref in info.references if ref.startswith(("https://", "http://"))), None)
    if help_uri is not None:
        descriptor["helpUri"] = help_uri
    return descriptor


def camel_case(rule_id: str) -> str:
    """`run-as-root` -> `RunAsRoot`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", rule_id) if part)


def _tags(info: RuleInfo) -> list[str]:
    tags = [info.category] if info.category else []
    tags += [f"{framework}-{control}" for framework, controls in sorted(info.frameworks.items())
             for control in controls]
    tags.append("security")
    return list(dict.fromkeys(tags))


def _fix(info: RuleInfo) -> str:
    return info.docs.get("fix", "") or info.remediation


def _help_text(info: RuleInfo) -> str:
    docs, parts = info.docs, [info.title]
    for label, text in (("What it flags", docs.get("what", "")), ("Why it matters", docs.get("why", ""))):
        if text.strip():
            parts.append(f"{label}: {text.strip()}")
    for label, text in (("Example (flagged)", docs.get("example", "")), ("Fix", _fix(info))):
        if text.strip():
            parts.append(f"{label}:\n" + "\n".join("    " + line for line in text.rstrip().splitlines()))
    if info.references:
        parts.append("References:\n" + "\n".join(f"- {ref}" for ref in info.references))
    return "\n\n".join(parts) + "\n"


def _help_markdown(info: RuleInfo) -> str:
    docs, parts = info.docs, [f"**{info.title}**"]
    for label, text in (("What it flags", docs.get("what", "")), ("Why it matters", docs.get("why", ""))):
        if text.strip():
            parts.append(f"**{label}.** {text.strip()}")
    for label, text in (("Example (flagged)", docs.get("example", "")), ("Fix", _fix(info))):
        if text.strip():
            parts.append(f"**{label}**\n\n{yaml_block(text)}")
    if info.references:
        parts.append("**References**\n\n" + "\n".join(f"- <{ref}>" if ref.startswith(("https://", "http://"))
                                                       else f"- {ref}" for ref in info.references))
    return "\n\n".join(parts) + "\n"


def yaml_block(text: str) -> str:
    """A fenced block longer than any backtick run inside, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}yaml\n{text.rstrip()}\n{fence}"


# -- results -------------------------------------------------------------------------------------

def _result(finding: Finding, rule_index: dict[str, int], uris: "_Uris") -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.rule}
    index = rule_index.get(finding.rule)
    if index is not None:
        result["ruleIndex"] = index
    result["level"] = LEVELS[finding.severity]
    result["message"] = {"text": plain_text(finding.message)}
    ref = finding.resource
    location: dict[str, Any] = {}
    physical = _physical(finding.location, uris)
    if physical is not None:
        location["physicalLocation"] = physical
    location["logicalLocations"] = [{"name": ref.name, "fullyQualifiedName": ref.describe(), "kind": "resource"}]
    result["locations"] = [location]
    result["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
    properties: dict[str, Any] = {"severity": finding.severity.label, "path": finding.path_text,
                                  "apiVersion": ref.api_version}
    if finding.container is not None:
        properties["container"] = finding.container
    result["properties"] = properties
    if finding.suppressed is not None:
        kind = "inSource" if finding.suppressed.by == "annotation" else "external"
        result["suppressions"] = [{"kind": kind, "justification": finding.suppressed.reason,
                                   "properties": {"by": finding.suppressed.by}}]
    return result


def plain_text(text: str) -> str:
    """SARIF reads `[text](n)` in a message as a link to location n: escape brackets that look like one."""
    if _LINK_SHAPED.search(text):
        return text.replace("[", "\\[").replace("]", "\\]")
    return text


def _physical(location: Location, uris: "_Uris") -> Optional[dict[str, Any]]:
    if location.file is None:
        return None  # a live cluster object: only the logical location names it
    physical: dict[str, Any] = {"artifactLocation": uris.artifact(location.file)}
    if location.line is not None:
        region: dict[str, Any] = {"startLine": location.line}
        if location.column is not None:
            region["startColumn"] = location.column
        physical["region"] = region
    return physical


class _Uris:
    """File names as SARIF artifact locations: repository-relative where possible (GitHub needs that)."""

    def __init__(self, cwd: str) -> None:
        self.cwd = Path(cwd)
        self.cache: dict[str, dict[str, str]] = {}

    def artifact(self, file: str) -> dict[str, str]:
        known = self.cache.get(file)
        if known is None:
            known = self.cache[file] = self._artifact(file)
        return dict(known)

    def _artifact(self, file: str) -> dict[str, str]:
        if file == STDIN_NAME:
            return {"uri": "stdin"}
        path = PurePath(file)
        if path.is_absolute() or ".." in path.parts:
            absolute = Path(os.path.abspath(file))
            try:
                path = absolute.relative_to(self.cwd)
            except ValueError:
                return {"uri": absolute.as_uri()}  # outside the working directory: no base to resolve against
        relative = PurePath(os.path.normpath(path)).as_posix()
        return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}


# -- invocation and summary ----------------------------------------------------------------------

def _invocation(report: Report, uris: _Uris) -> dict[str, Any]:
    notifications = [_notification(error, "error", uris) for error in report.inputs.errors]
    notifications += [{"level": "error", "message": {"text": message}} for message in report.rule_errors]
    notifications += [_notification(warning, "warning", uris) for warning in report.inputs.warnings]
    invocation: dict[str, Any] = {"executionSuccessful": report.complete}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _notification(error: InputError, level: str, uris: _Uris) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": uris.artifact(error.file)}
    if error.line is not None:
        physical["region"] = {"startLine": error.line}
    return {"level": level, "message": {"text": error.message}, "locations": [{"physicalLocation": physical}]}


def _summary(report: Report) -> dict[str, Any]:
    inputs = report.inputs
    return {
        **summary(report),
        "inputs": {"files": inputs.files, "documents": inputs.documents, "resources": inputs.resources,
                   "skipped": len(inputs.skipped), "errors": len(inputs.errors)},
        "frameworks": {result.id: {"pass": result.count("pass"), "fail": result.count("fail"),
                                   "notEvaluated": result.count("not-evaluated"),
                                   "notCovered": result.count("not-covered")} for result in report.frameworks},
    }
