"""What a live-cluster scan tells its user and the cluster's audit log: one line per connection
failure naming context and server, timeouts said as timeouts, a namespace that does not exist, a
hint for credentials that read only some namespaces, and a User-Agent that names kaudit."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

from kaudit import __version__
from tests.k8s_api import FakeApiServer, make_unrelated_ca

from .conftest import CliResult, run_process

Kaudit = Callable[..., CliResult]
HINT = "pass -n NAMESPACE for the namespaces this credential can read"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0"}]}}


OBJECTS = [namespace("shop"), namespace("team-b"), pod("web", "shop"), pod("db", "team-b")]


def scan(api: FakeApiServer, tmp_path: Path, *extra: str) -> CliResult:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    return run_process("scan", "--kubeconfig", kubeconfig, "--context", "test", "--fail-on", "never", *extra)


def test_every_request_names_kaudit_in_its_user_agent(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS) as api:
        result = scan(api, tmp_path)
        agents = {r.user_agent for r in api.requests}
    assert result.code == 0, result.err
    assert agents == {f"kaudit/{__version__}"}  # /version, discovery and every list


def test_a_tls_failure_is_one_line_naming_context_and_server(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS) as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", ca=make_unrelated_ca(tmp_path / "other-ca.pem"))
        result = run_process("scan", "--kubeconfig", kubeconfig, "--context", "test")
        url = api.url
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.endswith("\n"), repr(result.err)
    assert result.err.startswith(f"kaudit: context test (server {url}): TLS verification failed: ")
    assert "certificate verify failed" in result.err and "Traceback" not in result.err


def test_a_server_that_never_answers_has_timed_out(tmp_path: Path) -> None:
    """The TCP connection is accepted, then nothing: a timeout, not "cannot reach the server"."""
    with socket.socket() as silent, FakeApiServer(OBJECTS) as api:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        server = f"https://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", server=server)
        result = run_process("scan", "--kubeconfig", kubeconfig, "--context", "test", "--request-timeout", "1")
    assert result.code == 2 and result.err == f"kaudit: context test (server {server}): timed out after 1 s\n"


def test_a_list_that_never_answers_is_a_gap_that_says_timed_out(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, hang={"nodes"}) as api:
        result = scan(api, tmp_path, "--request-timeout", "1.5", "-f", "json")
    [gap] = result.json()["scanned"]["cluster"]["gaps"]
    assert (gap["resource"], gap["message"]) == ("nodes", "timed out after 1.5 s")


def test_a_namespace_that_does_not_exist_is_a_warning(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS) as api:
        text = scan(api, tmp_path, "-n", "shop", "-n", "missing")
        report = scan(api, tmp_path, "-n", "shop", "-n", "missing", "-f", "json").json()
    assert "warning: context test: namespace missing does not exist" in text.out
    messages = [w["message"] for w in report["inputs"]["warnings"]]
    assert messages == ["namespace missing does not exist"]  # shop exists: no word about it


def test_a_credential_that_reads_only_some_namespaces_gets_a_hint(tmp_path: Path) -> None:
    # pods can be listed in shop only: the all-namespaces list is forbidden, and so is team-b
    with FakeApiServer(OBJECTS, forbidden={("pods", ""), ("pods", "team-b")}) as api:
        result = scan(api, tmp_path, "-f", "json")
        scoped = scan(api, tmp_path, "-n", "shop", "-f", "json")
    assert result.code == 2
    warnings = [w["message"] for w in result.json()["inputs"]["warnings"]]
    assert any(HINT in w and "pods" in w for w in warnings), warnings
    assert scoped.code == 0 and not scoped.json()["inputs"]["warnings"]  # -n given: nothing to hint


def test_a_credential_that_cannot_list_namespaces_gets_a_hint(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, forbidden={("namespaces", None)}) as api:
        result = scan(api, tmp_path)
    assert result.code == 2 and HINT in result.out


def test_a_credential_that_reads_every_namespace_one_by_one_gets_no_hint(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, forbidden={("pods", "")}) as api:  # a RoleBinding in every namespace
        result = scan(api, tmp_path, "-f", "json")
    assert result.code == 0 and not result.json()["inputs"]["warnings"]
