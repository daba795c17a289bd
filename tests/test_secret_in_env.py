"""secret-in-env (issue 12 §3): documented credential variable names, value shapes, path-valued
variables and look-alikes that describe a secret without holding one. Values are never echoed."""
from __future__ import annotations

import json
import time
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from kaudit.engine import run
from kaudit.inventory import Inventory
from kaudit.model import Finding, Origin, Resource, ResourceRef
from kaudit.ruleset import load_builtin_rules

RULE = {rule.id: rule for rule in load_builtin_rules(use_index=False)}["secret-in-env"]
REPO = Path(__file__).resolve().parents[1]


def pod(*env: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0", "env": list(env)}]}}


def findings(*env: dict[str, Any]) -> list[Finding]:
    body = pod(*env)
    ref = ResourceRef("v1", "Pod", "p", "ns")
    result = run([RULE], Inventory([Resource(ref, body, Origin(file="case.yaml", line=1))]))
    assert not result.errors
    return [f for f in result.findings if f.rule == RULE.id]


def flagged(name: str, value: str) -> Optional[Finding]:
    """The one finding for NAME=VALUE, or None; checks the value is never repeated."""
    found = findings({"name": name, "value": value})
    assert len(found) <= 1
    if not found:
        return None
    [finding] = found
    assert finding.path == ("spec", "containers", 0, "env", 0, "value")
    assert f"env var {name}:" in finding.message
    assert value not in finding.message
    assert value not in json.dumps(finding.__dict__, default=str)
    return finding


def example_name(name: str) -> str:
    """A concrete variable for a documented name; `TF_TOKEN_*` stands for one per host."""
    return name.replace("*", "app_terraform_io")


# --- the literal inputs of the issue ------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("PGPASSWORD", "devpass"),
    ("AZURE_BATCH_KEY", "cGFzc3dvcmQtZm9yLWJhdGNoLWFjY291bnQ="),
    ("OCI_CLI_KEY_CONTENT", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
])
def test_documented_credential_variables_missed_before(name: str, value: str) -> None:
    finding = flagged(name, value)
    assert finding is not None
    assert "documented" in finding.message


def test_an_authorization_value_is_flagged_by_its_shape_whatever_the_name() -> None:
    finding = flagged("AUTH_HEADER", "Bearer abc.def")
    assert finding is not None
    assert "Authorization" in finding.message


def test_a_path_under_a_variable_documented_as_a_path_is_not_a_secret() -> None:
    assert flagged("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/google/key.json") is None


# --- every documented name, both ways -----------------------------------------------------------

CREDENTIAL_NAMES = sorted(RULE.params["credential-names"])
PATH_NAMES = sorted(RULE.params["path-names"])


def test_the_lists_cite_a_source_for_every_name() -> None:
    for table in ("credential-names", "path-names"):
        for name, source in RULE.params[table].items():
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*\*?", name), name
            assert re.match(r"https://\S+$", source), f"{table} {name}: {source!r}"
    assert {"PGPASSWORD", "AZURE_BATCH_KEY", "OCI_CLI_KEY_CONTENT", "AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN",
            "TF_TOKEN_*"} <= set(CREDENTIAL_NAMES)
    assert {"GOOGLE_APPLICATION_CREDENTIALS", "AWS_SHARED_CREDENTIALS_FILE", "KUBECONFIG"} <= set(PATH_NAMES)


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_literal_under_a_documented_credential_name_is_flagged(name: str) -> None:
    variable = example_name(name)
    for value in ("Pl41n-l1t3ral", "123456", "/etc/x"):  # a password that looks like a path is still one
        finding = flagged(variable, value)
        assert finding is not None, f"{variable}={value!r}"


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_documented_credential_name_from_a_secret_or_a_reference_is_not(name: str) -> None:
    variable = example_name(name)
    assert findings({"name": variable, "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}) == []
    assert flagged(variable, "") is None
    assert flagged(variable, "$(OTHER_VAR)") is None


@pytest.mark.parametrize("name", PATH_NAMES)
def test_a_path_under_a_name_documented_as_a_path_is_not_flagged(name: str) -> None:
    for value in ("/var/run/secrets/app/creds.json", "./creds.json", "~/.config/app", r"C:\creds\key.json"):
        assert flagged(name, value) is None, f"{name}={value!r}"


@pytest.mark.parametrize("name", PATH_NAMES)
def test_key_material_pasted_into_a_path_variable_is_flagged(name: str) -> None:
    inline = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n"}'
    finding = flagged(name, inline)
    assert finding is not None
    assert "private key" in finding.message


# --- value shapes --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["Bearer abc.def", "Basic dXNlcjpwYXNz", "bearer eyJhbGciOi",
                                   "Authorization: Bearer abc.def"])
def test_authorization_values(value: str) -> None:
    assert flagged("UPSTREAM_OPTS", value) is not None


@pytest.mark.parametrize("value", ["Bearer $(API_TOKEN)", "Bearer", "Basic auth is disabled", "Bearer ",
                                   "use Bearer tokens", "Basic authentication", "Token Refresh"])
def test_authorization_look_alikes(value: str) -> None:
    assert flagged("UPSTREAM_OPTS", value) is None


@pytest.mark.parametrize("value", [
    "postgres://app:devpass@db:5432/app",
    "redis://:devpass@redis:6379/0",
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net",
    "host=db port=5432 user=app password=devpass",
    "Server=db;Database=app;User Id=app;Pwd=devpass;",
])
def test_connection_strings_with_a_password(value: str) -> None:
    finding = flagged("DATA_SOURCE", value)
    assert finding is not None, value


@pytest.mark.parametrize("value", [
    "postgres://app:$(DB_PASSWORD)@db:5432/app",
    "host=db user=app password=$(DB_PASSWORD)",
    "https://db.example.com:5432/app",
    "Server=db;Database=app;Integrated Security=true;",
])
def test_connection_strings_without_a_literal_password(value: str) -> None:
    assert flagged("DATA_SOURCE", value) is None


# --- names that describe a secret rather than hold one -------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("PASSWORD_MIN_LENGTH", "12"), ("PASSWORD_MIN_LENGTH", "twelve"), ("TOKEN_TTL", "3600"),
    ("TOKEN_TTL", "1h"), ("KEY_PREFIX", "app"), ("SECRET_NAME", "db-credentials"),
    ("API_KEY_HEADER", "X-Api-Key"), ("VAULT_SECRET_PATH", "kv/data/app"), ("JWT_SECRET_ROTATION_DAYS", "30"),
    ("PASSWORD_POLICY", "strict"), ("SECRETS_MANAGER_REGION", "eu-west-1"), ("AUTH_PROVIDER", "oidc"),
    ("PWD", "/app"), ("MAX_TOKENS", "4096"), ("AUTHOR", "Jane Doe"),
])
def test_configuration_about_a_secret_is_not_a_secret(name: str, value: str) -> None:
    assert flagged(name, value) is None


@pytest.mark.parametrize("name", ["DB_PASSWORD", "MYSQLPASSWORD", "CLIENT_SECRET", "API_KEY", "APP_TOKEN",
                                  "SMTP_PASS", "DB_PWD", "oauth_client_secret"])
def test_names_that_say_secret_still_are(name: str) -> None:
    assert flagged(name, "n0t-a-r3al-one") is not None
    assert flagged(name, "/opt/q9z/pw") is not None  # only names documented as paths get that pass


# --- the report never carries the values ---------------------------------------------------------

def test_json_report_names_every_variable_and_repeats_no_value(tmp_path: Path) -> None:
    env = [{"name": example_name(name), "value": f"L1t-{index:03d}-qz7"} for index, name in enumerate(CREDENTIAL_NAMES)]
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod(*env)))
    done = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", str(tmp_path), "--rule", RULE.id,
                           "-f", "json", "--fail-on", "never"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    messages = [f["message"] for f in report["findings"]]
    assert len(messages) == len(CREDENTIAL_NAMES)
    for entry in env:
        assert entry["value"] not in done.stdout + done.stderr
        assert any(f"env var {entry['name']}:" in message for message in messages), entry["name"]


# --- the new value shapes stay linear on long values (tests/test_hostile.py covers the URL one) ---

@pytest.mark.parametrize("value", ["password " * 30_000 + "=", "Pwd=" + " " * 256 * 1024 + ";",
                                   "Bearer " + "a" * 256 * 1024 + " x", "Authorization: " * 20_000,
                                   "Basic " * 50_000])
def test_long_values_that_almost_match_a_shape_are_fast(value: str) -> None:
    start = time.perf_counter()
    findings({"name": "DATA", "value": value})
    assert time.perf_counter() - start < 3, "quadratic-time value pattern"
