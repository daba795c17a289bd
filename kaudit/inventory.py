"""All resources of a scan, indexed by kind, namespace and name; namespaces implied by objects."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Iterator, Optional

from kaudit.model import Resource


class Inventory:
    def __init__(self, resources: Iterable[Resource]) -> None:
        self.resources: list[Resource] = list(resources)
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
