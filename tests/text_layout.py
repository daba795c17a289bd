"""The text report read back (kaudit/writers/text.py), for tests that look for a finding in it:

    HIGH      Pod team/web                                   <- heading: severity, kind, object
      k8s/web.yaml:8:7  run-as-root  container "app" may…   <- a finding: location, rule, message
          also: run-as-non-root-not-enforced                 <- -v only: the rules joined to it
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADING = re.compile(r"^(?P<severity>CRITICAL|HIGH|MEDIUM|LOW|INFO) +(?P<kind>\S+) (?P<name>.+?)(?:  rendered from .+)?$")
# a location (a path may hold spaces) is optional: cluster findings have none
LINE = re.compile(r"^  (?:(?P<where>\S.*?:\d+(?::\d+)?) +)?(?P<rule>[a-z0-9][a-z0-9-]*)  +(?P<message>\S.*)$")
LONE = re.compile(r"^  (?P<where>\S.*?:\d+(?::\d+)?)  +(?P<rule>[a-z0-9][a-z0-9-]*)$")  # a long path: message beneath


@dataclass
class Shown:
    severity: str  # "high"
    ref: str  # as ResourceRef.describe(): "Pod/team/web", "ClusterRole/admin"
    where: str  # "k8s/web.yaml:8:7", "" on a cluster
    rule: str
    message: str  # as shown: cut to the line, without a leading `Kind "name"`
    line: str
    also: list[str] = field(default_factory=list)  # joined rules (-v)


def findings(text: str) -> list[Shown]:
    found: list[Shown] = []
    severity = ref = None
    last = None  # the finding whose -v details follow
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            severity, ref = heading["severity"].lower(), f"{heading['kind']}/{heading['name']}"
            continue
        if not line.startswith("  "):  # a blank line, a warning, the verdict: no finding follows
            severity = ref = None
            continue
        if line.startswith("      "):
            if line.startswith("      also: ") and last is not None:
                last.also = [part.split(" ")[0] for part in line.strip()[len("also: "):].split(", ")]
            continue
        match = LINE.match(line) or LONE.match(line)
        last = None
        if match and severity is not None and ref is not None:
            last = Shown(severity, ref, match["where"] or "", match["rule"], match.groupdict().get("message") or "",
                         line)
            found.append(last)
    return found


def finding(text: str, rule: str, ref: str) -> list[Shown]:
    """The findings of `rule` on `ref`, or a finding on `ref` that `rule` is joined to (-v)."""
    return [shown for shown in findings(text) if shown.ref == ref and (shown.rule == rule or rule in shown.also)]
