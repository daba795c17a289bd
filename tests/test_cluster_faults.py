"""Live-cluster scans against a misbehaving API server (tests/k8s_api): every fault ends in bounded
time, as a coverage gap that names the resource and the reason, with an honest exit code (2, or 1
with --allow-gaps when findings fail the gate) and every finding the fault did not touch still there.

Each scan is a whole `kaudit scan --context` process, watched: it is killed (and the test fails,
saying so) when it runs past its time bound or its resident memory passes RSS_KILL_MIB.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from kaudit.sources.cluster import PAGE_SIZE
from tests.k8s_api import FakeApiServer

REPO = Path(__file__).resolve().parents[1]
PODS = 2 * PAGE_SIZE + 200  # three pages of pods
EXTRA_NAMESPACES = 18
RSS_KILL_MIB = 1024  # a scan past this is killed: it is holding what it must not
RSS_BOUND_MIB = 512  # what a scan facing a huge response may reach (a bounded read, then a gap)
HUGE_BYTES = 1 << 30  # a 1 GiB list page

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0"}]}}
SIDECAR = {"name": "mesh-proxy", "image": "registry.example.com/proxy:2.0", "securityContext": {"privileged": True}}
OWNED_BY_RS = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9f", "uid": "rs-1", "controller": True}]

# findings the faults below must never take away (they come from what is still readable)
DEPLOYMENT_ROOT = ("run-as-root", "Deployment/shop/web")
CLUSTER_VERSION = ("unsupported-kubernetes-version", "ClusterInfo/test")


def objects() -> list[dict[str, Any]]:
    """Two namespaces and 18 more, a Deployment with its ReplicaSet and PODS replicas (one with an
    injected privileged sidecar, last in list order), a Service, a Node."""
    namespaces = ["shop", "team-b", *(f"ns-{i:02d}" for i in range(EXTRA_NAMESPACES))]
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"web-5d9f-{i:04d}", "namespace": "shop", "labels": {"app": "web"},
                          "ownerReferences": OWNED_BY_RS},
             "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0"}]}}
            for i in range(PODS - 1)]
    pods.append({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "web-5d9f-zz", "namespace": "shop", "labels": {"app": "web"},
                              "ownerReferences": OWNED_BY_RS},
                 "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0"}, SIDECAR]}})
    return [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "uid": "dep-1"},
         "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": "web-5d9f", "namespace": "shop", "uid": "rs-1", "ownerReferences": [
             {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "dep-1", "controller": True}]},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}},
        *pods,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
         "status": {"nodeInfo": {"kubeletVersion": "v1.29.4"}}},
    ]


@dataclass
class Scan:
    code: int
    report: Optional[dict[str, Any]]
    err: str
    seconds: float
    peak_rss_mib: float

    @property
    def data(self) -> dict[str, Any]:
        assert self.report is not None, f"no JSON report (exit {self.code}): {self.err[-800:]}"
        return self.report

    @property
    def read(self) -> list[str]:
        return list(self.data["scanned"]["cluster"]["read"])

    @property
    def gaps(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for gap in self.data["scanned"]["cluster"]["gaps"]:
            found.setdefault(gap["resource"], []).append(gap)
        return found

    @property
    def findings(self) -> set[tuple[str, str]]:
        """(rule, object); what the injected sidecar adds is on the Deployment, seen in its pods."""
        return {(f["rule"], ("pods of " if f.get("container") == SIDECAR["name"] else "") + "/".join(
                    p for p in (f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"]) if p))
                for f in self.data["findings"]}

    @property
    def not_evaluated(self) -> set[str]:
        return {entry["rule"] for entry in self.data["scanned"]["cluster"]["rulesNotEvaluated"]}


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def run_scan(api: FakeApiServer, tmp_path: Path, *extra: str, bound: float, what: str) -> Scan:
    """`kaudit scan --context test -f json -o FILE` as a process, killed past `bound` seconds or
    RSS_KILL_MIB (the test then fails, naming `what` the server was doing)."""
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    report = tmp_path / f"report-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "kaudit.cli", "scan", "--kubeconfig", str(kubeconfig), "--context", "test",
               "-f", "json", "-o", str(report), "--fail-on", "high", *extra]
    err_file = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    with open(err_file, "wb") as err, open(os.devnull, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=tmp_path, env=env)
    peak_seen, killed = 0.0, ""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.monotonic() - started
        peak_seen = max(peak_seen, _rss_mib(process.pid))
        if elapsed > bound:
            killed = f"still running after {bound:.0f} s"
        elif peak_seen > RSS_KILL_MIB:
            killed = f"resident memory passed {RSS_KILL_MIB} MiB ({peak_seen:.0f} MiB) after {elapsed:.1f} s"
        if killed:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = err_file.read_text(errors="replace")
    if killed:
        pytest.fail(f"kaudit scan ({what}) {killed}; killed. stderr: {text[-1500:]!r}", pytrace=False)
    peak = max(peak_seen, usage.ru_maxrss / 1024)  # ru_maxrss: KiB on Linux
    loaded = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
    return Scan(process.returncode, loaded, text, seconds, peak)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """The same cluster with no fault: every finding, no gap."""
    with FakeApiServer(objects()) as api:
        scan = run_scan(api, tmp_path_factory.mktemp("baseline"), bound=60, what="no fault")
    assert scan.code == 1 and scan.gaps == {}, scan.err
    assert {DEPLOYMENT_ROOT, CLUSTER_VERSION, ("privileged-container", "pods of Deployment/shop/web")} <= scan.findings
    return scan


def assert_rest_is_there(scan: Scan, baseline: Scan, lost_kinds: set[str]) -> None:
    """Every finding of the fault-free scan is still reported, except on the kinds that could not be
    read and for the rules the report says could not be fully evaluated."""
    missing = {(rule, resource) for rule, resource in baseline.findings - scan.findings
               if resource.split("/")[0] not in lost_kinds and rule not in scan.not_evaluated
               and not ("Pod" in lost_kinds and resource.startswith("pods of "))}
    assert not missing, f"findings lost beyond the gap: {sorted(missing)[:10]}"
    assert {DEPLOYMENT_ROOT, CLUSTER_VERSION} <= scan.findings


def assert_gap(scan: Scan, resource: str, reason: str, message: str) -> dict[str, Any]:
    """One cluster-wide gap on `resource` with that reason and a message matching `message`."""
    gaps = scan.gaps.get(resource)
    assert gaps, f"no gap for {resource}; gaps: {scan.gaps}; stderr: {scan.err[-800:]}"
    assert [(g["namespace"], g["reason"]) for g in gaps] == [(None, reason)], gaps
    assert re.search(message, gaps[0]["message"], re.I), gaps[0]["message"]
    return gaps[0]


def assert_honest_exit(scan: Scan, allowed: Scan) -> None:
    assert scan.code == 2 and scan.data["summary"]["verdict"] == "incomplete"
    # --allow-gaps: the gaps are still reported, and the findings (a critical one) fail the gate
    assert allowed.code == 1 and allowed.gaps.keys() == scan.gaps.keys(), allowed.err


def pod_requests(api: FakeApiServer) -> list[dict[str, str]]:
    return [r.query for r in api.requests if r.path == "/api/v1/pods"]


# ---- a connection dropped mid-list -----------------------------------------------------------------

def test_connection_dropped_on_the_second_page(tmp_path: Path, baseline: Scan) -> None:
    with FakeApiServer(objects(), drop_connection={"pods": 1}) as api:  # page 1 whole, then cut mid-body
        scan = run_scan(api, tmp_path, bound=30, what="cutting the pods list's second page mid-body")
        pages = pod_requests(api)
        allowed = run_scan(api, tmp_path, "--allow-gaps", bound=30, what="the same, --allow-gaps")
    assert scan.seconds < 30
    assert_gap(scan, "pods", "failed", r"connection|incomplete|broken|closed|protocol")
    assert len(scan.gaps) == 1
    # the first page once, then the second page (the same continue token) tried again, never a third
    assert "continue" not in pages[0] and len(pages) >= 3
    assert len({p["continue"] for p in pages[1:]}) == 1
    assert_rest_is_there(scan, baseline, {"Pod"})
    assert "pods" not in scan.read
    assert_honest_exit(scan, allowed)


# ---- an expired continue token ----------------------------------------------------------------------

def test_continue_token_expiring_mid_list_falls_back_to_one_full_list(tmp_path: Path, baseline: Scan) -> None:
    with FakeApiServer(objects(), expire_continue={"pods"}) as api:
        scan = run_scan(api, tmp_path, bound=30, what="410 Expired on the pods list's second page")
        pages = pod_requests(api)
    assert scan.seconds < 30
    assert scan.gaps == {} and scan.code == 1  # recovered: complete, and the findings fail the gate
    assert pages[0] == {"limit": str(PAGE_SIZE)} and "continue" in pages[1] and pages[2] == {}
    assert len(pages) == 3  # 410 once, then one consistent unpaginated list
    assert scan.findings == baseline.findings  # nothing lost, nothing doubled
    assert scan.data["inputs"]["documents"] == baseline.data["inputs"]["documents"]


def test_continue_token_expiring_and_the_full_list_failing_is_a_gap(tmp_path: Path, baseline: Scan) -> None:
    # page 1 answered, page 2 -> 410, the fallback full list -> cut mid-body (and its retries)
    with FakeApiServer(objects(), expire_continue={"pods"}, drop_connection={"pods": 1}) as api:
        scan = run_scan(api, tmp_path, bound=30, what="410, then the fallback list dropped")
        pages = pod_requests(api)
    assert scan.seconds < 30 and scan.code == 2
    assert_gap(scan, "pods", "failed", r"connection|incomplete|broken|closed|protocol")
    assert all(p == {} for p in pages[2:]) and len(pages) >= 3
    assert_rest_is_there(scan, baseline, {"Pod"})


# ---- malformed list bodies --------------------------------------------------------------------------

MALFORMED = {
    "truncated-json": None,  # tests.k8s_api.MALFORMED_BODY: a list cut off mid-object
    "html-from-a-proxy": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "top-level-array": b"[]",
    "null": b"null",
    "items-not-a-list": b'{"kind":"ServiceList","apiVersion":"v1","metadata":{},"items":5}',
    "items-an-object": b'{"kind":"ServiceList","apiVersion":"v1","metadata":{},"items":{"web":{}}}',
    "metadata-not-an-object": b'{"kind":"ServiceList","apiVersion":"v1","metadata":"x","items":[]}',
}


@pytest.mark.parametrize("body", list(MALFORMED))
def test_malformed_list_response_is_a_gap(tmp_path: Path, baseline: Scan, body: str) -> None:
    malformed: Any = {"services"} if MALFORMED[body] is None else {"services": MALFORMED[body]}
    with FakeApiServer(objects(), malformed=malformed) as api:
        scan = run_scan(api, tmp_path, bound=30, what=f"services list answered with {body}")
        allowed = run_scan(api, tmp_path, "--allow-gaps", bound=30, what=f"{body}, --allow-gaps") \
            if body == "truncated-json" else None
    assert scan.seconds < 30
    assert "Traceback" not in scan.err, scan.err[-1500:]
    # not read as an empty list: a gap that says the answer was not a list
    assert_gap(scan, "services", "failed", r"malformed|invalid|not a list|unexpected|json")
    assert len(scan.gaps) == 1 and "services" not in scan.read
    assert_rest_is_there(scan, baseline, {"Service"})
    if allowed is not None:
        assert_honest_exit(scan, allowed)
    else:
        assert scan.code == 2


# ---- a response larger than memory should hold --------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_list_response_is_refused_with_bounded_memory(tmp_path: Path, baseline: Scan, chunked: bool) -> None:
    """A 1 GiB services page (announced by Content-Length, or streamed chunked with no length).

    The correct behaviour: kaudit caps what it reads of one response (a few hundred MiB at most),
    stops reading there (or at once, from a Content-Length over the cap), and records a gap that says
    the response was too large; it never buffers and decodes the whole thing."""
    with FakeApiServer(objects(), huge={"services": HUGE_BYTES}, huge_chunked=chunked) as api:
        how = "chunked, no length" if chunked else "announced with Content-Length"
        scan = run_scan(api, tmp_path, bound=60, what=f"a 1 GiB services list, {how}")
    assert scan.seconds < 60
    assert scan.peak_rss_mib < RSS_BOUND_MIB, f"peak RSS {scan.peak_rss_mib:.0f} MiB"
    assert_gap(scan, "services", "failed", r"too large|larger than|exceed|limit|MiB|MB\b|bytes")
    assert scan.code == 2 and len(scan.gaps) == 1
    assert_rest_is_there(scan, baseline, {"Service"})


# ---- a server that never answers ------------------------------------------------------------------------

def test_requests_never_answered_end_at_the_request_timeout(tmp_path: Path, baseline: Scan) -> None:
    with FakeApiServer(objects(), hang={"nodes", "services"}) as api:
        scan = run_scan(api, tmp_path, "--request-timeout", "1", bound=30, what="never answering nodes, services")
        allowed = run_scan(api, tmp_path, "--request-timeout", "1", "--allow-gaps", bound=30,
                           what="the same, --allow-gaps")
    assert scan.seconds < 30
    for resource in ("nodes", "services"):
        assert_gap(scan, resource, "failed", r"timed? ?out|timeout")
    assert len(scan.gaps) == 2
    assert_rest_is_there(scan, baseline, {"Node", "Service"})
    assert_honest_exit(scan, allowed)


def test_a_trickling_answer_is_cut_off_by_the_request_timeout(tmp_path: Path, baseline: Scan) -> None:
    """Headers at once, then one byte of the body every 0.2 s: each socket read succeeds within the
    1 s timeout, but the request as a whole would take minutes. --request-timeout bounds a request."""
    with FakeApiServer(objects(), trickle={"nodes": 0.2}) as api:
        scan = run_scan(api, tmp_path, "--request-timeout", "1", bound=30,
                        what="nodes list trickling one byte every 0.2 s")
    assert scan.seconds < 30
    assert_gap(scan, "nodes", "failed", r"timed? ?out|timeout|deadline|too slow")
    assert scan.code == 2
    assert_rest_is_there(scan, baseline, {"Node"})


def test_a_server_that_never_answers_at_all_exits_2_in_bounded_time(tmp_path: Path) -> None:
    """TCP accepted by the kernel's backlog, then nothing: not even the TLS handshake."""
    with socket.socket() as silent, FakeApiServer(objects()) as api:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        api.kubeconfig(tmp_path / "kubeconfig", server=f"https://127.0.0.1:{port}")
        kubeconfig = tmp_path / "kubeconfig"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "kaudit.cli", "scan", "--kubeconfig", str(kubeconfig),
                               "--context", "test", "--request-timeout", "1"], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
        seconds = time.monotonic() - started
    assert seconds < 15 and done.returncode == 2
    assert f"context test (server https://127.0.0.1:{port})" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


# ---- credentials revoked mid-scan ----------------------------------------------------------------------

def test_token_revoked_after_discovery(tmp_path: Path, baseline: Scan) -> None:
    """The namespaces list (kaudit's first) is answered; from then on every request is a 401.

    Correct, either way: the scan stops at the 401 with one clear line, or goes on and reports each
    type not read as a gap that says the credentials were rejected (401), not as an RBAC denial.
    Never a namespace-by-namespace retry (the token is no better in one namespace than cluster-wide),
    and exit 2 even with --allow-gaps: rejected credentials are not a permissions gap (README: "an
    unreachable server, a TLS failure or rejected credentials exit 2")."""
    with FakeApiServer(objects(), revoke_after=1) as api:
        scan = run_scan(api, tmp_path, bound=30, what="token revoked after the namespaces list")
        paths = [r.path for r in api.requests]
        allowed = run_scan(api, tmp_path, "--allow-gaps", "--fail-on", "never", bound=30,
                           what="the same, --allow-gaps --fail-on never")
    assert scan.seconds < 30
    per_namespace = [path for path in paths if "/namespaces/" in path]
    assert not per_namespace, (f"{len(per_namespace)} per-namespace retries after the token was revoked "
                               f"(e.g. {per_namespace[:2]}), {len(paths)} requests in all")
    assert scan.code == 2, scan.err
    if scan.report is None:  # stopped at the 401
        assert re.search(r"401|credentials|unauthori[sz]ed", scan.err, re.I), scan.err
        assert "Traceback" not in scan.err and scan.err.count("\n") == 1, scan.err
    else:  # went on: every type not read is a gap that says why
        assert scan.gaps, scan.err
        for gaps in scan.gaps.values():
            for gap in gaps:
                assert gap["reason"] != "forbidden", f"a 401 reported as an RBAC denial: {gap}"
                assert re.search(r"401|credentials|unauthori[sz]ed", gap["message"], re.I), gap
        assert "namespaces" in scan.read
        assert CLUSTER_VERSION in scan.findings  # what was read before the revocation is still judged
    assert allowed.code == 2, f"a scan whose token was revoked exited {allowed.code} with --allow-gaps"
