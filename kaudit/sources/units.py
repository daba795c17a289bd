"""Render units: Helm charts and Kustomize directories. Their files are inputs to a renderer, not
manifests: a chart's templates are not YAML yet, a kustomization's patches are fragments and its
namespace comes from the overlay. Until kaudit renders them (sources/ will, one module per
renderer), a unit is reported as not rendered, never counted as scanned."""
from __future__ import annotations

import functools
import os
from typing import Optional

from kaudit.value import value


CHART_FILE = "Chart.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@value
class RenderUnit:
    """A Helm chart or Kustomize directory found among the inputs, which kaudit does not render."""

    renderer: str  # "helm" | "kustomize"
    directory: str  # as the user will recognise it (the display path)

    def not_rendered(self) -> str:
        if self.renderer == "helm":
            return (f"Helm chart at {self.directory} not rendered: render it and pipe it in "
                    f"(`helm template {self.directory} | kaudit scan -`)")
        return (f"Kustomization at {self.directory} not rendered: render it and pipe it in "
                f"(`kubectl kustomize {self.directory} | kaudit scan -`)")


def unit_at(directory: str, display: Optional[str] = None) -> Optional[RenderUnit]:
    """The unit rooted at `directory`, if it is one (a chart wins over a kustomization beside it)."""
    shown = display if display is not None else directory
    if os.path.isfile(os.path.join(directory, CHART_FILE)):
        return RenderUnit("helm", shown)
    if any(os.path.isfile(os.path.join(directory, name)) for name in KUSTOMIZATION_FILES):
        return RenderUnit("kustomize", shown)
    return None


def enclosing_chart(path: str) -> Optional[str]:
    """The chart directory a file belongs to (its own folder or an ancestor holds Chart.yaml)."""
    return _chart_above(os.path.dirname(os.path.abspath(path)))


@functools.lru_cache(maxsize=4096)
def _chart_above(directory: str) -> Optional[str]:
    if os.path.isfile(os.path.join(directory, CHART_FILE)):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _chart_above(parent)
