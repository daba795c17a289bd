"""GitHub code scanning's ingestion rules for SARIF, as a checker for tests.

The OASIS schema accepts files GitHub rejects (a result with only a logical location, a run of 30,000
results), so the writer is also held to what GitHub documents:

- "SARIF support for code scanning" (docs.github.com/en/code-security/code-scanning/
  integrating-with-code-scanning/sarif-support-for-code-scanning): `version` 2.1.0, `tool.driver.name`,
  a `ruleId` per result, `message.text`, at least one location with
  `physicalLocation.artifactLocation.uri` and `region.startLine`, `properties.security-severity` a
  number from 0.0 to 10.0 written as a string, `partialFingerprints` as strings.
- "SARIF results exceed one or more limits" (…/troubleshooting-sarif-uploads/results-exceed-limit): the
  hard limits below; a file over any of them is rejected whole.
- "SARIF file is too large" (…/troubleshooting-sarif-uploads/file-too-large): 10 MB, gzip-compressed.
- Several runs of one tool and category in one upload are refused (GitHub changelog, 2025-07-21).
- The rules GitHub's validator applies (Microsoft SARIF SDK, "GitHub ingestion rules", GH1001-GH1007):
  a location's uri is a relative reference or a `file:` URI; relative ones are read from the repository
  root. `locationFromSarifResult: expected at least one location` / `expected artifact location` are the
  upload errors for results without one.
"""
from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_RUNS = 20
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_EXTENSIONS_PER_RUN = 100
MAX_LOCATIONS_PER_RESULT = 1_000
MAX_THREAD_FLOW_LOCATIONS_PER_RESULT = 10_000
MAX_TAGS_PER_RULE = 20
MAX_GZIP_BYTES = 10 * 1024 * 1024
LEVELS = {"none", "note", "warning", "error"}


def github_problems(log: Any, *, repository_relative: bool = True) -> list[str]:
    """Every reason GitHub would reject `log` or misplace its alerts; empty when it would take it.

    `repository_relative`: also require every result's uri to be a relative path inside the repository
    (no scheme, no leading '/', no '..'), which is what a scan of a checkout must produce. A `file:` URI
    is accepted by GitHub only when it lies under the checkout the upload names."""
    problems: list[str] = []
    if not isinstance(log, dict) or log.get("version") != "2.1.0":
        return ["log: version must be \"2.1.0\""]
    runs = log.get("runs")
    if not isinstance(runs, list) or not runs:
        return ["log: runs must be a non-empty array"]
    if len(runs) > MAX_RUNS:
        problems.append(f"log: {len(runs)} runs > {MAX_RUNS}")
    for r, run in enumerate(runs):
        problems += _run_problems(f"runs[{r}]", run, repository_relative)
    # since July 2025 one upload may not hold two runs of one tool and category (changelog 2025-07-21,
    # "code scanning will stop combining multiple SARIF runs uploaded in the same SARIF file")
    categories = [(run.get("tool", {}).get("driver", {}).get("name"), run.get("automationDetails", {}).get("id"))
                  for run in runs]
    if len(set(categories)) < len(categories):
        problems.append("log: several runs of one tool and category")
    size = len(gzip.compress(json.dumps(log).encode("utf-8")))
    if size > MAX_GZIP_BYTES:
        problems.append(f"log: {size} bytes gzipped > {MAX_GZIP_BYTES}")
    return problems


def _run_problems(where: str, run: dict[str, Any], repository_relative: bool) -> list[str]:
    problems: list[str] = []
    driver = run.get("tool", {}).get("driver", {})
    if not isinstance(driver.get("name"), str) or not driver["name"]:
        problems.append(f"{where}.tool.driver.name: missing")
    rules = driver.get("rules", [])
    if len(rules) > MAX_RULES_PER_RUN:
        problems.append(f"{where}: {len(rules)} rules > {MAX_RULES_PER_RUN}")
    extensions = run.get("tool", {}).get("extensions", [])
    if len(extensions) > MAX_EXTENSIONS_PER_RUN:
        problems.append(f"{where}: {len(extensions)} tool extensions > {MAX_EXTENSIONS_PER_RUN}")
    for i, rule in enumerate(rules):
        problems += _rule_problems(f"{where}.tool.driver.rules[{i}]", rule)
    bases = run.get("originalUriBaseIds", {})
    for name, base in bases.items():
        uri = base.get("uri", "")
        # SARIF 2.1.0 §3.14.14: a base is an absolute URI ending in '/' (or relative to another base)
        if "uriBaseId" not in base and not (urlsplit(uri).scheme and uri.endswith("/")):
            problems.append(f"{where}.originalUriBaseIds.{name}: {uri!r} is not an absolute URI ending in '/'")
    results = run.get("results", [])
    if len(results) > MAX_RESULTS_PER_RUN:
        problems.append(f"{where}: {len(results)} results > {MAX_RESULTS_PER_RUN}")
    rule_ids = {rule.get("id") for rule in rules}
    for i, result in enumerate(results):
        problems += _result_problems(f"{where}.results[{i}]", result, rule_ids, bases, repository_relative)
    return problems


def _rule_problems(where: str, rule: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not rule.get("id"):
        problems.append(f"{where}.id: missing")
    properties = rule.get("properties", {})
    tags = properties.get("tags", [])
    if len(tags) > MAX_TAGS_PER_RULE:
        problems.append(f"{where}: {len(tags)} tags > {MAX_TAGS_PER_RULE}")
    if "security-severity" in properties:
        score = properties["security-severity"]
        try:
            valid = isinstance(score, str) and 0.0 <= float(score) <= 10.0
        except ValueError:
            valid = False
        if not valid:
            problems.append(f"{where}: security-severity {score!r} is not a string number from 0.0 to 10.0")
    help_ = rule.get("help")
    if help_ is not None and not help_.get("text"):
        problems.append(f"{where}.help.text: missing (markdown alone is not enough)")
    return problems


def _result_problems(where: str, result: dict[str, Any], rule_ids: set[Any], bases: dict[str, Any],
                     repository_relative: bool) -> list[str]:
    problems: list[str] = []
    rule_id = result.get("ruleId") or result.get("rule", {}).get("id")
    if not rule_id:
        problems.append(f"{where}.ruleId: missing")
    elif rule_ids and rule_id not in rule_ids:
        problems.append(f"{where}.ruleId: {rule_id!r} is not a rule of the driver")
    if result.get("level", "warning") not in LEVELS:
        problems.append(f"{where}.level: {result['level']!r}")
    if not isinstance(result.get("message", {}).get("text"), str) or not result["message"]["text"]:
        problems.append(f"{where}.message.text: missing")
    fingerprints = result.get("partialFingerprints", {})
    if not all(isinstance(v, str) for v in fingerprints.values()):
        problems.append(f"{where}.partialFingerprints: values must be strings")
    locations = result.get("locations") or []
    if not locations:
        problems.append(f"{where}: expected at least one location")
    if len(locations) > MAX_LOCATIONS_PER_RESULT:
        problems.append(f"{where}: {len(locations)} locations > {MAX_LOCATIONS_PER_RESULT}")
    for j, location in enumerate(locations):
        problems += _location_problems(f"{where}.locations[{j}]", location, bases, repository_relative)
    flows = sum(len(thread.get("locations", [])) for flow in result.get("codeFlows", [])
                for thread in flow.get("threadFlows", []))
    if flows > MAX_THREAD_FLOW_LOCATIONS_PER_RESULT:
        problems.append(f"{where}: {flows} thread flow locations > {MAX_THREAD_FLOW_LOCATIONS_PER_RESULT}")
    # each step of a code flow is shown at its own place ("Show paths"): it needs a file and line too,
    # and `index` would point into run.threadFlowLocations, which must then exist
    for c, flow in enumerate(result.get("codeFlows", [])):
        for t, thread in enumerate(flow.get("threadFlows", [])):
            if not thread.get("locations"):
                problems.append(f"{where}.codeFlows[{c}].threadFlows[{t}]: no locations")
            for k, step in enumerate(thread.get("locations", [])):
                at = f"{where}.codeFlows[{c}].threadFlows[{t}].locations[{k}]"
                if "index" in step:
                    problems.append(f"{at}: index without run.threadFlowLocations")
                if not isinstance(step.get("location", {}).get("message", {}).get("text"), str):
                    problems.append(f"{at}: location.message.text missing")
                problems += _location_problems(f"{at}.location", step.get("location", {}), bases, repository_relative)
    return problems


def _location_problems(where: str, location: dict[str, Any], bases: dict[str, Any],
                       repository_relative: bool) -> list[str]:
    physical = location.get("physicalLocation")
    if physical is None:
        return [f"{where}: expected a physical location (a logical location alone is rejected)"]
    artifact = physical.get("artifactLocation", {})
    uri = artifact.get("uri")
    problems: list[str] = []
    if not isinstance(uri, str) or not uri:
        return [f"{where}: expected artifact location uri"]
    scheme = urlsplit(uri).scheme
    if scheme and scheme != "file":
        problems.append(f"{where}: uri {uri!r} is neither a relative reference nor a file: URI")
    if scheme and "uriBaseId" in artifact:
        problems.append(f"{where}: uri {uri!r} is absolute but has a uriBaseId")
    if "uriBaseId" in artifact and artifact["uriBaseId"] not in bases:
        problems.append(f"{where}: uriBaseId {artifact['uriBaseId']!r} not in run.originalUriBaseIds")
    if repository_relative:
        # decoded per segment: URL parsers read "%2e%2e" as "..", and an encoded "/" stays inside its segment
        segments = [unquote(segment) for segment in uri.split("/")]
        if scheme or uri.startswith("/") or ".." in segments or "." in segments or "" in segments:
            problems.append(f"{where}: uri {uri!r} is not a path inside the repository")
    start = physical.get("region", {}).get("startLine")
    if not isinstance(start, int) or start < 1:
        problems.append(f"{where}: region.startLine missing")
    return problems
