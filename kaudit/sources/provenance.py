"""Point findings on rendered objects at their sources.

The engine places a finding on a rendered object at a line of the rendered document, a stream that
exists nowhere in the repository. Here each such location becomes the line to change:
- Helm: the template line that wrote the field (sources/helm_lines.py aligns each template with its
  output), and, when the value came from values, the values file, line and key (found by rendering
  with that key perturbed, sources/helm_values.py; bounded, and the report says when it gave up);
- Kustomize: the line of the field in the resource file it came from, or the patch that set it
  (sources/kustomize_fields.py).
Locations only: fingerprints name the object and field, never a line, so they do not move.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from kaudit.model import Finding, FieldPath, JoinedFinding, Location, RenderedLocation, Resource, ResourceRef, \
    ValuesLocation
from kaudit.sources.rendering import unit_file
from kaudit.value import replace

if TYPE_CHECKING:
    from kaudit.sources.helm_values import Provenance
    from kaudit.sources.rendering import RenderedUnit

Place = tuple[ResourceRef, Optional[str]]


def relocate(findings: list[Finding], resources: Sequence[Resource], units: Mapping[str, "RenderedUnit"]
             ) -> list[Finding]:
    """`findings` with every location on a rendered object pointed at its source."""
    if not units:
        return findings
    rendered = {(r.ref, r.origin.file): r for r in resources if r.origin.rendered is not None}
    if not rendered:
        return findings
    sources = _Sources(units)
    wanted = [(f.resource, f.location, f.path) for f in findings]
    wanted += [(j.resource, j.location, j.path) for f in findings for j in f.joined]
    sources.trace_values([(rendered[(ref, loc.file)], path) for ref, loc, path in wanted
                          if (ref, loc.file) in rendered])
    result = []
    for finding in findings:
        resource = rendered.get((finding.resource, finding.location.file))
        joined = tuple(_relocated_joined(j, rendered, sources) for j in finding.joined)
        if resource is not None:
            finding = replace(finding, location=sources.locate(resource, finding.location, finding.path))
        if joined != finding.joined:
            finding = replace(finding, joined=joined)
        result.append(finding)
    return result


def relocate_evidence(evidence: Iterable[Any], units: Mapping[str, "RenderedUnit"]) -> None:
    """Attack-path evidence (kaudit/attack/model.Evidence) on rendered objects placed at the template
    line, resource file or patch that writes the field, as findings are (no values trace: a step
    names the field, the finding on it names the values key)."""
    if not units:
        return
    sources = _Sources(units)
    for item in evidence:
        if item.resource.origin.rendered is not None and (item.placed is None or item.placed.rendered is None):
            item.placed = sources.locate(item.resource, item.location, item.path)


def _relocated_joined(joined: JoinedFinding, rendered: Mapping[Place, Resource], sources: "_Sources"
                      ) -> JoinedFinding:
    resource = rendered.get((joined.resource, joined.location.file))
    if resource is None:
        return joined
    return replace(joined, location=sources.locate(resource, joined.location, joined.path))


class _Sources:
    """Line maps and values traces of the scan's units, each computed once."""

    def __init__(self, units: Mapping[str, "RenderedUnit"]) -> None:
        self.units = units
        self._line_maps: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._values: dict[tuple[str, int, FieldPath], "Provenance"] = {}

    def trace_values(self, wanted: list[tuple[Resource, FieldPath]]) -> None:
        """Trace the values behind every wanted field, one batch per chart."""
        from kaudit.sources.helm import HelmRender
        from kaudit.sources.helm_values import Query, trace_values

        per_unit: dict[str, list[Query]] = {}
        for resource, path in wanted:
            rendered = resource.origin.rendered
            assert rendered is not None
            unit = self.units.get(rendered.unit)
            if unit is None or unit.unit.renderer != "helm" or not unit.options.trace_values:
                continue
            per_unit.setdefault(rendered.unit, []).append(Query(rendered.document, tuple(path)))
        for name, queries in per_unit.items():
            unit = self.units[name]
            assert isinstance(unit.render, HelmRender)
            unique = list(dict.fromkeys(queries))
            traced = trace_values(unit.unit.directory, unit.helm, unit.render, unique)
            for query, provenance in traced.items():
                self._values[(name, query.document, query.path)] = provenance

    def locate(self, resource: Resource, location: Location, path: FieldPath) -> Location:
        rendered = resource.origin.rendered
        assert rendered is not None
        unit = self.units.get(rendered.unit)
        if unit is None:
            return location
        if unit.unit.renderer == "helm":
            return self._helm(unit, rendered.document, location, path)
        return self._kustomize(unit, rendered.document, location, path)

    def _helm(self, unit: "RenderedUnit", index: int, location: Location, path: FieldPath) -> Location:
        from kaudit.sources.helm import HelmRender

        render = unit.render
        assert isinstance(render, HelmRender)
        document = render.documents[index]
        file, line, column, exact = unit.files[index], None, None, False
        if location.line is not None:
            mapped = self._line_map(unit, document.source, document.template)
            output_line = document.offset + location.line
            source = mapped[output_line - 1] if 0 < output_line <= len(mapped) else None
            if source is not None:
                file, line, exact = os.path.join(unit.unit.directory, source.file), source.line, source.exact
                column = location.column if exact else None
        values, note = None, ""
        provenance = self._values.get((unit.unit.directory, index, tuple(path)))
        if provenance is not None:
            if provenance.source is not None:
                found = provenance.source
                values = ValuesLocation(found.file, found.line, found.key, found.how)
            elif not provenance.known:
                note = provenance.reason
        detail = RenderedLocation(unit=unit.unit.directory, renderer=unit.engine, source=unit.files[index],
                                  rendered_line=location.line, exact=exact, values=values, values_note=note)
        return Location(file=file, line=line, column=column, rendered=detail)

    def _line_map(self, unit: "RenderedUnit", source: str, template: str) -> tuple[Any, ...]:
        key = (unit.unit.directory, source)
        if key not in self._line_maps:
            from kaudit.sources.helm import HelmRender
            from kaudit.sources.helm_lines import map_template_output

            render = unit.render
            assert isinstance(render, HelmRender)
            output = render.outputs.get(source, "")
            self._line_maps[key] = tuple(map_template_output(unit.unit.directory, template, output))
        return self._line_maps[key]

    def _kustomize(self, unit: "RenderedUnit", index: int, location: Location, path: FieldPath) -> Location:
        from kaudit.sources.kustomize import KustomizeRender
        from kaudit.sources.kustomize_fields import field_source

        render = unit.render
        assert isinstance(render, KustomizeRender)
        document = render.documents[index]
        found = field_source(render, document, tuple(path))
        file, line = unit.files[index], document.origin_line
        patch, how = None, ""
        if found is not None:
            file = unit_file(unit.unit.directory, found.file)
            line = found.line
            how = found.how
            if found.patch:
                patch = file if line is None else f"{file}:{line}"
        detail = RenderedLocation(unit=unit.unit.directory, renderer=unit.engine,
                                  source=unit.files[index], rendered_line=location.line,
                                  exact=found is not None and found.line is not None, patch=patch, how=how)
        return Location(file=file, line=line, rendered=detail)

