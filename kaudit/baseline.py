"""Baselines: an earlier JSON report. Findings whose fingerprint it holds are known, not new.

A fingerprint names one fact (kaudit/fingerprint.py), never the line or the file, so a baseline
survives edits that move lines and changes that reorder or rename files, and a new fact never
matches a known one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from kaudit.errors import KauditError
from kaudit.fingerprint import FINGERPRINT_VERSION
from kaudit.model import BaselineSummary, Finding, Suppression
from kaudit.value import replace, value


@value
class Baseline:
    """An earlier report's finding fingerprints: findings in it do not fail the gate."""

    source: str
    generated_at: str
    fingerprints: frozenset[str]


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
    prints = frozenset(str(entry.get("fingerprint")) for f in data["findings"] if isinstance(f, dict)
                       for entry in [f, *(j for j in f.get("joined") or () if isinstance(j, dict))]
                       if entry.get("fingerprint"))
    return Baseline(path, str(data.get("generatedAt", "?")), prints)


def apply_baseline(findings: Sequence[Finding], baseline: Baseline) -> list[Finding]:
    """Known findings become suppressed by the baseline; new ones stay active. A finding with others
    joined to it (kaudit/relations.py) is known only when every fact in it is: a new fact joined to
    a known one must not hide."""
    reason = f"in baseline {baseline.source} ({baseline.generated_at})"
    known = baseline.fingerprints
    return [replace(f, suppressed=Suppression("baseline", reason))
            if f.suppressed is None and f.fingerprint in known and all(j.fingerprint in known for j in f.joined)
            else f for f in findings]


def compare(findings: Sequence[Finding], baseline: Baseline) -> BaselineSummary:
    """New / unchanged / fixed for `findings` after apply_baseline. A fact of the baseline counts as
    fixed when no finding reports it any more, active or suppressed, as its own or a joined rule."""
    unchanged = sum(1 for f in findings if f.suppressed is not None and f.suppressed.by == "baseline")
    new = sum(1 for f in findings if f.suppressed is None)
    seen = {f.fingerprint for f in findings} | {j.fingerprint for f in findings for j in f.joined}
    return BaselineSummary(baseline.source, baseline.generated_at, new, unchanged,
                           len(baseline.fingerprints - seen))
