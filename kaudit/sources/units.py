"""Render units: Helm charts and Kustomize directories. Their files are inputs to a renderer, not
manifests: a chart's templates are not YAML yet, a kustomization's patches are fragments and its
namespace comes from the overlay. A scan renders each unit (sources/rendering.py) and never reads
its files as manifests."""
from __future__ import annotations

import functools
import os
from typing import Optional

from kaudit.value import value


CHART_FILE = "Chart.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@value
class RenderUnit:
    """A Helm chart or Kustomize directory found among the inputs: kaudit renders it."""

    renderer: str  # "helm" | "kustomize"
    directory: str  # as the user will recognise it (the display path); also the path rendered


@value
class RenderOptions:
    """How to render the scan's charts and kustomizations (the same options for each unit)."""

    helm_values: tuple[str, ...] = ()  # values files, merged in order
    helm_set: tuple[str, ...] = ()  # key=value, over the files
    helm_release: str = "release-name"  # Helm's own default for `helm template`
    helm_namespace: Optional[str] = None  # objects that name none are installed here (helm install -n)
    kube_version: Optional[str] = None  # .Capabilities.KubeVersion
    api_versions: tuple[str, ...] = ()  # .Capabilities.APIVersions
    helm_dependency_update: bool = False  # fetch Chart.yaml dependencies not vendored in charts/ (network)
    helm_renderer: Optional[str] = None  # "helm-python-sdk" | "helm-binary"; None: the first available
    kustomize_allow_remote: bool = False  # let kustomize fetch remote bases (network)
    trace_values: bool = True  # find the values key behind a rendered field (a few extra renders)

    def helm_flags(self) -> tuple[str, ...]:
        """The options as the command line writes them, for the report's inputs (--helm-set values
        are not repeated: they may be secrets)."""
        flags = [f"--helm-values {path}" for path in self.helm_values]
        flags += [f"--helm-set {expression.split('=', 1)[0]}=…" for expression in self.helm_set]
        if self.helm_release != RenderOptions().helm_release:
            flags.append(f"--helm-release {self.helm_release}")
        if self.helm_namespace:
            flags.append(f"--helm-namespace {self.helm_namespace}")
        if self.kube_version:
            flags.append(f"--kube-version {self.kube_version}")
        flags += [f"--api-versions {api}" for api in self.api_versions]
        if self.helm_dependency_update:
            flags.append("--helm-dependency-update")
        return tuple(flags)

    def kustomize_flags(self) -> tuple[str, ...]:
        return ("--kustomize-allow-remote",) if self.kustomize_allow_remote else ()


def unit_at(directory: str, display: Optional[str] = None) -> Optional[RenderUnit]:
    """The unit rooted at `directory`, if it is one (a chart wins over a kustomization beside it)."""
    shown = display if display is not None else directory
    if os.path.isfile(os.path.join(directory, CHART_FILE)):
        return RenderUnit("helm", shown)
    if any(os.path.isfile(os.path.join(directory, name)) for name in KUSTOMIZATION_FILES):
        return RenderUnit("kustomize", shown)
    return None


def enclosing_unit(path: str) -> Optional[RenderUnit]:
    """The unit a file belongs to: the nearest folder above it (or its own) that is a chart or a
    kustomization, with the outermost chart winning (a subchart's file re-renders its parent, which
    is what gets installed). The directory is absolute."""
    return _unit_above(os.path.dirname(os.path.abspath(path)))


@functools.lru_cache(maxsize=4096)
def _unit_above(directory: str) -> Optional[RenderUnit]:
    parent = os.path.dirname(directory)
    above = None if parent == directory else _unit_above(parent)
    if above is not None and above.renderer == "helm":
        return above  # inside a chart: its charts/ hold subcharts, not units of their own
    here = unit_at(directory)
    return here if here is not None else above
