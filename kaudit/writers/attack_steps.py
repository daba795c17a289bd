"""An attack path's steps as words, the same in every writer that shows them (SARIF code flows, the
HTML chain, Markdown): node labels, "<from> <verb> <to>: why", and where each step is written.

The labels come from the scan's attack graph (`Report.attack`) when the report has one; a finding
read on its own (a report without the summary) still reads well from the node ids, which are names.
"""
from __future__ import annotations

from typing import Any, Optional

from kaudit.attack.model import ANY_NODE, CROWN_PREFIX, EDGE_VERBS
from kaudit.model import Location

_NODE_OF = "node-of:"


def node_label(node_id: str, attack: Any = None) -> str:
    """The label the graph gives a node, else one read from its id."""
    if attack is not None:
        node = attack.analysis.graph.nodes.get(node_id)
        if node is not None and node.label:
            return str(node.label)
    if node_id.startswith(CROWN_PREFIX):
        return node_id[len(CROWN_PREFIX):]
    if node_id.startswith(_NODE_OF):
        return "node of " + node_id[len(_NODE_OF):]
    if node_id == ANY_NODE:
        return "any node of the cluster"
    return node_id


def verb(kind: str) -> str:
    return EDGE_VERBS.get(kind, kind)


def step_sentence(step: Any, attack: Any = None) -> str:
    """"Deployment/web/frontend can break out to node of Deployment/web/frontend: container "app" is privileged"."""
    text = f"{node_label(step.source, attack)} {verb(step.kind)} {node_label(step.target, attack)}"
    return f"{text}: {step.why}" if step.why else text


def entry_sentence(path: Any, attack: Any = None) -> str:
    """The first stop of a path: its entry point and why it is reachable from outside the cluster."""
    why = ""
    if attack is not None:
        node = attack.analysis.graph.nodes.get(path.source)
        why = node.entry_why if node is not None else ""
    label = node_label(path.source, attack)
    return f"{label} is an entry point: {why}" if why else f"{label} is an entry point"


def step_location(step: Any) -> Optional[tuple[Any, Location]]:
    """(ResourceRef, Location) of the step's first evidence: the field to change; None without evidence."""
    if not step.evidence:
        return None
    evidence = step.evidence[0]
    return evidence.ref, evidence.location


def chain_text(path: Any, attack: Any = None) -> str:
    """The steps in one line, each edge named by its kind: `A -exposes-> B -escapes-to-node-> C`."""
    parts = [node_label(path.source, attack)]
    parts += [f"-{step.kind}-> {node_label(step.target, attack)}" for step in path.steps]
    return " ".join(parts)
