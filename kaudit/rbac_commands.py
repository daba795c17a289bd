"""`kaudit rbac who-can` and `kaudit rbac explain`: answers with the binding path, from any source."""
from __future__ import annotations

from itertools import groupby
from typing import Optional, Sequence, TextIO

from kaudit.analyzers.permissions import describe_rule
from kaudit.analyzers.rbac import Grant, Subject, rbac_index
from kaudit.errors import KauditError
from kaudit.inventory import Inventory
from kaudit.sources.manifests import load_manifests


def _inventory(paths: Sequence[str], err: TextIO) -> tuple[Inventory, bool]:
    if not paths:
        raise KauditError("nothing to read: give manifest files, directories or '-'")
    loaded = load_manifests(paths)
    for error in loaded.inputs.errors:
        err.write(f"error: {error.describe()}\n")
    return Inventory(loaded.resources), not loaded.inputs.errors


def parse_resource(text: str) -> tuple[str, str]:
    """`pods`, `pods/exec`, `deployments.apps`, `certificatesigningrequests.certificates.k8s.io/approval`
    -> (group, resource[/subresource]), like `kubectl auth can-i`."""
    name, slash, subresource = text.partition("/")
    resource, dot, group = name.partition(".")
    if not resource:
        raise KauditError(f"resource {text!r}: expected RESOURCE[.GROUP][/SUBRESOURCE]")
    return group, resource + (slash + subresource if subresource else "")


def who_can(verb: str, resource_text: str, namespace: Optional[str], paths: Sequence[str],
            out: TextIO, err: TextIO) -> int:
    group, resource = parse_resource(resource_text)
    inventory, complete = _inventory(paths, err)
    grants = rbac_index(inventory).who_can(verb, group, resource, namespace)
    scope = f"in namespace {namespace}" if namespace else "in any namespace or cluster-wide"
    out.write(f"who can {verb} {resource} (API group {group or 'core'}) {scope}:\n")
    _write_by_subject(grants, out)
    out.write(f"{len({g.subject for g in grants})} subjects\n")
    return 0 if complete else 2


def explain(subject_text: str, paths: Sequence[str], out: TextIO, err: TextIO) -> int:
    try:
        subject = Subject.parse(subject_text)
    except ValueError as error:
        raise KauditError(str(error)) from None
    inventory, complete = _inventory(paths, err)
    grants = rbac_index(inventory).grants_of(subject)
    identities = ", ".join(s.describe() for s in subject.identities())
    out.write(f"effective permissions of {subject.describe()} (as {identities}):\n")
    for scope, group in groupby(sorted(grants, key=_scope_key), key=lambda g: g.where()):
        out.write(f"  {scope}:\n")
        for grant in group:
            via = f"{grant.binding_text()} -> {grant.role.describe()}"
            member = "" if grant.subject == subject else f" [as {grant.subject.describe()}]"
            written = grant.role.source_of(grant.rule_index).describe()
            out.write(f"    {describe_rule(grant.rule)}\n      via {via} -> {written}{member}\n")
    out.write(f"{len(grants)} rules through {len({id(g.binding) for g in grants})} bindings\n")
    return 0 if complete else 2


def _scope_key(grant: Grant) -> tuple[int, str, str, int]:
    # cluster-wide first, then each namespace, then RoleBindings whose namespace the manifest leaves open
    order = 0 if not grant.namespaced else 1 if grant.scope else 2
    return (order, grant.scope or "", grant.binding.name, grant.rule_index)


def _write_by_subject(grants: list[Grant], out: TextIO) -> None:
    ordered = sorted(grants, key=lambda g: (g.subject.kind, g.subject.namespace or "", g.subject.name, _scope_key(g)))
    for subject, group in groupby(ordered, key=lambda g: g.subject):
        out.write(f"  {subject.describe()}\n")
        for grant in group:
            out.write(f"    via {grant.path().split(' -> ', 1)[1]}\n")
