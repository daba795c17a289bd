"""The fake API server (tests/k8s_api) speaks the real protocol: proven with the real `kubernetes` client."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# kubernetes is a dependency of kaudit and trustme a test extra: imported plainly, so a missing one
# fails the run instead of skipping it
import kubernetes  # noqa: F401
import urllib3  # (a dependency of kubernetes)
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.k8s_api import MALFORMED_BODY, FakeApiServer, huge_list_pieces, make_unrelated_ca, plural_of

PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


def pod(name: str, namespace: str) -> dict[str, Any]:
    return obj("v1", "Pod", name, namespace, spec={"containers": [{"name": "app", "image": "nginx:1.25"}]})


OBJECTS = [
    *(pod(f"web-{i}", "team-a") for i in range(5)),
    pod("db-0", "team-b"),
    obj("v1", "Namespace", "team-a"), obj("v1", "Namespace", "team-b"),
    obj("v1", "Secret", "db-password", "team-a", type="Opaque", data={"password": "aHVudGVyMg=="}),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "admins", "team-a",
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "admins", "team-b",
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}),
    obj("cilium.io/v2", "CiliumNetworkPolicy", "deny-all", "team-a", spec={"endpointSelector": {}}),
]


@pytest.fixture(autouse=True)
def _restore_default_configuration() -> Iterator[None]:
    """load_kube_config() changes the client's process-wide default; put it back."""
    saved = client.Configuration._default
    yield
    client.Configuration._default = saved


def api_client(api: FakeApiServer, tmp_path: Path, retries: Any = None, **kubeconfig: Any) -> client.ApiClient:
    """An ApiClient configured exactly as a user's kubeconfig would configure it.

    `retries` must be set before the ApiClient exists: its urllib3 pool is built in the constructor."""
    path = api.kubeconfig(tmp_path / "kubeconfig", **kubeconfig)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), context=kubeconfig.get("context", "test"),
                            client_configuration=configuration)
    configuration.retries = retries
    return client.ApiClient(configuration)


def raw_get(api_client_: client.ApiClient, path: str, accept: str | None = None,
            query: list[tuple[str, Any]] | None = None) -> tuple[int, Any]:
    """GET through ApiClient.call_api, authenticated as the generated methods are (kubernetes >= 36 API)."""
    headers = {"Accept": accept} if accept else None
    request = api_client_.param_serialize("GET", path, query_params=query, header_params=headers,
                                          auth_settings=["BearerToken"])
    response = api_client_.call_api(*request)
    response.read()
    return response.status, json.loads(response.data)


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer(OBJECTS) as server:
        yield server


def test_typed_client_through_kubeconfig(api: FakeApiServer, tmp_path: Path) -> None:
    path = api.kubeconfig(tmp_path / "kubeconfig", context="fake")
    config.load_kube_config(config_file=str(path), context="fake")
    pods = client.CoreV1Api().list_namespaced_pod("team-a")
    assert [p.metadata.name for p in pods.items] == [f"web-{i}" for i in range(5)]
    assert pods.kind == "PodList" and pods.api_version == "v1"
    first = pods.items[0]
    assert first.kind is None and first.api_version is None  # as kube-apiserver: no TypeMeta on list items
    assert first.metadata.namespace == "team-a" and first.metadata.uid
    assert first.metadata.managed_fields  # served on every object: the scanner must drop it
    assert first.spec.containers[0].image == "nginx:1.25"
    assert client.VersionApi().get_code().git_version == "v1.29.4"
    request = api.requests[0]
    assert (request.method, request.path, request.accept) == ("GET", "/api/v1/namespaces/team-a/pods",
                                                              "application/json")


def test_discovery(api: FakeApiServer, tmp_path: Path) -> None:
    c = api_client(api, tmp_path)
    assert raw_get(c, "/api") == (200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{api.port}"}]})
    status, core = raw_get(c, "/api/v1")
    assert status == 200 and core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    resources = {r["name"]: r for r in core["resources"]}
    assert {"pods", "services", "namespaces", "serviceaccounts", "secrets", "configmaps", "nodes",
            "replicationcontrollers"} <= set(resources)
    assert resources["nodes"]["namespaced"] is False and resources["secrets"]["kind"] == "Secret"
    assert "list" in resources["pods"]["verbs"]

    status, groups = raw_get(c, "/apis")
    names = {g["name"]: g for g in groups["groups"]}
    assert {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "admissionregistration.k8s.io",
            "policy", "cilium.io"} <= set(names)
    assert names["cilium.io"]["preferredVersion"] == {"groupVersion": "cilium.io/v2", "version": "v2"}
    status, cilium = raw_get(c, "/apis/cilium.io/v2")
    assert cilium["resources"] == [{"name": "ciliumnetworkpolicies", "singularName": "ciliumnetworkpolicy",
                                    "namespaced": True, "kind": "CiliumNetworkPolicy", "verbs": list(
                                        cilium["resources"][0]["verbs"])}]
    status, policies = raw_get(c, "/apis/cilium.io/v2/namespaces/team-a/ciliumnetworkpolicies")
    assert policies["kind"] == "CiliumNetworkPolicyList"
    assert policies["items"][0]["kind"] == "CiliumNetworkPolicy"  # custom resources keep their TypeMeta
    assert raw_get(c, "/apis/apps/v1")[1]["groupVersion"] == "apps/v1"
    assert raw_get(c, "/apis/example.com/v1")[0] == 404
    status, missing = raw_get(c, "/healthz/nope")
    assert (status, missing["kind"], missing["reason"]) == (404, "Status", "NotFound")


def test_plural_names() -> None:
    assert [plural_of(k) for k in ("NetworkPolicy", "Ingress", "Endpoints", "Pod", "PriorityClass")] == [
        "networkpolicies", "ingresses", "endpoints", "pods", "priorityclasses"]


def test_pagination_with_limit_and_continue(api: FakeApiServer, tmp_path: Path) -> None:
    core = client.CoreV1Api(api_client(api, tmp_path))
    names, token, pages = [], None, 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=2, _continue=token)
        pages += 1
        names += [f"{p.metadata.namespace}/{p.metadata.name}" for p in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 6 - len(names)
    assert pages == 3
    assert names == [*(f"team-a/web-{i}" for i in range(5)), "team-b/db-0"]
    assert [r.query.get("limit") for r in api.requests] == ["2", "2", "2"]
    assert raw_get(client.ApiClient(core.api_client.configuration), "/api/v1/pods",
                   query=[("continue", "not-a-token")])[0] == 400


def test_forbidden_is_403_status(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, forbidden={("secrets", None), ("rolebindings", "team-b"), ("pods", "")},
                       user="x") as api:
        c = api_client(api, tmp_path)
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(c).list_namespaced_secret("team-a")
        assert denied.value.status == 403
        status = json.loads(denied.value.body)
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
        assert status["message"].startswith('secrets is forbidden: User "x" cannot list resource "secrets" '
                                            'in API group "" in the namespace "team-a"')
        rbac = client.RbacAuthorizationV1Api(c)
        assert len(rbac.list_namespaced_role_binding("team-a").items) == 1
        with pytest.raises(ApiException) as denied:
            rbac.list_namespaced_role_binding("team-b")
        assert json.loads(denied.value.body)["details"] == {"kind": "rolebindings",
                                                            "group": "rbac.authorization.k8s.io"}
        # ("pods", ""): only the cluster-wide list is denied, so a scanner can fall back per namespace
        with pytest.raises(ApiException, match="at the cluster scope"):
            client.CoreV1Api(c).list_pod_for_all_namespaces()
        assert len(client.CoreV1Api(c).list_namespaced_pod("team-b").items) == 1


@pytest.mark.parametrize("token", ["wrong", ""])
def test_wrong_or_missing_token_is_401(api: FakeApiServer, tmp_path: Path, token: str) -> None:
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(api_client(api, tmp_path, token=token)).list_namespace()
    assert denied.value.status == 401
    assert json.loads(denied.value.body)["reason"] == "Unauthorized"
    with FakeApiServer(OBJECTS, unauthorized=True) as locked:
        with pytest.raises(ApiException) as denied:
            client.VersionApi(api_client(locked, tmp_path)).get_code()
        assert denied.value.status == 401


def test_secrets_as_partial_object_metadata(api: FakeApiServer, tmp_path: Path) -> None:
    c = api_client(api, tmp_path)
    status, partial = raw_get(c, "/api/v1/namespaces/team-a/secrets", accept=PARTIAL_LIST)
    assert status == 200
    assert (partial["kind"], partial["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    [item] = partial["items"]
    assert set(item) == {"apiVersion", "kind", "metadata"} and item["kind"] == "PartialObjectMetadata"
    assert item["metadata"]["name"] == "db-password" and item["metadata"]["managedFields"]
    # the typed method accepts a per-request Accept too, and the generic ApiClient gets the same list
    typed = client.CoreV1Api(c).list_namespaced_secret("team-a", _headers={"Accept": PARTIAL_LIST})
    assert typed.kind == "PartialObjectMetadataList" and typed.items[0].data is None
    assert [r.accept for r in api.requests] == [PARTIAL_LIST, PARTIAL_LIST]
    # without the header: the whole Secret, data included, so a test can tell which was asked for
    full = client.CoreV1Api(c).list_namespaced_secret("team-a")
    assert full.items[0].data == {"password": "aHVudGVyMg=="}
    assert raw_get(c, "/api/v1/secrets", accept="application/json;as=Table;g=meta.k8s.io;v=v1")[0] == 406


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_against_the_ca(api: FakeApiServer, tmp_path: Path) -> None:
    assert client.VersionApi(api_client(api, tmp_path)).get_code().minor == "29"
    other_ca = make_unrelated_ca(tmp_path / "other-ca.crt")
    for ca in (other_ca, False):
        api.clear_requests()
        # by default urllib3 retries the handshake 3 times, then raises MaxRetryError (no ApiException)
        with pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
            client.VersionApi(api_client(api, tmp_path, ca=ca)).get_code()
        # without urllib3 retries, the client wraps the SSLError in an ApiException with status 0
        with pytest.raises(ApiException) as failed:
            client.VersionApi(api_client(api, tmp_path, ca=ca, retries=False)).get_code()
        assert failed.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in str(failed.value)
        assert api.requests == []  # nothing got past the handshake
    insecure = api_client(api, tmp_path, insecure=True)
    assert client.VersionApi(insecure).get_code().major == "1"


def test_flaky_then_ok(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, flaky={"pods": 2}) as api:
        core = client.CoreV1Api(api_client(api, tmp_path))
        for _ in range(2):
            with pytest.raises(ApiException) as failed:
                core.list_namespaced_pod("team-a")
            assert failed.value.status == 500  # a 500 is never retried by the client
        assert len(core.list_namespaced_pod("team-a").items) == 5
    with FakeApiServer(OBJECTS, flaky={"pods": 2}, flaky_status=503, retry_after=0) as api:
        core = client.CoreV1Api(api_client(api, tmp_path))
        assert len(core.list_namespaced_pod("team-a").items) == 5  # urllib3 retried 503 + Retry-After itself
        assert len(api.requests) == 3


def test_slow_times_out_and_does_not_block_shutdown(tmp_path: Path) -> None:
    api = FakeApiServer(OBJECTS, slow={"nodes": 30.0}).start()
    try:
        with pytest.raises(urllib3.exceptions.MaxRetryError, match="Read timed out"):
            client.CoreV1Api(api_client(api, tmp_path)).list_node(_request_timeout=(2, 0.3))
        assert len(api.requests) == 4  # urllib3 retried the read timeout 3 times (GET is idempotent)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # raw, not wrapped in an ApiException
            client.CoreV1Api(api_client(api, tmp_path, retries=False)).list_node(_request_timeout=(2, 0.3))
    finally:
        started = time.monotonic()
        api.stop()
    assert time.monotonic() - started < 3


def test_expired_continue_is_410(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, expire_continue={"pods"}) as api:
        core = client.CoreV1Api(api_client(api, tmp_path))
        first = core.list_namespaced_pod("team-a", limit=2)
        with pytest.raises(ApiException) as gone:
            core.list_namespaced_pod("team-a", limit=2, _continue=first.metadata._continue)
        status = json.loads(gone.value.body)
        assert (gone.value.status, status["reason"], status["code"]) == (410, "Expired", 410)
        rest = core.list_namespaced_pod("team-a", _continue=status["metadata"]["continue"])  # inconsistent token
        assert [p.metadata.name for p in rest.items] == ["web-2", "web-3", "web-4"]


def test_dropped_connection(tmp_path: Path) -> None:
    services = [obj("v1", "Service", f"svc-{i}", "team-a", spec={"ports": [{"port": 80}]}) for i in range(20)]
    with FakeApiServer(services, drop_connection={"services"}) as api:
        with pytest.raises(urllib3.exceptions.ProtocolError):  # not an ApiException, and not retried
            client.CoreV1Api(api_client(api, tmp_path)).list_namespaced_service("team-a")
        assert len(api.requests) == 1


def test_read_only(api: FakeApiServer, tmp_path: Path) -> None:
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api_client(api, tmp_path)).delete_namespace("team-a")
    assert refused.value.status == 405


def timed_get(api_client_: client.ApiClient, path: str, timeout: Any = None) -> tuple[int, bytes, Any]:
    """GET with a request timeout; the raw body and the urllib3 headers, nothing decoded."""
    request = api_client_.param_serialize("GET", path, auth_settings=["BearerToken"])
    response = api_client_.call_api(*request, _request_timeout=timeout)
    return response.status, response.read(), response.headers


def test_drop_connection_after_some_answers(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, drop_connection={"pods": 1}) as api:
        c = api_client(api, tmp_path, retries=False)
        assert len(json.loads(timed_get(c, "/api/v1/pods")[1])["items"]) == 6  # the first answer is whole
        with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
            timed_get(c, "/api/v1/namespaces/team-a/pods")  # every later one is cut mid-body
        assert timed_get(c, "/api/v1/namespaces")[0] == 200  # other resources are untouched


def test_malformed_list_bodies(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, malformed={"pods"}) as api:
        c = api_client(api, tmp_path)
        status, body, headers = timed_get(c, "/api/v1/namespaces/team-a/pods")
        assert (status, body, headers["Content-Type"]) == (200, MALFORMED_BODY, "application/json")
        with pytest.raises(ValueError):
            json.loads(body)
    with FakeApiServer(OBJECTS, malformed={"pods": b"<html>502 Bad Gateway</html>"}, forbidden={("pods", "team-b")}) as api:
        c = api_client(api, tmp_path)
        assert timed_get(c, "/api/v1/pods")[:2] == (200, b"<html>502 Bad Gateway</html>")
        assert timed_get(c, "/api/v1/namespaces/team-b/pods")[0] == 403  # only 200s are replaced


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_lists_are_streamed_valid_json(tmp_path: Path, chunked: bool) -> None:
    size = 3 * 1024 * 1024 + 17
    with FakeApiServer(OBJECTS, huge={"services": size}, huge_chunked=chunked) as api:
        c = api_client(api, tmp_path)
        status, body, headers = timed_get(c, "/api/v1/namespaces/team-a/services")
        assert status == 200 and len(body) == size
        if chunked:
            assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
        else:
            assert headers["Content-Length"] == str(size)
        listed = json.loads(body)
        assert listed["kind"] == "ServiceList" and listed["metadata"]["resourceVersion"] == "123456"
        assert len(listed["items"]) > 700 and listed["items"][0]["metadata"]["name"] == "huge-0000000000"
        assert len({item["metadata"]["name"] for item in listed["items"]}) == len(listed["items"])
        assert len(json.loads(timed_get(c, "/api/v1/namespaces/team-a/pods")[1])["items"]) == 5
    with pytest.raises(ValueError, match="at least"):  # too small to hold even one item
        list(huge_list_pieces({"kind": "ServiceList"}, 10))


def test_hang_never_answers_and_does_not_block_shutdown(tmp_path: Path) -> None:
    api = FakeApiServer(OBJECTS, hang={"nodes"}).start()
    try:
        c = api_client(api, tmp_path, retries=False)
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            timed_get(c, "/api/v1/nodes", timeout=(2, 1.0))
        assert 1.0 <= time.monotonic() - started < 3
        assert timed_get(c, "/api/v1/namespaces", timeout=2)[0] == 200  # the others still answer
    finally:
        started = time.monotonic()
        api.stop()
    assert time.monotonic() - started < 3


def test_trickle_defeats_a_per_read_timeout(tmp_path: Path) -> None:
    api = FakeApiServer(OBJECTS, trickle={"nodes": 0.01, "pods": 5.0}).start()
    try:
        c = api_client(api, tmp_path, retries=False)
        started = time.monotonic()
        status, body, _ = timed_get(c, "/api/v1/nodes", timeout=(2, 0.3))  # each read gets a byte in time
        elapsed = time.monotonic() - started
        assert status == 200 and json.loads(body)["kind"] == "NodeList"
        assert elapsed > len(body) * 0.01 * 0.9 > 0.6  # ... though the whole answer took far longer than 0.3 s
        request = c.param_serialize("GET", "/api/v1/pods", auth_settings=["BearerToken"])
        pending = c.call_api(*request, _request_timeout=10)  # headers come at once, then the body trickles
        assert pending.status == 200
    finally:
        started = time.monotonic()
        api.stop()
    assert time.monotonic() - started < 3


def test_token_revoked_after_some_reads(tmp_path: Path) -> None:
    with FakeApiServer(OBJECTS, revoke_after=2) as api:
        c = api_client(api, tmp_path)
        assert raw_get(c, "/api/v1")[0] == 200 and raw_get(c, "/apis")[0] == 200  # discovery is not counted
        assert raw_get(c, "/api/v1/namespaces")[0] == 200
        assert raw_get(c, "/api/v1/pods")[0] == 200
        status, body = raw_get(c, "/api/v1/services")  # the third list: revoked from here on
        assert (status, body["reason"], body["code"]) == (401, "Unauthorized", 401)
        assert raw_get(c, "/version")[0] == 401 and raw_get(c, "/api/v1/pods")[0] == 401


def test_field_selector_on_secret_type(tmp_path: Path) -> None:
    token_secret = obj("v1", "Secret", "ci-token", "team-a", type="kubernetes.io/service-account-token",
                       data={"token": "dG9rZW4="})
    untyped = obj("v1", "Secret", "no-type", "team-b", data={"k": "dg=="})  # defaulted to Opaque
    with FakeApiServer([*OBJECTS, token_secret, untyped]) as server:
        core = client.CoreV1Api(api_client(server, tmp_path))
        tokens = core.list_secret_for_all_namespaces(field_selector="type=kubernetes.io/service-account-token")
        assert [s.metadata.name for s in tokens.items] == ["ci-token"]
        opaque = core.list_secret_for_all_namespaces(field_selector="type==Opaque,metadata.namespace!=team-a")
        assert [s.metadata.name for s in opaque.items] == ["no-type"]
        with pytest.raises(ApiException) as unsupported:
            core.list_secret_for_all_namespaces(field_selector="data.token=x")
        assert unsupported.value.status == 400 and "field label not supported: data.token" in unsupported.value.body
        with pytest.raises(ApiException) as on_pods:
            core.list_pod_for_all_namespaces(field_selector="type=Opaque")  # `type` is a Secret field only
        assert on_pods.value.status == 400
        assert [r.field_selector for r in server.requests][:2] == [
            "type=kubernetes.io/service-account-token", "type==Opaque,metadata.namespace!=team-a"]


def test_metadata_only_answers_keep_annotations(tmp_path: Path) -> None:
    """As kube-apiserver: PartialObjectMetadata is the whole ObjectMeta, last-applied annotation included."""
    applied = obj("v1", "Secret", "db", "team-a", type="Opaque", data={"password": "aHVudGVyMg=="})
    applied["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration":
                                          json.dumps({"data": {"password": "aHVudGVyMg=="}})}
    with FakeApiServer([applied]) as server:
        status, partial = raw_get(api_client(server, tmp_path), "/api/v1/secrets", accept=PARTIAL_LIST)
    assert status == 200
    [item] = partial["items"]
    assert "data" not in item and "aHVudGVyMg==" in item["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"]


def test_request_headers_are_recorded(api: FakeApiServer, tmp_path: Path) -> None:
    c = api_client(api, tmp_path)
    c.user_agent = "probe/1.0"
    raw_get(c, "/api/v1/pods")
    [request] = api.requests
    assert request.user_agent == "probe/1.0" and request.headers["authorization"] == f"Bearer {api.token}"
    assert request.accept is None and "accept" not in request.headers  # none was sent: none is made up


def test_authorize_puts_an_rbac_model_in_front(tmp_path: Path) -> None:
    asked: list[tuple[str, str, str, str | None]] = []

    def authorize(verb: str, group: str, plural: str, namespace: str | None) -> bool:
        asked.append((verb, group, plural, namespace))
        return plural != "secrets" and not (plural == "pods" and namespace is None)

    with FakeApiServer(OBJECTS, authorize=authorize) as server:
        core = client.CoreV1Api(api_client(server, tmp_path))
        assert len(core.list_namespaced_pod("team-a").items) == 5
        for call in (core.list_pod_for_all_namespaces, lambda: core.list_namespaced_secret("team-a")):
            with pytest.raises(ApiException) as denied:
                call()
            assert denied.value.status == 403 and "forbidden" in denied.value.body
    assert asked == [("list", "", "pods", "team-a"), ("list", "", "pods", None), ("list", "", "secrets", "team-a")]
