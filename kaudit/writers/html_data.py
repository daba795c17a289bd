"""The HTML report's findings as one compact JSON document, which the page's script renders on demand.

80,000 findings written as markup made an 87 MB page that took Chromium minutes to load; as data they
are a few MB. Every repeated string (rule ids, files, field paths, resources, messages, provenance) is
written once in a string table and referred to by index; a message that names its resource is stored
as a template around the names (`container "app" of "web-7" runs as root` -> `container "`,
container, `" of "`, name, `" runs as root`), so the same sentence on a thousand objects is one entry.

Layout (arrays by position, to keep the file small; the page's script reads them by these indexes):
- `s`: strings; every other string-valued slot is an index into it (-1: none).
- `rules`: [id, title, severity, category] per rule referred to, own or joined.
- `res`: [kind, namespace, name, file, line] per resource; file and line of its first finding.
- `tpl`: message templates: string indexes, -1 (the resource's name), -2 (the container's) and -3
  (the resource's namespace) in order; joined they are the message.
- `f`: one finding each, in report order: [severity, rule, resource, file, line, column, field path,
  container, template, suppression, joined, provenance]; suppression is [by, reason] strings;
  joined is a list of [rule, severity, message template, relation (0 same-as, 1 implied), resource
  or -1 (the finding's own), its location (-1 on the finding's own), container]; provenance is [what set the field, rendered from].
  An attack path finding has a 13th slot: its path's index in `paths`.
- `docs`: rule index -> [what, why, example, fix, references, frameworks text] (strings, not indexes).
- `controls`: "framework:control" -> rule indexes, for the framework control filter.
- `paths`: [entry label, entry text, step indexes] per attack path finding: the chain the page draws.
- `steps`: [kind, from label, to label, why, fix, where ("file:line" or the cluster), finding]
  per distinct step, shared by the paths through it (interned like the strings); finding is the
  index in `f` of the finding on the step's evidence (same object and line: the privileged
  container behind an escape), -1 when the report has none.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from kaudit.model import Finding, Location, Report, ResourceRef, format_path
from kaudit.writers.attack_steps import entry_sentence, node_label
from kaudit.writers.summary import rendered_text

_MIN_TEMPLATED_NAME = 3  # a shorter name would cut messages at every "db" or "a"
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class _Interned:
    """A table of distinct values, each referred to by its position."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.values: list[Any] = []

    def __call__(self, item: Any) -> int:
        found = self.index.get(item)
        if found is None:
            found = self.index[item] = len(self.values)
            self.values.append(item)
        return found


def message_template(message: str, names: tuple[Optional[str], ...]) -> tuple[Any, ...]:
    """The message cut at each occurrence of the given names (the resource's, the container's, the
    namespace), each marked by -1 - its position: joined back, the parts give the message exactly,
    whatever it holds."""
    found = [(name, -1 - n) for n, name in enumerate(names)
             if name is not None and len(name) >= _MIN_TEMPLATED_NAME and name in message]
    if not found:
        return (message,)
    found.sort(key=lambda item: -len(item[0]))  # the longer first: "web" inside "web-api" stays in it
    parts: list[Any] = [message]
    for name, marker in found:
        cut: list[Any] = []
        for part in parts:
            if not isinstance(part, str) or name not in part:
                cut.append(part)
                continue
            for index, piece in enumerate(part.split(name)):
                if index:
                    cut.append(marker)
                if piece:
                    cut.append(piece)
        parts = cut
    return tuple(parts)


def provenance(finding: Finding) -> Optional[tuple[str, str]]:
    """Where a rendered finding came from, in two parts that repeat apart: what set the field
    ("values: web/values.yaml:6 image.tag", or "") and "rendered from web (web/templates/deployment.yaml)"."""
    rendered = finding.location.rendered
    if rendered is None:
        return None
    text = f"rendered from {rendered.unit}"
    if rendered.source and rendered.source != finding.location.file:
        text += f" ({rendered.source})"
    return rendered_text(finding.location), text


def report_data(report: Report) -> dict[str, Any]:
    strings = _Interned()
    rules = _Interned()
    resources = _Interned()
    templates = _Interned()
    info = {rule.id: rule for rule in report.rules}

    def string(text: Optional[str]) -> int:
        return -1 if text is None else strings(text)

    def rule(rule_id: str, finding: Finding) -> int:
        known = info.get(rule_id)
        if known is not None:
            return rules((strings(rule_id), strings(known.title), int(known.severity), strings(known.category)))
        if rule_id == finding.rule:  # a rule not listed (a report read back): the finding says its title
            return rules((strings(rule_id), strings(finding.title), int(finding.severity), strings(finding.category)))
        return rules((strings(rule_id), strings(rule_id), -1, -1))

    first_seen: dict[ResourceRef, int] = {}

    def resource(ref: ResourceRef, finding: Finding) -> int:
        found = first_seen.get(ref)
        if found is None:
            location = finding.location
            where = location.file if location.file is not None else location.describe()
            found = first_seen[ref] = resources((strings(ref.kind), string(ref.namespace), strings(ref.name),
                                                 strings(where), location.line or 0))
        return found

    def template(message: str, ref: ResourceRef, container: Optional[str]) -> int:
        return templates(tuple(strings(part) if isinstance(part, str) else part
                               for part in message_template(message, (ref.name, container, ref.namespace))))

    paths = _Interned()
    steps = _Interned()
    on_evidence = _findings_by_place(report.findings)

    def attack_path(path: Any) -> int:
        attack = report.attack
        indexes = []
        for step in path.steps:
            where, found = "", -1
            for evidence in step.evidence:
                location = evidence.location
                if not where:
                    where = _where(location)
                found = on_evidence.get((evidence.ref, format_path(evidence.path)), -1)
                if found >= 0:
                    break
            indexes.append(steps((strings(step.kind), strings(node_label(step.source, attack)),
                                  strings(node_label(step.target, attack)), strings(step.why), strings(step.fix),
                                  strings(where), found)))
        return paths((strings(node_label(path.source, attack)), strings(entry_sentence(path, attack)), tuple(indexes)))

    rows = []
    for finding in report.findings:
        location = finding.location
        ref = finding.resource
        joined = [[rule(j.rule, finding), int(j.severity), template(j.message, j.resource, j.container),
                   0 if j.relation == "same-as" else 1, -1 if j.resource == ref else resource(j.resource, finding),
                   -1 if j.resource == ref else strings(j.location.describe()), string(j.container)]
                  for j in finding.joined]
        suppressed = finding.suppressed
        came_from = provenance(finding)
        rows.append([
            int(finding.severity), rule(finding.rule, finding), resource(ref, finding),
            strings(location.file if location.file is not None else location.describe()),
            location.line or 0, location.column or 0, strings(finding.path_text), string(finding.container),
            template(finding.message, ref, finding.container),
            [strings(suppressed.by), strings(suppressed.reason)] if suppressed is not None else 0,
            joined or 0, [strings(came_from[0]), strings(came_from[1])] if came_from is not None else 0,
        ])
        if finding.attack_path is not None:
            rows[-1].append(attack_path(finding.attack_path))
    docs = {}
    for index, (rule_id, *_rest) in enumerate(rules.values):
        known = info.get(strings.values[rule_id])
        if known is None:
            continue
        fix = known.docs.get("fix") or known.remediation
        frameworks = "; ".join(f"{name} {', '.join(controls)}" for name, controls in sorted(known.frameworks.items()))
        docs[index] = [known.docs.get("what", ""), known.docs.get("why", ""), known.docs.get("example", ""), fix,
                       list(known.references), frameworks]
    controls = {}
    for framework in report.frameworks:
        for control in framework.controls:
            ids = [rules.index[key] for key in rules.values if strings.values[key[0]] in control.rules]
            controls[f"{framework.id}:{control.id}"] = ids
    return {
        "v": 1, "s": strings.values, "rules": [list(r) for r in rules.values],
        "res": [list(r) for r in resources.values],
        "tpl": [list(t) for t in templates.values], "f": rows, "docs": docs, "controls": controls,
        "paths": [[entry, text, list(indexes)] for entry, text, indexes in paths.values],
        "steps": [list(step) for step in steps.values],
    }


def _where(location: Location) -> str:
    if location.file is None:
        return location.describe()
    return location.file if location.line is None else f"{location.file}:{location.line}"


def _findings_by_place(findings: tuple[Finding, ...]) -> dict[tuple[ResourceRef, str], int]:
    """The finding to link a step to, by the object and field path of the step's evidence: the same
    fact, not only the same line (a line also holds the parent that a missing field is reported at).
    An active finding before a suppressed one, its own before one joined into it, then the most
    severe; never another attack path (the chain already leads on from there)."""
    best: dict[tuple[ResourceRef, str], tuple[tuple[bool, bool, int, int], int]] = {}

    def offer(place: tuple[ResourceRef, str], rank: tuple[bool, bool, int, int], index: int) -> None:
        known = best.get(place)
        if known is None or rank < known[0]:
            best[place] = (rank, index)

    for index, finding in enumerate(findings):
        if finding.attack_path is not None:
            continue
        suppressed = finding.suppressed is not None
        offer((finding.resource, finding.path_text), (suppressed, False, -int(finding.severity), index), index)
        for joined in finding.joined:
            offer((joined.resource, format_path(joined.path)), (suppressed, True, -int(joined.severity), index), index)
    return {place: index for place, (_rank, index) in best.items()}


def script_json(data: Any) -> str:
    """JSON that cannot end the <script type="application/json"> element holding it: no `<`, `>`, `&`
    (so no `</script>` and no `<!--`), nor the two line separators older parsers choke on."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), check_circular=False)
    for unsafe, escaped in _SCRIPT_UNSAFE.items():
        text = text.replace(unsafe, escaped)
    return text
