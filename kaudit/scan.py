"""One scan: sources -> inventory -> engine -> report. The CLI calls this and maps the result."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import BinaryIO, Optional, Sequence

from kaudit import __version__, frameworks, suppress
from kaudit.baseline import apply_baseline, load_baseline
from kaudit.checks import TEMPLATES
from kaudit.config import Config, apply_rule_settings, load_config
from kaudit.engine import run
from kaudit.errors import KauditError
from kaudit.inventory import Inventory
from kaudit.model import Report, Severity
from kaudit.ruleset import Rule, combine, load_builtin_rules, load_rule_dirs
from kaudit.sources.manifests import DEFAULT_MAX_FILE_MB, load_manifests

DEFAULT_FAIL_ON = "high"


@dataclass(frozen=True)
class ScanRequest:
    targets: tuple[str, ...]
    rule_dirs: tuple[str, ...] = ()
    fail_on: Optional[str] = None  # None: from config, else DEFAULT_FAIL_ON; "never" disables the gate
    config: Optional[str] = None
    select: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()  # run only rules that check these frameworks' controls
    baseline: Optional[str] = None  # an earlier JSON report: only findings not in it fail the gate
    per_file: bool = False  # skip rules that need the whole inventory (hooks see only changed files)
    max_file_mb: float = DEFAULT_MAX_FILE_MB


def all_rules(rule_dirs: Sequence[str], config: Config) -> list[Rule]:
    """Built-in and custom rules, with the config's enable / severity / params applied."""
    return apply_rule_settings(combine(load_builtin_rules(), load_rule_dirs([*config.rule_dirs, *rule_dirs])), config)


def select_rules(rules: list[Rule], select: Sequence[str] = (), framework_ids: Sequence[str] = ()) -> list[Rule]:
    if framework_ids:
        rules = frameworks.select(rules, framework_ids)
    if select:
        known = {rule.id for rule in rules}
        missing = [rule_id for rule_id in select if rule_id not in known]
        if missing:
            raise KauditError(f"--rule {missing[0]}: no such rule (see `kaudit rules list`)")
        rules = [rule for rule in rules if rule.id in select]
    return rules


def parse_fail_on(text: str) -> Optional[Severity]:
    return None if text == "never" else Severity.parse(text)


def scan_manifests(request: ScanRequest, stdin: Optional[BinaryIO] = None) -> Report:
    if not request.targets:
        raise KauditError("nothing to scan: give files, directories, globs or '-' for stdin")
    config = load_config(request.config)
    fail_on = parse_fail_on(request.fail_on or config.fail_on or DEFAULT_FAIL_ON)
    known = all_rules(request.rule_dirs, config)
    rules = select_rules(known, request.select, request.frameworks)
    if request.per_file:
        rules = [rule for rule in rules if not TEMPLATES[rule.template].cross_object]
    baseline_path = request.baseline or config.baseline
    baseline = load_baseline(baseline_path) if baseline_path else None  # a bad baseline fails before the scan
    loaded = load_manifests(request.targets, max_file_mb=request.max_file_mb, stdin=stdin)
    result = run(rules, Inventory(loaded.resources))
    findings, warnings = suppress.apply(result.findings, loaded.resources, config.exclusions,
                                        config.annotation_exemptions, (rule.id for rule in known))
    loaded.inputs.warnings.extend(warnings)
    if baseline is not None:
        findings = apply_baseline(findings, baseline)
    result.findings = findings
    reported = request.frameworks or tuple(frameworks.FRAMEWORKS)
    return Report(
        tool_version=__version__,
        generated_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        targets=request.targets,
        findings=tuple(result.findings),
        inputs=loaded.inputs,
        rules=tuple(sorted((rule.info() for rule in rules), key=lambda info: info.id)),
        fail_on=fail_on,
        rule_errors=tuple(result.errors),
        frameworks=tuple(frameworks.evaluate(f, rules, result.findings) for f in reported),
        framework_selected=bool(request.frameworks),
    )
