"""The JSON report: the published contract, validated by reports/report.schema.json."""
from __future__ import annotations

from typing import Any, Optional, TextIO

from kaudit.fingerprint import FINGERPRINT_VERSION
from kaudit.model import BaselineSummary, Finding, FrameworkResult, Inputs, JoinedFinding, Location, PlatformSummary, Report, \
    RenderedLocation, ResourceRef, RuleInfo, format_path
from kaudit.writers.streaming import Streamed, write_document
from kaudit.writers.summary import summary

# 1.1: fingerprintVersion (fingerprints name one fact); 1.2: joined findings, rule relations;
# 1.3: platform (platform defaults counted, their findings left out unless --include-platform)
# 1.4: rendered charts and kustomizations (inputs.rendered, location.rendered)
# 1.5: rulesNotRun and rulesPartlyRun (rules loaded that did not judge everything), baseline (new /
#      unchanged / fixed against --baseline)
# 1.6: attackPaths (paths, choke points), findings' attackPath (steps with evidence)
SCHEMA_VERSION = "1.6"
TOP_CHOKE_POINTS = 10


def write(report: Report, stream: TextIO) -> None:
    # People reading a terminal get indentation; files and pipes compact JSON. Either way the findings
    # are encoded and written one at a time (writers/streaming.py): a 700,000-finding report never
    # exists whole in memory as dicts or as text.
    isatty = getattr(stream, "isatty", None)
    indent = 2 if isatty is not None and isatty() else None
    findings = Streamed(_finding(finding, {}) for finding in report.findings)
    document = to_dict(report, findings=False)
    document["findings"] = findings.placeholder
    # compact findings are joined by a bare "," (as this writer always has: a byte per finding)
    write_document(stream, document, findings, indent=indent, item_separator=",")
    stream.write("\n")


def to_dict(report: Report, findings: bool = True) -> dict[str, Any]:
    resources: dict[ResourceRef, dict[str, Any]] = {}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "kaudit", "version": report.tool_version},
        "fingerprintVersion": FINGERPRINT_VERSION,
        "generatedAt": report.generated_at,
        "scanned": _scanned(report),
        "summary": summary(report),
        "inputs": _inputs(report.inputs),
        "images": {
            "signaturesChecked": report.images.signatures_checked,
            "digestsResolved": report.images.digests_resolved,
            "checked": report.images.checked,
            "roundTrips": report.images.round_trips,
            "fromCache": report.images.from_cache,
            "gaps": [{"image": image, "message": why} for image, why in report.images.gaps],
            "resolved": [{"image": image, "digest": digest} for image, digest in report.images.resolved],
        },
        "platform": _platform(report.platform),
        "rules": [_rule(info) for info in report.rules],
        "frameworks": [_framework(result) for result in report.frameworks],
        "ruleErrors": list(report.rule_errors),
        "rulesNotRun": [{"rule": rule, "reason": why} for rule, why in report.rules_not_run],
        "rulesPartlyRun": [{"rule": rule, "reason": why} for rule, why in report.rules_partly_run],
        "baseline": _baseline(report.baseline),
        "attackPaths": _attack(report.attack),
        **({"findings": [_finding(f, resources) for f in report.findings]} if findings else {}),
    }


def _baseline(baseline: Optional[BaselineSummary]) -> Optional[dict[str, Any]]:
    if baseline is None:
        return None
    return {"source": baseline.source, "generatedAt": baseline.generated_at, "new": baseline.new,
            "unchanged": baseline.unchanged, "fixed": baseline.fixed, "unseen": baseline.unseen}


def _scanned(report: Report) -> dict[str, Any]:
    coverage = report.coverage
    if coverage is None:
        return {"source": "manifests", "targets": list(report.targets)}
    return {
        "source": "cluster",
        "targets": list(report.targets),
        "cluster": {
            "context": coverage.context,
            "server": coverage.server,
            "version": coverage.version,
            "requests": coverage.requests,
            "read": list(coverage.read),
            "gaps": [{"resource": g.resource, "kind": g.kind, "namespace": g.namespace, "reason": g.reason,
                      "message": g.message, "accepted": g.accepted} for g in coverage.gaps],
            "rulesNotEvaluated": [{"rule": rule, "why": why} for rule, why in coverage.rules_not_evaluated],
            "rulesPartiallyEvaluated": [{"rule": rule, "why": why} for rule, why in coverage.rules_partially_evaluated],
            "gapsAllowed": report.gaps_allowed,
        },
    }


def _platform(platform: PlatformSummary) -> dict[str, Any]:
    return {
        "objects": platform.objects,
        "bootstrapRbac": platform.bootstrap,
        "minors": list(platform.minors),
        "serverMinor": platform.server_minor,
        "modified": platform.modified,
        "findingsHidden": platform.findings_hidden,
        "findingsShown": platform.findings_shown,
        "included": platform.included,
    }


def _line_entry(file: str, line: Optional[int], **extra: Any) -> dict[str, Any]:
    return {"file": file, "line": line, **extra}


def _inputs(inputs: Inputs) -> dict[str, Any]:
    return {
        "files": inputs.files,
        "documents": inputs.documents,
        "resources": inputs.resources,
        "skipped": [_line_entry(s.file, s.line, reason=s.reason) for s in inputs.skipped],
        "errors": [_line_entry(e.file, e.line, message=e.message) for e in inputs.errors],
        "warnings": [_line_entry(w.file, w.line, message=w.message) for w in inputs.warnings],
        "perFile": inputs.per_file(),
        "rendered": [{"directory": r.directory, "kind": r.kind, "renderer": r.renderer, "options": list(r.options),
                      "documents": r.documents, "objects": r.objects, "error": r.error,
                      "milliseconds": r.milliseconds} for r in inputs.rendered],
        "workloads": [{"resource": {"apiVersion": w.resource.api_version, "kind": w.resource.kind,
                                    "namespace": w.resource.namespace, "name": w.resource.name},
                       "foundBy": w.found_by, "podSpecPaths": list(w.pod_spec_paths)} for w in inputs.workloads],
    }


def _finding(finding: Finding, resources: dict[ResourceRef, dict[str, Any]]) -> dict[str, Any]:
    """One finding; its rule's title, category, frameworks and remediation are in `rules`."""
    location = finding.location
    resource = _resource(finding.resource, resources)
    return {
        "rule": finding.rule,
        "severity": finding.severity.label,
        "message": finding.message,
        "resource": resource,
        "container": finding.container,
        "path": finding.path_text,
        "location": location_dict(location),
        "fingerprint": finding.fingerprint,
        "suppressed": None if finding.suppressed is None else vars(finding.suppressed),
        **({"joined": [_joined(j, resources) for j in finding.joined]} if finding.joined else {}),
        **({"attackPath": _attack_path(finding.attack_path)} if finding.attack_path is not None else {}),
    }


def _attack(attack: Any) -> Optional[dict[str, Any]]:
    if attack is None:
        return None
    from kaudit.attack.output import evidence_dict

    paths = attack.paths
    return {"paths": len(paths), "entryPoints": len({p.source for p in paths}),
            "chokePoints": [{"fix": c.edge.fix, "cuts": c.cuts, "kind": c.edge.kind,
                             "evidence": [evidence_dict(e) for e in c.edge.evidence]}
                            for c in attack.choke_points[:TOP_CHOKE_POINTS]],
            "assumptions": list(attack.analysis.graph.assumptions)}


def _attack_path(path: Any) -> dict[str, Any]:
    from kaudit.attack.output import edge_dict

    return {"source": path.source, "target": path.target, "steps": [edge_dict(step) for step in path.steps]}


def location_dict(location: Location) -> dict[str, Any]:
    where = {k: v for k, v in vars(location).items() if v is not None}
    if location.rendered is not None:
        where["rendered"] = rendered_dict(location.rendered)
    return where


def rendered_dict(rendered: RenderedLocation) -> dict[str, Any]:
    """A rendered finding's provenance (schema $defs/rendered)."""
    entry: dict[str, Any] = {"unit": rendered.unit, "renderer": rendered.renderer, "source": rendered.source,
                             "exact": rendered.exact}
    if rendered.rendered_line is not None:
        entry["renderedLine"] = rendered.rendered_line
    if rendered.values is not None:
        values = rendered.values
        entry["values"] = {"file": values.file, "line": values.line, "key": values.key,
                           **({"how": values.how} if values.how else {})}
    if rendered.values_note:
        entry["valuesNote"] = rendered.values_note
    if rendered.patch is not None:
        entry["patch"] = rendered.patch
    if rendered.how:
        entry["how"] = rendered.how
    return entry


def _resource(ref: ResourceRef, resources: dict[ResourceRef, dict[str, Any]]) -> dict[str, Any]:
    resource = resources.get(ref)
    if resource is None:
        resource = resources[ref] = {"apiVersion": ref.api_version, "kind": ref.kind, "namespace": ref.namespace,
                                     "name": ref.name}
    return resource


def _joined(joined: JoinedFinding, resources: dict[ResourceRef, dict[str, Any]]) -> dict[str, Any]:
    return {
        "rule": joined.rule,
        "severity": joined.severity.label,
        "message": joined.message,
        "resource": _resource(joined.resource, resources),
        "container": joined.container,
        "path": format_path(joined.path),
        "location": location_dict(joined.location),
        "fingerprint": joined.fingerprint,
        "relation": joined.relation,
    }


def _framework(result: FrameworkResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "pass": result.count("pass"),
        "fail": result.count("fail"),
        "notEvaluated": result.count("not-evaluated"),
        "notCovered": result.count("not-covered"),
        **({"versions": result.versions} if result.versions else {}),
        "controls": [
            {"id": c.id, "title": c.title, "status": c.status, "rules": list(c.rules), "findings": c.findings,
             **({"gap": c.gap} if c.gap else {})}
            for c in result.controls
        ],
    }


def _rule(info: RuleInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "severity": info.severity.label,
        "category": info.category,
        "frameworks": {name: list(controls) for name, controls in info.frameworks.items()},
        "remediation": info.remediation,
        "references": list(info.references),
        **({"relations": {key: list(ids) for key, ids in (("sameAs", info.same_as), ("implies", info.implies)) if ids}}
           if info.same_as or info.implies else {}),
    }
