"""`kaudit rules new ID --template T`: a rule file that validates as written, to edit from.

Params and fixtures that really fire (and really pass) for a template come from the first built-in
rule that uses it, so every skeleton is proved by the built-in fixtures; the `schema` template,
the one most custom rules use, gets a small example of its own.
"""
from __future__ import annotations

import difflib
import json
import textwrap
from typing import Any, Mapping

import yaml

from kaudit.checks import TEMPLATES
from kaudit.errors import KauditError
from kaudit.ruleset import load_builtin_rules
from kaudit.sources.goyaml import resolve_plain

TODO = "TODO"

# The schema template's own example: every container sets a securityContext.
_SCHEMA_EXAMPLE: dict[str, Any] = {
    "target": "container",
    "kinds": ["workloads"],
    "params": {
        "view": "container",
        "schema": {"type": "object", "required": ["securityContext"]},
    },
    "message": '{containerKind} "{container}" of {kind} {name}: TODO say what is wrong ({value})',
    "tests": {
        "fail": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-context"},
                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]}}],
        "pass": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "with-context"},
                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                           "securityContext": {"runAsNonRoot": True}}]}}],
    },
}


def unknown_template_message(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(TEMPLATES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown template {name!r}{hint} (templates: {', '.join(sorted(TEMPLATES))})"


def skeleton(rule_id: str, template_key: str) -> str:
    """The text of a new rule file `rule_id` bound to `template_key`."""
    template = TEMPLATES.get(template_key)
    if template is None:
        raise KauditError(unknown_template_message(template_key))
    example = _example(template_key)
    rule: dict[str, Any] = {
        "id": rule_id,
        "title": f"{TODO}: one line naming the bad pattern",
        "severity": "medium",
        "category": "custom",
        "target": example["target"],
    }
    for key in ("kinds", "container-kinds", "linux-only"):
        if key in example:
            rule[key] = example[key]
    rule["template"] = template_key
    if example.get("params"):
        rule["params"] = example["params"]
    rule["message"] = example["message"]
    rule["docs"] = {
        "what": f"{TODO}: what the rule reports.",
        "why": f"{TODO}: why it is a risk, and why this severity.",
        "example": f"{TODO}: YAML that fires the rule.",
        "fix": f"{TODO}: what to write instead.",
    }
    rule["tests"] = example["tests"]
    header = [
        f"# Rule {rule_id}, template {template_key}: {template.description}",
        "# Edit the TODOs, the params and the fixtures; then: kaudit rules validate DIR",
        "# Format: docs/rule.schema.json; guide: docs/writing-rules.md",
    ]
    described = (template.params_schema.get("properties") or {})
    if described:
        header.append(f"# params of {template_key}:")
        for name, schema in described.items():
            text = f"{name}: {(schema.get('description') or '').strip()}".rstrip()
            header.extend(textwrap.wrap(text, 96, initial_indent="#   ", subsequent_indent="#     "))
    return "\n".join(header) + "\n" + dump(rule)


def _example(template_key: str) -> Mapping[str, Any]:
    if template_key == "schema":
        return _SCHEMA_EXAMPLE
    rules = sorted((r for r in load_builtin_rules() if r.template == template_key), key=lambda r: r.id)
    if not rules:
        raise KauditError(f"template {template_key!r} has no example to start from")
    rule = rules[0]
    example: dict[str, Any] = {"target": rule.target, "message": rule.message, "params": _plain(rule.params)}
    if rule.target != "namespace":
        example["kinds"] = sorted(rule.kinds)
    if rule.target == "container" and len(rule.container_kinds) < 3:
        example["container-kinds"] = [k for k in ("container", "initContainer", "ephemeralContainer")
                                      if k in rule.container_kinds]
    if rule.linux_only:
        example["linux-only"] = True
    tests = rule.tests.get()
    example["tests"] = {key: _plain(tests[key]) for key in ("fail", "pass", "params", "image-facts") if key in tests}
    return example


def _plain(data: Any) -> Any:
    """Plain dicts and lists (the loader's position-keeping subclasses do not dump)."""
    return json.loads(json.dumps(data))


class _Dumper(yaml.SafeDumper):
    pass


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # Quote what kaudit's loader (YAML 1.1, as Kubernetes reads it) would not read back as this
    # text: y, n, 0755, 1e3 ... PyYAML's own resolver leaves some of them plain.
    read_back = resolve_plain(text)
    style = "'" if not isinstance(read_back, str) or read_back != text else None
    if "\n" in text:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100,
                     allow_unicode=True)
