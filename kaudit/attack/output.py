"""`kaudit paths` output: numbered steps with their evidence (text), or the whole graph (JSON) for
other tools. JSON documents itself: `schema` names the format and its version."""
from __future__ import annotations

import json
from typing import Any, Optional, TextIO

from kaudit.attack.model import EDGE_VERBS, AttackAnalysis, AttackReport, Edge, Evidence, GraphNode
from kaudit.model import format_path
from kaudit.writers.text import safe as _safe, wrap

JSON_SCHEMA = "kaudit-attack-graph/1"


WIDTH = 120


def _lines(text: str, indent: str) -> list[str]:
    """Within WIDTH columns, continued under the same indent."""
    return [indent + line for line in wrap(_safe(text), WIDTH - len(indent))]


def evidence_text(evidence: Evidence, shown: tuple[str, ...] = ()) -> str:
    """`file:line:col  path`, the object named when it is none of `shown` (the step's own nodes)."""
    ref = evidence.ref.describe()
    what = format_path(evidence.path) if ref in shown else f"{ref} {format_path(evidence.path)}"
    return _safe(f"{evidence.location.describe()}  {what}")


def step_text(analysis: AttackAnalysis, step: Edge) -> str:
    source, target = analysis.node(step.source), analysis.node(step.target)
    return _safe(f"{source.label} {EDGE_VERBS.get(step.kind, step.kind)} {target.label}")


def write_text(attack: AttackReport, stream: TextIO, top: int = 10) -> None:
    analysis = attack.analysis
    paths = attack.paths
    sources = "entry points" if analysis.sources == "entry" else "entry points and workloads"
    entries = len({p.source for p in paths})
    crowns = len({p.target for p in paths})
    if not paths:
        stream.write(f"No attack path from {sources} to a crown jewel.\n")
    else:
        stream.write(f"{len(paths)} attack path{'s' * (len(paths) != 1)} from {entries} of the {sources} to "
                     f"{crowns} crown jewel{'s' * (crowns != 1)}:\n")
    for number, path in enumerate(paths, 1):
        source = analysis.node(path.source)
        crown = path.target.partition(":")[2]
        stream.write(f"\n{number}. {_safe(source.label)} -> {crown} ({len(path.steps)} steps)\n")
        if source.entry is not None:
            stream.write(f"   entry: {_safe(source.entry_why)}\n          {evidence_text(source.entry, (path.source,))}\n")
        for index, step in enumerate(path.steps, 1):
            lines = _lines(f"{index}. {step_text(analysis, step)}", "   ")
            lines[1:] = ["   " + line for line in lines[1:]]
            if step.why:
                lines += _lines(step.why, "      ")
            lines += ["      " + evidence_text(e, (step.source, step.target)) for e in step.evidence]
            stream.write("".join(line + "\n" for line in lines))
    if attack.choke_points:
        stream.write("\nChoke points (the fixes that cut the most paths):\n")
        for choke in attack.choke_points[:top]:
            lines = _lines(f"cuts {choke.cuts:>3}  {choke.edge.fix}", "  ")
            lines[1:] = ["           " + line.lstrip() for line in lines[1:]]
            if choke.edge.evidence:
                evidence = choke.edge.evidence[0]
                lines.append("           " + evidence_text(evidence, (evidence.ref.describe(),)))
            stream.write("".join(line + "\n" for line in lines))
        if len(attack.choke_points) > top:
            stream.write(f"  ... {len(attack.choke_points) - top} more (-f json lists them all)\n")
    if analysis.graph.assumptions:
        stream.write("\n")
    for assumption in analysis.graph.assumptions:
        stream.write("".join(line + "\n" for line in _lines(f"assumed: {assumption}", "")))


def evidence_dict(evidence: Evidence) -> dict[str, Any]:
    from kaudit.writers.json_report import location_dict

    return {"object": evidence.ref.describe(), "path": format_path(evidence.path), **location_dict(evidence.location)}


def edge_dict(edge: Edge) -> dict[str, Any]:
    return {"kind": edge.kind, "from": edge.source, "to": edge.target, "why": edge.why, "fix": edge.fix,
            "evidence": [evidence_dict(e) for e in edge.evidence]}


def _node_dict(node: GraphNode) -> dict[str, Any]:
    found: dict[str, Any] = {"id": node.id, "kind": node.kind, "label": node.label}
    if node.resource is not None:
        ref = node.resource
        found["resource"] = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name,
                             "namespace": ref.namespace}
    if node.entry is not None:
        found["entry"] = {"why": node.entry_why, "evidence": evidence_dict(node.entry)}
    if node.hidden:
        found["hidden"] = True
    return found


def to_dict(attack: AttackReport, inputs: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    analysis = attack.analysis
    graph = analysis.graph
    return {
        "schema": JSON_SCHEMA,
        "sources": analysis.sources,
        "targets": list(analysis.targets),
        "assumptions": list(graph.assumptions),
        "paths": [{"key": p.key, "source": p.source, "target": p.target, "steps": [edge_dict(s) for s in p.steps]}
                  for p in attack.paths],
        "chokePoints": [{"fix": c.edge.fix, "cuts": c.cuts, "edge": {"kind": c.edge.kind, "from": c.edge.source,
                                                                      "to": c.edge.target},
                         "evidence": [evidence_dict(e) for e in c.edge.evidence], "paths": list(c.paths)}
                        for c in attack.choke_points],
        "nodes": [_node_dict(node) for node in graph.nodes.values()],
        "edges": [edge_dict(edge) for edge in graph.edges],
        **({"inputs": inputs} if inputs is not None else {}),
    }


def write_json(attack: AttackReport, stream: TextIO, inputs: Optional[dict[str, Any]] = None) -> None:
    # dumps, then one write: json.dump streams through the pure-Python encoder (2.8 s vs 1.0 s for a
    # 53 MiB graph, benchmarks/ATTACK_PATHS.md)
    stream.write(json.dumps(to_dict(attack, inputs), indent=2 if stream.isatty() else None))
    stream.write("\n")
