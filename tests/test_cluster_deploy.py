"""kaudit's own in-cluster deployment (examples/deploy): its token reads no Secret, and its nightly job
accepts exactly that one named gap while gating on everything else.

RBAC cannot narrow `list` to metadata or to one Secret type, so a token that may list Secrets is
given every Secret with its data: the example grants none, and the opt-in overlay that does is
judged by kaudit's own rules. The example's RBAC is read by kaudit's RBAC analyzer and put in front
of the test API server as its authorizer, and the CronJob's own arguments and config are replayed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from kaudit.analyzers.rbac import Subject, rbac_index, rule_allows
from kaudit.inventory import Inventory
from kaudit.sources.manifests import load_manifests
from tests.k8s_api import FakeApiServer

from .conftest import CliResult, run_process

DEPLOY = Path(__file__).resolve().parents[1] / "examples" / "deploy"
EXAMPLE = DEPLOY / "kaudit.yaml"
OVERLAY = DEPLOY / "legacy-token-secrets.yaml"
SCANNER = Subject("ServiceAccount", "kaudit", "kaudit")
READ_VERBS = ("get", "list", "watch")
Authorizer = Callable[[str, str, str, Optional[str]], bool]


def rbac(*files: Path) -> Any:
    return rbac_index(Inventory(load_manifests([str(f) for f in files]).resources))


def authorizer(*files: Path) -> Authorizer:
    """What the scanner's token may do, by kaudit's own reading of the files' RBAC."""
    grants = rbac(*files).grants_of(SCANNER)

    def authorize(verb: str, group: str, plural: str, namespace: Optional[str]) -> bool:
        return any(rule_allows(g.rule, verb, group, plural) and g.scope in (None, namespace) for g in grants)

    return authorize


def test_the_example_grants_no_one_any_read_of_secrets() -> None:
    index = rbac(EXAMPLE)
    assert index.grants_of(SCANNER), "the example binds nothing to the scanner: the test would prove nothing"
    for verb in READ_VERBS:  # rule_allows follows the authorizer: `*` verbs, groups and resources too
        assert not index.who_can(verb, "", "secrets", None), f"something in {EXAMPLE.name} can {verb} secrets"
    # the overlay is what grants it, and the model sees it: the check above can fail
    assert authorizer(EXAMPLE, OVERLAY)("list", "", "secrets", None)
    assert not authorizer(EXAMPLE, OVERLAY)("get", "", "secrets", "kaudit")  # list only, even there


def manifest(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in yaml.safe_load_all(EXAMPLE.read_text())
                if d and d["kind"] == kind and d["metadata"]["name"] == name)


def nightly_job(api: FakeApiServer, tmp_path: Path) -> CliResult:
    """The CronJob's own command, with its ConfigMap's config, against `api` instead of in-cluster."""
    config_map = manifest("ConfigMap", "kaudit-config")
    [(file_name, text)] = config_map["data"].items()
    container = manifest("CronJob", "kaudit")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config")
    (tmp_path / file_name).write_text(text)
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    args: list[str] = []
    for arg in container["args"]:
        if arg == "--in-cluster":
            args += ["--kubeconfig", str(kubeconfig), "--context", "test"]
        else:
            args.append(str(tmp_path / file_name) if arg == f"{mount}/{file_name}" else arg)
    assert "--allow-gaps" not in args and "--config" in args
    return run_process(*args, cwd=tmp_path)


TOKEN_SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "ci-token", "namespace": "ci",
                             "annotations": {"kubernetes.io/service-account.name": "ci"}},
                "data": {"token": "dG9rZW4="}}
OBJECTS = [*({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("ci", "kaudit")),
           TOKEN_SECRET]


def test_the_nightly_job_accepts_only_the_secrets_gap(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, authorize=authorizer(EXAMPLE)) as api:
        result = nightly_job(api, tmp_path)
    assert result.code in (0, 1), result.err  # a verdict on everything else, not "incomplete"
    report = result.json()
    cluster = report["scanned"]["cluster"]
    assert cluster["gaps"] and {g["resource"] for g in cluster["gaps"]} == {"secrets"}
    assert all(g["reason"] == "forbidden" and g["accepted"] for g in cluster["gaps"])
    assert [r["rule"] for r in cluster["rulesNotEvaluated"]] == ["legacy-service-account-token-secret"]
    assert report["summary"]["verdict"] != "incomplete" and not cluster["gapsAllowed"]


def test_the_nightly_job_still_fails_on_any_other_gap(tmp_path: Path) -> None:
    allowed = authorizer(EXAMPLE)

    def without_rolebindings(verb: str, group: str, plural: str, namespace: Optional[str]) -> bool:
        return plural != "rolebindings" and allowed(verb, group, plural, namespace)

    with FakeApiServer(OBJECTS, authorize=without_rolebindings) as api:
        result = nightly_job(api, tmp_path)
    assert result.code == 2 and result.json()["summary"]["verdict"] == "incomplete"


def test_the_overlay_evaluates_the_legacy_token_rule(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, authorize=authorizer(EXAMPLE, OVERLAY)) as api:
        result = nightly_job(api, tmp_path)
    report = result.json()
    assert not report["scanned"]["cluster"]["gaps"] and not report["scanned"]["cluster"]["rulesNotEvaluated"]
    assert [f["resource"]["name"] for f in report["findings"]
            if f["rule"] == "legacy-service-account-token-secret"] == ["ci-token"]


def test_kaudit_says_the_overlay_makes_its_token_a_crown_jewel() -> None:
    """Scanned as manifests, the overlay's binding is reported (suppressed in the open, with a reason
    that says what the token can do), and the example alone has nothing about Secrets to suppress."""
    alone = run_process("scan", EXAMPLE, "--fail-on", "info", "-f", "json").json()
    assert not [f for f in alone["findings"] if f["rule"] == "rbac-secrets-read"]
    both = run_process("scan", EXAMPLE, OVERLAY, "--fail-on", "info", "-f", "json").json()
    [finding] = [f for f in both["findings"] if f["rule"] == "rbac-secrets-read"]
    assert finding["resource"]["kind"] == "ClusterRole" or finding["resource"]["kind"].endswith("Binding")
    assert finding["suppressed"] and "data" in finding["suppressed"]["reason"]
