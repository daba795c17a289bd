from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import jsonschema
import pytest

from kaudit import __version__
from kaudit.cli import _pair_outputs
from kaudit.paths import reports_dir

from .conftest import ROOT_POD, CliResult, hardened_pod

Kaudit = Callable[..., CliResult]
Write = Callable[[str, "str | bytes"], Path]

HARDENED_POD = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: team}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
""" + hardened_pod("ok", "team")


def report_schema() -> dict:  # type: ignore[type-arg]
    return json.loads((reports_dir() / "report.schema.json").read_text())


def test_version(kaudit: Kaudit) -> None:
    result = kaudit("--version")
    assert (result.code, result.out, result.err) == (0, f"kaudit, version {__version__}\n", "")


def test_exit_1_on_findings_at_or_above_fail_on(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    result = kaudit("scan", path)
    assert result.code == 1
    assert f"{path}:8:7" in result.out and "run-as-root" in result.out
    assert kaudit("scan", path, "--fail-on", "critical").code == 0
    assert kaudit("scan", path, "--fail-on", "never").code == 0
    assert kaudit("scan", path, "--fail-on", "LOW").code == 1


GUARD_RAILS = """---
apiVersion: v1
kind: LimitRange
metadata: {name: bounds, namespace: team}
spec:
  limits: [{type: Container, max: {cpu: "1", memory: 1Gi}}]
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: team}
spec:
  hard: {requests.cpu: "2", requests.memory: 2Gi}
"""


def test_exit_0_on_a_clean_manifest(kaudit: Kaudit, write: Write) -> None:
    result = kaudit("scan", write("ok.yaml", HARDENED_POD + GUARD_RAILS), "--fail-on", "info")
    assert result.code == 0, result.out
    assert result.out.strip().endswith("gate pass: 0 at or above info")
    assert "0 findings" in result.out


def test_exit_2_on_usage_errors(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    assert kaudit("scan").code == 2
    bad_format = kaudit("scan", path, "-f", "xml")
    assert bad_format.code == 2 and "unknown format 'xml'" in bad_format.err
    assert kaudit("scan", path, "--fail-on", "severe").code == 2
    assert kaudit("scan", path, "-o", "x.json").code == 2
    assert kaudit("scan", path, "-f", "json", "-f", "text").code == 2
    unknown_rule = kaudit("scan", path, "--rule", "nope")
    assert unknown_rule.code == 2 and "--rule nope: no such rule" in unknown_rule.err


def test_json_report_validates_and_accounts_for_inputs(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("m/pod.yaml", ROOT_POD + "---\n{}\n---\n" + HARDENED_POD)
    write("m/values.yaml", "replicaCount: 1\n")
    write("m/broken.yaml", "a: [\n")
    write("m/.markdownlint.json", "{}")
    result = kaudit("scan", tmp_path / "m", "-f", "json")
    assert result.code == 2  # an input failed, findings or not
    report = result.json()
    jsonschema.validate(report, report_schema())
    inputs = report["inputs"]
    assert (inputs["files"], inputs["documents"], inputs["resources"]) == (3, 5, 3)
    assert [s["reason"] for s in inputs["skipped"]] == ["hidden file, not scanned (name it to scan it)",
                                                        "not a Kubernetes object (no apiVersion and kind)",
                                                        "Helm values, not a Kubernetes object"]
    outcomes = {Path(e["file"]).name: (e["outcome"], e["documents"], e["objects"]) for e in inputs["perFile"]}
    assert outcomes == {".markdownlint.json": ("skipped", 0, 0), "broken.yaml": ("error", 0, 0),
                        "pod.yaml": ("scanned", 4, 3), "values.yaml": ("skipped", 1, 0)}
    assert [(Path(e["file"]).name, e["line"]) for e in inputs["errors"]] == [("broken.yaml", 2)]
    assert report["summary"]["verdict"] == "incomplete"
    finding = next(f for f in report["findings"] if f["rule"] == "run-as-root")
    assert finding["resource"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "team", "name": "root-pod"}
    assert finding["location"]["line"] == 8 and finding["path"] == "spec.containers[0].securityContext.runAsNonRoot"


def test_several_formats_in_one_run(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    path = write("pod.yaml", ROOT_POD)
    out_json, out_text = tmp_path / "r.json", tmp_path / "r.txt"
    result = kaudit("scan", path, "-f", "json", "-o", out_json, "-f", "text", "-o", out_text, "-f", "text")
    assert result.code == 1
    assert json.loads(out_json.read_text())["summary"]["findings"] >= 1
    assert "run-as-root" in out_text.read_text() and "run-as-root" in result.out


def test_output_pairing_follows_the_command_line_order() -> None:
    assert _pair_outputs(["-f", "text", "-f", "json", "-o", "a.json", "x.yaml"]) == [("text", None), ("json", "a.json")]
    assert _pair_outputs(["--format=json", "--output=a", "-fjson", "-ob"]) == [("json", "a"), ("json", "b")]


def test_unwritable_output_is_a_clear_error(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "-f", "json", "-o", tmp_path / "no" / "dir" / "r.json")
    assert result.code == 2 and "cannot write report" in result.err


def test_text_has_no_colour_when_not_a_tty(kaudit: Kaudit, write: Write) -> None:
    assert "\033[" not in kaudit("scan", write("pod.yaml", ROOT_POD)).out


def test_custom_rules_directory(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("policies/team-label.yaml", """
        id: missing-team-label
        title: Object has no team label
        severity: high
        category: ownership
        target: object
        kinds: [Deployment, Pod]
        template: schema
        params:
          path: metadata.labels.team
          schema: {properties: {metadata: {required: [labels], properties: {labels: {required: [team]}}}}}
        message: '{kind} {name} has no team label'
        docs: {what: Team label, why: Ownership, example: 'labels: {}', fix: 'labels: {team: x}'}
        tests:
          fail: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]
          pass: [{apiVersion: v1, kind: Pod, metadata: {name: a, labels: {team: t}}}]
        """)
    pod = write("pod.yaml", ROOT_POD)
    result = kaudit("scan", pod, "--rules", tmp_path / "policies", "--rule", "missing-team-label", "-v")
    assert result.code == 1 and "Pod root-pod has no team label" in result.out
    assert f"{pod}:3:1" in result.out  # labels are missing: the nearest existing parent is the metadata key
    listed = kaudit("rules", "list", "--rules", tmp_path / "policies")
    assert "missing-team-label" in listed.out
    assert kaudit("rules", "validate", tmp_path / "policies").code == 0


def test_invalid_custom_rules_are_exit_2_with_file_and_line(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("policies/bad.yaml", "id: Bad_Id\ntitle: t\n")
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "--rules", tmp_path / "policies")
    assert result.code == 2
    assert f"{tmp_path / 'policies' / 'bad.yaml'}:1:1: id:" in result.err
    validated = kaudit("rules", "validate", tmp_path / "policies")
    assert validated.code == 1 and "1 rule files, 1 invalid" in validated.out


def test_rules_validate_runs_the_rules_own_fixtures(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    write("policies/never-fires.yaml", """
        id: never-fires
        title: t
        severity: low
        category: test
        target: object
        template: schema
        params: {schema: true}
        message: m
        docs: {what: a, why: b, example: c, fix: d}
        tests:
          fail: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]
          pass: [{apiVersion: v1, kind: Pod, metadata: {name: b}}]
        """)
    result = kaudit("rules", "validate", tmp_path / "policies")
    assert result.code == 1 and "tests.fail[0]: expected rule never-fires to fire, it did not" in result.out


def test_a_custom_rule_cannot_replace_a_built_in_one(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    source = Path(__file__).parents[1] / "rules" / "workload-hardening" / "run-as-root.yaml"
    write("policies/run-as-root.yaml", source.read_text())
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "--rules", tmp_path / "policies")
    assert result.code == 2 and "rule id 'run-as-root' is already defined" in result.err


def test_rules_list_and_show(kaudit: Kaudit) -> None:
    listed = kaudit("rules", "list")
    assert listed.code == 0 and "run-as-root" in listed.out
    shown = kaudit("rules", "show", "run-as-root")
    assert shown.code == 0
    for heading in ("What it does", "Why is this bad?", "Example", "Use instead", "References", "cis 5.2.7"):
        assert heading in shown.out
    missing = kaudit("rules", "show", "nope")
    assert missing.code == 2 and "no rule 'nope'" in missing.err


def test_stdin(kaudit: Kaudit) -> None:
    result = kaudit("scan", "-", stdin=ROOT_POD.lstrip().encode())
    assert result.code == 1 and "<stdin>:8:7" in result.out


def test_config_params_enable_the_registry_allowlist(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pod = write("pod.yaml", ROOT_POD.replace("registry.example.com/app:1.0", "docker.io/evil/app:1.0"))
    assert "untrusted-registry" not in kaudit("scan", pod, "--fail-on", "never").out  # unconfigured: silent
    write(".kaudit.yaml", """
        fail-on: critical
        rules:
          untrusted-registry:
            params: {allowed-registries: [registry.example.com]}
          run-as-root: {severity: critical}
          missing-cpu-limit: {enabled: false}
        """)
    monkeypatch.chdir(tmp_path)
    result = kaudit("scan", pod)
    assert "untrusted-registry" in result.out and "missing-cpu-limit" not in result.out
    assert result.code == 1  # run-as-root re-graded critical meets the config's fail-on


def test_invalid_config_names_the_key_and_file(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    config = write("conf.yaml", "rules:\n  run-as-root:\n    severity: severe\n")
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "--config", config)
    assert result.code == 2 and f"{config}:3:5: rules.run-as-root.severity:" in result.err
    unknown = write("conf2.yaml", "rules:\n  no-such-rule: {enabled: false}\n")
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "--config", unknown)
    assert result.code == 2 and "rules.no-such-rule: no rule with this id" in result.err
    bad_param = write("conf3.yaml", "rules:\n  untrusted-registry:\n    params: {allowed-registries: oops}\n")
    result = kaudit("scan", write("pod.yaml", ROOT_POD), "--config", bad_param)
    assert result.code == 2 and "rules.untrusted-registry.params.allowed-registries" in result.err


def test_text_is_coloured_on_a_terminal_unless_no_color(write: Write) -> None:
    import os
    import pty
    import subprocess
    import sys

    path = write("pod.yaml", ROOT_POD)

    def run_on_tty(extra_env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        env.update({"PYTHONPATH": str(Path(__file__).parents[1]), **extra_env})
        process = subprocess.Popen([sys.executable, "-m", "kaudit.cli", "scan", str(path)], stdout=follower,
                                   stderr=subprocess.PIPE, env=env)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
        os.close(leader)
        return b"".join(chunks).decode()

    assert "\033[1;31mHIGH" in run_on_tty({})
    assert "\033[" not in run_on_tty({"NO_COLOR": "1"})


def test_json_report_says_each_rules_metadata_once(kaudit: Kaudit, write: Write) -> None:
    report = kaudit("scan", write("pod.yaml", ROOT_POD), "-f", "json").json()
    rules = {rule["id"]: rule for rule in report["rules"]}
    assert {f["rule"] for f in report["findings"]} <= set(rules)
    assert rules["run-as-root"]["frameworks"]["cis"] == ["5.2.7"]
    assert "runAsNonRoot: true" in rules["run-as-root"]["remediation"] and rules["run-as-root"]["references"]


def test_rules_list_framework_shows_controls_rules_and_gaps(kaudit: Kaudit) -> None:
    baseline = kaudit("rules", "list", "--framework", "pss-baseline")
    assert baseline.code == 0
    assert "host-namespaces" in baseline.out and "host-ipc, host-network, host-pid" in baseline.out
    assert "12 of 12 controls checked" in baseline.out
    restricted = kaudit("rules", "list", "--framework", "pss-restricted").out
    assert "[pss-baseline]" in restricted and "host-path-volumes" not in restricted  # replaced by volume-types
    cis = kaudit("rules", "list", "--framework", "cis").out
    assert "5.1.1" in cis and "cluster-admin-binding" in cis and "5.2.13" in cis
    assert "not covered: membership of system:masters lives in client certificates" in cis
    assert kaudit("rules", "list", "--framework", "iso27001").code == 2


def test_rules_show_names_the_framework_controls(kaudit: Kaudit) -> None:
    shown = kaudit("rules", "show", "host-port").out
    assert "pss-baseline host-ports: Host Ports" in shown and "cis 5.2.13" in shown
    talk = kaudit("rules", "show", "run-as-root").out
    assert "talk: Level Up Your Security" in talk


def test_framework_scan_selects_rules_and_reports_controls(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    result = kaudit("scan", path, "--framework", "pss-restricted", "-f", "json")
    report = result.json()
    assert {f["rule"] for f in report["findings"]} == {
        "privilege-escalation-not-disabled", "run-as-non-root-not-enforced", "seccomp-profile-not-enforced",
        "capabilities-not-restricted"}
    [framework] = report["frameworks"]
    assert (framework["pass"], framework["fail"], framework["notCovered"]) == (11, 4, 0)
    text = kaudit("scan", path, "--framework", "pss-restricted", "--framework", "cis").out
    assert "pss-restricted: 11 controls pass, 4 fail, 0 not evaluated, 0 not covered (failing: privilege-escalation" in text
    assert "\ncis: " in text
    assert kaudit("scan", path, "--framework", "nope").code == 2


def test_rule_validation_rejects_unknown_framework_controls(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    source = Path(__file__).parents[1] / "rules" / "pod-security-standards" / "host-port.yaml"
    write("policies/custom-port.yaml", source.read_text().replace("id: host-port", "id: custom-port")
          .replace("pss-baseline: host-ports", "pss-baseline: host-portz"))
    result = kaudit("rules", "validate", tmp_path / "policies")
    assert result.code == 1 and "frameworks.pss-baseline: unknown control 'host-portz'" in result.out


def test_a_one_file_scan_imports_nothing_heavy() -> None:
    # What a pre-commit hook pays for: the kubernetes client, jinja2, jsonschema and the process-pool
    # machinery are imported only on the paths that need them (cluster, HTML, custom rules, big trees).
    example = Path(__file__).resolve().parent.parent / "examples" / "manifests" / "insecure" / "web-deployment.yaml"
    heavy = ["kubernetes", "jinja2", "jsonschema", "multiprocessing", "concurrent.futures"]
    program = (
        "import sys\nfrom kaudit.cli import main\n"
        f"code = main(['scan', {str(example)!r}, '--per-file', '-f', 'text', '-o', '/dev/null', '--fail-on', 'never'])\n"
        f"print(code, sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "0 []", done.stdout + done.stderr


# ---- the command line itself: what users type and read (argparse, issue 14) ----

INVALID_VALUES = [
    (["--fail-on", "severe"], "--fail-on", "'severe' is not one of critical, high, medium, low, info, never"),
    (["--max-file-size", "0"], "--max-file-size", "0 is not in the range x>=0.001"),
    (["--max-file-size", "lots"], "--max-file-size", "'lots' is not a valid number"),
    (["--request-timeout", "0.05"], "--request-timeout", "0.05 is not in the range x>=0.1"),
    (["--request-timeout", "nan"], "--request-timeout", "nan is not in the range x>=0.1"),
    (["--image-cache-ttl", "-1"], "--image-cache-ttl", "-1 is not in the range x>=0"),
    (["--image-cache-ttl", "1.5"], "--image-cache-ttl", "'1.5' is not a valid integer"),
    (["-j", "-1"], "-j/--jobs", "-1 is not in the range x>=0"),
    (["--jobs=two"], "-j/--jobs", "'two' is not a valid integer"),
    (["--fail-on"], "--fail-on", "expected one argument"),
]


@pytest.mark.parametrize("args, option, says", INVALID_VALUES, ids=[" ".join(case[0]) for case in INVALID_VALUES])
def test_an_invalid_option_value_is_one_line_naming_the_option(kaudit: Kaudit, write: Write, args: list[str],
                                                               option: str, says: str) -> None:
    result = kaudit("scan", write("pod.yaml", ROOT_POD), *args)
    assert (result.code, result.out, result.err) == (2, "", f"kaudit scan: error: argument {option}: {says}\n")


def test_fail_on_is_case_insensitive_and_numbers_take_their_bounds(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    assert kaudit("scan", path, "--fail-on", "NEVER", "--max-file-size", "0.001", "--image-cache-ttl", "0",
                  "-j", "0", "--request-timeout", "0.1").code == 0
    assert kaudit("scan", path, "--fail-on=High").code == 1


@pytest.mark.parametrize("args, says", [
    (["scan", "--bogus"], "kaudit scan: error: unrecognized arguments: --bogus"),
    (["scan", "--fail", "never"], "kaudit scan: error: unrecognized arguments: --fail"),  # no abbreviations
    (["--bogus"], "kaudit: error: unrecognized arguments: --bogus"),
    (["bogus"], "kaudit: error: no such command 'bogus' (commands: scan, paths, rules, baseline, rbac)"),
    (["rules", "bogus"], "kaudit rules: error: no such command 'bogus' (commands: list, show, new, validate, schema, docs)"),
    (["rules", "show"], "kaudit rules show: error: the following arguments are required: RULE_ID"),
    (["rules", "show", "a", "b"], "kaudit rules show: error: unrecognized arguments: b"),
    (["rbac", "who-can", "get"], "kaudit rbac who-can: error: the following arguments are required: RESOURCE"),
])
def test_unknown_options_commands_and_missing_arguments_exit_2(kaudit: Kaudit, args: list[str], says: str) -> None:
    result = kaudit(*args)
    assert (result.code, result.out, result.err) == (2, "", says + "\n")


def test_usage_errors_found_by_a_command_keep_their_words(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    unpaired = kaudit("scan", path, "-o", "x.json")
    assert unpaired.err == ("kaudit scan: error: -o/--output must follow the -f/--format it is for: "
                            "-f json -o report.json\n") and unpaired.code == 2
    two_on_stdout = kaudit("scan", path, "-f", "json", "-f", "text")
    assert two_on_stdout.err == ("kaudit scan: error: only one format can go to standard output; give the "
                                 "others -o FILE\n") and two_on_stdout.code == 2


def scanned_files(result: CliResult) -> list[str]:
    return [Path(entry["file"]).name for entry in result.json()["inputs"]["perFile"]]


def test_options_and_paths_come_in_any_order(kaudit: Kaudit, write: Write, tmp_path: Path) -> None:
    a, b = write("a.yaml", ROOT_POD), write("b.yaml", HARDENED_POD)
    orders = [
        ["--fail-on", "never", "-f", "json", a, b],
        [a, "--fail-on", "never", b, "-f", "json"],
        [a, "--fail-on=never", "-fjson", "--", b],
        ["--fail-on", "never", "-f", "json", "--", a, b],
    ]
    for args in orders:
        result = kaudit("scan", *args)
        assert (result.code, scanned_files(result)) == (0, ["a.yaml", "b.yaml"]), args


def test_after_double_dash_everything_is_a_path(kaudit: Kaudit, write: Write, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write("-odd.yaml", ROOT_POD)
    write("--per-file", HARDENED_POD)
    monkeypatch.chdir(tmp_path)
    result = kaudit("scan", "-f", "json", "--fail-on", "never", "--", "-odd.yaml", "--per-file")
    assert (result.code, sorted(scanned_files(result))) == (0, ["--per-file", "-odd.yaml"])


def test_dash_is_standard_input_among_options(kaudit: Kaudit) -> None:
    result = kaudit("scan", "--fail-on", "high", "-", "-f", "text", "-o", "-", stdin=ROOT_POD.lstrip().encode())
    assert result.code == 1 and "<stdin>:8:7" in result.out


def test_repeatable_options_keep_every_value(kaudit: Kaudit, write: Write) -> None:
    path = write("pod.yaml", ROOT_POD)
    result = kaudit("scan", path, "--rule", "run-as-root", "-f", "json", "--rule=privileged-container")
    assert sorted(rule["id"] for rule in result.json()["rules"]) == ["privileged-container", "run-as-root"]


def test_help_on_every_level(kaudit: Kaudit) -> None:
    top = kaudit("-h")
    assert top.code == 0 and top.out.startswith("usage: kaudit [OPTIONS] COMMAND [ARGS]...")
    assert all(f"\n  {name} " in top.out for name in ("scan", "rules", "baseline", "rbac"))
    scan = kaudit("scan", "--help")
    assert scan.code == 0 and scan.out.startswith("usage: kaudit scan [OPTIONS] [PATHS]...")
    for shown in ("--fail-on [critical|high|medium|low|info|never]", "-f, --format FORMAT", "-j, --jobs N",
                  "--insecure-registry HOST[:PORT]", "[default: 20.0; x>=0.1]", "-h, --help"):
        assert shown in " ".join(scan.out.split())
    rules = kaudit("rules", "-h")
    assert rules.code == 0 and rules.out.startswith("usage: kaudit rules [OPTIONS] COMMAND [ARGS]...")
    assert all(f"\n  {name} " in rules.out for name in ("list", "show", "docs", "validate"))
    assert "compile" not in rules.out  # a maintainers' command, hidden
    who_can = kaudit("rbac", "who-can", "-h")
    assert who_can.out.startswith("usage: kaudit rbac who-can [OPTIONS] VERB RESOURCE [PATHS]...")
    assert kaudit("baseline", "create", "-h").out.count("[default: .kaudit-baseline.json]") == 1


def test_a_group_without_a_command_shows_its_help_and_exits_2(kaudit: Kaudit) -> None:
    for args, usage in [((), "usage: kaudit [OPTIONS]"), (("rules",), "usage: kaudit rules [OPTIONS]"),
                        (("rbac",), "usage: kaudit rbac [OPTIONS]"), (("baseline",), "usage: kaudit baseline")]:
        result = kaudit(*args)
        assert result.code == 2 and result.out == "" and result.err.startswith(usage), args


def test_hidden_rules_compile_runs(kaudit: Kaudit) -> None:
    shown = kaudit("rules", "compile", "-h")
    assert shown.code == 0 and shown.out.startswith("usage: kaudit rules compile [OPTIONS]")
    assert "rules/index.json" in shown.out
    assert kaudit("rules", "compile", "extra").code == 2  # parsed as a command of its own


def test_the_console_script_speaks_the_same(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", "--jobs", "x"], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (2, "kaudit scan: error: argument -j/--jobs: 'x' is not a valid "
                                                 "integer\n")
