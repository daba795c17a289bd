"""Baselines: an earlier JSON report. Findings whose fingerprint it holds are known, not new.

A fingerprint names one fact (kaudit/fingerprint.py), never the line or the file, so a baseline
survives edits that move lines and changes that reorder or rename files, and a new fact never
matches a known one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from kaudit.errors import KauditError
from kaudit.fingerprint import FINGERPRINT_VERSION
from kaudit.model import BaselineSummary, Finding, Resource, Suppression
from kaudit.value import field, replace, value

# Where a baseline fact was: its file (None on a cluster) and its object (kind, namespace, name).
Place = tuple[Optional[str], tuple[str, str, str]]


@value
class Baseline:
    """An earlier report's finding fingerprints: findings in it do not fail the gate."""

    source: str
    generated_at: str
    fingerprints: frozenset[str]
    # fingerprint -> where it was, so that "fixed" counts only facts this scan could have seen again
    places: Mapping[str, Place] = field(default_factory=dict, compare=False)


def load_baseline(path: str) -> Baseline:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KauditError(f"{path}: baseline not found (create one with `kaudit baseline create`)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KauditError(f"{path}: cannot read baseline: {error}") from None
    except json.JSONDecodeError as error:
        raise KauditError(f"{path}:{error.lineno}: baseline is not valid JSON: {error.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list) or "schemaVersion" not in data:
        raise KauditError(f"{path}: not a kaudit JSON report (no schemaVersion / findings)")
    if str(data["schemaVersion"]).split(".")[0] != "1":
        raise KauditError(f"{path}: baseline schemaVersion {data['schemaVersion']} is not supported (need 1.x)")
    if data.get("fingerprintVersion") != FINGERPRINT_VERSION:
        # Older fingerprints could name several facts at once: matching on them could hide a new finding.
        raise KauditError(f"{path}: baseline written by an older kaudit (fingerprints v{data.get('fingerprintVersion', 1)}, "
                          f"this kaudit uses v{FINGERPRINT_VERSION}): recreate it with `kaudit baseline create`")
    places = {str(entry["fingerprint"]): _place(entry) for f in data["findings"] if isinstance(f, dict)
              for entry in [f, *(j for j in f.get("joined") or () if isinstance(j, dict))]
              if entry.get("fingerprint")}
    return Baseline(path, str(data.get("generatedAt", "?")), frozenset(places), places)


def _place(entry: Mapping[str, Any]) -> Place:
    location, resource = entry.get("location"), entry.get("resource")
    file = location.get("file") if isinstance(location, dict) else None
    if not isinstance(resource, dict):
        return (file if isinstance(file, str) else None), ("", "", "")
    return ((file if isinstance(file, str) else None),
            (str(resource.get("kind") or ""), str(resource.get("namespace") or ""), str(resource.get("name") or "")))


def apply_baseline(findings: Sequence[Finding], baseline: Baseline) -> list[Finding]:
    """Known findings become suppressed by the baseline; new ones stay active. A finding with others
    joined to it (kaudit/relations.py) is known only when every fact in it is: a new fact joined to
    a known one must not hide."""
    reason = f"in baseline {baseline.source} ({baseline.generated_at})"
    known = baseline.fingerprints
    return [replace(f, suppressed=Suppression("baseline", reason))
            if f.suppressed is None and f.fingerprint in known and all(j.fingerprint in known for j in f.joined)
            else f for f in findings]


def compare(findings: Sequence[Finding], baseline: Baseline,
            scanned: Optional[Iterable[Resource]] = None) -> BaselineSummary:
    """New / unchanged / fixed for `findings` after apply_baseline. A fact of the baseline is fixed
    when no finding reports it any more (active or suppressed, as its own or a joined rule) and this
    scan read its object or its file: a fact on an object the scan never saw (a subset of the tree
    scanned, a namespace left out, an object deleted) is counted apart, `unseen`, not called fixed.
    Without `scanned`, every missing fact counts as fixed."""
    unchanged = sum(1 for f in findings if f.suppressed is not None and f.suppressed.by == "baseline")
    new = sum(1 for f in findings if f.suppressed is None)
    seen = {f.fingerprint for f in findings} | {j.fingerprint for f in findings for j in f.joined}
    gone = baseline.fingerprints - seen
    if scanned is None:
        return BaselineSummary(baseline.source, baseline.generated_at, new, unchanged, len(gone))
    files: set[Optional[str]] = set()
    objects: set[tuple[str, str, str]] = set()
    for resource in scanned:
        files.add(resource.origin.file)
        objects.add((resource.kind, resource.namespace or "", resource.ref.name))
    files.discard(None)
    unseen = 0
    for fingerprint in gone:
        file, obj = baseline.places.get(fingerprint, (None, ("", "", "")))
        if obj not in objects and file not in files:
            unseen += 1
    return BaselineSummary(baseline.source, baseline.generated_at, new, unchanged, len(gone) - unseen, unseen)
