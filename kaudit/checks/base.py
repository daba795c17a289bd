"""The contract between the engine and templates.

A template is parameterised check logic registered by key (kube-linter's split): `bind(params)`
returns a check, and a check maps one target (an object, a pod, or a container) to hits. Rules
are YAML that bind a template to params and metadata. Checks never do I/O.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Protocol

from kaudit.inventory import Scope
from kaudit.model import FieldPath, Resource
from kaudit.pod_security import PodSecurityVersions
from kaudit.value import field, value
from kaudit.workloads import Container, PodSpec

TARGETS = ("object", "pod", "container", "namespace")


class Lookup(Protocol):
    """What checks may ask of the whole inventory (cross-object joins, e.g. a pod's ServiceAccount)."""

    memo: dict[str, Any]
    resources: list[Resource]
    pod_security: PodSecurityVersions  # which Pod Security version judges a pod (kaudit/pod_security.py)

    def get(self, kind: str, scope: Scope, name: str) -> Optional[Resource]: ...

    def scope(self, resource: Resource) -> Scope: ...  # where its namespaced relations hold (inventory.py)

    def of_kind(self, kind: str) -> list[Resource]: ...


@value
class Target:
    """What a check looks at. For target `namespace`, `scope` is the namespace judged and `resource`
    its Namespace (declared or implied), or, for a template that `judges_groups`, a group of objects
    without metadata.namespace and `resource` the group's first workload (a real object: the finding
    sits there, not on a namespace nobody named)."""

    resource: Resource
    pod: Optional[PodSpec] = None
    container: Optional[Container] = None
    lookup: Optional[Lookup] = None
    containers: tuple[Container, ...] = ()  # all containers of the pod, found once per object
    scope: Optional[Scope] = None
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # views shared by rules

    @property
    def body(self) -> Mapping[str, Any]:
        return self.resource.body


@value
class Hit:
    """A violation at `path` (in the object); `values` fill the rule's message placeholders; `fact`
    tells apart several facts one rule reports at the same field (e.g. two subjects of a binding);
    `container` names the container a pod-level check found the problem in (a container target
    already carries its own)."""

    path: FieldPath
    values: Mapping[str, str] = field(default_factory=dict)
    fact: str = ""
    # Levels below the rule's severity (floored at info): for rules whose docs grade their findings,
    # e.g. an RBAC grant not bound to anyone yet. Relative, so a config's severity for the rule holds.
    demote: int = 0
    container: Optional[str] = None
    # The identity the fact is about (an RBAC subject's key, `Subject.key()`), where one field
    # carries facts about several identities: a binding's roleRef grants each subject apart.
    subject: Optional[str] = None
    attack_path: Optional[Any] = None  # an attack path finding's steps (kaudit/attack/model.AttackPath)


Check = Callable[[Target], Iterable[Hit]]


@value
class Template:
    """Parameterised check logic: a rule binds it to its params."""

    key: str
    description: str
    targets: frozenset[str]
    params_schema: Mapping[str, Any]
    bind: Callable[[Mapping[str, Any], str], Check]  # (params, target) -> check
    cross_object: bool = False  # needs the whole inventory to be right (not just the object's own file)
    reads: frozenset[str] = frozenset()  # kinds it consults besides its target (cluster coverage gaps)
    # Of `reads`, the kinds whose unread objects can only hide a finding, never make one up (an attack
    # path through a Secret not read is missed; no path appears for it): a coverage gap on one makes
    # the rule partially evaluated, its findings kept, instead of not evaluated.
    reads_partly: frozenset[str] = frozenset()
    # Target namespace: also judges each group of objects without metadata.namespace (the namespace
    # they are applied to), on the group's first workload. Templates that read a Namespace's own
    # fields (its labels) cannot, as the group has none.
    judges_groups: bool = False
    # Cross-object only through the kinds it reads: with none of them in any input file, it needs
    # nothing but its own object, and a parallel scan runs it in the workers (kaudit/parallel.py).
    local_without_reads: bool = False
    # Target container, run on the whole inventory: the container fields it reads (besides `name`).
    # A parallel scan then sends workloads to the main process with only those; empty: whole.
    container_fields: frozenset[str] = frozenset()
    # What a scan must do before the template can see anything: "verified-images" (--verify-images);
    # without it the rule reports nothing, and says it did not run (Report.rules_not_run).
    needs: frozenset[str] = frozenset()


class TemplateError(ValueError):
    """Params that validate against the schema but cannot be used (bad regex, view for target)."""
