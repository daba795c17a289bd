"""secret-in-configmap: ConfigMap keys, binaryData and embedded config files, judged with the
secret-in-env detection; bounded parsing; values never echoed."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kaudit.checks import config_files
from kaudit.checks.config_files import Entry, decode_binary, entries, file_format
from kaudit.checks.configmap_secrets import env_name
from kaudit.checks.credentials import DETECTION_PARAMS
from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Finding, Origin, Resource, ResourceRef, format_path
from kaudit.ruleset import load_builtin_rules

RULES = {rule.id: rule for rule in load_builtin_rules(use_index=False)}
RULE = RULES["secret-in-configmap"]
SECRET = "hunter2-Qz7prod"


def findings(data: Any = None, binary: Any = None) -> list[Finding]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}}
    if data is not None:
        body["data"] = data
    if binary is not None:
        body["binaryData"] = binary
    result = run([RULE], Inventory([Resource(ResourceRef("v1", "ConfigMap", "cm", "ns"), body,
                                             Origin(file="cm.yaml", line=1))]))
    assert not result.errors
    found = [f for f in result.findings if f.rule == RULE.id]
    for finding in found:
        assert SECRET not in finding.message and SECRET not in json.dumps(finding.__dict__, default=str)
    return found


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


# --- one detection for both rules ----------------------------------------------------------------

def test_the_configmap_rule_uses_the_env_rules_names_and_shapes() -> None:
    env = RULES["secret-in-env"].params
    assert set(DETECTION_PARAMS) == set(env)
    for name in DETECTION_PARAMS:
        assert RULE.params[name] == env[name], name


@pytest.mark.parametrize("key, expected", [
    ("spring.datasource.password", "SPRING_DATASOURCE_PASSWORD"), ("clientSecret", "CLIENT_SECRET"),
    ("api-key", "API_KEY"), ("PGPASSWORD", "PGPASSWORD"), ("OAuthToken", "OAUTH_TOKEN"), ("", ""),
])
def test_keys_read_as_env_names(key: str, expected: str) -> None:
    assert env_name(key) == expected


# --- plain keys ----------------------------------------------------------------------------------

def test_a_plain_key_is_judged_like_an_env_variable_at_its_line() -> None:
    [finding] = findings({"DB_PASSWORD": SECRET, "DB_HOST": "db"})
    assert format_path(finding.path) == "data.DB_PASSWORD"
    assert "data key DB_PASSWORD: its name suggests a secret" in finding.message


@pytest.mark.parametrize("value", ["", "  ", "$(DB_PASSWORD)", "${DB_PASSWORD}", "{{ .Values.password }}", "true",
                                   "12"])
def test_references_empty_values_and_settings_are_not_literals(value: str) -> None:
    assert findings({"DB_PASSWORD": value}) == []


def test_a_placeholder_password_is_still_one() -> None:
    assert len(findings({"DB_PASSWORD": "changeme"})) == 1


@pytest.mark.parametrize("data", [None, [], "text", {"DB_PASSWORD": None}, {"DB_PASSWORD": 1234},
                                  {"DB_PASSWORD": ["a"]}, {1: SECRET}])
def test_odd_shapes_do_not_crash_or_fire(data: Any) -> None:
    assert findings(data, data) == []


def test_a_key_that_looks_like_a_credential_is_not_repeated() -> None:
    key = "AKIAIOSFODNN7EXAMPL2"
    [finding] = findings({"app.yaml": f"{key}: '-----BEGIN PRIVATE KEY-----'\n"})
    assert key not in finding.message and "looks like a credential" in finding.message


# --- embedded files ------------------------------------------------------------------------------

@pytest.mark.parametrize("key, kind", [
    ("application.properties", "key-value"), (".env", "key-value"), ("prod.env", "key-value"),
    ("my.cnf", "key-value"), ("Settings.INI", "key-value"), ("app.toml", "key-value"), ("x.conf", "key-value"),
    ("config.json", "json"), ("values.yaml", "yaml"), ("values.yml", "yaml"), ("README.md", None), ("env", None),
])
def test_file_formats_by_key(key: str, kind: str | None) -> None:
    assert file_format(key) == kind


def test_key_value_lines() -> None:
    text = ("# comment\n! comment\n; comment\n[database]\nuser = app\npassword: 'p w'\n"
            "export TOKEN=\"abc\"\nrequirepass s3cr3t # the password\n\nnot-a-pair\n")
    assert entries("key-value", text) == [
        Entry("database.user", "user", "app"), Entry("database.password", "password", "p w"),
        Entry("database.TOKEN", "TOKEN", "abc"), Entry("database.requirepass", "requirepass", "s3cr3t"),
    ]


def test_json_and_yaml_leaves_with_paths() -> None:
    expected = [Entry("db.password", "password", "x"), Entry("db.ports[0]", "ports", "5432"),
                Entry("users[0].token", "token", "t")]
    document = {"db": {"password": "x", "ports": [5432], "tls": True, "none": None}, "users": [{"token": "t"}]}
    assert entries("json", json.dumps(document)) == expected
    yaml_text = "db:\n  password: x\n  ports: [5432]\n  tls: true\n  none: null\nusers:\n  - token: t\n"
    assert entries("yaml", yaml_text) == expected


@pytest.mark.parametrize("kind, text", [
    ("json", "{not json"), ("json", "[" * 100_000), ("yaml", "a: [b"), ("yaml", "key: *undefined"),
    ("yaml", "[" * 5000),
])
def test_parse_errors_are_not_structured(kind: str, text: str) -> None:
    assert entries(kind, text) is None


def test_an_unparsed_file_is_still_searched_for_shapes_but_its_name_is_not_judged() -> None:
    [finding] = findings({"credentials.json": "{broken -----BEGIN PRIVATE KEY-----"})
    assert "private key" in finding.message and "entry" not in finding.message
    assert findings({"credentials.json": "{broken"}) == []


def test_each_entry_is_its_own_finding_on_the_keys_line() -> None:
    found = findings({"app.properties": f"db.password={SECRET}\napi.token={SECRET}\ndb.password.file=/run/x\n"})
    assert [format_path(f.path) for f in found] == ['data["app.properties"]'] * 2
    assert sorted(f.fact for f in found) == ["api.token", "db.password"]
    assert all("entry db.password of" in f.message or "entry api.token of" in f.message for f in found)


def test_references_inside_files_are_not_literals() -> None:
    text = "db.password=${DB_PASSWORD}\ndb.url=postgres://app:${DB_PASSWORD}@db/app\nauth.header=Bearer {{ .token }}\n"
    assert findings({"app.properties": text}) == []


# --- caps -------------------------------------------------------------------------------------------

def test_a_value_over_the_parse_cap_is_not_parsed_but_still_searched_for_shapes() -> None:
    big = "a=b\n" * (config_files.MAX_PARSE_CHARS // 4 + 1) + "password=" + SECRET + "\n"
    assert entries("key-value", big) is None
    assert findings({"app.properties": big}) != []  # the connection-string shape `password=...`


def test_entries_are_capped() -> None:
    text = "".join(f"k{i}=v\n" for i in range(config_files.MAX_ENTRIES + 500))
    assert len(entries("key-value", text) or []) == config_files.MAX_ENTRIES
    listed = json.dumps({f"k{i}": "v" for i in range(config_files.MAX_ENTRIES * 3)})
    assert len(entries("json", listed) or []) <= config_files.MAX_ENTRIES * 2


def test_a_yaml_alias_bomb_is_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    found = entries("yaml", bomb)
    assert found is None or len(found) <= config_files.MAX_ENTRIES * 2


def test_a_huge_single_line_value_does_not_crash() -> None:
    for key in ("a.properties", "a.json", "a.yaml", "plain"):
        assert findings({key: "x" * (2 * 1024 * 1024)}) == []


# --- binaryData ---------------------------------------------------------------------------------------

def test_binary_data_text_is_judged_like_data() -> None:
    [finding] = findings(binary={"app.env": b64(f"DB_PASSWORD={SECRET}\n")})
    assert format_path(finding.path) == 'binaryData["app.env"]'
    assert "binaryData key app.env, entry DB_PASSWORD" in finding.message


@pytest.mark.parametrize("value", [b64(b"\x89PNG\r\n\x1a\n\0\0\0password=" + SECRET.encode()),
                                   b64(b"\xff\xfe" + SECRET.encode()), "not base64!!", 12, None])
def test_binary_content_and_bad_base64_are_skipped(value: Any) -> None:
    assert findings(binary={"DB_PASSWORD": value}) == []


def test_decode_binary_caps_and_line_breaks() -> None:
    assert decode_binary(b64("abc")[:2] + "\n" + b64("abc")[2:]) == "abc"
    assert decode_binary("A" * (config_files.MAX_BINARY_CHARS + 4)) is None


# --- no output format carries a value ------------------------------------------------------------

@pytest.mark.parametrize("output", ["text", "json", "sarif", "html", "markdown", "junit"])
def test_no_report_format_repeats_a_value(output: str, tmp_path: Any, kaudit: Any) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: ns}\ndata:\n"
        f"  DB_PASSWORD: {SECRET}\n"
        "  app.properties: |\n"
        f"    db.password={SECRET}x\n"
        f"binaryData:\n  API_TOKEN: {b64(SECRET + 'y')}\n")
    result = kaudit("scan", str(manifest), "--rule", RULE.id, "-f", output, "--fail-on", "never")
    assert result.code == 0, result.err
    assert SECRET not in result.out + result.err and b64(SECRET + "y") not in result.out
    if output == "json":
        assert len(result.json()["findings"]) == 3
