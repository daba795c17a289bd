from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from kaudit.cli import main
from kaudit.model import Report
from kaudit.scan import ScanRequest

REPO = Path(__file__).resolve().parents[1]


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def kaudit(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run the CLI in-process: `kaudit("scan", path, stdin=b"...")`."""

    def run(*args: str, stdin: bytes | None = None) -> CliResult:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_process(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
                env: dict[str, str] | None = None, obey_permissions: bool = False) -> CliResult:
    """Run kaudit as a whole process, as users and pre-commit do.

    `obey_permissions`: root reads any file, so when we are root, drop the capabilities that let it
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) and file permissions apply as for any user.
    """
    command = [sys.executable, "-m", "kaudit.cli", *map(str, args)]
    if obey_permissions and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, env=environment, timeout=120)
    return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a file under tmp_path (text is dedented) and return its path."""

    def create(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return path

    return create


ROOT_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: root-pod
  namespace: team
spec:
  containers:
    - name: app
      image: registry.example.com/app:1.0
"""


# A chart template (not YAML until rendered) whose rendering holds a privileged container.
PRIVILEGED_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx
          securityContext:
            privileged: true
"""


def scan_on_workers(request: ScanRequest, jobs: int) -> Report:
    """A manifest scan forced through `jobs` worker processes, whatever the size of its input: the
    branch `scan_manifests` takes for large trees."""
    from kaudit import scan
    from kaudit.sources.manifests import plan

    return scan.scan_on_workers(request, scan._prepare(request), plan(request.targets), jobs)


def hardened_pod(name: str, namespace: str) -> str:
    """A pod no per-object rule reports: as read back from a cluster, with its controller (a pod
    without one is naked-pod's), and running as its own ServiceAccount."""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  ownerReferences:
    - {{apiVersion: apps/v1, kind: ReplicaSet, name: {name}-7d4b9c, uid: 0a1b2c3d-0000-4000-8000-000000000001, controller: true}}
spec:
  serviceAccountName: {name}
  automountServiceAccountToken: false
  securityContext: {{runAsNonRoot: true, runAsUser: 10001, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: app
      image: registry.example.com/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {{drop: [ALL]}}
      resources: {{limits: {{cpu: 100m, memory: 64Mi, ephemeral-storage: 64Mi}}}}
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Known, recorded bugs (tests/known_bugs.py) are strict expected failures."""
    from tests.known_bugs import KNOWN_BUGS

    for item in items:
        reason = KNOWN_BUGS.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=f"known bug: {reason}", strict=True))


def every_fact(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON findings and the findings joined to them (kaudit/relations.py), each as its own entry
    (a joined entry has the leader's `suppressed`): what each rule found, wherever it is reported."""
    facts = []
    for finding in findings:
        facts.append(finding)
        facts.extend({**joined, "suppressed": finding["suppressed"], "joinedTo": finding["rule"]}
                     for joined in finding.get("joined", ()))
    return facts
