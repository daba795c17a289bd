"""One finding per fact: rules declare how their findings relate, and related findings are one.

A rule's `relations` (rule files, see docs/rules.md):
- `same-as: [ids]`: its finding and theirs are the same fact seen by two rules (a kaudit rule and
  its Pod Security Standards counterpart; two dangerous grants one binding gives one subject) when
  both sit on the same object, container, RBAC subject and field (or one's field inside the
  other's). An equivalence: declared once, it holds both ways and through chains.
- `implies: [ids]`: its finding makes theirs a consequence (`privileged: true` gives every
  capability and lifts seccomp, so `capabilities-not-dropped` adds nothing). An implied finding
  joins when it is on the same object and, for a finding in a container, in that container; else
  about the same RBAC subject; else on the same field. A namespace rule's finding implies across
  the objects in its namespace (no NetworkPolicy there: each workload is not isolated). Implication
  is transitive, and what implies one rule implies the rules that are the same as it.

Related findings become one: the leader, carrying the others as `joined` (rule, severity,
message, field, fingerprint), so every rule id and framework control stays visible and counted.
The leader is the most severe (a join never lowers what the gate sees); among equals, the cause
over its consequences, then the rule others name as the same fact, then the rule id. Only active
findings join: a suppressed one stays apart, as whoever suppressed it chose. "The same object" is
one declaration of it (Finding.declaration): an object declared twice, in two files or twice in
one, is judged and reported at each declaration's own lines, never joined across them.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Optional, Sequence

from kaudit.inventory import Scope, scope_of
from kaudit.model import Finding, JoinedFinding, ResourceRef
from kaudit.value import value

if TYPE_CHECKING:
    from kaudit.ruleset import Rule


@value
class Relations:
    """Which rules report the same fact or imply each other (see the module doc)."""

    same: Mapping[str, int]  # rule id -> its same-as class (rules alone in theirs are absent)
    implied: Mapping[str, frozenset[str]]  # rule id -> every rule its findings make consequences
    named: Mapping[str, int]  # rule id -> how many rules name it in `same-as` (leader tie-break)
    involved: frozenset[str] = frozenset()  # every rule whose findings may join another's
    namespace_rules: frozenset[str] = frozenset()  # rules judging a namespace: they imply across its objects
    namespace_implied: frozenset[str] = frozenset()  # the rules they imply

    @property
    def empty(self) -> bool:
        return not self.involved

    @classmethod
    def of(cls, rules: Iterable["Rule"]) -> "Relations":
        """The relations among `rules`; names of rules not among them are ignored (not run)."""
        rules = list(rules)
        known = {rule.id for rule in rules}
        parent = {rule_id: rule_id for rule_id in known}

        def root(rule_id: str) -> str:
            while parent[rule_id] != rule_id:
                parent[rule_id] = parent[parent[rule_id]]
                rule_id = parent[rule_id]
            return rule_id

        named: dict[str, int] = defaultdict(int)
        for rule in rules:
            for other in rule.same_as:
                if other in known:
                    parent[root(rule.id)] = root(other)
                    named[other] += 1
        members: dict[str, list[str]] = defaultdict(list)
        for rule_id in sorted(known):
            members[root(rule_id)].append(rule_id)
        classes = [sorted(ids) for ids in members.values() if len(ids) > 1]
        same = {rule_id: number for number, ids in enumerate(classes) for rule_id in ids}

        def mates(rule_id: str) -> list[str]:
            return classes[same[rule_id]] if rule_id in same else [rule_id]

        direct: dict[str, set[str]] = defaultdict(set)
        for rule in rules:
            for other in rule.implies:
                if other in known:
                    for source in mates(rule.id):
                        direct[source].update(mates(other))
        implied: dict[str, frozenset[str]] = {}
        for start in direct:
            seen: set[str] = set()
            stack = list(direct[start])
            while stack:
                current = stack.pop()
                if current not in seen:
                    seen.add(current)
                    stack.extend(direct.get(current, ()))
            seen.difference_update(mates(start))  # a rule never implies the fact it is
            if seen:
                implied[start] = frozenset(seen)
        involved = frozenset(same) | frozenset(implied) | frozenset(r for ids in implied.values() for r in ids)
        namespace_rules = frozenset(rule.id for rule in rules if rule.target == "namespace" and rule.id in implied)
        namespace_implied = frozenset(r for rule in namespace_rules for r in implied[rule])
        return cls(same, implied, dict(named), involved, namespace_rules, namespace_implied)

    def same_fact(self, a: str, b: str) -> bool:
        return a != b and a in self.same and self.same.get(b) == self.same[a]

    def implies(self, a: str, b: str) -> bool:
        return b in self.implied.get(a, ())


def join(findings: Sequence[Finding], relations: Relations) -> list[Finding]:
    """The findings with each set of related active findings reported as one (see module doc)."""
    if relations.empty:
        return list(findings)
    # by declaration: the same object declared twice (in two files, or twice in one) is two places
    # to fix, each judged on its own (inventory.declared_twice); joining the findings of both would
    # leave one declaration's to be shown at the other's lines
    by_object: dict[tuple[ResourceRef, Optional[str], Optional[tuple[int, int]]], list[int]] = defaultdict(list)
    involved = relations.involved
    for index, finding in enumerate(findings):
        if finding.rule in involved and finding.suppressed is None:
            by_object[(finding.resource, finding.location.file, finding.declaration)].append(index)
    parent: dict[int, int] = {}  # union-find over the findings that join another (most stand alone)

    def root(index: int) -> int:
        top = index
        while (up := parent.get(top, top)) != top:
            top = up
        while index != top:  # path compression
            parent[index], index = top, parent[index]
        return top

    def union(a: int, b: int) -> None:
        top_a, top_b = root(a), root(b)
        if top_a != top_b:
            parent[top_a] = top_b
            parent.setdefault(top_b, top_b)

    # an object's rules -> (those that may join there, those with a same-as mate there)
    partnered: dict[frozenset[str], tuple[frozenset[str], frozenset[str]]] = {}
    for indices in by_object.values():
        if len(indices) > 1:
            present = frozenset(findings[i].rule for i in indices)
            if present not in partnered:  # objects of one shape share the answer
                partnered[present] = (_partnered(present, relations), _with_mates(present, relations))
            partners, mated = partnered[present]
            if partners:
                _link(findings, [i for i in indices if findings[i].rule in partners], relations, union, mated)
    if relations.namespace_rules:
        wanted = relations.namespace_rules | relations.namespace_implied
        _link_namespaces(findings, [i for indices in by_object.values() for i in indices if findings[i].rule in wanted],
                         relations, union)
    groups: dict[int, list[int]] = defaultdict(list)
    for index in sorted(parent):  # members in report order (the leader is chosen by rank, not order)
        groups[root(index)].append(index)
    lead_of: dict[int, Finding] = {}
    dropped: set[int] = set()
    for members in groups.values():
        if len(members) > 1:
            leader, joined = _merge([findings[i] for i in members], relations)
            for index in members:
                if findings[index] is leader:
                    lead_of[index] = _with_joined(leader, joined)
                else:
                    dropped.add(index)
    return [lead_of.get(index, finding) for index, finding in enumerate(findings) if index not in dropped]


def _partnered(rules: frozenset[str], relations: Relations) -> frozenset[str]:
    """The rules among `rules` whose findings could join another's there: those with a same-as
    mate, a consequence or a cause among them. Relations are symmetric in this, so the findings of
    the other rules can be left out of the search without losing a join."""
    partners: set[str] = set()
    for rule in rules:
        consequences = relations.implied.get(rule, frozenset()) & rules
        if consequences:
            partners.add(rule)
            partners.update(consequences)
        if rule in relations.same and any(relations.same_fact(rule, other) for other in rules):
            partners.add(rule)
    return frozenset(partners)


def _with_mates(rules: frozenset[str], relations: Relations) -> frozenset[str]:
    """The rules among `rules` with a same-as mate among them: inside a container or for a subject,
    the only findings a field can join (implies joins there by the unit, not the field)."""
    return frozenset(rule for rule in rules if rule in relations.same
                     and any(relations.same_fact(rule, other) for other in rules))


def _with_joined(leader: Finding, joined: tuple[JoinedFinding, ...]) -> Finding:
    """A copy of `leader` carrying `joined` (its fingerprint, already computed, stays: joining does
    not change the fact). Cheaper than dataclasses.replace, which re-runs __init__ for each field."""
    copy = object.__new__(Finding)
    copy.__dict__.update(leader.__dict__)
    copy.joined = joined
    return copy


class _Field:
    """A node of one object's field tree: the findings at this field, and the fields inside it."""
    __slots__ = ("findings", "inside")

    def __init__(self) -> None:
        self.findings: list[int] = []
        self.inside: dict[object, _Field] = {}


def _link(findings: Sequence[Finding], indices: list[int], relations: Relations,
          union: Callable[[int, int], None], mated: frozenset[str]) -> None:
    """Union the related findings of one object: by field (same-as, and implies outside containers
    and subjects): the same field, or one inside the other (a volume and its hostPath.path); the
    empty path (the whole object) only with itself, as it would swallow every field. By container
    or subject: implies. Fields are a tree per container and subject, so each finding meets the
    findings above it in one walk down its path."""
    trees: dict[tuple[Optional[str], Optional[str]], _Field] = defaultdict(_Field)
    in_unit: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index in sorted(indices, key=lambda i: len(findings[i].path)):  # fields before the fields inside them
        finding = findings[index]
        unit = _unit(finding)
        if unit is not None:
            in_unit[unit][finding.rule].append(index)
            if finding.rule not in mated:
                continue  # no field of its unit holds a finding it could be by field, nor will one
        node = trees[(finding.container, finding.subject)]
        if finding.path:
            for part in finding.path:
                node = node.inside.get(part) or node.inside.setdefault(part, _Field())
                for other in node.findings:
                    if _by_field(findings[other], finding, relations):
                        union(index, other)
        else:
            for other in node.findings:
                if _by_field(findings[other], finding, relations):
                    union(index, other)
        node.findings.append(index)
    for by_rule in in_unit.values():
        for rule_id, causes in by_rule.items():
            for implied in relations.implied.get(rule_id, ()):
                # Anchored on the first of each, so a unit never costs more than its size: a valid
                # pod names each container once, so a rule's cause appears once per unit anyway.
                for consequence in by_rule.get(implied, ()):
                    union(causes[0], consequence)
                for cause in causes[1:]:
                    union(cause, causes[0])


def _link_namespaces(findings: Sequence[Finding], indices: list[int], relations: Relations,
                     union: Callable[[int, int], None]) -> None:
    """A namespace-level finding joins the findings it implies on the objects in that namespace:
    "no NetworkPolicy in namespace shop" is the one fact behind each of its workloads' "not
    isolated", and the namespace is where the fix goes. For objects without a namespace, their
    group (kaudit/inventory.py) is the namespace: its finding sits on the group's first workload."""
    causes: dict[Scope, dict[str, int]] = defaultdict(dict)  # scope -> rule -> its first finding there
    for index in indices:
        finding = findings[index]
        if finding.rule in relations.namespace_rules:
            first = causes[_scope(finding, cause=True)].setdefault(finding.rule, index)
            if first != index:
                union(index, first)  # the same namespace declared in two files
    if not causes:
        return
    for index in indices:
        finding = findings[index]
        if finding.rule in relations.namespace_rules:
            continue
        for rule_id, cause in causes.get(_scope(finding, cause=False), {}).items():
            if finding.rule in relations.implied[rule_id]:
                union(cause, index)


def _scope(finding: Finding, cause: bool) -> Scope:
    """The namespace a finding is about: a namespace finding's Namespace, or its object's scope."""
    if cause and finding.resource.kind == "Namespace":
        return Scope(finding.resource.name)
    location = finding.location
    return scope_of(finding.resource, location.file, location.rendered.unit if location.rendered is not None else None)


def _unit(finding: Finding) -> Optional[tuple[str, str]]:
    if finding.container is not None:
        return ("container", finding.container)
    if finding.subject is not None:
        return ("subject", finding.subject)
    return None


def _by_field(a: Finding, b: Finding, relations: Relations) -> bool:
    """Related through their fields (the caller matched container and subject): the same fact, or,
    outside containers and subjects (where the unit decides), one implying the other."""
    if relations.same_fact(a.rule, b.rule):
        return True
    return _unit(a) is None and (relations.implies(a.rule, b.rule) or relations.implies(b.rule, a.rule))


def _merge(members: list[Finding], relations: Relations) -> tuple[Finding, tuple[JoinedFinding, ...]]:
    rules = {finding.rule for finding in members}

    def rank(finding: Finding) -> tuple[int, int, int, str, str, str]:
        causes = len(relations.implied.get(finding.rule, frozenset()) & rules)
        # Ties end on the field, then the fingerprint, never on the order of the findings: that
        # is the order of lines, and moving lines must not change which finding leads (its
        # fingerprint is what a baseline knows).
        return (-finding.severity, -causes, -relations.named.get(finding.rule, 0), finding.rule,
                finding.path_text, finding.fingerprint)

    ordered = sorted(members, key=rank)
    leader = ordered[0]
    joined = tuple(
        JoinedFinding(rule=f.rule, severity=f.severity, message=f.message, resource=f.resource, path=f.path,
                      container=f.container, location=f.location, fingerprint=f.fingerprint,
                      relation="same-as" if relations.same_fact(leader.rule, f.rule) else "implied")
        for f in ordered[1:])
    return leader, joined
