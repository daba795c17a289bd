"""Suppression: annotations on the object (or its pod template) and exclusions from the config.

Suppressed findings are kept, marked with who suppressed them and why, in every report; they never
fail the gate. An auditor can forbid annotation exemptions in the config, so workload owners cannot
overrule the audit: the annotations are then ignored and each ignored one is reported as a warning.
"""
from __future__ import annotations

import fnmatch
import functools
import os
from typing import Any, Iterable, Mapping, Optional, Sequence

from kaudit.model import Finding, InputError, Resource, ResourceRef, Suppression
from kaudit.value import replace, value
from kaudit.workloads import mapping, pod_specs

IGNORE = "kaudit.io/ignore"
IGNORE_REASON = "kaudit.io/ignore-reason"
ALL_RULES = ("*", "all")

_Declared = tuple[ResourceRef, Optional[str], Optional[tuple[int, int]]]  # an object's declaration: identity, file, place


@value
class Exclusion:
    """A config `exclude` entry: every given criterion must match; within one, any pattern may."""

    namespaces: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    reason: str = ""
    base: str = ""  # the config file's directory: `paths` are relative to it (empty: the working directory)

    @classmethod
    def parse(cls, entry: Mapping[str, Any], base: str = "") -> "Exclusion":
        def patterns(key: str) -> tuple[str, ...]:
            return tuple(str(p) for p in entry.get(key) or ())

        return cls(patterns("namespaces"), patterns("kinds"), patterns("names"), patterns("paths"), patterns("rules"),
                   str(entry.get("reason") or "excluded by the config"), base)

    def matches(self, finding: Finding) -> bool:
        ref = finding.resource
        checks = (
            (self.namespaces, ref.namespace or ""),
            (self.kinds, ref.kind),
            (self.names, ref.name),
            (self.rules, finding.rule),
        )
        if not all(not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns) for patterns, value in checks):
            return False
        if not self.paths:
            return True
        base = self.base or os.getcwd()
        candidates = _path_forms(finding.location.file or "", base)
        rendered = finding.location.rendered
        if rendered is not None:  # a rendered object is also under its chart or overlay, and its own file
            candidates += _path_forms(rendered.unit, base)
            candidates += tuple(form + "/" for form in _path_forms(rendered.unit, base))
            candidates += _path_forms(rendered.source or "", base)
        return any(fnmatch.fnmatchcase(value, p) for p in self.paths for value in candidates)


@functools.lru_cache(maxsize=8192)
def _path_forms(file: str, base: str) -> tuple[str, ...]:
    """A finding's file as `exclude.paths` patterns see it: relative to the config's directory, however
    it was spelt on the command line or wherever kaudit ran (and absolute, for absolute patterns)."""
    if not file or file.startswith("<"):  # <stdin>: no path to resolve
        return (file,)
    absolute = os.path.realpath(file)
    relative = os.path.relpath(absolute, os.path.realpath(base))
    forms = [absolute.replace(os.sep, "/")]
    if not relative.startswith(".."):
        forms.insert(0, relative.replace(os.sep, "/"))
    return tuple(forms)


def _annotations(resource: Resource) -> list[tuple[Mapping[str, Any], tuple[str | int, ...]]]:
    """The object's annotations and, for workloads, its pod template's (either may exempt)."""
    found: list[tuple[Mapping[str, Any], tuple[str | int, ...]]] = [
        (mapping(mapping(resource.body.get("metadata")).get("annotations")), ("metadata", "annotations"))]
    for pod in pod_specs(resource.body):
        if pod.metadata_path != ("metadata",):
            found.append((mapping(pod.metadata.get("annotations")), pod.metadata_path + ("annotations",)))
    return found


def _exemptions(resource: Resource) -> tuple[dict[str, str], list[tuple[str, tuple[str | int, ...]]]]:
    """rule id (or '*') -> reason, and where each annotation sits (for warnings)."""
    rules: dict[str, str] = {}
    places = []
    for annotations, path in _annotations(resource):
        value = annotations.get(IGNORE)
        if not isinstance(value, str) or not value.strip():
            continue
        reason = str(annotations.get(IGNORE_REASON) or "").strip() or f"{IGNORE} annotation (no reason given)"
        for rule_id in (part.strip() for part in value.split(",")):
            if rule_id:
                rules[rule_id] = reason
        places.append((value, path))
    return rules, places


def apply(findings: Sequence[Finding], resources: Iterable[Resource], exclusions: Sequence[Exclusion],
          annotations_allowed: bool, known_rules: Iterable[str]) -> tuple[list[Finding], list[InputError]]:
    """Mark suppressed findings; return them with warnings (ignored or unknown annotations)."""
    # keyed by identity, file and declaration: the same object in staging/ and prod/ copies, or
    # pasted twice into one file, is two objects, each exempted by its own annotations only
    by_ref: dict[_Declared, Resource] = {}
    for resource in resources:
        by_ref.setdefault((resource.ref, resource.origin.file, resource.origin.declaration), resource)
    known = set(known_rules)
    warnings: list[InputError] = []
    exemptions: dict[_Declared, dict[str, str]] = {}
    for (ref, _file, _declaration), resource in by_ref.items():
        rules, places = _exemptions(resource)
        if not places:
            continue
        file, line = resource.origin.file or ref.describe(), resource.origin.line
        if not annotations_allowed:
            warnings.append(InputError(file, line, f"{ref.describe()}: {IGNORE} is ignored: the config forbids "
                                                   "annotation exemptions (disallow-annotation-exemptions)"))
            continue
        unknown = sorted(r for r in rules if r not in known and r not in ALL_RULES)
        if unknown:
            warnings.append(InputError(file, line, f"{ref.describe()}: {IGNORE} names unknown rule(s): "
                                                   f"{', '.join(unknown)}"))
        exemptions[(ref, resource.origin.file, resource.origin.declaration)] = rules
    if not exemptions and not exclusions:
        return list(findings), warnings  # nothing to suppress: no per-finding lookups
    result = []
    for finding in findings:
        declared = (finding.resource, finding.location.file, finding.declaration)
        suppression = _suppression(finding, exemptions.get(declared), exclusions)
        result.append(finding if suppression is None else replace(finding, suppressed=suppression))
    return result, warnings


def _suppression(finding: Finding, exempt: Optional[Mapping[str, str]],
                 exclusions: Sequence[Exclusion]) -> Optional[Suppression]:
    if exempt:
        reason = exempt.get(finding.rule) or next((exempt[a] for a in ALL_RULES if a in exempt), None)
        if reason is not None:
            return Suppression("annotation", reason)
    for exclusion in exclusions:
        if exclusion.matches(finding):
            return Suppression("config", exclusion.reason)
    return None
