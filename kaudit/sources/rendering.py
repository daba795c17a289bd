"""Render units into the scan: a chart or a kustomization becomes objects like any manifest's, each
carrying the unit and document it came from (Origin.rendered), so findings can be pointed back at
the template, values key or patch that wrote the field (sources/provenance.py).

A unit that does not render is an input error at the unit with the renderer's message (the scan
exits 2); with no renderer installed at all the scan stops with one line saying how to get one.
Imported only when a scan has a unit: the plain-manifest path (pre-commit) never pays for it.
"""
from __future__ import annotations

import os
import time
from typing import Any, Optional, Union

from kaudit.errors import KauditError
from kaudit.model import FileRead, InputError, RenderedFrom, RenderedInput
from kaudit.sources.helm import HelmOptions, HelmRender
from kaudit.sources.kustomize import KustomizeOptions, KustomizeRender
from kaudit.sources.manifests import ManifestScan, add_document
from kaudit.sources.units import RenderOptions, RenderUnit
from kaudit.sources.yamldoc import Document, parse_documents
from kaudit.value import field, record


Render = Union[HelmRender, KustomizeRender]


@record
class RenderedUnit:
    """A unit's render, kept for pointing findings back at its sources."""

    unit: RenderUnit
    render: Render
    options: RenderOptions
    helm: HelmOptions  # as rendered (values provenance renders again with the same)
    engine: str  # the renderer as the report names it: "helm-python-sdk", "kubectl kustomize"
    files: list[str] = field(default_factory=list)  # each document's file, as findings name it


def load_unit(unit: RenderUnit, options: RenderOptions, scan: ManifestScan) -> None:
    """Render `unit` and add its objects to `scan`, accounting for the unit and every document."""
    inputs = scan.inputs
    documents, objects = inputs.documents, inputs.resources
    started = time.perf_counter()
    flags = options.helm_flags() if unit.renderer == "helm" else options.kustomize_flags()
    helm = helm_options(options)
    try:
        render = _render(unit, options, helm)
    except NoRenderer:
        raise
    except Exception as error:  # both renderers' RenderError (the renderer's own message), or its crash
        message = _message(unit, error)
        inputs.errors.append(InputError(unit.directory, None, message))
        inputs.rendered.append(RenderedInput(unit.directory, unit.renderer, _engine(unit, None), flags,
                                             error=message, milliseconds=_since(started)))
        return
    rendered = RenderedUnit(unit, render, options, helm, _engine(unit, render))
    scan.units[unit.directory] = rendered
    namespace = options.helm_namespace if unit.renderer == "helm" else None
    documents_rendered: tuple[Any, ...] = render.documents  # Helm's or kustomize's: both have `text`
    for index, document in enumerate(documents_rendered):
        file = _file_of(unit, document)
        rendered.files.append(file)
        origin = RenderedFrom(unit.directory, unit.renderer, index)
        for parsed in parse_documents(document.text):
            if not isinstance(parsed, Document):
                inputs.errors.append(InputError(file, None, f"rendered output is not YAML: {parsed.message} "
                                                            f"(line {parsed.line} of the rendered document)"))
                continue
            inputs.documents += 1
            add_document(file, parsed, scan, origin, namespace)
    inputs.read.append(FileRead(unit.directory, inputs.documents - documents, inputs.resources - objects))
    inputs.rendered.append(RenderedInput(unit.directory, unit.renderer, rendered.engine, flags,
                                         inputs.documents - documents, inputs.resources - objects,
                                         milliseconds=_since(started)))


class NoRenderer(KauditError):
    """No renderer for a unit is installed: the scan stops with one line saying how to get one."""


def helm_options(options: RenderOptions) -> HelmOptions:
    return HelmOptions(values_files=options.helm_values, set_values=options.helm_set, release=options.helm_release,
                       namespace=options.helm_namespace or "default", kube_version=options.kube_version,
                       api_versions=options.api_versions, dependency_update=options.helm_dependency_update)


def _render(unit: RenderUnit, options: RenderOptions, helm: HelmOptions) -> Render:
    if unit.renderer == "helm":
        from kaudit.sources.helm import RendererMissing, render_chart

        try:
            return render_chart(unit.directory, helm, options.helm_renderer)
        except RendererMissing as missing:
            raise NoRenderer(f"{unit.directory}: Helm chart, and {missing}") from None
    from kaudit.sources.kustomize import RendererMissing as KustomizeMissing, render_kustomization

    try:
        return render_kustomization(unit.directory, KustomizeOptions(allow_remote=options.kustomize_allow_remote))
    except KustomizeMissing as missing:
        raise NoRenderer(f"{unit.directory}: kustomization, and {missing}") from None


def _message(unit: RenderUnit, error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    kind = "Helm chart" if unit.renderer == "helm" else "kustomization"
    prefix = f"{unit.directory}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return f"{kind} does not render: {text}"


def _engine(unit: RenderUnit, render: Optional[Render]) -> str:
    if isinstance(render, HelmRender):
        return render.renderer
    if isinstance(render, KustomizeRender):
        command = render.renderer.split(" ", 1)
        return " ".join([os.path.basename(command[0]), *command[1:]])
    return "helm" if unit.renderer == "helm" else "kustomize"


def _file_of(unit: RenderUnit, document: Any) -> str:
    """The file a rendered document's objects are reported in: the template (Helm), or the resource
    file the object came from (Kustomize; the kustomization itself for a generated object)."""
    if unit.renderer == "helm":
        return os.path.join(unit.directory, document.template)
    origin: Optional[str] = document.origin_file
    if not origin:
        from kaudit.sources.kustomize import kustomization_file

        return kustomization_file(unit.directory) or unit.directory
    return unit_file(unit.directory, origin)


def unit_file(directory: str, file: str) -> str:
    """A file kustomize names relative to the rendered directory, as findings name it; a file of a
    remote base as kustomize names it."""
    if "://" in file or file.startswith(("github.com/", "gitlab.com/")) or "//" in file:
        return file
    return os.path.normpath(os.path.join(directory, file))


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
