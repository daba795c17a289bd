"""All resources of a scan, indexed by kind, namespace and name; namespaces implied by objects."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator, Optional

from kaudit.model import Origin, Resource, ResourceRef

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
