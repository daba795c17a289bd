"""What a pre-commit run imports: a one-file manifest scan loads neither the network nor the cluster
machinery, nor the analyses its objects do not call for (README, Performance). A design guard, not
a timing: each scan runs in a fresh interpreter, which prints the modules it ended with."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ONE_FILE = REPO / "examples" / "manifests" / "insecure" / "web-deployment.yaml"

# Imported only by the scans that need them: registries (--verify-images), clusters (--context),
# rule validation (custom rules, `rules validate`), worker processes (large trees), RBAC analysis
# (objects that bind or define roles), running pods and baselines. click is no longer a dependency
# (the command line is argparse, issue 14); the guard keeps it from coming back on this path.
NOT_ON_THE_HOOK_PATH = [
    "click", "dataclasses", "inspect", "hashlib", "pathlib",  # start-up costs a hook run need not pay
    "kaudit.registry.client", "kaudit.registry.verify", "kaudit.registry.cosign", "urllib.request", "ssl",
    "http.client", "email", "multiprocessing", "concurrent.futures", "kaudit.sources.cluster", "kubernetes",
    "jsonschema", "kaudit.jsonschema_errors", "jinja2", "kaudit.analyzers.rbac", "kaudit.owners",
    "kaudit.instances", "kaudit.baseline", "kaudit.writers.html", "kaudit.writers.sarif", "kaudit.writers.json_report",
]

SCAN_AND_LIST_MODULES = """
import json, sys
from kaudit.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def modules_after(*args: str, cwd: Path = REPO) -> set[str]:
    done = subprocess.run([sys.executable, "-c", SCAN_AND_LIST_MODULES, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    modules: list[str] = json.loads(line[len("MODULES "):])
    assert "kaudit.engine" in modules, done.stderr  # the scan ran
    return set(modules)


def loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("args", [
    ["scan", str(ONE_FILE), "--fail-on", "never"],  # benchmarks/run.py's one-file scan
    ["scan", "--per-file", "--allow-empty", str(ONE_FILE)],  # the `kaudit` pre-commit hook
], ids=["scan", "pre-commit-hook"])
def test_a_one_file_scan_imports_nothing_it_does_not_use(args: list[str]) -> None:
    modules = modules_after(*args)
    assert [name for name in NOT_ON_THE_HOOK_PATH if loaded(modules, name)] == []


def test_rbac_analysis_loads_when_the_scan_holds_a_binding(tmp_path: Path) -> None:
    # the laziness follows the input: a binding in the scan brings the RBAC index (and its findings)
    binding = tmp_path / "binding.yaml"
    binding.write_text("""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: web-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: default, namespace: shop}
""")
    modules = modules_after("scan", str(ONE_FILE), str(binding), "--fail-on", "never")
    assert "kaudit.analyzers.rbac" in modules


def test_the_command_line_module_imports_only_argparse_and_kaudit_errors() -> None:
    # kaudit.cli is imported before anything else; every command imports what it runs
    program = ("import json, sys\nimport argparse, functools, os, re\nbefore = set(sys.modules)\nimport kaudit.cli\n"
               "print(json.dumps(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == ["__future__", "kaudit", "kaudit.cli", "kaudit.errors"], done.stderr
