"""`kaudit rules list|show|validate`: typed functions the CLI dispatches to."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, TextIO

from kaudit import frameworks
from kaudit.errors import KauditError
from kaudit.fixtures import fixture_problems
from kaudit.ruleset import (
    Rule, RuleFileError, combine, custom_rule_files, load_builtin_rules, load_rule_dirs, read_rule_text,
    relation_problems, rule_from_document, rule_problems, runnable_copy,
)
from kaudit.sources.yamldoc import deepest_position


OPT_IN = "[off: opt-in]"


def _all_rules(rule_dirs: Sequence[str]) -> list[Rule]:
    return combine(load_builtin_rules(), load_rule_dirs(rule_dirs))


def list_rules(rule_dirs: Sequence[str], out: TextIO) -> None:
    rules = sorted(_all_rules(rule_dirs), key=lambda r: (r.category, -r.severity, r.id))
    width = max(len(r.id) for r in rules)
    for rule in rules:
        off = "" if rule.enabled else f"  {OPT_IN}"
        out.write(f"{rule.id:<{width}}  {rule.severity.label:<8}  {rule.category:<20}  {rule.title}{off}\n")
    opt_in = sum(not rule.enabled for rule in rules)
    out.write(f"{len(rules)} rules" + (f" ({opt_in} opt-in, off unless enabled)" if opt_in else "") + "\n")


def list_framework(framework_id: str, rule_dirs: Sequence[str], out: TextIO) -> None:
    (framework_id,), forced = frameworks.split_versions([framework_id])
    framework = frameworks.get(framework_id)
    rules = _all_rules(rule_dirs)
    out.write(f"{framework.title}\n")
    if framework_id in frameworks.PSS_FRAMEWORKS:
        out.write(pss_version_note(forced, rules))
    covered = 0
    for tag, control in frameworks.effective_controls(framework_id):
        checking = sorted(r.id + ("" if r.enabled else f" {OPT_IN}") for r in rules
                          if control.id in r.frameworks.get(tag, ()))
        covered += bool(checking)
        level = f" [{tag}]" if tag != framework_id else ""
        out.write(f"  {control.id:<26} {control.title}{level}\n")
        out.write(f"  {'':<26}   -> {', '.join(checking) if checking else 'not covered: ' + (control.gap or 'no rule')}\n")
    total = len(frameworks.effective_controls(framework_id))
    out.write(f"{covered} of {total} controls checked by kaudit rules\n")


def pss_version_note(forced: Optional[str], rules: Sequence[Rule]) -> str:
    """Which version judges pods, and at a forced version, which admission checks do not exist yet."""
    from kaudit.checks.pss import CHECKS
    from kaudit.pod_security import NEWEST, parse_version, text

    if forced is None:
        return (f"  judged at each pod's namespace enforce-version label, else .kaudit.yaml pod-security-version, "
                f"else latest ({text(NEWEST)}); NAME@v1.<n> forces one version\n")
    version = min(parse_version(forced) or NEWEST, NEWEST)
    absent = sorted(r.id for r in rules if r.template == "pss" and CHECKS[r.params["check"]].at(version) is None
                    and CHECKS[r.params["check"]].overrides is None)
    line = f"  judged at {text(version)} for every pod\n"
    return line + (f"  no admission check yet at {text(version)}: {', '.join(absent)} (their controls pass)\n" if absent else "")


def pss_versions_line(rule: Rule) -> str:
    """A pss rule's admission check by version (MinimumVersion of each variant)."""
    from kaudit.checks.pss import CHECKS
    from kaudit.pod_security import text

    check = CHECKS[rule.params["check"]]
    line = (f"Pod Security versions: admission check {rule.params['check']}, variants from "
            f"{', '.join(text(minimum) for minimum, _ in check.variants)}")
    if check.overrides and check.since > (1, 0):
        line += f"; before {text(check.since)} the restricted level runs {check.overrides} instead"
    elif check.since > (1, 0):
        line += f"; no check before {text(check.since)}"
    return line + ". Judged at the pod's namespace enforce-version unless --framework NAME@VERSION forces one"


def show_rule(rule_id: str, rule_dirs: Sequence[str], out: TextIO) -> None:
    rules = {r.id: r for r in _all_rules(rule_dirs)}
    rule = rules.get(rule_id)
    if rule is None:
        raise KauditError(f"no rule {rule_id!r} (see `kaudit rules list`)")
    out.write(f"{rule.id}: {rule.title}\n")
    out.write(f"severity: {rule.severity.label}   category: {rule.category}   target: {rule.target}\n")
    applies = "every namespace (declared or implied)" if rule.target == "namespace" else ", ".join(sorted(rule.kinds))
    out.write(f"applies to: {applies}\n")
    out.write(f"template: {rule.template}" + (f" (custom rule: {rule.source})" if not rule.builtin else "") + "\n")
    if not rule.enabled:
        out.write(f"opt-in: off unless enabled (.kaudit.yaml `rules: {{{rule.id}: {{enabled: true}}}}` or --rule {rule.id})\n")
    if rule.frameworks:
        out.write("framework controls:\n")
        for framework_id in frameworks.FRAMEWORKS:
            for control in frameworks.rule_controls(rule, framework_id):
                if control.id in rule.frameworks.get(framework_id, ()):
                    out.write(f"  {framework_id} {control.id}: {control.title}\n")
    if rule.template == "pss":
        out.write(pss_versions_line(rule) + "\n")
    from kaudit.docs import relation_lines

    for line in relation_lines(rule):
        out.write(f"relation: {line.replace('`', '')}\n")
    for heading, key in (("What it does", "what"), ("Why is this bad?", "why"), ("Example", "example"),
                         ("Use instead", "fix")):
        out.write(f"\n{heading}\n{textwrap.indent(rule.docs[key].rstrip(), '  ')}\n")
    if rule.params:
        out.write("\nParameters\n")
        out.writelines(f"  {key}: {json.dumps(value)}\n" for key, value in rule.params.items())
    if rule.references or rule.talks:
        out.write("\nReferences\n")
        out.writelines(f"  talk: {t['title']} {t['url']}\n" for t in rule.talks)
        out.writelines(f"  {ref}\n" for ref in rule.references)


def validate_rules(directory: str, out: TextIO) -> int:
    """Check every rule file in `directory` and report every problem of each in one pass (schema,
    template and params, framework ids, relations, id clashes, its own fixtures); 0 when all are
    valid, 1 otherwise."""
    files = custom_rule_files(directory)
    builtin = {r.id: r for r in load_builtin_rules()}
    checked = [_check_rule_file(path) for path in files]
    known = {**builtin, **{rule.id: rule for _, rule, _, _ in checked if rule is not None}}
    seen: dict[str, str] = {}
    failures = 0
    for path, rule, data, problems in checked:
        if rule is not None and data is not None:
            clash = (builtin[rule.id].source if rule.id in builtin else None) or seen.get(rule.id)
            if clash and Path(clash).resolve() != path.resolve():
                problems.append(_at(path, data, ("id",), f"rule id {rule.id!r} is already defined in {clash}"))
            seen[rule.id] = str(path)
            problems.extend(_at(path, data, ("relations",), p.split(": ", 1)[1])
                            for p in relation_problems([rule], known))
        if problems:
            failures += 1
            out.writelines(f"{p}\n" for p in problems)
        else:
            out.write(f"{path}: ok\n")
    out.write(f"{len(files)} rule files, {failures} invalid\n")
    return 1 if failures else 0


def _check_rule_file(path: Path) -> tuple[Path, Optional[Rule], Optional[Mapping[str, Any]], list[str]]:
    """The file's rule (None when invalid), its document and every problem found in it."""
    try:
        text, document = read_rule_text(path)
    except RuleFileError as error:
        return path, None, None, error.problems
    data = document.data
    found = rule_problems(data, str(path), text)
    problems = [problem for _, problem in found]
    runnable = runnable_copy(data, {key for key, _ in found})
    if runnable is None:
        return path, None, data, problems
    try:
        rule = rule_from_document(path, runnable, builtin=False)
    except RuleFileError as error:  # found above already, in other words
        return path, None, data, problems or error.problems
    try:
        problems.extend(fixture_problems(rule))
    except RuleFileError as error:  # tests.params the template cannot bind (a bad pattern)
        problems.extend(error.problems)
    return path, (rule if not found else None), data, problems


def _at(path: Path, data: Mapping[str, Any], key: tuple[str, ...], message: str) -> str:
    line, column = deepest_position(data, key) or (1, 1)
    return f"{path}:{line}:{column}: {message}"
