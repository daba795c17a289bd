"""SARIF 2.1.0 for GitHub code scanning: rule help, regions, partialFingerprints, suppressions.

GitHub reads `properties.security-severity` on each rule (a number as a string) to rank alerts, and
`properties.tags` (with "security") to file them as security alerts. Every result has a physical
location (GitHub rejects the whole upload otherwise): a file relative to `SRCROOT`, the repository root,
or a per-object path for cluster and stdin objects (writers/sarif_locations.py). The file stays within
GitHub's documented limits (see MAX_RESULTS, MAX_TAGS).

An attack path finding carries its chain as a `codeFlow` (SARIF 2.1.0 §3.36-3.38), which GitHub shows
step by step under "Show paths": the entry point first, then one threadFlowLocation per step, each at
the field that makes the step true (`_code_flows`).
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from typing import Any, Iterator, Optional, TextIO

from kaudit.attack.model import AttackPath
from kaudit.model import Finding, InputError, JoinedFinding, Location, Report, RuleInfo, Severity, format_path
from kaudit.writers.attack_steps import entry_sentence, step_location, step_sentence
from kaudit.writers.sarif_locations import ArtifactUris
from kaudit.writers.json_report import rendered_dict
from kaudit.writers.streaming import Streamed, write_document
from kaudit.writers.summary import joined_text, summary

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "kaudit/v1"
# GitHub rejects a run of more than 25,000 results outright (and keeps the 5,000 most severe of a run it
# takes). Splitting into several runs is no way round it: GitHub refuses several runs of one tool and
# category in one upload. So the file holds the 25,000 results that matter most, says so in a
# notification and on stderr, and the json format keeps them all. The gate is decided on every finding.
MAX_RESULTS = 25_000
# GitHub shows 10 tags per rule and rejects more than 20: keep 10, "security" first so it is never cut.
MAX_TAGS = 10

LEVELS = {
    Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
    Severity.LOW: "note", Severity.INFO: "note",
}
# GitHub maps these scores to its own labels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low;
# info has no band of its own and reads as low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0", Severity.INFO: "1.0",
}
_LINK_SHAPED = re.compile(r"\[[^\]]*\]\(")


def write(report: Report, stream: TextIO, stderr: Optional[TextIO] = None) -> None:
    # The results are built, encoded and written one at a time (writers/streaming.py): at cluster
    # scale the whole log as dicts, then as one string, took more memory than the report itself.
    isatty = getattr(stream, "isatty", None)
    indent = 2 if isatty is not None and isatty() else None
    results = Streamed(())
    log = to_dict(report, results)
    write_document(stream, log, results, indent=indent)
    stream.write("\n")
    omitted = log["runs"][0]["properties"]["kaudit"].get("omittedResults")
    if omitted:
        print(f"kaudit: warning: {_omitted_text(len(report.findings))}", file=stderr or sys.stderr)


def to_dict(report: Report, streamed: Optional[Streamed] = None) -> dict[str, Any]:
    """The whole log; with `streamed`, its results are left to it (their place holds its placeholder)."""
    rule_index = {info.id: index for index, info in enumerate(report.rules)}
    uris = ArtifactUris(os.getcwd(), _files(report))
    findings = kept_findings(report.findings)
    omitted = len(report.findings) - len(findings)
    properties = _summary(report)
    if omitted:
        properties["omittedResults"] = omitted
    results = (_result(finding, rule_index, uris, report.attack) for finding in findings)
    if streamed is not None:
        streamed.items = results
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "kaudit",
            "version": report.tool_version,
            "semanticVersion": report.tool_version,
            "rules": [_rule(info, rule_index) for info in report.rules],
        }},
        "invocations": [_invocation(report, uris, omitted)],
        "originalUriBaseIds": uris.base_ids(),
        "columnKind": "unicodeCodePoints",  # manifest columns count characters, not UTF-16 units
        "results": streamed.placeholder if streamed is not None else list(results),
        "properties": {"kaudit": properties},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _files(report: Report) -> Iterator[str]:
    """The files the log names, findings first: they decide which repository is SRCROOT."""
    yield from (finding.location.file for finding in report.findings if finding.location.file is not None)
    yield from (error.file for error in (*report.inputs.errors, *report.inputs.warnings))


def kept_findings(findings: tuple[Finding, ...]) -> list[Finding]:
    """At most MAX_RESULTS findings, in report order: active before suppressed, then the most severe
    (the earliest of a rank that only partly fits). Counted by rank, not sorted: no key per finding."""
    if len(findings) <= MAX_RESULTS:
        return list(findings)
    counts = Counter(_rank(finding) for finding in findings)
    room, last_rank = MAX_RESULTS, (True, 0)
    for rank in sorted(counts):  # best first
        if counts[rank] >= room:
            last_rank = rank
            break
        room -= counts[rank]
    kept: list[Finding] = []
    for finding in findings:
        rank = _rank(finding)
        if rank < last_rank:
            kept.append(finding)
        elif rank == last_rank and room:
            kept.append(finding)
            room -= 1
    return kept


def _rank(finding: Finding) -> tuple[bool, int]:
    """Lower ranks are kept first: active before suppressed, then by severity."""
    return finding.suppressed is not None, -finding.severity


def _omitted_text(total: int) -> str:
    return (f"SARIF holds the {MAX_RESULTS} most severe of {total} results (GitHub code scanning rejects a run "
            f"of more than {MAX_RESULTS}); the json format has them all")


# -- rules ---------------------------------------------------------------------------------------

def _rule(info: RuleInfo, rule_index: Optional[dict[str, int]] = None) -> dict[str, Any]:
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
    relationships = _relationships(info, rule_index or {})
    if relationships:
        descriptor["relationships"] = relationships
    return descriptor


def _relationships(info: RuleInfo, rule_index: dict[str, int]) -> list[dict[str, Any]]:
    """The rule's declared relations to rules of this run (kaudit/relations.py): `same-as` is SARIF's
    `equal`; `implies` is `relevant`, described, as SARIF has no kind for a consequence."""
    relationships = []
    for kind, ids in (("equal", info.same_as), ("relevant", info.implies)):
        for rule_id in ids:
            if rule_id in rule_index:
                relationship: dict[str, Any] = {"target": {"id": rule_id, "index": rule_index[rule_id]},
                                                "kinds": [kind]}
                if kind == "relevant":
                    relationship["description"] = {
                        "text": f"A finding of {info.id} implies {rule_id}'s on the same container, subject or "
                                "field: it is reported within this rule's result."}
                relationships.append(relationship)
    return relationships


def camel_case(rule_id: str) -> str:
    """`run-as-root` -> `RunAsRoot`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", rule_id) if part)


def _tags(info: RuleInfo) -> list[str]:
    tags = ["security"] + ([info.category] if info.category else [])
    tags += [f"{framework}-{control}" for framework, controls in sorted(info.frameworks.items())
             for control in controls]
    return list(dict.fromkeys(tags))[:MAX_TAGS]


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

def _result(finding: Finding, rule_index: dict[str, int], uris: ArtifactUris, attack: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.rule}
    index = rule_index.get(finding.rule)
    if index is not None:
        result["ruleIndex"] = index
    result["level"] = LEVELS[finding.severity]
    result["message"] = {"text": plain_text(finding.message)}
    ref = finding.resource
    physical, stream = uris.physical(finding.location, ref)
    result["locations"] = [{
        "physicalLocation": physical,
        "logicalLocations": [{"name": ref.name, "fullyQualifiedName": ref.describe(), "kind": "resource"}],
    }]
    result["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
    if finding.attack_path is not None:
        result["codeFlows"] = _code_flows(finding, finding.attack_path, uris, attack)
    properties: dict[str, Any] = {"severity": finding.severity.label, "path": finding.path_text,
                                  "apiVersion": ref.api_version, **stream}
    if finding.container is not None:
        properties["container"] = finding.container
    rendered = finding.location.rendered
    related: list[dict[str, Any]] = []
    if rendered is not None:
        # the chart or kustomization behind the result; the values key or patch that set the field
        # is a related location, so code scanning links to it too
        properties["rendered"] = rendered_dict(rendered)
        source = _rendered_source(finding.location)
        if source is not None:
            file, line, text = source
            physical_source: dict[str, Any] = {"artifactLocation": uris.file(file)}
            if line is not None:
                physical_source["region"] = {"startLine": line}
            related.append({"id": len(related) + 1, "physicalLocation": physical_source, "message": {"text": text}})
            result["message"]["text"] += f" ({text})"
    if finding.joined:
        # Other rules' findings on this fact (kaudit/relations.py): their rules, messages and
        # fingerprints; those on other objects (a namespace's workloads) as related locations.
        properties["joinedRules"] = list(dict.fromkeys(joined.rule for joined in finding.joined))
        properties["joined"] = [{"rule": j.rule, "severity": j.severity.label, "message": j.message,
                                 "path": format_path(j.path), "relation": j.relation, "fingerprint": j.fingerprint}
                                for j in finding.joined]
        related += [_related_location(number, joined, uris) for number, joined in enumerate(
            (j for j in finding.joined if j.resource != finding.resource), start=len(related) + 1)]
        result["message"]["text"] += f" (also: {joined_text(finding)})"
    if related:
        result["relatedLocations"] = related
    result["properties"] = properties
    if finding.suppressed is not None:
        kind = "inSource" if finding.suppressed.by == "annotation" else "external"
        result["suppressions"] = [{"kind": kind, "justification": finding.suppressed.reason,
                                   "properties": {"by": finding.suppressed.by}}]
    return result


def _code_flows(finding: Finding, path: AttackPath, uris: ArtifactUris, attack: Any) -> list[dict[str, Any]]:
    """The path as one thread flow: the entry point (the finding's own place), then each step at its
    first evidence. `executionOrder` numbers them; `index` is left out, as it points into a
    run-level `threadFlowLocations` table this log does not keep. A step with no evidence (none
    is written anywhere) stays at the previous stop, so every stop has the physical location GitHub
    needs."""
    stops = [_flow_location(finding.location, finding.resource, entry_sentence(path, attack), 1, uris)]
    where, ref = finding.location, finding.resource
    for order, step in enumerate(path.steps, start=2):
        found = step_location(step)
        if found is not None:
            ref, where = found
        stop = _flow_location(where, ref, step_sentence(step, attack), order, uris)
        stop["properties"] = {"edge": step.kind, **({"fix": step.fix} if step.fix else {})}
        stops.append(stop)
    text = f"{len(path.steps)} step{'s' * (len(path.steps) != 1)} to {path.target.partition(':')[2] or path.target}"
    return [{"message": {"text": plain_text(text)}, "threadFlows": [{"locations": stops}]}]


def _flow_location(location: Location, ref: Any, text: str, order: int, uris: ArtifactUris) -> dict[str, Any]:
    physical, _ = uris.physical(location, ref)
    return {"location": {"physicalLocation": physical,
                         "logicalLocations": [{"name": ref.name, "fullyQualifiedName": ref.describe(), "kind": "resource"}],
                         "message": {"text": plain_text(text)}},
            "executionOrder": order}


def _rendered_source(location: Location) -> Optional[tuple[str, Optional[int], str]]:
    """(file, line, what) of the values key or patch that set a rendered field, if known (a finding
    a patch wrote is located at the patch itself)."""
    rendered = location.rendered
    assert rendered is not None
    if rendered.values is not None and rendered.values.file != "--helm-set":
        values = rendered.values
        return values.file, values.line, rendered.describe()
    if rendered.patch is not None and location.file is not None:
        return location.file, location.line, rendered.describe()
    return None


def _related_location(number: int, joined: JoinedFinding, uris: ArtifactUris) -> dict[str, Any]:
    ref = joined.resource
    physical, _ = uris.physical(joined.location, ref)
    return {"id": number, "physicalLocation": physical, "message": {"text": plain_text(f"{joined.rule}: {joined.message}")},
            "logicalLocations": [{"name": ref.name, "fullyQualifiedName": ref.describe(), "kind": "resource"}]}


def plain_text(text: str) -> str:
    """SARIF reads `[text](n)` in a message as a link to location n: escape brackets that look like one."""
    if _LINK_SHAPED.search(text):
        return text.replace("[", "\\[").replace("]", "\\]")
    return text


# -- invocation and summary ----------------------------------------------------------------------

def _invocation(report: Report, uris: ArtifactUris, omitted: int) -> dict[str, Any]:
    notifications = [_notification(error, "error", uris) for error in report.inputs.errors]
    notifications += [{"level": "error", "message": {"text": message}} for message in report.rule_errors]
    notifications += [_notification(warning, "warning", uris) for warning in report.inputs.warnings]
    if omitted:
        notifications.append({"level": "warning", "message": {"text": _omitted_text(len(report.findings))}})
    invocation: dict[str, Any] = {"executionSuccessful": report.complete}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def _notification(error: InputError, level: str, uris: ArtifactUris) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": uris.file(error.file)}
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
                                   "notCovered": result.count("not-covered"),
                                   **({"versions": result.versions} if result.versions else {})}
                       for result in report.frameworks},
    }
