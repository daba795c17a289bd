"""All resources of a scan, indexed by kind, scope and name; namespaces implied by objects.

A namespaced object without metadata.namespace lands in whichever namespace it is applied to, and
the objects applied together land in the same one: the files of one folder (`kubectl apply -f
dir/`; a sub-folder is a group of its own), or standard input. Such a group is its own scope:
a NetworkPolicy selects pods, a RoleBinding grants and a pod finds its ServiceAccount within its
group, never in another folder's. `Scope` is that key, and `scope_of` the one place that says
which an object is in; every cross-object lookup goes through it. (`kaudit scan -n NS` gives the
objects their namespace when they are read, as `kubectl apply -n NS` would.)
"""
from __future__ import annotations

import functools
import os
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, TypeVar

from kaudit.model import STDIN_NAME, InputError, Origin, Resource, ResourceRef
from kaudit.pod_security import PodSecurityVersions
from kaudit.sources.classify import cluster_scoped


class Scope(NamedTuple):
    """Where an object's namespaced relations hold: its namespace; for a namespaced object without
    one, its group (`group`: the absolute folder of its file, or STDIN_NAME); CLUSTER for
    cluster-scoped objects."""

    namespace: Optional[str] = None
    group: Optional[str] = None


CLUSTER = Scope()


def group_of(file: str) -> str:
    """The group of the objects in `file`: its folder (absolute, so `a/x.yaml` and `./a/y.yaml`
    are one), or standard input."""
    if file == STDIN_NAME:
        return file
    return _folder("" if os.path.isabs(file) else os.getcwd(), file)


@functools.lru_cache(maxsize=4096)
def _folder(cwd: str, file: str) -> str:
    # keyed by the working directory too: a long-lived process (tests, a library user) may change it
    return os.path.dirname(os.path.normpath(os.path.join(cwd, file)))


def scope_of(ref: ResourceRef, file: Optional[str], unit: Optional[str] = None) -> Scope:
    """The scope of the object `ref` read from `file` (None: from a cluster, where every namespaced
    object has its namespace). A rendered object's group is its unit: a chart (subcharts too) or a
    kustomization is installed into one namespace, wherever its templates or bases live."""
    if ref.namespace is not None:
        return Scope(ref.namespace)
    if file is None or cluster_scoped(ref.api_version, ref.kind):
        return CLUSTER
    if unit is not None:
        return Scope(None, "unit:" + os.path.abspath(unit))
    return Scope(None, group_of(file))


def namespace_applied_to(origin: Origin) -> str:
    """Where a group's namespace is chosen, for a message: "The namespace deploy/a/ is applied to",
    or for a rendered unit "The namespace the chart charts/web is installed into"."""
    rendered = origin.rendered
    if rendered is not None:
        kind = "chart" if rendered.renderer == "helm" else "kustomization"
        return f"The namespace the {kind} {rendered.unit} is installed into"
    return f"The namespace {group_text(origin.file or '')} is applied to"


def group_text(file: str) -> str:
    """The group of `file` as the user names it: `deploy/a/`, `./`, or standard input."""
    if file == STDIN_NAME:
        return "standard input"
    return (os.path.dirname(file) or ".") + "/"


T = TypeVar("T")


def memoized(lookup: Any, key: str, build: Callable[[Any], T]) -> T:
    """`build(lookup)` made once per inventory and kept in its memo under `key`: the indexes the
    analyzers build (network, RBAC, limits) are asked for by every rule that reads them."""
    found: Optional[T] = lookup.memo.get(key)
    if found is None:
        found = lookup.memo[key] = build(lookup)
    return found


class Inventory:
    def __init__(self, resources: Iterable[Resource], pod_security: Optional[PodSecurityVersions] = None) -> None:
        self.resources: list[Resource] = list(resources)
        # which Pod Security version judges each pod: the scan's choice, with the enforce-version
        # labels of its Namespace objects (and any the caller read already: parallel.py)
        self.pod_security = pod_security if pod_security is not None else PodSecurityVersions()
        self.memo: dict[str, Any] = {}  # indexes analyzers build once per scan
        self._by_kind: dict[str, list[Resource]] = defaultdict(list)
        self._by_identity: Optional[dict[tuple[str, Scope, str], Resource]] = None  # built on the first get()
        for resource in self.resources:
            self._by_kind[resource.kind].append(resource)
        self.pod_security.with_namespaces(self.of_kind("Namespace"))

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    @staticmethod
    def scope(resource: Resource) -> Scope:
        origin = resource.origin
        return scope_of(resource.ref, origin.file, origin.rendered.unit if origin.rendered is not None else None)

    def get(self, kind: str, scope: Scope, name: str) -> Optional[Resource]:
        """The object of this kind and name in `scope` (CLUSTER for cluster-scoped kinds)."""
        if self._by_identity is None:
            self._by_identity = {}
            for resource in self.resources:
                self._by_identity.setdefault((resource.kind, self.scope(resource), resource.name), resource)
        return self._by_identity.get((kind, scope, name))

    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    def namespaces(self) -> set[str]:
        """Namespaces declared as objects or implied by the objects that live in them."""
        names = {r.name for r in self.of_kind("Namespace")}
        names.update(r.namespace for r in self.resources if r.namespace)
        return names

    def namespace_resources(self) -> list[Resource]:
        """The namespaces rules look at: every Namespace declaration (the same namespace declared in two
        files is two places to fix, and scanning the files apart or together must agree), and for a
        namespace nobody declares, one implied by the first object whose metadata.namespace names it
        (located there). Objects without a namespace imply none: they are not in a namespace the scan
        can name (see the module doc)."""
        declared: dict[str, list[Resource]] = {}
        for namespace in self.of_kind("Namespace"):
            declared.setdefault(namespace.name, []).append(namespace)
        found: dict[str, list[Resource]] = {}
        for resource in self.resources:
            key = resource.namespace
            if resource.kind == "Namespace" or key is None or key in found:
                continue
            if key in declared:
                found[key] = declared[key]
                continue
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": key}}
            first = resource.origin
            # from a chart or overlay, the unit names it (a release namespace): no line of its own
            origin = Origin(file=first.rendered.unit) if first.rendered is not None else \
                Origin(file=first.file, line=first.line, column=first.column, context=first.context, server=first.server)
            found[key] = [Resource(ResourceRef("v1", "Namespace", key), body, origin)]
        for name, resources in declared.items():
            found.setdefault(name, resources)
        return [resource for resources in found.values() for resource in resources]


def declared_twice(resources: Iterable[Resource]) -> list[InputError]:
    """One warning for each object declared again (same API group, kind, namespace and name) in the
    scanned manifests: which declaration wins depends on the order of applying, so both are judged
    and both places are named. Objects without a name (generateName) are each a new object; objects
    without a namespace are the same object only within their group (folder)."""
    first: dict[tuple[str, str, Scope, str], Resource] = {}
    warnings = []
    for resource in resources:
        metadata = resource.body.get("metadata")
        if resource.origin.file is None or not (isinstance(metadata, dict) and metadata.get("name")):
            continue
        api_version = resource.ref.api_version
        key = (api_version.rpartition("/")[0], resource.kind, Inventory.scope(resource), resource.name)
        earlier = first.setdefault(key, resource)
        if earlier is not resource:
            warnings.append(InputError(
                resource.origin.file, resource.origin.line,
                f"{resource.ref.describe()} is declared twice, here and at {_where(earlier.origin)}: "
                "what the cluster gets depends on the order they are applied; both are judged"))
    return warnings


def _where(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}" if origin.line is not None else str(origin.file)
