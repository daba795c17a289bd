"""`.kaudit.yaml`: found upward from the working directory (or given with --config), validated."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

from kaudit.errors import KauditError
from kaudit.model import Severity
from kaudit.paths import schema_path
from kaudit.ruleset import Rule, RuleFileError, read_rule_document
from kaudit.suppress import Exclusion
from kaudit.value import field, replace, value

if TYPE_CHECKING:
    from pathlib import Path

CONFIG_NAMES = (".kaudit.yaml", ".kaudit.yml")


@value
class RuleSettings:
    """The config's settings for one rule: enabled, severity, params."""

    enabled: Optional[bool] = None  # None: as the rule file says (opt-in rules are off)
    severity: Optional[Severity] = None
    params: Mapping[str, Any] = field(default_factory=dict)


@value
class Config:
    """The config file (.kaudit.yaml) as read, with its defaults."""

    source: Optional[str] = None
    fail_on: Optional[str] = None
    rule_dirs: tuple[str, ...] = ()
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    exclusions: tuple[Exclusion, ...] = ()
    annotation_exemptions: bool = True
    baseline: Optional[str] = None
    image_signatures: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    # `accept-gaps`: cluster resource (as the report names it, e.g. "secrets") -> why its gap is accepted
    accepted_gaps: Mapping[str, str] = field(default_factory=dict)
    # `pod-security-version`: the version pods are judged at when their namespace pins none
    pod_security_version: Optional[str] = None


def discover(start: str) -> Optional[str]:
    """The config file in `start` or the nearest folder above it that has one (os.path, not
    pathlib: a pre-commit run in a repository without a config imports nothing more)."""
    directory = start
    while True:
        for name in CONFIG_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load_config(explicit: Optional[str], cwd: Optional[Path] = None) -> Config:
    found = explicit
    if found is None:
        found = discover(os.path.realpath(os.fspath(cwd) if cwd is not None else os.getcwd()))
        if found is None:
            return Config()
    elif not os.path.isfile(found):
        raise KauditError(f"{explicit}: config file not found")
    from pathlib import Path

    path = Path(found)
    try:
        document = read_rule_document(path)  # one YAML mapping, with positions for error lines
    except RuleFileError as error:
        raise KauditError(error.problems[0].replace("a rule", "a config")) from None
    data = document.data
    from kaudit.jsonschema_errors import schema_problems  # only when there is a config to check

    schema = json.loads(schema_path("config.schema.json").read_text(encoding="utf-8"))
    problems = schema_problems(schema, data, str(path))
    if problems:
        raise KauditError("invalid config: " + "; ".join(problems))
    base = path.parent
    rules = {
        rule_id: RuleSettings(
            enabled=settings.get("enabled"),
            severity=Severity.parse(settings["severity"]) if "severity" in settings else None,
            params=settings.get("params") or {},
        )
        for rule_id, settings in (data.get("rules") or {}).items()
    }
    return Config(
        source=str(path),
        fail_on=data.get("fail-on"),
        rule_dirs=tuple(str(base / d) for d in data.get("rule-dirs") or ()),
        rules=rules,
        exclusions=tuple(Exclusion.parse(entry, str(base.resolve())) for entry in data.get("exclude") or ()),
        annotation_exemptions=not data.get("disallow-annotation-exemptions", False),
        baseline=str(base / data["baseline"]) if data.get("baseline") else None,
        image_signatures=_image_signatures(data.get("image-signatures") or {}, base),
        raw=data,
        accepted_gaps={str(entry["resource"]): str(entry["reason"]) for entry in data.get("accept-gaps") or ()},
        pod_security_version=data.get("pod-security-version"),
    )


def _image_signatures(settings: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Paths in `image-signatures` are relative to the config file."""
    resolved = dict(settings)
    resolved["keys"] = [{**key, "file": str(base / key["file"])} for key in settings.get("keys", [])]
    if settings.get("ca-file"):
        resolved["ca-file"] = str(base / settings["ca-file"])
    return resolved


def apply_rule_settings(rules: Sequence[Rule], config: Config, selected: Iterable[str] = ()) -> list[Rule]:
    """Disable, re-grade and re-parameterise rules as the config says; unknown ids are errors.
    An opt-in rule (`enabled: false` in its file) is kept only when the config enables it or
    `selected` (--rule) names it; a rule the config disables stays off whatever --rule says."""
    known = {rule.id for rule in rules}
    unknown = sorted(set(config.rules) - known)
    if unknown:
        raise KauditError(f"{config.source}: rules.{unknown[0]}: no rule with this id")
    wanted = set(selected)
    result = []
    for rule in rules:
        settings = config.rules.get(rule.id)
        enabled = settings.enabled if settings is not None and settings.enabled is not None else None
        if enabled is False or (enabled is None and not rule.enabled and rule.id not in wanted):
            continue
        if settings is None:
            result.append(rule)
            continue
        if settings.severity is not None:
            rule = replace(rule, severity=settings.severity)
        if settings.params:
            rule = _with_checked_params(rule, settings.params, config)
        result.append(rule)
    return result


def _with_checked_params(rule: Rule, params: Mapping[str, Any], config: Config) -> Rule:
    from kaudit.checks import TEMPLATES
    from kaudit.jsonschema_errors import schema_problems

    merged = {**rule.params, **params}
    source = config.source or "config"
    problems = schema_problems(TEMPLATES[rule.template].params_schema, merged, source, config.raw,
                               ("rules", rule.id, "params"))
    if problems:
        raise KauditError("invalid config: " + "; ".join(problems))
    try:
        return rule.with_params(params)
    except RuleFileError as error:
        raise KauditError(f"{source}: rules.{rule.id}.params: {error}") from None
