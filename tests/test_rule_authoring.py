"""Writing rules: the published rule schema, `rules validate` in one pass, `rules new`, and the
config's rule-dirs in `rules list/show`."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from kaudit import rule_schema
from kaudit.checks import TEMPLATES
from kaudit.paths import schema_path
from tests.conftest import REPO, CliResult

Kaudit = Callable[..., CliResult]
Write = Callable[..., Path]

VALID_RULE = """\
id: image-from-elsewhere
title: Image from outside registry.example
severity: medium
category: custom
target: container
template: schema
params:
  schema: {properties: {image: {type: string, pattern: '^registry\\.example/'}}}
message: '{containerKind} "{container}" runs {value}'
docs: {what: a, why: b, example: c, fix: d}
tests:
  fail:
    - {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: docker.io/x}]}}
  pass:
    - {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: registry.example/x}]}}
"""


def _properties(schema: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, schema) declared under a `properties` keyword, anywhere in `schema`."""
    if isinstance(schema, dict):
        for name, value in (schema.get("properties") or {}).items():
            yield f"{where}.{name}", value
        for key, value in schema.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _properties(value, f"{where}[{index}]")


def test_the_published_rule_schema_is_current_in_the_package_and_in_docs() -> None:
    expected = rule_schema.text()
    assert schema_path("rule.schema.json").read_text(encoding="utf-8") == expected, \
        "run `kaudit rules schema -o kaudit/schemas/rule.schema.json`"
    assert (REPO / "docs" / "rule.schema.json").read_text(encoding="utf-8") == expected, \
        "run `kaudit rules schema -o docs/rule.schema.json`"


def test_every_property_and_every_template_param_is_described() -> None:
    schema = rule_schema.build()
    meta = schema["$defs"]["checkSchema"]  # JSON Schema's own keywords, described by the spec
    declared = {k: v for k, v in schema.items() if k not in ("$defs", "allOf")}  # allOf: the if/then per template
    undescribed = [path for path, value in _properties(declared) if "description" not in value]
    for key in TEMPLATES:
        undescribed += [f"params-{key}{path}" for path, value in _properties(schema["$defs"][f"params-{key}"])
                        if "description" not in value and value is not meta]
    assert not undescribed
    for name in ("view", "target", "kinds", "params", "tests", "relations", "frameworks", "docs"):
        assert name in json.dumps(schema["properties"]), name
    assert "Default by target" in schema["$defs"]["params-schema"]["properties"]["view"]["description"]
    assert set(TEMPLATES) == {branch["if"]["properties"]["template"]["const"] for branch in schema["allOf"]}


def test_the_schema_validates_every_built_in_rule_in_an_editor_too() -> None:
    # A YAML language server uses plain jsonschema on the published file: it must accept the rules.
    import jsonschema

    from kaudit.paths import builtin_rules_dir
    from kaudit.ruleset import read_rule_document, rule_files

    validator = jsonschema.Draft202012Validator(json.loads(schema_path("rule.schema.json").read_text()))
    for path in rule_files(builtin_rules_dir()):
        errors = list(validator.iter_errors(read_rule_document(path).data))
        assert not errors, (path, errors[0].message)


def _validate(kaudit: Kaudit, write: Write, tmp_path: Path, text: str) -> tuple[CliResult, Path]:
    path = write("policies/rule.yaml", text)
    return kaudit("rules", "validate", tmp_path / "policies"), path


def test_validate_reports_every_problem_of_a_file_in_one_pass_at_line_and_column(
        kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = (VALID_RULE.replace("severity: medium", "severity: hihg")
            .replace("params:\n  schema:", "params:\n  vew: container\n  schema:")
            .replace("docs: {what: a, why: b, example: c, fix: d}", "docs:\n  what: a\n  why: y\n  example: 0755\n  fix: d")
            .replace("tests:", "referencess: []\ntests:"))
    result, path = _validate(kaudit, write, tmp_path, text)
    assert result.code == 1
    problems = [line for line in result.out.splitlines() if line.startswith(str(path))]
    assert problems == [
        f"{path}:3:1: severity: 'hihg' is not one of ['critical', 'high', 'medium', 'low', 'info']; did you mean 'high'?",
        f"{path}:8:3: params.vew: unknown key 'vew' (template schema); did you mean 'view'?",
        f"{path}:13:3: docs.why: y was read as the boolean true (YAML 1.1); quote it: 'y'",
        f"{path}:14:3: docs.example: 0755 was read as the number 493 (YAML 1.1); quote it: '0755'",
        f"{path}:16:1: referencess: unknown key 'referencess'; did you mean 'references'?",
    ]
    assert "1 rule files, 1 invalid" in result.out


@pytest.mark.parametrize("written, read_as", [
    ("y", "the boolean true"), ("n", "the boolean false"), ("yes", "the boolean true"), ("no", "the boolean false"),
    ("on", "the boolean true"), ("off", "the boolean false"), ("~", "null"), ("null", "null"),
    ("1e3", "the number 1000.0"), ("0755", "the number 493"),
])
def test_validate_explains_yaml_1_1_surprises(kaudit: Kaudit, write: Write, tmp_path: Path, written: str,
                                              read_as: str) -> None:
    text = VALID_RULE.replace("title: Image from outside registry.example", f"title: {written}  # a comment")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert result.code == 1
    assert f"{path}:2:1: title: {written} was read as {read_as} (YAML 1.1); quote it: '{written}'" in result.out
    quoted = text.replace(f"title: {written}", f"title: '{written}'")
    assert _validate(kaudit, write, tmp_path, quoted)[0].code == 0


def test_yaml_1_1_surprises_in_flow_mappings_and_lists(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("why: b", "why: off").replace("title: Image", "references: [on]\ntitle: Image")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:11:17: docs.why: off was read as the boolean false (YAML 1.1); quote it: 'off'" in result.out
    assert f"{path}:2:14: references[0]: on was read as the boolean true (YAML 1.1); quote it: 'on'" in result.out


def test_a_value_on_the_line_after_its_key_and_an_empty_value(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("docs: {what: a, why: b, example: c, fix: d}", "docs:\n  what:\n    off\n  why:\n  example: c\n  fix: d")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:11:3: docs.what: expected text, but the value was read as the boolean false (YAML 1.1); " \
           "quote it" in result.out
    assert f"{path}:13:3: docs.why: the value is empty, read as null" in result.out


def test_an_unsupported_schema_keyword_names_the_keyword_not_any_of(kaudit: Kaudit, write: Write,
                                                                    tmp_path: Path) -> None:
    text = VALID_RULE.replace("{type: string, pattern:", "{type: string, format: uri, pattern:")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert result.code == 1 and "not valid under any" not in result.out
    assert f"{path}:8:47: params.schema.properties.image.format: unknown key 'format' (template schema)" in result.out


def test_a_wrong_param_type_names_the_template_and_the_param(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("template: schema\nparams:\n  schema: {properties: {image: {type: string, pattern: "
                              "'^registry\\.example/'}}}",
                              "template: container-resource\nparams:\n  resource: cpu\n  field: limit\n  extra: 1")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:9:3: params.field: 'limit' is not one of ['requests', 'limits']; did you mean 'limits'? " \
           "(template container-resource)" in result.out
    assert f"{path}:10:3: params.extra: unknown key 'extra' (template container-resource)" in result.out


def test_unknown_template_and_unsupported_target_and_missing_params(kaudit: Kaudit, write: Write,
                                                                    tmp_path: Path) -> None:
    result, path = _validate(kaudit, write, tmp_path, VALID_RULE.replace("template: schema", "template: shema"))
    assert f"{path}:6:1: template: unknown template 'shema'; did you mean 'schema'?" in result.out
    text = VALID_RULE.replace("target: container", "target: namespace")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:5:1: target: template 'schema' does not support target 'namespace' " \
           "(it supports: container, object, pod)" in result.out
    text = re.sub(r"params:\n  schema: .*\n", "", VALID_RULE)
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:1:1: params: template 'schema' needs params (required: schema)" in result.out


def test_a_view_the_target_lacks_is_placed_at_params(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("target: container", "target: object").replace("params:\n", "params:\n  view: pod\n")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:7:1: params: view 'pod' is not available for target 'object' (template schema)" in result.out


def test_fixtures_still_run_when_only_the_docs_are_wrong(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("why: b", "why: y").replace("image: docker.io/x", "image: registry.example/y")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:10:17: docs.why: y was read as the boolean true" in result.out
    assert f"{path}:13:7: tests.fail[0]: expected rule image-from-elsewhere to fire, it did not " \
           "(template schema, view container)" in result.out


def test_a_missing_tests_section_says_what_it_is(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    result, path = _validate(kaudit, write, tmp_path, VALID_RULE.split("tests:")[0])
    assert f"{path}:1:1: tests: 'tests' is a required property (the rule's own fixtures: tests: " \
           "{fail: [objects it must report], pass: [look-alikes it must not]}" in result.out


def test_a_container_rule_sees_its_container_by_default(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    # The view a schema rule names none of is the part its target is about: a container rule used
    # to see the whole object (a Deployment has no `image` at its top), so it never fired.
    result, path = _validate(kaudit, write, tmp_path, VALID_RULE)
    assert result.code == 0, result.out
    deployment = write("deploy.yaml", """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            spec:
              initContainers: [{name: init, image: registry.example/init}]
              containers: [{name: app, image: docker.io/app}]
        """)
    scanned = kaudit("scan", deployment, "--rules", tmp_path / "policies", "--rule", "image-from-elsewhere",
                     "-f", "json")
    [finding] = scanned.json()["findings"]
    assert finding["path"] == "spec.template.spec.containers[0].image"
    assert finding["message"] == 'container "app" runs docker.io/app'


def test_rules_new_writes_a_valid_skeleton_for_every_template(kaudit: Kaudit, tmp_path: Path) -> None:
    for key in TEMPLATES:
        written = kaudit("rules", "new", f"my-{key}", "--template", key, "-o", tmp_path / "new")
        assert written.code == 0 and f"my-{key}.yaml" in written.out, written.err
    result = kaudit("rules", "validate", tmp_path / "new")
    assert result.code == 0, result.out
    assert f"{len(TEMPLATES)} rule files, 0 invalid" in result.out
    text = (tmp_path / "new" / "my-schema.yaml").read_text()
    assert "TODO" in text and "tests:" in text and "# params of schema:" in text


def test_rules_new_refuses_unknown_templates_bad_ids_and_overwriting(kaudit: Kaudit, tmp_path: Path) -> None:
    unknown = kaudit("rules", "new", "my-rule", "--template", "shema", "-o", tmp_path)
    assert unknown.code == 2 and "unknown template 'shema'; did you mean 'schema'?" in unknown.err
    assert kaudit("rules", "new", "my-rule", "-o", tmp_path).code == 2
    assert "kebab-case" in kaudit("rules", "new", "My_Rule", "--template", "schema", "-o", tmp_path).err
    assert kaudit("rules", "new", "my-rule", "--template", "schema", "-o", tmp_path).code == 0
    (tmp_path / "my-rule.yaml").write_text("kept")
    again = kaudit("rules", "new", "my-rule", "--template", "schema", "-o", tmp_path)
    assert again.code == 2 and "already exists" in again.err
    assert (tmp_path / "my-rule.yaml").read_text() == "kept"
    assert "container-resource" in kaudit("rules", "new", "-h").out  # the choices are in the help


def test_rules_list_and_show_include_the_configs_rule_dirs(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write("repo/policies/image-from-elsewhere.yaml", VALID_RULE)
    write("repo/.kaudit.yaml", "rule-dirs: [policies]\n")
    (tmp_path / "repo" / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "deep" / "er")  # the config is found upward, as scan finds it
    assert "image-from-elsewhere" in kaudit("rules", "list").out
    assert kaudit("rules", "show", "image-from-elsewhere").code == 0
    monkeypatch.chdir(tmp_path)
    assert "image-from-elsewhere" not in kaudit("rules", "list").out
    listed = kaudit("rules", "list", "--config", tmp_path / "repo" / ".kaudit.yaml")
    assert "image-from-elsewhere" in listed.out
    shown = kaudit("rules", "show", "image-from-elsewhere", "--config", tmp_path / "repo" / ".kaudit.yaml")
    assert shown.code == 0 and "Image from outside registry.example" in shown.out
    config_schema = json.loads(schema_path("config.schema.json").read_text())
    assert "rules list and rules show" in config_schema["properties"]["rule-dirs"]["description"]


def test_a_bad_pattern_in_tests_params_is_a_problem_not_a_crash(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    text = VALID_RULE.replace("template: schema\nparams:\n  schema: {properties: {image: {type: string, pattern: "
                              "'^registry\\.example/'}}}",
                              "template: env-secret-literal")
    text = text.replace("tests:\n", "tests:\n  params: {name-patterns: ['(']}\n")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert result.code == 1 and "Traceback" not in result.out + result.err
    assert str(path) in result.out and "internal error" not in result.err


def test_a_framework_control_read_as_a_number_is_explained(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    # anyOf [string, list]: the message is the branch's reason, and 5.10 is the number 5.1
    text = VALID_RULE.replace("docs:", "frameworks:\n  cis: 5.10\ndocs:")
    result, path = _validate(kaudit, write, tmp_path, text)
    assert f"{path}:11:3: frameworks.cis: 5.10 was read as the number 5.1 (YAML 1.1); quote it: '5.10'" in result.out
    assert "not valid under any" not in result.out
    unknown, _ = _validate(kaudit, write, tmp_path, text.replace("5.10", "'9.9.9'"))
    assert unknown.code == 1 and f"{path}:11:3: frameworks.cis: unknown control '9.9.9'" in unknown.out
