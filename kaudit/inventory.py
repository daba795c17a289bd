"""All resources of a scan, indexed by kind, namespace and name; namespaces implied by objects."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator, Optional

from kaudit.model import InputError, Origin, Resource, ResourceRef

NO_NAMESPACE = "(no namespace)"  # manifests without metadata.namespace: the namespace chosen at deploy time


class Inventory:
    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources: list[Resource] = list(resources)
        self.memo: dict[str, Any] = {}  # indexes analyzers build once per scan
        self._by_kind: dict[str, list[Resource]] = defaultdict(list)
        self._by_identity: dict[tuple[str, Optional[str], str], Resource] = {}
        for resource in self.resources:
            self._by_kind[resource.kind].append(resource)
            self._by_identity.setdefault((resource.kind, resource.namespace, resource.name), resource)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def get(self, kind: str, namespace: Optional[str], name: str) -> Optional[Resource]:
        return self._by_identity.get((kind, namespace, name))

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
        namespace nobody declares, one implied by the first object that lives in it (located there).
        Objects without a namespace share one implied namespace."""
        declared: dict[str, list[Resource]] = {}
        for namespace in self.of_kind("Namespace"):
            declared.setdefault(namespace.name, []).append(namespace)
        found: dict[Optional[str], list[Resource]] = {}
        for resource in self.resources:
            if resource.kind == "Namespace" or resource.namespace in found:
                continue
            key = resource.namespace
            if key is not None and key in declared:
                found[key] = declared[key]
                continue
            name = key if key is not None else NO_NAMESPACE
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            origin = Origin(file=resource.origin.file, line=resource.origin.line, column=resource.origin.column,
                            context=resource.origin.context, server=resource.origin.server)
            found[key] = [Resource(ResourceRef("v1", "Namespace", name), body, origin)]
        for name, resources in declared.items():
            found.setdefault(name, resources)
        return [resource for resources in found.values() for resource in resources]


def declared_twice(resources: Iterable[Resource]) -> list[InputError]:
    """One warning for each object declared again (same API group, kind, namespace and name) in the
    scanned manifests: which declaration wins depends on the order of applying, so both are judged
    and both places are named. Objects without a name (generateName) are each a new object."""
    first: dict[tuple[str, str, Optional[str], str], Resource] = {}
    warnings = []
    for resource in resources:
        metadata = resource.body.get("metadata")
        if resource.origin.file is None or not (isinstance(metadata, dict) and metadata.get("name")):
            continue
        api_version = resource.ref.api_version
        key = (api_version.rpartition("/")[0], resource.kind, resource.namespace, resource.name)
        earlier = first.setdefault(key, resource)
        if earlier is not resource:
            warnings.append(InputError(
                resource.origin.file, resource.origin.line,
                f"{resource.ref.describe()} is declared twice, here and at {_where(earlier.origin)}: "
                "what the cluster gets depends on the order they are applied; both are judged"))
    return warnings


def _where(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}" if origin.line is not None else str(origin.file)
